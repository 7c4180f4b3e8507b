"""Losses of torch.nn.functional: mse_loss, l1_loss, smooth_l1_loss, huber_loss and the binary cross-entropies.

Each is an elementwise loss of input and target (weighted by weight=, and by pos_weight= for the logits'
loss; smooth_l1_loss's beta= and huber_loss's delta= are its number c), then reduced as reduction= says: 'mean' (the default), 'sum' or 'none'. torch requires the target's
shape to be the input's; a weight broadcasts to it and never requires grad (torch has no derivative for it).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

import numpy as np
import sympy as sp
from sympy.printing.precedence import PRECEDENCE

from ..floats import fmath
from .base import (
    LETTERS, ExprError, Op, ShapeError, Spelling, aligned, bind_args, broadcast, el, fmt_shape, flat, numel,
    source_index, summed, times, unravel,
)

REDUCTIONS = ("mean", "sum", "none")  # the first is torch's default
LOG_FLOOR = -100  # binary_cross_entropy clamps each log at -100, so a probability of 0 or 1 costs at most 100
EPSILON = sp.Rational(Fraction(float(np.float32(1e-12))))  # its backward divides by max(x (1 - x), 1e-12 in float32)
DEPRECATED = ("size_average", "reduce")


def _sigmoid(x):
    return 1 / (1 + sp.exp(-x))


def _mse(x, y, w, p, c):
    return (x - y) ** 2


def _mse_d(x, y, w, p, c):
    return 2 * (x - y), -2 * (x - y)


def _bce(x, y, w, p, c):
    return -w * (y * sp.Max(sp.log(x), LOG_FLOOR) + (1 - y) * sp.Max(sp.log(1 - x), LOG_FLOOR))


def _bce_d(x, y, w, p, c):
    # torch's backward: (x - y) / max(x (1 - x), ε) for the input, ln(1 - x) - ln x (unclamped) for the target
    return w * (x - y) / sp.Max(x * (1 - x), EPSILON), w * (sp.log(1 - x) - sp.log(x))


class Softplus(sp.Function):
    """ln(1 + e^-x), torch's -log_sigmoid(x); a negative number's as -x + ln(1 + e^x), so e^-x never overflows."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_number and x.is_extended_real:
            return -x + sp.log(1 + sp.exp(x)) if bool(x < 0) else sp.log(1 + sp.exp(-x))
        return None

    def fdiff(self, argindex=1):
        return -1 / (1 + sp.exp(self.args[0]))

    def _latex(self, printer):
        x = self.args[0]
        power = printer._print(-x) if x.could_extract_minus_sign() else "-" + printer.parenthesize(
            x, PRECEDENCE["Mul"], strict=True)
        return rf"\ln\left(1 + e^{{{power}}}\right)"


def _logits(x, y, w, p, c):
    return w * ((1 - y) * x + (1 + (p - 1) * y) * Softplus(x))


def _logits_d(x, y, w, p, c):
    # torch: ((p y + 1 - y) σ(x) - p y) · w for the input; (-x + (p - 1) ln(1 + e^-x)) · w for the target
    return w * ((1 + (p - 1) * y) * _sigmoid(x) - p * y), w * (-x + (p - 1) * Softplus(x))


def _np_mse(x, y, w, p, c):
    return (x - y) ** 2


def _np_mse_d(x, y, w, p, c):
    return 2 * (x - y), -2 * (x - y)


def _np_bce(x, y, w, p, c):
    return -w * (y * np.maximum(fmath.log(x), LOG_FLOOR) + (1 - y) * np.maximum(fmath.log(1 - x), LOG_FLOOR))


def _np_bce_d(x, y, w, p, c):
    return w * (x - y) / np.maximum(x * (1 - x), float(EPSILON)), w * (fmath.log(1 - x) - fmath.log(x))


def _np_softplus(x):
    # log_sigmoid as torch computes it: ln(1 + e^-x) = max(-x, 0) + ln(1 + e^-|x|)
    return np.maximum(-x, 0) + fmath.log(1 + fmath.exp(-np.abs(x)))


def _np_logits(x, y, w, p, c):
    return w * ((1 - y) * x + (1 + (p - 1) * y) * _np_softplus(x))


