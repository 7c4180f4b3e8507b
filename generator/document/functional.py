"""The document's items for torch.autograd.functional.jacobian / vjp / jvp: each call explained on its own graph."""

from __future__ import annotations

import re
from dataclasses import replace

import sympy as sp

from ..engines.functional import functional_text, solve
from ..ops.base import fmt_shape, numel
from ..spec.model import Functional, Spec
from .latex import corner_matrix, name_tex, number_tex, tensor_tex
from .model import FunctionalInput, FunctionalItem

SAFE = re.compile(r"[A-Za-z0-9_ .,()\[\]<>=!+\-*/%]{1,120}")  # a loop's or an if's header, shown as code in a sentence


def functionals_of(spec: Spec) -> tuple[Functional, ...]:
    """Return the example's printed functional calls, in order."""
    return tuple(part for p in spec.prints or () for part in p.parts if isinstance(part, Functional))


def functional_items(spec: Spec, builder) -> tuple[FunctionalItem, ...]:
    """Return an item for each printed functional call (builder: SmallBuilder, which explains a derivation)."""
    items = [functional_item(spec, f, k, builder) for k, f in enumerate(functionals_of(spec), start=1)]
    def key(i: FunctionalItem) -> tuple:
        return i.function, i.forward, tuple(replace(x, tracked=False) for x in i.inputs)

    for k, item in enumerate(items):
        same = next((i for i in items[:k] if not i.repeat_of and key(i) == key(item)), None)
        if same is not None:
            items[k] = replace(item, repeat_of=same.number)
    return tuple(items)


def functional_item(spec: Spec, f: Functional, number: int, builder) -> FunctionalItem:
    """Explain one call: f on the inputs' copies, each J entry by entry, and the product the call returns."""
    solved = solve(spec, f)
    builder = builder(solved.derivation)
    graph = solved.graph
    out = graph.node(solved.output)
    p = solved.derivation.passes[0]
    inputs = []
    for k, (param, tensor) in enumerate(zip(f.params, f.inputs)):
        leaf = graph.node(param)
        if param in p.jacobians:
            item = builder.jacobian_item(p, out, leaf)
        else:  # f's output does not depend on this input: torch gives zeros (strict=False)
            zeros = {**p.jacobians, param: tuple((sp.Integer(0),) * numel(leaf.shape) for _ in range(numel(out.shape)))}
            vjp = {**p.vjp, param: (sp.Integer(0),) * numel(leaf.shape)}
            item = builder.jacobian_item(replace(p, jacobians=zeros, vjp=vjp), out, leaf)
        value = f"{name_tex(param)} = {tensor_tex(solved.derivation.values[param], leaf.shape)}"
        name = rf"J_{{{name_tex(param)}}}" if len(f.params) > 1 else "J"
        parts = [item.notation, item.symbolic, item.numeric.removeprefix("J = ")]
        display = " = ".join([name] + list(dict.fromkeys(x for x in parts if x)))
        inputs.append(FunctionalInput(param, tensor, value, item, fmt_shape(out.shape + leaf.shape),
                                      f.create_graph and solved.tracked[k], display))
    v, products = "", ()
    many = len(f.params) > 1
    sub = {param: f"_{{{name_tex(param)}}}" if many else "" for param in f.params}
    if f.kind == "vjp":
        v = tensor_tex(p.gradient, out.shape)
        products = tuple(i.jacobian.vjp.replace("J^", f"J{sub[i.param]}^", 1) for i in inputs)
    elif f.kind == "jvp":
        us = solved.v or ((sp.Integer(1),),)
        v = ", ".join(tensor_tex(u, graph.node(param).shape) for u, param in zip(us, f.params))
        if many:
            v = "(" + ", ".join(f"u{sub[param]}" for param in f.params) + ") = (" + v + ")"
        terms = []
        for rows, u in zip(solved.jacobians, us):
            numeric = corner_matrix(len(rows), len(u), lambda r, c, rows=rows: number_tex(rows[r][c]))
            terms.append(numeric + " " + corner_matrix(len(u), 1, lambda r, c, u=u: number_tex(u[r])))
        result = corner_matrix(len(solved.results[0]), 1, lambda r, c: number_tex(solved.results[0][r]))
        named = " + ".join(f"J{sub[param]} u{sub[param]}" for param in f.params)
        products = ((f"J u = {named} = " if many else "J u = ") + " + ".join(terms) + " = " + result,)
    forward = tuple(builder.forward_item(n) for n in graph.nodes if not n.is_leaf)
    return FunctionalItem(
        number, f.kind, f.line, f.code, f.function, solved.output, name_tex(solved.output), numel(out.shape),
        forward, tuple(inputs), f.packed, f.create_graph, v, products, functional_text(spec, f, shade=True),
        outside=f.outside, decided=tuple(d for d in f.decided if SAFE.fullmatch(d[1])),
    )
