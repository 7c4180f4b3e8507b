"""Elementwise ops, with broadcasting: each written once as a scalar rule and its derivatives."""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import sympy as sp

from ..floats.ieee import exact_number, nearest
from ..floats.numeric import numeric, rounding
from .base import (
    LETTERS, OPERAND, OUT, ExprError, constant_tex, Op, Spelling, aligned, bind_args, broadcast, el, free, num, numel, source_index,
    summed, times, unravel,
)
from .derivatives import (
    Above, Between, Detached, Elu, EluSlope, Expm1, Inside, LeakyRelu, LeakySlope, Log1p, Positive, PowBase, PowLog,
    Printer, RoundHalfEven, Softplus, SoftplusSlope, Trunc, Zeroed, masked_zeros,
)

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

    broadcasts = True

    f: Callable[..., sp.Expr] = field(default=None, repr=False)  # forward on scalars
    df: tuple[Callable[..., sp.Expr], ...] = field(default=(), repr=False)  # d f / d arg, given (*args, out)
    tex: Callable[..., str] = field(default=None, repr=False)
    torch_fn: Callable[..., Any] = field(default=None, repr=False)
    kink_at: Callable[..., str | None] = field(default=None, repr=False)
    kink_mask: Callable[..., np.ndarray] = field(default=None, repr=False)  # kink_at on arrays
    kink_key: str = ""  # the note key kink_mask stands for
    const_rule: str = ""  # the rule when one operand is a constant
    # per operand: torch's backward divides the gradient by the derivative's denominator (grad / a for log),
    # so a tiny denominator never makes an infinite factor that a zero gradient would turn into nan
    divides: tuple[bool, ...] = ()
    # torch's backward kernel computes the local derivative with one rounding: 1 - y·y by a fused multiply-add
    fused: bool = False

    def shape(self, shapes, params):
        return broadcast(*shapes)

    def call(self, walk, name, subject, args, kwargs, *, top):
        if len(self.df) != 2:
            return super().call(walk, name, subject, args, kwargs, top=top)
        other = bind_args(name, args, kwargs, ("other",), required=("other",))["other"]  # x.mul(y), torch.mul(x, y)
        return self.operate(walk, [walk.tensor(subject, f"{name}'s operand"), walk.visit(other)], top=top)

    def dtype_local(self, cast, xs, out, shapes, params):
        if not self.fused:
            return self.array_local(xs, out, shapes, params)
        with rounding(None):
            found = self.array_local(xs, out, shapes, params)
        return [(a, k, j, cast(value), masked) for a, k, j, value, masked in found]

    def array_fraction(self, a, xs, out, shapes, params):
        if a >= len(self.divides) or not self.divides[a]:
            return None
        _, df = self.generic(xs, params)
        env = {**self._env(xs), OUT: out}
        out_shape = broadcast(*shapes)
        parts = (np.broadcast_to(numeric(part, env), out_shape) for part in sp.fraction(df[a]))
        return tuple(np.asarray(part, dtype=np.float64).reshape(numel(out_shape)) for part in parts)

    def generic(self, xs, params):
        """Return (forward, local derivatives) on a generic element, for these operands."""
        consts = tuple(None if isinstance(x, np.ndarray) else x for x in xs)
        return _generic(self, consts, tuple(sorted(params.items())))

    def _env(self, xs):
        return {OPERAND[i]: x for i, x in enumerate(xs) if isinstance(x, np.ndarray)}

    def array_forward(self, xs, shapes, params):
        f, _ = self.generic(xs, params)
        return np.broadcast_to(numeric(f, self._env(xs)), broadcast(*shapes)).copy()

    def array_local(self, xs, out, shapes, params):
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
            args = [np.broadcast_to(numeric(arg, env), out_shape).reshape(-1) for arg in d.args]
            masked = masked_zeros(d, values, args)
            local.append((a, np.arange(size), sources, values, masked))
        return local

    def forward_tex(self, out, args, out_shape, params):
        letters = list(LETTERS[: len(out_shape)])
        parts = [x.tex if x.shape is None else el(x.tex, aligned(x.shape, letters, out_shape)) for x in args]
        return f"{el(out, letters)} = {self.latex(parts, params)}"

    def forward_numbers(self, k, xs, shapes, params, number):
        index = unravel(k, broadcast(*shapes))
        numbers = [number(float(x[source_index(index, shape)])) if isinstance(x, np.ndarray) else number(x)
                   for x, shape in zip(xs, shapes)]
        return self.latex(numbers, params)

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

    def array_kinks(self, xs, out, shapes, params):
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

    def reads(self, index, requires, params):
        """Read an operand's values where a derivative needed (of an operand requiring grad) is written with it."""
        xs = sp.symbols(f"a0:{len(self.df)}")
        out = sp.Symbol("out")  # the result, which torch keeps as it was computed
        try:
            return any(xs[index] in d(*xs, out, **params).free_symbols for d, r in zip(self.df, requires) if r)
        except Exception:  # noqa: BLE001 - a derivative written only for numbers (clamp's None bound): assume it reads all
            return self.saves

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
            operands = [x[source_index(idx, s)] for x, s in zip(xs, shapes)]
            if any(a is sp.nan for a in operands):
                continue  # nan is no kink: every convention gives nan there
            key = self.kink_at(*operands, **params)
            if key:
                yield k, key

    def run(self, torch, ts, params):
        return self.torch_fn(torch, *ts, **params)

    def fold(self, values):
        return self.f(*values)  # on Fractions: exact, as Python computes a + b before torch sees it

    def python_number(self, values):
        if all(v.denominator == 1 for v in values):  # Python's ints are exact
            return self.fold(values)
        return _double(lambda: self.f(*(float(v) for v in values)))


