"""Training a two-layer ReLU network by hand: backward, no_grad update, grad.zero_()

"Learning PyTorch with Examples" (Justin Johnson, also CS231n's PyTorch example) trains y_pred =
relu(x w1) w2 with loss.backward(), updates the weights under torch.no_grad() and zeroes their grads.
Source: github.com/pytorch/tutorials beginner_source/examples_autograd/two_layer_net_autograd.py.
"""
import torch

dtype = torch.float
device = torch.device("cpu")
# device = torch.device("cuda:0") # Uncomment this to run on GPU

# N is batch size; D_in is input dimension;
# H is hidden dimension; D_out is output dimension.
# The tutorial uses 64, 1000, 100, 10 and random tensors; small sizes and fixed values stand in, and the
# 500 steps (printing every 100th) become 5 steps printing every one.
N, D_in, H, D_out = 2, 3, 2, 1

# Create random Tensors to hold input and outputs.
x = torch.tensor([[1.0, -0.5, 0.25], [0.5, 1.5, -1.0]], device=device, dtype=dtype)
y = torch.tensor([[0.5], [-1.0]], device=device, dtype=dtype)

# Create random Tensors for weights.
w1 = torch.tensor([[0.5, -0.25], [0.75, 0.5], [-0.5, 1.0]], device=device, dtype=dtype, requires_grad=True)
w2 = torch.tensor([[1.0], [-0.5]], device=device, dtype=dtype, requires_grad=True)

learning_rate = 1e-6
for t in range(5):
    # Forward pass: compute predicted y using operations on Tensors
    y_pred = x.mm(w1).clamp(min=0).mm(w2)

    # Compute and print loss using operations on Tensors.
    loss = (y_pred - y).pow(2).sum()
    print(t, loss.item())

    # Use autograd to compute the backward pass.
    loss.backward()

    # Manually update weights using gradient descent. Wrap in torch.no_grad()
    # because weights have requires_grad=True, but we don't need to track this
    # in autograd.
    with torch.no_grad():
        w1 -= learning_rate * w1.grad
        w2 -= learning_rate * w2.grad

        # Manually zero the gradients after updating weights
        w1.grad.zero_()
        w2.grad.zero_()

# Added for the corpus: the leaves' final grads.
print(w1.grad)
print(w2.grad)
