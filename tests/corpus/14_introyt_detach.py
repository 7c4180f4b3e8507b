"""detach(): a copy without history

The intro series detaches a tensor that requires grad and prints both. Source: github.com/pytorch/tutorials
beginner_source/introyt/autogradyt_tutorial.py, "Turning Autograd Off and On", the detach() cell.
"""
import torch

# The tutorial draws x = torch.rand(5, requires_grad=True); fixed values stand in for the random ones.
x = torch.tensor([0.125, 0.5, 0.875, 0.25, 0.625], requires_grad=True)
y = x.detach()

print(x)
print(y)

# Added for the corpus: the leaf's final grad (no backward ran, so None).
print(x.grad)
