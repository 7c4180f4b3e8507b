"""A linear layer written with torch.nn.functional.linear: what torch records for it, and each weight's gradient

F.linear(x, W, b) is x @ W.T + b, but torch computes it as one kernel, addmm(b, x, W.t()), so the graph shows
AddmmBackward0 after a TBackward0 on the weight. The weight's gradient is the outer product of the upstream
gradient with the input, and the bias collects the upstream gradient of every row of the batch.
"""
import torch
import torch.nn.functional as F

x = torch.tensor([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]])
W = torch.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], requires_grad=True)
b = torch.tensor([0.01, -0.02], requires_grad=True)
y = F.linear(x, W, b)
loss = y.relu().sum()
loss.backward()
print(W.grad)
print(b.grad)
