"""torch.autograd.functional.jacobian of 2 e^x + 3y

The intro series takes the Jacobian of exp_adder at two one-element inputs, then at two three-element inputs.
Source: github.com/pytorch/tutorials beginner_source/introyt/autogradyt_tutorial.py, "The High-Level API"
(notebook cells that display a value are written as print(...)).
"""
import torch

def exp_adder(x, y):
    return 2 * x.exp() + 3 * y

# The tutorial draws inputs with torch.rand; fixed values stand in for the random ones.
inputs = (torch.tensor([0.5]), torch.tensor([0.25])) # arguments for the function
print(inputs)
print(torch.autograd.functional.jacobian(exp_adder, inputs))

inputs = (torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.4, 0.5, 0.6])) # arguments for the function
print(inputs)
print(torch.autograd.functional.jacobian(exp_adder, inputs))
