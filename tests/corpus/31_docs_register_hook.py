"""Tensor.register_hook: doubling the gradient of a leaf

The docstring registers lambda grad: grad * 2 on v, so v.grad is twice the gradient passed to backward,
then removes the hook. Source: github.com/pytorch/pytorch torch/_tensor.py, Tensor.register_hook docstring
(the doctest's displayed value is written as print(...)).
"""
import torch

v = torch.tensor([0., 0., 0.], requires_grad=True)
h = v.register_hook(lambda grad: grad * 2)  # double the gradient
v.backward(torch.tensor([1., 2., 3.]))
print(v.grad)
h.remove()  # removes the hook
