"""Reductions: sum, mean, norm, max, min, over all elements or along a dim."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import sympy as sp

from .base import (
    LETTERS, OPERAND, OUT, ExprError, Op, Shape, Spelling, bind_args, bool_arg, el, flat, int_arg, norm_dim, numel, ravel,
    list_tex, sum_tex, summed, times, unravel,
)
from .derivatives import NormShare, Printer, TieShare

def reduce_groups(shape: Shape, dim: int | None, keepdim: bool) -> tuple[Shape, list[list[int]]]:
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


def _integer_literal(node: ast.AST) -> bool:
    """Tell whether an argument is written as an integer (a dim), not a tensor."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


@dataclass(frozen=True)
class Reduction(Op):
    """sum, mean, norm, max, min: one output element per group of inputs."""

    combine: Callable[[list[sp.Expr]], sp.Expr] = field(default=None, repr=False)
    d: Callable[[sp.Expr, list[sp.Expr], sp.Expr], sp.Expr] = field(default=None, repr=False)
    tex: Callable[..., str] = field(default=None, repr=False)
    method: str = ""
    dims: bool = False  # accepts dim= and keepdim=
    kink_at: Callable[[list[sp.Expr], sp.Expr], str | None] = field(default=None, repr=False)
    array_combine: Callable[[np.ndarray], np.ndarray] = field(default=None, repr=False)  # rows of members -> outputs
    array_d: Callable[[np.ndarray, np.ndarray], np.ndarray] = field(default=None, repr=False)  # d out / d member, on rows
    # in a dtype, given (cast, operand, groups, output shape), where torch does not compute as array_combine
    in_dtype: Callable[..., np.ndarray] | None = field(default=None, repr=False)
    extreme: bool = False  # max or min: one element's value, its derivative shared among tied extremes
    same_local: bool = False  # every member's local derivative is the same number
    divides: bool = False  # torch's backward divides the gradient by the group's size (mean), not multiplies by 1/n
    pairwise: str = ""  # the op that torch.max(a, b) and a.max(b) of two tensors are (maximum)

    kink_of_group = True

    def array_fraction(self, a, xs, out, shapes, params):
        if not self.divides:
            return None
        _, groups = self._index(shapes[0], params)
        size = np.asarray(out).size
        return np.ones(size), np.full(size, float(groups.shape[1]))

    @property
    def local_from_ties(self):
        return self.extreme

    def call(self, walk, name, subject, args, kwargs, *, top):
        other = args[0] if len(args) == 1 and not kwargs else kwargs["other"] if not args and set(kwargs) == {"other"} else None
        if self.pairwise and other is not None and not _integer_literal(other):
            a = walk.tensor(subject, f"{name}'s operand")
            return walk.make(self.pairwise, [a, walk.tensor(other, f"{name}'s other operand")], top=top)
        return super().call(walk, name, subject, args, kwargs, top=top)

    def call_params(self, walk, name, args, kwargs):
        if self.extreme and (args or kwargs):
            raise ExprError(f"{name}(dim) returns values and indices; only the {name} over all elements is"
                            f" supported (allowed: x.{name}())")
        if not self.dims:
            return super().call_params(walk, name, args, kwargs)
        bound = bind_args(name, args, kwargs, ("dim", "keepdim"))
        return {"dim": int_arg(bound.get("dim"), "dim"), "keepdim": bool_arg(bound.get("keepdim"), "keepdim")}

    def dtype_forward(self, cast, xs, shapes, params):
        if self.in_dtype is None:
            return self.array_forward(xs, shapes, params)
        out_shape, groups = self._index(shapes[0], params)
        return self.in_dtype(cast, xs[0], groups, out_shape)

    def _index(self, shape: Shape, params: dict[str, Any]) -> tuple[Shape, np.ndarray]:
        out_shape, groups = reduce_groups(shape, params.get("dim"), params.get("keepdim", False))
        return out_shape, np.array(groups, dtype=np.int64).reshape(len(groups), -1)

    def array_forward(self, xs, shapes, params):
        out_shape, groups = self._index(shapes[0], params)
        return self.array_combine(flat(xs[0])[groups]).reshape(out_shape)

    def array_local(self, xs, out, shapes, params):
        _, groups = self._index(shapes[0], params)
        members, outs = flat(xs[0])[groups], flat(out)[:, None]
        values = np.broadcast_to(self.array_d(members, outs), members.shape).reshape(-1).copy()
        rows = np.repeat(np.arange(groups.shape[0]), groups.shape[1])
        masked = values == 0 if self.extreme else None  # TieShare is applied as a mask
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

    def forward_numbers(self, k, xs, shapes, params, number):
        _, groups = self._index(shapes[0], params)
        members = [number(float(v)) for v in flat(xs[0])[groups[k]]]
        if self.extreme:
            return rf"\{self.key}\left({list_tex(members)}\right)"
        if self.key == "norm":
            return rf"\sqrt{{{sum_tex([f'{{{m}}}^{{2}}' for m in members])}}}"
        total = sum_tex(members)
        return rf"\frac{{1}}{{{len(members)}}} \left({total}\right)" if self.key == "mean" else total

    def backward_tex(self, a, args, out, out_shape, params, up):
        x = args[0]
        own, index, _ = self._letters(x.shape, params)
        n = numel(x.shape) if params.get("dim") is None else (x.shape[norm_dim(params["dim"], len(x.shape))] if x.shape else 1)
        a_sym = OPERAND[0]
        local = self.d(a_sym, [a_sym] * (2 if self.extreme else n), OUT)
        text = Printer({a_sym: el(x.tex, own), OUT: el(out, index)}).doprint(local)
        return times(up(el(out, index)), text)

    def array_kinks(self, xs, out, shapes, params):
        if self.kink_at is None:
            return
        _, groups = self._index(shapes[0], params)
        members, outs = flat(xs[0])[groups], flat(out)
        if self.key == "norm":
            hits = outs == 0
        else:
            hits = (members == outs[:, None]).sum(axis=1) > 1
        if hits.any():
            yield np.flatnonzero(hits), "norm0" if self.key == "norm" else "tie"

    def shape(self, shapes, params):
        if not self.dims and not shapes[0]:
            return ()
        return reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))[0]

    def forward(self, xs, shapes, params):
        groups = reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))[1]
        return [self.combine([xs[0][j] for j in g]) for g in groups]

    def partials(self, xs, outs, shapes, params):
        groups = reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))[1]
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
        groups = reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))[1]
        for k, g in enumerate(groups):
            key = self.kink_at([xs[0][j] for j in g], outs[k]) if self.kink_at else None
            if key:
                yield k, key

    def run(self, torch, ts, params):
        kw = {} if params.get("dim") is None else params
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


