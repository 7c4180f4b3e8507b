"""torch.autograd.functional.jacobian / vjp / jvp, derived: J exactly (sympy), and as torch rounds it, row by row."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from ..floats.ieee import to_float
from ..graph.walk import functional_graph, output_name
from ..graph.model import Graph
from ..ops.base import numel
from ..spec.model import Functional, Spec
from .exact import Derivation, derive, full_expression

VIEWED = "ViewBackward0"  # with create_graph, torch stacks J's rows and views them in J's shape: J's grad_fn


@dataclass(frozen=True)
class Solved:
    """One call, derived: f's output, J for each input, and what the call returns."""

    functional: Functional
    graph: Graph  # f's graph with one backward call: v for vjp, else J's first row
    derivation: Derivation
    output: str  # f's output node
    jacobians: tuple[tuple[tuple[sp.Expr, ...], ...], ...]  # per input: a row per output element, a column per input element
    formulas: tuple[tuple[tuple[sp.Expr, ...], ...], ...]  # the same entries as formulas of the inputs (sympy.diff)
    results: tuple[tuple[sp.Expr, ...], ...]  # per tensor returned after f's output: J_i (flat), Jᵢᵀv, or (Ju,)
    v: tuple[tuple[sp.Expr, ...], ...]  # vjp: (v,); jvp: one u per input; jacobian: ()
    tracked: tuple[bool, ...] = ()  # with create_graph: J_i depends on tensors that require grad, so torch records how


@lru_cache(maxsize=64)
def solve(spec: Spec, f: Functional) -> Solved:
    """Derive one call exactly."""
    graph = functional_graph(spec, f)
    derivation = derive(graph)
    out = output_name(f)
    size = numel(graph.node(out).shape)
    first = derivation.passes[0]
    jacobians = []
    for p in f.params:
        cols = numel(graph.node(p).shape)
        jacobians.append(tuple(first.jacobians[p][r] if p in first.jacobians else (sp.Integer(0),) * cols
                               for r in range(size)))
    full = full_expression(derivation, out)
    formulas = tuple(tuple(tuple(sp.diff(e, s) for s in derivation.symbols[p]) for e in full) for p in f.params)
    values = {i.name: i.value for i in spec.inputs}
    v = tuple(tuple(sp.Rational(x.numerator, x.denominator) for x in values[n].values) for n in f.v)
    if f.kind == "jacobian":
        results = tuple(tuple(e for row in rows for e in row) for rows in jacobians)
    elif f.kind == "vjp":
        results = tuple(first.vjp.get(p, (sp.Integer(0),) * numel(graph.node(p).shape)) for p in f.params)
    else:
        u = v or ((sp.Integer(1),),)
        results = (tuple(sum((e * x for rows, ui in zip(jacobians, u) for e, x in zip(rows[r], ui)), sp.Integer(0))
                         for r in range(size)),)
    grad = {i.name for i in spec.inputs if i.requires_grad}
    live = {s for name in (*f.params, *(n for n in f.outside if n in grad)) for s in derivation.symbols[name]}
    tracked = tuple(any(e.free_symbols & live for row in rows for e in row) for rows in formulas)
    return Solved(f, graph, derivation, out, tuple(jacobians), formulas, results, v, tracked)


@lru_cache(maxsize=64)
def rounded(spec: Spec, f: Functional) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Return f's output and what the call returns after it, as torch computes them in the spec's dtype.

    torch's jacobian is one vjp per output element (a one-hot v), so each row of J is rounded as that vjp is.
    """
    from .shadow import shadow

    graph = functional_graph(spec, f, rows=f.kind != "vjp")
    shade = shadow(graph)
    out = output_name(f)
    kind = np.float32 if spec.dtype == "float32" else np.float64
    size = numel(graph.node(out).shape)
    rows = []
    for p in f.params:
        cols = numel(graph.node(p).shape)
        rows.append(np.array([np.asarray(a.get(p, np.zeros(cols)), dtype=np.float64).ravel()
                              for a in shade.adjoints]).reshape(len(shade.adjoints), cols))
    if f.kind == "jacobian":
        results = tuple(r.ravel() for r in rows)
    elif f.kind == "vjp":
        results = tuple(r[0] for r in rows)
    else:  # Ju: each product rounded, then summed in order, as the double backward adds them
        values = {i.name: i.value for i in spec.inputs}
        us = [np.array([float(x) for x in values[n].values], dtype=kind) for n in f.v] or [np.ones(1, dtype=kind)]
        total = np.zeros(size, dtype=kind)
        for r, u in zip(rows, us):
            for j in range(r.shape[1]):
                total = (total + r[:, j].astype(kind) * u[j]).astype(kind)
        results = (total.astype(np.float64),)
    return np.asarray(shade.values[out], dtype=np.float64).ravel(), results


def returned(spec: Spec, f: Functional, *, shade: bool) -> tuple[list[float], tuple[list[float], ...]]:
    """Return f's output and the call's results as floats: exact, or as torch rounds them (shade)."""
    if shade:
        output, results = rounded(spec, f)
        return output.tolist(), tuple(r.tolist() for r in results)
    solved = solve(spec, f)
    output = [to_float(x) for x in solved.derivation.values[solved.output]]
    return output, tuple([to_float(x) for x in r] for r in solved.results)


def functional_text(spec: Spec, f: Functional, *, shade: bool) -> str:
    """Return what print(the call) writes: a tensor, or tuples of them, as torch returns them."""
    from ..floats.torchprint import format_tensor

    solved = solve(spec, f)
    output, results = returned(spec, f, shade=shade)
    out_shape = solved.graph.node(solved.output).shape
    in_shapes = [solved.graph.node(p).shape for p in f.params]

    def pack(texts: list[str], packed: bool) -> str:
        return f"({', '.join(texts)}{',' if len(texts) == 1 else ''})" if packed else texts[0]

    if f.kind == "jacobian":
        texts = [format_tensor(r, out_shape + shape, dtype=spec.dtype,
                               grad_fn=VIEWED if f.create_graph and tracked else None)
                 for r, shape, tracked in zip(results, in_shapes, solved.tracked)]
        return pack(texts, f.packed)
    head = format_tensor(output, out_shape, dtype=spec.dtype)
    if f.kind == "vjp":
        tail = pack([format_tensor(r, s, dtype=spec.dtype) for r, s in zip(results, in_shapes)], f.packed)
    else:
        tail = format_tensor(results[0], out_shape, dtype=spec.dtype)
    return f"({head}, {tail})"
