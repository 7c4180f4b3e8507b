"""Disabling gradient tracking: torch.no_grad() and detach()

The Learn-the-Basics autograd page recomputes z = x @ w + b normally, inside torch.no_grad(), and through
z.detach(), printing requires_grad each time. Source: github.com/pytorch/tutorials
beginner_source/basics/autogradqs_tutorial.py, "Disabling Gradient Tracking" (with the page's set-up lines).
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

z = torch.matmul(x, w)+b
print(z.requires_grad)

with torch.no_grad():
    z = torch.matmul(x, w)+b
print(z.requires_grad)

z = torch.matmul(x, w)+b
z_det = z.detach()
print(z_det.requires_grad)

# Added for the corpus: the leaves' final grads (no backward ran, so None).
print(w.grad, b.grad)
