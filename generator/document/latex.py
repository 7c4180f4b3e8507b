"""LaTeX for the derivation: sympy's printer taught our symbols, kinks and numbers."""

from __future__ import annotations

import math

import sympy as sp

from ..floats.ieee import to_float
from ..ops.base import unravel

INDEX_LETTERS = "ijkl"


def name_tex(name: str) -> str:
    """Return a node's name in math: one letter italic, longer names upright."""
    if len(name) == 1:
        return name
    return r"\mathrm{" + name.replace("_", r"\_") + "}"


def index_tex(index: tuple[int, ...] | str) -> str:
    """Return a subscript: digits run together while every index is below 10."""
    if isinstance(index, str):
        return index
    if all(i < 10 for i in index):
        return "".join(map(str, index))
    return ",".join(map(str, index))


def element_tex(name: str, shape: tuple[int, ...], flat: int | None) -> str:
    """Return the LaTeX of one element (flat index), or of the generic element (None)."""
    base = name_tex(name)
    if not shape:
        return base
    sub = INDEX_LETTERS[: len(shape)] if flat is None else index_tex(unravel(flat, shape))
    return f"{base}_{{{sub}}}"


def decimal(x: float, digits: int = 6) -> str:
    """Return a float in plain decimal LaTeX, to `digits` significant digits."""
    if math.isnan(x):
        return r"\mathrm{nan}"
    if math.isinf(x):
        return r"\infty" if x > 0 else r"-\infty"
    if x == 0:
        return "0"
    exponent = math.floor(math.log10(abs(x)))
    if -5 <= exponent < 7:
        text = f"{x:.{max(digits - 1 - exponent, 0)}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text
    # Python's own rounding to a mantissa and exponent: x / 10**exponent fails for subnormals (10**-324 is 0.0)
    mantissa, _, power = f"{x:.{digits - 1}e}".partition("e")
    return rf"{mantissa.rstrip('0').rstrip('.')} \times 10^{{{int(power)}}}"





def fraction_tex(value: sp.Rational) -> str:
    """Return a rational as a LaTeX fraction."""
    sign = "-" if value.p < 0 else ""
    return rf"{sign}\frac{{{abs(value.p)}}}{{{value.q}}}"


def number_tex(value: sp.Expr) -> str:
    """Return a value as a short factor: an integer, an exact decimal, a small fraction, or a decimal."""
    if isinstance(value, float):  # a large example's float64 (generator/engines/sparse.py)
        return decimal(value)
    if value.is_Integer:
        return str(int(value))
    if value.is_Rational:
        if _terminates(value):
            return decimal(to_float(value), 12)
        if value.q <= 10_000 and abs(value.p) <= 10**6:
            return fraction_tex(value)
    return decimal(to_float(value))


def operand_tex(value: sp.Expr) -> str:
    """Return a value to stand in an expression, parenthesised when negative."""
    text = number_tex(value)
    return rf"\left({text}\right)" if text.startswith("-") else text


def value_tex(value: sp.Expr) -> str:
    """Return '= exact = decimal' (or '≈ decimal') for the end of an equation chain."""
    if isinstance(value, float):
        shown = decimal(value)
        exact = math.isnan(value) or math.isinf(value) or value == float(f"{value:.6g}")
        return (" = " if exact else r" \approx ") + shown
    if value.is_Integer or value in (sp.oo, -sp.oo, sp.nan) or value.is_Float:
        return " = " + number_tex(value) if not value.is_Float else r" \approx " + decimal(to_float(value))
    if value.is_Rational:
        if _terminates(value):
            dec = decimal(to_float(value), 12)
            return f" = {fraction_tex(value)} = {dec}" if value.q <= 100 else f" = {dec}"
        if value.q <= 10_000 and abs(value.p) <= 10**6:
            return rf" = {fraction_tex(value)} \approx {decimal(to_float(value))}"
    return r" \approx " + decimal(to_float(value))


def _terminates(value: sp.Rational) -> bool:
    q = int(value.q)
    for p in (2, 5):
        while q % p == 0:
            q //= p
    return q == 1 and abs(value.p) < 10**12 and "times" not in decimal(to_float(value), 12) and len(
        decimal(to_float(value), 12)) <= 12


