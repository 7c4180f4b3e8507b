"""Tracking a computation: requires_grad, grad_fn and out.backward()

The 60-minute blitz's first autograd example, with every intermediate tensor and y.grad_fn printed before
the backward pass. Source: github.com/pytorch/tutorials beginner_source/blitz/autograd_tutorial.py
(2019 version, "Autograd: automatic differentiation"), sections "Tensor" and "Gradients".
"""
import torch

###############################################################
# Create a tensor and set requires_grad=True to track computation with it
x = torch.ones(2, 2, requires_grad=True)
print(x)

###############################################################
# Do an operation of tensor:
y = x + 2
print(y)

###############################################################
# ``y`` was created as a result of an operation, so it has a ``grad_fn``.
print(y.grad_fn)

###############################################################
# Do more operations on y
z = y * y * 3
out = z.mean()

print(z, out)

out.backward()

###############################################################
# print gradients d(out)/dx
#

print(x.grad)
