"""Doubling until the norm passes 1000: backward(v), then functional.vjp

The intro series repeats the blitz's doubling loop with y.backward(v), then wraps the loop in a function and
asks torch.autograd.functional.vjp for the same vector-Jacobian product. Source: github.com/pytorch/tutorials
beginner_source/introyt/autogradyt_tutorial.py, "Advanced Topic: More Autograd Detail and the High-Level API"
(notebook cells that display a value are written as print(...)).
"""
import torch

# The tutorial draws x = torch.randn(3, requires_grad=True); fixed values stand in for the random ones.
x = torch.tensor([0.75, -0.5, 1.5], requires_grad=True)

y = x * 2
while y.data.norm() < 1000:
    y = y * 2

print(y)

v = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float) # stand-in for gradients
y.backward(v)

print(x.grad)

def do_some_doubling(x):
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    return y

# The tutorial draws inputs = torch.randn(3); fixed values stand in for the random ones.
inputs = torch.tensor([-0.25, 1.25, 0.5])
my_gradients = torch.tensor([0.1, 1.0, 0.0001])
print(torch.autograd.functional.vjp(do_some_doubling, inputs, v=my_gradients))
