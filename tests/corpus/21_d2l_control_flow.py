"""Gradients through Python control flow: while on a norm, if on a sum

d2l's function f doubles b until its norm reaches 1000 and then branches on the sign of its sum; since f is
linear in a, a.grad equals d / a. Source: github.com/d2l-ai/d2l-en chapter_preliminaries/autograd.md,
section 2.5.4 "Gradients and Python Control Flow" (the same code is in d2l-zh; notebook cells that display
a value are written as print(...)).
"""
import torch

def f(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c

# The book draws a = torch.randn(size=(), requires_grad=True); a fixed value stands in for the random one.
a = torch.tensor(-0.8, requires_grad=True)
d = f(a)
d.backward()

print(a.grad == d / a)

# Added for the corpus: the leaf's final grad.
print(a.grad)
