"""动手学深度学习 (PyTorch 版): z = (2x).view(2, 2) and z.backward(v)

A non-scalar z needs a weight tensor of its shape: z.backward(v) computes the gradient of sum(z * v).
Source: github.com/ShusenTang/Dive-into-DL-PyTorch docs/chapter02_prerequisite/2.3_autograd.md, 2.3.3 "梯度"
("来看一些实际例子").
"""
import torch

x = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
y = 2 * x
z = y.view(2, 2)
print(z)

v = torch.tensor([[1.0, 0.1], [0.01, 0.001]], dtype=torch.float)
z.backward(v)
print(x.grad)
