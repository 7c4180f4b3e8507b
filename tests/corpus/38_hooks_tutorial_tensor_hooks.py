"""Tensor hooks that print and change gradients, with retain_grad on non-leaves

Elliot Waite's hooks tutorial registers hooks on a non-leaf c (one prints and adds 2, one only prints), on a
leaf d (adds 100) and on e (doubles), retains the grads of c and e, and prints every .grad after
e.backward(). Source: github.com/elliotwaite/pytorch-hooks-tutorial 1_tensor_hooks/2_with_hooks.py
("PyTorch Hooks Explained - In-depth Tutorial" video).
"""
import torch


a = torch.tensor(2.0, requires_grad=True)
b = torch.tensor(3.0, requires_grad=True)

c = a * b


def c_hook(grad):
    print(grad)
    return grad + 2


c.register_hook(c_hook)
c.register_hook(lambda grad: print(grad))
c.retain_grad()

d = torch.tensor(4.0, requires_grad=True)
d.register_hook(lambda grad: grad + 100)

e = c * d

e.retain_grad()
e.register_hook(lambda grad: grad * 2)
e.retain_grad() # second-time retain_grad() is NOP

e.backward()

print(f'a.grad {a.grad}')
print(f'b.grad {b.grad}')
print(f'c.grad {c.grad}')
print(f'd.grad {d.grad}')
print(f'e.grad {e.grad}')