def _np_logits_d(x, y, w, p, c):
    sigma = 1 / (1 + fmath.exp(-x))
    return w * ((1 + (p - 1) * y) * sigma - p * y), w * (-x + (p - 1) * _np_softplus(x))


def _tex_mse(x, y, w, p, c):
    return rf"\left({x} - {y}\right)^{{2}}"


def _tex_bce(x, y, w, p, c):
    inner = (rf"{y} \max\left(\ln {x}, {LOG_FLOOR}\right) + \left(1 - {y}\right)"
             rf" \max\left(\ln\left(1 - {x}\right), {LOG_FLOOR}\right)")
    return rf"-{w + ' ' if w else ''}\left({inner}\right)"


def _tex_logits(x, y, w, p, c):
    scale = rf"\left(1 + \left({p} - 1\right) {y}\right) " if p else ""
    body = rf"\left(1 - {y}\right) {x} + {scale}\ln\left(1 + e^{{-{x}}}\right)"
    return rf"{w} \left({body}\right)" if w else body


def _tex_mse_d(x, y, w, p, c):
    return rf"2 \left({x} - {y}\right)", rf"-2 \left({x} - {y}\right)"


def _tex_bce_d(x, y, w, p, c):
    lead = f"{w} " if w else ""
    return (rf"{lead}\frac{{{x} - {y}}}{{\max\left({x} \left(1 - {x}\right), 10^{{-12}}\right)}}",
            rf"{lead}\left(\ln\left(1 - {x}\right) - \ln {x}\right)")


def _tex_logits_d(x, y, w, p, c):
    lead = f"{w} " if w else ""
    if p:
        return (rf"{lead}\left(\left(1 + \left({p} - 1\right) {y}\right) \sigma\left({x}\right) - {p} {y}\right)",
                rf"{lead}\left(-{x} + \left({p} - 1\right) \ln\left(1 + e^{{-{x}}}\right)\right)")
    return rf"{lead}\left(\sigma\left({x}\right) - {y}\right)", rf"-{lead}{x}"


# smooth L1 and Huber written with min, so one formula holds on both sides of c: with m = min(|d|, c),
# smooth L1 is m²/(2c) + |d| - m and Huber m²/2 + c(|d| - m); their slopes are d/c and d clamped to [-1, 1], [-c, c]
def _smooth(x, y, w, p, c):
    m = sp.Min(sp.Abs(x - y), c)
    return m**2 / (2 * c) + sp.Abs(x - y) - m


def _smooth_d(x, y, w, p, c):
    slope = sp.Max(sp.Min((x - y) / c, 1), -1)
    return slope, -slope


def _huber(x, y, w, p, c):
    m = sp.Min(sp.Abs(x - y), c)
    return m**2 / 2 + c * (sp.Abs(x - y) - m)


def _huber_d(x, y, w, p, c):
    slope = sp.Max(sp.Min(x - y, c), -c)
    return slope, -slope


def _np_smooth(x, y, w, p, c):
    z = np.abs(x - y)  # torch's kernel: z < beta ? 0.5 z z / beta : z - 0.5 beta
    return np.where(z < c, 0.5 * z * z / c, z - 0.5 * c)


def _np_smooth_d(x, y, w, p, c):
    slope = np.clip((x - y) / c, -1, 1)
    return slope, -slope


def _np_huber(x, y, w, p, c):
    z = np.abs(x - y)  # torch's kernel: z < delta ? 0.5 z z : delta (z - 0.5 delta)
    return np.where(z < c, 0.5 * z * z, c * (z - 0.5 * c))


def _np_huber_d(x, y, w, p, c):
    slope = np.clip(x - y, -c, c)
    return slope, -slope


def _tex_smooth(x, y, w, p, c):
    d = rf"\left\lvert {x} - {y}\right\rvert"
    return (rf"\begin{{cases}} \frac{{\left({x} - {y}\right)^{{2}}}}{{2 \cdot {c}}} & \text{{if }} {d} \lt {c} \\"
            rf" {d} - \frac{{{c}}}{{2}} & \text{{otherwise}} \end{{cases}}")