def _double(compute: Callable[[], Any]) -> Fraction:
    """Return a Python float computation's result exactly, or raise ExprError where Python has no finite one."""
    try:
        value = compute()
    except (ZeroDivisionError, OverflowError):
        value = math.nan
    if not isinstance(value, float) or not math.isfinite(value):
        raise ExprError("Python cannot compute it to a finite number (allowed: arithmetic of numbers with a finite"
                        " result)")
    return Fraction(value)


def _binary(key, rule, grad_fn, f, df, tex, torch_fn, operator, symbol, names=(), **kw):
    return Elementwise(key, rule, grad_fn, Spelling(names=names, operator=operator, symbol=symbol), f=f, df=df, tex=tex,
                       torch_fn=torch_fn, **kw)


CONSTANT_TERM = "sum rule; a constant term has derivative 0"
CONSTANT_FACTOR = "constant multiple rule"


def _unary(key, rule, grad_fn, f, df, tex, torch_fn, kink=None, spelling=None, divides=(), fused=False, saves=True,
           tracks=True, where=None):
    """An op of one tensor; kink names its note at 0, or at the points where(a) is true (on numbers and arrays)."""
    if kink is None:
        at, mask, note = None, None, ""
    elif where is None:
        at, mask, note = _at_zero(kink), lambda a: a == 0, kink
    else:
        at, mask, note = (lambda a: kink if bool(where(a)) else None), where, kink
    return Elementwise(key, rule, grad_fn, Spelling(names=(key,)) if spelling is None else spelling, f=f, df=(df,),
                       tex=tex, torch_fn=torch_fn, kink_at=at, kink_mask=mask, kink_key=note, divides=divides,
                       fused=fused, saves=saves, tracks=tracks, inexact32=key in INEXACT32)


INEXACT32 = ("exp", "log", "sin", "cos", "tanh", "sigmoid", "log1p", "expm1", "exp2", "rsqrt", "atan", "asin", "sinh",
             "cosh", "silu", "elu", "softplus", "gelu")  # float32 kernels within an ulp, not correctly rounded


MAX_EXPONENT = 64  # |constant exponent| in a ** b


@dataclass(frozen=True)
class Pow(Elementwise):
    """a ** b: three grad_fns in torch, by which side is a constant."""

    def dtype_constant(self, cast, index, value):
        if index == 0:
            return cast.constant(value)
        # torch keeps a number exponent in double precision: float32's x ** 1e-308 is not x ** 0
        return np.array(float(value))

    def call(self, walk, name, subject, args, kwargs, *, top):
        exponent = bind_args(name, args, kwargs, ("exponent",), required=("exponent",))["exponent"]
        base = walk.visit(subject)
        return self.operate(walk, [base, walk.visit(exponent)], top=top)

    def operate(self, walk, operands, *, top):
        power = operands[1]
        if not isinstance(power, str) and abs(power) > MAX_EXPONENT:
            raise ExprError(f"the exponent {num(power)} is too large (allowed: at most {MAX_EXPONENT} in size)")
        return super().operate(walk, operands, top=top)

    def fold(self, values):
        a, b = values
        if b.denominator == 1 and not (a == 0 and b < 0):
            return a ** int(b)
        return Op.fold(self, values)

    def python_number(self, values):
        a, b = values
        if a.denominator == 1 and b.denominator == 1 and b >= 0:  # an int: exact, within a size Python keeps
            if b > MAX_EXPONENT:
                raise ExprError(f"an integer to a power above {MAX_EXPONENT} (allowed: exponents up to {MAX_EXPONENT})")
            return a ** int(b)
        return _double(lambda: float(a) ** float(b))

    def rule_for(self, consts, same):
        if consts[1]:
            return "power rule"
        return "exponential rule" if consts[0] else self.rule

    def grad_fn(self, consts, shapes, params):
        if consts[1]:
            return "PowBackward0"
        return "PowBackward2" if consts[0] else "PowBackward1"


