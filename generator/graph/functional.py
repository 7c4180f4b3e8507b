"""The graph of one torch.autograd.functional call: f's parameters as leaves that require grad, f's output a step.

torch detaches each input and sets requires_grad on the copy, so the example's own tensors never
change; the call is a small graph of its own, and J, Jᵀv and Ju come from its derivation.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from ..errors import Problem, SpecError
from ..ops.base import fmt_shape, numel
from ..spec.model import Array, Call, Functional, Input, Spec, Step
from ..spec.numbers import NAME, RESERVED
from .model import Graph


def output_name(f: Functional) -> str:
    """Name f's output after the helper (exp_adder), unless a parameter has that name."""
    name = f.function
    return name if NAME.fullmatch(name) and name not in RESERVED and name not in f.params else "out"


def functional_graph(spec: Spec, f: Functional, *, rows: bool = False) -> Graph:
    """Return the call's graph: one backward call with v (or J's first row), or one per row of J with rows=True.

    torch builds J one row at a time: a vjp with a one-hot v for each element of f's output.
    """
    from .walk import build_graph

    values = {i.name: i.value for i in spec.inputs}
    leaves = tuple(Input(p, values[n], True, f.line) for p, n in zip(f.params, f.inputs))
    out = output_name(f)
    mini = Spec(spec.path, spec.title, spec.summary, leaves, (Step(out, f.expr, f.line),), (), spec.dtype,
                spec.lang, spec.flavor)
    try:
        graph = build_graph(mini)
    except SpecError as e:
        raise SpecError([Problem(spec.path, f.line, f"in {f.kind}'s function '{f.function}': {p.message}")
                         for p in e.problems]) from None
    shape = graph.node(out).shape
    size = numel(shape)
    problem = _mismatch(spec, f, graph, values)
    if problem:
        raise SpecError([Problem(spec.path, f.line, problem)])
    if f.kind == "vjp" and not rows:
        calls = (Call(out, values[f.v[0]] if f.v else Array(shape, (Fraction(1),) * size), f.line),)
    else:
        units = [Array(shape, tuple(Fraction(int(i == k)) for i in range(size))) for k in range(size)]
        calls = tuple(Call(out, u, f.line) for u in (units if rows else units[:1]))
    return replace(graph, spec=replace(graph.spec, backward=calls))


def _mismatch(spec: Spec, f: Functional, graph: Graph, values: dict[str, Array]) -> str:
    """Return why torch raises on v's shapes, or ''."""
    out = graph.node(output_name(f)).shape
    if f.kind == "vjp" and not f.v and numel(out) != 1:
        return (f"vjp without v of '{f.function}', whose output has {numel(out)} elements: torch raises RuntimeError"
                " (allowed: v of the output's shape; None only for a one-element output)")
    if f.kind == "vjp" and f.v and values[f.v[0]].shape != out:
        return (f"vjp with v of shape {fmt_shape(values[f.v[0]].shape)} for an output of shape {fmt_shape(out)}:"
                " torch raises RuntimeError (allowed: v of the output's shape)")
    if f.kind == "jvp":
        if not f.v and (len(f.inputs) != 1 or numel(values[f.inputs[0]].shape) != 1):
            return ("jvp without v at other than one input of one element: torch raises RuntimeError"
                    " (allowed: v of the inputs' shapes)")
        for name, given in zip(f.inputs, f.v):
            if values[given].shape != values[name].shape:
                return (f"jvp with v of shape {fmt_shape(values[given].shape)} for the input '{name}' of shape"
                        f" {fmt_shape(values[name].shape)}: torch raises RuntimeError (allowed: v of the inputs' shapes)")
    return ""
