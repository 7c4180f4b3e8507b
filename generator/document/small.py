"""The document of a small example: every element exact, every derivative of the derivation shown."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

import sympy as sp

from .code import ADDRESS, printed, torch_code
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
from ..spec.model import Functional, Shown
from .model import BackwardItem, Check, Document, ForwardItem, GradItem, GraphRow, JacobianItem, Note, Picture
from .parts import DocumentBuilder, repeated_nodes, flat_tuple, formula_tex, grad_items_of, graph_rows_of, kink_note, order_note, picture_of, rounding_note, shape_text
from .parts import gradient_after_hooks
from .model import DerivativeNote
from ..ops.autograd import request

if TYPE_CHECKING:
    from ..engines.sparse import Bulk

MAX_LINES = 12  # element equations shown per node before the rest is summarised
MAX_LOCALS = 2  # local derivatives of one element the closing table shows; beyond, dots
MAX_NOTATION = 16  # Jacobian entries shown as ∂y/∂x symbols
MAX_ALL_AT_ONCE = 80  # operations in the fully substituted expression worth showing
MAX_ALL_AT_ONCE_PARTIALS = 12  # derivatives shown in that section; the rest are counted
MAX_SYMBOLIC_CHARS = 600  # LaTeX length of a symbolic Jacobian worth showing
MAX_SUBSTITUTED_OPS = 12  # operations a graph may have for its fully substituted expression to be built
MAX_SUBSTITUTED_SIZE = 20 * MAX_ALL_AT_ONCE  # and the bound on that expression's size (derive.expression_size)
MAX_DERIVATIVE_LINES = 6  # elements of a torch.autograd.grad result derived one by one with sympy.diff


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
        whole = tensor_tex(values, node.shape)
        matrix, outer = self.product_form(p, node, consumers, loss)
        return BackwardItem(
            node.name, name_tex(node.name), node.is_leaf, is_output, grad_fns, rules, tuple(shown), generic,
            0 if generic else max(size - MAX_LINES, 0), whole, shape_text(node.shape),
            ", ".join(INDEX_LETTERS[: len(node.shape)]), matrix, outer,
            local="" if is_output else self.local_tex(node, adjoints[0], generic=generic),
            gradient=number_tex(values[0]) if generic or size == 1 else whole,
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

    def local_tex(self, node: Node, adj: Adjoint, *, generic: bool) -> str:
        """Return each local derivative of one element (the generic one), with its value: ∂t/∂y = 2 y = 6."""
        printer = Printer(self.generic_names(node) if generic else self.names, self.values)
        el = printer.doprint(self.d.symbols[node.name][adj.index])
        parts = []
        for (consumer, k), terms in self.groups(adj).items():
            c_el = printer.doprint(self.d.symbols[consumer][k])
            local = sp.Add(*(t.local for t in terms), evaluate=False) if len(terms) > 1 else terms[0].local
            value = sp.Add(*(t.local_value for t in terms))
            if local.free_symbols:
                formula = printer.doprint(local)
                shown = formula + ("" if formula == number_tex(value) else value_tex(value))
            else:
                shown = number_tex(value)
            parts.append(rf"{self.partial(c_el, el)} = {shown}")
        return ", ".join(parts[:MAX_LOCALS]) + (r", \ldots" if len(parts) > MAX_LOCALS else "")

    def generic_names(self, node: Node) -> dict[sp.Symbol, str]:
        """Return the element names with every tensor of node's shape written as its generic element."""
        names = dict(self.names)
        for other in self.graph.nodes:
            if other.shape == node.shape:
                names[self.d.symbols[other.name][0]] = element_tex(other.name, other.shape, None)
        return names

    @staticmethod
    def groups(adj: Adjoint) -> dict[tuple[str, int], list]:
        """Return an adjoint's chain-rule terms grouped by the consumer element they come back from."""
        groups: dict[tuple[str, int], list] = {}
        for t in adj.terms:
            groups.setdefault((t.consumer, t.out_index), []).append(t)
        return groups

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
        """Return (the equation, a chain or aligned rows, and its numeric part) for one element's adjoint."""
        names = self.generic_names(node) if generic else self.names
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
        generic_parts, local_parts, number_parts = [], [], []
        for (consumer, k), terms in self.groups(adj).items():
            c_el = names[self.d.symbols[consumer][k]]
            up = self.partial(loss, c_el)
            local = sp.Add(*(t.local for t in terms), evaluate=False) if len(terms) > 1 else terms[0].local
            wrap = len(terms) > 1 or _needs_parens(local)
            local_tex = factor_tex(printer.doprint(local), wrap=wrap)
            local_num = factor_tex(self.numbers.doprint(local), wrap=wrap)
            generic_parts.append(rf"{up} \cdot {self.partial(c_el, el)}")
            local_parts.append(rf"{up} \cdot {local_tex}")
            number_parts.append(rf"{operand_tex(terms[0].upstream)} \cdot {local_num}")
        # ∂out/∂z = ∂out/∂out · ∂out/∂z would define the gradient by itself: from the output, the local rule comes first
        circular = any(names[self.d.symbols[c][k]] == loss for c, k in self.groups(adj))
        steps = ([] if circular else [" + ".join(generic_parts)]) + [" + ".join(local_parts), " + ".join(number_parts)]
        rows = [rf"{lhs} &= {steps[0]}"]
        for part in steps[1:]:
            if not rows[-1].endswith("&= " + part):  # skip a step that changes nothing
                rows.append("&= " + part)
        rows[-1] += value_tex(adj.value)
        numeric = " + ".join(number_parts) + value_tex(adj.value)
        if len(generic_parts) == 1:  # one path back: a chain on one line (the PDF breaks it when too wide)
            eq = " ".join(row.replace("&=", "=") for row in rows)
        else:
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
        vjp = p.vjp[leaf.name]
        if p.hooked:  # .grad got what the hooks made of the gradient; Jᵀv is the product itself
            vjp = tuple(sp.Add(*(rows_v[r][c] * p.gradient[r] for r in range(n_rows))) for c in range(n_cols))
        if n_rows == 1:  # Jᵀ is a column: written as a row, transposed, to keep the page short
            jt = corner_matrix(1, n_cols, lambda r, c: number_tex(rows_v[0][c])) + r"^{\mathsf T}"
        else:
            jt = corner_matrix(n_cols, n_rows, lambda r, c: number_tex(rows_v[c][r]))
        v = corner_matrix(n_rows, 1, lambda r, c: number_tex(p.gradient[r]))
        result = corner_matrix(1, n_cols, lambda r, c: number_tex(vjp[c])) + r"^{\mathsf T}"
        product = rf"J^{{\mathsf T}} v = {jt} {v} = {result}"
        diagonal = n_rows == n_cols and n_rows > 1 and all(
            rows_v[r][c] == 0 for r in range(n_rows) for c in range(n_cols) if r != c
        )
        flat = flat_tuple(leaf_els[:MAX_SHOWN], n_cols > MAX_SHOWN)
        u = corner_matrix(1, n_cols, lambda r, c: "1" if c == 0 else "0") + r"^{\mathsf T}"
        column = corner_matrix(n_rows, 1, lambda r, c: number_tex(rows_v[r][0]))
        jvp = rf"J u = {numeric if notation else 'J'} {u} = {column}"
        return JacobianItem(
            leaf.name, name_tex(leaf.name), n_rows, n_cols, flat, notation, symbolic, rf"J = {numeric}", product,
            tensor_tex(vjp, leaf.shape), shape_text(leaf.shape), diagonal, jvp, leaf_els[0], *index_example(leaf),
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
                if not _smooth(derivative):
                    return None
                if _factorable(derivative):
                    derivative = sp.factor(derivative)
                row.append(self.printer.doprint(derivative))
            cells.append(row)
        if sum(len(c) for row in cells for c in row) > MAX_SYMBOLIC_CHARS:
            return None
        return matrix_tex(cells)

    def symbolic_hessian(self, out: Node, formulas: tuple[tuple[sp.Expr, ...], ...]) -> str | None:
        """Return a block of second derivatives (sympy.diff of the gradient's formulas), when short and smooth."""
        if self.d.passes[0].kinks or not self.substitutable(out):
            return None
        cells = [[self.printer.doprint(sp.factor(e) if _factorable(e) else e) for e in row] for row in formulas]
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
        derivatives = [sp.diff(expr, sym) for sym in wanted[:MAX_ALL_AT_ONCE_PARTIALS]]
        if not all(map(_smooth, derivatives)):
            return (), 0
        values = [evaluate(derivative, env) for derivative in derivatives]
        if any(v.has(sp.I, sp.zoo) or v.is_extended_real is False for v in values):
            return (), 0  # a root or log of a negative number: torch has nan there, which the steps above show
        for sym, derivative, value in zip(wanted, derivatives, values):
            shown = sp.factor(derivative) if _factorable(derivative) else derivative
            lines.append(rf"{self.partial(loss, self.names[sym])} = {self.printer.doprint(shown)}{value_tex(value)}")
        return tuple(lines), max(len(wanted) - MAX_ALL_AT_ONCE_PARTIALS, 0)

    def changed_input(self, p: Pass, leaf: Node) -> Check | None:
        """Change the leaf's first element by 1: the fully substituted expression's derivative gives its new gradient."""
        out = self.graph.node(p.call.output)
        if p.kinks or numel(out.shape) != 1 or not self.substitutable(out):
            return None
        (expr,) = full_expression(self.d, out.name)
        if sp.count_ops(expr) > MAX_ALL_AT_ONCE or expr.has(sp.Max, sp.Min, sp.Abs):
            return None
        env = {s: v for n in self.graph.nodes if n.is_leaf for s, v in zip(self.d.symbols[n.name], self.d.values[n.name])}
        sym = self.d.symbols[leaf.name][0]
        old = env[sym]
        derivative = sp.diff(expr, sym)
        if not _smooth(derivative):
            return None
        if evaluate(derivative, env) != p.vjp[leaf.name][0]:  # the formula must give the derivation's own number first
            return None
        new = old + 1
        value = evaluate(derivative, {**env, sym: new})
        if not value.is_number or not (value.is_Rational or value.is_finite) or value.has(sp.nan, sp.zoo):
            return None
        shown = sp.factor(derivative) if _factorable(derivative) else derivative
        element = leaf.name + "".join(f"[{i}]" for i in unravel(0, leaf.shape))
        formula = rf"{self.partial(name_tex(out.name), self.names[sym])} = {self.printer.doprint(shown)}"
        return Check("input", leaf.name, element, number_tex(old), number_tex(new), formula, number_tex(value))

    # -- the picture and the grads -----------------------------------------------

    def picture(self) -> Picture:
        return picture_of(
            self.graph, self.d.passes, values=lambda name: self.d.values[name],
            adjoint=lambda p, name: gradient_after_hooks(p, name),
            grad=self.d.grads.get,
        )

    def grad_items(self) -> tuple[GradItem, ...]:
        return grad_items_of(self.graph, self.d.passes, vjp=lambda p, leaf: p.vjp.get(leaf), grad=self.d.grads.get)

    # -- torch.autograd.grad -------------------------------------------------------

    def derivative_notes(self) -> tuple[DerivativeNote, ...]:
        """Explain each torch.autograd.grad: what it differentiated as a formula of the inputs, and sympy's derivative."""
        notes, orders, bases = [], {}, {}
        for step in self.graph.spec.steps:
            found = request(step.expr)
            if found is None or step.name not in self.d.values:
                continue
            output, inputs, k, _, create = found
            orders[step.name], bases[step.name] = orders.get(output, 0) + 1, bases.get(output, output)
            nodes = tuple(n.name for n in self.graph.nodes if n.step == step.name and n.name != step.name)
            formula, lines, hidden = self.derivative_lines(output, inputs[k], step.name)
            notes.append(DerivativeNote(step.name, output, inputs[k], create, orders[step.name], bases[step.name],
                                        nodes, formula, lines, hidden))
        return tuple(notes)

    def through_derivatives(self) -> tuple[tuple[int, tuple[str, ...]], ...]:
        """Return, per backward call, the recorded (create_graph) gradients its pass goes back through."""
        recorded = {s.name for s in self.graph.spec.steps if (found := request(s.expr)) and found[4]}
        found = []
        for i, p in enumerate(self.d.passes):
            names = tuple(n for n in p.order if n in recorded)
            if names:
                found.append((i + 1, names))
        return tuple(found)

    def derivative_lines(self, output: str, target: str, result: str) -> tuple[str, tuple[str, ...], int]:
        """Return output as a formula of the leaves, and each element's derivative by sympy.diff with its numbers.

        sympy differentiates the whole formula; the gradient's values come from torch's backward formulas, op by op.
        The two must agree: a disagreement is a bug of ours, never shown.
        """
        if expression_size(self.d, output) > MAX_SUBSTITUTED_SIZE:
            return "", (), 0
        (expr,) = full_expression(self.d, output)
        if sp.count_ops(expr) > MAX_ALL_AT_ONCE or expr.has(sp.Max, sp.Min, sp.Abs):
            return "", (), 0
        expanded = sp.expand(expr)
        expr = expanded if sp.count_ops(expanded) <= sp.count_ops(expr) else expr
        env = {s: v for n in self.graph.nodes if n.is_leaf for s, v in zip(self.d.symbols[n.name], self.d.values[n.name])}
        top = self.names[self.d.symbols[output][0]]
        lines = []
        size = numel(self.graph.node(target).shape)
        for j in range(size):
            derivative = sp.diff(expr, self.d.symbols[target][j])
            if not _smooth(derivative):
                continue
            value = self.d.values[result][j]
            check = evaluate(derivative, env)
            if abs(complex(sp.N(check - value, 30))) > 1e-12 * max(1.0, abs(complex(sp.N(value, 30)))):
                raise RuntimeError(f"sympy's derivative of {output} gives {check} for {result}[{j}], the graph {value}")
            if j >= MAX_DERIVATIVE_LINES:
                continue
            shown = sp.factor(derivative) if _factorable(derivative) else derivative
            parts = [self.partial(top, self.names[self.d.symbols[target][j]]), self.printer.doprint(shown)]
            if shown.free_symbols:
                parts.append(self.numbers.doprint(shown))
            lines.append(" = ".join(parts) + (value_tex(value) if shown.free_symbols else ""))
        return f"{top} = {self.printer.doprint(expr)}", tuple(lines), max(size - MAX_DERIVATIVE_LINES, 0)


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


def index_example(leaf: Node) -> tuple[str, str]:
    """Return an element of a leaf of two or more dimensions as math and as code (x_{01}, x[0][1]), else blanks."""
    if len(leaf.shape) < 2 or numel(leaf.shape) < 2:
        return "", ""
    return element_tex(leaf.name, leaf.shape, 1), leaf.name + "".join(f"[{i}]" for i in unravel(1, leaf.shape))


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
    from .function import function_items

    spec = derivation.graph.spec
    shade = shadow(derivation.graph)
    printed_text = printed(derivation, shade)  # what torch prints: rounded after every op
    fields = dict(
        rounding=rounding_note(derivation, shade) if printed_text != printed(derivation) else None,
        order=order_note(derivation.graph, shade),
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
        addresses=ADDRESS in printed_text,
        links=any(isinstance(part, Shown) and part.what == "next_functions" for p in spec.prints or () for part in p.parts),
        renamed=spec.renamed,
        has_intermediates=any(n.name != n.step for n in derivation.graph.nodes),
        **story_of(derivation.graph),
    )
    if any(isinstance(part, Functional) for p in spec.prints or () for part in p.parts):
        from .functional import functional_items

        fields["functionals"] = functional_items(spec, SmallBuilder)
    if derivation.large:
        from .large import LargeBuilder

        return LargeBuilder(derivation).document(large=True, alike=False, **fields)
    builder = SmallBuilder(derivation)
    document = replace(builder.document(alike=False, **fields), derivatives=builder.derivative_notes(),
                       through=builder.through_derivatives())
    alike = all(f.generic or f.scalar for f in document.forward) and all(
        b.generic or b.shape == "scalar" for c in document.calls for b in c.backward if not b.is_output)
    return replace(document, alike=alike, functions=function_items(derivation))


def story_of(graph) -> dict:
    """Say which ops work element by element: all of them, all but the reductions that treat every element alike, or neither."""
    hidden = repeated_nodes(graph)
    ops = [n for n in graph.nodes if not n.is_leaf and n.name not in hidden]
    if not ops:  # nothing computed (an example that only prints jacobians): no story to tell
        return dict(story="", reducers=())
    elementwise = [isinstance(REGISTRY[n.op], Elementwise) for n in ops]
    alike = [not n.shape and REGISTRY[n.op].same_local for n in ops]
    if all(elementwise):
        return dict(story="elementwise", reducers=())
    if all(e or a for e, a in zip(elementwise, alike)):
        return dict(story="reduced", reducers=tuple(n.name for n, a in zip(ops, alike) if a))
    return dict(story="", reducers=())


def _smooth(derivative: sp.Expr) -> bool:
    """Tell whether sympy found a derivative it can evaluate (not floor's unevaluated one, nor sign's delta)."""
    return not derivative.has(sp.Derivative, sp.Subs, sp.DiracDelta)


def _factorable(expr: sp.Expr) -> bool:
    """Tell whether sympy can factor a formula quickly: short, and no constant like 1e308 (e^(1e308 x) is a polynomial of that degree to it)."""
    if sp.count_ops(expr) >= 30:
        return False
    return all(max(abs(r.p), r.q) < 10**15 for r in expr.atoms(sp.Rational))
