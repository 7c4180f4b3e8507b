"""A float64 shadow of the exact values, for what exact arithmetic cannot say: the sign of a zero.

torch computes in floating point, where -0.0 exists and 1 / -0.0 is -inf. The derivation is
exact, where 0 has no sign. Each value therefore also gets its IEEE float64 value, evaluated
from the same expression, and an exact zero takes its sign from there when it is divided by.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import reduce
from typing import Callable

import numpy as np
import sympy as sp

from . import fmath

OVERFLOW = sp.Integer(2**1024 - 2**970)  # the least magnitude that float64 rounds to inf
SMALLEST_NORMAL = sp.Rational(1, 2**1022)  # below it float64 rounds to subnormals, or to 0 at 2**-1075

NUMPY: dict[type, Callable[..., float]] = {  # sympy's functions as numpy's
    sp.exp: fmath.exp,
    sp.log: fmath.log,
    sp.sin: fmath.sin,
    sp.cos: fmath.cos,
    sp.tanh: fmath.tanh,
    sp.sinh: fmath.sinh,
    sp.cosh: fmath.cosh,
    sp.asin: fmath.arcsin,
    sp.atan: fmath.arctan,
    sp.floor: np.floor,
    sp.ceiling: np.ceil,
    sp.erf: fmath.erf,
    sp.Abs: np.abs,
    sp.sign: np.sign,
}


MAX_DIGITS = 1200  # the working precision sympy may reach where terms cancel: e^(5e-324) - 1 needs about 360 digits


def approx(value: sp.Expr, digits: int) -> sp.Expr:
    """Return a number to `digits` significant digits, however much its terms cancel (sympy stops at 100 digits)."""
    try:
        found = value.evalf(digits, maxn=MAX_DIGITS)
        if found != 0:
            return found
    except ZeroDivisionError:
        pass
    # sympy's log of a number within 10^-digits of 1 is 0 at that working precision (log(1 + 1e-310); it adds
    # precision only for a non-zero log), and a power of it divides by 0: again with the digits such a number needs
    return value.evalf(WIDE_DIGITS, maxn=MAX_DIGITS).evalf(digits)


WIDE_DIGITS = 400  # beyond the 324 decimal places of float64's smallest subnormal


def number(value: sp.Expr) -> np.float64:
    """Return an exact number as a float64 (inf and nan included)."""
    if value is sp.nan:
        return np.float64("nan")
    if value in (sp.oo, -sp.oo):
        return np.float64("inf") if value == sp.oo else np.float64("-inf")
    if value.is_Rational:
        return np.float64(float(value))  # correctly rounded, in one step
    return np.float64(float(approx(value, 20)))


def float_value(expr: sp.Expr, env: dict[sp.Symbol, np.float64]) -> np.float64:
    """Evaluate an expression in float64, with IEEE rules for signed zeros, inf and nan."""
    if expr in env:
        return env[expr]
    if expr.is_Number or not expr.args:
        return number(expr)
    if expr.is_Mul and any(f.is_Pow and f.exp == -1 for f in expr.args):
        # a / b as torch divides, not a · (1/b): 1.4e-45 · (1/1.4e-45) is 0.9999999999999999, 5e-324 · (1/5e-324) inf
        top = [float_value(f, env) for f in expr.args if not (f.is_Pow and f.exp == -1)]
        bottom = [float_value(f.base, env) for f in expr.args if f.is_Pow and f.exp == -1]
        with np.errstate(all="ignore"):
            return np.divide(reduce(np.multiply, top, np.float64(1.0)), reduce(np.multiply, bottom))
    args = [float_value(a, env) for a in expr.args]
    with np.errstate(all="ignore"):
        if expr.is_Add:
            return reduce(np.add, args)
        if expr.is_Mul:
            return reduce(np.multiply, args)
        if expr.is_Pow:
            if expr.exp == sp.Rational(1, 2):
                return np.sqrt(args[0])  # sqrt(-0.0) is -0.0, where pow gives +0.0
            return fmath.power(args[0], args[1])
        if expr.func is sp.Max:
            return reduce(np.maximum, args)
        if expr.func is sp.Min:
            return reduce(np.minimum, args)
        if expr.func in NUMPY:
            return NUMPY[expr.func](*args)
        if getattr(expr.func, "in_float64", False):  # computed as torch computes it (log1p), not through sympy
            return np.float64(expr.func.numeric(*args))
    # the kink functions: let them decide on the rounded numbers
    result = expr.func(*(sp.Float(a) if math.isfinite(a) else number_back(a) for a in args))
    return number(result) if result.is_number else np.float64("nan")


def power(base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    """Return base**exponent exactly, or as float64 has it when that is inf, 0 or nan.

    sympy would build 0.5**(10**308) digit by digit; torch's answer is 0 and costs nothing.
    """
    if not (base.is_number and exponent.is_number):
        return base**exponent
    if base.is_extended_negative and exponent.is_finite and not exponent.is_integer:
        return sp.nan  # pow of a negative number to a fraction is nan in torch; sympy would root it, (-1/4)**(1e-308) slowly
    if sp.nan not in (base, exponent) and not (base.is_finite and exponent.is_finite):
        # IEEE's pow at infinities: pow(-inf, -inf) is 0 where sympy says nan
        with np.errstate(all="ignore"):
            result = fmath.power(number(base), number(exponent))
        return number_back(result) if not math.isfinite(result) else sp.Rational(float(result))
    b = number(exponent)
    with np.errstate(all="ignore"):
        size = abs(b * fmath.log(abs(number(base))))
    if not np.isfinite(size) or size < OUT_OF_RANGE:  # inf, nan and zeros are cheap for sympy
        return in_range(base**exponent)
    with np.errstate(all="ignore"):
        result = fmath.power(number(base), b)
    return sp.Integer(0) if result == 0 else number_back(result) if not math.isfinite(result) else in_range(base**exponent)


OUT_OF_RANGE = 800  # |b ln a| beyond this puts a**b past float64's largest (e^709.8) and smallest (e^-745.1)


def in_range(value: sp.Expr) -> sp.Expr:
    """Return a number as a float64 can hold it: ±oo beyond the largest float, 0 below the least subnormal.

    torch rounds every operation's result to float64, so exp(1e20) is inf there and 1e-400 is 0;
    an exact value past those bounds would only be astronomically large to compute with and to show.
    The sign of a zero is the float64 shadow's business (float_value).
    """
    if value.is_Rational or value.is_Float:
        near = value
    elif value.is_number and value not in (sp.oo, -sp.oo, sp.nan, sp.zoo):
        near = approx(value, 20)
        if not near.is_Float:
            return value
    else:
        return value
    size = abs(near)
    if size >= OVERFLOW:
        return sp.oo if near > 0 else -sp.oo
    if 0 < size < SMALLEST_NORMAL:
        # a subnormal keeps too few bits for the exact value to stand in for torch's (0.75 * 5e-324 is 5e-324)
        return sp.Rational(float(near))
    return value


def number_back(x: float) -> sp.Expr:
    """Return a non-finite float as sympy's oo, -oo or nan."""
    if math.isnan(x):
        return sp.nan
    return sp.oo if x > 0 else -sp.oo


