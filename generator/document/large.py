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
from .glance import Glance, glance
from .latex import INDEX_LETTERS, corner_matrix, elided, element_tex, name_tex, number_tex, operand_tex, picks, tensor_tex
from ..ops import REGISTRY
from ..ops.base import TexOperand, bare, numel, sum_tex
from .model import BackwardItem, Example, ForwardItem, GradItem, JacobianItem, Note, Picture, TensorGlance
from .parts import DocumentBuilder, flat_tuple, formula_tex, grad_items_of, graph_rows_of, kink_note, picture_of, shape_text, tensor_glance

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

    def __init__(self, derivation):
        super().__init__(derivation)
        self._locals: dict[str, list] = {}

    def values(self, name: str) -> _Lazy:
        return _Lazy(self.d.values[name])

    def leaf_values(self, name: str) -> _Lazy:
        return self.values(name)

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
        values = self.d.values[node.name]
        seen = glance(values, node.shape) if node.shape else None
        k = seen.pick if seen else 0
        xs = [self.d.values[a] if isinstance(a, str) else sp.Rational(a.numerator, a.denominator) for a in node.args]
        shapes = [self.graph.node(a).shape if isinstance(a, str) else () for a in node.args]
        numbers = op.forward_numbers(k, xs, shapes, sympy_params(node), operand_tex)
        value = number_tex(float(values[k]))
        chain = f" = {numbers} = {value}" if numbers and bare(numbers) != value else f" = {value}"
        if not node.shape:  # a scalar: its one equation, with its numbers
            shown, example = (equation + chain,), None
        else:
            shown = (equation,)
            example = Example(element_tex(node.name, node.shape, k) + chain, element_tex(node.name, node.shape, k),
                              seen.why, _count(seen))
        return ForwardItem(
            node.name, name_tex(node.name), self.graph.grad_fn(node), formula_tex(node), shown,
            numel(node.shape) > 1, 0, tensor_tex(self.values(node.name), node.shape, seen.marks if seen else ()),
            shape_text(node.shape), not node.shape, ", ".join(INDEX_LETTERS[: len(node.shape)]),
            example=example, glance=self.glance(seen, values, node.shape),
        )

    def glance(self, seen: Glance | None, values: np.ndarray, shape: tuple[int, ...]) -> TensorGlance | None:
        """Return what stands out in a tensor whose display leaves entries out."""
        return tensor_glance(seen, values, shape) if seen and elided(shape) else None

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
        adjoint = p.adjoints[node.name]
        seen = glance(adjoint, node.shape) if node.shape else None
        j = seen.pick if seen else 0
        found = None if is_output or not consumers else self.backward_numbers(p, node, consumers, j)
        example, shown = None, (equation,)
        if found is not None:
            numbers, dropped = found
            chain = f" = {numbers} = {number_tex(float(adjoint[j]))}"
            if not node.shape:
                shown = (equation + chain,)
            else:
                element = element_tex(node.name, node.shape, j)
                example = Example(rf"\frac{{\partial {loss}}}{{\partial {element}}}" + chain, element, seen.why,
                                  _count(seen), dropped)
        return BackwardItem(
            node.name, name_tex(node.name), node.is_leaf, is_output,
            tuple(self.graph.grad_fn(c) for c in consumers), tuple(self.graph.rule(c) for c in consumers),
            shown, numel(node.shape) > 1, 0, tensor_tex(_Lazy(adjoint), node.shape, seen.marks if seen else ()),
            shape_text(node.shape), ", ".join(INDEX_LETTERS[: len(node.shape)]),
            example=example, glance=self.glance(seen, adjoint, node.shape),
        )

    def backward_numbers(self, p: BulkPass, node: Node, consumers: list[Node], j: int) -> tuple[str, int] | None:
        """Return what element j of node gets back, as upstream · local terms with numbers, and the zero terms left out.

        The terms are the entries of each consumer's local Jacobian in j's column, so this is
        the generic equation of backward_tex at one element, whatever the op.
        """
        ups, locals_ = [], []
        for c in consumers:
            for a, k, col, value, masked in self.local(c):
                if c.args[a] != node.name:
                    continue
                at = col == j
                local = value[at] if masked is None else np.where(masked[at], 0.0, value[at])
                ups.append(p.adjoints[c.name][k[at]])
                locals_.append(local)
        up, local = np.concatenate(ups), np.concatenate(locals_)
        if not up.size or not np.all(np.isfinite(local)) or not np.all(np.isfinite(up)):
            return None
        live = up != 0
        dropped = int(up.size - live.sum()) if live.any() else 0
        if live.any():
            up, local = up[live], local[live]
        return sum_tex([rf"{operand_tex(float(u))} \cdot {operand_tex(float(v))}" for u, v in zip(up, local)]), dropped

    def local(self, node: Node) -> list:
        """Return a node's local Jacobian (op.array_local), computed once."""
        if node.name not in self._locals:
            xs = [self.d.values[a].reshape(self.graph.node(a).shape) if isinstance(a, str)
                  else sp.Rational(a.numerator, a.denominator) for a in node.args]
            shapes = [self.graph.node(a).shape if isinstance(a, str) else () for a in node.args]
            out = self.d.values[node.name].reshape(node.shape)
            self._locals[node.name] = REGISTRY[node.op].array_local(xs, out, shapes, sympy_params(node))
        return self._locals[node.name]

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
        vjp = p.vjp[leaf.name]
        if p.hooked and jacobian is not None:  # .grad got what the hooks made of the gradient; Jᵀv is the product itself
            vjp = jacobian.transpose_times(np.asarray(p.gradient, dtype=np.float64))
        marks = glance(vjp, leaf.shape).marks  # for one output row, J's columns are the gradient's entries
        by_col = ((), marks) if rows == 1 else ((), ())
        size = rf"{rows} \times {cols}"
        if jacobian is None:
            numeric = rf"J \in \mathbb{{R}}^{{{size}}}"
            jt = r"J^{\mathsf T}"
        elif jacobian.diagonal:
            diag = _diagonal(jacobian)
            numeric = rf"J = \underset{{{size}}}{{\operatorname{{diag}}{corner_matrix(1, cols, lambda r, c: number_tex(diag[c]))}}}"
            jt = rf"\operatorname{{diag}}{corner_matrix(1, cols, lambda r, c: number_tex(diag[c]))}"
        else:
            numeric = rf"J = \underset{{{size}}}{{{corner_matrix(rows, cols, lambda r, c: number_tex(jacobian.entry(r, c)), marks=by_col)}}}"
            jt = corner_matrix(cols, rows, lambda r, c: number_tex(jacobian.entry(c, r)), marks=by_col[::-1])
        v = corner_matrix(rows, 1, lambda r, c: number_tex(float(p.gradient[r])))
        result = corner_matrix(cols, 1, lambda r, c: number_tex(float(vjp[r])), marks=(marks, ()))
        flat = flat_tuple([element_tex(leaf.name, leaf.shape, j) for j in picks(cols)[:3]], cols > 3)
        return JacobianItem(
            leaf.name, name_tex(leaf.name), rows, cols, flat, None, None, numeric,
            rf"J^{{\mathsf T}} v = {jt} {v} = {result}", tensor_tex(_Lazy(vjp), leaf.shape, marks), shape_text(leaf.shape),
            jacobian is not None and jacobian.diagonal and rows > 1,
        )

    # -- the picture and the grads --------------------------------------------

    def picture(self) -> Picture:
        return picture_of(
            self.graph, self.d.passes, values=self.values,
            adjoint=lambda p, name: _Lazy(p.hooked.get(name, (p.adjoints[name],))[-1]) if name in p.adjoints else None, grad=self.grad,
        )

    def grad_items(self) -> tuple[GradItem, ...]:
        return grad_items_of(
            self.graph, self.d.passes, vjp=lambda p, leaf: _Lazy(p.vjp[leaf]) if leaf in p.vjp else None,
            grad=self.grad, telling=True,
        )

    def grad(self, leaf: str) -> _Lazy | None:
        total = self.d.grads.get(leaf)
        return None if total is None else _Lazy(total)


def _count(seen: Glance) -> int:
    """Return how many entries (or rows) stand out as the chosen element does."""
    return len(seen.rows or seen.entries)


def _diagonal(jacobian: Sparse) -> np.ndarray:
    diag = np.zeros(jacobian.cols)
    diag[jacobian.col] = jacobian.value
    return diag
