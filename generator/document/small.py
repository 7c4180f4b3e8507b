"""The document of a small example: every element exact, every derivative of the derivation shown."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import sympy as sp

from .code import printed, torch_code
from ..engines.exact import Adjoint, Derivation, Pass, evaluate, expression_size, full_expression, sympy_params
from ..graph.model import Node
from .latex import (
    INDEX_LETTERS,
    MAX_SHOWN,
    corner_matrix,
    element_tex,
    matrix_tex,
    name_tex,
    number_tex,
    operand_tex,
    tensor_tex,
    value_tex,
)
from ..ops.derivatives import Printer
from ..ops import REGISTRY
from ..ops.base import factor_tex, numel, source_index, unravel
from ..ops.elementwise import Elementwise
from .model import BackwardItem, Document, ForwardItem, GradItem, GraphRow, JacobianItem, Note, Picture
from .parts import DocumentBuilder, formula_tex, grad_items_of, graph_rows_of, kink_note, picture_of, rounding_note, shape_text

if TYPE_CHECKING:
    from ..engines.sparse import Bulk

MAX_LINES = 12  # element equations shown per node before the rest is summarised
MAX_NOTATION = 16  # Jacobian entries shown as ∂y/∂x symbols
MAX_ALL_AT_ONCE = 80  # operations in the fully substituted expression worth showing
MAX_ALL_AT_ONCE_PARTIALS = 12  # derivatives shown in that section; the rest are counted
MAX_SYMBOLIC_CHARS = 600  # LaTeX length of a symbolic Jacobian worth showing
MAX_SUBSTITUTED_OPS = 12  # operations a graph may have for its fully substituted expression to be built
MAX_SUBSTITUTED_SIZE = 20 * MAX_ALL_AT_ONCE  # and the bound on that expression's size (derive.expression_size)


class SmallBuilder(DocumentBuilder):
    """Assemble the document from a derivation."""

    def __init__(self, derivation: Derivation):
        super().__init__(derivation)
        self.names: dict[sp.Symbol, str] = {}
        self.value_names: dict[sp.Symbol, str] = {}
        self.values: dict[sp.Symbol, sp.Expr] = {}
        for node in self.graph.nodes:
            for k, sym in enumerate(derivation.symbols[node.name]):
                self.names[sym] = element_tex(node.name, node.shape, k)
                self.value_names[sym] = operand_tex(derivation.values[node.name][k])
                self.values[sym] = derivation.values[node.name][k]
        self.printer = Printer(self.names, self.values)
        self.numbers = Printer(self.value_names, self.values)

    # -- graph and forward ---------------------------------------------------

    def formula(self, node: Node) -> str:
        return formula_tex(node)

    def graph_rows(self) -> tuple[GraphRow, ...]:
        return graph_rows_of(self.graph, lambda name: self.d.values[name])

    def forward_item(self, node: Node) -> ForwardItem:
        size = numel(node.shape)
        lines = [self.forward_line(node, k) for k in range(size)]
        generic = size > 1 and self.forward_generic(node, lines)
        if generic:
            shown = [self.forward_line(node, 0, generic=True)]
        else:
            shown = [line for line, _ in lines[:MAX_LINES]]
        return ForwardItem(
            node.name, name_tex(node.name), self.graph.grad_fn(node), self.formula(node),
            tuple(shown), generic, 0 if generic else max(size - MAX_LINES, 0),
            tensor_tex(self.d.values[node.name], node.shape), shape_text(node.shape), size == 1 and not node.shape,
            ", ".join(INDEX_LETTERS[: len(node.shape)]),
        )

    def forward_generic(self, node: Node, lines: list[tuple[str, str]]) -> bool:
        op = REGISTRY[node.op]
        if not isinstance(op, Elementwise):
            return False
        if any(isinstance(a, str) and self.graph.node(a).shape not in (node.shape, ()) for a in node.args):
            return False
        return len({numbers for _, numbers in lines}) == 1

    def forward_line(self, node: Node, k: int, *, generic: bool = False):
        """Return (equation, its numeric part) for element k."""
        op = REGISTRY[node.op]
        lhs = element_tex(node.name, node.shape, None if generic else k)
        value = self.d.values[node.name][k]
        if isinstance(op, Elementwise):
            idx = unravel(k, node.shape)
            syms, nums = [], []
            for a in node.args:
                if isinstance(a, str):
                    parent = self.graph.node(a)
                    j = source_index(idx, parent.shape)
                    same = generic and parent.shape == node.shape
                    syms.append(element_tex(a, parent.shape, None if same else j))
                    nums.append(operand_tex(self.d.values[a][j]))
                else:
                    c = operand_tex(sp.Rational(a.numerator, a.denominator))
                    syms.append(c)
                    nums.append(c)
            params = sympy_params(node)
            symbolic = op.latex(syms, params)
            numbers = op.latex(nums, params)
        else:
            expr = self.d.elements[node.name][k]
            symbolic = self.printer.doprint(expr)
            numbers = self.numbers.doprint(expr)
        tail = "" if numbers == number_tex(value) else value_tex(value)  # x_{1} = 1, not x_{1} = 1 = 1
        numeric = f"{numbers}{tail}"
        eq = f"{lhs} = {symbolic}" + ("" if numbers == symbolic else f" = {numbers}") + tail
        return (eq, numeric) if not generic else eq

    # -- backward ------------------------------------------------------------

    def notes(self, p: Pass) -> tuple[tuple[Note, ...], int]:
        return tuple(self.note(k) for k in p.kinks), 0

    def backward_item(self, p: Pass, node: Node, loss: str) -> BackwardItem:
        adjoints = p.adjoints[node.name]
        size = len(adjoints)
        is_output = node.name == p.call.output
        consumers = []
        for adj in adjoints:
            for t in adj.terms:
                if t.consumer not in consumers:
                    consumers.append(t.consumer)
        grad_fns = tuple(self.graph.grad_fn(self.graph.node(c)) for c in consumers)
        rules = tuple(self.graph.rule(self.graph.node(c)) for c in consumers)
        lines = [self.adjoint_lines(p, node, a, loss, is_output) for a in adjoints]
        generic = size > 1 and self.backward_generic(node, adjoints, lines)
        if generic:
            shown = [self.adjoint_lines(p, node, adjoints[0], loss, is_output, generic=True)[0]]
        else:
            shown = [eq for eq, _ in lines[:MAX_LINES]]
        values = [a.value for a in adjoints]
        matrix, outer = self.product_form(p, node, consumers, loss)
        return BackwardItem(
            node.name, name_tex(node.name), node.is_leaf, is_output, grad_fns, rules, tuple(shown), generic,
            0 if generic else max(size - MAX_LINES, 0), tensor_tex(values, node.shape), shape_text(node.shape),
            ", ".join(INDEX_LETTERS[: len(node.shape)]), matrix, outer,
        )

    def product_form(self, p: Pass, node: Node, consumers: list[str], loss: str) -> tuple[str, bool]:
        """Return the node's whole gradient as its one consumer's product of whole tensors (or ''), and whether it is a column times a row."""
        if len(consumers) != 1:
            return "", False
        c = self.graph.node(consumers[0])
        if c.args.count(node.name) != 1:
            return "", False
        shapes = [self.graph.node(x).shape if isinstance(x, str) else () for x in c.args]
        factors = REGISTRY[c.op].product_form(c.args.index(node.name), shapes)
        if factors is None:
            return "", False
        symbols, numbers = [], []
        for source, layout in factors:
            if source is None:
                tex, values, shape = self.partial(loss, name_tex(c.name)), [a.value for a in p.adjoints[c.name]], c.shape
                tex = rf"\left({tex}\right)" if layout in ("transposed", "row") else tex
            else:
                tex, values, shape = name_tex(c.args[source]), self.d.values[c.args[source]], shapes[source]
            symbols.append(tex + (r"^{\mathsf T}" if layout in ("transposed", "row") else ""))
            numbers.append(_layout_tex(values, shape, layout))
        whole = tensor_tex([a.value for a in p.adjoints[node.name]], node.shape)
        product, written = r" \, ".join(symbols), " ".join(numbers)
        eq = f"{self.partial(loss, name_tex(node.name))} = {product} = {written} = {whole}"
        return eq, [layout for _, layout in factors] == ["col", "row"]

    def backward_generic(self, node: Node, adjoints: tuple[Adjoint, ...], lines: list[tuple[str, str]]) -> bool:
        for adj in adjoints:
            for t in adj.terms:
                c = self.graph.node(t.consumer)
                op = REGISTRY[c.op]
                elementwise = isinstance(op, Elementwise) and c.shape == node.shape
                full_reduction = not c.shape and op.same_local
                if not (elementwise or full_reduction):
                    return False
        return len({numbers for _, numbers in lines}) == 1

    def partial(self, top: str, bottom: str) -> str:
        return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"

    def adjoint_lines(self, p: Pass, node: Node, adj: Adjoint, loss: str, is_output: bool, *, generic: bool = False):
        """Return (aligned equation, its numeric part) for one element's adjoint."""
        names = self.names
        if generic:
            names = dict(self.names)
            for other in self.graph.nodes:
                if other.shape == node.shape:
                    names[self.d.symbols[other.name][0]] = element_tex(other.name, other.shape, None)
        printer = Printer(names, self.values)
        el = names[self.d.symbols[node.name][adj.index]]
        lhs = self.partial(loss, el)
        if is_output:
            v = p.gradient[adj.index]
            if p.implicit:
                eq = rf"{lhs} = 1"
            else:
                sub = element_tex("v", node.shape, None if generic else adj.index)
                eq = rf"{lhs} = {sub} = {number_tex(v)}"
            return eq, number_tex(v)
        if not adj.terms:  # e.g. an element that indexing does not read: no path back from the output
            return rf"{lhs} = 0", "0"
        groups: dict[tuple[str, int], list] = {}
        for t in adj.terms:
            groups.setdefault((t.consumer, t.out_index), []).append(t)
        generic_parts, local_parts, number_parts = [], [], []
        for (consumer, k), terms in groups.items():
            c_el = names[self.d.symbols[consumer][k]]
            up = self.partial(loss, c_el)
            local = sp.Add(*(t.local for t in terms), evaluate=False) if len(terms) > 1 else terms[0].local
            wrap = len(terms) > 1 or _needs_parens(local)
            local_tex = factor_tex(printer.doprint(local), wrap=wrap)
            local_num = factor_tex(self.numbers.doprint(local), wrap=wrap)
            generic_parts.append(rf"{up} \cdot {self.partial(c_el, el)}")
            local_parts.append(rf"{up} \cdot {local_tex}")
            number_parts.append(rf"{operand_tex(terms[0].upstream)} \cdot {local_num}")
        rows = [rf"{lhs} &= " + " + ".join(generic_parts)]
        for part in (" + ".join(local_parts), " + ".join(number_parts)):
            if not rows[-1].endswith("&= " + part):  # skip a step that changes nothing
                rows.append("&= " + part)
        rows[-1] += value_tex(adj.value)
        numeric = " + ".join(number_parts) + value_tex(adj.value)
        eq = r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"
        return eq, numeric

    # -- Jacobians -----------------------------------------------------------

    def jacobian_item(self, p: Pass, out: Node, leaf: Node) -> JacobianItem:
        rows_v = p.jacobians[leaf.name]
        n_rows, n_cols = len(rows_v), numel(leaf.shape)
        out_els = [element_tex(out.name, out.shape, k) for k in range(n_rows)]
        leaf_els = [element_tex(leaf.name, leaf.shape, j) for j in range(n_cols)]
        notation = symbolic = None
        if n_rows * n_cols <= MAX_NOTATION:
            notation = matrix_tex([[self.partial(o, x) for x in leaf_els] for o in out_els])
            symbolic = self.symbolic_jacobian(p, out, leaf)
        numeric = corner_matrix(n_rows, n_cols, lambda r, c: number_tex(rows_v[r][c]))
        jt = corner_matrix(n_cols, n_rows, lambda r, c: number_tex(rows_v[c][r]))
        v = corner_matrix(n_rows, 1, lambda r, c: number_tex(p.gradient[r]))
        vjp = p.vjp[leaf.name]
        result = corner_matrix(n_cols, 1, lambda r, c: number_tex(vjp[r]))
        product = rf"J^{{\mathsf T}} v = {jt} {v} = {result}"
        diagonal = n_rows == n_cols and n_rows > 1 and all(
            rows_v[r][c] == 0 for r in range(n_rows) for c in range(n_cols) if r != c
        )
        flat = r"\left(" + ", ".join(leaf_els[:MAX_SHOWN]) + (r", \ldots" if n_cols > MAX_SHOWN else "") + r"\right)"
        return JacobianItem(
            leaf.name, name_tex(leaf.name), n_rows, n_cols, flat, notation, symbolic, rf"J = {numeric}", product,
            tensor_tex(vjp, leaf.shape), shape_text(leaf.shape), diagonal,
        )

    def substitutable(self, out: Node) -> bool:
        """Tell whether the graph is small enough to substitute into one expression (its size can double per op)."""
        if sum(not n.is_leaf for n in self.graph.nodes) > MAX_SUBSTITUTED_OPS:
            return False
        return expression_size(self.d, out.name) <= MAX_SUBSTITUTED_SIZE

    def symbolic_jacobian(self, p: Pass, out: Node, leaf: Node) -> str | None:
        """Return J's entries as formulas in the leaves' symbols, when they are short and smooth."""
        if p.kinks or not self.substitutable(out):
            return None
        outputs = full_expression(self.d, out.name)
        if any(sp.count_ops(e) > MAX_ALL_AT_ONCE or e.has(sp.Max, sp.Min, sp.Abs) for e in outputs):
            return None
        cells = []
        for e in outputs:
            row = []
            for sym in self.d.symbols[leaf.name]:
                derivative = sp.diff(e, sym)
                if _factorable(derivative):
                    derivative = sp.factor(derivative)
                row.append(self.printer.doprint(derivative))
            cells.append(row)
        if sum(len(c) for row in cells for c in row) > MAX_SYMBOLIC_CHARS:
            return None
        return matrix_tex(cells)

    def note(self, kink) -> Note:
        return kink_note(self.graph, self.graph.node(kink.node), kink.key, kink.index, self.d.values.__getitem__)

    def all_at_once(self, p: Pass, out: Node, loss: str) -> tuple[tuple[str, ...], int]:
        """Differentiate the fully substituted expression with sympy, when small and smooth; count what is left out."""
        if not p.implicit or p.kinks or numel(out.shape) != 1 or not self.substitutable(out):
            return (), 0
        (expr,) = full_expression(self.d, out.name)
        if sp.count_ops(expr) > MAX_ALL_AT_ONCE or expr.has(sp.Max, sp.Min, sp.Abs):
            return (), 0
        env = {s: v for n in self.graph.nodes if n.is_leaf for s, v in zip(self.d.symbols[n.name], self.d.values[n.name])}
        lines = [rf"{name_tex(out.name)} = {self.printer.doprint(expr)}"]
        wanted = [sym for leaf in p.vjp for sym in self.d.symbols[leaf]]
        for sym in wanted[:MAX_ALL_AT_ONCE_PARTIALS]:
            derivative = sp.diff(expr, sym)
            value = evaluate(derivative, env)
            shown = sp.factor(derivative) if _factorable(derivative) else derivative
            lines.append(rf"{self.partial(loss, self.names[sym])} = {self.printer.doprint(shown)}{value_tex(value)}")
        return tuple(lines), max(len(wanted) - MAX_ALL_AT_ONCE_PARTIALS, 0)

    # -- the picture and the grads -----------------------------------------------

    def picture(self) -> Picture:
        return picture_of(
            self.graph, self.d.passes, values=lambda name: self.d.values[name],
            adjoint=lambda p, name: [a.value for a in p.adjoints[name]] if name in p.adjoints else None,
            grad=self.d.grads.get,
        )

    def grad_items(self) -> tuple[GradItem, ...]:
        return grad_items_of(self.graph, self.d.passes, vjp=lambda p, leaf: p.vjp.get(leaf), grad=self.d.grads.get)


