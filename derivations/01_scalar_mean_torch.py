"""Scalar output: out = mean(3(x + 2)²)

The first example of PyTorch's autograd tutorial: a 2×2 tensor of ones goes through three steps to
a single number, and out.backward() fills x.grad with 4.5 in every cell. Here is why.
"""
# The seed post's code as it stands, read (never run) by derive: the same document as 01_scalar_mean.yaml.
import torch

x = torch.ones(2, 2, requires_grad=True)
y = x + 2
z = y * y * 3
out = z.mean()

# 求梯度啦
out.backward()
# 打印x的梯度
print(x.grad)
