# derive: lang=zh
"""动手学深度学习: 非标量的反向传播用 y.sum().backward()

d2l-zh's autograd section (PyTorch tab): the gradient of 2 x^T x, clearing the accumulated gradient with
x.grad.zero_(), and for a vector y summing it before backward instead of passing a gradient.
Source: github.com/d2l-ai/d2l-zh chapter_preliminaries/autograd.md, 2.5.1-2.5.2 (notebook cells that display
a value are written as print(...)).
"""
import torch

x = torch.arange(4.0)
print(x)

x.requires_grad_(True)  # 等价于x=torch.arange(4.0,requires_grad=True)
print(x.grad)  # 默认值是None

y = 2 * torch.dot(x, x)
print(y)

y.backward()
print(x.grad)

print(x.grad == 4 * x)

# 在默认情况下，PyTorch会累积梯度，我们需要清除之前的值
x.grad.zero_()
y = x.sum()
y.backward()
print(x.grad)

# 对非标量调用backward需要传入一个gradient参数，该参数指定微分函数关于self的梯度。
# 本例只想求偏导数的和，所以传递一个1的梯度是合适的
x.grad.zero_()
y = x * x
# 等价于y.backward(torch.ones(len(x)))
y.sum().backward()
print(x.grad)
