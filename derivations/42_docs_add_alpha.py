"""torch.add with alpha: other is scaled before it is added, and so is its gradient

The torch.add docstring adds b of shape 4 and c of shape 4x1 with alpha=10: out = b + 10 c, broadcast to 4x4.
After out.sum().backward(), each b element was used 4 times (b.grad = 4) and each c element 4 times with the
factor 10 (c.grad = 40). Source: github.com/pytorch/pytorch torch/_torch_docs.py, add docstring.
"""
import torch

# The docstring draws b = torch.randn(4) and c = torch.randn(4, 1); fixed values stand in.
b = torch.tensor([0.25, -1.5, 0.5, 2.0], requires_grad=True)
c = torch.tensor([[-0.5], [0.125], [1.0], [-2.25]], requires_grad=True)
out = torch.add(b, c, alpha=10)
print(out)
out.sum().backward()
print(b.grad)
print(c.grad)
