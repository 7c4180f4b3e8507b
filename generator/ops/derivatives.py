"""Derivative functions with torch's conventions at kinks, where a derivative does not exist, and their printer.

Each evaluates to a number once its arguments are numbers, and prints as plain
math (Iverson brackets) rather than as sympy's defaults, which differ from
torch at the kinks (sympy's Heaviside(0) is 1/2, torch's relu'(0) is 0).
"""

from __future__ import annotations

import re

import numpy as np
import sympy as sp
from sympy.printing.latex import LatexPrinter

from ..floats import fmath
from ..floats.ieee import power
from ..floats.numeric import active_rounding, number_power
from .base import constant_tex


def _same(x):
    return x


def _numbers(*args: sp.Expr) -> bool:
    return all(a.is_number for a in args)


class Detached(sp.Function):
    """detach(a): the same value, but a constant to autograd, so its derivative is 0 (sympy.diff agrees)."""

    nargs = 1

    @classmethod
    def eval(cls, a):
        return a if a.is_number else None

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    @staticmethod
    def numeric(a):
        """The same on float64 arrays."""
        return a


class Zeroed(sp.Function):
    """A step's derivative: 0, which torch's backward writes as zeros (zeros_like), so nan or inf upstream stops.

    It takes the op's output only to stay unevaluated on symbols (a mask for the engines); it reads no operand.
    """

    nargs = 1

    @classmethod
    def eval(cls, out):
        return sp.Integer(0) if out.is_number else None

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    @staticmethod
    def numeric(out):
        """The same on float64 arrays."""
        return np.zeros_like(np.asarray(out, dtype=np.float64))


def _equals(x: sp.Expr, n: int) -> bool:
    """Tell whether a sympy number is n, a Float too (sympy's == tells Float(0.0) from 0), never for nan."""
    if x is sp.nan or not x.is_number:
        return False
    if x.is_Rational:
        return x == n
    if x.is_Float:
        return float(x) == n
    return bool(sp.Eq(x, n))


class Positive(sp.Function):
    """relu'(a): 1 where a > 0, else 0 (torch: relu'(0) = 0)."""

    decides = True  # a branch torch takes on the float64 numbers it holds (engines/exact.py)

    nargs = 1

    @classmethod
    def eval(cls, a):
        if a.is_number:
            if a is sp.nan:
                return sp.Integer(1)  # torch zeroes the gradient where a <= 0, and nan <= 0 is false
            return sp.Integer(1) if bool(a > 0) else sp.Integer(0)
        return None

    @staticmethod
    def numeric(a):
        """The same on float64 arrays."""
        return np.where(np.isnan(a) | (a > 0), 1.0, 0.0)


class Others(sp.Function):
    """prod' for one member a: the product of the others. torch computes it as out / a where no member is 0, from the
    out it holds: where that product left the float64 range (0 from underflow, inf), torch's gradient is 0 or inf."""

    decides = (1,)  # the product torch holds: its float64 value (engines/exact.py)

    @classmethod
    def eval(cls, a, out, *members):
        if not all(m.is_number for m in (a, out, *members)):
            return None
        rest = list(members)
        rest.remove(a)
        exact = sp.Mul(*rest)
        if any(_equals(m, 0) for m in members) or not (_equals(out, 0) or out in (sp.oo, -sp.oo)):
            return exact
        return out / a  # the held product vanished or overflowed: torch's out / a

    @staticmethod
    def numeric(a, out, *members):
        """The same on float64 arrays: out / a (no member is 0 in the cases that need it)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return out / a


class Inside(sp.Function):
    """clamp'(a): 1 where lo <= a <= hi (bounds included, as torch), else 0."""

    decides = True  # a branch torch takes on the float64 numbers it holds (engines/exact.py)

    nargs = 3  # a, lo, hi; a missing bound is passed as -oo / oo

    @classmethod
    def eval(cls, a, lo, hi):
        if _numbers(a, lo, hi):
            if a is sp.nan:
                return sp.Integer(0)  # torch passes the gradient where lo <= a <= hi, false for nan
            return sp.Integer(1) if bool(lo <= a) and bool(a <= hi) else sp.Integer(0)
        return None

    @staticmethod
    def numeric(a, lo, hi):
        """The same on float64 arrays."""
        return np.where((lo <= a) & (a <= hi), 1.0, 0.0)


