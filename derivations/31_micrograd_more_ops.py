"""micrograd's second test in torch: rebinding c, d and g many times

The torch half of micrograd's test_more_ops: powers, division, negation and relu, with c, d and g rebound
(`c = c + c + 1`, `g = g + 10.0 / f`) in float64. Source: github.com/karpathy/micrograd test/test_engine.py,
test_more_ops, the torch half (the comparison with micrograd replaced by prints).
"""
import torch

a = torch.Tensor([-4.0]).double()
b = torch.Tensor([2.0]).double()
a.requires_grad = True
b.requires_grad = True
c = a + b
d = a * b + b**3
c = c + c + 1
c = c + 1 + c + (-a)
d = d + d * 2 + (b + a).relu()
d = d + 3 * d + (b - a).relu()
e = c - d
f = e**2
g = f / 2.0
g = g + 10.0 / f
g.backward()
apt, bpt, gpt = a, b, g

# forward pass went well
print(gpt.data.item())
# backward pass went well
print(apt.grad.item())
print(bpt.grad.item())
