"""Walking the graph of d = 2 sin(a) + 1 with grad_fn.next_functions

The PyTorch intro video series builds b = sin(a), c = 2b, d = c + 1, out = d.sum() over 25 points, prints
each tensor and the chain of grad_fn.next_functions, then a.grad = 2 cos(a). Source: github.com/pytorch/
tutorials beginner_source/introyt/autogradyt_tutorial.py, "A Simple Example" (the matplotlib plots left out).
"""
import torch

import math

a = torch.linspace(0., 2. * math.pi, steps=25, requires_grad=True)
print(a)

b = torch.sin(a)

print(b)

c = 2 * b
print(c)

d = c + 1
print(d)

out = d.sum()
print(out)

print('d:')
print(d.grad_fn)
print(d.grad_fn.next_functions)
print(d.grad_fn.next_functions[0][0].next_functions)
print(d.grad_fn.next_functions[0][0].next_functions[0][0].next_functions)
print(d.grad_fn.next_functions[0][0].next_functions[0][0].next_functions[0][0].next_functions)
print('\nc:')
print(c.grad_fn)
print('\nb:')
print(b.grad_fn)
print('\na:')
print(a.grad_fn)

out.backward()
print(a.grad)