COMPARISONS = ("gt", "ge", "lt", "le", "eq", "ne")  # Holds's code: a > b, a >= b, a < b, a <= b, a == b, a != b
COMPARISON_TEX = (">", r"\ge", "<", r"\le", "=", r"\neq")


class Holds(sp.Function):
    """a > b (and the other comparisons, by code): 1 where it holds, else 0; false with a nan, but for !=."""

    decides = True  # a branch torch takes on the float64 numbers it holds (engines/exact.py)

    nargs = 3

    @classmethod
    def eval(cls, a, b, code):
        if _numbers(a, b):
            kind = COMPARISONS[int(code)]
            if sp.nan in (a, b):
                return sp.Integer(kind == "ne")
            held = {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b, "eq": sp.Eq(a, b), "ne": sp.Ne(a, b)}[kind]
            return sp.Integer(1 if bool(held) else 0)
        return None

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    @staticmethod
    def numeric(a, b, code):
        """The same on float64 arrays (IEEE: a comparison with nan is false, but !=)."""
        kind = COMPARISONS[int(code)]
        with np.errstate(invalid="ignore"):
            held = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal, "eq": np.equal,
                    "ne": np.not_equal}[kind](a, b)
        return np.where(held, 1.0, 0.0)


class Extremal(sp.Function):
    """argmax (code 0) or argmin (code 1) of the members: the first such index; a nan counts as the extreme, as in torch."""

    decides = True  # a branch torch takes on the float64 numbers it holds (engines/exact.py)

    @classmethod
    def eval(cls, code, *members):
        if members and _numbers(*members):
            if sp.nan in members:
                return sp.Integer(members.index(sp.nan))
            best = (max if int(code) == 0 else min)(members)
            return sp.Integer(members.index(best))  # index() finds the first
        return None

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    @staticmethod
    def numeric(code, *members):
        """The same on float64 arrays, one per member."""
        return Extremal.rows(code, np.stack(np.broadcast_arrays(*members), -1))

    @staticmethod
    def rows(code, rows: np.ndarray) -> np.ndarray:
        """Return each row's first extreme index (numpy's argmax and argmin also take the first nan, as torch)."""
        return (np.argmax if int(code) == 0 else np.argmin)(rows, axis=-1).astype(float)


class GroupMean(sp.Function):
    """The mean of a group of members (layer_norm's μ), kept whole so that a document can write mean(x₀, x₁, x₂)."""

    @classmethod
    def eval(cls, *members):
        if members and _numbers(*members):
            return sp.Add(*members) / len(members)
        return None

    def fdiff(self, argindex=1):
        return sp.Rational(1, len(self.args))

    @staticmethod
    def numeric(*members):
        return np.mean(np.stack(np.broadcast_arrays(*members), -1), axis=-1)


class GroupVar(sp.Function):
    """The variance of a group dividing by n, not n - 1 (layer_norm's σ²), kept whole as GroupMean is."""

    @classmethod
    def eval(cls, *members):
        if members and _numbers(*members):
            mean = sp.Add(*members) / len(members)
            return sp.Add(*((m - mean) ** 2 for m in members)) / len(members)
        return None

    def fdiff(self, argindex=1):
        return 2 * (self.args[argindex - 1] - GroupMean(*self.args)) / len(self.args)

    @staticmethod
    def numeric(*members):
        rows = np.stack(np.broadcast_arrays(*members), -1)
        centred = rows - rows.mean(axis=-1, keepdims=True)
        return (centred * centred).mean(axis=-1)


class Rstd(sp.Function):
    """1 / sqrt(σ² + ε) of a group (layer_norm's r), written as that fraction in a local derivative."""

    @classmethod
    def eval(cls, eps, *members):
        if members and _numbers(eps, *members):
            return 1 / sp.sqrt(GroupVar(*members) + eps)
        return None

    @staticmethod
    def numeric(eps, *members):
        return 1 / np.sqrt(GroupVar.numeric(*members) + eps)


