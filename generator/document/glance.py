"""Which entries of a large tensor carry its meaning: the rule, in one place.

A tensor too large to write out shows a few of its entries. Its corners say
nothing when the point is elsewhere: the one non-zero of a gradient (the target's
-1), the one row whose sign differs. This module decides, from the numbers alone,
which entries to show and which one element to evaluate the generic equation at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_MARKED = 3  # entries (or rows) shown as exceptions; beyond, the tensor is described by its extremes


@dataclass(frozen=True)
class Glance:
    """What stands out in a tensor: flat indices into its row-major values, and its sizes."""

    kind: str  # "equal": every entry the same; "except": all equal to baseline but a few; "spread"
    size: int
    nonzero: int
    baseline: float  # the common value ("equal", "except"); nan for "spread"
    entries: tuple[int, ...]  # the exceptions, or the few entries whose sign differs from the rest
    rows: tuple[int, ...]  # of a matrix: the few whole rows whose sign differs from the rest
    low: int  # the first smallest entry
    high: int  # the first largest entry
    norm: float  # the L2 norm
    pick: int  # the element to evaluate a generic equation at
    why: str  # why that one: equal, nonzero, outlier, sign, largest

    @property
    def marks(self) -> tuple[int, ...]:
        """Return the flat indices a shortened display must keep, besides its corners."""
        return self.entries if self.kind != "equal" else ()


def glance(values: np.ndarray, shape: tuple[int, ...]) -> Glance:
    """Return what stands out in a tensor of this shape (values flat, row-major)."""
    seen = _SEEN.get(id(values))
    if seen is not None and seen[0] is values and seen[1] == shape:  # the same array again: each part of a document asks
        return seen[2]
    found = _glance(np.asarray(values, dtype=np.float64).reshape(-1), shape)
    if isinstance(values, np.ndarray) and values.size > SEEN_FROM:
        while len(_SEEN) >= SEEN_MAX:
            _SEEN.pop(next(iter(_SEEN)))
        _SEEN[id(values)] = (values, shape, found)
    return found


_SEEN: dict[int, tuple[np.ndarray, tuple[int, ...], Glance]] = {}  # large arrays glanced at, kept while referenced here
SEEN_FROM = 10_000  # elements from which a glance is kept
SEEN_MAX = 64


def _glance(x: np.ndarray, shape: tuple[int, ...]) -> Glance:
    size = x.size
    low, high = _extreme(x, np.nanargmin), _extreme(x, np.nanargmax)
    base = dict(size=size, nonzero=int(np.count_nonzero(x)), low=low, high=high, norm=l2(x), rows=())
    mode = _mode(x)
    others = np.flatnonzero(~(x == mode))  # nan is never equal, so it is always an exception
    if others.size == 0:
        return Glance("equal", baseline=mode, entries=(), pick=0, why="equal", **base)
    if others.size <= MAX_MARKED and others.size < size - others.size:  # a few exceptions to a value most elements share
        why = "nonzero" if mode == 0 else "outlier"
        return Glance("except", baseline=mode, entries=tuple(map(int, others)), pick=int(others[0]), why=why,
                      **base)
    minority = _minority(x)
    rows = _whole_rows(minority, shape) if minority.size else ()
    if rows:
        cols = shape[1]
        entries = tuple(r * cols for r in rows)
        return Glance("spread", baseline=math.nan, entries=entries, pick=entries[0], why="sign",
                      **{**base, "rows": rows})
    if 0 < minority.size <= MAX_MARKED:
        entries = tuple(map(int, minority))
        return Glance("spread", baseline=math.nan, entries=entries, pick=entries[0], why="sign", **base)
    largest = _extreme(np.abs(x), np.nanargmax)
    return Glance("spread", baseline=math.nan, entries=(), pick=largest, why="largest", **base)


def l2(x: np.ndarray) -> float:
    """Return the L2 norm, scaled so that squares neither overflow nor vanish, summed in one order on any CPU."""
    if np.isnan(x).any():
        return math.nan
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top == 0 or math.isinf(top):
        return top
    scaled = x / top
    squares = scaled * scaled  # each product a correctly rounded IEEE operation
    if squares.size > COLUMNS:  # column sums: each a plain sequence of additions, whatever numpy's SIMD width
        squares = np.concatenate([squares, np.zeros(-squares.size % COLUMNS)]).reshape(-1, COLUMNS).sum(axis=0)
    return top * math.sqrt(math.fsum(squares.tolist()))


COLUMNS = 1024  # partial sums of a long L2 norm, added row by row and then exactly


def _extreme(x: np.ndarray, arg) -> int:
    return 0 if np.isnan(x).all() else int(arg(x))


def _mode(x: np.ndarray) -> float:
    """Return the most frequent value (the smallest among equally frequent ones)."""
    finite = x[~np.isnan(x)]
    if not finite.size:
        return math.nan
    values, counts = np.unique(finite, return_counts=True)
    return float(values[int(np.argmax(counts))])


def _minority(x: np.ndarray) -> np.ndarray:
    """Return the flat indices of the entries of the rarer sign, when both signs occur (and not equally often)."""
    negative, positive = np.flatnonzero(x < 0), np.flatnonzero(x > 0)
    if not negative.size or not positive.size or negative.size == positive.size:
        return np.zeros(0, dtype=np.int64)
    return negative if negative.size < positive.size else positive


def _whole_rows(entries: np.ndarray, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Return the rows of a matrix that these entries fill exactly, when they are few whole rows."""
    if len(shape) != 2 or shape[1] < 2 or entries.size % shape[1]:
        return ()
    rows = np.unique(entries // shape[1])
    if rows.size > MAX_MARKED or rows.size * shape[1] != entries.size:
        return ()
    return tuple(map(int, rows))