@dataclass(frozen=True)
class Div(Elementwise):
    """a / b: torch computes c / x as x.reciprocal() * c, and d(a/b)/db as -((a / b) / b)."""

    def operate(self, walk, operands, *, top):
        left, right = operands
        if not isinstance(left, str) and not isinstance(right, str):
            return walk.fold(self, operands)
        if not isinstance(left, str):
            return walk.make("mul", [walk.make("reciprocal", [right], top=False), left], top=top)
        if right == 0:
            raise ExprError("division by the constant 0 (allowed: a non-zero divisor)")
        return walk.make(self.key, operands, top=top)

    def fold(self, values):
        if values[1] == 0:
            raise ExprError("division by the constant 0 (allowed: a non-zero divisor)")
        return values[0] / values[1]

    def python_number(self, values):
        a, b = values
        if a.denominator == 1 and b.denominator == 1 and b:
            return _double(lambda: float(a / b))  # int / int: Python rounds the exact quotient once
        return _double(lambda: float(a) / float(b))

    def dtype_local(self, cast, xs, out, shapes, params):
        found = self.array_local(xs, out, shapes, params)
        # torch never squares b, which overflows or vanishes in the dtype
        b = np.broadcast_to(np.asarray(xs[1], dtype=np.float64), out.shape).reshape(-1)
        with np.errstate(all="ignore"):
            return [(a, k, j, -(np.ravel(out)[k] / b[k]) if a == 1 else value, masked)
                    for a, k, j, value, masked in found]


@dataclass(frozen=True)
class ScalarDiv(Div):
    """a / n with n a scalar inside torch's own C++ (cross_entropy's mean over rows): DivBackward1, linked to a alone.

    Python's a / 2 wraps the 2 as a tensor and is DivBackward0; only ops that torch composes make this one.
    """

    def edges(self, consts, shapes, params):
        return (0,)


@dataclass(frozen=True)
class ScalarMul(Elementwise):
    """a · c with c a scalar inside torch's own C++ (cross_entropy's label smoothing): MulBackward1, linked to a alone.

    Python's 0.9 * a wraps the number as a tensor and is MulBackward0; only ops that torch composes make this one.
    """

    def edges(self, consts, shapes, params):
        return (0,)


@dataclass(frozen=True)
class Clamp(Elementwise):
    """x.clamp(min=a, max=b), either bound optional; x.clamp_min(a) and x.clamp_max(b), torch's own ops for one bound."""

    side: str = ""  # clamp_min: "min", clamp_max: "max"

    def call_params(self, walk, name, args, kwargs):
        if self.side:
            key = self.side
            bound = bind_args(name, args, kwargs, (key,), required=(key,))
            value = self._bound(walk, bound[key], key)
            if value is None:
                raise ExprError(f"{name}() needs a number (allowed: x.{name}(0.5))")
            return {"lo": value, "hi": None} if key == "min" else {"lo": None, "hi": value}
        bound = bind_args(name, args, kwargs, ("min", "max"))
        lo, hi = (self._bound(walk, bound.get(k), k) for k in ("min", "max"))
        if lo is None and hi is None:
            raise ExprError("clamp needs min= or max= (allowed: clamp(min=a), clamp(max=b), clamp(min=a, max=b))")
        return {"lo": lo, "hi": hi}

    @staticmethod
    def _bound(walk, node, key):
        if node is None or isinstance(node, ast.Constant) and node.value is None:
            return None
        value = walk.visit(node)
        if isinstance(value, str):
            raise ExprError(f"clamp's {key}= must be a number (allowed: a number)")
        return value

    def dtype_params(self, cast, params):
        params = dict(params)
        for key in ("lo", "hi"):
            bound = params[key]
            if bound.is_finite:
                rounded = float(cast(np.array(float(bound))))
                params[key] = sp.Rational(rounded) if math.isfinite(rounded) else sp.oo * int(np.sign(rounded))
        return params

    def exact_params(self, params):
        # a missing bound is ±oo; a spec's number exactly (a subnormal as the float64 torch holds)
        return {**params, "lo": -sp.oo if params["lo"] is None else exact_number(params["lo"]),
                "hi": sp.oo if params["hi"] is None else exact_number(params["hi"])}


@dataclass(frozen=True)
class Sub(Elementwise):
    """a - b: torch records a constant minus a tensor as RsubBackward1."""

    def grad_fn(self, consts, shapes, params):
        return "RsubBackward1" if consts[0] else "SubBackward0"

    def edges(self, consts, shapes, params):
        return (1,) if consts[0] else (0, 1)  # rsub(x, c) keeps the number as a scalar, not a tensor


@dataclass(frozen=True)
class Pairwise(Elementwise):
    """torch.maximum(a, b) and torch.minimum(a, b): two tensors, element by element; a tie shares the gradient."""

    def call(self, walk, name, subject, args, kwargs, *, top):
        other = bind_args(name, args, kwargs, ("other",), required=("other",))["other"]
        a = walk.tensor(subject, f"{name}'s operand")
        return walk.make(self.key, [a, walk.tensor(other, f"{name}'s other operand")], top=top)


