"""The runnable torch code of an example, and what it prints."""

from __future__ import annotations

from fractions import Fraction

from ..engines.exact import Derivation
from ..floats.ieee import to_float
from ..graph.model import Graph
from ..ops.base import numel
from ..spec.model import Array
from ..floats.torchprint import format_tensor


def literal(value: Fraction) -> str:
    """Write a number as a float literal, exactly as the spec gave it (1 -> 1., 0.1 -> 0.1)."""
    if value.denominator == 1:
        return f"{value.numerator}."
    q, twos, fives = value.denominator, 0, 0
    while q % 2 == 0:
        q, twos = q // 2, twos + 1
    while q % 5 == 0:
        q, fives = q // 5, fives + 1
    if q != 1:
        return repr(float(value))
    places = max(twos, fives)
    scaled = abs(value.numerator) * 10**places // value.denominator
    digits = str(scaled).rjust(places + 1, "0")
    text = f"{digits[:-places]}.{digits[-places:]}".rstrip("0")
    return ("-" if value < 0 else "") + text


def nested(array: Array) -> str:
    """Write an array's values as a nested Python list (or a bare number for 0-d)."""
    items = [literal(v) for v in array.values]

    def build(shape: tuple[int, ...], flat: list[str]) -> str:
        if not shape:
            return flat[0]
        size = numel(shape[1:])
        return "[" + ", ".join(build(shape[1:], flat[i * size:(i + 1) * size]) for i in range(shape[0])) + "]"

    return build(array.shape, items)


def _tensor_code(array: Array, *, dtype: str, requires_grad: bool) -> str:
    extras = ([] if dtype == "float32" else ["dtype=torch.float64"]) + (["requires_grad=True"] if requires_grad else [])
    tail = "".join(", " + e for e in extras)
    values = set(array.values)
    dims = ", ".join(str(n) for n in array.shape)
    if len(array.values) > 1 and values == {Fraction(1)}:
        return f"torch.ones({dims}{tail})"
    if len(array.values) > 1 and values == {Fraction(0)}:
        return f"torch.zeros({dims}{tail})"
    if len(array.values) > 4 and len(values) == 1:
        shape = "(" + dims + ("," if len(array.shape) == 1 else "") + ")"
        return f"torch.full({shape}, {literal(array.values[0])}{tail})"
    return f"torch.tensor({nested(array)}{tail})"


def gradient_names(graph: Graph) -> list[str | None]:
    """Name the gradient tensor of each backward call (None where torch supplies 1)."""
    taken = {n.name for n in graph.nodes}
    explicit = [c for c in graph.spec.backward if c.gradient is not None]
    names, counter = [], 0
    for call in graph.spec.backward:
        if call.gradient is None:
            names.append(None)
            continue
        while True:
            counter += 1
            name = "v" if len(explicit) == 1 and counter == 1 else f"v{counter}"
            if name not in taken:
                taken.add(name)
                names.append(name)
                break
    return names


def torch_code(graph: Graph) -> str:
    """Return the example as a runnable Python script."""
    spec = graph.spec
    lines = ["import torch", ""]
    for inp in spec.inputs:
        lines.append(f"{inp.name} = {_tensor_code(inp.value, dtype=spec.dtype, requires_grad=inp.requires_grad)}")
    for name, expr in graph.code:
        lines.append(f"{name} = {expr}")
    names = gradient_names(graph)
    last = len(spec.backward) - 1
    for i, (call, vname) in enumerate(zip(spec.backward, names)):
        args = []
        if vname:
            lines.append(f"{vname} = {_tensor_code(call.gradient, dtype=spec.dtype, requires_grad=False)}")
            args.append(vname)
        if i < last:
            args.append("retain_graph=True")
        lines.append(f"{call.output}.backward({', '.join(args)})")
    for inp in spec.inputs:
        if inp.requires_grad:
            lines.append(f"print({inp.name}.grad)")
    return "\n".join(lines) + "\n"


def printed(derivation: Derivation, grads: dict | None = None) -> str:
    """Return what the script prints: each leaf's grad, as torch formats it.

    grads: the leaves' grads as torch computes them in the spec's dtype (generator/engines/shadow.py);
    without them, the derivation's own.
    """
    return "\n".join(text for _, text in printed_blocks(derivation, grads)) + "\n"


def printed_blocks(derivation: Derivation, grads: dict | None = None) -> list[tuple[str, str]]:
    """Return, in order, each print of the script: (leaf, what print(leaf.grad) writes, without its newline)."""
    spec = derivation.graph.spec
    out = []
    for inp in spec.inputs:
        if not inp.requires_grad:
            continue
        grad = (derivation.grads if grads is None else grads)[inp.name]
        if grad is None:
            out.append((inp.name, "None"))
            continue
        values = [to_float(v) for v in grad]
        out.append((inp.name, format_tensor(values, inp.value.shape, dtype=spec.dtype)))
    return out
