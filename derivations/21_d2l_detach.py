"""Detaching computation: z = u·x with u = (x·x).detach()

Dive into Deep Learning's autograd section moves part of a computation out of the graph: u holds the values
of y = x·x but not its history, so z = u·x sends back u, not 3x². Source: github.com/d2l-ai/d2l-en
chapter_preliminaries/autograd.md, "Detaching Computation" (its set-up lines from "A Simple Function").
"""
import torch

x = torch.arange(4.0)
x.requires_grad_(True)

y = x * x
u = y.detach()
z = u * x

z.sum().backward()
# d2l shows `x.grad == u` (all True); here both are printed, so the numbers can be compared
print(x.grad, u)