def _tex_smooth_d(x, y, w, p, c):
    slope = rf"\operatorname{{clamp}}\left(\frac{{{x} - {y}}}{{{c}}}, -1, 1\right)"
    return slope, f"-{slope}"


def _tex_huber(x, y, w, p, c):
    d = rf"\left\lvert {x} - {y}\right\rvert"
    return (rf"\begin{{cases}} \frac{{\left({x} - {y}\right)^{{2}}}}{{2}} & \text{{if }} {d} \lt {c} \\"
            rf" {c} \left({d} - \frac{{{c}}}{{2}}\right) & \text{{otherwise}} \end{{cases}}")


def _tex_huber_d(x, y, w, p, c):
    slope = rf"\operatorname{{clamp}}\left({x} - {y}, -{c}, {c}\right)"
    return slope, f"-{slope}"


@dataclass(frozen=True)
class Loss(Op):
    """A loss of input and target: elementwise, then reduced (mean, sum or none)."""

    f: Callable[..., sp.Expr] = field(default=None, repr=False)  # per element: (x, y, w, p) -> loss
    df: Callable[..., tuple[sp.Expr, sp.Expr]] = field(default=None, repr=False)  # (d/dx, d/dy) torch's backward
    array_f: Callable[..., np.ndarray] = field(default=None, repr=False)
    array_df: Callable[..., tuple[np.ndarray, np.ndarray]] = field(default=None, repr=False)
    tex: Callable[..., str] = field(default=None, repr=False)
    tex_d: Callable[..., tuple[str, str]] = field(default=None, repr=False)
    optional: tuple[str, ...] = ()  # the tensor arguments beside input and target: weight, pos_weight
    signature: tuple[str, ...] = ()  # torch's arguments after input, in order
    kink: str = ""  # note key where torch's convention replaces a derivative that does not exist
    kink_at: Callable[[Any, Any], Any] = field(default=None, repr=False)  # (x, y) -> where that is, on numbers or arrays
    number: tuple[str, Fraction] | None = None  # a number argument after the tensors, with torch's default: ("beta", 1)

    # -- reading a call

    def call(self, walk, name, subject, args, kwargs, *, top):
        bound = bind_args(name, args, kwargs, self.signature, required=("target",))
        for key in DEPRECATED:
            if key in bound and not _is_none(bound[key]):
                raise ExprError(f"{name}()'s {key}= is deprecated in torch (allowed: reduction='mean', 'sum' or 'none')")
        operands = [walk.tensor(subject, f"{name}'s input"), walk.tensor(bound["target"], f"{name}'s target")]
        params: dict[str, Any] = {"reduction": _reduction(bound.get("reduction"))}
        if self.number is not None:
            key, default = self.number
            value = default if key not in bound else walk.visit(bound[key])
            if isinstance(value, str) or value <= 0:
                raise ExprError(f"{name}()'s {key}= must be a positive number (allowed: a number above 0, such as"
                                f" {key}={float(default):g})")
            params[key] = value
        for key in self.optional:
            given = key in bound and not _is_none(bound[key])
            params[key] = given
            if given:
                tensor = walk.tensor(bound[key], f"{name}'s {key}=")
                if walk.requires_grad(tensor):
                    raise ExprError(f"{name}() is not differentiable with respect to {key}=, as torch says:"
                                    f" '{tensor}' requires grad (allowed: a {key}= that does not require grad)")
                operands.append(tensor)
        return walk.make(self.key, operands, params, top=top)

    # -- shapes and operands

    def _slots(self, params: dict[str, Any]) -> dict[str, int]:
        """Return each optional argument's operand position."""
        present = [k for k in self.optional if params.get(k)]
        return {k: 2 + i for i, k in enumerate(present)}

    def shape(self, shapes, params):
        shape = shapes[0]
        if shapes[1] != shape:
            raise ShapeError(f"{self.key}: target size {fmt_shape(shapes[1])} must be the same as input size"
                             f" {fmt_shape(shape)}, as torch requires (allowed: a target of the input's shape)")
        for key, i in self._slots(params).items():
            try:
                fits = broadcast(shape, shapes[i]) == shape
            except ShapeError:
                fits = False
            if not fits:
                raise ShapeError(f"{self.key}: {key}= of size {fmt_shape(shapes[i])} does not broadcast to the input's"
                                 f" size {fmt_shape(shape)} (allowed: sizes equal or 1, compared from the right)")
        return shape if params["reduction"] == "none" else ()

    def _elements(self, xs, shapes, params):
        """Yield (x, y, w, p) for each input element, weight and pos_weight 1 where absent."""
        slots = self._slots(params)
        for k in range(numel(shapes[0])):
            index = unravel(k, shapes[0])
            extra = [xs[slots[key]][source_index(index, shapes[slots[key]])] if key in slots else sp.Integer(1)
                     for key in ("weight", "pos_weight")]
            yield (xs[0][k], xs[1][k], *extra, self._number(params))

    def _number(self, params: dict[str, Any]) -> Any:
        """Return the loss's number argument (beta, delta) as the exact forms take it, or None."""
        return None if self.number is None else sp.Rational(params[self.number[0]])

    def dtype_params(self, cast, params):
        if self.number is None:
            return params
        key = self.number[0]  # torch turns the number into the tensor's dtype before its kernel
        return {**params, key: Fraction(float(cast(np.array(float(params[key])))))}

    def _reduce(self, terms: list[sp.Expr], params) -> list[sp.Expr]:
        if params["reduction"] == "none":
            return terms
        total = sp.Add(*terms)
        if params["reduction"] == "sum":
            return [total]
        return [sp.Mul(sp.Rational(1, len(terms)), total, evaluate=False)]

    # -- exact

    def forward(self, xs, shapes, params):
        return self._reduce([self.f(*e) for e in self._elements(xs, shapes, params)], params)

    def partials(self, xs, outs, shapes, params):
        n = numel(shapes[0])
        scale = sp.Rational(1, n) if params["reduction"] == "mean" else sp.Integer(1)
        for k, e in enumerate(self._elements(xs, shapes, params)):
            out = k if params["reduction"] == "none" else 0
            for a, d in enumerate(self.df(*e)):
                yield out, a, k, d * scale

    def kinks(self, xs, outs, shapes, params):
        if not self.kink:
            return
        hits = [k for k, e in enumerate(self._elements(xs, shapes, params)) if self.kink_at(e[0], e[1])]
        if params["reduction"] != "none":
            hits = hits[:1]  # one output: one note (it does not name the element)
        for k in hits:
            yield (k if params["reduction"] == "none" else 0), self.kink

    # -- float64 arrays

    def _arrays(self, xs, shapes, params):
        """Return x, y, w, p as flat float64 arrays of the input's size."""
        slots = self._slots(params)
        x, y = flat(xs[0]), flat(xs[1])
        extra = [np.broadcast_to(np.asarray(xs[slots[k]], dtype=np.float64).reshape(shapes[slots[k]]),
                                 shapes[0]).reshape(-1) if k in slots else np.ones_like(x)
                 for k in ("weight", "pos_weight")]
        c = None if self.number is None else float(params[self.number[0]])
        return x, y, *extra, c

    def array_forward(self, xs, shapes, params):
        with np.errstate(all="ignore"):
            terms = self.array_f(*self._arrays(xs, shapes, params))
        if params["reduction"] == "none":
            return terms.reshape(shapes[0])
        return np.array(terms.sum() if params["reduction"] == "sum" else terms.mean())

    def dtype_forward(self, cast, xs, shapes, params):
        # torch computes each element's loss in the dtype, then sums them (and divides by n for the mean)
        with np.errstate(all="ignore"):
            terms = cast(self.array_f(*self._arrays(xs, shapes, params)))
        if params["reduction"] == "none":
            return terms.reshape(shapes[0])
        total = cast.sum(np.zeros(terms.size, dtype=np.int64), terms, 1)[0]
        return np.array(total if params["reduction"] == "sum" else cast(np.array(total)) / terms.size)

    def dtype_rounding(self, xs, out, shapes, params, *, normal=0.0):
        with np.errstate(all="ignore"):
            terms = np.abs(self.array_f(*self._arrays(xs, shapes, params)))
        return terms if params["reduction"] == "none" else terms.sum()

    def array_local(self, xs, out, shapes, params):
        n = numel(shapes[0])
        with np.errstate(all="ignore"):
            ds = self.array_df(*self._arrays(xs, shapes, params))
        rows = np.arange(n) if params["reduction"] == "none" else np.zeros(n, dtype=np.int64)
        scale = 1 / n if params["reduction"] == "mean" else 1.0
        return [(a, rows, np.arange(n), np.broadcast_to(d * scale, (n,)).copy(), None) for a, d in enumerate(ds)]

    def array_kinks(self, xs, out, shapes, params):
        if not self.kink:
            return
        hits = np.flatnonzero(self.kink_at(flat(xs[0]), flat(xs[1])))
        if hits.size:
            yield (hits if params["reduction"] == "none" else np.zeros(1, dtype=np.int64)), self.kink

    # -- torch

    def run(self, torch, ts, params):
        slots = self._slots(params)
        kw: dict[str, Any] = {k: ts[i] for k, i in slots.items()}
        if self.number is not None:
            kw[self.number[0]] = float(params[self.number[0]])
        return getattr(torch.nn.functional, self.key)(ts[0], ts[1], reduction=params["reduction"], **kw)

    # -- LaTeX

    def _names(self, ts: list[str], params) -> tuple[str, ...]:
        slots = self._slots(params)
        c = "" if self.number is None else sp.latex(sp.Rational(params[self.number[0]]))
        return (ts[0], ts[1], *(ts[slots[k]] if k in slots else "" for k in ("weight", "pos_weight")), c)

    def latex(self, ts, params):
        name = self.key.replace("_", r"\_")
        extra = [rf"\text{{{k.replace('_', ' ')}}} = {ts[i]}" for k, i in self._slots(params).items()]
        if self.number is not None and params[self.number[0]] != self.number[1]:
            extra.append(rf"\{self.number[0]} = {sp.latex(sp.Rational(params[self.number[0]]))}")
        suffix = "" if params["reduction"] == "mean" else rf"_{{\text{{{params['reduction']}}}}}"
        return rf"\operatorname{{{name}}}{suffix}\left({', '.join([ts[0], ts[1], *extra])}\right)"

    def _generic(self, args, out_shape, params) -> tuple[list[str], tuple[str, ...]]:
        """Return the input's letters and x, y, w, p as generic elements."""
        shape = args[0].shape
        letters = list(LETTERS[: len(shape)])
        names = [el(a.tex, letters if i < 2 else aligned(a.shape, letters, shape)) for i, a in enumerate(args)]
        return letters, self._names(names, params)

    def forward_tex(self, out, args, out_shape, params):
        letters, parts = self._generic(args, out_shape, params)
        term = self.tex(*parts)
        if params["reduction"] == "none":
            return f"{el(out, letters)} = {term}"
        body = summed(letters, rf"\left({term}\right)" if letters else term)
        n = numel(args[0].shape)
        return f"{out} = " + (rf"\frac{{1}}{{{n}}} {body}" if params["reduction"] == "mean" and n > 1 else body)

    def backward_tex(self, a, args, out, out_shape, params, up):
        letters, parts = self._generic(args, out_shape, params)
        local = self.tex_d(*parts)[a]
        n = numel(args[0].shape)
        if params["reduction"] == "mean" and n > 1:
            local = rf"\frac{{1}}{{{n}}} \cdot \left({local}\right)"
        return times(up(el(out, letters) if params["reduction"] == "none" else out), local)


