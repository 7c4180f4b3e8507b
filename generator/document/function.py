"""A custom torch.autograd.Function in the document: the author's backward beside the derivative of forward."""

from __future__ import annotations

import sympy as sp

from ..engines.exact import Derivation
from ..engines.verdict import verdicts
from ..floats.ieee import exact_number
from ..ops.derivatives import Printer
from ..ops.function import kept
from .latex import element_tex, number_tex
from .model import FunctionItem, FunctionRow


def function_items(derivation: Derivation) -> tuple[FunctionItem, ...]:
    """Return one item per F.apply(x), with every element of x (an exact derivation only)."""
    graph = derivation.graph
    functions = {f.name: f for f in graph.spec.functions}
    items = []
    for v in verdicts(derivation):
        applied = next(a for a in graph.spec.applied if a.node == v.node)
        f = functions[v.function]
        shape = graph.node(v.input).shape
        generic = element_tex(v.input, shape, None)
        out = element_tex(v.node, shape, None)
        partial = rf"\frac{{\partial {out}}}{{\partial {generic}}}"

        def factor_at(k: int | None) -> str:
            if not isinstance(applied.factor, str):
                return number_tex(exact_number(applied.factor))
            fshape = graph.node(applied.factor).shape
            return element_tex(applied.factor, fshape, None if k is None else (k if fshape else 0))

        def local_at(k: int | None) -> str:
            base = factor_at(k)
            if not applied.mask:
                return base
            mshape, m = graph.node(applied.mask).shape, sp.Symbol("m", real=True)
            element = element_tex(applied.mask, mshape, None if k is None else (k if mshape else 0))
            bracket = Printer({m: element}).doprint(kept(m, applied.keep, applied.at))
            return bracket if base == "1" else rf"{base} \cdot {bracket}"

        def rule(k: int | None) -> str:
            printer = Printer({v.symbol: element_tex(v.input, shape, k)})
            return printer.doprint(v.derivative), printer.doprint(v.composed)

        derivative, composed = rule(None)
        local = f"{partial} = {local_at(None)}"
        derivative = rf"\frac{{\partial}}{{\partial {generic}}} \left({composed}\right) = {derivative}"
        rows = []
        for k in range(len(v.ours)):
            element, ours, theirs = element_tex(v.input, shape, k), number_tex(v.ours[k]), number_tex(v.theirs[k])
            value = number_tex(derivation.values[v.input][k])
            tex = rf"{element} = {value}:\quad {local_at(k)} = {ours}, \quad {rule(k)[0]} = {theirs}"
            rows.append(FunctionRow(element, value, ours, theirs, k not in v.differs, tex))
        items.append(FunctionItem(v.function, v.node, v.input, graph.grad_fn(graph.node(v.node)), f.grad, f.forward,
                                  f.backward, applied.hidden, local, derivative, tuple(rows), v.agree))
    return tuple(items)


def inside_function(graph, node) -> str:
    """Return the key of the op of the F.apply(x) whose forward or backward computes a node, or ''."""
    for a in graph.spec.applied:
        if node.step in a.hidden:
            return graph.node(a.node).op
    return ""
