"""Turning gradient tracking on afterwards with requires_grad_(True)

The blitz shows that a tensor made without requires_grad has no history, flips the flag in place, and
prints the grad_fn of a sum computed afterwards. Source: github.com/pytorch/tutorials
beginner_source/blitz/autograd_tutorial.py (2019 version), section "Tensor", the requires_grad_ cell.
"""
import torch

################################################################
# ``.requires_grad_( ... )`` changes an existing Tensor's ``requires_grad``
# flag in-place. The input flag defaults to ``True`` if not given.
# The tutorial draws a = torch.randn(2, 2); fixed values stand in for the random ones.
a = torch.tensor([[0.5, -1.5], [2.0, 0.25]])
a = ((a * 3) / (a - 1))
print(a.requires_grad)
a.requires_grad_(True)
print(a.requires_grad)
b = (a * a).sum()
print(b.grad_fn)

# Added for the corpus: the leaf's final grad (no backward ran, so None).
print(a.grad)
