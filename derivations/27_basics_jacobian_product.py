"""Three backward calls with retain_graph: gradients accumulate until zero_()

The Learn-the-Basics page calls out.backward(ones_like(out), retain_graph=True) twice on
out = (inp + 1)^2 transposed, prints the doubled gradient, zeroes inp.grad and calls it again.
Source: github.com/pytorch/tutorials beginner_source/basics/autogradqs_tutorial.py, "Optional Reading:
Tensor Gradients and Jacobian Products".
"""
import torch

inp = torch.eye(4, 5, requires_grad=True)
out = (inp+1).pow(2).t()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"First call\n{inp.grad}")
out.backward(torch.ones_like(out), retain_graph=True)
print(f"\nSecond call\n{inp.grad}")
inp.grad.zero_()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"\nCall after zeroing gradients\n{inp.grad}")
