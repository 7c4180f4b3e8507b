"""Parts both document builders share: the graph table, the picture, the grads, the rounding note, brief numbers."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import sympy as sp

from ..engines.exact import Derivation, sympy_params
from ..floats.ieee import to_float
from ..graph.model import Node
from ..ops import REGISTRY
from ..ops.base import numel, source_index, unravel
from .latex import corner_cells, decimal, element_tex, name_tex, number_tex, operand_tex, tensor_tex
from .code import gradient_names
from .model import CallItem, Document, GradItem, GraphRow, Note, Picture, PictureEdge, PictureGrad, PictureNode, RoundingNote

if TYPE_CHECKING:
    from ..engines.sparse import Bulk


_TOKEN = re.compile(r"-?(?:inf|nan|\d+\.?\d*(?:e[+-]\d+)?)")


def _tokens(text: str) -> list[str]:
    """Return the numbers of one printed tensor, in order (its dtype suffix left out)."""
    return _TOKEN.findall(text.split("dtype=")[0].removeprefix("tensor("))


def _code_index(name: str, k: int, shape: tuple[int, ...]) -> str:
    return name + "".join(f"[{i}]" for i in unravel(k, shape))


def _short(value: float) -> str:
    return repr(value) if not math.isfinite(value) else f"{value:.6g}"


def rounding_note(derivation: Derivation | Bulk, shade) -> RoundingNote | None:
    """Say where torch's rounding prints another number than the exact derivation, and the first cause."""
    from ..floats.torchprint import THRESHOLD, format_tensor

    spec = derivation.graph.spec
    for inp in spec.inputs:
        ours, exact = shade.grads.get(inp.name), derivation.grads.get(inp.name)
        if not inp.requires_grad or ours is None or exact is None or len(ours) > THRESHOLD:
            continue
        exact = [to_float(v) for v in exact]
        shown = _tokens(format_tensor(ours, inp.value.shape, dtype=spec.dtype))
        plain = _tokens(format_tensor(exact, inp.value.shape, dtype=spec.dtype))
        diff = [k for k, (a, b) in enumerate(zip(shown, plain)) if a != b]
        if not diff or len(shown) != len(ours):
            continue
        k = diff[0]
        note = RoundingNote(
            dtype=spec.dtype, grad=_code_index(f"{inp.name}.grad", k, inp.value.shape),
            shown=shown[k], exact=_short(exact[k]),
        )
        if math.isfinite(ours[k]) and ours[k] != 0:
            return note
        return _with_cause(note, derivation, shade)
    return None


def _with_cause(note: RoundingNote, derivation, shade) -> RoundingNote:
    """Add the first forward value that rounding turned into inf, nan or 0 where the exact one is not."""
    for node in derivation.graph.nodes:
        if node.is_leaf:
            continue
        ours = shade.values[node.name]
        exact = [to_float(v) for v in derivation.values[node.name]]
        for k, (a, b) in enumerate(zip(ours, exact)):
            if math.isfinite(b) and b != 0 and (not math.isfinite(a) or a == 0):
                return RoundingNote(
                    **{**note.params, "node": _code_index(node.name, k, node.shape), "formula": formula_tex(node),
                       "value": _short(float(a)), "exact_value": _short(b)},
                )
    return note


MAX_BRIEF = 4  # rows or columns a box of the picture shows in full; beyond, the ends


def brief_number(value: sp.Expr) -> str:
    """Return a value in plain text to 4 significant digits: 4.5, 0.0002, 1e-05 -> 1e-5."""
    x = to_float(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{x:.4g}"
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + m.group(1).replace("+", "") + m.group(2), text)


def brief_text(values, shape: tuple[int, ...]) -> str:
    """Return a tensor in plain text, as nested lists; long rows show their ends around '…'."""
    if not shape:
        return brief_number(values[0])
    per = len(values) // shape[0]
    parts = ["…" if i is None else brief_text(values[i * per:(i + 1) * per], shape[1:])
             for i in _brief_picks(shape[0])]
    return "[" + ", ".join(parts) + "]"


def brief_tex(values, shape: tuple[int, ...]) -> str:
    """Return a tensor as a small LaTeX matrix; beyond MAX_BRIEF rows or columns, its corners."""
    if not shape:
        return decimal(to_float(values[0]), 4)
    if len(shape) > 2:
        return r"\left[" + brief_text(values, shape).replace("…", r"\ldots ") + r"\right]"
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape
    cells = corner_cells(rows, cols, lambda r, c: decimal(to_float(values[r * cols + c]), 4), _brief_picks)
    return r"\left[\begin{smallmatrix} " + r" \\ ".join(" & ".join(row) for row in cells) + r" \end{smallmatrix}\right]"


def _brief_picks(n: int) -> list[int | None]:
    return list(range(n)) if n <= MAX_BRIEF else [0, 1, None, n - 1]


def shape_text(shape: tuple[int, ...]) -> str:
    """Write a shape for prose: 2×2, 3, or scalar."""
    return "×".join(map(str, shape)) if shape else "scalar"


