"""What every op shares: the Op protocol, shapes and broadcasting, and the generic element's LaTeX helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterator, Union

import numpy as np
import sympy as sp

Shape = tuple[int, ...]
Arg = Union[str, Fraction]  # a node's operand: another node's name, or a constant
Partial = tuple[int, int, int, sp.Expr]  # (output index, argument, argument index, d out / d arg)
# The vectorised forms take each operand as a numpy array (or a sympy number for a constant) and return
# an op's local Jacobian as (argument, output indices, argument indices, values, masked) arrays:
# `masked` marks the zeros that torch applies with a mask (where), so that even nan or inf upstream stops.
Local = tuple[int, np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"]

MAX_LOCAL_ENTRIES = 4_000_000  # non-zero local derivatives one op may have in the vectorised derivation

OPERAND = tuple(sp.Symbol(name, real=True) for name in ("a", "b"))  # a generic element of each operand
OUT = sp.Symbol("o", real=True)  # the generic output element

class ShapeError(ValueError):
    """The operands' shapes do not fit the op."""


def numel(shape: Shape) -> int:
    """Return the number of elements of a shape."""
    return math.prod(shape)


def strides(shape: Shape) -> tuple[int, ...]:
    """Return row-major strides in elements."""
    out, step = [], 1
    for size in reversed(shape):
        out.append(step)
        step *= size
    return tuple(reversed(out))


