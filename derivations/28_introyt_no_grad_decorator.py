"""torch.no_grad() as a block and as a function decorator

The intro series adds two non-leaf tensors with and without torch.no_grad(), then defines the same addition
as a plain function and as one decorated with @torch.no_grad(). Source: github.com/pytorch/tutorials
beginner_source/introyt/autogradyt_tutorial.py, "Turning Autograd Off and On", second and third cells.
"""
import torch

a = torch.ones(2, 3, requires_grad=True) * 2
b = torch.ones(2, 3, requires_grad=True) * 3

c1 = a + b
print(c1)

with torch.no_grad():
    c2 = a + b

print(c2)

c3 = a * b
print(c3)


def add_tensors1(x, y):
    return x + y

@torch.no_grad()
def add_tensors2(x, y):
    return x + y


a = torch.ones(2, 3, requires_grad=True) * 2
b = torch.ones(2, 3, requires_grad=True) * 3

c1 = add_tensors1(a, b)
print(c1)

c2 = add_tensors2(a, b)
print(c2)
