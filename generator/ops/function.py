"""F.apply(x) of a custom torch.autograd.Function: forward's value, and the author's backward as its local derivative.

A Function is no op of its own: its forward is read as ordinary ops (steps the reader inlines, computed as
torch runs forward, without recording), and so is the factor its backward multiplies grad_output by. This op
joins them: operands (x, forward's result, backward's factor); its value is forward's result, and its only
local derivative is d out[k] / d x[k] = the factor at k, which is what the author's backward gives back for a
grad_output of 1 at k. The reader keeps to backwards of the form grad_output * factor, elementwise.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy as sp

from .base import LETTERS, ExprError, Op, ShapeError, Spelling, bind_args, broadcast, el, fmt_shape, numel, source_index, \
    times, unravel
from .derivatives import Inside, Positive

APPLY = "apply"  # Function.apply(x): how a Python example calls a Function
MODULE = "torch.autograd.function."  # where torch's backward class of a Function lives, as its repr writes it


def is_apply(attribute: str) -> bool:
    """Tell whether F.attribute(...) applies a Function F."""
    return attribute == APPLY


@dataclass(frozen=True)
class Applied(Op):
    """One application of a custom Function; params: its class name."""

    grad_fn_module = MODULE

    def call(self, walk, name, subject, args, kwargs, *, top):
        if not isinstance(subject, ast.Name) or walk.applied(subject.id) is None:
            raise ExprError(f"{_describe(subject)}.{name}(...) (allowed: F.{name}(x) of a custom torch.autograd.Function"
                            " defined above, in a Python example)")
        bind_args(name, args, kwargs, ("x",), ("x",))
        a = walk.applied(subject.id)
        params = {"name": subject.id, "keep": a.keep, "at": a.at} if a.mask else {"name": subject.id}
        if a.chain:  # backward's factors one after another, as torch rounds grad_output * 1.5 * h
            params["chain"] = len(a.chain)
        operands = [a.input, a.forward, a.factor, *([a.mask] if a.mask else []), *a.chain]
        return walk.make(self.key, operands, params, top=top)

    def shape(self, shapes, params):
        x, forward, factor = shapes[:3]
        if "keep" in params and broadcast(x, shapes[3]) != x:
            raise ShapeError(f"backward of {params['name']} masks with shape {fmt_shape(shapes[3])} a gradient of"
                             f" shape {fmt_shape(x)} (allowed: the input's shape)")
        if forward != x:
            raise ShapeError(f"forward of {params['name']} returns shape {fmt_shape(forward)} for an input of shape"
                             f" {fmt_shape(x)} (allowed: a Function that works element by element)")
        for shape in (factor, *_chain(shapes, params)):
            if broadcast(x, shape) != x:
                raise ShapeError(f"backward of {params['name']} gives shape {fmt_shape(broadcast(x, shape))} for an"
                                 f" input of shape {fmt_shape(x)} (allowed: the input's shape)")
        return x

    def grad_fn(self, consts, shapes, params):
        return f"{params['name']}Backward"

    def edges(self, consts, shapes, params):
        return None  # a Function's node links to each argument of apply, numbers and all: not followed yet

    def rule_for(self, consts, same):
        return self.rule

    def forward(self, xs, shapes, params):
        return list(xs[1])

    def partials(self, xs, outs, shapes, params):
        for k in range(numel(shapes[0])):
            index = unravel(k, shapes[0])
            local = xs[2][source_index(index, shapes[2])]
            if "keep" in params:  # grad_input[m < 0] = 0: kept where the comparison fails
                local = local * kept(xs[3][source_index(index, shapes[3])], params["keep"], params["at"])
            yield k, 0, k, local

    def latex(self, ts, params):
        return r"\mathrm{" + params["name"].replace("_", r"\_") + r"}\left(" + ts[0] + r"\right)"

    def run(self, torch, ts, params):
        x, forward, factor = ts[:3]
        value = forward.detach().clone()
        factor = factor.detach() if hasattr(factor, "detach") else factor
        keep, chain = None, [f.detach() if hasattr(f, "detach") else f for f in _chain(ts, params)]
        if "keep" in params:
            m, at = ts[3].detach(), float(params["at"])
            keep = {">=": m >= at, "<=": m <= at, ">": m > at, "<": m < at}[params["keep"]]

        def fwd(ctx, a):
            return value.clone()

        def bwd(ctx, grad_output):
            grad = grad_output * factor
            if chain:
                grad = grad_output
                for f in chain:
                    grad = grad * f
            return grad if keep is None else torch.where(keep, grad, torch.zeros_like(grad))

        cls = type(params["name"], (torch.autograd.Function,), {"forward": staticmethod(fwd), "backward": staticmethod(bwd)})
        return cls.apply(x)

    def array_forward(self, xs, shapes, params):
        return np.asarray(xs[1], dtype=np.float64).copy()

    def array_local(self, xs, out, shapes, params):
        size = numel(shapes[0])
        factor = xs[2] if isinstance(xs[2], np.ndarray) else np.float64(float(xs[2]))
        values = np.broadcast_to(np.asarray(factor, dtype=np.float64).reshape(shapes[2]), shapes[0]).reshape(-1).copy()
        if "keep" in params:
            at, m = float(params["at"]), np.broadcast_to(np.asarray(xs[3], dtype=np.float64).reshape(shapes[3]), shapes[0])
            keep = {">=": m >= at, "<=": m <= at, ">": m > at, "<": m < at}[params["keep"]].reshape(-1)
            values = np.where(keep, values, 0.0)
            return [(0, np.arange(size), np.arange(size), values, ~keep)]  # zeros torch writes, not products
        return [(0, np.arange(size), np.arange(size), values, None)]

    def dtype_vjp(self, cast, upstream, out, shape, params, operands):
        if "chain" not in params:
            return None
        grad = np.asarray(upstream, dtype=np.float64).reshape(shape)
        for f in _chain(operands, params):  # torch: ((grad_output * a) * b) ..., each product rounded
            grad = cast(grad * np.asarray(f, dtype=np.float64))
        return np.broadcast_to(grad, shape).reshape(-1)

    def forward_tex(self, out, args, out_shape, params):
        letters = list(LETTERS[: len(out_shape)])
        return f"{el(out, letters)} = {el(args[1].tex, letters)}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        letters = list(LETTERS[: len(out_shape)])
        factor = args[2]
        local = factor.tex if factor.shape is None else el(factor.tex, letters[len(out_shape) - len(factor.shape):])
        if "keep" in params:
            m = args[3]
            local += rf" \left[{el(m.tex, letters[len(out_shape) - len(m.shape):])} {KEPT_TEX[params['keep']]} {params['at']}\right]"
        return times(up(el(out, letters)), local)


def _chain(items: list, params: dict) -> list:
    """Return the operands of backward's factors in torch's order, the last params["chain"] operands."""
    return list(items[len(items) - params["chain"]:]) if params.get("chain") else []


def chain_of(node: ast.expr, grad: ast.expr) -> list[ast.expr]:
    """Return what torch multiplies grad_output by, one product after another: from grad's place in the return up."""
    if node is grad:
        return []
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for side, other in ((node.left, node.right), (node.right, node.left)):
            if grad in ast.walk(side):
                return chain_of(side, grad) + [other]
    return []


