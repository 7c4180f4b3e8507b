"""A minibatch drawn as torch draws it: randint picks rows, normal_ and uniform_ fill the weights, randperm shuffles

After torch.manual_seed(42) every number is torch's own: the data X from torch.randn, the labels Y from
torch.randint, the weights from torch.empty(...).normal_(0, 0.5) and .uniform_(-1, 1), as initialisation code
writes them. As in makemore, ix = torch.randint(0, 6, (4,)) picks four rows of X for a minibatch (a row may come
twice: its gradient then adds up) and torch.randperm(4) shuffles them; each is an int64 tensor of indices that
torch does not differentiate. The gradient reaches only the weights, through the rows that were picked.
"""
import torch
import torch.nn.functional as F

torch.manual_seed(42)
X = torch.randn(6, 3, dtype=torch.float64)
Y = torch.randint(0, 3, (4,))
W = torch.empty(3, 3, dtype=torch.float64).normal_(0, 0.5).requires_grad_()
b = torch.empty(3, dtype=torch.float64).uniform_(-1, 1).requires_grad_()
ix = torch.randint(0, 6, (4,))
perm = torch.randperm(4)
logits = X[ix][perm] @ W + b
loss = F.cross_entropy(logits, Y)
loss.backward()
print(W.grad)
print(b.grad)
