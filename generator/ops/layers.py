"""Layers of torch.nn.functional that torch composes from other ops, or skips: normalize, dropout in eval mode."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from fractions import Fraction

from .base import ExprError, Op, Spelling, bind_args, bool_arg, int_arg, num


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


LAYERS = [
    Normalize("normalize", "chain rule through the norm", "", Spelling(functional=("normalize",)), composite=True),
    Dropout("dropout", "identity", "", Spelling(functional=("dropout",)), composite=True),
]
