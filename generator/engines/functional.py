"""torch.autograd.functional.jacobian / vjp / jvp / hessian / hvp, derived: J and H exactly, and as torch rounds them.

H is the Jacobian of the gradient: each first derivative (formulas) differentiated again by each input element.
"""

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
from .exact import Derivation, derive, evaluate, full_expression

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
    results: tuple[tuple[sp.Expr, ...], ...]  # per tensor returned after f's output: J_i (flat), Jᵢᵀv, (Ju,),
    #                                           H_ij (flat, i then j), or H_i v per input
    v: tuple[tuple[sp.Expr, ...], ...]  # vjp: (v,); jvp, hvp: one per input; jacobian, hessian: ()
    tracked: tuple[bool, ...] = ()  # with create_graph: J_i depends on tensors that require grad, so torch records how
    seconds: tuple[tuple[tuple[tuple[sp.Expr, ...], ...], ...], ...] = ()  # hessian, hvp: per input i, per input j,
    #                                           H_ij's rows: each entry of i's gradient differentiated by j's elements
    hessians: tuple[tuple[tuple[tuple[sp.Expr, ...], ...], ...], ...] = ()  # the same at the inputs' values


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
    seconds, hessians = (), ()
    if f.kind in ("hessian", "hvp"):
        seconds, hessians = second_derivatives(derivation, f.params, formulas)
        if f.kind == "hessian":
            results = tuple(tuple(e for row in block for e in row) for blocks in hessians for block in blocks)
        else:  # H v, block by block: H_i v = sum over j of H_ij v_j
            u = v or ((sp.Integer(1),),)
            results = tuple(tuple(sum((e * x for block, vj in zip(blocks, u) for e, x in zip(block[r], vj)),
                                      sp.Integer(0)) for r in range(len(blocks[0])))
                            for blocks in hessians)
    grad = {i.name for i in spec.inputs if i.requires_grad}
    live = {s for name in (*f.params, *(n for n in f.outside if n in grad)) for s in derivation.symbols[name]}
    tracked = tuple(any(e.free_symbols & live for row in rows for e in row) for rows in formulas)
    return Solved(f, graph, derivation, out, tuple(jacobians), formulas, results, v, tracked, seconds, hessians)


def second_derivatives(derivation: Derivation, params: tuple[str, ...], formulas) -> tuple[tuple, tuple]:
    """Return H's blocks as formulas and at the inputs' values: the gradient's entries differentiated once more.

    f's output has one element, so formulas[i][0] is its gradient by input i.
    """
    env = {s: x for node in derivation.graph.nodes if node.is_leaf
           for s, x in zip(derivation.symbols[node.name], derivation.values[node.name])}
    # a gradient's mask (relu's, abs's sign) is constant to torch's double backward: its derivative is 0
    seconds = tuple(tuple(tuple(tuple(sp.diff(g, s).replace(sp.DiracDelta, lambda *a: sp.Integer(0))
                                      for s in derivation.symbols[q]) for g in formulas[i][0])
                          for q in params) for i in range(len(params)))
    hessians = tuple(tuple(tuple(tuple(evaluate(e, env) for e in row) for row in block) for block in blocks)
                     for blocks in seconds)
    return seconds, hessians


