"""torch.enable_grad inside torch.no_grad

The docstring re-enables tracking inside a no_grad block, backpropagates y = 2x, and shows the same with an
@torch.enable_grad() function. Source: github.com/pytorch/pytorch torch/autograd/grad_mode.py, class
enable_grad docstring (displayed values written as print(...)).
"""
import torch

x = torch.tensor([1.], requires_grad=True)
with torch.no_grad():
    with torch.enable_grad():
        y = x * 2
print(y.requires_grad)
y.backward()
print(x.grad)
@torch.enable_grad()
def doubler(x):
    return x * 2
with torch.no_grad():
    z = doubler(x)
print(z.requires_grad)
@torch.enable_grad()
def tripler(x):
    return x * 3
with torch.no_grad():
    z = tripler(x)
print(z.requires_grad)
