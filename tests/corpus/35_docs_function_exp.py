"""A custom autograd Function: Exp, saving its result for backward

The Function docstring's example: forward saves exp(i), backward multiplies the incoming gradient by it.
Source: github.com/pytorch/pytorch torch/autograd/function.py, class Function docstring ("Examples").
"""
import torch
from torch.autograd import Function

class Exp(Function):
    @staticmethod
    def forward(ctx, i):
        result = i.exp()
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, grad_output):
        result, = ctx.saved_tensors
        return grad_output * result

# The docstring leaves `input` undefined; a small leaf stands in for it, and backward and the print are
# added for the corpus.
input = torch.tensor([0.0, 0.5, 1.0], requires_grad=True)
# Use it by calling the apply method:
output = Exp.apply(input)
output.sum().backward()
print(output)
print(input.grad)
