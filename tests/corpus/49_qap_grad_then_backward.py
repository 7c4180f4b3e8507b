"""Gradients as part of the forward pass: grad(create_graph=True), then backward through them

A notebook computes p = 4(x^2 + x), backpropagates it keeping the graph, takes dy/dx and dm/dx with
torch.autograd.grad(create_graph=True), builds z from them and backpropagates z: x.grad = 28 + 52 = 80.
Source: github.com/qAp/python_examples pytorch/autograd.ipynb, "grad in forward pass" (notebook cells that
display a value are written as print(...)).
"""
import torch
from torch.autograd import grad

x = torch.tensor(3., requires_grad=True)
m = x**2
y = m + x
p = 4*y

p.backward(retain_graph=True)

print(x.grad)

dydx = grad(outputs=y, inputs=x, create_graph=True)[0]

print(dydx)

dmdx = grad(outputs=m, inputs=x, create_graph=True)[0]

print(dmdx)

z = dydx**2 + dmdx**2

print(z)

z.backward()

print(x.grad)
