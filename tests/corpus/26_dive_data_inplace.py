"""动手学深度学习 (PyTorch 版): changing x.data without autograd noticing

x.data *= 100 changes the value but is not recorded, so y = 2x still gives x.grad = 2. Source: github.com/
ShusenTang/Dive-into-DL-PyTorch docs/chapter02_prerequisite/2.3_autograd.md, 2.3.3 "梯度" (tensor.data).
"""
import torch

x = torch.ones(1,requires_grad=True)

print(x.data) # 还是一个tensor
print(x.data.requires_grad) # 但是已经是独立于计算图之外

y = 2 * x
x.data *= 100 # 只改变了值，不会记录在计算图，所以不会影响梯度传播

y.backward()
print(x) # 更改data的值也会影响tensor的值
print(x.grad)
