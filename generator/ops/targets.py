"""Losses of class indices: nll_loss, and cross_entropy, which torch computes as log_softmax then nll_loss.

The target is an int64 input; its values (known when the spec is read) become the op's parameters, as the
element each row picks, so only the input is an operand.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from .base import LETTERS, ExprError, Op, ShapeError, Spelling, bind_args, el, fmt_shape, int_index, numel, times
from .losses import DEPRECATED, _is_none, _reduction

IGNORE_INDEX = -100  # torch's default: a target of -100 adds nothing and is not counted in the mean
CASCADE_LEVELS = 8  # nll_loss sums its terms in a cascade of 8 partial sums (aten/src/ATen/native/LossNLL.cpp)


def _target(walk, name: str, node: ast.AST, shape: tuple[int, ...]) -> tuple[tuple[int, ...], str]:
    """Return a class-index target's values and its LaTeX, checking its shape against the input's."""
    target = walk.tensor(node, f"{name}'s target")
    found = walk.integers(target)
    if found is None:
        raise ExprError(f"{name}()'s target must be an int64 tensor of class indices, and '{target}' holds floats"
                        f" (allowed: an input with dtype: int64, or torch.tensor([1, 0, 2]) in torch code)")
    target_shape, values = found
    if len(shape) not in (1, 2) or target_shape != shape[:-1]:
        raise ExprError(f"{name}() takes an input [N, C] and a target [N], or [C] and a 0-d target; got"
                        f" {fmt_shape(shape)} and {fmt_shape(target_shape)} (allowed: one class index per row)")
    return values, rf"\mathrm{{{target.replace('_', chr(92) + '_')}}}"


def _bind(name: str, args: list[ast.AST], kwargs: dict[str, ast.AST], extra: tuple[str, ...] = ()) -> dict[str, ast.AST]:
    bound = bind_args(name, args, kwargs, ("target", "weight", "size_average", "ignore_index", "reduce", "reduction",
                                           *extra), required=("target",))
    for key in DEPRECATED:
        if key in bound and not _is_none(bound[key]):
            raise ExprError(f"{name}()'s {key}= is deprecated in torch (allowed: reduction='mean', 'sum' or 'none')")
    if "weight" in bound and not _is_none(bound["weight"]):
        raise ExprError(f"{name}()'s weight= is not read yet (allowed: no weight, every class counted once)")
    return bound


def class_params(walk, name: str, x: str, bound: dict[str, ast.AST]) -> dict[str, Any]:
    """Return nll_loss's parameters: each row's class, the ignored index, the reduction and the target's LaTeX."""
    shape = walk.shape_of(x)
    values, tex = _target(walk, name, bound["target"], shape)
    ignore = IGNORE_INDEX if "ignore_index" not in bound else int_index(bound["ignore_index"])
    classes = shape[-1]
    for t in values:
        if t != ignore and not 0 <= t < classes:
            raise ExprError(f"Target {t} is out of bounds (allowed: 0 to {classes - 1}, or ignore_index={ignore})")
    return {"target": values, "ignore_index": ignore, "reduction": _reduction(bound.get("reduction")), "label": tex}


