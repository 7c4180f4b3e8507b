"""One step of "Learning PyTorch with Examples": a two-layer ReLU network by hand

The tutorial (Justin Johnson's, also CS231n's PyTorch example) computes y_pred = relu(x w1) w2 with torch.mm and
clamp(min=0), the squared error, and loss.backward(), then updates the weights. This is its first forward and
backward pass, with 2 samples, 3 features, 2 hidden units and fixed numbers in place of its random ones.
Source: github.com/pytorch/tutorials beginner_source/examples_autograd/two_layer_net_autograd.py.
"""
import torch

x = torch.tensor([[1.0, -0.5, 0.25], [0.5, 1.5, -1.0]])
y = torch.tensor([[0.5], [-1.0]])

w1 = torch.tensor([[0.5, 0.25], [0.75, 0.5], [-0.5, 1.0]], requires_grad=True)
w2 = torch.tensor([[1.0], [-0.5]], requires_grad=True)

# Forward pass: compute predicted y using operations on Tensors
y_pred = x.mm(w1).clamp(min=0).mm(w2)

# Compute and print loss using operations on Tensors.
loss = (y_pred - y).pow(2).sum()
print(loss.item())

# Use autograd to compute the backward pass.
loss.backward()
print(w1.grad)
print(w2.grad)
