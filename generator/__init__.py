"""derive: step-by-step, torch-checked explanations of autograd examples."""

__version__ = "0.1.0"
