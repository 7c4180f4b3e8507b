"""Gradient of a mean through y = x + 2 and z = 3y^2

The seed blog post's first example: a 2x2 leaf of ones, out = mean(3 (x + 2)^2), and x.grad after
out.backward() (4.5 everywhere). Source: 小白对pytorch的autograd的backward一些理解 (blog post, 2021-08-17,
written from https://pytorch123.com/SecondSection/autograd_automatic_differentiation/), the project's seed
shared/seed/000_109091ebb01c4ffb.txt, first code block.
"""
import torch

x = torch.ones(2, 2, requires_grad=True)
y = x + 2
z = y * y * 3
out = z.mean()

# 求梯度啦
out.backward()
# 打印x的梯度
print(x.grad)
