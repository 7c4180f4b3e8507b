"""Python Engineer's autograd tutorial: mean backward, a fixed loop, requires_grad_, detach, no_grad

Patrick Loeber's PyTorch tutorial 03 in order: z = mean(3 (x + 2)^2) and x.grad, y doubled in a for loop of
10 steps with y.backward(v), then the three ways to stop tracking. Source: github.com/patrickloeber/
pytorchTutorial 03_autograd.py (first three parts).
"""
import torch
# The autograd package provides automatic differentiation 
# for all operations on Tensors

# requires_grad = True -> tracks all operations on the tensor. 
# The tutorial draws every tensor with torch.randn; fixed values stand in for the random ones.
x = torch.tensor([0.5, -1.0, 1.5], requires_grad=True)
y = x + 2

# y was created as a result of an operation, so it has a grad_fn attribute.
# grad_fn: references a Function that has created the Tensor
print(x) # created by the user -> grad_fn is None
print(y)
print(y.grad_fn)

# Do more operations on y
z = y * y * 3
print(z)
z = z.mean()
print(z)

z.backward()
print(x.grad) # dz/dx

# -------------
# Model with non-scalar output:
# If a Tensor is non-scalar (more than 1 elements), we need to specify arguments for backward() 
# specify a gradient argument that is a tensor of matching shape.
# needed for vector-Jacobian product

x = torch.tensor([0.25, -0.75, 1.25], requires_grad=True)

y = x * 2
for _ in range(10):
    y = y * 2

print(y)
print(y.shape)

v = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float32)
y.backward(v)
print(x.grad)

# -------------
# Stop a tensor from tracking history:
# - x.requires_grad_(False)
# - x.detach()
# - wrap in 'with torch.no_grad():'

# .requires_grad_(...) changes an existing Tensor’s requires_grad flag in-place.
a = torch.tensor([[0.5, -1.5], [2.0, 0.25]])
print(a.requires_grad)
b = ((a * 3) / (a - 1))
print(b.grad_fn)
a.requires_grad_(True)
print(a.requires_grad)
b = (a * a).sum()
print(b.grad_fn)

# .detach(): get a new Tensor with the same content but no gradient computation:
a = torch.tensor([[1.0, -0.5], [0.75, 2.0]], requires_grad=True)
print(a.requires_grad)
b = a.detach()
print(b.requires_grad)

# wrap in 'with torch.no_grad():'
a = torch.tensor([[-1.25, 0.5], [0.25, 1.0]], requires_grad=True)
print(a.requires_grad)
with torch.no_grad():
    print((x ** 2).requires_grad)
