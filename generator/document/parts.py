"""Parts both document builders share: the graph table, the picture, the grads, the rounding note, brief numbers."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp

from ..engines.exact import Derivation, evaluate, sympy_params
from ..floats.ieee import to_float
from ..graph.model import Node
from ..ops import REGISTRY
from ..ops.base import numel, source_index, unravel
from ..ops.derivatives import same_number
from .glance import Glance, glance
from .latex import INDEX_LETTERS, corner_cells, decimal, elided, gapped, element_tex, name_tex, number_tex, operand_tex, tensor_tex
from .code import gradient_names, plain_dtype, writes_retain
from .model import (
    AgainRow, CallItem, Check, Document, GradItem, TensorGlance, GraphRow, Note, Picture, PictureEdge, PictureGrad, PictureNode, RoundingNote,
    ModuleItem, OrderBound, OrderNote, OrderSum, UpdateItem,
)
from ..spec.model import active_hooks
from .model import HookStep

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


def order_note(graph, shade) -> OrderNote | None:
    """Say where the order torch's kernels add in (BLAS) can change the printed digits, and by how much at most."""
    from ..engines.shadow import RUNS, SPREAD_FACTOR, order_spread

    if not shade.unordered:
        return None
    spec = graph.spec
    shown = [(label, spec.identity(name) if what == "grad" else name, what, graph.node(name).shape, item)
             for label, name, what, item in printed_tensors(spec)]

    def numbers(name: str, what: str):
        return shade.values[name] if what == "value" else shade.grads.get(name)

    # one other order first: where twice the bound it would give moves no printed digit, the order is let be
    probe = order_spread(graph, shade, runs=1)
    if not any(_digits_move(numbers(name, what), probe.bound(name, what, factor=2 * SPREAD_FACTOR), shape, shade.dtype,
                            item) for _, name, what, shape, item in shown):
        return None
    spread = order_spread(graph, shade)
    bounds = []
    for label, name, what, shape, item in shown:
        bound = spread.bound(name, what)
        if bound > 0 and _digits_move(numbers(name, what), bound, shape, shade.dtype, item):
            bounds.append(OrderBound(label, f"{bound:.2g}"))
    if not bounds:
        return None
    sums = tuple(OrderSum(formula_tex(graph.node(name), named=False), terms) for name, terms in shade.unordered)
    return OrderNote(dtype=shade.dtype, sums=sums, bounds=tuple(bounds), runs=RUNS, factor=SPREAD_FACTOR)


def _digits_move(values, by, shape: tuple[int, ...], dtype: str, item: bool, *, factor: float = 1) -> bool:
    """Tell whether moving every number by ±factor · by changes what torch prints of them (item: a Python float)."""
    from ..floats.torchprint import format_tensor

    if values is None or by is None:
        return False
    by = factor * np.asarray(by, dtype=np.float64)
    if item:
        return bool(np.any(by > 0))
    text = format_tensor(values, shape, dtype=dtype)
    with np.errstate(all="ignore"):
        return any(format_tensor(values + sign * by, shape, dtype=dtype) != text for sign in (1, -1))


def printed_tensors(spec) -> list[tuple[str, str, str, bool]]:
    """Return (label, tensor, "value" or "grad", as a Python float) for each tensor whose numbers the example prints,
    once each, in order."""
    from ..spec.model import Shown

    if spec.prints is None:
        return [(f"{i.name}.grad", i.name, "grad", False) for i in spec.inputs if i.requires_grad]
    found = [(f"{part.name}.grad" if part.what == "grad" else part.name, part.name,
              "grad" if part.what == "grad" else "value", part.item or part.formatted)
             for p in spec.prints for part in p.parts
             if isinstance(part, Shown) and part.what in ("value", "data", "grad")]
    return list(dict.fromkeys(found))


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
    """Return a tensor in plain text, as nested lists; long rows show their ends and marked entries around '…'."""
    rows, cols = _brief_marks(values, shape)
    return _brief_text(values, shape, rows, cols)


def _brief_text(values, shape: tuple[int, ...], rows: tuple[int, ...], cols: tuple[int, ...]) -> str:
    if not shape:
        return brief_number(values[0])
    per = len(values) // shape[0]
    marks = cols if len(shape) == 1 else rows
    parts = ["…" if i is None else _brief_text(values[i * per:(i + 1) * per], shape[1:], (), cols)
             for i in _brief_picks(shape[0], marks, across=len(shape) == 1)]
    return "[" + ", ".join(parts) + "]"


