"""Numbers and names as a spec may write them: the limits shared by the YAML and Python readers, and exact literals."""

from __future__ import annotations

import math
import re
from fractions import Fraction

MAX_DIMS = 4  # most dimensions of a tensor
MAX_ELEMENTS = 1_000_000  # most elements of a tensor
MAX_INT_DIGITS = 50  # most digits of an integer literal
MAX_DECIMAL_DIGITS = 50  # most digits of a decimal literal, exponent not counted
MAX_EXPONENT_DIGITS = 3  # most digits after the e, leading zeros not counted (1e-308 needs 3)
DTYPES = ("float32", "float64")
LANGS = ("en", "zh")
FLAVORS = ("portable", "github", "mkdocs", "hugo", "jekyll")  # the Markdown flavors of generator/render/flavor.py
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
# Names the generated torch script relies on, so a tensor may not shadow them:
# the modules it imports or may import (torch, math), the builtin it calls (print),
# its gradient variable (v; code.py renames on clashes, but v keeps the script plain)
# and the word its output uses for gradients (grad, as in x.grad).
RESERVED = frozenset({"torch", "math", "print", "v", "grad"})

# TeX macros a page's MathJax or KaTeX would turn into links, styles, classes, ids, HTML or loaded code.
# Spec text never reaches a renderer as math (generator/render/markdown.py), so this is only a second fence.
ACTIVE_TEX = re.compile(r"\\(?:href|url|style|class|cssId|unicode|require|html[A-Za-z]*|includegraphics)(?![A-Za-z])")
PLAIN_TEXT = "allowed: plain text; no macro that makes links, styles, classes, ids or HTML, or loads code"

_DECIMAL = re.compile(r"([-+]?)([0-9]*)\.?([0-9]*)(?:[eE]([-+]?)([0-9]+))?")


def clip(text: str, limit: int = 40) -> str:
    """Return text cut to limit characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def integer(text: str) -> tuple[Fraction | None, tuple[str, str]]:
    """Return the value of a core-schema integer, or why it is refused."""
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    base = {"0x": 16, "0o": 8}.get(digits[:2], 10)
    if base != 10:
        digits = digits[2:]
    if len(digits) > MAX_INT_DIGITS:
        return None, (f"integer too long: {len(digits)} digits", f"allowed: at most {MAX_INT_DIGITS} digits")
    return Fraction(sign * int(digits, base)), ("", "")


def decimal(text: str) -> tuple[Fraction | None, tuple[str, str]]:
    """Return the exact value of a core-schema decimal like 0.1 or -1e-4, or why it is refused."""
    match = _DECIMAL.fullmatch(text)
    assert match is not None
    sign, whole, fraction, exp_sign, exponent = match.groups()
    digits = whole + fraction
    if len(digits) > MAX_DECIMAL_DIGITS:
        allowed = f"allowed: at most {MAX_DECIMAL_DIGITS} digits before the exponent"
        return None, (f"number too long: {len(digits)} digits", allowed)
    if not digits.strip("0"):
        return Fraction(0), ("", "")  # 0e999999999999 is 0 whatever its exponent
    if len((exponent or "").lstrip("0")) > MAX_EXPONENT_DIGITS:
        allowed = f"allowed: at most {MAX_EXPONENT_DIGITS} digits after the e"
        return None, (f"exponent too long: {clip(text)}", allowed)
    approx = float(text)  # only to bound the exponent before computing 10**exponent
    if math.isinf(approx) or approx == 0:
        allowed = "allowed: 0, or magnitudes from about 5e-324 to 1.8e308"
        return None, (f"number out of range: {clip(text)}", allowed)
    # leading zeros stripped: int() refuses strings over 4300 digits
    power = int((exp_sign or "") + ((exponent or "").lstrip("0") or "0")) - len(fraction)
    value = Fraction(int(digits)) * Fraction(10) ** power
    return (-value if sign == "-" else value), ("", "")