@dataclass(frozen=True)
class Composed(Op):
    """l1_loss, which torch composes from other ops: (input - target).abs(), then its mean or sum.

    Reading it makes those ops' nodes (SubBackward0, AbsBackward0, MeanBackward0), as torch's graph has them;
    it never is a node itself.
    """

    def call(self, walk, name, subject, args, kwargs, *, top):
        bound = bind_args(name, args, kwargs, ("target", "size_average", "reduce", "reduction"), required=("target",))
        for key in DEPRECATED:
            if key in bound and not _is_none(bound[key]):
                raise ExprError(f"{name}()'s {key}= is deprecated in torch (allowed: reduction='mean', 'sum' or 'none')")
        x, y = walk.tensor(subject, f"{name}'s input"), walk.tensor(bound["target"], f"{name}'s target")
        reduction = _reduction(bound.get("reduction"))
        shapes = [walk.shape_of(x), walk.shape_of(y)]
        if shapes[1] != shapes[0]:  # torch broadcasts with a warning; as for mse_loss, derive refuses
            raise ExprError(f"{self.key}: target size {fmt_shape(shapes[1])} must be the same as input size"
                            f" {fmt_shape(shapes[0])} (allowed: a target of the input's shape)")
        error = walk.make("abs", [walk.make("sub", [x, y], top=False)], top=top and reduction == "none")
        if reduction == "none":
            return error
        return walk.make(reduction, [error], {"dim": None, "keepdim": False}, top=top)


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _reduction(node: ast.AST | None) -> str:
    if node is None:
        return "mean"
    if isinstance(node, ast.Constant) and node.value in REDUCTIONS and isinstance(node.value, str):
        return node.value
    shown = repr(node.value) if isinstance(node, ast.Constant) else "an expression"
    raise ExprError(f"reduction={shown[:40]} is not a valid value for reduction (allowed: 'mean', 'sum', 'none')")