@dataclass(frozen=True)
class NllLoss(Op):
    """torch.nn.functional.nll_loss(x, target): minus the input's element at each row's class, then mean or sum.

    The gradient is -1 (-1/n for the mean over the n rows not ignored) at each row's class, 0 elsewhere.
    """

    def call(self, walk, name, subject, args, kwargs, *, top):
        x = walk.tensor(subject, f"{name}'s input")
        return walk.make(self.key, [x], class_params(walk, name, x, _bind(name, args, kwargs)), top=top)

    def _picks(self, shape, params) -> list[tuple[int, int]]:
        """Return (row, flat index in the input) for each row whose target is not ignored."""
        classes = shape[-1]
        return [(i, i * classes + t) for i, t in enumerate(params["target"]) if t != params["ignore_index"]]

    def _count(self, shape, params) -> int:
        return len(self._picks(shape, params))

    def shape(self, shapes, params):
        if len(shapes[0]) not in (1, 2) or len(params["target"]) != (shapes[0][0] if len(shapes[0]) == 2 else 1):
            raise ShapeError(f"{self.key}: the input {fmt_shape(shapes[0])} does not fit {len(params['target'])}"
                             " target(s) (allowed: [N, C] and N targets, or [C] and one)")
        return shapes[0][:1] if params["reduction"] == "none" and len(shapes[0]) == 2 else ()

    def forward(self, xs, shapes, params):
        picks = self._picks(shapes[0], params)
        if params["reduction"] == "none":
            taken = dict(picks)
            return [-xs[0][taken[i]] if i in taken else sp.Integer(0) for i in range(len(params["target"]))]
        total = -sp.Add(*(xs[0][j] for _, j in picks))
        if params["reduction"] == "sum":
            return [total]
        return [sp.Mul(sp.Rational(1, len(picks)), total, evaluate=False) if picks else sp.nan]

    def partials(self, xs, outs, shapes, params):
        picks = self._picks(shapes[0], params)
        scale = sp.Rational(1, len(picks)) if params["reduction"] == "mean" and picks else sp.Integer(1)
        for i, j in picks:
            yield (i if params["reduction"] == "none" else 0), 0, j, -scale

    def _array_picks(self, shape, params) -> tuple[np.ndarray, np.ndarray]:
        picks = self._picks(shape, params)
        return (np.array([i for i, _ in picks], dtype=np.int64), np.array([j for _, j in picks], dtype=np.int64))

    def array_forward(self, xs, shapes, params):
        return self.dtype_forward(lambda a: np.asarray(a, dtype=np.float64), xs, shapes, params)

    def dtype_forward(self, cast, xs, shapes, params):
        x = np.ravel(np.asarray(xs[0], dtype=np.float64))
        rows, picks = self._array_picks(shapes[0], params)
        if params["reduction"] == "none":
            out = np.zeros(len(params["target"]))
            out[rows] = -x[picks]
            return out.reshape(self.shape(shapes, params))
        # torch's loop: each term into the first partial sum, carried up a level every 16 rows (LossNLL.cpp)
        batch = len(params["target"])
        power = max(4, math.ceil(math.log2(batch)) // CASCADE_LEVELS if batch > 1 else 0)
        mask = (1 << power) - 1
        partial = [cast(np.array(0.0))] * CASCADE_LEVELS
        taken = dict(zip(rows.tolist(), picks.tolist()))
        for b in range(batch):
            if b not in taken:
                continue
            partial[0] = cast(np.array(partial[0] - x[taken[b]]))
            for level in range(CASCADE_LEVELS - 1):
                if b & (mask << (level * power)):
                    break
                partial[level + 1] = cast(np.array(partial[level + 1] + partial[level]))
                partial[level] = cast(np.array(0.0))
        total = cast(np.array(0.0))
        for value in partial:
            total = cast(np.array(total + value))
        if params["reduction"] == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                total = cast(np.array(total / cast(np.array(float(len(taken))))))
        return np.array(total, dtype=np.float64).reshape(())

    def array_local(self, xs, out, shapes, params):
        rows, picks = self._array_picks(shapes[0], params)
        n = max(len(picks), 1)
        k = rows if params["reduction"] == "none" else np.zeros(len(picks), dtype=np.int64)
        values = np.full(len(picks), -1.0 / n if params["reduction"] == "mean" else -1.0)
        return [(0, k, picks, values, None)]

    def array_fraction(self, a, xs, out, shapes, params):
        if params["reduction"] != "mean":
            return None
        size = np.asarray(out).size  # torch's backward: -(grad / n)
        return np.full(size, -1.0), np.full(size, float(max(self._count(shapes[0], params), 1)))

    def forward_numbers(self, k, xs, shapes, params, number):
        x = np.ravel(np.asarray(xs[0], dtype=np.float64))
        picks = self._picks(shapes[0], params)
        if params["reduction"] == "none":
            taken = dict(picks)
            return None if k not in taken else rf"-{number(float(x[taken[k]]))}" if x[taken[k]] >= 0 else (
                rf"-\left({number(float(x[taken[k]]))}\right)")
        terms = [number(float(x[j])) for _, j in picks]
        total = " + ".join(terms) if len(terms) <= 4 else rf"{terms[0]} + {terms[1]} + \cdots + {terms[-1]}"
        scale = rf"\frac{{1}}{{{len(picks)}}} " if params["reduction"] == "mean" and len(picks) > 1 else ""
        return rf"-{scale}\left({total}\right)"

    def _element(self, x_tex: str, shape, params, row: str) -> str:
        if len(shape) == 1:
            return el(x_tex, [params["label"]])
        return el(x_tex, [row, el(params["label"], [row])])

    def _kept(self, params) -> str:
        return "" if params["ignore_index"] not in params["target"] else (
            rf",\ {el(params['label'], ['i'])} \neq {params['ignore_index']}")

    def forward_tex(self, out, args, out_shape, params):
        shape = args[0].shape
        pick = self._element(args[0].tex, shape, params, "i")
        if params["reduction"] == "none" and len(shape) == 2:
            return rf"{el(out, ['i'])} = -{pick}"
        if len(shape) == 1:
            return rf"{out} = -{pick}"
        n = self._count(shape, params)
        total = rf"\sum_{{i{self._kept(params)}}} {pick}"
        return rf"{out} = -\frac{{1}}{{{n}}} {total}" if params["reduction"] == "mean" else rf"{out} = -{total}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        shape = args[0].shape
        letters = list(LETTERS[: len(shape)])
        target = params["label"] if len(shape) == 1 else el(params["label"], [letters[0]])
        n = self._count(shape, params)
        scale = rf"\frac{{1}}{{{n}}}" if params["reduction"] == "mean" and n > 1 else ""
        local = rf"-{scale}\left[{letters[-1]} = {target}\right]"
        upstream = up(el(out, letters[:1]) if params["reduction"] == "none" and len(shape) == 2 else out)
        return times(upstream, local)

    def latex(self, ts, params):
        suffix = "" if params["reduction"] == "mean" else rf"_{{\text{{{params['reduction']}}}}}"
        return rf"\operatorname{{{self.key.replace('_', chr(92) + '_')}}}{suffix}\left({ts[0]}, {params['label']}\right)"

    def run(self, torch, ts, params):
        target = torch.tensor(params["target"], dtype=torch.int64).reshape((-1,) if ts[0].dim() == 2 else ())
        return torch.nn.functional.nll_loss(ts[0], target, ignore_index=params["ignore_index"],
                                            reduction=params["reduction"])


def _double(exact: Fraction, computed: float) -> Fraction:
    """Return a constant torch computes in double: the exact number where the double is its rounding (1 - 0.1 is
    0.9), else the double itself (1 - 0.7 is 0.30000000000000004)."""
    return exact if float(exact) == computed else Fraction(computed)


@dataclass(frozen=True)
class CrossEntropy(Op):
    """torch.nn.functional.cross_entropy(x, target), as the nodes torch records. It never is a node itself.

    Class indices (an int64 target): log_softmax along the classes, then nll_loss (LogSoftmaxBackward0,
    NllLossBackward0); label_smoothing=ε adds ε/C times each row's -Σ log_softmax (0 for an ignored row), summed and
    divided by the rows counted for the mean, to (1 - ε) times nll_loss (MulBackward1 twice, AddBackward0). Probabilities (a float target of the input's shape): -(log_softmax(x) · target).sum(),
    divided by the number of rows for the mean (MulBackward0, SumBackward0, NegBackward0, DivBackward1);
    label_smoothing=ε first turns the target into target · (1 - ε) + ε / C, which torch does not record.
    """

    def call(self, walk, name, subject, args, kwargs, *, top):
        bound = _bind(name, args, kwargs, ("label_smoothing",))
        smoothing = Fraction(0) if bound.get("label_smoothing") is None else walk.visit(bound["label_smoothing"])
        if not isinstance(smoothing, Fraction) or not 0 <= smoothing <= 1:
            raise ExprError(f"{name}()'s label_smoothing must be a number between 0.0 and 1.0 (allowed: 0.1)")
        x = walk.tensor(subject, f"{name}'s input")
        shape = walk.shape_of(x)
        classes = 0 if len(shape) == 1 else 1
        target = walk.visit(bound["target"])
        if isinstance(target, str) and not walk.known[target].integer and not walk.boolean(target):
            return self._probabilities(walk, name, x, target, smoothing, _reduction(bound.get("reduction")), top=top)
        params = class_params(walk, name, x, bound)
        scores = walk.make("log_softmax", [x], {"dim": classes}, top=False)
        if smoothing:
            return self._smoothed(walk, name, scores, params, smoothing, shape[classes], top=top)
        return walk.make("nll_loss", [scores], params, top=top)

    def _smoothed(self, walk, name, scores, params, smoothing, classes, *, top):
        """Return (1 - ε) · nll_loss + ε/C · Σ -log_softmax over the classes, as LossNLL.cpp composes it."""
        nll = walk.make("nll_loss", [scores], params, top=False)
        dim = 0 if len(walk.shape_of(scores)) == 1 else 1
        total = walk.make("neg", [walk.make("sum", [scores], {"dim": dim, "keepdim": False}, top=False)], top=False)
        kept = tuple(t != params["ignore_index"] for t in params["target"])
        total = walk.make("ignored_fill", [total], {"kept": kept, "ignore_index": params["ignore_index"],
                                                     "label": params["label"]}, top=False)
        if params["reduction"] != "none":
            total = walk.make("sum", [total], top=False)
        if params["reduction"] == "mean":
            if not any(kept):
                raise ExprError(f"{name}()'s targets are all ignore_index={params['ignore_index']}, so the mean divides"
                                " 0 by 0 (allowed: at least one target that is a class)")
            total = walk.make("div", [total, Fraction(sum(kept))], top=False)  # by (target != ignore_index).sum()
        nll = walk.make("mul_scalar", [nll, _double(1 - smoothing, 1.0 - float(smoothing))], top=False)
        total = walk.make("mul_scalar", [total, _double(smoothing / classes, float(smoothing) / classes)], top=False)
        return walk.make("add", [nll, total], top=top)

    def _probabilities(self, walk, name, x, target, smoothing, reduction, *, top):
        shape = walk.shape_of(x)
        if walk.shape_of(target) != shape or not shape:
            raise ExprError(f"{name}() takes class indices (an int64 target) or probabilities of the input's shape, got"
                            f" {fmt_shape(shape)} and a float target of {fmt_shape(walk.shape_of(target))} (allowed: one"
                            " probability per class, or an input with dtype: int64)")
        classes = 0 if len(shape) == 1 else 1
        if smoothing:  # torch: target * (1 - ε) + ε / C, in double before the dtype, as these constants are
            target = walk.make("mul", [target, _double(1 - smoothing, 1.0 - float(smoothing))], top=False)
            target = walk.make("add", [target, _double(smoothing / shape[classes], float(smoothing) / shape[classes])],
                               top=False)
        scores = walk.make("log_softmax", [x], {"dim": classes}, top=False)
        product = walk.make("mul", [scores, target], top=False)
        if reduction == "none":
            total = walk.make("sum", [product], {"dim": classes, "keepdim": False}, top=False)
            return walk.make("neg", [total], top=top)
        negated = walk.make("neg", [walk.make("sum", [product], top=False)], top=top and reduction == "sum")
        if reduction == "sum":
            return negated
        return walk.make("div_scalar", [negated, Fraction(math.prod(shape) // shape[classes])], top=top)


@dataclass(frozen=True)
class IgnoredFill(Op):
    """smooth.masked_fill(target == ignore_index, 0.0) in cross_entropy's label smoothing: the mask is the target's.

    torch records MaskedFillBackward0: the gradient passes where the row's target is a class, 0 where it is ignored.
    """

    def shape(self, shapes, params):
        if numel(shapes[0]) != len(params["kept"]):
            raise ShapeError(f"{self.key}: {fmt_shape(shapes[0])} does not fit {len(params['kept'])} target(s)"
                             " (allowed: one per row)")
        return shapes[0]

    def forward(self, xs, shapes, params):
        return [x if keep else sp.Integer(0) for x, keep in zip(xs[0], params["kept"])]

    def partials(self, xs, outs, shapes, params):
        for i, keep in enumerate(params["kept"]):
            if keep:
                yield i, 0, i, sp.Integer(1)

    def array_forward(self, xs, shapes, params):
        x = np.asarray(xs[0], dtype=np.float64)
        return np.where(np.array(params["kept"]).reshape(np.shape(x)), x, 0.0)

    def array_local(self, xs, out, shapes, params):
        kept = np.flatnonzero(np.array(params["kept"], dtype=bool))
        return [(0, kept, kept, np.ones(len(kept)), None)]

    def _condition(self, params, index: list[str]) -> str:
        return rf"{el(params['label'], index)} \neq {params['ignore_index']}"

    def forward_tex(self, out, args, out_shape, params):
        index = list(LETTERS[: len(out_shape)])
        return rf"{el(out, index)} = {el(args[0].tex, index)}\ \text{{if }} {self._condition(params, index)},\ 0\text{{ otherwise}}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        index = list(LETTERS[: len(out_shape)])
        return times(up(el(out, index)), rf"\left[{self._condition(params, index)}\right]")

    def latex(self, ts, params):
        return rf"\operatorname{{masked\_fill}}\left({ts[0]}, {params['label']} = {params['ignore_index']}, 0\right)"

    def run(self, torch, ts, params):
        kept = torch.tensor(params["kept"], dtype=torch.bool).reshape(ts[0].shape)
        return ts[0].masked_fill(~kept, 0.0)


TARGETS = [
    NllLoss("nll_loss", "derivative of the negative log-likelihood", "NllLossBackward0", Spelling(functional=("nll_loss",))),
    IgnoredFill("ignored_fill", "choosing by a condition", "MaskedFillBackward0", Spelling(), saves=False),
    CrossEntropy("cross_entropy", "derivative of the negative log-likelihood", "", Spelling(functional=("cross_entropy",)),
                 composite=True),
]
