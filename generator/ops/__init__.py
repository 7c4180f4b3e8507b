"""The registry of operations: one place per op for everything we know about it, one module per family.

Each op keeps together its shape rule, its forward (elementwise, in sympy), its
local derivatives (torch's convention at kinks), the rule's name, torch's
``grad_fn`` name, its torch function and its LaTeX. Tensors are flat row-major
lists of sympy expressions; ``partials`` yields the non-zero entries of the
op's local Jacobian, so the derivation never touches the zeros.
"""

from __future__ import annotations

from .base import Op
from .elementwise import ELEMENTWISE
from .indexing import INDEXING
from .linalg import LINALG
from .reductions import REDUCTIONS
from .softmax import SOFTMAX

REGISTRY: dict[str, Op] = {op.key: op for op in ELEMENTWISE + REDUCTIONS + SOFTMAX + LINALG + INDEXING}