def _sum_in_dtype(cast, x, groups, out_shape):
    """torch adds the terms in the dtype: a contiguous row by its cascade, other groups one after another."""
    members = np.ravel(x)[groups]
    size, n = groups.shape
    if n > 1 and np.all(np.diff(groups, axis=1) == 1):  # all elements, or along the last dim: contiguous rows
        return cast.inner_sum(members).reshape(out_shape)
    stride = groups[0, 1] - groups[0, 0] if n > 1 else 0
    if n > 1 and np.all(np.diff(groups, axis=1) == stride) and size % stride == 0:  # along a dim before the last
        blocks = members.reshape(size // stride, stride, n)  # each block: the n rows of `stride` columns
        return np.concatenate([cast.outer_sum(b.T) for b in blocks]).reshape(out_shape)
    rows = np.repeat(np.arange(size), n)
    return cast.sum(rows, members.reshape(-1), groups.shape[0]).reshape(out_shape)


def _mean_in_dtype(cast, x, groups, out_shape):
    return (cast(_sum_in_dtype(cast, x, groups, out_shape)) / groups.shape[1]).reshape(out_shape)


def _norm_in_dtype(cast, x, groups, out_shape):
    """torch sums the squares in the dtype: they overflow or vanish there; one element's norm is its abs."""
    if np.size(x) == 1:
        return np.abs(np.ravel(x)[0])
    return np.sqrt(cast(cast(np.square(np.ravel(x))).sum()))


REDUCTIONS = [
    Reduction("sum", "sum rule", "SumBackward0", Spelling(names=("sum",)), saves=False, in_dtype=_sum_in_dtype, same_local=True, combine=lambda m: sp.Add(*m),
              d=lambda a, m, o: sp.Integer(1), tex=lambda t, p: rf"\operatorname{{sum}}{_dim_suffix(p)}\left({t}\right)",
              method="sum", dims=True, array_combine=lambda m: m.sum(axis=1), array_d=lambda m, o: np.ones_like(m)),
    Reduction("mean", "sum rule and constant multiple rule", "MeanBackward0", Spelling(names=("mean",)), saves=False,
              in_dtype=_mean_in_dtype, same_local=True,
              combine=lambda m: sp.Mul(sp.Rational(1, len(m)), sp.Add(*m), evaluate=False), d=lambda a, m, o: sp.Rational(1, len(m)),
              tex=lambda t, p: rf"\operatorname{{mean}}{_dim_suffix(p)}\left({t}\right)", method="mean", dims=True,
              array_combine=lambda m: m.mean(axis=1), array_d=lambda m, o: np.full_like(m, 1 / m.shape[1]), divides=True),
    Reduction("norm", "chain rule with the power rule", "LinalgVectorNormBackward0", Spelling(names=("norm",)),
              in_dtype=_norm_in_dtype,
              # torch takes one element's norm as its abs, without squaring it out of float64's range
              combine=lambda m: sp.Abs(m[0]) if len(m) == 1 else sp.sqrt(sp.Add(*(e**2 for e in m))),
              d=lambda a, m, o: NormShare(a, o),
              tex=lambda t, p: rf"\left\lVert {t} \right\rVert", method="norm",
              kink_at=lambda m, o: "norm0" if o == 0 else None,
              array_combine=lambda m: np.abs(m[:, 0]) if m.shape[1] == 1 else np.sqrt((m * m).sum(axis=1)),
              array_d=NormShare.numeric),
    Reduction("max", "derivative of max", "MaxBackward1", Spelling(names=("max",)), extreme=True, combine=lambda m: sp.Max(*m),
              d=_extreme_share, tex=lambda t, p: rf"\max\left({t}\right)", method="max", kink_at=_tie,
              array_combine=lambda m: m.max(axis=1), array_d=_tie_share, pairwise="maximum"),
    Reduction("min", "derivative of min", "MinBackward1", Spelling(names=("min",)), extreme=True, combine=lambda m: sp.Min(*m),
              d=_extreme_share, tex=lambda t, p: rf"\min\left({t}\right)", method="min", kink_at=_tie,
              array_combine=lambda m: m.min(axis=1), array_d=_tie_share, pairwise="minimum"),
]
