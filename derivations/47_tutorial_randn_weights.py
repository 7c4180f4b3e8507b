"""PyTorch's autograd tutorial with random weights: w and b from torch.randn after torch.manual_seed(0)

The first example of the official "Automatic differentiation with torch.autograd" tutorial draws its weights
with torch.randn; with a seed in front, the numbers are torch's own, so every gradient below can be checked.
"""
import torch

torch.manual_seed(0)
x = torch.ones(5)  # input tensor
y = torch.zeros(3)  # expected output
w = torch.randn(5, 3, requires_grad=True)
b = torch.randn(3, requires_grad=True)
z = torch.matmul(x, w) + b
loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
loss.backward()
print(w.grad)
print(b.grad)