def unravel(flat: int, shape: Shape) -> tuple[int, ...]:
    """Return the multi-index of a flat row-major position."""
    return tuple((flat // s) % n for s, n in zip(strides(shape), shape))


def ravel(index: tuple[int, ...], shape: Shape) -> int:
    """Return the flat row-major position of a multi-index."""
    return sum(i * s for i, s in zip(index, strides(shape)))


def broadcast(*shapes: Shape) -> Shape:
    """Return the broadcast shape, by torch's rules."""
    ndim = max(len(s) for s in shapes)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    out = []
    for sizes in zip(*padded):
        big = {n for n in sizes if n != 1}
        if len(big) > 1:
            raise ShapeError(
                "shapes " + " and ".join(fmt_shape(s) for s in shapes) + " do not broadcast"
                " (allowed: sizes equal or 1, compared from the right)"
            )
        out.append(big.pop() if big else 1)
    return tuple(out)


def source_index(out_index: tuple[int, ...], shape: Shape) -> int:
    """Return the flat index that a broadcast output position reads from an operand."""
    tail = out_index[len(out_index) - len(shape):] if shape else ()
    return ravel(tuple(0 if n == 1 else i for i, n in zip(tail, shape)), shape)


def fmt_shape(shape: Shape) -> str:
    """Write a shape as torch does: [2, 3]."""
    return "[" + ", ".join(str(n) for n in shape) + "]"


def norm_dim(dim: int, ndim: int) -> int:
    """Return a non-negative dim, or raise ShapeError as torch would."""
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise ShapeError(f"dim {dim} is out of range for a {ndim}-d tensor (allowed: {-size} to {size - 1})")
    return dim % size


@dataclass(frozen=True)
class Op:
    """Base of every op; subclasses fill in the behaviour."""

    key: str
    rule: str
    grad_fn_name: str

    def shape(self, shapes: list[Shape], params: dict[str, Any]) -> Shape:
        """Return the output shape, or raise ShapeError."""
        raise NotImplementedError

    def forward(self, xs: list[list[sp.Expr]], shapes: list[Shape], params: dict[str, Any]) -> list[sp.Expr]:
        """Return the output elements as sympy expressions of the inputs' elements."""
        raise NotImplementedError

    def stable_forward(
        self, xs: list[list[sp.Expr]], values: list[list[sp.Expr]], shapes: list[Shape], params: dict[str, Any]
    ) -> list[sp.Expr]:
        """Return the output elements in the form torch computes them for these operand values."""
        return self.forward(xs, shapes, params)

    def partials(
        self, xs: list[list[sp.Expr]], outs: list[sp.Expr], shapes: list[Shape], params: dict[str, Any]
    ) -> Iterator[Partial]:
        """Yield every non-zero local derivative d out[k] / d arg[a][j]."""
        raise NotImplementedError

    def fused_vjp(
        self, upstream: list[sp.Expr], outs: list[sp.Expr], shapes: list[Shape], params: dict[str, Any]
    ) -> list[sp.Expr] | None:
        """Return the first operand's gradient as torch's fused formula gives it, or None to sum the local derivatives.

        The two agree on finite numbers; an op says so here where inf or nan in the upstream makes
        torch's order of operations give nan (inf - 0 * inf) where the sum of products would not.
        """
        return None

    def grad_fn(self, consts: tuple[bool, ...], shapes: list[Shape], params: dict[str, Any]) -> str:
        """Return torch's grad_fn name for this use of the op."""
        return self.grad_fn_name

    def rule_for(self, consts: tuple[bool, ...], same: bool) -> str:
        """Return the differentiation rule's name for this use (constants or a repeated operand)."""
        return self.rule

    def latex(self, ts: list[str], params: dict[str, Any]) -> str:
        """Return the op applied to LaTeX operands (parenthesised by the caller)."""
        raise NotImplementedError

    def kinks(
        self, xs: list[list[sp.Expr]], outs: list[sp.Expr], shapes: list[Shape], params: dict[str, Any]
    ) -> Iterator[tuple[int, str]]:
        """Yield (output index, note key) where the op is not differentiable at these values."""
        return iter(())

    def run(self, torch: Any, ts: list[Any], params: dict[str, Any]) -> Any:
        """Apply the op with real torch."""
        raise NotImplementedError

    def array_forward(self, xs: list[Any], shapes: list[Shape], params: dict[str, Any]) -> np.ndarray:
        """Return the output as a float64 array, computed on whole arrays at once."""
        raise NotImplementedError

    def forward_tex(self, out: str, args: list[TexOperand], out_shape: Shape, params: dict[str, Any]) -> str:
        """Return the equation of a generic output element: y_{ij} = x_{ij} + 2."""
        raise NotImplementedError

    def backward_tex(
        self, a: int, args: list[TexOperand], out: str, out_shape: Shape, params: dict[str, Any], up: Callable[[str], str]
    ) -> str:
        """Return what a generic element of operand a gets back through this op: Σ ∂L/∂out · ∂out/∂operand.

        up(element) writes the upstream derivative of one output element.
        """
        raise NotImplementedError

    def array_local(self, xs: list[Any], out: np.ndarray, shapes: list[Shape], params: dict[str, Any]) -> list[Local]:
        """Return the non-zero entries of the local Jacobian for each tensor operand, as arrays."""
        raise NotImplementedError

    def array_kinks(
        self, xs: list[Any], out: np.ndarray, shapes: list[Shape], params: dict[str, Any]
    ) -> Iterator[tuple[np.ndarray, str]]:
        """Yield (output indices, note key) where the op is not differentiable at these values."""
        return iter(())


def flat(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def checked(count: int, what: str) -> None:
    """Refuse an op whose local Jacobian has more non-zero entries than the derivation keeps."""
    if count > MAX_LOCAL_ENTRIES:
        raise ShapeError(
            f"{what} has {count} non-zero local derivatives (allowed: at most {MAX_LOCAL_ENTRIES})"
        )


# Generic elements, for documents of large examples: x_{ij} stands for every element.
LETTERS = "ijklmnpq"  # index letters, the tensor's own first


@dataclass(frozen=True)
class TexOperand:
    """An operand as a generic formula shows it: a tensor's LaTeX name and shape, or a constant."""

    tex: str
    shape: Shape | None = None  # None for a constant
    value: Any = None  # the constant, as a sympy number


def el(tex: str, index: list[str] | str) -> str:
    """Return an element: x_{ij}, x_{0j}, x_{12,j}; a 0-d tensor is its bare name."""
    parts = list(index)
    if not parts:
        return tex
    return f"{tex}_{{{('' if all(len(p) == 1 for p in parts) else ',').join(parts)}}}"


def free(used: str | list[str], count: int) -> list[str]:
    """Return count index letters not in used."""
    return [c for c in LETTERS if c not in used][:count]


def aligned(shape: Shape, letters: list[str], out_shape: Shape) -> list[str]:
    """Return a broadcast operand's index in the output's letters, 0 where it has size 1."""
    tail = letters[len(letters) - len(shape):] if shape else []
    return [c if n == m else "0" for c, n, m in zip(tail, shape, out_shape[len(out_shape) - len(shape):])]


def times(up: str, local: str) -> str:
    """Return upstream times a local derivative, leaving out a factor 1."""
    return up if local == "1" else rf"{up} \cdot {local}"


def summed(letters: list[str], body: str) -> str:
    """Return a sum over letters (none: the body itself)."""
    return rf"\sum_{{{','.join(letters)}}} {body}" if letters else body
