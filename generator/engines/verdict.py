"""A custom Function's hand-written backward, checked against the symbolic derivative of its forward.

The derivation uses the author's backward (what torch runs); here forward's steps are composed into one
expression of the input's elements, differentiated with sympy, and compared element by element with the
factor backward multiplies grad_output by.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..floats.ieee import exact_number
from ..graph.model import Graph
from .exact import Derivation, evaluate

DIGITS = 30  # digits both sides are compared to, where one of them is not an exact rational


@dataclass(frozen=True)
class Verdict:
    """One F.apply(x): backward's factor and forward's derivative at each element of x, and where they differ."""

    function: str
    node: str  # the output F.apply(x) makes
    input: str
    forward: str  # forward's result node
    line: int
    derivative: sp.Expr  # d forward[k] / d x[k] at element 0, in x[0]'s symbol: the rule, for the document
    symbol: sp.Symbol  # x[0]'s symbol in it
    composed: sp.Expr  # forward[0] as one expression of x[0], its steps composed
    ours: tuple[sp.Expr, ...]  # what the author's backward gives back for a grad_output of 1, per element
    theirs: tuple[sp.Expr, ...]  # the derivative of forward, per element
    differs: tuple[int, ...]

    @property
    def agree(self) -> bool:
        return not self.differs


def verdicts(derivation: Derivation) -> tuple[Verdict, ...]:
    """Return a verdict per F.apply(x) of the example (none for a large one, derived on arrays)."""
    if derivation.large:
        return ()
    graph = derivation.graph
    return tuple(_verdict(derivation, graph, a) for a in graph.spec.applied if a.node in derivation.values)


def _verdict(derivation: Derivation, graph: Graph, applied) -> Verdict:
    from ..ops.function import kept
    from ..ops.base import numel
    from .exact import ExactEngine

    engine = ExactEngine(graph)
    inner = set(applied.hidden)
    composed = {}  # symbol of an inner element -> its expression in the input's symbols

    def expand(expr: sp.Expr) -> sp.Expr:
        found = {s: composed[s] for s in expr.free_symbols if s in composed}
        return expr.xreplace(found) if found else expr

    # forward mode through forward's steps, by each op's own local derivatives (torch's choice at kinks):
    # tangent[node][k][i] = d node[k] / d x[i]
    xs = derivation.symbols[applied.input]
    tangent = {applied.input: [{k: sp.Integer(1)} for k in range(len(xs))]}
    for node in graph.nodes:
        if node.step not in inner:
            continue
        for s, e in zip(derivation.symbols[node.name], derivation.elements[node.name]):
            composed[s] = expand(e)
        rows: list[dict[int, sp.Expr]] = [{} for _ in range(numel(node.shape))]
        for k, a, j, d, _ in engine.partials(node):
            for i, dv in tangent.get(node.args[a], [{}] * (j + 1))[j].items():
                rows[k][i] = rows[k].get(i, sp.Integer(0)) + expand(d) * dv
        tangent[node.name] = rows
    env = {s: v for name, syms in derivation.symbols.items() for s, v in zip(syms, derivation.values[name])}
    column = tangent[applied.forward]
    theirs = tuple(evaluate(column[k].get(k, sp.Integer(0)), env) for k in range(len(xs)))
    across = {k for k in range(len(xs)) for i, d in column[k].items() if i != k and evaluate(d, env) != 0}
    if isinstance(applied.factor, str):
        ours = list(derivation.values[applied.factor])
        ours = ours * (len(xs) // len(ours)) if len(ours) == 1 else ours  # a 0-d factor broadcasts
    else:
        ours = [exact_number(applied.factor)] * len(xs)
    if applied.mask:
        masks = list(derivation.values[applied.mask])
        masks = masks * (len(xs) // len(masks)) if len(masks) == 1 else masks
        ours = [o * kept(m, applied.keep, applied.at) for o, m in zip(ours, masks)]
    differs = tuple(k for k, (a, b) in enumerate(zip(ours, theirs)) if not _same(a, b) or k in across)
    function = next(f for f in graph.spec.functions if f.name == applied.function)
    return Verdict(applied.function, applied.node, applied.input, applied.forward, function.returns or applied.line,
                   column[0].get(0, sp.Integer(0)), xs[0], composed.get(derivation.symbols[applied.forward][0], xs[0]),
                   tuple(ours), theirs, differs)


def _same(a: sp.Expr, b: sp.Expr) -> bool:
    """Tell whether two numbers are equal: exactly, or to DIGITS digits where one is not rational."""
    if a == b:
        return True
    if a.is_Rational and b.is_Rational:
        return False
    x, y = sp.N(a, DIGITS), sp.N(b, DIGITS)
    if not (x.is_finite and y.is_finite):
        return False
    return abs(x - y) <= sp.Float(10) ** (-DIGITS + 5) * max(1, abs(y))


def disagreements(derivation: Derivation) -> list[tuple[int, str]]:
    """Return (line, what) for each element where a Function's backward and the derivative of its forward differ."""
    from ..floats.ieee import to_float
    from ..ops.base import unravel

    found = []
    for v in verdicts(derivation):
        shape = derivation.graph.node(v.input).shape
        for k in v.differs:
            at = f"{v.input}[{','.join(map(str, unravel(k, shape)))}]" if shape else v.input
            value = derivation.values[v.input][k]
            found.append((v.line, f"backward of {v.function} disagrees with the derivative of forward at {at} ="
                                  f" {to_float(value)!r} (ours {to_float(v.ours[k])!r},"
                                  f" forward's {to_float(v.theirs[k])!r})"))
    return found
