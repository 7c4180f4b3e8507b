"""Layers of torch.nn.functional: layer_norm, and those torch composes from other ops or skips (normalize, dropout)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy as sp

from ..floats.ieee import exact_number
from ..floats.numeric import active_rounding
from .derivatives import GroupMean, GroupVar, Hat, Rstd
from .base import (
    LETTERS, ExprError, Op, ShapeError, Spelling, bind_args, bool_arg, checked, constant_tex, el, flat, fmt_shape,
    int_arg, int_index, num, numel, summed, times,
)


def _number(walk, node: ast.AST | None, key: str, default: Fraction) -> Fraction:
    if node is None:
        return default
    value = walk.visit(node)
    if isinstance(value, str):
        raise ExprError(f"{key}= must be a number (allowed: a number such as {num(default)})")
    return value


@dataclass(frozen=True)
class Normalize(Op):
    """torch.nn.functional.normalize(x, p=2, dim=1, eps=1e-12): x / max(‖x‖ along dim, eps), as the nodes torch records.

    torch computes x.norm(p, dim, keepdim=True).clamp_min(eps).expand_as(x), then divides: LinalgVectorNormBackward0,
    ClampMinBackward0, ExpandBackward0 and DivBackward0 in its graph. It never is a node itself.
    """

    def call(self, walk, name, subject, args, kwargs, *, top):
        bound = bind_args(name, args, kwargs, ("p", "dim", "eps"))
        p = _number(walk, bound.get("p"), "p", Fraction(2))
        if p != 2:
            raise ExprError(f"{name}() divides by the 2-norm here, got p={num(p)} (allowed: p=2, the default)")
        dim = int_arg(bound.get("dim"), "dim")
        eps = _number(walk, bound.get("eps"), "eps", Fraction("1e-12"))
        x = walk.tensor(subject, f"{name}'s input")
        norm = walk.make("norm", [x], {"dim": 1 if dim is None else dim, "keepdim": True}, top=False)
        floor = walk.make("clamp_min", [norm], {"lo": eps, "hi": None}, top=False)
        wide = walk.make("expand", [floor], {"sizes": walk.shape_of(x)}, top=False)
        return walk.make("div", [x, wide], top=top)


@dataclass(frozen=True)
class Dropout(Op):
    """torch.nn.functional.dropout(x, p, training=False): x itself, as in model.eval(); torch records no node.

    In training (the default) torch zeroes elements at random and scales the rest by 1/(1 - p), which derive
    does not draw; with p=0 torch returns x itself there too.
    """

    def call(self, walk, name, subject, args, kwargs, *, top):
        bound = bind_args(name, args, kwargs, ("p", "training", "inplace"))
        p = _number(walk, bound.get("p"), "p", Fraction(1, 2))
        if not 0 <= p <= 1:
            raise ExprError(f"dropout probability has to be between 0 and 1, but got {num(p)} (allowed: 0 <= p <= 1)")
        training = True if bound.get("training") is None else bool_arg(bound["training"], "training")
        if bool_arg(bound.get("inplace"), "inplace"):
            raise ExprError(f"{name}(inplace=True) changes its input in place (allowed: inplace=False)")
        if training and p != 0:
            raise ExprError(f"{name}() in training zeroes elements at random, which derive does not draw"
                            f" (allowed: {name}(x, p, training=False), as after model.eval(), or p=0)")
        if top and isinstance(subject, ast.Name):
            raise ExprError(f"{name}() here returns '{subject.id}' itself, so this step would be no new tensor"
                            f" (allowed: {name}() around an operation, such as {name}(x @ w, 0.5, training=False))")
        return walk.visit(subject, top=top)


def _is_none(node: ast.AST | None) -> bool:
    return node is None or isinstance(node, ast.Constant) and node.value is None


@dataclass(frozen=True)
class LayerNorm(Op):
    """torch.nn.functional.layer_norm(x, normalized_shape, weight, bias, eps=1e-5): each group of the last dims
    centred by its mean and scaled by 1 / sqrt(var + eps) (var divides by n, not n - 1), then times weight plus bias.

    torch records one node, NativeLayerNormBackward0, whose backward is the derivative of the whole group:
    y_k = x̂_k w_k + b_k with x̂ = (x - μ) r and r = 1 / sqrt(σ² + ε) gives
    ∂y_k/∂x_j = w_k r (δ_kj - 1/n - x̂_k x̂_j / n), ∂y_k/∂w_k = x̂_k, ∂y_k/∂b_k = 1.
    """

    def call(self, walk, name, subject, args, kwargs, *, top):
        bound = bind_args(name, args, kwargs, ("normalized_shape", "weight", "bias", "eps"), required=("normalized_shape",))
        x = walk.tensor(subject, f"{name}'s input")
        given = bound["normalized_shape"]
        try:
            if not isinstance(given, (ast.Tuple, ast.List)):
                raise ExprError("not a tuple")  # torch's F.layer_norm takes a tuple or a list (nn.LayerNorm an int too)
            normalized = tuple(int_index(n) for n in given.elts)
        except ExprError:
            raise ExprError(f"{name}()'s normalized_shape must be a tuple or list of integers, the input's last sizes"
                            " (allowed: (4,) or [2, 4])") from None
        operands, present = [x], {}
        for key in ("weight", "bias"):
            present[key] = not _is_none(bound.get(key))
            if present[key]:
                operands.append(walk.tensor(bound[key], f"{name}'s {key}"))
        eps = _number(walk, bound.get("eps"), "eps", Fraction("1e-5"))
        if eps < 0:
            raise ExprError(f"{name}()'s eps must not be negative, got {num(eps)} (allowed: eps >= 0)")
        return walk.make(self.key, operands, {"normalized": normalized, "eps": eps, **present}, top=top)

    def shape(self, shapes, params):
        x, normalized = shapes[0], params["normalized"]
        if not normalized or tuple(x[len(x) - len(normalized):]) != normalized or len(normalized) > len(x):
            raise ShapeError(f"layer_norm's normalized_shape {fmt_shape(normalized)} must be the input's last sizes,"
                             f" and the input is {fmt_shape(x)} (allowed: normalized_shape={fmt_shape(x[-1:])})")
        for what, shape in zip(self._names(params)[1:], shapes[1:]):
            if tuple(shape) != normalized:
                raise ShapeError(f"layer_norm's {what} is {fmt_shape(shape)}, but normalized_shape is {fmt_shape(normalized)}"
                                 f" (allowed: a {what} of shape {fmt_shape(normalized)})")
        checked(numel(x) * numel(normalized), "layer_norm")
        return x

    def _names(self, params):
        return ["input"] + [key for key in ("weight", "bias") if params[key]]

    def exact_params(self, params):
        return {**params, "eps": exact_number(params["eps"])}

    def _slots(self, params):
        """Return the operand index of the weight and of the bias (None where not given)."""
        names = self._names(params)
        return tuple(names.index(k) if k in names else None for k in ("weight", "bias"))

    def _groups(self, shapes, params):
        n = numel(params["normalized"])
        return n, [range(g * n, g * n + n) for g in range(numel(shapes[0]) // n)]

    def forward(self, xs, shapes, params):
        n, groups = self._groups(shapes, params)
        w, b = self._slots(params)
        out = [sp.Integer(0)] * numel(shapes[0])
        for g in groups:
            members = [xs[0][j] for j in g]
            mean = GroupMean(*members)
            scale = 1 / sp.sqrt(GroupVar(*members) + params["eps"])
            for k in g:
                y = sp.Add(xs[0][k], sp.Mul(-1, mean, evaluate=False), evaluate=False) * scale
                y = y * xs[w][k % n] if w is not None else y
                out[k] = y + xs[b][k % n] if b is not None else y
        return out

    def partials(self, xs, outs, shapes, params):
        n, groups = self._groups(shapes, params)
        w, b = self._slots(params)
        for g in groups:
            members = [xs[0][j] for j in g]
            scale = Rstd(params["eps"], *members)  # written 1 / sqrt(σ² + ε) and x̂: the local derivatives stay short
            hat = {j: Hat(xs[0][j], params["eps"], *members) for j in g}
            for k in g:
                weight = xs[w][k % n] if w is not None else sp.Integer(1)
                for j in g:
                    delta = sp.Integer(1 if j == k else 0)
                    yield k, 0, j, weight * scale * (delta - sp.Rational(1, n) - hat[k] * hat[j] / n)
                if w is not None:
                    yield k, w, k % n, hat[k]
                if b is not None:
                    yield k, b, k % n, sp.Integer(1)

    def _moments(self, x, shapes, params):
        n = numel(params["normalized"])
        rows = flat(x).reshape(-1, n)
        cast = active_rounding()
        if n > 1 and getattr(cast, "refuse", None) is not None:
            largest = np.max(np.abs(np.where(np.isfinite(rows), rows, 0.0)))
            limit = float(np.sqrt(np.finfo(getattr(cast, "dtype")).max / n)) / 2
            if largest >= limit:
                cast.refuse(f"layer_norm of numbers as large as {largest:.3g}: torch's {cast.dtype} moments square them"
                            f" and overflow in an order its kernel picks (allowed: numbers below {limit:.3g} in size"
                            f" in groups of {n})")
        with np.errstate(all="ignore"):
            centred = rows - rows.mean(axis=1, keepdims=True)
            variance = (centred * centred).mean(axis=1, keepdims=True)
            if n == 1:  # torch's kernel takes a group of one as x·x - x·x: nan where x·x overflows the dtype
                keep = active_rounding() or (lambda v: v)
                variance = keep(keep(rows * rows) - keep(rows * rows))
            scale = 1 / np.sqrt(variance + float(params["eps"]))
        return n, centred * scale, scale

    def array_forward(self, xs, shapes, params):
        n, hat, _ = self._moments(xs[0], shapes, params)
        w, b = self._slots(params)
        y = hat * (flat(xs[w]) if w is not None else 1.0) + (flat(xs[b]) if b is not None else 0.0)
        return y.reshape(shapes[0])

    def array_local(self, xs, out, shapes, params):
        n, hat, scale = self._moments(xs[0], shapes, params)
        w, b = self._slots(params)
        weight = np.broadcast_to(flat(xs[w]) if w is not None else np.ones(n), hat.shape)
        delta = np.eye(n)
        values = (weight * scale)[:, :, None] * (delta[None] - 1 / n - hat[:, :, None] * hat[:, None, :] / n)
        index = np.arange(hat.size).reshape(hat.shape)
        rows = np.broadcast_to(index[:, :, None], values.shape).reshape(-1)
        cols = np.broadcast_to(index[:, None, :], values.shape).reshape(-1)
        local = [(0, rows, cols, values.reshape(-1), None)]
        every, slot = np.arange(hat.size), np.arange(hat.size) % n
        if w is not None:
            local.append((w, every, slot, hat.reshape(-1), None))
        if b is not None:
            local.append((b, every, slot, np.ones(hat.size), None))
        return local

    def vjp_rounding(self, a, upstream, xs, out, shapes, params):
        # torch's CPU kernel: dx = r·g + b·x + c with g = dy·w, b = (Σg·μ - Σg·x)·r³/n, c = -b·μ - Σg·r/n, its terms
        # far larger than dx where they cancel; dw and db are sums over the groups
        n = numel(params["normalized"])
        w, _ = self._slots(params)
        x = flat(xs[0]).reshape(-1, n)
        dy = np.abs(flat(upstream)).reshape(-1, n)
        _, hat, scale = self._moments(xs[0], shapes, params)
        if a == 0:
            g = dy * (np.abs(flat(xs[w])) if w is not None else 1.0)
            mean = np.abs(x.mean(axis=1, keepdims=True))
            big = (g.sum(axis=1, keepdims=True) * mean + (g * np.abs(x)).sum(axis=1, keepdims=True)) * scale**3 / n
            c = big * mean + g.sum(axis=1, keepdims=True) * scale / n
            return (n + 2) * (scale * g + big * np.abs(x) + c)
        terms = dy * np.abs(hat) if a == w else dy
        return terms.sum(axis=0) * np.sqrt(terms.shape[0])

    def _letters(self, shape, params):
        """Return the input's letters, the normalized ones (the weight's) and the letters of another member."""
        own = list(LETTERS[: len(shape)])
        lead = len(shape) - len(params["normalized"])
        spare = [c for c in LETTERS if c not in own][: len(shape) - lead]
        return own, own[lead:], own[:lead] + spare

    def forward_tex(self, out, args, out_shape, params):
        x = args[0]
        own, inner, _ = self._letters(x.shape, params)
        lead = own[: len(own) - len(inner)]
        names = dict(zip(self._names(params), args))
        body = rf"\frac{{{el(x.tex, own)} - {el(chr(92) + 'mu', lead)}}}{{\sqrt{{{el(chr(92) + 'sigma', lead)}^{{2}} + \varepsilon}}}}"
        if "weight" in names:
            body += rf" \cdot {el(names['weight'].tex, inner)}"
        if "bias" in names:
            body += rf" + {el(names['bias'].tex, inner)}"
        return rf"{el(out, own)} = {body}"

    def forward_numbers(self, k, xs, shapes, params, number):
        n = numel(params["normalized"])
        g = k // n
        members = flat(xs[0])[g * n:(g + 1) * n]
        mean, var = members.mean(), ((members - members.mean()) ** 2).mean()
        text = (rf"\frac{{{number(float(flat(xs[0])[k]))} - {number(float(mean))}}}"
                rf"{{\sqrt{{{number(float(var))} + {constant_tex(params['eps'])}}}}}")
        w, b = self._slots(params)
        if w is not None:
            text += rf" \cdot {number(float(flat(xs[w])[k % n]))}"
        if b is not None:
            text += rf" + {number(float(flat(xs[b])[k % n]))}"
        return text

    def backward_tex(self, a, args, out, out_shape, params, up):
        x = args[0]
        own, inner, other = self._letters(x.shape, params)
        lead = own[: len(own) - len(inner)]
        names = self._names(params)
        hat = lambda idx: el(r"\hat{" + x.tex + "}", idx)  # noqa: E731
        if names[a] == "bias":
            return summed(lead, up(el(out, own)))
        if names[a] == "weight":
            return summed(lead, times(up(el(out, own)), hat(own)))
        weight = el(args[names.index("weight")].tex, [other[len(lead) + i] for i in range(len(inner))]) \
            if "weight" in names else ""
        mine = inner if len(inner) == 1 else ["(" + ",".join(inner) + ")"]
        theirs = [other[len(lead) + i] for i in range(len(inner))]
        delta = rf"\delta_{{{''.join(theirs)}{''.join(inner)}}}"
        n = numel(params["normalized"])
        local = (rf"{weight + ' ' if weight else ''}\frac{{{delta} - \frac{{1}}{{{n}}} - \frac{{1}}{{{n}}}"
                 rf" {hat(lead + theirs)} {hat(own)}}}{{\sqrt{{{el(chr(92) + 'sigma', lead)}^{{2}} + \varepsilon}}}}")
        return summed(theirs, times(up(el(out, lead + theirs)), local))

    def latex(self, ts, params):
        names = self._names(params)
        extra = "".join(f", {ts[i]}" for i in range(1, len(names)))
        return rf"\operatorname{{layer\_norm}}_{{{fmt_shape(params['normalized'])}}}\left({ts[0]}{extra}\right)"

    def run(self, torch, ts, params):
        w, b = self._slots(params)
        return torch.nn.functional.layer_norm(ts[0], params["normalized"], ts[w] if w is not None else None,
                                              ts[b] if b is not None else None, float(params["eps"]))


LAYERS = [
    Normalize("normalize", "chain rule through the norm", "", Spelling(functional=("normalize",)), composite=True),
    Dropout("dropout", "identity", "", Spelling(functional=("dropout",)), composite=True),
    LayerNorm("layer_norm", "chain rule through the mean and the variance", "NativeLayerNormBackward0",
              Spelling(functional=("layer_norm",)), inexact32=True),
]