def brief_tex(values, shape: tuple[int, ...]) -> str:
    """Return a tensor as a small LaTeX matrix; beyond MAX_BRIEF rows or columns, its corners and marked entries."""
    if not shape:
        return decimal(to_float(values[0]), 4)
    if len(shape) > 2:
        return r"\left[" + brief_text(values, shape).replace("…", r"\ldots ") + r"\right]"
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape
    row_marks, col_marks = _brief_marks(values, shape)
    cells = corner_cells(rows, cols, lambda r, c: decimal(to_float(values[r * cols + c]), 4),
                         lambda n: _brief_picks(n, row_marks), lambda n: _brief_picks(n, col_marks, across=True))
    return r"\left[\begin{smallmatrix} " + r" \\ ".join(" & ".join(row) for row in cells) + r" \end{smallmatrix}\right]"


def _brief_picks(n: int, marks: tuple[int, ...] = (), across: bool = False) -> list[int | None]:
    """Return what a box shows of n: all, or the ends and the marked ones (without marks, the first two).

    Across the box (a vector's elements, a matrix's columns) at most MAX_BRIEF cells fit: the first goes first.
    """
    if n <= MAX_BRIEF:
        return list(range(n))
    if not marks:
        return [0, 1, None, n - 1]
    shown = gapped(sorted({0, n - 1, *marks}))
    if across and len(shown) > MAX_BRIEF:
        shown = [None] + gapped(sorted({n - 1, *marks}))
    return shown