@dataclass(frozen=True)
class Activation(Elementwise):
    """A torch.nn.functional activation with arguments after its input: numbers, or a word (gelu's approximate)."""

    defaults: tuple[tuple[str, Any], ...] = ()  # torch's arguments after the input, with torch's defaults
    words: tuple[tuple[str, tuple[str, ...]], ...] = ()  # the word arguments and the words torch takes

    def call_params(self, walk, name, args, kwargs):
        names = tuple(k for k, _ in self.defaults)
        bound = bind_args(name, args, kwargs, names + ("inplace",))
        inplace = bound.get("inplace")
        if inplace is not None and not (isinstance(inplace, ast.Constant) and inplace.value is False):
            raise ExprError(f"{name}(inplace=True) overwrites its input, which autograd needs (allowed: inplace=False)")
        words = dict(self.words)
        params = {}
        for key, default in self.defaults:
            node = bound.get(key)
            if key in words:
                value = default if node is None else node.value if isinstance(node, ast.Constant) else None
                if value not in words[key]:
                    allowed = " or ".join(repr(w) for w in words[key])
                    raise ExprError(f"{name}()'s {key}= must be {allowed} (allowed: {allowed})")
            else:
                value = default if node is None else walk.visit(node)
                if isinstance(value, str):
                    raise ExprError(f"{name}()'s {key}= must be a number (allowed: a number)")
            params[key] = value
        return params

    def exact_params(self, params):
        return {k: v if isinstance(v, str) else exact_number(v) for k, v in params.items()}

    def dtype_params(self, cast, params):
        # torch turns a number argument into the tensor's dtype before its kernel
        return {k: v if isinstance(v, str) else sp.Rational(Fraction(float(cast(np.array(float(v))))))
                for k, v in params.items()}

    def run(self, torch, ts, params):
        return self.torch_fn(torch, *ts, **{k: v if isinstance(v, str) else float(v) for k, v in params.items()})


@dataclass(frozen=True)
class Gelu(Activation):
    """gelu: in float32, torch's vectorized kernel (any tensor of two or more elements) overflows from 2**127 on."""

    def dtype_forward(self, cast, xs, shapes, params):
        out = super().dtype_forward(cast, xs, shapes, params)
        x = np.asarray(xs[0], dtype=np.float64)
        if cast.dtype == "float32" and params["approximate"] == "none" and x.size > 1:
            # the vector kernel forms x·(1 + erf(x/√2)) before halving it, so it overflows from 2**127 (and gives nan at inf)
            out = np.where(np.broadcast_to(x >= 2.0**127, np.shape(out)), np.inf, out)
            out = np.where(np.broadcast_to(x == np.inf, np.shape(out)), np.nan, out)
        return out

    def dtype_rounding(self, xs, out, shapes, params, *, normal=0.0):
        # the kernel rounds erf (or tanh), about 1 in size, then 1 + it, which cancels for x far below 0, then
        # multiplies by x / 2: a few units of 1 times |x| (x = -4 in float32: 2.4e-7 on a result of 1.3e-4)
        return 2 * np.abs(np.asarray(xs[0], dtype=np.float64).reshape(np.shape(out)))


GELU_KAPPA = sp.Rational(44715, 10**6)  # torch's 0.044715 in the tanh approximation
SQRT_2_OVER_PI = sp.sqrt(2 / sp.pi)


def _gelu(a, approximate):
    if approximate == "tanh":
        return a / 2 * (1 + sp.tanh(SQRT_2_OVER_PI * (a + GELU_KAPPA * a**3)))
    return a / 2 * (1 + sp.erf(a / sp.sqrt(2)))


def _gelu_slope(a, o, approximate):
    if approximate == "tanh":  # torch's gelu_backward, term by term
        t = sp.tanh(SQRT_2_OVER_PI * (a + GELU_KAPPA * a**3))
        return (1 + t) / 2 + a / 2 * (1 - t**2) * SQRT_2_OVER_PI * (1 + 3 * GELU_KAPPA * a**2)
    return (1 + sp.erf(a / sp.sqrt(2))) / 2 + a * sp.exp(-(a**2) / 2) / sp.sqrt(2 * sp.pi)


def _subscript(name: str, value, default) -> str:
    return rf"\operatorname{{{name}}}" if value == default else rf"\operatorname{{{name}}}_{{{sp.latex(value)}}}"


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
        return rf"\min\left({a}, {constant_tex(hi)}\right)"
    if hi == sp.oo:
        return rf"\max\left({a}, {constant_tex(lo)}\right)"
    return rf"\operatorname{{clamp}}\left({a}, {constant_tex(lo)}, {constant_tex(hi)}\right)"


def _clamp_one(torch, t, lo, hi):
    return torch.clamp_min(t, float(lo)) if hi is None else torch.clamp_max(t, float(hi))


