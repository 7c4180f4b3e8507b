"""backward(v) on a vector output: the vector-Jacobian product

The seed blog post's second example: y = 2x for a leaf of ones, then y.backward(v) with
v = [0.1, 1.0, 0.0001], printing y and x.grad. Source: 小白对pytorch的autograd的backward一些理解 (blog post,
2021-08-17), the project's seed shared/seed/000_109091ebb01c4ffb.txt, second and third code blocks.
"""
import torch

# 官方写法:随机数向量
# x = torch.randn(3, requires_grad=True)
# 我们换成全1向量
x = torch.ones(3, requires_grad=True)
# y不变
y = x * 2
# 这个操作我们也不要了,data.norm作用是对张量y每个元素进行平方,然后对它们求和,最后取平方根。
# 这些操作计算就是所谓的L2或欧几里德范数 。
# while y.data.norm() < 1000:
#    y = y * 2

print(y)

# [0.1, 1.0, 0.0001] 分别是赋的x的值
v = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float)
y.backward(v)

print(x.grad)
