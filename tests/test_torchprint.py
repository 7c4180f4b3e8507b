"""format_tensor must print exactly what real torch prints for the same tensor."""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import given, settings, strategies as st

from generator.floats.torchprint import format_bools, format_tensor

inf, nan = math.inf, math.nan
DTYPES = {"float32": torch.float32, "float64": torch.float64}
# grad_fn name -> an op that keeps every value (including -0.0 and nan) unchanged
OPS = {
    "MulBackward0": lambda x: x * 1,
    "CloneBackward0": lambda x: x.clone(),
    "ViewBackward0": lambda x: x.view(x.shape),
}


def torch_print(values: list[float], shape: tuple[int, ...], dtype: str = "float32",
                requires_grad: bool = False, op: str | None = None) -> tuple[str, str | None]:
    """Return torch's printout and the grad_fn name it shows."""
    t = torch.tensor(values, dtype=DTYPES[dtype]).reshape(shape)
    if requires_grad or op:
        t.requires_grad_()
    if op:
        t = OPS[op](t)
    name = type(t.grad_fn).__name__ if t.grad_fn is not None else None
    assert str(t) == repr(t)
    return repr(t), name


def check(values: list[float], shape: tuple[int, ...], dtype: str = "float32",
          requires_grad: bool = False, op: str | None = None) -> None:
    """Assert that format_tensor matches torch on one tensor."""
    expected, name = torch_print(values, shape, dtype, requires_grad, op)
    if dtype == "float32":
        # callers pass float32-rounded values, as torch stores them
        values = torch.tensor(values, dtype=torch.float32).tolist() if values else []
    got = format_tensor(values, shape, dtype=dtype, requires_grad=requires_grad, grad_fn=name)
    assert got == expected


def ramp(n: int, scale: float = 1.0, start: float = 0.0) -> list[float]:
    """Return n evenly spaced values."""
    return [start + scale * i for i in range(n)]


# --- the brief's examples -----------------------------------------------------

def test_brief_examples() -> None:
    """Match the three examples the brief spells out, via torch."""
    check([4.5] * 4, (2, 2))
    check([0.2, 2.0, 0.0002], (3,))
    check([2.0, 2.0, 2.0], (3,), op="MulBackward0")


# --- zero-dimensional tensors -------------------------------------------------

