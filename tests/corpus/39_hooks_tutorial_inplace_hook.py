"""A hook that modifies the gradient in place and returns nothing

The hooks tutorial's warning case: d_hook multiplies its grad argument by 100 in place, which also changes
what other tensors receive. Source: github.com/elliotwaite/pytorch-hooks-tutorial
1_tensor_hooks/5_hook_with_in_place_operation.py.
"""
import torch


a = torch.tensor(2.0, requires_grad=True)
b = torch.tensor(3.0, requires_grad=True)

c = a * b
c.retain_grad()
d = torch.tensor(4.0, requires_grad=True)


def d_hook(grad):
    grad *= 100


d.register_hook(d_hook)

e = c + d
e.retain_grad()
e.backward()

print(f'a.grad {a.grad}')
print(f'b.grad {b.grad}')
print(f'c.grad {c.grad}')
print(f'd.grad {d.grad}')
print(f'e.grad {e.grad}')
