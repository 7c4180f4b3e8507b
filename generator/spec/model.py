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
    retain: bool = True  # retain_graph: the YAML spec's code keeps the graph for every later call


@dataclass(frozen=True)
class Shown:
    """One thing a print shows of a tensor: its value, grad, is_leaf or requires_grad."""

    name: str
    what: str  # "value", "grad", "is_leaf" or "requires_grad"


@dataclass(frozen=True)
class Print:
    """One print(...) of a Python example: its pieces in order, and how many backward calls came before it."""

    parts: tuple[str | Shown, ...]  # text as written, and the things shown
    after: int
    code: str  # the statement, as the document's script writes it
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
    prints: tuple[Print, ...] | None = None  # a Python example's own prints; None: each leaf's grad at the end