class Hat(sp.Function):
    """(x - μ) / sqrt(σ² + ε): a member of a group normalised (layer_norm's x̂), written x̂ in a local derivative."""

    @classmethod
    def eval(cls, x, eps, *members):
        if members and _numbers(x, eps, *members):
            return (x - GroupMean(*members)) * Rstd(eps, *members)
        return None

    @staticmethod
    def numeric(x, eps, *members):
        return (x - GroupMean.numeric(*members)) * Rstd.numeric(eps, *members)


class Chosen(sp.Function):
    """torch.where(c, a, b) on elements: a where the condition c holds (is 1), else b."""

    nargs = 3

    @classmethod
    def eval(cls, c, a, b):
        if c.is_number:
            return b if _equals(c, 0) else a
        return None

    @staticmethod
    def numeric(c, a, b):
        """The same on float64 arrays."""
        return np.where(c != 0, a, b)


class Picked(sp.Function):
    """where'(a): 1 where the condition holds, else 0; torch selects, so nan or inf upstream stops at a 0."""

    nargs = 1

    @classmethod
    def eval(cls, c):
        return (sp.Integer(0) if _equals(c, 0) else sp.Integer(1)) if c.is_number else None

    @staticmethod
    def numeric(c):
        """The same on float64 arrays."""
        return np.where(c != 0, 1.0, 0.0)


class Unpicked(sp.Function):
    """where'(b) and masked_fill'(a): 1 where the condition does not hold, else 0 (selected, as Picked)."""

    nargs = 1

    @classmethod
    def eval(cls, c):
        return (sp.Integer(1) if _equals(c, 0) else sp.Integer(0)) if c.is_number else None

    @staticmethod
    def numeric(c):
        """The same on float64 arrays."""
        return np.where(c != 0, 0.0, 1.0)


class Log1p(sp.Function):
    """ln(1 + a), which torch's log1p computes without first rounding 1 + a."""

    nargs = 1
    in_float64 = True  # float64 evaluates numeric (generator/floats/ieee.py)

    @classmethod
    def eval(cls, a):
        if not a.is_number:
            return None
        if a == -1:
            return -sp.oo  # log1p(-1), as torch
        return sp.nan if a is sp.nan or bool(a < -1) else sp.log(1 + a)

    def fdiff(self, argindex=1):
        return 1 / (1 + self.args[0])

    @staticmethod
    def numeric(a):
        """The same on float64 arrays; below twice the dtype's smallest normal as torch's kernel gives it: a halved,
        rounded and doubled (log1p(2**-149) is 0 in float32, log1p(5e-324) 0 in float64, measured), and a zero it
        makes of a non-zero a is +0.0."""
        found = fmath.log1p(a)
        keep = active_rounding()
        normal = 2.0**-126 if getattr(keep, "dtype", "float64") == "float32" else 2.0**-1022
        a = np.asarray(a, dtype=np.float64)
        with np.errstate(all="ignore"):
            tiny = (np.abs(a) < 2 * normal) & (a != 0)
            if np.any(tiny):
                half = a / 2 if keep is None else keep(a / 2)
                found = np.where(tiny, half * 2 + 0.0, found)
        return found[()] if np.ndim(found) == 0 else found


class Expm1(sp.Function):
    """e^a - 1, which torch's expm1 computes without the cancellation of exp(a) - 1."""

    nargs = 1
    in_float64 = True

    @classmethod
    def eval(cls, a):
        return sp.exp(a) - 1 if a.is_number else None

    def fdiff(self, argindex=1):
        return sp.exp(self.args[0])

    @staticmethod
    def numeric(a):
        """The same on float64 arrays."""
        return fmath.expm1(a)


class RoundHalfEven(sp.Function):
    """torch.round: the nearest integer, a half to the even one (round(0.5) = 0, round(1.5) = 2)."""

    nargs = 1
    in_float64 = True

    @classmethod
    def eval(cls, a):
        if not a.is_number:
            return None
        if a in (sp.nan, sp.oo, -sp.oo):
            return a
        a = sp.Rational(a) if isinstance(a, sp.Float) else a  # a Float's exact binary value
        down = sp.floor(a)
        rest = a - down
        if rest == sp.Rational(1, 2):
            return down if down % 2 == 0 else down + 1
        return down + 1 if rest > sp.Rational(1, 2) else down

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    @staticmethod
    def numeric(a):
        """The same on float64 arrays."""
        return np.rint(a)


