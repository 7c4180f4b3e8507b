"""动手学深度学习 (PyTorch 版): y3 = x^2 + x^3 with x^3 under no_grad

Only the x^2 part sends a gradient back, so x.grad is 2 at x = 1, not 5. Source: github.com/ShusenTang/
Dive-into-DL-PyTorch docs/chapter02_prerequisite/2.3_autograd.md, 2.3.3 "梯度" ("中断梯度追踪的例子").
"""
import torch

x = torch.tensor(1.0, requires_grad=True)
y1 = x ** 2 
with torch.no_grad():
    y2 = x ** 3
y3 = y1 + y2
    
print(x.requires_grad)
print(y1, y1.requires_grad) # True
print(y2, y2.requires_grad) # False
print(y3, y3.requires_grad) # True

y3.backward()
print(x.grad)