@lru_cache(maxsize=64)
def rounded(spec: Spec, f: Functional) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Return f's output and what the call returns after it, as torch computes them in the spec's dtype.

    torch's jacobian is one vjp per output element (a one-hot v), so each row of J is rounded as that vjp is.
    hessian and hvp go through a double backward, not emulated op by op: H and H v are the exact values, rounded
    once to the dtype, their zeros signed as the one-hot passes leave them (f's output is rounded op by op).
    """
    from .shadow import shadow

    kind = np.float32 if spec.dtype == "float32" else np.float64
    if f.kind in ("hessian", "hvp"):
        graph = functional_graph(spec, f)
        out = output_name(f)
        solved = solve(spec, f)
        once = tuple(np.array([to_float(x) for x in r], dtype=np.float64).astype(kind).astype(np.float64)
                     for r in solved.results)
        flat = [np.array([to_float(x) for row in block for x in row]) for row_blocks in solved.hessians
                for block in row_blocks]
        signed = tuple(np.where(minus, -0.0, h) for h, minus in zip(flat, negative_zeros(solved)))
        if f.kind == "hessian":
            once = tuple(np.where(h == 0, h, r) for r, h in zip(once, signed))  # H's zeros, signed
        else:  # a zero of H v keeps the sign IEEE gives the sum of H's entries (signed zeros) times v
            values = {i.name: i.value for i in spec.inputs}
            us = [np.array([float(x) for x in values[n].values]) for n in f.v] or [np.ones(1)]
            once = tuple(np.where(r == 0, np.copysign(0.0, z), r)
                         for r, z in zip(once, signed_products(signed, us)))
        return np.asarray(shadow(graph).values[out], dtype=np.float64).ravel(), once
    graph = functional_graph(spec, f, rows=f.kind != "vjp")
    shade = shadow(graph)
    out = output_name(f)
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


def negative_zeros(solved: Solved) -> tuple[np.ndarray, ...]:
    """Return, per block of H (flat), where torch's double backward leaves -0.0.

    Row i of H is a backward pass with a one-hot v: an entry the gradient's element i does not depend on is
    0 times each term of the other elements' second derivatives there, summed; -0.0 only when every such term is
    negative (sin's -sin(x) * 0 is -0.0, but -2 sin(x) cos(x)'s 2 sin² - 2 cos² gives -0.0 + 0.0 = 0.0).
    """
    env = {s: x for node in solved.graph.nodes if node.is_leaf
           for s, x in zip(solved.derivation.symbols[node.name], solved.derivation.values[node.name])}
    signs = []
    for formulas in (b for blocks in solved.seconds for b in blocks):
        rows, cols = len(formulas), len(formulas[0]) if formulas else 0
        minus = np.zeros(rows * cols, dtype=bool)
        for j in range(cols):
            terms = [(k, bool(evaluate(t, env).is_extended_negative)) for k in range(rows)
                     for t in sp.Add.make_args(formulas[k][j]) if t != 0]
            for i in range(rows):
                others = [negative for k, negative in terms if k != i]
                minus[i * cols + j] = formulas[i][j] == 0 and bool(others) and all(others)
        signs.append(minus)
    return tuple(signs)


def signed_products(blocks: tuple[np.ndarray, ...], us: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Return H v per input in IEEE float64 from H's blocks with their signed zeros: where H v is 0, its sign."""
    n = len(us)
    found = []
    for a in range(n):
        total = None
        for b in range(n):
            h = blocks[a * n + b].reshape(len(us[a]), len(us[b]))
            for c in range(len(us[b])):
                term = h[:, c] * us[b][c]
                total = term if total is None else total + term
        found.append(total)
    return tuple(found)


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

    if f.kind == "hessian":  # torch squeezes f's one-element output: H_ij has the shape of input i, then of j
        blocks = iter(results)
        rows = [pack([format_tensor(next(blocks), a + b, dtype=spec.dtype) for b in in_shapes], f.packed)
                for a in in_shapes]
        return pack(rows, f.packed)
    if f.kind == "jacobian":
        texts = [format_tensor(r, out_shape + shape, dtype=spec.dtype,
                               grad_fn=VIEWED if f.create_graph and tracked else None)
                 for r, shape, tracked in zip(results, in_shapes, solved.tracked)]
        return pack(texts, f.packed)
    head = format_tensor(output, out_shape, dtype=spec.dtype)
    if f.kind in ("vjp", "hvp"):
        tail = pack([format_tensor(r, s, dtype=spec.dtype) for r, s in zip(results, in_shapes)], f.packed)
    else:
        tail = format_tensor(results[0], out_shape, dtype=spec.dtype)
    return f"({head}, {tail})"
