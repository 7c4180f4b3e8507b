"""Gradient is not the update: five steps of training one parameter

A course lab trains w in loss = (3w - 10)^2 for five steps with lr = 0.1: backward, update under no_grad,
print formatted values, zero the grad. Source: https://airoads.org/ch06-deep-learning/ch02-pytorch/02-autograd/,
"Lab 2: Gradient Is Not the Update".
"""
import torch

w = torch.tensor(2.0, requires_grad=True)
lr = 0.1

print("single_parameter_training")
for step in range(1, 6):
    loss = (w * 3 - 10) ** 2
    loss.backward()

    with torch.no_grad():
        w -= lr * w.grad

    print(
        f"step={step} "
        f"w={w.item():.4f} "
        f"loss={loss.item():.4f} "
        f"grad={w.grad.item():.4f}"
    )
    w.grad.zero_()
