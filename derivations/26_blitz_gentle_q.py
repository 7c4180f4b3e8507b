"""Q = 3a^3 - b^2 with an external gradient, checked against 9a^2 and -2b

The current blitz ("A Gentle Introduction to torch.autograd") differentiates a vector Q with respect to two
leaves by passing gradient=external_grad, then compares the grads with the hand-derived formulas.
Source: https://pytorch.org/tutorials/beginner/blitz/autograd_tutorial.html, "Differentiation in Autograd".
"""
import torch

a = torch.tensor([2., 3.], requires_grad=True)
b = torch.tensor([6., 4.], requires_grad=True)

Q = 3*a**3 - b**2

external_grad = torch.tensor([1., 1.])
Q.backward(gradient=external_grad)

# Check if collected gradients are correct
print(9*a**2 == a.grad)
print(-2*b == b.grad)