@pytest.mark.parametrize("value", [4.5, 3.0, 0.0, -0.0, nan, inf, -inf, 1e-5, 1e9, -2.25, 1 / 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_scalar(value: float, dtype: str) -> None:
    """Print a 0-d tensor without brackets or padding."""
    check([value], (), dtype)


# --- integer mode, fixed and scientific notation --------------------------------

MODES = {
    "ints": [1.0, 2.0, 3.0],
    "negative ints": [-1.0, 20.0, -300.0],
    "ints with nonfinite": [1.0, inf, nan, -inf],
    "all zeros": [0.0, 0.0, 0.0],
    "negative zero": [-0.0, 0.0, 1.0],
    "negative zero fractions": [-0.0, 0.5],
    "only nonfinite": [nan, inf, -inf],
    "fractions": [0.5, -1.25, 3.0],
    "ratio 1000": [1.0, 1000.0],
    "ratio over 1000": [1.0, 1001.0],
    "int ratio over 1000": [1.0, 2000.0, -3.0],
    "max 1e8": [1e8, 2e7],
    "max over 1e8": [1.5e8, 2e7],
    "min 1e-4": [1e-4, 0.05],
    "min under 1e-4": [9e-5, 0.05],
    "sci with nonfinite": [1e-9, nan, -inf, 0.0, -0.0],
    "huge": [3e38, -1e30],
    "tiny": [1e-30, -2e-38],
    "subnormal": [1e-40, 1.0],
    "rounding": [0.00005, 0.99995, 1.00005, 2.5],
}


@pytest.mark.parametrize("values", MODES.values(), ids=MODES.keys())
@pytest.mark.parametrize("dtype", DTYPES)
def test_modes(values: list[float], dtype: str) -> None:
    """Choose int, fixed or sci mode and the column width as torch does."""
    check(values, (len(values),), dtype)


def test_float32_overflow() -> None:
    """Round out-of-range values to inf as a float32 tensor stores them."""
    check([1e39, -1e300, 1.0], (3,))


# --- nesting, wrapping and summarisation -------------------------------------------

SHAPES = {
    "2-d": (ramp(6, 0.5), (2, 3)),
    "3-d": (ramp(24, 1.5), (2, 3, 4)),
    "4-d": (ramp(48, -0.25), (2, 2, 3, 4)),
    "6-d": (ramp(64), (2, 2, 2, 2, 2, 2)),
    "unit dims": ([7.5], (1, 1, 1)),
    "long row": (ramp(30, 1.2345), (30,)),
    "long 2-d rows": (ramp(60, -3.3), (3, 20)),
    "long 3-d rows": (ramp(80, 1e5), (2, 2, 20)),
    "wide sci": (ramp(25, -1.5e-7, 1e9), (25,)),
    "exactly threshold": (ramp(1000, 0.1), (1000,)),
    "1-d summarised": (ramp(1001, 0.1), (1001,)),
    "2-d summarised": (ramp(1200, 0.5), (40, 30)),
    "2-d short rows summarised": (ramp(1010), (505, 2)),
    "3-d summarised": (ramp(1331, 0.01), (11, 11, 11)),
    "4-d summarised": (ramp(2016, 3.0), (7, 8, 6, 6)),
    "summary hides sci": ([1e-9] + [1.0] * 1000 + [2.0] * 3, (1004,)),
}


@pytest.mark.parametrize("values, shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("dtype", DTYPES)
def test_layout(values: list[float], shape: tuple[int, ...], dtype: str) -> None:
    """Nest, wrap at 80 columns and summarise with ellipses as torch does."""
    check(values, shape, dtype)


# --- empty tensors --------------------------------------------------------------

@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 3, 1)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("requires_grad", [False, True])
def test_empty(shape: tuple[int, ...], dtype: str, requires_grad: bool) -> None:
    """Print [] with a size suffix unless the tensor is 1-d."""
    check([], shape, dtype, requires_grad)


# --- suffixes -------------------------------------------------------------------

SUFFIXED = {
    "short": (ramp(3, 0.5), (3,)),
    "0-d": ([2.0], ()),
    "2-d": (ramp(4), (2, 2)),
    "full last line": (ramp(7, 1.1111), (7,)),
    "nearly full last line": (ramp(6, 1.1111), (6,)),
    "wrapped rows": (ramp(40, 0.3), (40,)),
    "wide 2-d": (ramp(16, -1.0e-3), (2, 8)),
}


@pytest.mark.parametrize("values, shape", SUFFIXED.values(), ids=SUFFIXED.keys())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("requires_grad, op", [(True, None), (False, "MulBackward0"),
                                               (False, "CloneBackward0"), (False, None)])
def test_suffixes(values: list[float], shape: tuple[int, ...], dtype: str,
                  requires_grad: bool, op: str | None) -> None:
    """Order and wrap dtype, requires_grad and grad_fn suffixes as torch does."""
    check(values, shape, dtype, requires_grad, op)


def test_grad_fn_wins() -> None:
    """Show grad_fn, not requires_grad, when both are given."""
    expected, name = torch_print([1.0, 2.0], (2,), op="MulBackward0")
    assert format_tensor([1.0, 2.0], (2,), requires_grad=True, grad_fn=name) == expected


# --- bad input ------------------------------------------------------------------

@pytest.mark.parametrize("values, shape, dtype", [
    ([1.0, 2.0], (3,), "float32"),
    ([1.0], (), "float16"),
    ([], (-1,), "float32"),
])
def test_rejects(values: list[float], shape: tuple[int, ...], dtype: str) -> None:
    """Raise ValueError for a size mismatch, an unknown dtype or a negative size."""
    with pytest.raises(ValueError):
        format_tensor(values, shape, dtype=dtype)


# --- random tensors -------------------------------------------------------------

VALUES = st.one_of(
    st.integers(-10, 10).map(float),
    st.builds(lambda n, d: n / d, st.integers(-999, 999), st.sampled_from([2, 3, 4, 7, 8, 10, 1000])),
    st.floats(1e4, 1e30).flatmap(lambda x: st.sampled_from([x, -x])),
    st.floats(1e-30, 1e-3).flatmap(lambda x: st.sampled_from([x, -x])),
    st.sampled_from([0.0, -0.0, inf, -inf, nan, 1e8, 1e-4, 1e300, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SIZES = st.one_of(st.integers(0, 4), st.integers(5, 12), st.sampled_from([25, 40, 1001]))


@st.composite
def shapes(draw: st.DrawFn) -> tuple[int, ...]:
    """Draw a 0-d to 4-d shape, sometimes big enough to summarise or wrap."""
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(SIZES) for _ in range(ndim))
    if math.prod(shape) > 20000:
        shape = tuple(min(n, 12) for n in shape)
    return shape


@settings(derandomize=True, max_examples=400, deadline=None)
@given(
    shape=shapes(),
    palette=st.lists(VALUES, min_size=1, max_size=12),
    seed=st.integers(0, 2**32),
    dtype=st.sampled_from(list(DTYPES)),
    grad=st.sampled_from([(False, None), (True, None), (False, "MulBackward0"), (False, "ViewBackward0")]),
)
def test_random(shape: tuple[int, ...], palette: list[float], seed: int, dtype: str,
                grad: tuple[bool, str | None]) -> None:
    """Match torch on random shapes, values, dtypes and autograd suffixes."""
    rng = random.Random(seed)
    values = [rng.choice(palette) for _ in range(math.prod(shape))]
    check(values, shape, dtype, *grad)


@pytest.mark.parametrize("shape", [(), (1,), (2,), (30,), (2, 2), (2, 3, 2), (0,), (2, 0), (1200,), (40, 40)])
@pytest.mark.parametrize("pattern", ["all", "none", "mixed"])
def test_bools(shape: tuple[int, ...], pattern: str) -> None:
    """A bool tensor (what a == b gives) prints as torch prints it: widths, wrapping, summaries, empty sizes."""
    n = math.prod(shape)
    values = [pattern == "all" or (pattern == "mixed" and (i * 7) % 3 == 0) for i in range(n)]
    assert format_bools(values, shape) == str(torch.tensor(values, dtype=torch.bool).reshape(shape))
