"""binary_cross_entropy of sigmoid(input): the functional docstring's example

torch.nn.functional.binary_cross_entropy takes probabilities, so the docstring squashes its input with sigmoid
first, then calls loss.backward(); input.grad is (sigmoid(input) - target) / 6 for the 6 elements of the mean.
Source: github.com/pytorch/pytorch torch/nn/functional.py, binary_cross_entropy docstring.
"""
import torch
import torch.nn.functional as F

# The docstring draws input = torch.randn(3, 2) and target = torch.rand(3, 2); fixed values stand in.
input = torch.tensor([[0.5, -1.25], [2.0, 0.0], [-0.75, 1.5]], requires_grad=True)
target = torch.tensor([[1.0, 0.0], [0.75, 0.5], [0.25, 1.0]])
loss = F.binary_cross_entropy(torch.sigmoid(input), target)
print(loss)
loss.backward()
print(input.grad)
