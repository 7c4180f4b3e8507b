"""Float64 math that gives the same bits on every CPU.

numpy picks its float64 kernels for exp, log, tanh, pow (and others) by the CPU it
runs on (AVX2, AVX-512), and OpenBLAS picks its matrix kernels the same way: the
last bit of a result, and so a committed output, would depend on the machine.
Here the transcendental functions are computed in long double by the C library
(one code path on every x86-64 CPU) and rounded once to float64, and products are
summed in a fixed order by plain additions, which are exact IEEE operations.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np


def _wide(f: Any) -> Any:
    """Return f computed in long double and rounded to float64."""

    def apply(*args: Any) -> Any:
        with np.errstate(all="ignore"):
            wide = f(*(np.asarray(a, dtype=np.longdouble) for a in args))
        return np.asarray(wide).astype(np.float64)[()]

    apply.__name__ = f.__name__
    return apply


exp = _wide(np.exp)
log = _wide(np.log)
sin = _wide(np.sin)
cos = _wide(np.cos)
tanh = _wide(np.tanh)
sinh = _wide(np.sinh)
cosh = _wide(np.cosh)
arcsin = _wide(np.arcsin)
arctan = _wide(np.arctan)
log1p = _wide(np.log1p)
expm1 = _wide(np.expm1)
erf = np.vectorize(math.erf, otypes=[np.float64])  # the C library's erf (numpy has none): one path on every CPU
power = _wide(np.power)


def matmul(a: Any, b: Any, cast: Callable[[np.ndarray], np.ndarray] | None = None,
           order: np.ndarray | None = None) -> np.ndarray:
    """Return a @ b for 1-d and 2-d float64 operands, summed in a fixed order (no BLAS).

    cast, if given, rounds each product and each partial sum, as a kernel in a narrower dtype does;
    order, if given, is the order of the inner index in which the products are added (else 0, 1, 2, ...).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    left = a if a.ndim == 2 else a[None, :]
    right = b if b.ndim == 2 else b[:, None]
    keep = cast or (lambda x: x)
    out = np.zeros((left.shape[0], right.shape[1]))
    with np.errstate(all="ignore"):
        for k in range(left.shape[1]) if order is None else order:  # one product and one addition per inner index
            out = keep(out + keep(left[:, k, None] * right[None, k, :]))
    if a.ndim == 1:
        out = out[0]
    if b.ndim == 1:
        out = out[..., 0]
    return out
