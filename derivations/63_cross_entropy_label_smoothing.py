"""Label smoothing with class indices: 0.9 of the usual loss plus 0.1/3 of every class's -log p

F.cross_entropy(logits, Yb, label_smoothing=0.1) is what torch composes in aten/src/ATen/native/LossNLL.cpp: 0.9 times
the ordinary loss (LogSoftmaxBackward0, NllLossBackward0, MulBackward1) plus 0.1/3 times the mean over the rows of
-Σ log p over all three classes (SumBackward1, NegBackward0, MaskedFillBackward0, SumBackward0, DivBackward0,
MulBackward1), added by AddBackward0. Row by row the gradient is (softmax - target) / 2 with the target
0.9·one_hot + 0.1/3: the correct class is asked for 0.9333, the others for 0.0333, never for 1 and 0. The last row's
target is -100, torch's ignore_index: it adds nothing to either part, the mean counts 2 rows, and its gradient is 0.
"""
import torch
import torch.nn.functional as F

logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.2, 0.2, 3.0]], requires_grad=True)
Yb = torch.tensor([0, 1, -100])
loss = F.cross_entropy(logits, Yb, label_smoothing=0.1)
loss.backward()
print(loss)
print(logits.grad)
