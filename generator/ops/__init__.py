"""The registry of operations: one place per op for everything we know about it, one module per family.

Each op keeps together its spellings in an expression and the binding of its
arguments, its shape rule, its forward (exact, in sympy), its local derivatives
(torch's convention at kinks), the rule's name, torch's ``grad_fn`` name, how
torch runs it, its LaTeX, its forms on whole float64 arrays and for a generic
element, and what torch does differently in a dtype. Tensors are flat row-major
lists of sympy expressions; ``partials`` yields the non-zero entries of the op's
local Jacobian, so the derivation never touches the zeros. Nothing outside this
folder names an op: the graph finds one by its spelling (by_name, by_operator, ...).
"""

from __future__ import annotations

import ast

from .base import Op
from .conditions import CONDITIONS
from .convolution import CONVOLUTION
from .elementwise import ELEMENTWISE
from .function import FUNCTION, Applied
from .indexing import INDEXING
from .layers import LAYERS
from .layout import LAYOUT
from .linalg import LINALG
from .losses import LOSSES, REDUCTIONS as LOSS_REDUCTIONS
from .reductions import REDUCTIONS
from .softmax import SOFTMAX
from .targets import TARGETS

REGISTRY: dict[str, Op] = {op.key: op for op in ELEMENTWISE + REDUCTIONS + SOFTMAX + LINALG + INDEXING + LAYOUT + FUNCTION + LOSSES + TARGETS + LAYERS + CONDITIONS + CONVOLUTION}

# Every keyword argument an op's spelling takes (bind_args in each family), as the generated code writes it.
# (an activation's own come from its defaults: leaky_relu's negative_slope, gelu's approximate, ...)
KEYWORDS = ("dim", "keepdim", "min", "max", "exponent", "other", "target", "weight", "pos_weight", "reduction", "alpha",
            "inplace", "dim0", "dim1", "unbiased", "correction", "beta", "delta", "p", "eps", "training", "chunks", "ignore_index", "label_smoothing", "mask", "value",
            "split_size_or_sections", "bias", "normalized_shape", "stride", "padding", "dilation", "groups", *dict.fromkeys(k for op in REGISTRY.values() for k, _ in getattr(op, "defaults", ())))
# The keywords that take a string, and the strings each may take.
CHOICES = {"reduction": LOSS_REDUCTIONS, "p": ("fro",), **{k: v for op in REGISTRY.values() for k, v in getattr(op, "words", ())}}

# The order in which messages list the function names (a new op's names follow these).
LISTED = ("exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "sum", "mean", "norm", "max", "min",
          "pow", "softmax", "log_softmax", "clamp", "matmul")


def by_name(name: str) -> Op | None:
    """Return the op spelled x.name(), torch.name(x) or torch.nn.functional.name(x), if any."""
    return next((op for op in REGISTRY.values() if name in op.spelling.names + op.spelling.functional), None)


def by_operator(operator: type) -> Op | None:
    """Return the op a Python operator (ast.Add, ast.USub, ...) spells, if any."""
    return next((op for op in REGISTRY.values() if op.spelling.operator is operator), None)


def comparison(operator: ast.cmpop):
    """Return the comparison op an ast comparison (ast.Lt, ...) spells, or None for is, in and their negations."""
    op = by_operator(type(operator))
    return op if op is not None and op.boolean else None


def by_attribute(name: str) -> Op | None:
    """Return the op spelled x.name (no call), if any."""
    return next((op for op in REGISTRY.values() if op.spelling.attribute and op.spelling.attribute == name), None)


def by_subscript() -> Op | None:
    """Return the op spelled x[i], if any."""
    return next((op for op in REGISTRY.values() if op.spelling.subscript), None)


def function_names() -> list[str]:
    """Return every name an op is called by, in the order messages list them."""
    names = [n for op in REGISTRY.values() if not isinstance(op, Applied)  # F.apply: a Function's
             for n in dict.fromkeys(op.spelling.names + op.spelling.functional)]
    return sorted(names, key=lambda n: (LISTED.index(n) if n in LISTED else len(LISTED), names.index(n)))


def operator_symbols() -> str:
    """Return the binary operators, as messages list them: + - * / ** @."""
    return " ".join(op.spelling.symbol for op in REGISTRY.values()
                    if op.spelling.operator is not None and issubclass(op.spelling.operator, ast.operator))


def attributes(subject: str = "") -> str:
    """Return the attributes, as messages list them: .T (or x.T, given the subject x)."""
    return ", ".join(f"{subject}.{op.spelling.after + '.' if op.spelling.after else ''}{op.spelling.attribute}"
                     for op in REGISTRY.values() if op.spelling.attribute)


def operators() -> tuple[type, ...]:
    """Return every Python operator class (ast.Add, ast.USub, ...) that spells an op."""
    return tuple(op.spelling.operator for op in REGISTRY.values() if op.spelling.operator is not None)