def negative_zero(x: float) -> bool:
    """Tell whether a float is -0.0."""
    return x == 0 and math.copysign(1.0, x) < 0


def to_float(value: sp.Expr | float) -> float:
    """Return a Python float, with inf and nan as torch would have them."""
    if isinstance(value, float):  # the large examples' numbers are float64 already (engines/sparse.py)
        return value
    if value is sp.nan:
        return float("nan")
    if value == sp.oo:
        return float("inf")
    if value == -sp.oo:
        return float("-inf")
    return float(approx(value, 30))


TINIEST_NORMAL = Fraction(1, 2**1022)  # below this float64 loses precision bit by bit


def exact_number(arg: Fraction) -> sp.Expr:
    """Return a spec's number exactly, or as the float64 torch holds when it is subnormal (3e-324 is 5e-324 there)."""
    if arg and abs(arg) < TINIEST_NORMAL:
        arg = Fraction(float(arg))  # a subnormal keeps too few bits for its decimal to stand in for it
    return sp.Rational(arg.numerator, arg.denominator)


FORMATS = {"float32": (24, -126), "float64": (53, -1022)}  # significand bits, least normal exponent


def nearest(value: Fraction, dtype: str) -> Fraction:
    """Return the number of the dtype nearest to value, ties to even, as IEEE rounds one exact result."""
    if not value:
        return Fraction(0)
    bits, least = FORMATS[dtype]
    size = abs(value)
    exponent = size.numerator.bit_length() - size.denominator.bit_length()
    if Fraction(2) ** exponent > size:
        exponent -= 1
    ulp = Fraction(2) ** (max(exponent, least) - bits + 1)
    whole, rest = divmod(size / ulp, 1)
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2):
        whole += 1
    return (whole * ulp) if value > 0 else -(whole * ulp)


def linspace(start: Fraction, end: Fraction, steps: int, dtype: str) -> tuple[Fraction, ...]:
    """Return torch.linspace's points in a float dtype, as its CPU kernel computes them.

    The ends are the dtype's numbers nearest the Python floats given; step = (end - start) / (steps - 1), each
    operation rounded; the first half is start + step * i and the rest end - step * (steps - 1 - i), each
    with one rounding (the kernel's fused multiply-add).
    """
    first, last = nearest(Fraction(float(start)), dtype), nearest(Fraction(float(end)), dtype)
    if steps == 1:
        return (first,)
    step = nearest(nearest(last - first, dtype) / (steps - 1), dtype)
    half = steps // 2
    return tuple(nearest(first + step * i, dtype) if i < half else nearest(last - step * (steps - 1 - i), dtype)
                 for i in range(steps))
