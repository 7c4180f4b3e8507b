"""A custom Function Square with a hand-written backward 2x

The course defines Square(Function) with save_for_backward and checks x.grad = 2x; here at x = [3, -1.5] (the course uses x = 3) and through y.sum().backward().
Source: github.com/LinkedInLearning/hands-on-ai-pytorch-machine-learning-4007017
"02_05 advanced autograd.ipynb", cell 3.
"""
import torch

# Custom Autograd function - manually define the forward and backward passes of a function 

# Define Square with custom backward

from torch.autograd import Function

class Square(Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input ** 2

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 2 * input

x = torch.tensor([3.0, -1.5], requires_grad=True)
square = Square.apply
y = square(x)
y.sum().backward()
print("Custom grad:", x.grad)  # Should be 2 * x = [6, -3]
