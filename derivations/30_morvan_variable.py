"""莫烦 PyTorch: a Variable, mean(v * v) and its gradient v / 2

Morvan's tutorial wraps a FloatTensor in the (old) Variable with requires_grad=True, compares it with the
plain tensor, and backpropagates v_out = mean(variable^2). Source: github.com/MorvanZhou/PyTorch-Tutorial
tutorial-contents/202_variable.py (the numpy print at the end left out).
"""
import torch
from torch.autograd import Variable

# Variable in torch is to build a computational graph,
# but this graph is dynamic compared with a static graph in Tensorflow or Theano.
# So torch does not have placeholder, torch can just pass variable to the computational graph.

tensor = torch.FloatTensor([[1,2],[3,4]])            # build a tensor
variable = Variable(tensor, requires_grad=True)      # build a variable, usually for compute gradients

print(tensor)       # [torch.FloatTensor of size 2x2]
print(variable)     # [torch.FloatTensor of size 2x2]

# till now the tensor and variable seem the same.
# However, the variable is a part of the graph, it's a part of the auto-gradient.

t_out = torch.mean(tensor*tensor)       # x^2
v_out = torch.mean(variable*variable)   # x^2
print(t_out)
print(v_out)    # 7.5

v_out.backward()    # backpropagation from v_out
# v_out = 1/4 * sum(variable*variable)
# the gradients w.r.t the variable, d(v_out)/d(variable) = 1/4*2*variable = variable/2
print(variable.grad)

print(variable)     # this is data in variable format

print(variable.data)    # this is data in tensor format
