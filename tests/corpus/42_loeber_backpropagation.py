"""Python Engineer: one forward and backward pass of a squared error, then an update

loss = (w x - y)^2 at x = 1, y = 2, w = 1; loss.backward() gives dLoss/dw = -2; the weight is updated under
no_grad and its grad zeroed. Source: github.com/patrickloeber/pytorchTutorial 04_backpropagation.py.
"""
import torch

x = torch.tensor(1.0)
y = torch.tensor(2.0)

# This is the parameter we want to optimize -> requires_grad=True
w = torch.tensor(1.0, requires_grad=True)

# forward pass to compute loss
y_predicted = w * x
loss = (y_predicted - y)**2
print(loss)

# backward pass to compute gradient dLoss/dw
loss.backward()
print(w.grad)

# update weights
# next forward and backward pass...

# continue optimizing:
# update weights, this operation should not be part of the computational graph
with torch.no_grad():
    w -= 0.01 * w.grad
# don't forget to zero the gradients
w.grad.zero_()

# next forward and backward pass...

# Added for the corpus: the leaf's value and final grad.
print(w, w.grad)
