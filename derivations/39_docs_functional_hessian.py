"""torch.autograd.functional.hessian and hvp of sum(x^3)

The hessian docstring's pow_reducer at a 2x2 input (a 2x2x2x2 Hessian, 6x on the diagonal), then hvp with a
vector of ones. Source: github.com/pytorch/pytorch torch/autograd/functional.py, hessian and hvp docstrings
(displayed values written as print(...)).
"""
import torch
from torch.autograd.functional import hessian, hvp

def pow_reducer(x):
    return x.pow(3).sum()
# The docstrings draw torch.rand(2, 2); fixed values stand in for the random ones.
inputs = torch.tensor([[0.25, 0.5], [0.75, 1.0]])
print(hessian(pow_reducer, inputs))
v = torch.ones(2, 2)
print(hvp(pow_reducer, inputs, v))
