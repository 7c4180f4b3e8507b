"""A custom autograd Function: MyReLU with save_for_backward

"Learning PyTorch with Examples" defines ReLU as a torch.autograd.Function whose backward zeroes the
gradient where the input was negative, and trains a two-layer network with it. Source: github.com/pytorch/
tutorials beginner_source/examples_autograd/two_layer_net_custom_function.py.
"""
import torch


class MyReLU(torch.autograd.Function):
    """
    We can implement our own custom autograd Functions by subclassing
    torch.autograd.Function and implementing the forward and backward passes
    which operate on Tensors.
    """

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


dtype = torch.float
device = torch.device("cpu")

# N is batch size; D_in is input dimension;
# H is hidden dimension; D_out is output dimension.
# The tutorial uses 64, 1000, 100, 10 and random tensors; small sizes and fixed values stand in, and the
# 500 steps become 3.
N, D_in, H, D_out = 2, 3, 2, 1

x = torch.tensor([[1.0, -0.5, 0.25], [0.5, 1.5, -1.0]], device=device, dtype=dtype)
y = torch.tensor([[0.5], [-1.0]], device=device, dtype=dtype)

w1 = torch.tensor([[0.5, -0.25], [0.75, 0.5], [-0.5, 1.0]], device=device, dtype=dtype, requires_grad=True)
w2 = torch.tensor([[1.0], [-0.5]], device=device, dtype=dtype, requires_grad=True)

learning_rate = 1e-6
for t in range(3):
    # To apply our Function, we use Function.apply method. We alias this as 'relu'.
    relu = MyReLU.apply

    # Forward pass: compute predicted y using operations; we compute
    # ReLU using our custom autograd operation.
    y_pred = relu(x.mm(w1)).mm(w2)

    # Compute and print loss
    loss = (y_pred - y).pow(2).sum()
    print(t, loss.item())

    # Use autograd to compute the backward pass.
    loss.backward()

    # Update weights using gradient descent
    with torch.no_grad():
        w1 -= learning_rate * w1.grad
        w2 -= learning_rate * w2.grad

        # Manually zero the gradients after updating weights
        w1.grad.zero_()
        w2.grad.zero_()

# Added for the corpus: the leaves' final grads.
print(w1.grad)
print(w2.grad)
