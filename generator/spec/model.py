"""The validated spec: plain frozen values, produced by load and read by graph."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Array:
    """A tensor literal: exact values, flattened row-major, with its shape."""

    shape: tuple[int, ...]
    values: tuple[Fraction, ...]


@dataclass(frozen=True)
class Input:
    """A leaf tensor of the example."""

    name: str
    value: Array
    requires_grad: bool
    line: int


@dataclass(frozen=True)
class Step:
    """One line of the example's torch code: name = expression."""

    name: str
    expr: str
    line: int


@dataclass(frozen=True)
class Call:
    """One `output.backward(gradient)` call; gradient is None for the implicit 1."""

    output: str
    gradient: Array | None
    line: int


@dataclass(frozen=True)
class Spec:
    """A whole example, as written in its YAML file."""

    path: str
    title: str
    summary: str
    inputs: tuple[Input, ...]
    steps: tuple[Step, ...]
    backward: tuple[Call, ...]
    dtype: str = "float32"
    lang: str = "en"
    flavor: str = "portable"
