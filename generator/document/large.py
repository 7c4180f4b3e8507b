"""The document of a large example: one generic element (x_{ij}) stands for all of them.

Small examples list their elements one by one (generator/document/small.py). Here each
step is written once for a generic element, from the op registry's generic
formulas; tensors show their corners with their full size; a Jacobian shows its
structure (diag(…) when it is diagonal) and its corners. Every number shown
comes from the derivation (generator/engines/sparse.py); the JSON has all of them.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..engines.sparse import BulkPass, Sparse
from ..engines.exact import sympy_params
from ..graph.model import Node
from .latex import INDEX_LETTERS, corner_matrix, element_tex, name_tex, number_tex, operand_tex, picks, tensor_tex
from ..floats.numeric import numeric
from ..ops import REGISTRY
from ..ops.base import TexOperand, OPERAND, OUT, numel, source_index, unravel
from ..ops.elementwise import Elementwise
from .model import BackwardItem, ForwardItem, GradItem, JacobianItem, Note, Picture
from .parts import DocumentBuilder, formula_tex, grad_items_of, graph_rows_of, kink_note, picture_of, shape_text

MAX_NOTES = 3  # places shown per kind of kink; the rest are counted


class _Lazy:
    """A flat array that hands out Python floats, so that only the shown elements are converted."""

    def __init__(self, values: np.ndarray):
        self.values = values

    def __len__(self) -> int:
        return self.values.size

    def __getitem__(self, k):
        if isinstance(k, slice):
            return _Lazy(self.values[k])
        return float(self.values[k])


class LargeBuilder(DocumentBuilder):
    """Assemble the document model from a bulk derivation."""

    def values(self, name: str) -> _Lazy:
        return _Lazy(self.d.values[name])

    def args(self, node: Node) -> list[TexOperand]:
        out = []
        for a in node.args:
            if isinstance(a, str):
                out.append(TexOperand(name_tex(a), self.graph.node(a).shape))
            else:
                value = sp.Rational(a.numerator, a.denominator)
                out.append(TexOperand(operand_tex(value), None, value))
        return out

    # -- graph and forward ---------------------------------------------------

    def graph_rows(self):
        return graph_rows_of(self.graph, self.values)

    def forward_item(self, node: Node) -> ForwardItem:
        op = REGISTRY[node.op]
        equation = op.forward_tex(name_tex(node.name), self.args(node), node.shape, sympy_params(node))
        example = self.forward_example(node)
        if not node.shape:  # a scalar: its one equation, with its numbers or its value
            shown = (example,) if example else (f"{equation} = {number_tex(float(self.d.values[node.name][0]))}",)
        else:
            shown = (equation,) if example is None else (equation, example)
        return ForwardItem(
            node.name, name_tex(node.name), self.graph.grad_fn(node), formula_tex(node), shown,
            numel(node.shape) > 1, 0, tensor_tex(self.values(node.name), node.shape), shape_text(node.shape),
            not node.shape, ", ".join(INDEX_LETTERS[: len(node.shape)]),
        )

    def forward_example(self, node: Node) -> str | None:
        """Return the first element with its numbers, for an elementwise op: y_{00} = 1 + 2 = 3."""
        op = REGISTRY[node.op]
        if not isinstance(op, Elementwise):
            return None
        idx = unravel(0, node.shape)
        numbers = [
            operand_tex(float(self.d.values[a][source_index(idx, self.graph.node(a).shape)])) if isinstance(a, str)
            else operand_tex(sp.Rational(a.numerator, a.denominator))
            for a in node.args
        ]
        value = float(self.d.values[node.name][0])
        return f"{element_tex(node.name, node.shape, 0)} = {op.latex(numbers, sympy_params(node))} = {number_tex(value)}"

    # -- backward ------------------------------------------------------------

    def gradient(self, p: BulkPass) -> _Lazy:
        return _Lazy(p.gradient)

    def backward_item(self, p: BulkPass, node: Node, loss: str) -> BackwardItem:
        is_output = node.name == p.call.output
        names = [p.order[k] for k in range(len(p.order))]
        consumers = [
            c for c in self.graph.nodes
            if not c.is_leaf and c.name in names and node.name in c.args
        ]
        lhs = rf"\frac{{\partial {loss}}}{{\partial {element_tex(node.name, node.shape, None)}}}"
        if is_output:
            rhs = "1" if p.implicit else element_tex("v", node.shape, None)
            equation = f"{lhs} = {rhs}"
        else:
            def up(element: str) -> str:
                return rf"\frac{{\partial {loss}}}{{\partial {element}}}"

            terms = []
            for c in consumers:
                op = REGISTRY[c.op]
                for a, arg in enumerate(c.args):
                    if arg == node.name:
                        terms.append(op.backward_tex(a, self.args(c), name_tex(c.name), c.shape,
                                                     sympy_params(c), up))
            equation = f"{lhs} = " + " + ".join(terms) if terms else f"{lhs} = 0"
        example = None if is_output else self.backward_example(p, node, consumers, loss)
        return BackwardItem(
            node.name, name_tex(node.name), node.is_leaf, is_output,
            tuple(self.graph.grad_fn(c) for c in consumers), tuple(self.graph.rule(c) for c in consumers),
            (equation,) if example is None else (equation, example), numel(node.shape) > 1, 0, tensor_tex(_Lazy(p.adjoints[node.name]), node.shape),
            shape_text(node.shape), ", ".join(INDEX_LETTERS[: len(node.shape)]),
        )

    def backward_example(self, p: BulkPass, node: Node, consumers: list[Node], loss: str) -> str | None:
        """Return the first element's chain rule with its numbers, when every step is elementwise and unbroadcast."""
        if not node.shape or not consumers:
            return None
        if any(not isinstance(REGISTRY[c.op], Elementwise) or c.shape != node.shape for c in consumers):
            return None
        if any(isinstance(a, str) and self.graph.node(a).shape != node.shape for c in consumers for a in c.args):
            return None
        parts = []
        for c in consumers:
            op = REGISTRY[c.op]
            xs = [np.array(self.d.values[a][0]) if isinstance(a, str) else sp.Rational(a.numerator, a.denominator)
                  for a in c.args]
            _, df = op.generic(xs, sympy_params(c))
            env = {OPERAND[i]: x for i, x in enumerate(xs) if isinstance(x, np.ndarray)}
            env[OUT] = np.array(self.d.values[c.name][0])
            for a, arg in enumerate(c.args):
                if arg == node.name:
                    local = float(numeric(df[a], env))
                    up = float(p.adjoints[c.name][0])
                    parts.append(rf"{operand_tex(up)} \cdot {operand_tex(local)}")
        lhs = rf"\frac{{\partial {loss}}}{{\partial {element_tex(node.name, node.shape, 0)}}}"
        return f"{lhs} = {' + '.join(parts)} = {number_tex(float(p.adjoints[node.name][0]))}"

    def notes(self, p: BulkPass) -> tuple[tuple[Note, ...], int]:
        shown, hidden = [], 0
        for name, key, where in p.kinks:
            node = self.graph.node(name)
            for k in where[:MAX_NOTES]:
                shown.append(self.note(node, key, int(k)))
            hidden += max(where.size - MAX_NOTES, 0)
        return tuple(shown), hidden

    def note(self, node: Node, key: str, k: int) -> Note:
        return kink_note(self.graph, node, key, k, lambda name: self.d.values[name].tolist())

    # -- Jacobians -----------------------------------------------------------

    def jacobian_item(self, p: BulkPass, out: Node, leaf: Node) -> JacobianItem:
        jacobian: Sparse | None = p.jacobians[leaf.name]
        rows, cols = numel(out.shape), numel(leaf.shape)
        size = rf"{rows} \times {cols}"
        if jacobian is None:
            numeric = rf"J \in \mathbb{{R}}^{{{size}}}"
            jt = r"J^{\mathsf T}"
        elif jacobian.diagonal:
            diag = _diagonal(jacobian)
            numeric = rf"J = \underset{{{size}}}{{\operatorname{{diag}}{corner_matrix(1, cols, lambda r, c: number_tex(diag[c]))}}}"
            jt = rf"\operatorname{{diag}}{corner_matrix(1, cols, lambda r, c: number_tex(diag[c]))}"
        else:
            numeric = rf"J = \underset{{{size}}}{{{corner_matrix(rows, cols, lambda r, c: number_tex(jacobian.entry(r, c)))}}}"
            jt = corner_matrix(cols, rows, lambda r, c: number_tex(jacobian.entry(c, r)))
        v = corner_matrix(rows, 1, lambda r, c: number_tex(float(p.gradient[r])))
        vjp = p.vjp[leaf.name]
        result = corner_matrix(cols, 1, lambda r, c: number_tex(float(vjp[r])))
        flat = (r"\left(" + ", ".join(element_tex(leaf.name, leaf.shape, j) for j in picks(cols)[:3])
                + (r", \ldots" if cols > 3 else "") + r"\right)")
        return JacobianItem(
            leaf.name, name_tex(leaf.name), rows, cols, flat, None, None, numeric,
            rf"J^{{\mathsf T}} v = {jt} {v} = {result}", tensor_tex(_Lazy(vjp), leaf.shape), shape_text(leaf.shape),
            jacobian is not None and jacobian.diagonal and rows > 1,
        )

    # -- the picture and the grads --------------------------------------------

    def picture(self) -> Picture:
        return picture_of(
            self.graph, self.d.passes, values=self.values,
            adjoint=lambda p, name: _Lazy(p.adjoints[name]) if name in p.adjoints else None, grad=self.grad,
        )

    def grad_items(self) -> tuple[GradItem, ...]:
        return grad_items_of(
            self.graph, self.d.passes, vjp=lambda p, leaf: _Lazy(p.vjp[leaf]) if leaf in p.vjp else None,
            grad=self.grad,
        )

    def grad(self, leaf: str) -> _Lazy | None:
        total = self.d.grads.get(leaf)
        return None if total is None else _Lazy(total)


def _diagonal(jacobian: Sparse) -> np.ndarray:
    diag = np.zeros(jacobian.cols)
    diag[jacobian.col] = jacobian.value
    return diag