MAX_SHOWN = 10  # rows or columns of a tensor written out; beyond, only the corners
MAX_BLOCKS = 3  # matrices of a 3-D or 4-D tensor written out along each leading dimension; beyond, the ends


def matrix_tex(rows: list[list[str]]) -> str:
    """Return a bmatrix from cells."""
    body = r" \\ ".join(" & ".join(r) for r in rows)
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"


def picks(n: int, limit: int = MAX_SHOWN, marks: tuple[int, ...] = ()) -> list[int | None]:
    """Return the indices to show of n: all of them, or the first three, the marked ones and the last, gaps as None."""
    if n <= limit:
        return list(range(n))
    return gapped(sorted({0, 1, 2, n - 1, *marks}))


def gapped(shown: list[int]) -> list[int | None]:
    """Return sorted indices with None in each gap; a gap of one index shows that index instead."""
    out: list[int | None] = []
    for i in shown:
        if out and i - out[-1] == 2:
            out.append(i - 1)
        elif out and i - out[-1] > 2:
            out.append(None)
        out.append(i)
    return out


def corner_cells(rows: int, cols: int, cell, pick=picks, pick_cols=None) -> list[list[str]]:
    """Return the cells cell(r, c) at the rows pick(n) and columns pick_cols(n) (else pick) show, dots in the gaps."""
    body = []
    for r in pick(rows):
        row = []
        for c in (pick_cols or pick)(cols):
            if r is None and c is None:
                row.append(r"\ddots")
            elif r is None:
                row.append(r"\vdots")
            elif c is None:
                row.append(r"\cdots")
            else:
                row.append(cell(r, c))
        body.append(row)
    return body


def corner_matrix(rows: int, cols: int, cell, limit: int = MAX_SHOWN, marks: tuple[tuple[int, ...], ...] = ((), ())) -> str:
    """Return a bmatrix of cell(r, c); beyond `limit` rows or columns, its corners and marked rows and columns."""
    return matrix_tex(corner_cells(rows, cols, cell, lambda n: picks(n, limit, marks[0]),
                                   lambda n: picks(n, limit, marks[1])))


def size_tex(shape: tuple[int, ...]) -> str:
    """Return a shape in math: 12 \\times 12."""
    return r" \times ".join(map(str, shape))


def elided(shape: tuple[int, ...]) -> bool:
    """Tell whether tensor_tex leaves out some of a tensor of this shape."""
    return any(n > MAX_SHOWN for n in shape[-2:]) or any(n > MAX_BLOCKS for n in shape[:-2])


def tensor_tex(values: list[sp.Expr] | tuple[sp.Expr, ...], shape: tuple[int, ...], marks: tuple[int, ...] = ()) -> str:
    """Return a tensor's values: a number, a row vector, a matrix, or nested rows.

    A tensor with more than MAX_SHOWN rows, columns or blocks shows its corners, and
    the rows and columns of the marked entries (flat indices; generator/document/glance.py),
    with its full size written under it.
    """
    if not shape:
        return number_tex(values[0])
    body = _tensor_body(values, shape, marks)
    if elided(shape):
        return rf"\underset{{{size_tex(shape)}}}{{{body}}}"
    return body


def _tensor_body(values, shape: tuple[int, ...], marks: tuple[int, ...] = ()) -> str:
    if len(shape) == 1:
        return corner_matrix(1, shape[0], lambda r, c: number_tex(values[c]), marks=((), marks))
    cols = shape[-1]
    if len(shape) == 2:
        return corner_matrix(shape[0], cols, lambda r, c: number_tex(values[r * cols + c]),
                             marks=(tuple(m // cols for m in marks), tuple(m % cols for m in marks)))
    # more dims: one matrix per leading index, the first and the last beyond MAX_BLOCKS (the 4-D
    # tensors the limits allow, 10 × 10 × 10 × 10, would otherwise be a row of 100 matrices)
    per = len(values) // shape[0]
    shown = list(range(shape[0])) if shape[0] <= MAX_BLOCKS else [0, None, shape[0] - 1]
    blocks = [r"\ldots" if i is None else _tensor_body(values[i * per:(i + 1) * per], shape[1:])
              for i in shown]
    return r"\left[\; " + r",\; ".join(blocks) + r" \;\right]"
