"""What every op shares: the Op protocol, shapes and broadcasting, and the generic element's LaTeX helpers."""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterator, Protocol, Union

import numpy as np
import sympy as sp

Shape = tuple[int, ...]
Arg = Union[str, Fraction]  # a node's operand: another node's name, or a constant
Partial = tuple[int, int, int, sp.Expr]  # (output index, argument, argument index, d out / d arg)
# The array forms take each operand as a numpy array (or a sympy number for a constant) and return
# an op's local Jacobian as (argument, output indices, argument indices, values, masked) arrays:
# `masked` marks the zeros that torch applies with a mask (where), so that even nan or inf upstream stops.
Local = tuple[int, np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"]

MAX_LOCAL_ENTRIES = 16_000_000  # non-zero local derivatives one op may have in the array derivation

OPERAND = tuple(sp.Symbol(name, real=True) for name in ("a", "b", "c"))  # a generic element of each operand
OUT = sp.Symbol("o", real=True)  # the generic output element



def dotted_name(node: ast.AST) -> str:
    """Return a.b.c for a chain of names (torch.autograd.grad), else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else ""


class ShapeError(ValueError):
    """The operands' shapes do not fit the op."""


class ExprError(Exception):
    """A problem in one expression; the graph makes it a Problem at the step's line."""


@dataclass(frozen=True)
class Spelling:
    """How an expression writes an op (every spelling is the op's alone)."""

    names: tuple[str, ...] = ()  # x.name(...) and torch.name(x, ...)
    functional: tuple[str, ...] = ()  # torch.nn.functional.name(x, ...), which F.name(x, ...) reads as
    operator: type | None = None  # a Python operator: ast.Add for a + b, ast.USub for -a
    symbol: str = ""  # that operator as messages write it
    attribute: str = ""  # x.T
    after: str = ""  # a call the attribute follows, as messages write it: max(dim) for x.max(dim).values
    subscript: bool = False  # x[i]


class Walk(Protocol):
    """What an op may ask of the expression walker (graph/walk.py) while it binds its operands."""

    source: str  # the expression's text

    def visit(self, node: ast.AST, top: bool = False) -> Arg:
        """Return a sub-expression as a node's name, or a constant (top: as the step's own tensor)."""

    def tensor(self, node: ast.AST, what: str) -> str:
        """Return a sub-expression that must be a tensor, as its node's name."""

    def strided(self, name: str) -> bool:
        """Tell whether a tensor was computed through an op whose result is not in row-major order (a transpose)."""

    def make(self, key: str, args: list[Arg], params: dict[str, Any] | None = None, *, top: bool) -> str:
        """Add the node of op `key` on these operands; return its name."""

    def fold(self, op: Op, values: list[Fraction]) -> Fraction:
        """Return the op on constants, computed as Python does before torch sees it, in float64's range."""

    def requires_grad(self, name: str) -> bool:
        """Tell whether a tensor read so far requires grad."""

    def integers(self, name: str) -> tuple[Shape, tuple[int, ...]] | None:
        """Return an int64 input's shape and values, or None for any other tensor."""

    def boolean(self, name: str) -> bool:
        """Tell whether a tensor read so far is a bool tensor: the result of a comparison."""

    def shape_of(self, name: str) -> Shape:
        """Return the shape of a tensor read so far."""

    def applied(self, function: str) -> Any:
        """Return the record of F.apply(x) in the current step (input, forward, factor, mask...), if it makes one."""


def num(value: Any) -> str:
    """Write a constant for a message: 3, or 0.5."""
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 and abs(value) < 10**15 else str(float(value))
    return str(value)


def constant_tex(value: Any) -> str:
    r"""Return an op's number parameter in LaTeX: \frac{1}{3} as sympy writes it, an exact 1e-12 as 1 \times 10^{-12}."""
    if isinstance(value, Fraction):
        value = sp.Rational(value.numerator, value.denominator)
    if value.is_Rational and (value.q > 1000 or abs(value.p) > 10**6):
        mantissa, _, power = repr(float(value)).partition("e")  # the shortest decimal that reads back as the float
        if Fraction(repr(float(value))) == Fraction(int(value.p), int(value.q)):  # only where it is the number itself
            mantissa = mantissa.removesuffix(".0")
            return rf"{mantissa} \times 10^{{{int(power)}}}" if power else mantissa
    return sp.latex(value)


MAX_INT_DIGITS = 15  # digits of an integer argument (and of any number in an expression: graph/walk.py)


def bind_args(fname: str, args: list[ast.AST], kwargs: dict[str, ast.AST], names: tuple[str, ...],
              required: tuple[str, ...] = ()) -> dict[str, ast.AST]:
    """Match positional and keyword arguments to names, as Python would."""
    allowed = ", ".join(f"{n}=" for n in names) or "no arguments"
    if len(args) > len(names):
        raise ExprError(f"{fname}() takes at most {len(names)} argument(s) here, got {len(args)} (allowed: {allowed})")
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names:
            raise ExprError(f"{fname}() got an unknown argument '{key}' (allowed: {allowed})")
        if key in bound:
            raise ExprError(f"{fname}() got '{key}' twice (allowed: once)")
        bound[key] = value
    for key in required:
        if key not in bound:
            raise ExprError(f"{fname}() needs {key}= (allowed: {fname}(x, {key}=...))")
    return bound


def int_index(node: ast.AST) -> int:
    """Return an integer literal, negative or not, as an index."""
    value = node
    sign = 1
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
        sign, value = -1, value.operand
    if isinstance(value, ast.Constant) and type(value.value) is int and len(str(value.value)) <= MAX_INT_DIGITS:
        return sign * value.value
    raise ExprError("only integer indexing is allowed (allowed: x[i] with an integer i, chained as x[i][j])")


def sizes_arg(name: str, args: list[ast.AST], kwargs: dict[str, ast.AST], example: str) -> tuple[int, ...]:
    """Return the sizes of x.name(2, 3) or x.name((2, 3)) (view, reshape, expand); example shows a call's sizes."""
    if kwargs:
        raise ExprError(f"{name}() takes sizes only (allowed: x.{name}({example}), x.{name}(({example})), x.{name}(-1))")
    sizes = args[0].elts if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)) else args
    if not sizes:
        raise ExprError(f"{name}() needs the new sizes (allowed: x.{name}({example}))")
    return tuple(int_index(a) for a in sizes)