def _clamp_torch(torch, t, lo, hi):
    kw = {}
    if lo is not None:
        kw["min"] = float(lo)
    if hi is not None:
        kw["max"] = float(hi)
    return torch.clamp(t, **kw)


@dataclass(frozen=True)
class Scaled(Elementwise):
    """torch.add(a, b, alpha=k): a + k·b, which torch's CPU kernel computes with one rounding (a fused multiply-add)."""

    def call(self, walk, name, subject, args, kwargs, *, top):
        bound = bind_args(name, args, kwargs, ("other", "alpha"), required=("other",))
        a, b = walk.tensor(subject, f"{name}'s operand"), walk.visit(bound["other"])
        alpha = walk.visit(bound["alpha"]) if "alpha" in bound else Fraction(1)
        if isinstance(alpha, str):
            raise ExprError(f"{name}'s alpha= must be a number (allowed: a number)")
        if isinstance(b, str):
            return walk.make(self.key, [a, b], {"alpha": alpha}, top=top)
        return walk.make("add", [a, b * alpha], top=top)  # a number times alpha: Python's, then torch's add

    def exact_params(self, params):
        return {"alpha": exact_number(params["alpha"])}

    def dtype_params(self, cast, params):
        # torch turns alpha into the tensors' dtype before the kernel
        return {"alpha": sp.Rational(Fraction(float(cast(np.array(float(params["alpha"]))))))}

    def dtype_forward(self, cast, xs, shapes, params):
        alpha = Fraction(params["alpha"].p, params["alpha"].q)
        shape = broadcast(*shapes)
        a, b = (np.broadcast_to(np.asarray(x, dtype=np.float64), shape).reshape(-1) for x in xs)
        dtype = getattr(cast, "dtype", "float64")
        out = []
        for x, y in zip(a, b):
            exact = Fraction(float(x)) + alpha * Fraction(float(y)) if math.isfinite(x) and math.isfinite(y) else None
            try:
                value = float(nearest(exact, dtype)) if exact else x + float(alpha) * y  # 0 and inf: as floats do
            except OverflowError:
                value = math.copysign(math.inf, exact)
            out.append(float(cast(np.array(value))))
        return np.asarray(out, dtype=np.float64).reshape(shape)


def _scaled_tex(a, b, alpha):
    k = Fraction(int(alpha.p), int(alpha.q))
    sign = "-" if k < 0 else "+"
    return f"{a} {sign} {b}" if abs(k) == 1 else rf"{a} {sign} {num(abs(k))} \cdot {b}"


def _sigmoid(a):
    return 1 / (1 + sp.exp(-a))


def _silu_slope(a):
    s = _sigmoid(a)
    return s * (1 + a * (1 - s))  # torch's silu_backward, in its order


def _integer(a):
    return a == np.floor(a) if isinstance(a, np.ndarray) or isinstance(a, float) else a == sp.floor(a)


def _half(a):
    return a - np.floor(a) == 0.5 if isinstance(a, np.ndarray) or isinstance(a, float) else a - sp.floor(a) == sp.Rational(1, 2)


def _pole(at):
    return lambda a: a == at


STEP = "step function: flat, so the derivative is 0"


