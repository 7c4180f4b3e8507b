"""A hook on a leaf that prints the gradient flowing through it

The course registers print_grad on x and backpropagates y = x^2 + 3x: the hook prints 2x + 3 = 7.
Source: github.com/LinkedInLearning/hands-on-ai-pytorch-machine-learning-4007017
"02_05 advanced autograd.ipynb", cell 5.
"""
import torch

# Hooks - inspect or modify gradients
# Print gradient as it flows

x = torch.tensor([2.0], requires_grad=True)

def print_grad(grad):
    print("Gradient flowing through:", grad)

x.register_hook(print_grad)

y = x**2 + 3*x
y.backward()

# Added for the corpus: the leaf's final grad.
print(x.grad)
