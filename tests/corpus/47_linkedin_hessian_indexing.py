"""functional.hessian of x[0]^2 + x[1]^3, a function that indexes its input

The course's Hessian cell: f indexes the elements of x, and hessian(f, x) is diag(2, 6 x[1]).
Source: github.com/LinkedInLearning/hands-on-ai-pytorch-machine-learning-4007017
"02_05 advanced autograd.ipynb", cell 4.
"""
import torch

# Compute Jacobian and Hessian

from torch.autograd.functional import hessian

def f(x):
    return (x[0] ** 2 + x[1] ** 3)

x = torch.tensor([1.0, 2.0], requires_grad=True)
hess = hessian(f, x)
print("Hessian matrix:\n", hess)

# Added for the corpus: the leaf's final grad (hessian does not accumulate into it, so None).
print(x.grad)
