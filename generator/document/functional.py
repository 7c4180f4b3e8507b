"""The document's items for torch.autograd.functional calls: each explained on its own graph.

hessian and hvp: first the gradient (J, a single row), then each of its entries differentiated again (H).
"""

from __future__ import annotations

import re
from dataclasses import replace

import sympy as sp

from ..engines.functional import functional_text, solve
from ..ops.base import fmt_shape, numel
from ..spec.model import Functional, Spec
from .latex import corner_matrix, element_tex, matrix_tex, name_tex, number_tex, tensor_tex
from .model import FunctionalInput, FunctionalItem, HessianBlock

MAX_SECOND_NOTATION = 9  # entries of an H block shown as ∂²f/∂x∂y symbols (3 x 3)

SAFE = re.compile(r"[A-Za-z0-9_ .,()\[\]<>=!+\-*/%]{1,120}")  # a loop's or an if's header, shown as code in a sentence


def functionals_of(spec: Spec) -> tuple[Functional, ...]:
    """Return the example's printed functional calls, in order."""
    return tuple(part for p in spec.prints or () for part in p.parts if isinstance(part, Functional))


def functional_items(spec: Spec, builder) -> tuple[FunctionalItem, ...]:
    """Return an item for each printed functional call (builder: SmallBuilder, which explains a derivation)."""
    items = [functional_item(spec, f, k, builder) for k, f in enumerate(functionals_of(spec), start=1)]
    def key(i: FunctionalItem) -> tuple:
        return i.function, i.forward, tuple(replace(x, tracked=False) for x in i.inputs), i.hessians

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
    hessians: tuple[HessianBlock, ...] = ()
    if f.kind in ("hessian", "hvp"):
        hessians = hessian_blocks(solved, builder)
        if f.kind == "hvp":
            v, products = hvp_products(solved)
    forward = tuple(builder.forward_item(n) for n in graph.nodes if not n.is_leaf)
    return FunctionalItem(
        number, f.kind, f.line, f.code, f.function, solved.output, name_tex(solved.output), numel(out.shape),
        forward, tuple(inputs), f.packed, f.create_graph, v, products, functional_text(spec, f, shade=True),
        outside=f.outside, hessians=hessians, decided=tuple(d for d in f.decided if SAFE.fullmatch(d[1])),
    )


def hessian_blocks(solved, builder) -> tuple[HessianBlock, ...]:
    """Return H block by block: the gradient by one input, each entry differentiated by the elements of another."""
    f, graph = solved.functional, solved.graph
    out = graph.node(solved.output)
    top = element_tex(out.name, out.shape, 0 if out.shape else None)
    many = len(f.params) > 1
    blocks = []
    for a, p in enumerate(f.params):
        for b, q in enumerate(f.params):
            rows, cols = graph.node(p).shape, graph.node(q).shape
            n, m = numel(rows), numel(cols)
            values = solved.hessians[a][b]
            name = rf"H_{{{name_tex(p)} {name_tex(q)}}}" if many else "H"
            notation = None
            if n * m <= MAX_SECOND_NOTATION:
                notation = matrix_tex([[second_tex(top, element_tex(p, rows, i), element_tex(q, cols, j))
                                        for j in range(m)] for i in range(n)])
            symbolic = builder.symbolic_hessian(out, solved.seconds[a][b])
            numeric = corner_matrix(n, m, lambda r, c, values=values: number_tex(values[r][c]))
            parts = list(dict.fromkeys(x for x in (notation, symbolic, numeric) if x))
            blocks.append(HessianBlock(p, q, " = ".join([name] + parts), f"{name} = {numeric}",
                                       fmt_shape(rows + cols)))
    return tuple(blocks)


def second_tex(top: str, x: str, y: str) -> str:
    """Return ∂²f/∂x∂y, or ∂²f/∂x² for the same element twice."""
    below = rf"\partial {x}^{{2}}" if x == y else rf"\partial {x} \, \partial {y}"
    return rf"\frac{{\partial^{{2}} {top}}}{{{below}}}"


def hvp_products(solved) -> tuple[str, tuple[str, ...]]:
    """Return v's LaTeX and, per input, H v written out: each block times its part of v, summed."""
    f, graph = solved.functional, solved.graph
    many = len(f.params) > 1
    us = solved.v or ((sp.Integer(1),),)
    v = ", ".join(tensor_tex(u, graph.node(p).shape) for u, p in zip(us, f.params))
    if many:
        v = "(" + ", ".join(f"v_{{{name_tex(p)}}}" for p in f.params) + ") = (" + v + ")"
    products = []
    for a, p in enumerate(f.params):
        terms = []
        for blocks, u in zip(solved.hessians[a], us):
            numeric = corner_matrix(len(blocks), len(u), lambda r, c, blocks=blocks: number_tex(blocks[r][c]))
            terms.append(numeric + " " + corner_matrix(len(u), 1, lambda r, c, u=u: number_tex(u[r])))
        result = solved.results[a]
        column = corner_matrix(len(result), 1, lambda r, c, result=result: number_tex(result[r]))
        if many:
            named = " + ".join(rf"H_{{{name_tex(p)} {name_tex(q)}}} v_{{{name_tex(q)}}}" for q in f.params)
            products.append(rf"(H v)_{{{name_tex(p)}}} = {named} = " + " + ".join(terms) + " = " + column)
        else:
            products.append("H v = " + " + ".join(terms) + " = " + column)
    return v, tuple(products)