ELEMENTWISE = [
    _binary("add", "sum rule", "AddBackward0", lambda a, b: a + b,
            (lambda a, b, o: sp.Integer(1), lambda a, b, o: sp.Integer(1)),
            lambda a, b: f"{a} + {b}", lambda torch, a, b: a + b, ast.Add, "+", const_rule=CONSTANT_TERM, saves=False,
            wraps_numbers=True),
    Sub("sub", "difference rule", "SubBackward0", Spelling(names=("sub", "subtract"), operator=ast.Sub, symbol="-"),
        f=lambda a, b: a - b,
        df=(lambda a, b, o: sp.Integer(1), lambda a, b, o: sp.Integer(-1)),
        tex=lambda a, b: f"{a} - {b}", torch_fn=lambda torch, a, b: a - b, const_rule=CONSTANT_TERM, saves=False,
        wraps_numbers=True),
    _binary("mul", "product rule", "MulBackward0", lambda a, b: a * b,
            (lambda a, b, o: b, lambda a, b, o: a),
            lambda a, b: rf"{a} \cdot {b}", lambda torch, a, b: a * b, ast.Mult, "*", names=("mul", "multiply"),
            const_rule=CONSTANT_FACTOR, wraps_numbers=True),
    Div("div", "quotient rule", "DivBackward0", Spelling(names=("div", "divide", "true_divide"), operator=ast.Div, symbol="/"),
        f=lambda a, b: a / b,
        df=(lambda a, b, o: 1 / b, lambda a, b, o: -a / b**2),
        tex=_frac, torch_fn=lambda torch, a, b: a / b, const_rule=CONSTANT_FACTOR, divides=(True, False),
        wraps_numbers=True),
    ScalarDiv("div_scalar", "quotient rule", "DivBackward1", Spelling(), f=lambda a, b: a / b,
              df=(lambda a, b, o: 1 / b, lambda a, b, o: -a / b**2), tex=_frac, torch_fn=lambda torch, a, b: torch.ops.aten.div.Scalar(a, b),
              const_rule=CONSTANT_FACTOR, divides=(True, False)),
    ScalarMul("mul_scalar", "product rule", "MulBackward1", Spelling(), f=lambda a, b: a * b,
              df=(lambda a, b, o: b, lambda a, b, o: a), tex=lambda a, b: rf"{b} \cdot {a}",
              torch_fn=lambda torch, a, b: torch.ops.aten.mul.Scalar(a, b), const_rule=CONSTANT_FACTOR),
    Pow("pow", "power rule and exponential rule", "PowBackward0", Spelling(names=("pow",), operator=ast.Pow, symbol="**"),
        f=lambda a, b: a**b,
        df=(lambda a, b, o: PowBase(a, b), lambda a, b, o: PowLog(a, b)),
        tex=lambda a, b: f"{{{a}}}^{{{b}}}", torch_fn=lambda torch, a, b: a**b, kink_at=_pow_kink,
        kink_mask=_pow_kink_mask, kink_key="pow0"),
    _unary("neg", "constant multiple rule", "NegBackward0", lambda a: -a, lambda a, o: sp.Integer(-1),
           lambda a: f"-{a}", lambda torch, a: -a, spelling=Spelling(names=("neg", "negative"), operator=ast.USub, symbol="-"),
           saves=False),
    _unary("reciprocal", "power rule", "ReciprocalBackward0", lambda a: 1 / a, lambda a, o: -(o**2),  # torch: -grad * (result * result)
           lambda a: _frac("1", a), lambda torch, a: a.reciprocal(), kink="div0", spelling=Spelling(names=("reciprocal",))),
    _unary("exp", "exponential rule", "ExpBackward0", sp.exp, lambda a, o: o,
           lambda a: rf"e^{{{a}}}", lambda torch, a: torch.exp(a)),
    _unary("log", "logarithm rule", "LogBackward0", sp.log, lambda a, o: 1 / a,
           lambda a: rf"\ln {a}", lambda torch, a: torch.log(a), kink="log0", divides=(True,)),
    _unary("sqrt", "power rule", "SqrtBackward0", sp.sqrt, lambda a, o: 1 / (2 * o),
           lambda a: rf"\sqrt{{{a}}}", lambda torch, a: torch.sqrt(a), kink="sqrt0", divides=(True,)),
    _unary("sin", "derivative of sine", "SinBackward0", sp.sin, lambda a, o: sp.cos(a),
           lambda a: rf"\sin {a}", lambda torch, a: torch.sin(a)),
    _unary("cos", "derivative of cosine", "CosBackward0", sp.cos, lambda a, o: -sp.sin(a),
           lambda a: rf"\cos {a}", lambda torch, a: torch.cos(a)),
    _unary("tanh", "derivative of tanh", "TanhBackward0", sp.tanh, lambda a, o: 1 - o**2,
           lambda a: rf"\tanh {a}", lambda torch, a: torch.tanh(a), spelling=Spelling(names=("tanh",), functional=("tanh",)), fused=True),
    _unary("sigmoid", "derivative of the sigmoid", "SigmoidBackward0", _sigmoid, lambda a, o: o * (1 - o),
           lambda a: rf"\sigma\left({a}\right)", lambda torch, a: torch.sigmoid(a), spelling=Spelling(names=("sigmoid",), functional=("sigmoid",))),
    _unary("relu", "derivative of relu", "ReluBackward0", lambda a: sp.Max(0, a), lambda a, o: Positive(a),
           lambda a: rf"\operatorname{{relu}}\left({a}\right)", lambda torch, a: torch.relu(a), spelling=Spelling(names=("relu",), functional=("relu",)),
           kink="relu0"),
    _unary("abs", "derivative of the absolute value", "AbsBackward0", sp.Abs, lambda a, o: sp.sign(a),
           lambda a: rf"\left\lvert {a}\right\rvert", lambda torch, a: torch.abs(a), kink="abs0"),
    _unary("log1p", "logarithm rule", "Log1PBackward0", Log1p, lambda a, o: 1 / (1 + a),
           lambda a: rf"\ln\left(1 + {a}\right)", lambda torch, a: torch.log1p(a), kink="log1p", where=_pole(-1),
           divides=(True,)),
    _unary("expm1", "exponential rule", "Expm1Backward0", Expm1, lambda a, o: o + 1,
           lambda a: rf"e^{{{a}}} - 1", lambda torch, a: torch.expm1(a)),
    _unary("exp2", "exponential rule", "Exp2Backward0", lambda a: 2**a, lambda a, o: o * sp.log(2),
           lambda a: rf"2^{{{a}}}", lambda torch, a: torch.exp2(a)),
    _unary("rsqrt", "power rule", "RsqrtBackward0", lambda a: 1 / sp.sqrt(a), lambda a, o: -(o**3) / 2,
           lambda a: _frac("1", rf"\sqrt{{{a}}}"), lambda torch, a: torch.rsqrt(a), kink="rsqrt0"),
    _unary("atan", "derivative of arctangent", "AtanBackward0", sp.atan, lambda a, o: 1 / (1 + a**2),
           lambda a: rf"\arctan {a}", lambda torch, a: torch.atan(a), divides=(True,)),
    _unary("asin", "derivative of arcsine", "AsinBackward0", sp.asin, lambda a, o: 1 / sp.sqrt(1 - a**2),
           lambda a: rf"\arcsin {a}", lambda torch, a: torch.asin(a), kink="asin1", where=lambda a: abs(a) == 1),
    _unary("sinh", "derivative of sinh", "SinhBackward0", sp.sinh, lambda a, o: sp.cosh(a),
           lambda a: rf"\sinh {a}", lambda torch, a: torch.sinh(a)),
    _unary("cosh", "derivative of cosh", "CoshBackward0", sp.cosh, lambda a, o: sp.sinh(a),
           lambda a: rf"\cosh {a}", lambda torch, a: torch.cosh(a)),
    _unary("silu", "derivative of silu", "SiluBackward0", lambda a: a * _sigmoid(a), lambda a, o: _silu_slope(a),
           lambda a: rf"\operatorname{{silu}}\left({a}\right)", lambda torch, a: torch.nn.functional.silu(a),
           spelling=Spelling(functional=("silu",))),
    _unary("sign", STEP, "SignBackward0", sp.sign, lambda a, o: Zeroed(o),
           lambda a: rf"\operatorname{{sign}}\left({a}\right)", lambda torch, a: torch.sign(a), kink="step",
           saves=False),
    _unary("floor", STEP, "FloorBackward0", sp.floor, lambda a, o: Zeroed(o),
           lambda a: rf"\left\lfloor {a}\right\rfloor", lambda torch, a: torch.floor(a), kink="step",
           where=_integer, saves=False),
    _unary("ceil", STEP, "CeilBackward0", sp.ceiling, lambda a, o: Zeroed(o),
           lambda a: rf"\left\lceil {a}\right\rceil", lambda torch, a: torch.ceil(a), kink="step",
           where=_integer, saves=False),
    _unary("round", STEP, "RoundBackward0", RoundHalfEven, lambda a, o: Zeroed(o),
           lambda a: rf"\operatorname{{round}}\left({a}\right)", lambda torch, a: torch.round(a), kink="step",
           where=_half, saves=False),
    _unary("trunc", STEP, "TruncBackward0", Trunc, lambda a, o: Zeroed(o),
           lambda a: rf"\operatorname{{trunc}}\left({a}\right)", lambda torch, a: torch.trunc(a), kink="step",
           where=lambda a: _integer(a) & (a != 0) if isinstance(a, np.ndarray) else _integer(a) and a != 0,
           saves=False),
    Pairwise("maximum", "derivative of maximum", "MaximumBackward0", Spelling(names=("maximum",)),
             f=lambda a, b: sp.Max(a, b), df=(lambda a, b, o: Above(a, b), lambda a, b, o: Above(b, a)),
             tex=lambda a, b: rf"\max\left({a}, {b}\right)", torch_fn=lambda torch, a, b: torch.maximum(a, b),
             kink_at=lambda a, b: "tie2" if a == b else None, kink_mask=lambda a, b: a == b, kink_key="tie2"),
    Pairwise("minimum", "derivative of minimum", "MinimumBackward0", Spelling(names=("minimum",)),
             f=lambda a, b: sp.Min(a, b), df=(lambda a, b, o: Above(b, a), lambda a, b, o: Above(a, b)),
             tex=lambda a, b: rf"\min\left({a}, {b}\right)", torch_fn=lambda torch, a, b: torch.minimum(a, b),
             kink_at=lambda a, b: "tie2" if a == b else None, kink_mask=lambda a, b: a == b, kink_key="tie2"),
    Activation("leaky_relu", "derivative of leaky relu", "LeakyReluBackward0", Spelling(functional=("leaky_relu",)),
               f=lambda a, negative_slope: LeakyRelu(a, negative_slope), df=(lambda a, o, negative_slope: LeakySlope(a, negative_slope),),
               tex=lambda a, negative_slope: rf"\operatorname{{leaky\_relu}}_{{{sp.latex(negative_slope)}}}\left({a}\right)",
               torch_fn=lambda torch, a, negative_slope: torch.nn.functional.leaky_relu(a, negative_slope),
               kink_at=lambda a, negative_slope: "leaky0" if a == 0 else None,
               kink_mask=lambda a, negative_slope: a == 0, kink_key="leaky0",
               defaults=(("negative_slope", Fraction(1, 100)),)),
    Activation("elu", "derivative of elu", "EluBackward0", Spelling(functional=("elu",)),
               f=lambda a, alpha: Elu(a, alpha), df=(lambda a, o, alpha: EluSlope(a, alpha),),
               tex=lambda a, alpha: rf"{_subscript('elu', alpha, 1)}\left({a}\right)",
               torch_fn=lambda torch, a, alpha: torch.nn.functional.elu(a, alpha),
               kink_at=lambda a, alpha: "elu0" if a == 0 and alpha != 1 else None,
               kink_mask=lambda a, alpha: (a == 0) & (float(alpha) != 1), kink_key="elu0", defaults=(("alpha", Fraction(1)),)),
    Activation("hardtanh", "derivative of hardtanh", "HardtanhBackward0", Spelling(functional=("hardtanh",)),
               f=lambda a, min_val, max_val: sp.Min(sp.Max(a, min_val), max_val),
               df=(lambda a, o, min_val, max_val: Between(a, min_val, max_val),),
               tex=lambda a, min_val, max_val: rf"\operatorname{{hardtanh}}\left({a}, {sp.latex(min_val)}, {sp.latex(max_val)}\right)",
               torch_fn=lambda torch, a, min_val, max_val: torch.nn.functional.hardtanh(a, min_val, max_val),
               kink_at=lambda a, min_val, max_val: "hardtanh_edge" if a in (min_val, max_val) else None,
               kink_mask=lambda a, min_val, max_val: (a == float(min_val)) | (a == float(max_val)), kink_key="hardtanh_edge",
               defaults=(("min_val", Fraction(-1)), ("max_val", Fraction(1)))),
    Activation("softplus", "derivative of softplus", "SoftplusBackward0", Spelling(functional=("softplus",)),
               f=lambda a, beta, threshold: Softplus(a, beta, threshold), df=(lambda a, o, beta, threshold: SoftplusSlope(a, beta, threshold),),
               tex=lambda a, beta, threshold: rf"{_subscript('softplus', beta, 1)}\left({a}\right)",
               torch_fn=lambda torch, a, beta, threshold: torch.nn.functional.softplus(a, beta, threshold),
               kink_at=lambda a, beta, threshold: "softplus_linear" if a * beta > threshold else None,
               kink_mask=lambda a, beta, threshold: a * float(beta) > float(threshold), kink_key="softplus_linear",
               defaults=(("beta", Fraction(1)), ("threshold", Fraction(20)))),
    Gelu("gelu", "derivative of gelu", "GeluBackward0", Spelling(functional=("gelu",)),
               f=_gelu, df=(_gelu_slope,),
               tex=lambda a, approximate: (r"\operatorname{gelu}_{\tanh}" if approximate == "tanh" else r"\operatorname{gelu}")
               + rf"\left({a}\right)",
               torch_fn=lambda torch, a, approximate: torch.nn.functional.gelu(a, approximate=approximate),
               defaults=(("approximate", "none"),), words=(("approximate", ("none", "tanh")),)),
    # a copy that torch does not record: its result never requires grad, so no gradient flows back through it
    _unary("detach", "detach", "", Detached, lambda a, o: sp.Integer(0),
           lambda a: rf"\operatorname{{detach}}\left({a}\right)", lambda torch, a: a.detach(), tracks=False, saves=False),
    Scaled("add_scaled", "sum rule and constant multiple rule", "AddBackward0", Spelling(names=("add",)),
           f=lambda a, b, alpha: a + alpha * b, df=(lambda a, b, o, alpha: sp.Integer(1), lambda a, b, o, alpha: alpha),
           tex=_scaled_tex,
           torch_fn=lambda torch, a, b, alpha: torch.add(a, b, alpha=float(alpha)), saves=False),
    Clamp("clamp", "derivative of clamp", "ClampBackward1", Spelling(names=("clamp",)), f=_clamp,
                df=(lambda a, o, lo, hi: Inside(a, lo, hi),), tex=_clamp_tex, torch_fn=_clamp_torch,
                kink_at=_clamp_kink, kink_mask=_clamp_kink_mask, kink_key="clamp_edge"),
    *(Clamp(f"clamp_{side}", "derivative of clamp", f"Clamp{side.title()}Backward0", Spelling(names=(f"clamp_{side}",)),
            f=_clamp, df=(lambda a, o, lo, hi: Inside(a, lo, hi),), tex=_clamp_tex, torch_fn=_clamp_one,
            kink_at=_clamp_kink, kink_mask=_clamp_kink_mask, kink_key="clamp_edge", side=side) for side in ("min", "max")),
]


def scaled_add(a: str, b: str, alpha: str) -> str:
    """Return a + alpha·b with one rounding, as torch's p.add_(g, alpha=-lr) in optimizer.step() computes it."""
    return f"torch.add({a}, {b}, alpha={alpha})"
