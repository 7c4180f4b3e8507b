"""Run an example in real torch and compare it with the derivation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .derive import Derivation, to_float
from .errors import TorchMissing
from .graph import Graph, Node, ones_gradient
from .ops import REGISTRY, numel

RTOL = 1e-7
ATOL = 1e-10


@dataclass(frozen=True)
class TorchRun:
    """What torch computed: values, leaf grads after every call, and Jacobians per call."""

    values: dict[str, list[float]]
    grads: dict[str, list[float] | None]
    jacobians: tuple[dict[str, list[list[float]]], ...]


def import_torch() -> Any:
    """Import torch, or raise TorchMissing with what to do."""
    try:
        import torch
    except ImportError:
        raise TorchMissing(
            "derive check needs PyTorch, which is not installed: pip install torch==2.13.0"
        ) from None
    return torch


def _params(node: Node) -> dict[str, Any]:
    params = {k: float(v) if isinstance(v, Fraction) else v for k, v in node.params}
    if node.op in ("sum", "mean") and params.get("dim") is None:
        params = {}
    return params


def forward(torch: Any, graph: Graph, leaves: dict[str, Any]) -> dict[str, Any]:
    """Compute every node with torch, from the given leaf tensors."""
    tensors = dict(leaves)
    for node in graph.nodes:
        if node.is_leaf:
            continue
        args = [tensors[a] if isinstance(a, str) else float(a) for a in node.args]
        tensors[node.name] = REGISTRY[node.op].run(torch, args, _params(node))
    return tensors


def run(graph: Graph, *, dtype: str = "float64") -> TorchRun:
    """Run the example's forward and backward calls in torch."""
    torch = import_torch()
    tdtype = getattr(torch, dtype)
    leaves = {
        i.name: torch.tensor([float(v) for v in i.value.values], dtype=tdtype)
        .reshape(i.value.shape)
        .requires_grad_(i.requires_grad)
        for i in graph.spec.inputs
    }
    tensors = forward(torch, graph, leaves)
    jacobians = []
    for call in graph.spec.backward:
        out = graph.node(call.output)
        gradient = call.gradient or ones_gradient(out)
        v = torch.tensor([float(x) for x in gradient.values], dtype=tdtype).reshape(out.shape)
        tensors[call.output].backward(v, retain_graph=True)
        jacobians.append(_jacobians(torch, graph, leaves, call.output))
    return TorchRun(
        values={n.name: _flat(tensors[n.name]) for n in graph.nodes},
        grads={name: None if t.grad is None else _flat(t.grad) for name, t in leaves.items()},
        jacobians=tuple(jacobians),
    )


def _jacobians(torch: Any, graph: Graph, leaves: dict[str, Any], output: str) -> dict[str, list[list[float]]]:
    names = [n for n, t in leaves.items() if t.requires_grad]

    def f(*xs: Any) -> Any:
        return forward(torch, graph, {**leaves, **dict(zip(names, xs))})[output]

    inputs = tuple(leaves[n].detach() for n in names)
    result = torch.autograd.functional.jacobian(f, inputs)
    size = numel(graph.node(output).shape)
    return {
        n: j.reshape(size, numel(leaves[n].shape)).tolist() for n, j in zip(names, result)
    }


def _flat(t: Any) -> list[float]:
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def close(a: float, b: float) -> bool:
    """Compare two floats the way the check does: nan equals nan, infinities exactly."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= ATOL + RTOL * abs(b)


def compare(derivation: Derivation, torch_run: TorchRun) -> list[str]:
    """Return one line per number where the derivation and torch disagree."""
    diffs: list[str] = []
    graph = derivation.graph

    def cmp(label: str, ours: list[float], theirs: list[float], shape: tuple[int, ...]) -> None:
        for k, (a, b) in enumerate(zip(ours, theirs)):
            if not close(a, b):
                diffs.append(f"{label}{_index(k, shape)}: derived {a!r}, torch {b!r}")

    for node in graph.nodes:
        cmp(node.name, [to_float(v) for v in derivation.values[node.name]], torch_run.values[node.name], node.shape)
    for leaf, grad in derivation.grads.items():
        theirs = torch_run.grads[leaf]
        if (grad is None) != (theirs is None):
            diffs.append(f"{leaf}.grad: derived {'None' if grad is None else 'a tensor'}, torch {'None' if theirs is None else 'a tensor'}")
        elif grad is not None:
            cmp(f"{leaf}.grad", [to_float(v) for v in grad], theirs, graph.node(leaf).shape)
    for i, (p, theirs) in enumerate(zip(derivation.passes, torch_run.jacobians), start=1):
        for leaf, rows in theirs.items():
            ours = p.jacobians.get(leaf)  # None: this call does not reach the leaf, so J is zero
            for r, row in enumerate(rows):
                for c, b in enumerate(row):
                    a = 0.0 if ours is None else to_float(ours[r][c])
                    if not close(a, b):
                        diffs.append(f"call {i}: d{p.call.output}/d{leaf} (Jacobian) [{r},{c}]: derived {a!r}, torch {b!r}")
    return diffs


def _index(k: int, shape: tuple[int, ...]) -> str:
    from .ops import unravel

    if not shape:
        return "" if k == 0 else f"[{k}]"
    return "[" + ",".join(map(str, unravel(k, shape))) + "]"
