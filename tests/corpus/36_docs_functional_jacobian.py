"""torch.autograd.functional.jacobian of exp_reducer and exp_adder

The jacobian docstring differentiates x.exp().sum(dim=1) at a 2x2 input and 2 x.exp() + 3 y at two vectors.
Source: github.com/pytorch/pytorch torch/autograd/functional.py, jacobian docstring (displayed values
written as print(...)).
"""
import torch
from torch.autograd.functional import jacobian

def exp_reducer(x):
    return x.exp().sum(dim=1)
# The docstring draws torch.rand(2, 2) and torch.rand(2); fixed values stand in for the random ones.
inputs = torch.tensor([[0.25, 0.5], [0.75, 1.0]])
print(jacobian(exp_reducer, inputs))
print(jacobian(exp_reducer, inputs, create_graph=True))
def exp_adder(x, y):
    return 2 * x.exp() + 3 * y
inputs = (torch.tensor([0.5, 1.5]), torch.tensor([0.25, 0.75]))
print(jacobian(exp_adder, inputs))
