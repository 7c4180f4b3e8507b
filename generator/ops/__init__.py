"""The registry of operations: one place per op for everything we know about it.

Each op keeps together its shape rule, its forward (elementwise, in sympy), its
local derivatives (torch's convention at kinks), the rule's name, torch's
``grad_fn`` name, its torch function and its LaTeX. Tensors are flat row-major
lists of sympy expressions; ``partials`` yields the non-zero entries of the
op's local Jacobian, so the derivation never touches the zeros.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterator

import numpy as np
import sympy as sp

from ..floats.ieee import number
from .kinks import MASKS, Inside, NormShare, Positive, PowBase, PowLog, Printer, TieShare
from ..floats import fmath
from ..floats.numeric import numeric

Shape = tuple[int, ...]
Partial = tuple[int, int, int, sp.Expr]  # (output index, argument, argument index, d out / d arg)
# The vectorised forms take each operand as a numpy array (or a sympy number for a constant) and return
# an op's local Jacobian as (argument, output indices, argument indices, values, masked) arrays:
# `masked` marks the zeros that torch applies with a mask (where), so that even nan or inf upstream stops.
Local = tuple[int, np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"]

MAX_LOCAL_ENTRIES = 4_000_000  # non-zero local derivatives one op may have in the vectorised derivation

OPERAND = tuple(sp.Symbol(name, real=True) for name in ("a", "b"))  # a generic element of each operand
OUT = sp.Symbol("o", real=True)  # the generic output element

# Precedence, for parentheses in LaTeX.
SUM, PRODUCT, UNARY, POWER, ATOM = 1, 2, 3, 4, 5


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
    prec: int = ATOM
    arity: int = 1

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

    def vforward(self, xs: list[Any], shapes: list[Shape], params: dict[str, Any]) -> np.ndarray:
        """Return the output as a float64 array, computed on whole arrays at once."""
        raise NotImplementedError

    def forward_tex(self, out: str, args: list[Arg], out_shape: Shape, params: dict[str, Any]) -> str:
        """Return the equation of a generic output element: y_{ij} = x_{ij} + 2."""
        raise NotImplementedError

    def backward_tex(
        self, a: int, args: list[Arg], out: str, out_shape: Shape, params: dict[str, Any], up: Callable[[str], str]
    ) -> str:
        """Return what a generic element of operand a gets back through this op: Σ ∂L/∂out · ∂out/∂operand.

        up(element) writes the upstream derivative of one output element.
        """
        raise NotImplementedError

    def vlocal(self, xs: list[Any], out: np.ndarray, shapes: list[Shape], params: dict[str, Any]) -> list[Local]:
        """Return the non-zero entries of the local Jacobian for each tensor operand, as arrays."""
        raise NotImplementedError

    def vkinks(
        self, xs: list[Any], out: np.ndarray, shapes: list[Shape], params: dict[str, Any]
    ) -> Iterator[tuple[np.ndarray, str]]:
        """Yield (output indices, note key) where the op is not differentiable at these values."""
        return iter(())


def _flat(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _checked(count: int, what: str) -> None:
    """Refuse an op whose local Jacobian has more non-zero entries than the derivation keeps."""
    if count > MAX_LOCAL_ENTRIES:
        raise ShapeError(
            f"{what} has {count} non-zero local derivatives (allowed: at most {MAX_LOCAL_ENTRIES})"
        )


# Generic elements, for documents of large examples: x_{ij} stands for every element.
LETTERS = "ijklmnpq"  # index letters, the tensor's own first


@dataclass(frozen=True)
class Arg:
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


# ----------------------------------------------------------------------------
# Elementwise ops, with broadcasting


@lru_cache(maxsize=None)
def _generic(op: "Elementwise", consts: tuple[Any, ...], params: tuple[tuple[str, Any], ...]):
    """Return an elementwise op's forward and local derivatives on a generic element, derived once.

    consts holds each operand's constant value, or None where the operand is a tensor
    (written as the generic symbol a or b).
    """
    args = [OPERAND[i] if c is None else c for i, c in enumerate(consts)]
    kw = dict(params)
    return op.f(*args, **kw), tuple(d(*args, OUT, **kw) for d in op.df)


@dataclass(frozen=True)
class Elementwise(Op):
    """An op applied element by element; operands broadcast."""

    f: Callable[..., sp.Expr] = field(default=None, repr=False)  # forward on scalars
    df: tuple[Callable[..., sp.Expr], ...] = field(default=(), repr=False)  # d f / d arg, given (*args, out)
    tex: Callable[..., str] = field(default=None, repr=False)
    torch_fn: Callable[..., Any] = field(default=None, repr=False)
    kink_at: Callable[..., str | None] = field(default=None, repr=False)
    kink_mask: Callable[..., np.ndarray] = field(default=None, repr=False)  # kink_at on arrays
    kink_key: str = ""  # the note key kink_mask stands for
    const_rule: str = ""  # the rule when one operand is a constant

    def shape(self, shapes, params):
        return broadcast(*shapes)

    def generic(self, xs, params):
        """Return (forward, local derivatives) on a generic element, for these operands."""
        consts = tuple(None if isinstance(x, np.ndarray) else x for x in xs)
        return _generic(self, consts, tuple(sorted(params.items())))

    def _env(self, xs):
        return {OPERAND[i]: x for i, x in enumerate(xs) if isinstance(x, np.ndarray)}

    def vforward(self, xs, shapes, params):
        f, _ = self.generic(xs, params)
        return np.broadcast_to(numeric(f, self._env(xs)), broadcast(*shapes)).copy()

    def vlocal(self, xs, out, shapes, params):
        _, df = self.generic(xs, params)
        out_shape = broadcast(*shapes)
        env = {**self._env(xs), OUT: out}
        size = numel(out_shape)
        local = []
        for a, (x, d) in enumerate(zip(xs, df)):
            if not isinstance(x, np.ndarray):
                continue
            values = np.broadcast_to(numeric(d, env), out_shape).reshape(-1).copy()
            sources = np.broadcast_to(np.arange(x.size).reshape(shapes[a]), out_shape).reshape(-1)
            masked = values == 0 if isinstance(d, MASKS) else None
            local.append((a, np.arange(size), sources, values, masked))
        return local

    def forward_tex(self, out, args, out_shape, params):
        letters = list(LETTERS[: len(out_shape)])
        parts = [x.tex if x.shape is None else el(x.tex, aligned(x.shape, letters, out_shape)) for x in args]
        return f"{el(out, letters)} = {self.latex(parts, params)}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        own = list(LETTERS[: len(args[a].shape)])
        lead = len(out_shape) - len(own)
        extra = iter(free(own, len(out_shape)))
        letters = [next(extra) for _ in range(lead)]
        letters += [c if n == m else next(extra) for c, n, m in zip(own, args[a].shape, out_shape[lead:])]
        sums = [c for c in letters if c not in own]
        consts = tuple(None if x.shape is not None else x.value for x in args)
        _, df = _generic(self, consts, tuple(sorted(params.items())))
        names = {OUT: el(out, letters)}
        for i, x in enumerate(args):
            if x.shape is not None:
                names[OPERAND[i]] = el(x.tex, own if i == a else aligned(x.shape, letters, out_shape))
        local = Printer(names).doprint(df[a])
        if df[a].is_Add or df[a].could_extract_minus_sign():
            local = rf"\left({local}\right)"
        return summed(sums, times(up(el(out, letters)), local))

    def vkinks(self, xs, out, shapes, params):
        if self.kink_mask is None:
            return
        args = [x if isinstance(x, np.ndarray) else float(x) for x in xs]
        hits = np.broadcast_to(self.kink_mask(*args, **params), broadcast(*shapes)).reshape(-1)
        if hits.any():
            yield np.flatnonzero(hits), self.kink_key

    def rule_for(self, consts, same):
        if self.const_rule and any(consts):
            return self.const_rule
        if same and self.key == "mul":
            return "product rule, with the same factor twice"
        return self.rule

    def forward(self, xs, shapes, params):
        out_shape = broadcast(*shapes)
        result = []
        for k in range(numel(out_shape)):
            idx = unravel(k, out_shape)
            result.append(self.f(*(x[source_index(idx, s)] for x, s in zip(xs, shapes)), **params))
        return result

    def partials(self, xs, outs, shapes, params):
        out_shape = broadcast(*shapes)
        for k in range(numel(out_shape)):
            idx = unravel(k, out_shape)
            srcs = [source_index(idx, s) for s in shapes]
            args = [x[j] for x, j in zip(xs, srcs)]
            for a, d in enumerate(self.df):
                yield k, a, srcs[a], d(*args, outs[k], **params)

    def latex(self, ts, params):
        return self.tex(*ts, **params)

    def kinks(self, xs, outs, shapes, params):
        if self.kink_at is None:
            return
        out_shape = broadcast(*shapes)
        for k in range(numel(out_shape)):
            idx = unravel(k, out_shape)
            key = self.kink_at(*(x[source_index(idx, s)] for x, s in zip(xs, shapes)), **params)
            if key:
                yield k, key

    def run(self, torch, ts, params):
        return self.torch_fn(torch, *ts, **params)


def _binary(key, rule, grad_fn, prec, f, df, tex, torch_fn, **kw):
    return Elementwise(key, rule, grad_fn, prec, 2, f=f, df=df, tex=tex, torch_fn=torch_fn, **kw)


CONSTANT_TERM = "sum rule; a constant term has derivative 0"
CONSTANT_FACTOR = "constant multiple rule"


def _unary(key, rule, grad_fn, f, df, tex, torch_fn, prec=ATOM, kink=None):
    at, mask, note = (None, None, "") if kink is None else (_at_zero(kink), lambda a: a == 0, kink)
    return Elementwise(key, rule, grad_fn, prec, 1, f=f, df=(df,), tex=tex, torch_fn=torch_fn, kink_at=at,
                       kink_mask=mask, kink_key=note)


@dataclass(frozen=True)
class Pow(Elementwise):
    """a ** b: three grad_fns in torch, by which side is a constant."""

    def rule_for(self, consts, same):
        if consts[1]:
            return "power rule"
        return "exponential rule" if consts[0] else self.rule

    def grad_fn(self, consts, shapes, params):
        if consts[1]:
            return "PowBackward0"
        return "PowBackward2" if consts[0] else "PowBackward1"


@dataclass(frozen=True)
class Sub(Elementwise):
    """a - b: torch records a constant minus a tensor as RsubBackward1."""

    def grad_fn(self, consts, shapes, params):
        return "RsubBackward1" if consts[0] else "SubBackward0"


def _frac(a: str, b: str) -> str:
    return rf"\frac{{{a}}}{{{b}}}"


def _at_zero(key: str) -> Callable[..., str | None]:
    return lambda a: key if a == 0 else None


def _pow_kink(a, b):
    if a == 0 and b.is_number and b < 1 and b != 0:
        return "pow0"
    return None


def _clamp_kink(a, lo, hi):
    return "clamp_edge" if a == lo or a == hi else None


def _pow_kink_mask(a, b):
    return (a == 0) & (b < 1) & (b != 0)


def _clamp_kink_mask(a, lo, hi):
    return (a == float(lo)) | (a == float(hi))


def _clamp(a, lo, hi):
    return sp.Min(sp.Max(a, lo), hi)


def _clamp_tex(a, lo, hi):
    if lo == -sp.oo:
        return rf"\min\left({a}, {sp.latex(hi)}\right)"
    if hi == sp.oo:
        return rf"\max\left({a}, {sp.latex(lo)}\right)"
    return rf"\operatorname{{clamp}}\left({a}, {sp.latex(lo)}, {sp.latex(hi)}\right)"


def _clamp_torch(torch, t, lo, hi):
    kw = {}
    if lo is not None:
        kw["min"] = float(lo)
    if hi is not None:
        kw["max"] = float(hi)
    return torch.clamp(t, **kw)


def _sigmoid(a):
    return 1 / (1 + sp.exp(-a))


ELEMENTWISE = [
    _binary("add", "sum rule", "AddBackward0", SUM, lambda a, b: a + b,
            (lambda a, b, o: sp.Integer(1), lambda a, b, o: sp.Integer(1)),
            lambda a, b: f"{a} + {b}", lambda torch, a, b: a + b, const_rule=CONSTANT_TERM),
    Sub("sub", "difference rule", "SubBackward0", SUM, 2, f=lambda a, b: a - b,
        df=(lambda a, b, o: sp.Integer(1), lambda a, b, o: sp.Integer(-1)),
        tex=lambda a, b: f"{a} - {b}", torch_fn=lambda torch, a, b: a - b, const_rule=CONSTANT_TERM),
    _binary("mul", "product rule", "MulBackward0", PRODUCT, lambda a, b: a * b,
            (lambda a, b, o: b, lambda a, b, o: a),
            lambda a, b: rf"{a} \cdot {b}", lambda torch, a, b: a * b, const_rule=CONSTANT_FACTOR),
    _binary("div", "quotient rule", "DivBackward0", PRODUCT, lambda a, b: a / b,
            (lambda a, b, o: 1 / b, lambda a, b, o: -a / b**2),
            _frac, lambda torch, a, b: a / b, const_rule=CONSTANT_FACTOR),
    Pow("pow", "power rule and exponential rule", "PowBackward0", POWER, 2, f=lambda a, b: a**b,
        df=(lambda a, b, o: PowBase(a, b), lambda a, b, o: PowLog(a, b)),
        tex=lambda a, b: f"{{{a}}}^{{{b}}}", torch_fn=lambda torch, a, b: a**b, kink_at=_pow_kink,
        kink_mask=_pow_kink_mask, kink_key="pow0"),
    _unary("neg", "constant multiple rule", "NegBackward0", lambda a: -a, lambda a, o: sp.Integer(-1),
           lambda a: f"-{a}", lambda torch, a: -a, prec=UNARY),
    _unary("reciprocal", "power rule", "ReciprocalBackward0", lambda a: 1 / a, lambda a, o: -1 / a**2,
           lambda a: _frac("1", a), lambda torch, a: a.reciprocal(), kink="div0"),
    _unary("exp", "exponential rule", "ExpBackward0", sp.exp, lambda a, o: o,
           lambda a: rf"e^{{{a}}}", lambda torch, a: torch.exp(a)),
    _unary("log", "logarithm rule", "LogBackward0", sp.log, lambda a, o: 1 / a,
           lambda a: rf"\ln {a}", lambda torch, a: torch.log(a), kink="log0"),
    _unary("sqrt", "power rule", "SqrtBackward0", sp.sqrt, lambda a, o: 1 / (2 * o),
           lambda a: rf"\sqrt{{{a}}}", lambda torch, a: torch.sqrt(a), kink="sqrt0"),
    _unary("sin", "derivative of sine", "SinBackward0", sp.sin, lambda a, o: sp.cos(a),
           lambda a: rf"\sin {a}", lambda torch, a: torch.sin(a)),
    _unary("cos", "derivative of cosine", "CosBackward0", sp.cos, lambda a, o: -sp.sin(a),
           lambda a: rf"\cos {a}", lambda torch, a: torch.cos(a)),
    _unary("tanh", "derivative of tanh", "TanhBackward0", sp.tanh, lambda a, o: 1 - o**2,
           lambda a: rf"\tanh {a}", lambda torch, a: torch.tanh(a)),
    _unary("sigmoid", "derivative of the sigmoid", "SigmoidBackward0", _sigmoid, lambda a, o: o * (1 - o),
           lambda a: rf"\sigma\left({a}\right)", lambda torch, a: torch.sigmoid(a)),
    _unary("relu", "derivative of relu", "ReluBackward0", lambda a: sp.Max(0, a), lambda a, o: Positive(a),
           lambda a: rf"\operatorname{{relu}}\left({a}\right)", lambda torch, a: torch.relu(a),
           kink="relu0"),
    _unary("abs", "derivative of the absolute value", "AbsBackward0", sp.Abs, lambda a, o: sp.sign(a),
           lambda a: rf"\left|{a}\right|", lambda torch, a: torch.abs(a), kink="abs0"),
    Elementwise("clamp", "derivative of clamp", "ClampBackward1", ATOM, 1, f=_clamp,
                df=(lambda a, o, lo, hi: Inside(a, lo, hi),), tex=_clamp_tex, torch_fn=_clamp_torch,
                kink_at=_clamp_kink, kink_mask=_clamp_kink_mask, kink_key="clamp_edge"),
]


# ----------------------------------------------------------------------------
# Reductions and ops along a dim


def _reduce_groups(shape: Shape, dim: int | None, keepdim: bool) -> tuple[Shape, list[list[int]]]:
    """Return the output shape and, per output element, the input indices it reduces."""
    if dim is None:
        return ((1,) * len(shape) if keepdim else ()), [list(range(numel(shape)))]
    d = norm_dim(dim, len(shape))
    if not shape:
        return (), [[0]]
    out_shape = tuple(1 if i == d else n for i, n in enumerate(shape))
    groups = []
    for k in range(numel(out_shape)):
        idx = list(unravel(k, out_shape))
        members = []
        for m in range(shape[d]):
            idx[d] = m
            members.append(ravel(tuple(idx), shape))
        groups.append(members)
    if not keepdim:
        out_shape = tuple(n for i, n in enumerate(shape) if i != d)
    return out_shape, groups


@dataclass(frozen=True)
class Reduction(Op):
    """sum, mean, norm, max, min: one output element per group of inputs."""

    combine: Callable[[list[sp.Expr]], sp.Expr] = field(default=None, repr=False)
    d: Callable[[sp.Expr, list[sp.Expr], sp.Expr], sp.Expr] = field(default=None, repr=False)
    tex: Callable[..., str] = field(default=None, repr=False)
    method: str = ""
    dims: bool = False  # accepts dim= and keepdim=
    kink_at: Callable[[list[sp.Expr], sp.Expr], str | None] = field(default=None, repr=False)
    vcombine: Callable[[np.ndarray], np.ndarray] = field(default=None, repr=False)  # rows of members -> outputs
    vd: Callable[[np.ndarray, np.ndarray], np.ndarray] = field(default=None, repr=False)  # d out / d member, on rows

    def _index(self, shape: Shape, params: dict[str, Any]) -> tuple[Shape, np.ndarray]:
        out_shape, groups = _reduce_groups(shape, params.get("dim"), params.get("keepdim", False))
        return out_shape, np.array(groups, dtype=np.int64).reshape(len(groups), -1)

    def vforward(self, xs, shapes, params):
        out_shape, groups = self._index(shapes[0], params)
        return self.vcombine(_flat(xs[0])[groups]).reshape(out_shape)

    def vlocal(self, xs, out, shapes, params):
        _, groups = self._index(shapes[0], params)
        members, outs = _flat(xs[0])[groups], _flat(out)[:, None]
        values = np.broadcast_to(self.vd(members, outs), members.shape).reshape(-1).copy()
        rows = np.repeat(np.arange(groups.shape[0]), groups.shape[1])
        masked = values == 0 if self.key in ("max", "min") else None  # TieShare is applied as a mask
        return [(0, rows, groups.reshape(-1), values, masked)]

    def _letters(self, shape: Shape, params: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
        """Return the operand's letters, the output element's index and the letters summed over."""
        own = list(LETTERS[: len(shape)])
        dim, keep = params.get("dim"), params.get("keepdim", False)
        if dim is None:
            return own, ["0"] * len(own) if keep else [], own
        d = norm_dim(dim, len(shape))
        if not shape:
            return own, [], []
        index = [("0" if keep else None) if i == d else c for i, c in enumerate(own)]
        return own, [c for c in index if c is not None], [own[d]]

    def forward_tex(self, out, args, out_shape, params):
        x = args[0]
        own, index, over = self._letters(x.shape, params)
        n = numel(x.shape) if params.get("dim") is None else (x.shape[norm_dim(params["dim"], len(x.shape))] if x.shape else 1)
        body = el(x.tex, own)
        rhs = {
            "sum": summed(over, body),
            "mean": rf"\frac{{1}}{{{n}}} " + summed(over, body),
            "norm": rf"\sqrt{{{summed(over, '{' + body + '}^{2}')}}}",
            "max": rf"\max_{{{','.join(over)}}} {body}" if over else body,
            "min": rf"\min_{{{','.join(over)}}} {body}" if over else body,
        }[self.key]
        return f"{el(out, index)} = {rhs}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        x = args[0]
        own, index, _ = self._letters(x.shape, params)
        n = numel(x.shape) if params.get("dim") is None else (x.shape[norm_dim(params["dim"], len(x.shape))] if x.shape else 1)
        a_sym = OPERAND[0]
        local = self.d(a_sym, [a_sym] * (2 if self.key in ("max", "min") else n), OUT)
        text = Printer({a_sym: el(x.tex, own), OUT: el(out, index)}).doprint(local)
        return times(up(el(out, index)), text)

    def vkinks(self, xs, out, shapes, params):
        if self.kink_at is None:
            return
        _, groups = self._index(shapes[0], params)
        members, outs = _flat(xs[0])[groups], _flat(out)
        if self.key == "norm":
            hits = outs == 0
        else:
            hits = (members == outs[:, None]).sum(axis=1) > 1
        if hits.any():
            yield np.flatnonzero(hits), "norm0" if self.key == "norm" else "tie"

    def shape(self, shapes, params):
        if not self.dims and not shapes[0]:
            return ()
        return _reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))[0]

    def forward(self, xs, shapes, params):
        groups = _reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))[1]
        return [self.combine([xs[0][j] for j in g]) for g in groups]

    def partials(self, xs, outs, shapes, params):
        groups = _reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))[1]
        for k, g in enumerate(groups):
            members = [xs[0][j] for j in g]
            for j in g:
                yield k, 0, j, self.d(xs[0][j], members, outs[k])

    def grad_fn(self, consts, shapes, params):
        if params.get("dim") is not None:
            return self.grad_fn_name[:-1] + "1"  # SumBackward1, MeanBackward1
        return self.grad_fn_name

    def latex(self, ts, params):
        return self.tex(ts[0], params)

    def kinks(self, xs, outs, shapes, params):
        groups = _reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))[1]
        for k, g in enumerate(groups):
            key = self.kink_at([xs[0][j] for j in g], outs[k]) if self.kink_at else None
            if key:
                yield k, key

    def run(self, torch, ts, params):
        kw = {k: v for k, v in params.items() if v is not None}
        return getattr(ts[0], self.method)(**kw)



def _dim_suffix(params: dict[str, Any]) -> str:
    return "" if params.get("dim") is None else rf"_{{\text{{dim}}={params['dim']}}}"


def _extreme_share(a, members, out):
    return TieShare(a, out, *members)


def _tie(members, out):
    return "tie" if sum(1 for m in members if m == out) > 1 else None


def _tie_share(members: np.ndarray, outs: np.ndarray) -> np.ndarray:
    """max'/min' on rows of members: 1/k for each of k tied extremes (nan ties with nan, as torch)."""
    tied = (members == outs) | (np.isnan(members) & np.isnan(outs))
    return tied / tied.sum(axis=1, keepdims=True)


REDUCTIONS = [
    Reduction("sum", "sum rule", "SumBackward0", ATOM, 1, combine=lambda m: sp.Add(*m),
              d=lambda a, m, o: sp.Integer(1), tex=lambda t, p: rf"\operatorname{{sum}}{_dim_suffix(p)}\left({t}\right)",
              method="sum", dims=True, vcombine=lambda m: m.sum(axis=1), vd=lambda m, o: np.ones_like(m)),
    Reduction("mean", "sum rule and constant multiple rule", "MeanBackward0", ATOM, 1,
              combine=lambda m: sp.Mul(sp.Rational(1, len(m)), sp.Add(*m), evaluate=False), d=lambda a, m, o: sp.Rational(1, len(m)),
              tex=lambda t, p: rf"\operatorname{{mean}}{_dim_suffix(p)}\left({t}\right)", method="mean", dims=True,
              vcombine=lambda m: m.mean(axis=1), vd=lambda m, o: np.full_like(m, 1 / m.shape[1])),
    Reduction("norm", "chain rule with the power rule", "LinalgVectorNormBackward0", ATOM, 1,
              # torch takes one element's norm as its abs, without squaring it out of float64's range
              combine=lambda m: sp.Abs(m[0]) if len(m) == 1 else sp.sqrt(sp.Add(*(e**2 for e in m))),
              d=lambda a, m, o: NormShare(a, o),
              tex=lambda t, p: rf"\left\lVert {t} \right\rVert", method="norm",
              kink_at=lambda m, o: "norm0" if o == 0 else None,
              vcombine=lambda m: np.abs(m[:, 0]) if m.shape[1] == 1 else np.sqrt((m * m).sum(axis=1)),
              vd=NormShare.numeric),
    Reduction("max", "derivative of max", "MaxBackward1", ATOM, 1, combine=lambda m: sp.Max(*m),
              d=_extreme_share, tex=lambda t, p: rf"\max\left({t}\right)", method="max", kink_at=_tie,
              vcombine=lambda m: m.max(axis=1), vd=_tie_share),
    Reduction("min", "derivative of min", "MinBackward1", ATOM, 1, combine=lambda m: sp.Min(*m),
              d=_extreme_share, tex=lambda t, p: rf"\min\left({t}\right)", method="min", kink_at=_tie,
              vcombine=lambda m: m.min(axis=1), vd=_tie_share),
]




STABLE_SHIFT = 700  # softmax shifts a group by its maximum when that is larger in size (e^709 ≈ 8e307)


@dataclass(frozen=True)
class Softmax(Op):
    """softmax and log_softmax along dim."""

    log: bool = False

    def shape(self, shapes, params):
        dim = norm_dim(params["dim"], len(shapes[0]))
        size = shapes[0][dim] if shapes[0] else 1
        _checked(numel(shapes[0]) * size, f"{self.key} along a dim of {size}")
        return shapes[0]

    def _groups(self, shape, params):
        return _reduce_groups(shape, params["dim"], True)[1]

    def forward(self, xs, shapes, params):
        return self._formula(xs[0], [sp.Integer(0)] * len(xs[0]), shapes, params)

    def stable_forward(self, xs, values, shapes, params):
        # torch subtracts each group's maximum before exp; the exact result is the same, but only
        # the shifted form keeps exp in float64's range when an element is beyond about ±709
        shifts = [sp.Integer(0)] * len(xs[0])
        for g in self._groups(shapes[0], params):
            group = [values[0][j] for j in g]
            if not all(v.is_finite for v in group):
                continue  # inf and nan propagate as they do unshifted
            top = max(group, key=number)
            if abs(number(top)) > STABLE_SHIFT:
                for j in g:
                    shifts[j] = top
        return self._formula(xs[0], shifts, shapes, params)

    def _formula(self, a, shifts, shapes, params):
        out: list[sp.Expr] = [sp.Integer(0)] * len(a)
        # unevaluated, or sympy would pull exp(-m) out of exp(x - m) again
        xs = [[sp.Add(x, -m, evaluate=False) if m else x for x, m in zip(a, shifts)]]
        for g in self._groups(shapes[0], params):
            exps = {j: sp.exp(xs[0][j], evaluate=not shifts[j]) for j in g}
            total = sp.Add(*exps.values())
            for j in g:
                # unevaluated, so that exp(a) / exp(a) is not cancelled before a is known (nan stays nan)
                if self.log:
                    out[j] = sp.Add(xs[0][j], sp.Mul(-1, sp.log(total), evaluate=False), evaluate=False)
                else:
                    out[j] = sp.Mul(exps[j], sp.Pow(total, -1, evaluate=False), evaluate=False)
        return out

    def partials(self, xs, outs, shapes, params):
        for g in self._groups(shapes[0], params):
            for k in g:
                for m in g:
                    delta = sp.Integer(1 if k == m else 0)
                    if self.log:
                        yield k, 0, m, delta - sp.exp(outs[m])
                    else:
                        yield k, 0, m, outs[k] * (delta - outs[m])

    def fused_vjp(self, upstream, outs, shapes, params):
        if all(g.is_finite for g in upstream):
            return None
        grad: list[sp.Expr] = [sp.Integer(0)] * len(outs)
        for g in self._groups(shapes[0], params):
            if self.log:  # torch: grad - exp(out) * grad.sum(dim)
                total = sp.Add(*(upstream[k] for k in g))
                for m in g:
                    grad[m] = upstream[m] - sp.exp(outs[m]) * total
            else:  # torch: out * (grad - (grad * out).sum(dim))
                total = sp.Add(*(upstream[k] * outs[k] for k in g))
                for m in g:
                    grad[m] = outs[m] * (upstream[m] - total)
        return grad

    def _index(self, shape, params):
        return np.array(self._groups(shape, params), dtype=np.int64)

    def vforward(self, xs, shapes, params):
        groups = self._index(shapes[0], params)
        members = _flat(xs[0])[groups]
        shifted = members - members.max(axis=1, keepdims=True)  # as torch: exp never overflows
        total = fmath.exp(shifted).sum(axis=1, keepdims=True)
        rows = shifted - fmath.log(total) if self.log else fmath.exp(shifted) / total
        out = np.empty(xs[0].size)
        out[groups] = rows
        return out.reshape(shapes[0])

    def vlocal(self, xs, out, shapes, params):
        groups = self._index(shapes[0], params)
        o = _flat(out)[groups]
        delta = np.eye(groups.shape[1])
        if self.log:
            values = delta[None, :, :] - fmath.exp(o)[:, None, :]
        else:
            values = o[:, :, None] * (delta[None, :, :] - o[:, None, :])
        rows = np.broadcast_to(groups[:, :, None], values.shape).reshape(-1)
        cols = np.broadcast_to(groups[:, None, :], values.shape).reshape(-1)
        return [(0, rows, cols, values.reshape(-1), None)]

    def _letters(self, shape, params):
        own = list(LETTERS[: len(shape)])
        d = norm_dim(params["dim"], len(shape))
        (k,) = free(own, 1)
        other = list(own)
        if other:
            other[d] = k
        return own, other, k, (own[d] if own else "0")

    def forward_tex(self, out, args, out_shape, params):
        x = args[0]
        own, other, k, _ = self._letters(x.shape, params)
        total = summed([k] if own else [], rf"e^{{{el(x.tex, other)}}}")
        if self.log:
            return rf"{el(out, own)} = {el(x.tex, own)} - \ln {total}"
        return rf"{el(out, own)} = \frac{{e^{{{el(x.tex, own)}}}}}{{{total}}}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        x = args[0]
        own, other, k, mine = self._letters(x.shape, params)
        delta = rf"\delta_{{{k}{mine}}}" if own else "1"
        if self.log:
            local = rf"\left({delta} - e^{{{el(out, own)}}}\right)"
        else:
            local = rf"{el(out, other)} \left({delta} - {el(out, own)}\right)"
        return summed([k] if own else [], times(up(el(out, other)), local))

    def latex(self, ts, params):
        name = "log\\_softmax" if self.log else "softmax"
        return rf"\operatorname{{{name}}}_{{\text{{dim}}={params['dim']}}}\left({ts[0]}\right)"

    def run(self, torch, ts, params):
        return (torch.log_softmax if self.log else torch.softmax)(ts[0], dim=params["dim"])


# ----------------------------------------------------------------------------
# Linear algebra and shape ops


@dataclass(frozen=True)
class Matmul(Op):
    """a @ b for 1-d and 2-d operands, as torch.matmul."""

    def shape(self, shapes, params):
        a, b = shapes
        if not a or not b or len(a) > 2 or len(b) > 2:
            raise ShapeError(
                f"@ needs 1-d or 2-d operands, got {fmt_shape(a)} and {fmt_shape(b)} (allowed: vectors and matrices)"
            )
        if a[-1] != b[0]:
            raise ShapeError(
                f"@ cannot multiply {fmt_shape(a)} by {fmt_shape(b)}: {a[-1]} != {b[0]}"
                " (allowed: the inner sizes equal)"
            )
        _checked(numel(a[:-1] + b[1:]) * a[-1], f"{fmt_shape(a)} @ {fmt_shape(b)}")
        return a[:-1] + b[1:]

    def _terms(self, shapes):
        """Yield (out index, a index, b index) for every product in the sums."""
        a, b = shapes
        rows = a[0] if len(a) == 2 else 1
        inner = a[-1]
        cols = b[1] if len(b) == 2 else 1
        for i in range(rows):
            for j in range(cols):
                for k in range(inner):
                    yield i * cols + j, i * inner + k, k * cols + j

    def forward(self, xs, shapes, params):
        out_shape = self.shape(shapes, params)
        total: list[list[sp.Expr]] = [[] for _ in range(max(numel(out_shape), 1))]
        for o, i, j in self._terms(shapes):
            total[o].append(xs[0][i] * xs[1][j])
        return [sp.Add(*t) for t in total]

    def partials(self, xs, outs, shapes, params):
        for o, i, j in self._terms(shapes):
            yield o, 0, i, xs[1][j]
            yield o, 1, j, xs[0][i]

    def _grid(self, shapes):
        a, b = shapes
        rows, inner, cols = (a[0] if len(a) == 2 else 1), a[-1], (b[1] if len(b) == 2 else 1)
        i, j, k = (g.reshape(-1) for g in np.indices((rows, cols, inner)))
        return i * cols + j, i * inner + k, k * cols + j

    def vforward(self, xs, shapes, params):
        return fmath.matmul(xs[0], xs[1])

    @staticmethod
    def _roles(shapes: list[Shape], given: dict[str, str]) -> dict[str, str]:
        """Name the row (r), inner (n) and column (c) letters, keeping those given."""
        rest = iter(free(list(given.values()), 3))
        return {role: given.get(role) or next(rest) for role in "rnc"}

    @staticmethod
    def _indices(shapes: list[Shape], role: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
        a, b = shapes
        ia = [role["r"], role["n"]] if len(a) == 2 else [role["n"]]
        ib = [role["n"], role["c"]] if len(b) == 2 else [role["n"]]
        io = ([role["r"]] if len(a) == 2 else []) + ([role["c"]] if len(b) == 2 else [])
        return ia, ib, io

    def forward_tex(self, out, args, out_shape, params):
        shapes = [x.shape for x in args]
        given = dict(zip("rc", LETTERS)) if len(shapes[0]) == 2 else {"c": "i"}
        ia, ib, io = self._indices(shapes, self._roles(shapes, given))
        inner = ia[-1]
        return rf"{el(out, io)} = \sum_{{{inner}}} {el(args[0].tex, ia)} {el(args[1].tex, ib)}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        shapes = [x.shape for x in args]
        own = dict(zip("rn" if len(shapes[0]) == 2 else "n", LETTERS)) if a == 0 else dict(
            zip("nc" if len(shapes[1]) == 2 else "n", LETTERS))
        role = self._roles(shapes, own)
        ia, ib, io = self._indices(shapes, role)
        other = el(args[1].tex, ib) if a == 0 else el(args[0].tex, ia)
        free_role = "c" if a == 0 else "r"
        over = [role[free_role]] if role[free_role] in io else []
        return summed(over, times(up(el(out, io)), other))

    def vlocal(self, xs, out, shapes, params):
        o, ia, jb = self._grid(shapes)
        return [(0, o, ia, _flat(xs[1])[jb], None), (1, o, jb, _flat(xs[0])[ia], None)]

    def grad_fn(self, consts, shapes, params):
        a, b = (len(s) for s in shapes)
        return {(1, 1): "DotBackward0", (2, 1): "MvBackward0", (2, 2): "MmBackward0"}.get((a, b), "SqueezeBackward4")

    def latex(self, ts, params):
        return rf"{ts[0]} {ts[1]}"

    def run(self, torch, ts, params):
        return ts[0] @ ts[1]


@dataclass(frozen=True)
class Transpose(Op):
    """x.T for a 2-d tensor."""

    def shape(self, shapes, params):
        if len(shapes[0]) != 2:
            raise ShapeError(f".T needs a 2-d tensor, got {fmt_shape(shapes[0])} (allowed: matrices)")
        return shapes[0][::-1]

    def forward(self, xs, shapes, params):
        rows, cols = shapes[0]
        return [xs[0][i * cols + j] for j in range(cols) for i in range(rows)]

    def partials(self, xs, outs, shapes, params):
        rows, cols = shapes[0]
        for k, (j, i) in enumerate((j, i) for j in range(cols) for i in range(rows)):
            yield k, 0, i * cols + j, sp.Integer(1)

    def vforward(self, xs, shapes, params):
        return xs[0].T.copy()

    def vlocal(self, xs, out, shapes, params):
        sources = np.arange(xs[0].size).reshape(shapes[0]).T.reshape(-1)
        return [(0, np.arange(sources.size), sources, np.ones(sources.size), None)]

    def forward_tex(self, out, args, out_shape, params):
        return rf"{el(out, 'ij')} = {el(args[0].tex, 'ji')}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        return up(el(out, "ji"))

    def latex(self, ts, params):
        return rf"{ts[0]}^{{\mathsf T}}"

    def run(self, torch, ts, params):
        return ts[0].T


@dataclass(frozen=True)
class Select(Op):
    """x[i]: one slice along the first dim."""

    def shape(self, shapes, params):
        shape = shapes[0]
        if not shape:
            raise ShapeError("cannot index a 0-d tensor (allowed: indexing tensors with at least one dim)")
        i = params["index"]
        if not -shape[0] <= i < shape[0]:
            raise ShapeError(f"index {i} is out of range for size {shape[0]} (allowed: {-shape[0]} to {shape[0] - 1})")
        return shape[1:]

    def forward(self, xs, shapes, params):
        shape = shapes[0]
        size = numel(shape[1:])
        start = (params["index"] % shape[0]) * size
        return xs[0][start:start + size]

    def partials(self, xs, outs, shapes, params):
        shape = shapes[0]
        size = numel(shape[1:])
        start = (params["index"] % shape[0]) * size
        for k in range(size):
            yield k, 0, start + k, sp.Integer(1)

    def vforward(self, xs, shapes, params):
        return xs[0][params["index"]].copy()

    def vlocal(self, xs, out, shapes, params):
        size = numel(shapes[0][1:])
        start = (params["index"] % shapes[0][0]) * size
        return [(0, np.arange(size), start + np.arange(size), np.ones(size), None)]

    def forward_tex(self, out, args, out_shape, params):
        rest = list(LETTERS[: len(out_shape)])
        index = params["index"] % args[0].shape[0]
        return rf"{el(out, rest)} = {el(args[0].tex, [str(index)] + rest)}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        own = list(LETTERS[: len(args[0].shape)])
        index = params["index"] % args[0].shape[0]
        return times(up(el(out, own[1:])), rf"\left[{own[0]} = {index}\right]")

    def latex(self, ts, params):
        return rf"{ts[0]}\left[{params['index']}\right]"

    def run(self, torch, ts, params):
        return ts[0][params["index"]]


OTHERS = [
    Softmax("softmax", "derivative of softmax", "SoftmaxBackward0"),
    Softmax("log_softmax", "derivative of log-softmax", "LogSoftmaxBackward0", log=True),
    Matmul("matmul", "sum and product rules", "MmBackward0", PRODUCT, 2),
    Transpose("transpose", "transpose", "PermuteBackward0", POWER),
    Select("select", "indexing", "SelectBackward0", POWER),
]

REGISTRY: dict[str, Op] = {op.key: op for op in ELEMENTWISE + REDUCTIONS + OTHERS}