class Trunc(sp.Function):
    """torch.trunc: toward zero (trunc(-1.5) = -1)."""

    nargs = 1
    in_float64 = True

    @classmethod
    def eval(cls, a):
        if not a.is_number:
            return None
        if a in (sp.nan, sp.oo, -sp.oo):
            return a
        return sp.floor(a) if a >= 0 else sp.ceiling(a)

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    @staticmethod
    def numeric(a):
        """The same on float64 arrays."""
        return np.trunc(a)


class Above(sp.Function):
    """d maximum(a, b) / da: 1 where a > b, 1/2 where a = b (torch splits a tie), 0 where a < b."""

    decides = True  # a branch torch takes on the float64 numbers it holds (engines/exact.py)

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if _numbers(a, b):
            if a is sp.nan or b is sp.nan:
                return sp.Integer(1)  # torch zeroes where a < b and halves where a == b: neither holds for nan
            if same_number(a, b):
                return sp.Rational(1, 2)
            return sp.Integer(1) if bool(a > b) else sp.Integer(0)
        return None

    @staticmethod
    def numeric(a, b):
        """The same on float64 arrays."""
        return np.where(a == b, 0.5, np.where(a < b, 0.0, 1.0))


def _real(*args: sp.Expr) -> bool:
    return _numbers(*args) and sp.nan not in args


class LeakyRelu(sp.Function):
    """leaky_relu(a) with slope s below 0: a where a > 0, else s·a (torch: x > 0 ? x : x * s)."""

    nargs = 2

    @classmethod
    def eval(cls, a, s):
        if _real(a, s):
            return a if bool(a > 0) else s * a
        return sp.nan if sp.nan in (a, s) else None

    @staticmethod
    def numeric(a, s):
        """The same on float64 arrays."""
        return np.where(a > 0, a, a * s)


class LeakySlope(sp.Function):
    """leaky_relu'(a): 1 where a > 0, else s (torch: s at 0 too, and for nan)."""

    decides = (0,)  # the argument torch compares with 0 (not the slope, which is returned as it is)

    nargs = 2

    @classmethod
    def eval(cls, a, s):
        if _numbers(a, s):
            return sp.Integer(1) if a is not sp.nan and bool(a > 0) else s
        return None

    @staticmethod
    def numeric(a, s):
        """The same on float64 arrays."""
        return np.where(a > 0, 1.0, s)


class Elu(sp.Function):
    """elu(a): a where a > 0, else alpha·(e^a - 1)."""

    nargs = 2
    in_float64 = True

    @classmethod
    def eval(cls, a, alpha):
        if _real(a, alpha):
            return a if bool(a > 0) else alpha * (sp.exp(a) - 1)
        return sp.nan if sp.nan in (a, alpha) else None

    @staticmethod
    def numeric(a, alpha):
        """The same on float64 arrays (e^a - 1 as expm1, as torch's kernel)."""
        return np.where(a > 0, a, alpha * fmath.expm1(a))


class EluSlope(sp.Function):
    """elu'(a): 1 where a > 0, else alpha·e^a (torch takes the left side at 0: alpha)."""

    nargs = 2

    @classmethod
    def eval(cls, a, alpha):
        if _numbers(a, alpha):
            return alpha * sp.exp(a) if a is not sp.nan and bool(a <= 0) else sp.Integer(1)
        return None

    @staticmethod
    def numeric(a, alpha):
        """The same on float64 arrays."""
        return np.where(a <= 0, alpha * fmath.exp(a), 1.0)


class Between(sp.Function):
    """hardtanh'(a): 1 where lo < a < hi, 0 on a bound and beyond (torch: x <= lo or x >= hi gives 0)."""

    decides = True  # a branch torch takes on the float64 numbers it holds (engines/exact.py)

    nargs = 3

    @classmethod
    def eval(cls, a, lo, hi):
        if _numbers(a, lo, hi):
            if a is sp.nan:
                return sp.Integer(1)  # neither comparison holds for nan: torch passes the gradient
            return sp.Integer(0) if bool(a <= lo) or bool(a >= hi) else sp.Integer(1)
        return None

    @staticmethod
    def numeric(a, lo, hi):
        """The same on float64 arrays."""
        return np.where((a <= lo) | (a >= hi), 0.0, 1.0)


