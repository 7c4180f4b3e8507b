"""softmax and log_softmax along a dim, with torch's shift by the maximum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..floats import fmath
from ..floats.ieee import number
from .base import LETTERS, Op, bare, sum_tex, Spelling, bind_args, int_arg, checked, el, flat, free, norm_dim, numel, summed, times
from .reductions import reduce_groups

STABLE_SHIFT = 700  # softmax shifts a group by its maximum when that is larger in size (e^709 ≈ 8e307)


@dataclass(frozen=True)
class Softmax(Op):
    """softmax and log_softmax along dim."""

    log: bool = False

    def shape(self, shapes, params):
        dim = norm_dim(params["dim"], len(shapes[0]))
        size = shapes[0][dim] if shapes[0] else 1
        checked(numel(shapes[0]) * size, f"{self.key} along a dim of {size}")
        return shapes[0]

    def _groups(self, shape, params):
        return reduce_groups(shape, params["dim"], True)[1]

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

    def array_forward(self, xs, shapes, params):
        groups = self._index(shapes[0], params)
        members = flat(xs[0])[groups]
        shifted = members - members.max(axis=1, keepdims=True)  # as torch: exp never overflows
        total = fmath.exp(shifted).sum(axis=1, keepdims=True)
        rows = shifted - fmath.log(total) if self.log else fmath.exp(shifted) / total
        out = np.empty(xs[0].size)
        out[groups] = rows
        return out.reshape(shapes[0])

    def dtype_forward(self, cast, xs, shapes, params):
        if self.log:
            return self.array_forward(xs, shapes, params)
        # torch's kernel adds the exps one after another; along the last dim it then multiplies by the sum's
        # reciprocal (two roundings), along another dim it divides
        groups = self._index(shapes[0], params)
        members = flat(xs[0])[groups]
        exps = cast(fmath.exp(cast(members - members.max(axis=1, keepdims=True))))
        rows = np.repeat(np.arange(groups.shape[0]), groups.shape[1])
        total = cast.sum(rows, exps.reshape(-1), groups.shape[0])[:, None]
        last = not shapes[0] or norm_dim(params["dim"], len(shapes[0])) == len(shapes[0]) - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            values = cast(exps * cast(1 / total)) if last else cast(exps / total)
        out = np.empty(xs[0].size)
        out[groups] = values
        return out.reshape(shapes[0])

    def dtype_rounding(self, xs, out, shapes, params, *, normal=0.0):
        # the kernel rounds x - max, each exp and their sum (about 1), then its log: log_softmax's result can be
        # far smaller than these, as 0 - log(1 + 2e-7) is
        groups = self._index(shapes[0], params)
        members = flat(xs[0])[groups]
        shifted = np.abs(members - members.max(axis=1, keepdims=True))
        sizes = np.empty(flat(xs[0]).size)
        sizes[groups] = shifted + 1 if self.log else np.abs(flat(out)[groups]) * (shifted + 2)
        return sizes

    def array_local(self, xs, out, shapes, params):
        groups = self._index(shapes[0], params)
        o = flat(out)[groups]
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

    def forward_numbers(self, k, xs, shapes, params, number):
        group = self._index(shapes[0], params)
        members = flat(xs[0])
        (g,) = [row for row in group if k in row]
        total = sum_tex([f"e^{{{bare(number(float(members[j])))}}}" for j in g])
        if self.log:
            return rf"{number(float(members[k]))} - \ln\left({total}\right)"
        return rf"\frac{{e^{{{bare(number(float(members[k])))}}}}}{{{total}}}"

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

    def call_params(self, walk, name, args, kwargs):
        bound = bind_args(name, args, kwargs, ("dim",), required=("dim",))
        return {"dim": int_arg(bound["dim"], "dim")}

    def dtype_vjp(self, cast, upstream, out, shape, params, operands):
        # torch's kernels: g - exp(o) · Σg for log_softmax, o · (g - Σ g·o) for softmax
        groups = self._index(shape, params)
        g, o = upstream[groups], out[groups]
        rows = np.repeat(np.arange(groups.shape[0]), groups.shape[1])
        if self.log:
            total = cast.sum(rows, g.reshape(-1), groups.shape[0])[:, None]
            rows_out = cast(g - cast(cast(fmath.exp(o)) * total))
        else:
            total = cast.sum(rows, cast(g * o).reshape(-1), groups.shape[0])[:, None]
            rows_out = cast(o * cast(g - total))
        result = np.empty(out.size)
        result[groups] = rows_out
        return result


SOFTMAX = [
    Softmax("softmax", "derivative of softmax", "SoftmaxBackward0", Spelling(names=("softmax",), functional=("softmax",)), inexact32=True),
    Softmax("log_softmax", "derivative of log-softmax", "LogSoftmaxBackward0", Spelling(names=("log_softmax",), functional=("log_softmax",)), log=True, inexact32=True),
]
