"""Conditions: comparisons (x > 0) make bool tensors, which torch.where and masked_fill read to choose elements.

A comparison has no gradient and torch does not record it; where(c, a, b) sends each element's gradient to the
side it took, and masked_fill(c, v) to the elements it kept (torch selects: nan or inf upstream stops there).
"""

from __future__ import annotations

import ast
import operator as py
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy as sp

from ..floats.ieee import exact_number
from .base import ExprError, Spelling, bind_args, constant_tex
from .derivatives import COMPARISON_TEX, COMPARISONS, Chosen, Holds, Picked, Unpicked
from .elementwise import Elementwise

OPERATORS = {"gt": (ast.Gt, ">"), "ge": (ast.GtE, ">="), "lt": (ast.Lt, "<"), "le": (ast.LtE, "<="), "eq": (ast.Eq, "=="),
             "ne": (ast.NotEq, "!=")}
DECIDE = {">": py.gt, ">=": py.ge, "<": py.lt, "<=": py.le, "==": py.eq, "!=": py.ne}


@dataclass(frozen=True)
class Compare(Elementwise):
    """a > b, elementwise: a bool tensor, 1 (True) where it holds; torch records nothing, so no gradient flows."""

    def fold(self, values):
        raise ExprError(f"a comparison of two numbers is a Python bool, not a tensor"
                        f" (allowed: a tensor on one side, such as x {self.spelling.symbol} 0)")

    def python_number(self, values):
        return self.fold(values)

    def decide(self, a, b) -> bool:
        """Return the comparison of two Python numbers, as an if or a while of the code decides it."""
        return DECIDE[self.spelling.symbol](a, b)


def _compare(code: int, kind: str) -> Compare:
    operator, symbol = OPERATORS[kind]
    return Compare(kind, "comparison", "", Spelling(operator=operator, symbol=symbol),
                   f=lambda a, b: Holds(a, b, sp.Integer(code)), df=(lambda a, b, o: sp.Integer(0),) * 2,
                   tex=lambda a, b: rf"\left[{a} {COMPARISON_TEX[code]} {b}\right]",
                   torch_fn=lambda torch, a, b: getattr(torch, kind)(torch.as_tensor(a), b),
                   tracks=False, saves=False, boolean=True, cut_kind="compare")


def _condition(walk, node: ast.AST, name: str) -> str:
    found = walk.visit(node)
    if not (isinstance(found, str) and walk.boolean(found)):
        raise ExprError(f"{name}()'s condition must be a bool tensor, such as x > 0 (allowed: a comparison, written in"
                        " place or as an earlier step)")
    return found


@dataclass(frozen=True)
class Where(Elementwise):
    """torch.where(c, a, b) and a.where(c, b): a where c holds, else b; either may be a number."""

    def call(self, walk, name, subject, args, kwargs, *, top):
        first = walk.visit(subject)
        if isinstance(first, str) and walk.boolean(first):  # torch.where(condition, input, other)
            bound = bind_args(name, args, kwargs, ("input", "other"), required=("input", "other"))
            cond, a, b = first, walk.visit(bound["input"]), walk.visit(bound["other"])
        else:  # input.where(condition, other)
            bound = bind_args(name, args, kwargs, ("condition", "other"), required=("condition", "other"))
            cond, a, b = _condition(walk, bound["condition"], name), first, walk.visit(bound["other"])
        if not isinstance(a, str) and not isinstance(b, str):
            raise ExprError(f"{name}() of two numbers (allowed: a tensor as input or other, such as"
                            " torch.where(x > 0, x, 0.0))")
        return walk.make(self.key, [cond, a, b], top=top)

    def edges(self, consts, shapes, params):
        return (1, 2)  # torch links input and other (None for a number); a condition has no grad_fn


@dataclass(frozen=True)
class MaskedFill(Elementwise):
    """a.masked_fill(c, value): value where c holds, else a; the gradient reaches a where c does not hold."""

    def call(self, walk, name, subject, args, kwargs, *, top):
        bound = bind_args(name, args, kwargs, ("mask", "value"), required=("mask", "value"))
        x = walk.tensor(subject, f"{name}'s input")
        mask = _condition(walk, bound["mask"], name)
        value = walk.visit(bound["value"])
        if isinstance(value, str):
            raise ExprError(f"{name}()'s value must be a number here (allowed: a number, such as 0.0)")
        return walk.make(self.key, [x, mask], {"value": value}, top=top)

    def edges(self, consts, shapes, params):
        return (0,)

    def exact_params(self, params):
        return {"value": exact_number(params["value"])}

    def dtype_params(self, cast, params):
        # torch turns the number into the tensor's dtype before filling
        return {"value": sp.Rational(Fraction(float(cast(np.array(float(params["value"]))))))}


CONDITIONS = [
    *(_compare(code, kind) for code, kind in enumerate(COMPARISONS)),
    Where("where", "choosing by a condition", "WhereBackward0", Spelling(names=("where",)),
          f=lambda c, a, b: Chosen(c, a, b),
          df=(lambda c, a, b, o: sp.Integer(0), lambda c, a, b, o: Picked(c), lambda c, a, b, o: Unpicked(c)),
          tex=lambda c, a, b: rf"\operatorname{{where}}\left({c}, {a}, {b}\right)",
          torch_fn=lambda torch, c, a, b: torch.where(torch.as_tensor(c) != 0, a, b), conditions=(0,)),
    MaskedFill("masked_fill", "choosing by a condition", "MaskedFillBackward0", Spelling(names=("masked_fill",)),
               f=lambda a, m, value: Chosen(m, value, a),
               df=(lambda a, m, o, value: Unpicked(m), lambda a, m, o, value: sp.Integer(0)),
               tex=lambda a, m, value: rf"\operatorname{{masked\_fill}}\left({a}, {m}, {constant_tex(value)}\right)",
               torch_fn=lambda torch, a, m, value: a.masked_fill(torch.as_tensor(m) != 0, float(value)), conditions=(1,)),
]