class Softplus(sp.Function):
    """softplus(a): ln(1 + e^(beta·a)) / beta, and a itself where beta·a > threshold (as torch)."""

    nargs = 3
    in_float64 = True

    @classmethod
    def eval(cls, a, beta, threshold):
        if _real(a, beta, threshold):
            return a if bool(a * beta > threshold) else sp.log(1 + sp.exp(beta * a)) / beta
        return sp.nan if sp.nan in (a, beta, threshold) else None

    @staticmethod
    def numeric(a, beta, threshold):
        """The same on float64 arrays."""
        return np.where(a * beta > threshold, a, fmath.log1p(fmath.exp(a * beta)) / beta)


class SoftplusSlope(sp.Function):
    """softplus'(a): e^(beta·a) / (e^(beta·a) + 1), and 1 where beta·a > threshold."""

    nargs = 3

    @classmethod
    def eval(cls, a, beta, threshold):
        if _real(a, beta, threshold):
            if bool(a * beta > threshold):
                return sp.Integer(1)
            z = sp.exp(beta * a)
            return z / (z + 1)
        return sp.nan if sp.nan in (a, beta, threshold) else None

    @staticmethod
    def numeric(a, beta, threshold):
        """The same on float64 arrays."""
        z = fmath.exp(a * beta)
        return np.where(a * beta > threshold, 1.0, z / (z + 1))


class TieShare(sp.Function):
    """max'/min' for one element: 1/k if it is one of k tied extremes, else 0."""

    decides = True  # a branch torch takes on the float64 numbers it holds (engines/exact.py)

    # args: the element, the extreme (max or min of all), then every element

    @classmethod
    def eval(cls, a, extreme, *elements):
        if _numbers(a, extreme, *elements):
            if not same_number(a, extreme):
                return sp.Integer(0)
            ties = sum(1 for e in elements if same_number(e, extreme))
            return sp.Rational(1, ties)
        return None


class FirstShare(sp.Function):
    """max(dim)'/min(dim)' for one element: 1 if it is the first element equal to the extreme, else 0 (torch's index)."""

    decides = True  # a branch torch takes on the float64 numbers it holds (engines/exact.py)

    # args: the element, the extreme, then the elements before it along the dim

    @classmethod
    def eval(cls, a, extreme, *before):
        if _numbers(a, extreme, *before):
            first = same_number(a, extreme) and not any(same_number(e, extreme) for e in before)
            return sp.Integer(1 if first else 0)
        return None


def same_number(e: sp.Expr, extreme: sp.Expr) -> bool:
    """Tell whether two numbers are equal; one too large to keep exactly is a 40-digit Float (engines/exact.py)."""
    if isinstance(extreme, sp.Float) or isinstance(e, sp.Float):
        return sp.Float(e, 40) == sp.Float(extreme, 40)
    return e == extreme


class NormShare(sp.Function):
    """norm' for one element: a / norm, and 0 at the zero vector (as torch)."""

    nargs = 2

    @classmethod
    def eval(cls, a, norm):
        if _numbers(a, norm):
            return sp.Integer(0) if _equals(norm, 0) else a / norm
        return None

    @staticmethod
    def numeric(a, norm):
        """The same on float64 arrays."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(norm == 0, 0.0, a / np.where(norm == 0, 1.0, norm))


class PowLog(sp.Function):
    """d(a**b)/db = a**b ln a, and 0 where a = 0 and b >= 0 (as torch)."""

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if _numbers(a, b):
            if _equals(a, 1):
                return sp.Integer(0)  # 1**b ln 1 = 0 even for b = nan: IEEE's pow(1, nan) is 1
            if sp.nan in (a, b):
                return sp.nan
            if _equals(a, 0):
                return sp.Integer(0) if bool(b >= 0) else -sp.oo  # (+0)**b ln(+0) = inf * -inf
            if bool(a < 0):
                return sp.nan  # ln of a negative number is nan in torch
            return power(a, b) * sp.log(a)
        return None

    @staticmethod
    def at_signed_zero(a, b, *, negative):
        """Return the value at a = -0.0 where it differs from +0.0's: (-0.0)**b ln(-0.0) = inf for an odd b < 0."""
        if negative[0] and b.is_number and b.is_integer and bool(b < 0) and b.is_odd:
            return sp.oo
        return None

    @staticmethod
    def numeric(a, b):
        """The same on float64 arrays."""
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        with np.errstate(all="ignore"):
            keep = active_rounding() or _same  # in a dtype, torch rounds each factor
            general = keep(keep(fmath.power(a, b)) * keep(fmath.log(a)))
            at_zero = np.where(b >= 0, 0.0, general)  # IEEE's pow and log of a signed zero: (-0.0)**-1 ln(-0.0) = inf
            return np.select(
                [a == 1, np.isnan(a) | np.isnan(b), a == 0, a < 0], [0.0, np.nan, at_zero, np.nan], general
            )


