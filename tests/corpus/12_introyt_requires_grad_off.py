"""Setting a.requires_grad = False between two computations

The intro series computes b1 = 2a while a tracks gradients, switches the flag off by assignment, and computes
b2 = 2a without history. Source: github.com/pytorch/tutorials beginner_source/introyt/autogradyt_tutorial.py,
"Turning Autograd Off and On", first cell.
"""
import torch

a = torch.ones(2, 3, requires_grad=True)
print(a)

b1 = 2 * a
print(b1)

a.requires_grad = False
b2 = 2 * a
print(b2)