def graph_rows_of(graph, values) -> tuple[GraphRow, ...]:
    """Return the graph table's rows: values(name) gives a leaf's numbers."""
    rows = []
    for node in graph.nodes:
        if node.is_leaf:
            formula = f"{name_tex(node.name)} = {tensor_tex(values(node.name), node.shape)}"
            grad_fn = "AccumulateGrad" if node.requires_grad else ""
        else:
            formula = formula_tex(node)
            grad_fn = graph.grad_fn(node)
        rows.append(GraphRow(node.name, name_tex(node.name), shape_text(node.shape), formula, grad_fn,
                             node.requires_grad, not node.tracked, node.name != node.step, node.step,
                             computed=not node.is_leaf))
    return tuple(rows)


def picture_of(graph, passes, *, values, adjoint, grad) -> Picture:
    """Return the graph's picture: values(name), adjoint(pass, name) and grad(leaf) give the numbers (or None)."""
    nodes, edges = [], []
    for node in graph.nodes:
        shown = values(node.name)
        grads = []
        if node.is_leaf:
            total = grad(node.name)
            if total is not None:
                grads.append(PictureGrad(0, brief_text(total, node.shape), brief_tex(total, node.shape)))
        else:
            for number, p in enumerate(passes, 1):
                adj = adjoint(p, node.name)
                if adj is not None:
                    grads.append(PictureGrad(number, brief_text(adj, node.shape), brief_tex(adj, node.shape)))
            for parent in dict.fromkeys(node.parents):
                edges.append(PictureEdge(parent, node.name, graph.node(parent).requires_grad))
        nodes.append(PictureNode(
            node.name, name_tex(node.name), shape_text(node.shape), graph.grad_fn(node),
            node.is_leaf, node.requires_grad, brief_text(shown, node.shape), brief_tex(shown, node.shape),
            tuple(grads),
        ))
    return Picture(tuple(nodes), tuple(edges), len(passes))


def grad_items_of(graph, passes, *, vjp, grad) -> tuple[GradItem, ...]:
    """Return each leaf's .grad after every call: vjp(pass, leaf) and grad(leaf) give the numbers (or None)."""
    items = []
    for inp in graph.spec.inputs:
        total = grad(inp.name)
        parts = tuple(tensor_tex(vjp(p, inp.name), inp.value.shape) for p in passes if vjp(p, inp.name) is not None)
        items.append(GradItem(inp.name, name_tex(inp.name), inp.requires_grad, total is not None, parts,
                              tensor_tex(total, inp.value.shape) if total is not None else "",
                              shape_text(inp.value.shape)))
    return tuple(items)


def formula_tex(node: Node) -> str:
    """Return the node as an op of whole tensors: t = y · y."""
    op = REGISTRY[node.op]
    args = [
        name_tex(a) if isinstance(a, str) else operand_tex(sp.Rational(a.numerator, a.denominator))
        for a in node.args
    ]
    return f"{name_tex(node.name)} = {op.latex(args, sympy_params(node))}"


def kink_note(graph, node: Node, key: str, k: int, values) -> Note:
    """Return the note on a kink at output element k: values(name) gives a tensor's numbers, flat."""
    element = element_tex(node.name, node.shape, k)
    arg = node.args[0]
    if REGISTRY[node.op].kink_of_group:
        extreme = values(node.name)[k]
        count = sum(1 for v in values(arg) if v == extreme)
        return Note(key, node.name, element, name_tex(arg), number_tex(extreme), count)
    parent = graph.node(arg)
    j = source_index(unravel(k, node.shape), parent.shape)
    return Note(key, node.name, element, element_tex(arg, parent.shape, j), number_tex(values(arg)[j]), 0)


class DocumentBuilder:
    """What both builders share: the document's outline and each backward call's item.

    A builder gives graph_rows, forward_item, backward_item, jacobian_item, notes, grad_items and picture.
    """

    def __init__(self, derivation: Derivation | Bulk):
        self.d = derivation
        self.graph = derivation.graph

    def document(self, **fields) -> Document:
        """Return the whole document (fields: what every document has besides its items)."""
        return Document(
            graph=self.graph_rows(),
            forward=tuple(self.forward_item(n) for n in self.graph.nodes if not n.is_leaf),
            calls=self.call_items(),
            grads=self.grad_items(),
            picture=self.picture(),
            **fields,
        )

    def call_items(self) -> tuple[CallItem, ...]:
        names = gradient_names(self.graph)
        count = len(self.d.passes)
        return tuple(self.call_item(i, p, names[i], count) for i, p in enumerate(self.d.passes))

    def call_item(self, i: int, p, vname: str | None, count: int) -> CallItem:
        out = self.graph.node(p.call.output)
        loss = name_tex(out.name) if p.implicit else "L"
        items = tuple(self.backward_item(p, self.graph.node(n), loss) for n in p.order)
        jac = tuple(self.jacobian_item(p, out, self.graph.node(leaf)) for leaf in p.vjp
                    if self.graph.node(leaf).requires_grad)
        notes, hidden = self.notes(p)
        return CallItem(
            i + 1, out.name, name_tex(out.name), shape_text(out.shape), numel(out.shape), p.implicit,
            tensor_tex(self.gradient(p), out.shape), vname, loss, items, jac, notes, i < count - 1,
            self.all_at_once(p, out, loss), notes_hidden=hidden,
        )

    def gradient(self, p):
        """Return the call's gradient v as tensor_tex takes it."""
        return p.gradient

    def all_at_once(self, p, out: Node, loss: str) -> tuple[str, ...]:
        """Return the fully substituted expression's derivation, where the builder gives one."""
        return ()
