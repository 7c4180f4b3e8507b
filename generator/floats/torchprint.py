"""What PyTorch 2.13 prints for a dense CPU float tensor, without torch.

Mirrors torch/_tensor_str.py under the default print options: one formatter
(int mode, sci mode, column width) is chosen from the elements that are shown,
tensors over 1000 elements are summarised to 3 edge items per dimension, rows
wrap at 80 columns, and suffixes (dtype, grad_fn, requires_grad) are appended
after the closing bracket, wrapping to a new line when they would not fit.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence

import numpy as np

PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80
PREFIX = "tensor("
DTYPES = ("float32", "float64")


def format_tensor(values: Sequence[float], shape: tuple[int, ...], *, dtype: str = "float32",
                  requires_grad: bool = False, grad_fn: str | None = None) -> str:
    """Return exactly what print(t) shows for a float tensor with these row-major values."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
    shape = tuple(shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"negative size in shape {shape}")
    if isinstance(values, np.ndarray) and values.dtype == np.float64:  # a large tensor's numbers: rounded at once
        with np.errstate(over="ignore"):
            vals = (values if dtype == "float64" else values.astype(np.float32).astype(np.float64)).reshape(-1).tolist()
    else:
        vals = [_round(float(v), dtype) for v in values]
    if len(vals) != math.prod(shape):
        raise ValueError(f"{len(vals)} values do not fill shape {shape}")

    suffixes = []
    if not vals:
        body = "[]"
        if len(shape) != 1:
            suffixes.append(f"size={shape}")
    else:
        summarize = len(vals) > THRESHOLD
        fmt = _Formatter(list(_shown(vals, shape, summarize)))
        body = _render(vals, shape, 0, len(PREFIX), summarize, fmt)
    if dtype != "float32":
        suffixes.append(f"dtype=torch.{dtype}")
    # torch shows grad_fn instead of requires_grad, never both
    if grad_fn is not None:
        suffixes.append(f"grad_fn=<{grad_fn}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(PREFIX + body, suffixes)


def format_bools(values: Sequence[bool], shape: tuple[int, ...]) -> str:
    """Return exactly what print(t) shows for a bool tensor, such as the result of a == b."""
    return _format_plain([bool(v) for v in values], tuple(shape), "bool")


def format_ints(values: Sequence[int], shape: tuple[int, ...]) -> str:
    """Return exactly what print(t) shows for an int64 tensor, such as indices or class targets."""
    return _format_plain([int(v) for v in values], tuple(shape), "int64")


def _format_plain(vals: list, shape: tuple[int, ...], dtype: str) -> str:
    """Return print(t) of a tensor of a dtype torch writes without a suffix (bool, int64): each value as str()."""
    if len(vals) != math.prod(shape):
        raise ValueError(f"{len(vals)} values do not fill shape {shape}")
    if not vals:
        return _add_suffixes(PREFIX + "[]", ([] if len(shape) == 1 else [f"size={shape}"])
                             + (["dtype=torch.bool"] if dtype == "bool" else []))
    summarize = len(vals) > THRESHOLD
    fmt = _PlainFormatter(list(_shown(vals, shape, summarize)))
    return PREFIX + _render(vals, shape, 0, len(PREFIX), summarize, fmt) + ")"


class _PlainFormatter:
    """Write each value right-aligned to the widest shown, as torch's formatter does for non-float dtypes."""

    def __init__(self, shown: list) -> None:
        self.width = max(len(str(v)) for v in shown)

    def __call__(self, v) -> str:
        return str(v).rjust(self.width)


def _round(x: float, dtype: str) -> float:
    """Round x to the nearest value of dtype, overflowing to +-inf as torch does."""
    if dtype == "float64" or not math.isfinite(x):
        return x
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


class _Formatter:
    """Pick int mode, sci mode and column width from the shown elements."""

    def __init__(self, shown: list[float]) -> None:
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        finite = [v for v in shown if math.isfinite(v) and v != 0]
        if not finite:
            return
        lo = min(abs(v) for v in finite)
        hi = max(abs(v) for v in finite)
        self.int_mode = all(v.is_integer() for v in finite)
        self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        self.width = max(len(self._plain(v)) for v in finite)

    def _plain(self, v: float) -> str:
        if self.sci_mode:
            return f"{v:.{PRECISION}e}"
        if self.int_mode:
            # the trailing dot marks a float; inf and nan need no marker
            return f"{v:.0f}" + ("." if math.isfinite(v) else "")
        return f"{v:.{PRECISION}f}"

    def __call__(self, v: float) -> str:
        return self._plain(v).rjust(self.width)


def _indices(size: int, summarize: bool) -> list[int | None]:
    """Return the shown indices of a dimension, None standing for the ellipsis."""
    if summarize and size > 2 * EDGEITEMS:
        return [*range(EDGEITEMS), None, *range(size - EDGEITEMS, size)]
    return list(range(size))


def _shown(vals: list[float], shape: tuple[int, ...], summarize: bool,
           offset: int = 0) -> Iterator[float]:
    """Yield the elements that the printout shows, in order."""
    if not shape:
        yield vals[offset]
        return
    stride = math.prod(shape[1:])
    for i in _indices(shape[0], summarize):
        if i is not None:
            yield from _shown(vals, shape[1:], summarize, offset + i * stride)


def _render(vals: list[float], shape: tuple[int, ...], offset: int, indent: int,
            summarize: bool, fmt: _Formatter) -> str:
    """Render the sub-tensor at offset whose opening bracket sits at column indent."""
    if not shape:
        return fmt(vals[offset])
    idx = _indices(shape[0], summarize)
    if len(shape) == 1:
        items = [" ..." if i is None else fmt(vals[offset + i]) for i in idx]
        per_line = max(1, (LINEWIDTH - indent) // (fmt.width + 2))
        lines = [", ".join(items[k:k + per_line]) for k in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    stride = math.prod(shape[1:])
    parts = ["..." if i is None
             else _render(vals, shape[1:], offset + i * stride, indent + 1, summarize, fmt)
             for i in idx]
    # blank lines between blocks: one fewer than the block's dimensions
    sep = "," + "\n" * (len(shape) - 1) + " " * (indent + 1)
    return "[" + sep.join(parts) + "]"


def _add_suffixes(text: str, suffixes: list[str]) -> str:
    """Append suffixes and the closing parenthesis, wrapping as torch does."""
    out = [text]
    # torch's own arithmetic, which overcounts the last line by one or two
    last = len(text) - text.rfind("\n") + 1
    for s in suffixes:
        if last + len(s) + 2 > LINEWIDTH:
            out.append(",\n" + " " * len(PREFIX) + s)
            last = len(PREFIX) + len(s)
        else:
            out.append(", " + s)
            last += len(s) + 2
    out.append(")")
    return "".join(out)
