"""micrograd's sanity check in torch: relu, products and a reused x

micrograd's test recomputes its scalar expression in float64 torch (x = -4, z = 2x + 2 + x, relu twice,
y = h + q + q x) and compares the gradient with micrograd's. Source: github.com/karpathy/micrograd
test/test_engine.py, test_sanity_check, the torch half (the comparison with micrograd replaced by prints).
"""
import torch

x = torch.Tensor([-4.0]).double()
x.requires_grad = True
z = 2 * x + 2 + x
q = z.relu() + z * x
h = (z * z).relu()
y = h + q + q * x
y.backward()
xpt, ypt = x, y

# forward pass went well
print(ypt.data.item())
# backward pass went well
print(xpt.grad.item())
