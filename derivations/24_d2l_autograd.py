"""Dive into Deep Learning: y = 2 x.x, resetting the grad, non-scalar y and detach

d2l's autograd section (PyTorch tab) in order: the gradient of 2 x^T x, x.grad.zero_() before the gradient
of sum(x), backward with gradient=ones for y = x * x, and detaching u = y to treat it as a constant.
Source: github.com/d2l-ai/d2l-en chapter_preliminaries/autograd.md, sections 2.5.1-2.5.3 (notebook cells that
display a value are written as print(...)).
"""
import torch

x = torch.arange(4.0)
print(x)

# Can also create x = torch.arange(4.0, requires_grad=True)
x.requires_grad_(True)
print(x.grad)  # The gradient is None by default

y = 2 * torch.dot(x, x)
print(y)

y.backward()
print(x.grad)

print(x.grad == 4 * x)

x.grad.zero_()  # Reset the gradient
y = x.sum()
y.backward()
print(x.grad)

x.grad.zero_()
y = x * x
y.backward(gradient=torch.ones(len(y)))  # Faster: y.sum().backward()
print(x.grad)

x.grad.zero_()
y = x * x
u = y.detach()
z = u * x

z.sum().backward()
print(x.grad == u)

x.grad.zero_()
y.sum().backward()
print(x.grad == 2 * x)