def _layout_tex(values, shape: tuple[int, ...], layout: str) -> str:
    """Return a tensor as a matrix in a product: as it is, transposed, or a vector as a column or a row."""
    if layout == "col":
        return corner_matrix(len(values), 1, lambda r, c: number_tex(values[r]))
    if layout == "row":
        return corner_matrix(1, len(values), lambda r, c: number_tex(values[c]))
    rows, cols = shape
    if layout == "transposed":
        return corner_matrix(cols, rows, lambda r, c: number_tex(values[c * cols + r]))
    return corner_matrix(rows, cols, lambda r, c: number_tex(values[r * cols + c]))


def _needs_parens(expr: sp.Expr) -> bool:
    return isinstance(expr, sp.Add) or (expr.is_number and expr.is_negative)


def build_document(
    derivation: Derivation | Bulk, *, stem: str, lang: str | None = None, flavor: str | None = None,
    front_matter: bool = False,
) -> Document:
    """Build the document model of one derivation (lang and flavor override the spec's).

    A large example (generator/engines/sparse.py) shows generic elements instead of every one (generator/document/large.py).
    """
    from ..engines.shadow import shadow

    spec = derivation.graph.spec
    shade = shadow(derivation.graph)
    printed_text = printed(derivation, shade.grads)  # what torch prints: rounded after every op
    fields = dict(
        rounding=rounding_note(derivation, shade) if printed_text != printed(derivation) else None,
        stem=stem,
        title=spec.title,
        summary=spec.summary,
        lang=lang or spec.lang,
        flavor=flavor or spec.flavor,
        front_matter=front_matter,
        dtype=spec.dtype,
        code=torch_code(derivation.graph),
        printed=printed_text,
        scientific=bool(re.search(r"\de[+-]\d", printed_text)),
        has_intermediates=any(n.name != n.step for n in derivation.graph.nodes),
        elementwise_only=all(
            isinstance(REGISTRY[n.op], Elementwise) or not n.shape for n in derivation.graph.nodes if not n.is_leaf
        ),
    )
    if derivation.large:
        from .large import LargeBuilder

        return LargeBuilder(derivation).document(large=True, **fields)
    return SmallBuilder(derivation).document(**fields)


def _factorable(expr: sp.Expr) -> bool:
    """Tell whether sympy can factor a formula quickly: short, and no constant like 1e308 (e^(1e308 x) is a polynomial of that degree to it)."""
    if sp.count_ops(expr) >= 30:
        return False
    return all(max(abs(r.p), r.q) < 10**15 for r in expr.atoms(sp.Rational))
