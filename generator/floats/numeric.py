"""Evaluate a sympy formula of generic elements on whole float64 arrays at once.

The formulas come from the op registry (a forward or a local derivative written
once for a generic element), never from a spec. numpy follows IEEE 754 as torch
does, so 1/0 is inf with the sign of the zero, log(0) is -inf and nan propagates;
where torch's convention differs from IEEE, the kink functions say so themselves.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator

import numpy as np
import sympy as sp

from . import fmath
from .ieee import NUMPY, number



def _sign(a: Any) -> Any:
    return np.where(np.isnan(a), 0.0, np.sign(a))  # torch's sgn(nan) is 0, so abs' gradient at nan is 0


TORCH_POWERS = (3.0, -2.0, -0.5)  # exponents torch's pow kernel computes by products or 1 / sqrt, rounding each
_ROUNDING: ContextVar[Callable[[Any], Any] | None] = ContextVar("rounding", default=None)


@contextmanager
def rounding(cast: Callable[[Any], Any] | None) -> Iterator[None]:
    """Round every intermediate result of numeric() with cast, as a kernel computing in a narrower dtype does."""
    token = _ROUNDING.set(cast)
    try:
        yield
    finally:
        _ROUNDING.reset(token)


def active_rounding() -> Callable[[Any], Any] | None:
    """Return the rounding in force (see rounding), or None for plain float64."""
    return _ROUNDING.get()


def summation_order(n: int) -> np.ndarray | None:
    """Return the order in which the rounding in force adds a kernel's n terms, or None for 0, 1, 2, ... (see rounding)."""
    pick = getattr(_ROUNDING.get(), "order", None)
    return None if pick is None else pick(n)


def numeric(expr: sp.Expr, env: dict[sp.Symbol, Any]) -> Any:
    """Return expr with each symbol replaced by its array, computed elementwise in float64."""
    with np.errstate(all="ignore"):
        cast = _ROUNDING.get()
        if cast is None:
            return _eval(expr, env)
        return _eval(expr, env, lambda x: cast(np.asarray(x, dtype=np.float64)))


def _eval(expr: sp.Expr, env: dict[sp.Symbol, Any], cast: Callable[[Any], Any] | None = None) -> Any:
    if expr in env:
        return env[expr]
    if expr.is_Number or expr.is_NumberSymbol or expr in (sp.oo, -sp.oo, sp.nan):
        return number(expr) if cast is None else cast(number(expr))
    if cast is not None and expr.is_Pow:
        # torch's pow kernel multiplies for a number exponent 3 or -2: x ** 3 is (x * x) * x, x ** -2 is 1 / (x * x)
        exponent = _eval(expr.exp, env, cast)
        if np.ndim(exponent) == 0 and float(exponent) in TORCH_POWERS:
            base = _eval(expr.base, env, cast)
            if float(exponent) == -0.5:  # rsqrt: 1 / sqrt(x), each rounded
                return cast(1.0 / cast(np.sqrt(base)))
            square = cast(base * base)
            return cast(square * base) if float(exponent) == 3 else cast(1.0 / square)
    if cast is not None and expr.is_Mul and any(_over(e) for e in expr.args):
        # a / b is a * b**-1 to sympy; torch divides: one rounding, and 1/b never overflows on the way
        product = None
        for e in sorted(expr.args, key=_over):
            if _over(e):
                product = cast((1.0 if product is None else product) / _eval(e.base, env, cast))
            else:
                a = _eval(e, env, cast)
                product = a if product is None else cast(product * a)
        return product
    if cast is None and expr.is_Mul and any(f.is_Pow and f.exp.is_negative for f in expr.args):
        # divide, as torch does, not multiply by a reciprocal: 1.4e-45 * (1 / 1.4e-45) is 0.9999999999999999 and
        # 1 / 5e-324 is inf, where x / x is 1; by each factor in turn: a * b**-2 as (a / b) / b, torch's order for
        # the divisor's gradient, where b * b would have left float64's range (1e-160 squared)
        top = [_eval(f, env) for f in expr.args if not (f.is_Pow and f.exp.is_negative)]
        bottom = [_eval(f.base, env) for f in expr.args if f.is_Pow and f.exp.is_negative and f.exp.is_integer
                  for _ in range(int(-f.exp))]
        bottom += [_eval(sp.Pow(f.base, -f.exp), env) for f in expr.args
                   if f.is_Pow and f.exp.is_negative and not f.exp.is_integer]
        product = lambda factors: functools.reduce(lambda x, y: x * y, factors, np.float64(1.0))  # noqa: E731
        return functools.reduce(lambda x, y: x / y, bottom, product(top))
    args = [_eval(a, env, cast) for a in expr.args]
    result = _apply(expr, args)
    return result if cast is None else cast(result)


def _over(e: sp.Expr) -> bool:
    return bool(e.is_Pow and e.exp == -1)


def _apply(expr: sp.Expr, args: list[Any]) -> Any:
    if expr.is_Add:
        total = args[0]
        for a in args[1:]:
            total = total + a
        return total
    if expr.is_Mul:
        product = args[0]
        for a in args[1:]:
            product = product * a
        return product
    if expr.is_Pow:
        base, exponent = args
        half = float(exponent) if np.ndim(exponent) == 0 else None  # 0.5 as a Float too (sympy's == tells it from 1/2)
        if half == 0.5:
            return np.sqrt(base)
        if half == -0.5:  # torch's rsqrt, and its pow for a number exponent -0.5: 1 / sqrt(-0.0) is -inf
            with np.errstate(divide="ignore", invalid="ignore"):
                return 1.0 / np.sqrt(np.asarray(base, dtype=np.float64))
        return fmath.power(np.asarray(base, dtype=np.float64), exponent)
    if expr.func is sp.sign:
        return _sign(args[0])
    if expr.func in NUMPY:
        return NUMPY[expr.func](args[0])
    if expr.func in (sp.Max, sp.Min):
        pick = np.maximum if expr.func is sp.Max else np.minimum  # both propagate nan, as torch
        result = args[0]
        for a in args[1:]:
            result = pick(result, a)
        return result
    if hasattr(expr.func, "numeric"):  # torch's conventions at kinks (generator/ops/derivatives.py)
        return expr.func.numeric(*args)
    raise TypeError(f"no array form for {expr.func.__name__}")


def number_power(base: Any, exponent: Any, keep: Callable[[Any], Any]) -> Any:
    """Return base ** exponent as torch's pow kernel computes it for a number exponent (a 0-d array), each step
    rounded by keep: 0.5 as sqrt, -0.5 as 1 / sqrt (-inf at -0.0), 2, 3, -1 and -2 by products and 1 / x; else pow."""
    e = float(exponent) if np.ndim(exponent) == 0 else None
    with np.errstate(all="ignore"):
        if e == 0.5:
            return keep(np.sqrt(base))
        if e == -0.5:
            return keep(1.0 / keep(np.sqrt(base)))
        if e in (2.0, 3.0, -2.0):
            square = keep(base * base)
            return square if e == 2 else keep(square * base) if e == 3 else keep(1.0 / square)
        if e == -1.0:
            return keep(1.0 / base)
        return keep(fmath.power(base, exponent))
