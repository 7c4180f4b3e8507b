"""Cross-entropy of class indices, by hand and with F.cross_entropy: the same number, the same gradient

As in Karpathy's makemore, each row of logits scores three classes and Yb holds each row's correct class, an int64
tensor made from Python integers. By hand, softmax turns a row into probabilities, log takes their logarithms, and
logprobs[range(n), Yb] picks the one at each row's class: torch records IndexBackward0, which sends each row's
gradient back to that one element only. F.cross_entropy does the same as two nodes, LogSoftmaxBackward0 and
NllLossBackward0. Both losses are the mean of -log p over the rows, so their gradients agree: (softmax - one_hot) / n.
"""
import torch
import torch.nn.functional as F

logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.2, 0.2, 3.0], [0.0, -1.0, 1.0]], requires_grad=True)
Yb = torch.tensor([0, 1, 2, 2])
n = 4
probs = logits.softmax(1)
logprobs = probs.log()
loss_manual = -logprobs[range(n), Yb].mean()
loss = F.cross_entropy(logits, Yb)
print(f"{loss.item():.6f} {loss_manual.item():.6f}")
total = loss + loss_manual
total.backward()
print(logits.grad)
