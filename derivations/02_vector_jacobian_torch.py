"""Non-scalar output: y = 2x, and what y.backward(v) computes

y has three elements, so y.backward() needs a vector v. This is the vector-Jacobian product Jᵀ·v,
with v = [0.1, 1.0, 0.0001]. (The seed post's code as it stands, read by derive as a .py file; it also
prints y, so its printed block has one more line than 02_vector_jacobian.yaml's.)
"""
import torch

# 官方写法:随机数向量
# x = torch.randn(3, requires_grad=True)
# 我们换成全1向量
x = torch.ones(3, requires_grad=True)
# y不变
y = x * 2
# 这个操作我们也不要了
# while y.data.norm() < 1000:
#    y = y * 2

print(y)

# [0.1, 1.0, 0.0001] 分别是赋的x的值
v = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float)
y.backward(v)

print(x.grad)
