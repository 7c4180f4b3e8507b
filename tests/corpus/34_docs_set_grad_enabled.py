"""torch.set_grad_enabled as a context manager and as a function

The docstring switches tracking off with a variable (is_train = False), then globally on and off again.
Source: github.com/pytorch/pytorch torch/autograd/grad_mode.py, class set_grad_enabled docstring
(displayed values written as print(...)).
"""
import torch

x = torch.tensor([1.], requires_grad=True)
is_train = False
with torch.set_grad_enabled(is_train):
    y = x * 2
print(y.requires_grad)
_ = torch.set_grad_enabled(True)
y = x * 2
print(y.requires_grad)
_ = torch.set_grad_enabled(False)
y = x * 2
print(y.requires_grad)

# Added for the corpus: the leaf's final grad (no backward ran, so None).
print(x.grad)