class PowBase(sp.Function):
    """d(a**b)/da = b a**(b-1), and 0 where b = 0 (torch masks it, even at a = 0)."""

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if b.is_number and _equals(b, 0):
            return sp.Integer(0)
        if _numbers(a, b):
            if sp.nan in (a, b):
                return sp.nan
            if _equals(a, 0) and bool(b < 1):
                return sp.oo * sp.sign(b)  # b * (+0)**(b - 1): +inf times b's sign
            return b * power(a, b - 1)
        return None

    @staticmethod
    def masks(a, b):
        """Tell where torch's mask applies: b = 0 only (a zero that underflowed is a product, nan times it is nan)."""
        return b == 0

    @staticmethod
    def at_signed_zero(a, b, *, negative):
        """Return the value at a = -0.0 where it differs from +0.0's: b (-0.0)**(b - 1) for an even b < 0 is +-inf flipped."""
        if negative[0] and b.is_number and b.is_integer and bool(b < 0) and b.is_even:
            return -sp.oo * sp.sign(b)
        return None

    @staticmethod
    def numeric(a, b):
        """The same on float64 arrays; a number exponent b (0-d) as torch's pow kernel takes a.pow(b - 1): -0.5 as
        1 / sqrt(a), -inf at a = -0.0 (a 0-d tensor exponent goes the same way here)."""
        number = np.ndim(b) == 0
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        with np.errstate(all="ignore"):
            keep = active_rounding() or _same
            factor = keep(b)  # torch's pow keeps a number exponent in double, but multiplies by it in the dtype
            power = number_power(a, b.flat[0] - 1, keep) if number and b.size else keep(fmath.power(a, b - 1))
            general = keep(factor * power)
            return np.select([b == 0, np.isnan(a) | np.isnan(b)], [0.0, np.nan], general)  # IEEE at a signed zero


# Derivatives torch applies with a mask (where), so a zero there stops even nan or inf; where the mask is
# narrower than "the derivative is 0", the function says where with masks(*args).
# Step functions: torch applies them to the float64 it holds, so near a jump the rounded operand decides
# (ceil(expm1(-1e308)) is ceil(-1.0) = -1 in torch, where the exact -1 + e^(-1e308) gives 0).
STEPS = (sp.floor, sp.ceiling, sp.sign, RoundHalfEven, Trunc)

MASKS = (Positive, Inside, TieShare, FirstShare, PowBase, Above, Between, Picked, Unpicked, Zeroed)


def masked_zeros(d: sp.Expr, values: np.ndarray, args: list) -> np.ndarray | None:
    """Return where a derivative's zeros are torch's mask (not a product that happens to be 0), or None."""
    if not isinstance(d, MASKS):
        return None
    zero = np.asarray(values) == 0
    if hasattr(d.func, "masks"):
        return zero & np.broadcast_to(np.asarray(d.func.masks(*args), dtype=bool), zero.shape)
    return zero


def _named(tex: str) -> bool:
    """Tell whether printed LaTeX is an element's name (x_{00}, \\mathrm{logits}_{00}), not a number put in its place."""
    return re.match(r"^(\\mathrm\{[^}]*\}|[A-Za-z])(_|$)", tex) is not None


