"""A one-layer network with binary cross-entropy: w.grad and b.grad

The Learn-the-Basics autograd page builds z = x @ w + b and a BCE-with-logits loss, prints the grad_fn of
z and of the loss, and reads w.grad and b.grad after loss.backward(). Source: github.com/pytorch/tutorials
beginner_source/basics/autogradqs_tutorial.py, "Automatic Differentiation with torch.autograd" and
"Computing Gradients".
"""
import torch

x = torch.ones(5)  # input tensor
y = torch.zeros(3)  # expected output
# The tutorial draws w = torch.randn(5, 3, ...) and b = torch.randn(3, ...); fixed values stand in.
w = torch.tensor([[0.5, -0.25, 1.0],
                  [-1.5, 0.75, 0.125],
                  [0.25, 0.5, -0.5],
                  [1.25, -1.0, 0.375],
                  [-0.625, 0.0625, 0.875]], requires_grad=True)
b = torch.tensor([0.1, -0.2, 0.3], requires_grad=True)
z = torch.matmul(x, w) + b
loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)

print(f"Gradient function for z = {z.grad_fn}")
print(f"Gradient function for loss = {loss.grad_fn}")

loss.backward()
print(w.grad)
print(b.grad)
