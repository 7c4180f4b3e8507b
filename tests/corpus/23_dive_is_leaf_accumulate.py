"""动手学深度学习 (PyTorch 版): is_leaf, out.backward() and accumulating grads

Dive-into-DL-PyTorch prints grad_fn and is_leaf, backpropagates out = mean(3 (x + 2)^2), then shows that a
second backward adds to x.grad and that x.grad.data.zero_() resets it. Source: github.com/ShusenTang/
Dive-into-DL-PyTorch docs/chapter02_prerequisite/2.3_autograd.md, 2.3.2 "Tensor" and 2.3.3 "梯度".
"""
import torch

x = torch.ones(2, 2, requires_grad=True)
print(x)
print(x.grad_fn)

y = x + 2
print(y)
print(y.grad_fn)

print(x.is_leaf, y.is_leaf) # True False

z = y * y * 3
out = z.mean()
print(z, out)

# 原文用 a = torch.randn(2, 2)；这里用固定的数代替随机数。
a = torch.tensor([[0.5, -1.5], [2.0, 0.25]]) # 缺失情况下默认 requires_grad = False
a = ((a * 3) / (a - 1))
print(a.requires_grad) # False
a.requires_grad_(True)
print(a.requires_grad) # True
b = (a * a).sum()
print(b.grad_fn)

out.backward() # 等价于 out.backward(torch.tensor(1.))
print(x.grad)

# 再来反向传播一次，注意grad是累加的
out2 = x.sum()
out2.backward()
print(x.grad)

out3 = x.sum()
x.grad.data.zero_()
out3.backward()
print(x.grad)
