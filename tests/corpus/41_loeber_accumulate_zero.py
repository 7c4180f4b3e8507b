"""Python Engineer: gradients accumulate, so zero them in the training loop

Three epochs of model_output = sum(3 w): backward, print the grad, update under no_grad, then
weights.grad.zero_(). Source: github.com/patrickloeber/pytorchTutorial 03_autograd.py (last part).
"""
import torch

# -------------
# with backward() the gradient for this tensor will be accumulated into .grad attribute.
# !!! We need to be careful during optimization !!!
# Use .zero_() to empty the gradients before a new optimization step!
weights = torch.ones(4, requires_grad=True)

for epoch in range(3):
    # just a dummy example
    model_output = (weights*3).sum()
    model_output.backward()
    
    print(weights.grad)

    # optimize model, i.e. adjust weights...
    with torch.no_grad():
        weights -= 0.1 * weights.grad

    # this is important! It affects the final weights & output
    weights.grad.zero_()

print(weights)
print(model_output)