def factors(node: ast.expr) -> list[ast.expr]:
    """Return the factors of a product a * b * c, in order: how the reader finds grad_output * factor in backward."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return factors(node.left) + factors(node.right)
    return [node]


def other_side(node: ast.expr, grad: ast.expr) -> ast.expr | None:
    """Return f of a return written grad_output * f or f * grad_output (the product torch rounds once), else None."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and grad in (node.left, node.right):
        return node.right if grad is node.left else node.left
    return None


def regrouped_product(others: list[ast.expr]) -> bool:
    """Tell whether multiplying grad_output by these factors one after another rounds otherwise than by their
    product: so where two or more of them are not powers of two, by which floats multiply exactly."""
    return sum(1 for f in others if not _exact_scale(f)) > 1


def _exact_scale(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and type(node.value) in (int, float) and node.value != 0
            and math.isfinite(node.value) and math.frexp(abs(node.value))[0] == 0.5)


def product(items: list[ast.expr]) -> ast.expr | None:
    """Return a * b * c of factors (left to right, as Python groups them), or None for none."""
    found: ast.expr | None = None
    for item in items:
        found = item if found is None else ast.BinOp(found, ast.Mult(), item)
    return found


# grad_input[m < at] = 0 in backward keeps the gradient where m >= at; and so on for each comparison
KEEPS = {ast.Lt: ">=", ast.Gt: "<=", ast.LtE: ">", ast.GtE: "<"}
KEPT_TEX = {">=": r"\ge", "<=": r"\le", ">": ">", "<": "<"}


def keeps(comparison: ast.cmpop) -> str:
    """Return where grad[m OP at] = 0 keeps the gradient (">=" for <), or '' for a comparison not read."""
    return KEEPS.get(type(comparison), "")


def kept(m: sp.Expr, keep: str, at) -> sp.Expr:
    """Return 1 where the gradient is kept at m, else 0: an Iverson bracket, as the kink functions write it."""
    at = sp.Rational(at.numerator, at.denominator) if isinstance(at, Fraction) else at
    if keep == ">=":
        return Inside(m, at, sp.oo)
    if keep == "<=":
        return Inside(m, -sp.oo, at)
    return Positive(m - at) if keep == ">" else Positive(at - m)


def _describe(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # noqa: BLE001 - a node unparse cannot write is named by its type
        return type(node).__name__


FUNCTION = [Applied("custom_function", "the author's backward", "", Spelling(names=(APPLY,)))]
