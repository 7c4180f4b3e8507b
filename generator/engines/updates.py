"""Leaves changed in place (w -= lr * w.grad under no_grad): their new values, computed as torch computes them.

An update reads values and grads that earlier backward calls made, in the example's dtype, so each one is
evaluated in order by the shadow (torch's rounding, op by op) on the part of the graph it needs, and becomes
the values of the leaf's next version before anything is derived.
"""

from __future__ import annotations

import operator
from dataclasses import replace
from fractions import Fraction

import numpy as np

from ..errors import Problem, SpecError
from ..graph.model import Graph
from ..graph.walk import build_graph, comparison_graph, comparison_sides, update_graph
from ..ops.base import numel
from ..spec.model import Array, Compared, Spec, Update, apply_resets, floats
from .shadow import shadow


COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
           "!=": operator.ne}


def decide(spec: Spec, compared: Compared) -> bool:
    """Decide a while's or an if's comparison of tensor values as torch does, from the code read so far."""
    try:
        graph = resolve(build_graph(spec))
    except SpecError as e:
        raise SpecError([p._replace(message=f"deciding a condition on tensor values: {p.message}") for p in e.problems]) from None
    shade = shadow(graph)
    values = {}
    for placeholder, name, what in compared.refs:
        found = shade.values[name] if what == "value" else shade.grads.get(spec.identity(name))
        if found is None:
            raise SpecError([Problem(spec.path, None, f"a condition reads {name}.grad, which is None: torch raises"
                                     " TypeError (allowed: a grad after a backward call that reaches it)")])
        shape = graph.node(name).shape
        values[placeholder] = Array(shape, tuple(Fraction(float(x)) for x in np.asarray(found).ravel()))
    mini = comparison_graph(graph, compared, values)
    if numel(mini.node("d").shape) != 1:
        raise SpecError([Problem(spec.path, None, "a condition on a tensor of more than one element: torch raises"
                                 " 'Boolean value of Tensor with more than one value is ambiguous' (allowed: one"
                                 " number, such as b.norm() < 1000 or b.sum() > 0)")])
    sides = shadow(mini)
    left, right = (float(np.asarray(sides.values[k], dtype=np.float64).ravel()[0]) for k in comparison_sides(compared))
    return COMPARE[compared.op](left, right)


def resolve(graph: Graph) -> Graph:
    """Return the graph with every updated leaf's values computed, in the example's order."""
    spec = graph.spec
    if not spec.updates:
        return graph
    inputs = {i.name: i for i in spec.inputs}
    for update in sorted(spec.updates, key=lambda u: u.seq):
        current = replace(graph, spec=replace(spec, inputs=tuple(inputs.values())))
        values = _refs(current, update)
        shape = graph.node(update.node).shape
        if update.copy:  # only requires_grad changes: the same numbers
            array = floats(values[update.expr]).reshape(shape)
        else:
            mini = update_graph(current, update, values)
            new = np.asarray(shadow(mini).values["new"], dtype=np.float64).reshape(mini.node("new").shape)
            array = np.broadcast_to(new, shape)
        inputs[update.node] = replace(inputs[update.node],
                                      value=Array(shape, tuple(Fraction(float(x)) for x in array.ravel())))
    return replace(graph, spec=replace(spec, inputs=tuple(inputs.values())))


def _refs(graph: Graph, update: Update) -> dict[str, Array]:
    """Return each placeholder's numbers: a tensor's values, or a leaf's .grad where the update runs."""
    spec = graph.spec
    grads_of = {name for _, name, what in update.refs if what == "grad"}
    start = min((max((r.after for r in spec.resets if r.leaf == leaf and r.seq < update.seq), default=0)
                 for leaf in grads_of), default=update.after)  # before a leaf's last reset, no call counts
    calls = spec.backward[start:update.after]
    wanted = {c.output for c in calls} | {name for _, name, what in update.refs if what == "value"}
    needed: set[str] = set()
    for node in reversed(graph.nodes):
        if node.name in wanted or node.name in needed:
            needed.add(node.name)
            needed.update(node.parents)
    needed.update({spec.identity(n) for n in needed})  # where the grads of a leaf's versions accumulate
    resets = tuple(replace(r, after=r.after - start) for r in spec.resets
                   if start <= r.after <= update.after and r.seq < update.seq)
    part = replace(graph, nodes=tuple(n for n in graph.nodes if n.name in needed),
                   code=tuple((k, e) for k, e in graph.code if k in needed),
                   spec=replace(spec, inputs=tuple(i for i in spec.inputs if i.name in needed), backward=calls,
                                resets=resets, prints=None, retained=(), updates=()))
    shade = shadow(part)
    grads: dict = {i.name: None for i in spec.inputs}
    for j, call in enumerate(calls):
        grads = apply_resets(grads, part.spec.resets_before(j), lambda leaf, g: np.zeros_like(g))
        for name, adjoint in shade.adjoints[j].items():
            if part.node(name).is_leaf and spec.accumulates(name, call.seq):
                key = spec.identity(name)
                total = adjoint if grads.get(key) is None else grads[key] + adjoint
                grads[key] = total.astype(np.float32).astype(np.float64) if spec.dtype == "float32" else total
    grads = apply_resets(grads, part.spec.resets_before(len(calls)), lambda leaf, g: np.zeros_like(g))
    found = {}
    for placeholder, name, what in update.refs:
        array = shade.values[name] if what == "value" else grads.get(name)
        if array is None:
            raise ValueError(f"{name}.grad is None")  # refused earlier, by the graph's checks
        shape = graph.node(name).shape
        found[placeholder] = Array(shape, tuple(Fraction(float(x)) for x in np.asarray(array).ravel()))
    return found