def _brief_marks(values, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Return the rows and columns (of a vector: its elements) a shortened box keeps besides its ends."""
    if not shape or len(shape) > 2 or all(n <= MAX_BRIEF for n in shape):
        return (), ()
    marks = glance(flat_floats(values), shape).marks
    if len(shape) == 1:
        return (), marks
    return tuple(m // shape[1] for m in marks), tuple(m % shape[1] for m in marks)


def flat_floats(values) -> np.ndarray:
    """Return a tensor's values as one float64 array: a large example's array as it is, exact values rounded."""
    inner = getattr(values, "values", None)
    if isinstance(inner, np.ndarray):
        return inner
    return np.array([to_float(v) for v in values], dtype=np.float64)


def shape_text(shape: tuple[int, ...]) -> str:
    """Write a shape for prose: 2×2, 3, or scalar."""
    return "×".join(map(str, shape)) if shape else "scalar"


def graph_rows_of(graph, values) -> tuple[GraphRow, ...]:
    """Return the graph table's rows: values(name) gives a leaf's numbers."""
    from .function import inside_function

    rows = []
    hidden = repeated_nodes(graph)
    for node in graph.nodes:
        if node.name in hidden:
            continue
        if node.is_leaf:
            formula = f"{name_tex(node.name)} = {tensor_tex(values(node.name), node.shape)}"
            grad_fn = "AccumulateGrad" if node.requires_grad else ""
        else:
            formula = formula_tex(node)
            grad_fn = graph.grad_fn(node)
        of = graph.spec.identity(node.name)
        kind = plain_dtype(node)
        shape = shape_text(node.shape) + (f" ({kind})" if kind else "")  # indices and conditions: never differentiated
        rows.append(GraphRow(node.name, name_tex(node.name), shape, formula, grad_fn,
                             node.requires_grad, not node.tracked, node.name != node.step, node.step,
                             computed=not node.is_leaf, version_of="" if of == node.name else of,
                             cut=inside_function(graph, node) or node.cut))
    return tuple(rows)


def picture_of(graph, passes, *, values, adjoint, grad) -> Picture:
    """Return the graph's picture: values(name), adjoint(pass, name) and grad(leaf) give the numbers (or None)."""
    nodes, edges = [], []
    hidden = repeated_nodes(graph)
    for node in reversed(graph.nodes):  # a tensor the picture shows shows its inputs, even a loop's last values
        if node.name not in hidden:
            hidden.difference_update(node.parents)
    for node in graph.nodes:
        if node.name in hidden:
            continue
        shown = values(node.name)
        grads = []
        of = graph.spec.identity(node.name)
        if node.is_leaf:
            total = grad(node.name) if of == node.name else None  # one .grad for all values of a tensor changed in place
            if total is not None:
                grads.append(PictureGrad(0, brief_text(total, node.shape), brief_tex(total, node.shape)))
        else:
            for number, p in enumerate(passes, 1):
                adj = adjoint(p, node.name)
                if adj is not None:
                    grads.append(PictureGrad(number, brief_text(adj, node.shape), brief_tex(adj, node.shape)))
            for parent in dict.fromkeys(node.parents):
                edges.append(PictureEdge(parent, node.name, graph.node(parent).requires_grad and not node.cut))
        nodes.append(PictureNode(
            node.name, name_tex(node.name), shape_text(node.shape), graph.grad_fn(node),
            node.is_leaf, node.requires_grad, brief_text(shown, node.shape), brief_tex(shown, node.shape),
            tuple(grads), "" if of == node.name else of,
        ))
    return Picture(tuple(nodes), tuple(edges), len(passes))


def grad_items_of(graph, passes, *, vjp, grad, telling: bool = False) -> tuple[GradItem, ...]:
    """Return each leaf's .grad after every call: vjp(pass, leaf) and grad(leaf) give the numbers (or None).

    telling: a shortened .grad keeps its telling entries and says what stands out (large examples).
    """
    items = []
    spec = graph.spec
    for inp in spec.inputs:
        if spec.identity(inp.name) != inp.name:
            continue  # values after an in-place update: the same tensor, whose .grad its first node's item shows
        total, shape = grad(inp.name), inp.value.shape
        seen = glance(flat_floats(total), shape) if telling and total is not None and shape else None
        marks = seen.marks if seen else ()
        between = [r for r in spec.resets if r.leaf == inp.name and 0 < r.after < len(passes)]
        since = between[-1].after if between else 0  # the calls before the last reset no longer count
        parts = tuple(tensor_tex(vjp(p, name), shape, marks) for p in passes[since:]
                      for name in _versions(spec, inp.name) if vjp(p, name) is not None)
        after = [r for r in spec.resets if r.leaf == inp.name and r.after == len(passes)]
        items.append(GradItem(inp.name, name_tex(inp.name), inp.requires_grad, total is not None, parts,
                              tensor_tex(total, shape, marks) if total is not None else "", shape_text(shape),
                              tensor_glance(seen, flat_floats(total), shape) if seen and elided(shape) else None,
                              reset_before=since + 1 if between else 0, reset_code=between[-1].code if between else "",
                              reset_after=after[-1].code if after else "",
                              hooked=hooked_on_way(graph, passes[since:], inp.name)))
    for name in dict.fromkeys(r.name for r in spec.retained):
        node = graph.node(name)
        if node.is_leaf:
            continue  # retain_grad() on a leaf changes nothing
        found, total = retained_parts(spec, passes, name)
        since = min(r.after for r in spec.retained if r.name == name)
        own = tuple(dict.fromkeys(n for p in passes[since:] for n in changed_by_hooks(p) if n == name))
        items.append(GradItem(name, name_tex(name), node.requires_grad, total is not None,
                              tuple(tensor_tex(f, node.shape) for f in found),
                              tensor_tex(total, node.shape) if total is not None else "", shape_text(node.shape),
                              retained=True, hooked=own))
    return tuple(items)


MAX_UPDATES = 3  # in-place updates explained one by one; the rest are counted


def update_items(graph, values, hidden: set[str]) -> tuple[tuple[UpdateItem, ...], int]:
    """Return the first in-place updates of leaves (not a loop's later ones), values(name) giving a node's numbers,
    and how many are left."""
    shown = [u for u in graph.spec.updates if u.node not in hidden]
    items = tuple(UpdateItem(u.code, u.line, u.of, u.node, not u.data, tensor_tex(values(u.node), graph.node(u.node).shape),
                             u.requires_grad) for u in shown[:MAX_UPDATES])
    return items, len(graph.spec.updates) - len(items)


def module_items(graph, values) -> tuple[ModuleItem, ...]:
    """Return what each nn.Linear, nn.MSELoss and torch.optim.SGD does, values(name) giving a leaf's numbers."""
    def tex(name: str) -> str:
        return tensor_tex(values(name), graph.node(name).shape)

    items = []
    for m in graph.spec.modules:
        shapes = tuple(shape_text(graph.node(p).shape) for p in m.params)
        item = ModuleItem(m.kind, m.code, m.line, m.name, m.params, shapes, setting=m.setting, zeroed=m.zeroed)
        if m.kind == "linear":
            item = replace(item, values=tuple(tex(p) for p in m.params))
        first = next((u for u in graph.spec.updates if m.params and u.of == m.params[0]), None)
        if m.kind == "sgd" and first is not None:
            item = replace(item, step=first.code, before=tex(first.of), after=tex(first.node))
        items.append(item)
    return tuple(items)


def repeated_nodes(graph) -> set[str]:
    """Return the tensors of a loop's later iterations: made by a line already run, reached by no call explained in full.

    The document explains a loop's first iteration and tabulates the others (call_items' again rows).
    """
    spec = graph.spec
    lines: dict[str, int] = {s.name: s.line for s in spec.steps} | {u.node: u.line for u in spec.updates}
    seen: set[int] = set()
    again: set[str] = set()
    for name in sorted(lines, key=lambda n: _seq(spec, n)):
        if lines[name] in seen:
            again.add(name)
        seen.add(lines[name])
    again = {n.name for n in graph.nodes if n.step in again}
    first = set()
    for i in first_calls(spec):
        first.update(n.name for n in graph.ancestors(spec.backward[i].output))
        first.update(p for n in graph.ancestors(spec.backward[i].output) for p in n.parents)
    return again - first


def _seq(spec, name: str) -> int:
    return next((s.seq for s in spec.steps if s.name == name), None) or next((u.seq for u in spec.updates if u.node == name), 0)


def first_calls(spec) -> list[int]:
    """Return the indices of the backward calls explained in full: each line's first (all of a YAML spec's)."""
    seen, first = set(), []
    for i, call in enumerate(spec.backward):
        if not call.seq or call.line not in seen:
            first.append(i)
        seen.add(call.line)
    return first


def _versions(spec, leaf: str) -> list[str]:
    """Return a leaf's nodes: itself, then its values after each in-place update."""
    return [leaf] + [u.node for u in spec.updates if u.of == leaf]


def retained_parts(spec, passes, name: str) -> tuple[list, list | None]:
    """Return a retained tensor's gradient from each call since retain_grad() that reaches it, and their sum."""
    since = min(r.after for r in spec.retained if r.name == name)
    found = [f for f in (_adjoint_values(p, name) for p in passes[since:]) if f is not None]
    return found, [sum(column) for column in zip(*found)] if found else None


def gradient_after_hooks(p, name: str):
    """Return one call's gradient of a tensor after its hooks ran, flat (None if the call does not reach it)."""
    return _adjoint_values(p, name)


def _adjoint_values(p, name: str):
    """Return one call's gradient of a tensor, flat (None if the call does not reach it)."""
    found = p.adjoints.get(name)
    if found is None:
        return None
    if name in getattr(p, "hooked", {}):  # what the tensor's hooks made of it: what retain_grad() keeps
        return list(p.hooked[name][-1])
    return list(found) if isinstance(found, np.ndarray) else [a.value for a in found]


def tensor_glance(seen: Glance, values: np.ndarray, shape: tuple[int, ...]) -> TensorGlance:
    """Return what stands out in a tensor (its glance), written for a sentence."""
    def at(k: int) -> str:
        return ", ".join(map(str, unravel(k, shape)))

    rows = []
    for r in seen.rows:
        row = values[r * shape[1]:(r + 1) * shape[1]]
        rows.append((str(r), number_tex(float(row[0])) if np.all(row == row[0]) else ""))
    named = values[list(seen.entries)] if seen.entries else values[:0]
    return TensorGlance(
        seen.kind, seen.size, seen.nonzero, "" if seen.kind == "spread" else number_tex(seen.baseline),
        () if seen.rows else tuple((at(k), number_tex(float(values[k]))) for k in seen.entries), tuple(rows),
        bool(np.all(named < 0)) if named.size else False, number_tex(float(values[seen.low])), at(seen.low),
        number_tex(float(values[seen.high])), at(seen.high), number_tex(seen.norm),
    )


def _nest(items: list[str], shape: tuple[int, ...]) -> str:
    """Write flat items as a nested Python list of shape (a bare item for a scalar)."""
    if not shape:
        return items[0]
    size = numel(shape[1:])
    return "[" + ", ".join(_nest(items[i * size:(i + 1) * size], shape[1:]) for i in range(shape[0])) + "]"


def formula_tex(node: Node, *, named: bool = True) -> str:
    """Return the node as an op of whole tensors: t = y · y (without named: y · y)."""
    op = REGISTRY[node.op]
    args = [
        name_tex(a) if isinstance(a, str) else operand_tex(sp.Rational(a.numerator, a.denominator))
        for a in node.args
    ]
    formula = op.latex(args, sympy_params(node))
    return f"{name_tex(node.name)} = {formula}" if named else formula


def kink_note(graph, node: Node, key: str, k: int, values) -> Note:
    """Return the note on a kink at output element k: values(name) gives a tensor's numbers, flat."""
    element = element_tex(node.name, node.shape, k)
    arg = node.args[0]
    if REGISTRY[node.op].kink_of_group:
        extreme = values(node.name)[k]
        members = [j for j, v in enumerate(values(arg)) if same_number(v, extreme)]
        j = members[0] if members else 0
        local = _local_at(graph, node, k, j, values)
        return Note(key, node.name, element, name_tex(arg), number_tex(extreme), len(members), local)
    parent = graph.node(arg)
    j = source_index(unravel(k, node.shape), parent.shape)
    local = _local_at(graph, node, k, j, values)
    return Note(key, node.name, element, element_tex(arg, parent.shape, j), number_tex(values(arg)[j]), 0, local)


def _local_at(graph, node: Node, k: int, j: int, values) -> str:
    """Return d node[k] / d first operand[j] as torch takes it, LaTeX: the op's derivative at the derivation's values."""

    holders, env, shapes = [], {}, []
    for position, a in enumerate(node.args):
        numbers = values(a) if isinstance(a, str) else [sp.Rational(a.numerator, a.denominator)]
        fresh = [sp.Dummy(f"a{position}_{i:06d}") for i in range(len(numbers))]
        holders.append(fresh)
        env.update(zip(fresh, (_exact(v) for v in numbers)))
        shapes.append(graph.node(a).shape if isinstance(a, str) else ())
    outs = [sp.Dummy(f"o_{i:06d}") for i in range(numel(node.shape))]
    env.update(zip(outs, (_exact(v) for v in values(node.name))))
    for out, a, index, d in REGISTRY[node.op].partials(holders, outs, shapes, sympy_params(node)):
        if (out, a, index) == (k, 0, j):
            return number_tex(evaluate(d, env))
    return number_tex(sp.Integer(0))  # the element does not reach this output


def _exact(v) -> sp.Expr:
    """Return a value as a sympy number (a large example's values are floats)."""
    if isinstance(v, sp.Basic):
        return v
    x = float(v)
    if math.isnan(x):
        return sp.nan
    if math.isinf(x):
        return sp.oo if x > 0 else -sp.oo
    return sp.Rational(x)


def weighted_sum(out: Node) -> str:
    """Return L = sum v * out with both indexed as the output is: v_{ij} C_{ij} for a matrix."""
    v, y = element_tex("v", out.shape, None), element_tex(out.name, out.shape, None)
    if not out.shape:
        return rf"L = {v} \, {y}"
    return rf"L = \sum_{{{','.join(INDEX_LETTERS[: len(out.shape)])}}} {v} \, {y}"


class DocumentBuilder:
    """What both builders share: the document's outline and each backward call's item.

    A builder gives graph_rows, forward_item, backward_item, jacobian_item, notes, grad_items and picture.
    """

    def __init__(self, derivation: Derivation | Bulk):
        self.d = derivation
        self.graph = derivation.graph

    def document(self, **fields) -> Document:
        """Return the whole document (fields: what every document has besides its items)."""
        rows = self.graph_rows()
        hidden = repeated_nodes(self.graph)
        updates, more = update_items(self.graph, self.leaf_values, hidden)
        fields.setdefault("hooked", any(changed_by_hooks(p) for p in self.d.passes))
        return Document(
            modules=module_items(self.graph, self.leaf_values),
            updates=updates,
            updates_hidden=more,
            repeated=tuple(n.name for n in self.graph.nodes if n.name in hidden),
            graph=rows,
            forward=tuple(self.forward_item(n) for n in self.graph.nodes if not n.is_leaf and n.name not in hidden),
            calls=self.call_items(),
            grads=self.grad_items(),
            picture=self.picture(),
            check=self.check(fields.get("dtype", "float32")),
            **fields,
        )

    def leaf_values(self, name: str):
        """Return a leaf's numbers, as tensor_tex takes them."""
        return self.d.values[name]

    def call_items(self) -> tuple[CallItem, ...]:
        names = gradient_names(self.graph)
        count = len(self.d.passes)
        first = first_calls(self.graph.spec)
        items = [self.call_item(i, p, names[i], count) if i in first else self.again_item(i, p, first)
                 for i, p in enumerate(self.d.passes)]
        for i, item in enumerate(items):
            if item.again_of:
                head = items[item.again_of - 1]
                items[item.again_of - 1] = replace(head, again=head.again + (self.again_row(i, self.d.passes[i]),))
        for i, item in enumerate(items):
            same = next((c for c in items[:i] if not c.repeat_of and not c.again_of and not item.again_of
                         and (c.output, c.gradient) == (item.output, item.gradient)), None)
            if same is not None:
                items[i] = replace(item, repeat_of=same.number)
        return tuple(items)

    def check(self, dtype: str) -> Check | None:
        """Return a change the reader can try on the first call, with the gradient the derivation gives for it."""
        if not self.d.passes or self.d.large:  # a large tensor's gradients do not fit a sentence
            return None
        if any(changed_by_hooks(q) for q in self.d.passes):  # a hook's g + 100 does not double when v does
            return None
        p = self.d.passes[0]
        leaf = next((self.graph.node(i.name) for i in self.graph.spec.inputs if i.requires_grad and i.name in p.vjp), None)
        if leaf is None:
            return None
        repeats = all(q.call.output == p.call.output and q.call.gradient == p.call.gradient for q in self.d.passes)
        if not repeats or any(r.leaf == leaf.name for r in self.graph.spec.resets):
            return None  # "each call adds the same" would not hold
        found = self.changed_input(p, leaf) if p.implicit else None
        if found is not None:
            return found
        if len(self.d.passes) > 1:  # another v for the first call would change what the later calls add to
            return None
        out = self.graph.node(p.call.output)
        suffix = ", dtype=torch.float64" if dtype == "float64" else ""
        if p.implicit:
            call = f"{out.name}.backward(torch.tensor({_nest(['2.'], out.shape)}{suffix}))"
            values = [2 * v for v in self.vjp_values(p, leaf.name)]
            return Check("scale", leaf.name, "", "", "", "", tensor_tex(values, leaf.shape), call)
        row = self.jacobian_row(p, leaf.name)
        if row is None:
            return None
        unit = _nest(["1." if k == 0 else "0." for k in range(numel(out.shape))], out.shape)
        call = f"{out.name}.backward(torch.tensor({unit}{suffix}))"
        return Check("unit", leaf.name, "", "", "", "", tensor_tex(row, leaf.shape), call)

    def changed_input(self, p, leaf: Node) -> Check | None:
        """Return the check that changes one input element, where the builder has the gradient as a formula."""
        return None

    def vjp_values(self, p, leaf: str):
        """Return one call's Jᵀv for a leaf, flat."""
        return list(p.vjp[leaf])

    def jacobian_row(self, p, leaf: str):
        """Return the first row of a call's Jacobian for a leaf, flat (None when it is not known)."""
        return list(p.jacobians[leaf][0])

    def call_item(self, i: int, p, vname: str | None, count: int) -> CallItem:
        out = self.graph.node(p.call.output)
        loss = name_tex(out.name) if p.implicit else "L"
        items = self.hook_steps(i, p, tuple(self.backward_item(p, self.graph.node(n), loss) for n in p.order))
        jac = tuple(self.jacobian_item(p, out, self.graph.node(leaf)) for leaf in p.vjp
                    if self.graph.node(leaf).requires_grad)
        notes, hidden = self.notes(p)
        whole, left = self.all_at_once(p, out, loss)
        return CallItem(
            i + 1, out.name, name_tex(out.name), shape_text(out.shape), numel(out.shape), p.implicit,
            tensor_tex(self.gradient(p), out.shape), vname, loss, items, jac, notes, writes_retain(p.call, i, count - 1),
            whole, notes_hidden=hidden, weighted=weighted_sum(out), all_at_once_hidden=left, hooked=changed_by_hooks(p),
        )

    def again_item(self, i: int, p, first: list[int]) -> CallItem:
        """Return a loop's later call, shown as a row of its line's first call."""
        head = max(k for k in first if k < i and self.d.passes[k].call.line == p.call.line)
        out = self.graph.node(p.call.output)
        return CallItem(i + 1, out.name, name_tex(out.name), shape_text(out.shape), numel(out.shape), p.implicit, "",
                        None, "", (), (), (), False, (), again_of=head + 1)

    def again_row(self, i: int, p) -> AgainRow:
        """Return a loop's later call's numbers: its output, and what it adds to each leaf's .grad."""
        out = self.graph.node(p.call.output)
        grads = tuple((self.graph.spec.identity(leaf), tensor_tex(self.vjp_values(p, leaf), self.graph.node(leaf).shape))
                      for leaf in p.vjp if self.graph.node(leaf).requires_grad)
        return AgainRow(i + 1, out.name, tensor_tex(self.leaf_values(out.name), out.shape), grads)

    def hook_steps(self, i: int, p, items: tuple) -> tuple:
        """Return the backward items with what each tensor's hooks do to its gradient in call i."""
        from .code import hook_lines

        hooks = active_hooks(self.graph.spec, p.call)
        if not hooks:
            return items
        lines = {}
        if any(h.prints for found in hooks.values() for h in found):
            from ..engines.shadow import shadow

            lines = hook_lines(self.d, shadow(self.graph))  # the printed block shows torch's rounding
        done = []
        for item in items:
            chain = p.hooked.get(item.name)
            found = hooks.get(item.name, ())
            if chain is None or not found:
                done.append(item)
                continue
            shape = self.graph.node(item.name).shape
            steps = tuple(HookStep(
                hook.function or (f"lambda {hook.param}: {hook.expr}" if hook.expr else f"lambda {hook.param}: print(...)"),
                hook.param, tensor_tex(chain[k], shape), tensor_tex(chain[k + 1], shape), bool(hook.expr),
                _differs(chain[k], chain[k + 1]), item.is_leaf, lines.get((i, item.name, k), ()), k + 1, len(found),
            ) for k, hook in enumerate(found))
            done.append(replace(item, hooks=steps))
        return tuple(done)

    def gradient(self, p):
        """Return the call's gradient v as tensor_tex takes it."""
        return p.gradient

    def all_at_once(self, p, out: Node, loss: str) -> tuple[tuple[str, ...], int]:
        """Return the fully substituted expression's derivation, where the builder gives one, and the partials left out."""
        return (), 0


def flat_tuple(elements: list[str], more: bool) -> str:
    """Write a flattened tensor's elements as (x_{00}, x_{01}, ...) for inside $...$, a formula per element.

    Each element closes and reopens the math, so a long tuple breaks between elements (TeX never breaks
    inside \\left( ... \\right), and runs off the page); the message puts the outer dollars.
    """
    return "(" + "$, $".join(elements) + ("$, $\\ldots" if more else "") + ")"



def _differs(a, b) -> bool:
    """Tell whether two gradients differ in any element (a hook's g + 0 changes nothing)."""
    return [str(x) for x in np.asarray(a, dtype=object).ravel()] != [str(x) for x in np.asarray(b, dtype=object).ravel()]


def changed_by_hooks(p) -> tuple[str, ...]:
    """Return the tensors whose hooks changed their gradient in one call."""
    return tuple(name for name, chain in getattr(p, "hooked", {}).items() if _differs(chain[0], chain[-1]))


def hooked_on_way(graph, passes, leaf: str) -> tuple[str, ...]:
    """Return the tensors whose hooks changed a gradient on its way back to a leaf (the leaf's own included)."""
    found: list[str] = []
    for p in passes:
        for name in changed_by_hooks(p):
            if name == leaf or leaf in {n.name for n in graph.ancestors(name)}:
                found.append(name)
    return tuple(dict.fromkeys(found))