LOSSES = [
    Loss("mse_loss", "derivative of the squared error", "MseLossBackward0", Spelling(functional=("mse_loss",)),
         f=_mse, df=_mse_d, array_f=_np_mse, array_df=_np_mse_d, tex=_tex_mse, tex_d=_tex_mse_d,
         signature=("target", "size_average", "reduce", "reduction")),
    Loss("binary_cross_entropy", "derivative of the binary cross-entropy", "BinaryCrossEntropyBackward0",
         Spelling(functional=("binary_cross_entropy",)), f=_bce, df=_bce_d, array_f=_np_bce, array_df=_np_bce_d,
         tex=_tex_bce, tex_d=_tex_bce_d, optional=("weight",),
         signature=("target", "weight", "size_average", "reduce", "reduction"), kink="bce_clamp", inexact32=True,
         kink_at=lambda x, y: (x == 0) | (x == 1)),
    Loss("binary_cross_entropy_with_logits", "derivative of the binary cross-entropy with logits",
         "BinaryCrossEntropyWithLogitsBackward0", Spelling(functional=("binary_cross_entropy_with_logits",)),
         f=_logits, df=_logits_d, array_f=_np_logits, array_df=_np_logits_d, tex=_tex_logits, tex_d=_tex_logits_d,
         optional=("weight", "pos_weight"),
         signature=("target", "weight", "size_average", "reduce", "reduction", "pos_weight"), inexact32=True),
    Composed("l1_loss", "derivative of the absolute error", "", Spelling(functional=("l1_loss",)), composite=True),
    Loss("smooth_l1_loss", "derivative of the smooth L1 loss", "SmoothL1LossBackward0",
         Spelling(functional=("smooth_l1_loss",)), f=_smooth, df=_smooth_d, array_f=_np_smooth, array_df=_np_smooth_d,
         tex=_tex_smooth, tex_d=_tex_smooth_d, signature=("target", "size_average", "reduce", "reduction", "beta"),
         number=("beta", Fraction(1))),
    Loss("huber_loss", "derivative of the Huber loss", "HuberLossBackward0", Spelling(functional=("huber_loss",)),
         f=_huber, df=_huber_d, array_f=_np_huber, array_df=_np_huber_d, tex=_tex_huber, tex_d=_tex_huber_d,
         signature=("target", "reduction", "delta"), number=("delta", Fraction(1))),
]


def mse_criterion(args: list[ast.expr], reduction: str) -> ast.expr:
    """Return nn.MSELoss(reduction=...)(a, b) as the functional call it is: torch.nn.functional.mse_loss(a, b)."""
    keywords = [ast.keyword("reduction", ast.Constant(reduction))] if reduction != REDUCTIONS[0] else []
    return ast.Call(ast.parse("torch.nn.functional.mse_loss", mode="eval").body, args, keywords)
