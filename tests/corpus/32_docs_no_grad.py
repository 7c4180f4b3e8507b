"""torch.no_grad as a context manager and as a decorator

The docstring shows that y = x * 2 computed under no_grad, and the results of @torch.no_grad() functions, do
not require grad, while a Parameter created under no_grad still does. Source: github.com/pytorch/pytorch
torch/autograd/grad_mode.py, class no_grad docstring (displayed values written as print(...)).
"""
import torch

x = torch.tensor([1.], requires_grad=True)
with torch.no_grad():
    y = x * 2
print(y.requires_grad)
@torch.no_grad()
def doubler(x):
    return x * 2
z = doubler(x)
print(z.requires_grad)
@torch.no_grad()
def tripler(x):
    return x * 3
z = tripler(x)
print(z.requires_grad)
# factory function exception
# The docstring uses torch.rand(10); fixed values stand in for the random ones.
with torch.no_grad():
    a = torch.nn.Parameter(torch.tensor([0.5, 0.25, 0.75, 0.125, 0.625, 0.375, 0.875, 0.0625, 0.5625, 0.3125]))
print(a.requires_grad)

# Added for the corpus: the leaves' final grads (no backward ran, so None).
print(x.grad, a.grad)
