"""nn.MSELoss on a 2x3 input: the module's docstring example

nn.MSELoss() is the mean of the squared differences; loss(input, target) then backward() gives
input.grad = 2 (input - target) / 6, one entry per element. Source: github.com/pytorch/pytorch
torch/nn/modules/loss.py, MSELoss docstring.
"""
import torch
import torch.nn as nn

loss = nn.MSELoss()
# The docstring draws input = torch.randn(3, 5) and target = torch.randn(3, 5); smaller fixed ones stand in.
input = torch.tensor([[0.5, -1.0, 0.25], [1.5, 0.0, -0.75]], requires_grad=True)
target = torch.tensor([[0.0, -0.5, 0.5], [1.0, 0.25, -1.0]])
output = loss(input, target)
print(output)
output.backward()
print(input.grad)
