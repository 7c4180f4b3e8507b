"""Which results require gradients: exclusion from the DAG

The current blitz adds two tensors that do not require grad, then one that does, and prints requires_grad of
each sum. Source: https://pytorch.org/tutorials/beginner/blitz/autograd_tutorial.html, "Exclusion from the DAG".
"""
import torch

# The tutorial draws torch.rand(5, 5) three times; fixed values stand in for the random ones.
x = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5],
                  [0.6, 0.7, 0.8, 0.9, 1.0],
                  [0.15, 0.25, 0.35, 0.45, 0.55],
                  [0.65, 0.75, 0.85, 0.95, 0.05],
                  [0.5, 0.4, 0.3, 0.2, 0.1]])
y = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5],
                  [0.4, 0.3, 0.2, 0.1, 0.0],
                  [0.25, 0.5, 0.75, 0.125, 0.375],
                  [0.625, 0.875, 0.0625, 0.1875, 0.3125],
                  [0.4375, 0.5625, 0.6875, 0.8125, 0.9375]])
z = torch.tensor([[0.5, 0.25, 0.75, 0.125, 0.625],
                  [0.375, 0.875, 0.0625, 0.5625, 0.3125],
                  [0.8125, 0.1875, 0.6875, 0.4375, 0.9375],
                  [0.03125, 0.53125, 0.28125, 0.78125, 0.15625],
                  [0.65625, 0.40625, 0.90625, 0.09375, 0.59375]], requires_grad=True)

a = x + y
print(f"Does `a` require gradients?: {a.requires_grad}")
b = x + z
print(f"Does `b` require gradients?: {b.requires_grad}")

# Added for the corpus: the leaf's final grad (no backward ran, so None).
print(z.grad)