class Printer(LatexPrinter):
    """sympy's LaTeX printer, with torch's kink functions written as Iverson brackets."""

    def __init__(self, names: dict[sp.Symbol, str], values: dict[sp.Symbol, sp.Expr] | None = None):
        super().__init__({"symbol_names": names, "mul_symbol": "dot", "order": "none"})
        self.values = values or {}  # the symbols' values, where a derivative's form depends on them (ties)

    def _print_Abs(self, expr: sp.Expr, exp: str | None = None) -> str:
        # \lvert, not |: a bar inside math splits a Markdown table's cell and makes a kramdown list item a table
        tex = rf"\left\lvert {self._print(expr.args[0])}\right\rvert"
        return tex if exp is None else rf"{tex}^{{{exp}}}"

    def _print_Zeroed(self, expr: sp.Expr) -> str:
        return "0"

    def _print_Holds(self, expr: sp.Expr) -> str:
        a, b = (self._print(x) for x in expr.args[:2])
        return rf"\left[{a} {COMPARISON_TEX[int(expr.args[2])]} {b}\right]"

    def _print_Extremal(self, expr: sp.Expr) -> str:
        members = ", ".join(self._print(x) for x in expr.args[1:])
        return rf"\operatorname{{{('argmax', 'argmin')[int(expr.args[0])]}}}\left({members}\right)"

    def _print_GroupMean(self, expr: sp.Expr) -> str:
        return rf"\operatorname{{mean}}\left({', '.join(self._print(x) for x in expr.args)}\right)"

    def _print_GroupVar(self, expr: sp.Expr) -> str:
        return rf"\sigma^{{2}}\left({', '.join(self._print(x) for x in expr.args)}\right)"

    def _print_Rstd(self, expr: sp.Expr) -> str:
        eps, *members = expr.args
        if _named(self._print(members[0])):
            return r"\frac{1}{\sqrt{\sigma^{2} + \varepsilon}}"
        return rf"\frac{{1}}{{\sqrt{{{self._print(GroupVar(*members, evaluate=False))} + {self._print(eps)}}}}}"

    def _print_Hat(self, expr: sp.Expr) -> str:
        x, eps, *members = expr.args
        element = self._print(x)
        if not _named(element):  # numbers in place of the names: the whole quotient, each number shown
            mean = self._print(GroupMean(*members, evaluate=False))
            return rf"\frac{{{element} - {mean}}}{{\sqrt{{{self._print(GroupVar(*members, evaluate=False))} + {self._print(eps)}}}}}"
        base, _, index = element.partition("_")
        return rf"\hat{{{base}}}_{index}" if index else rf"\hat{{{element}}}"

    def _print_Chosen(self, expr: sp.Expr) -> str:
        c, a, b = (self._print(x) for x in expr.args)
        return rf"\operatorname{{where}}\left({c}, {a}, {b}\right)"

    def _print_Picked(self, expr: sp.Expr) -> str:
        return rf"\left[{self._print(expr.args[0])} = 1\right]"

    def _print_Unpicked(self, expr: sp.Expr) -> str:
        return rf"\left[{self._print(expr.args[0])} = 0\right]"

    def _print_Others(self, expr: sp.Expr) -> str:
        a, _, *members = expr.args
        rest = list(members)
        rest.remove(a)
        return self._print(sp.Mul(*rest, evaluate=False)) if len(rest) > 1 else self._print(rest[0]) if rest else "1"

    def _print_Positive(self, expr: sp.Expr) -> str:
        return rf"\left[{self._print(expr.args[0])} > 0\right]"

    def _print_Inside(self, expr: sp.Expr) -> str:
        a = self._print(expr.args[0])
        lo, hi = (constant_tex(x) if x.is_Rational else self._print(x) for x in expr.args[1:])
        if expr.args[1] == -sp.oo:
            return rf"\left[{a} \le {hi}\right]"
        if expr.args[2] == sp.oo:
            return rf"\left[{a} \ge {lo}\right]"
        return rf"\left[{lo} \le {a} \le {hi}\right]"

    def _print_Log1p(self, expr: sp.Expr) -> str:
        return rf"\ln\left(1 + {self._print(expr.args[0])}\right)"

    def _print_Expm1(self, expr: sp.Expr) -> str:
        return rf"\left(e^{{{self._print(expr.args[0])}}} - 1\right)"

    def _print_RoundHalfEven(self, expr: sp.Expr) -> str:
        return rf"\operatorname{{round}}\left({self._print(expr.args[0])}\right)"

    def _print_Trunc(self, expr: sp.Expr) -> str:
        return rf"\operatorname{{trunc}}\left({self._print(expr.args[0])}\right)"

    def _print_Above(self, expr: sp.Expr) -> str:
        a, b = (self._print(x) for x in expr.args)
        return rf"\left(\left[{a} > {b}\right] + \tfrac{{1}}{{2}}\left[{a} = {b}\right]\right)"

    def _print_LeakySlope(self, expr: sp.Expr) -> str:
        a, slope = (self._print(x) for x in expr.args)
        return rf"\left(\left[{a} > 0\right] + {slope} \left[{a} \le 0\right]\right)"

    def _print_LeakyRelu(self, expr: sp.Expr) -> str:
        a, slope = (self._print(x) for x in expr.args)
        return rf"\operatorname{{leaky\_relu}}_{{{slope}}}\left({a}\right)"

    def _print_Elu(self, expr: sp.Expr) -> str:
        return rf"\operatorname{{elu}}\left({self._print(expr.args[0])}\right)"

    def _print_EluSlope(self, expr: sp.Expr) -> str:
        a, alpha = expr.args
        left = self._print(sp.Mul(alpha, sp.exp(a), evaluate=False)) if alpha != 1 else self._print(sp.exp(a))
        return rf"\left(\left[{self._print(a)} > 0\right] + {left} \left[{self._print(a)} \le 0\right]\right)"

    def _print_Between(self, expr: sp.Expr) -> str:
        a, lo, hi = (self._print(x) for x in expr.args)
        return rf"\left[{lo} < {a} < {hi}\right]"

    def _print_Softplus(self, expr: sp.Expr) -> str:
        return rf"\operatorname{{softplus}}\left({self._print(expr.args[0])}\right)"

    def _print_SoftplusSlope(self, expr: sp.Expr) -> str:
        a, beta, _ = expr.args
        return self._print(1 / (1 + sp.exp(-beta * a)))

    def _print_Detached(self, expr: sp.Expr) -> str:
        return rf"\operatorname{{detach}}\left({self._print(expr.args[0])}\right)"

    def _print_TieShare(self, expr: sp.Expr) -> str:
        a, extreme = (self._print(x) for x in expr.args[:2])
        bracket = rf"\left[{a} = {extreme}\right]"
        numbers = [self.values.get(x, x) for x in expr.args[1:]]
        if not all(x.is_number for x in numbers):  # a generic element: the count is not known
            return rf"\frac{{{bracket}}}{{n_{{\text{{ties}}}}}}"
        ties = sum(1 for x in numbers[1:] if same_number(x, numbers[0]))  # the elements equal to the extreme
        return bracket if ties <= 1 else rf"\frac{{{bracket}}}{{{ties}}}"

    def _print_FirstShare(self, expr: sp.Expr) -> str:
        a, extreme = (self._print(x) for x in expr.args[:2])
        return rf"\left[{a} = {extreme}\right]_{{\text{{first}}}}"

    def _print_NormShare(self, expr: sp.Expr) -> str:
        a, norm = (self._print(x) for x in expr.args)
        return rf"\frac{{{a}}}{{{norm}}}"

    def _print_PowBase(self, expr: sp.Expr) -> str:
        a, b = expr.args
        return self._print(sp.Mul(b, a ** (b - 1), evaluate=False))

    def _print_PowLog(self, expr: sp.Expr) -> str:
        a, b = expr.args
        return self._print(a**b) + r" \ln " + self.parenthesize(a, 1000)


def _powered(method):
    """Let a custom function's printer take sympy's exp= (a function to a power, f(a)² in a norm), as sympy's own do."""
    def print_powered(self, expr, exp=None):
        tex = method(self, expr)
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"
    return print_powered


for _name, _method in list(vars(Printer).items()):  # noqa: B007
    if _name.startswith("_print_") and "exp" not in _method.__code__.co_varnames[:_method.__code__.co_argcount]:
        setattr(Printer, _name, _powered(_method))