def int_arg(node: ast.AST | None, key: str) -> int | None:
    """Return an integer keyword argument such as dim=, or None when absent."""
    if node is None:
        return None
    try:
        return int_index(node)
    except ExprError:
        raise ExprError(f"{key}= must be an integer (allowed: an integer such as 0 or -1)") from None


def bool_arg(node: ast.AST | None, key: str) -> bool:
    """Return a True/False keyword argument such as keepdim=, False when absent."""
    if node is None:
        return False
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    raise ExprError(f"{key}= must be True or False (allowed: True, False)")


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
    spelling: Spelling = field(default=Spelling(), repr=False)
    # whether torch's backward keeps tensors of the forward, which a backward without retain_graph frees
    # (derivatives.yaml: add, sub, neg, sum, mean, transpose and select need only sizes and scalars)
    saves: bool = field(default=True, kw_only=True, repr=False)
    tracks: bool = field(default=True, kw_only=True, repr=False)  # False: its result never requires grad (detach)
    permutes: bool = field(default=False, kw_only=True, repr=False)  # its result is a strided view, not row-major (x.T)
    wraps_numbers: bool = field(default=False, kw_only=True, repr=False)  # torch makes a number operand a tensor (x + 1)
    # torch's float32 kernel is not correctly rounded (SLEEF's vectorized exp, log, sin, ... within an ulp or so):
    # derive cannot predict the last bit there, which the 17 digits of print(t.item()) show
    inexact32: bool = field(default=False, kw_only=True, repr=False)
    composite: bool = field(default=False, kw_only=True, repr=False)  # reading it makes other ops' nodes, never its own
    boolean: bool = field(default=False, kw_only=True, repr=False)  # its result is a bool tensor (x > 0), never differentiated
    integer: bool = field(default=False, kw_only=True, repr=False)  # its result is an int64 tensor of indices (argmax)
    conditions: tuple[int, ...] = field(default=(), kw_only=True, repr=False)  # the operands that may be bool tensors
    cut_kind: str = field(default="", kw_only=True, repr=False)  # what a document calls its cut, where tracks is False

    # -- reading an expression (graph/walk.py asks; the op binds its own arguments)

    def call(self, walk: Walk, name: str, subject: ast.AST, args: list[ast.AST], kwargs: dict[str, ast.AST],
             *, top: bool) -> Arg:
        """Read x.name(args) or torch.name(x, args): subject is x."""
        x = walk.tensor(subject, f"{name}'s operand")
        return walk.make(self.key, [x], self.call_params(walk, name, args, kwargs), top=top)

    def call_params(self, walk: Walk, name: str, args: list[ast.AST], kwargs: dict[str, ast.AST]) -> dict[str, Any]:
        """Return the op's parameters from a call's other arguments."""
        bind_args(name, args, kwargs, ())
        return {}

    def operate(self, walk: Walk, operands: list[Arg], *, top: bool) -> Arg:
        """Read an operator on operands already read (a + b, -a): constants are folded as Python does."""
        if not any(isinstance(x, str) for x in operands):
            return walk.fold(self, operands)
        return walk.make(self.key, operands, top=top)

    def fold(self, values: list[Fraction]) -> Fraction:
        """Return the op on constants exactly, or raise ExprError."""
        a, b = values
        raise ExprError(f"cannot compute {num(a)} {self.spelling.symbol} {num(b)} exactly"
                        " (allowed: + - * / on numbers, ** with an integer exponent)")

    def python_number(self, values: list[Fraction]) -> Fraction:
        """Return the op on numbers as Python computes it before torch sees the result, or raise ExprError."""
        raise ExprError(f"'{self.spelling.symbol}' of numbers (allowed: + - * / ** of numbers)")

    def attribute(self, walk: Walk, subject: ast.AST, *, top: bool) -> Arg:
        """Read x.attribute."""
        return walk.make(self.key, [walk.tensor(subject, f".{self.spelling.attribute}'s operand")], top=top)

    def subscript(self, walk: Walk, subject: ast.AST, index: ast.AST, *, top: bool) -> Arg:
        """Read x[index]."""
        raise NotImplementedError

    def exact_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Return the parameters as the exact forms take them."""
        return params

    # -- the behaviour

    def reads(self, index: int, requires: tuple[bool, ...], params: dict[str, Any]) -> bool:
        """Tell whether backward reads operand index's values (requires: which operands require grad)."""
        return self.saves

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

    def edges(self, consts: tuple[bool, ...], shapes: list[Shape], params: dict[str, Any]) -> tuple[int, ...] | None:
        """Return the operands torch's grad_fn links to, in order (its next_functions); None where it links to
        nodes of torch's own that the graph does not have. A number torch wraps as a tensor is linked as None,
        after the tensor: Python calls 2 * x as x.__rmul__(2), which is mul(x, 2)."""
        if self.wraps_numbers:
            return tuple(sorted(range(len(consts)), key=lambda i: consts[i]))
        return tuple(i for i, const in enumerate(consts) if not const)

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

    def forward_numbers(self, k: int, xs: list[Any], shapes: list[Shape], params: dict[str, Any],
                        number: Callable[[Any], str]) -> str | None:
        """Return the right side of forward_tex at output element k with the operands' numbers (number(x) writes one).

        xs holds each operand flat (float64) or a constant. None: the element's value is all there is to show.
        """
        return None

    def array_kinks(
        self, xs: list[Any], out: np.ndarray, shapes: list[Shape], params: dict[str, Any]
    ) -> Iterator[tuple[np.ndarray, str]]:
        """Yield (output indices, note key) where the op is not differentiable at these values."""
        return iter(())

    def product_form(self, a: int, shapes: list[Shape]) -> tuple[tuple[int | None, str], ...] | None:
        """Return operand a's whole gradient as a product of whole tensors, or None.

        Each factor is (operand index, or None for the upstream gradient; its layout: "as is", "transposed", or
        "col" and "row" a vector as a column or a row).
        """
        return None

    def array_fraction(
        self, a: int, xs: list[Any], out: np.ndarray, shapes: list[Shape], params: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Return d out / d operand a as (numerator, denominator) where torch's backward divides by it, else None."""
        return None

    # -- in a dtype: what torch does differently from the float64 arrays (engines/shadow.py)

    # An operand's terms that share an element come from a broadcast: torch adds them with its sum kernel
    # (sum_to_size), not one after another.
    broadcasts = False

    # Its sums (forward and backward) run in an order torch's kernel picks by CPU and size, as BLAS does for
    # matrix products: derive adds more than a few terms in one order of its own and says how much the order
    # moves the numbers (engines/shadow.py, order_spread).
    kernel_order = False

    # A kink concerns a whole group of the operand (tied extremes, a zero norm), not one element.
    kink_of_group = False
    # Where torch's class for grad_fn lives, as repr(t.grad_fn) writes it before the name ('' for torch's own ops).
    grad_fn_module = ""
    # Every element's local derivative is the same number (sum: 1, mean: 1/n).
    same_local = False
    # The local derivative is a share among tied extremes, found in the dtype itself (no forward error moves it).
    local_from_ties = False

    def dtype_params(self, cast: Any, params: dict[str, Any]) -> dict[str, Any]:
        """Return the exact parameters with their numbers as the dtype holds them."""
        return params

    def dtype_rounding(self, xs: list[Any], out: np.ndarray, shapes: list[Shape], params: dict[str, Any], *,
                       normal: float = 0.0) -> Any:
        """Return, per output element, the size of what the op's kernel rounds inside it (beyond its result), as it
        moves the result; normal is the dtype's smallest normal number (below it, rounding is absolute)."""
        return 0.0

    def dtype_constant(self, cast: Any, index: int, value: Any) -> Any:
        """Return constant operand index as torch holds it in cast's dtype: a Python number turned into the dtype."""
        return cast.constant(value)

    def dtype_forward(self, cast: Any, xs: list[Any], shapes: list[Shape], params: dict[str, Any]) -> np.ndarray:
        """Return the output as torch computes it in cast's dtype (cast(x) rounds, cast.sum adds in torch's order)."""
        return self.array_forward(xs, shapes, params)

    def dtype_local(self, cast: Any, xs: list[Any], out: np.ndarray, shapes: list[Shape],
                    params: dict[str, Any]) -> list[Local]:
        """Return the local Jacobian as torch's backward computes it in the dtype."""
        return self.array_local(xs, out, shapes, params)

    def vjp_rounding(self, a: int, upstream: np.ndarray, xs: list[Any], out: np.ndarray, shapes: list[Shape],
                     params: dict[str, Any]) -> np.ndarray | None:
        """Return, per element of operand a, the size of what torch's fused backward rounds on its way (beyond the
        local Jacobian's products), or None where there is nothing more."""
        return None

    def dtype_vjp(self, cast: Any, upstream: np.ndarray, out: np.ndarray, shape: Shape,
                  params: dict[str, Any], operands: list[Any]) -> np.ndarray | None:
        """Return the operand's gradient by torch's fused kernel in the dtype, or None to use the local Jacobian."""
        return None


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
    return up if local == "1" else rf"{up} \cdot {factor_tex(local)}"


def factor_tex(tex: str, *, wrap: bool = False) -> str:
    """Return LaTeX fit to stand after a product's dot: a leading minus (or wrap) puts it in parentheses."""
    return rf"\left({tex}\right)" if wrap or tex.lstrip().startswith("-") else tex


def summed(letters: list[str], body: str) -> str:
    """Return a sum over letters (none: the body itself)."""
    return rf"\sum_{{{','.join(letters)}}} {body}" if letters else body


def bare(tex: str) -> str:
    r"""Return a number without the \left( \right) that operand_tex puts around a negative one."""
    if tex.startswith(r"\left(") and tex.endswith(r"\right)"):
        return tex[len(r"\left("):-len(r"\right)")]
    return tex


MAX_TERMS = 4  # runs of equal terms a sum with numbers writes out; beyond, the first two, dots and the last


def sum_tex(terms: list[str]) -> str:
    """Return a sum of LaTeX terms; beyond MAX_TERMS, a run of n equal terms as n · term, and dots for middle runs."""
    if len(terms) <= MAX_TERMS:
        return " + ".join(terms)
    runs: list[list] = []
    for term in terms:
        if runs and runs[-1][0] == term:
            runs[-1][1] += 1
        else:
            runs.append([term, 1])
    shown = [term if n == 1 else rf"{n} \cdot {term}" for term, n in runs]
    if len(shown) > MAX_TERMS:
        shown = shown[:2] + [r"\cdots"] + shown[-1:]
    return " + ".join(shown)


def sum_tex_of(values: np.ndarray, term: Callable[[float], str]) -> str:
    """Return sum_tex of term(v) for each value, writing out only the terms it shows (a large group's are many)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size <= MAX_SCANNED:
        return sum_tex([term(float(v)) for v in values])
    # runs of equal terms from the left until a fifth begins (so dots follow), and the last run from the right
    runs: list[list] = []
    at = 0
    while at < values.size and len(runs) <= MAX_TERMS:
        text = term(float(values[at]))
        if runs and runs[-1][0] == text:
            runs[-1][1] += 1
        else:
            runs.append([text, 1])
        at += 1
    if len(runs) <= MAX_TERMS:  # few runs after all: every term was read
        return sum_tex([text for text, n in runs for _ in range(n)])
    last, end = term(float(values[-1])), values.size - 1
    while end > at - 1 and term(float(values[end - 1])) == last:
        end -= 1
    count = values.size - end
    shown = [text if n == 1 else rf"{n} \cdot {text}" for text, n in runs[:2]]
    return " + ".join(shown + [r"\cdots", last if count == 1 else rf"{count} \cdot {last}"])


MAX_SCANNED = 256  # terms of a sum written from all of them; beyond, from the few shown


def list_tex(items: list[str]) -> str:
    """Return a list of LaTeX items, the middle ones as dots beyond MAX_TERMS."""
    return ", ".join(items if len(items) <= MAX_TERMS else items[:2] + [r"\ldots"] + items[-1:])
