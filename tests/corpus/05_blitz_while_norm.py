"""A data-dependent while loop, backward(gradients), then no_grad

The blitz doubles y until its norm passes 1000 (the number of doublings depends on the values), calls
y.backward with a gradient vector, and shows that operations under torch.no_grad() do not require grad.
Source: github.com/pytorch/tutorials beginner_source/blitz/autograd_tutorial.py (2019 version), "You can
do many crazy things with autograd!" and the no_grad cell.
"""
import torch

# The tutorial draws x = torch.randn(3, requires_grad=True); fixed values stand in for the random ones.
x = torch.tensor([0.5, -1.25, 2.0], requires_grad=True)

y = x * 2
while y.data.norm() < 1000:
    y = y * 2

print(y)

###############################################################
#
gradients = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float)
y.backward(gradients)

print(x.grad)

###############################################################
# You can also stops autograd from tracking history on Tensors
# with requires_grad=True by wrapping the code block in
# ``with torch.no_grad():``
print(x.requires_grad)
print((x ** 2).requires_grad)

with torch.no_grad():
	print((x ** 2).requires_grad)
