"""The derivation of large examples: whole tensors at once, by the structure of each op.

An example whose tensors are small is derived exactly, element by element
(generator/engines/exact.py). Beyond SMALL elements per tensor that costs too much, so
here each op's local derivative, written once for a generic element in the op
registry, is evaluated on whole float64 arrays, and the local Jacobians are kept
sparse: an elementwise op's is diagonal, a reduction's has one row per group, a
matmul's has the Kronecker pattern of its products. Adjoints are sparse
vector-Jacobian products; Jacobians are products of the sparse local Jacobians.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from .exact import sympy_params
from ..floats.numeric import rounding
from ..graph.model import Graph, Node, ones_gradient
from ..ops import REGISTRY
from ..ops.base import Local, numel
from ..spec.model import apply_resets, floats, shared
from ..spec.model import Hook, active_hooks

SMALL = 64  # elements per tensor up to which a graph is derived exactly, element by element
MAX_JACOBIAN_ENTRIES = 4_000_000  # non-zero entries of a Jacobian built; beyond, only Jᵀ·v is derived


@dataclass(frozen=True, eq=False)
class Sparse:
    """A Jacobian: its non-zero entries by row and column (row-major order), and its size."""

    rows: int
    cols: int
    row: np.ndarray
    col: np.ndarray
    value: np.ndarray

    def entry(self, r: int, c: int) -> float:
        """Return one entry (0 where none is stored)."""
        key = self.row * self.cols + self.col
        at = np.searchsorted(key, r * self.cols + c)
        return float(self.value[at]) if at < key.size and key[at] == r * self.cols + c else 0.0

    def dense(self) -> np.ndarray:
        """Return the whole matrix (for small sizes and the tests)."""
        out = np.zeros((self.rows, self.cols))
        out[self.row, self.col] = self.value
        return out

    def transpose_times(self, u: np.ndarray) -> np.ndarray:
        """Return Jᵀ·u."""
        return np.bincount(self.col, weights=self.value * u[self.row], minlength=self.cols)

    @property
    def diagonal(self) -> bool:
        """Tell whether every stored entry is on the diagonal of a square J."""
        return self.rows == self.cols and bool(np.all(self.row == self.col))


@dataclass(frozen=True, eq=False)
class BulkPass:
    """One backward call: v, every adjoint, J per leaf (None when too large to build) and Jᵀ·v."""

    call: Any
    gradient: np.ndarray
    implicit: bool
    order: tuple[str, ...]
    adjoints: dict[str, np.ndarray]
    jacobians: dict[str, Sparse | None]
    vjp: dict[str, np.ndarray]
    kinks: tuple[tuple[str, str, np.ndarray], ...]  # (node, note key, output elements)
    hooked: dict[str, tuple[np.ndarray, ...]] = field(default_factory=dict)  # tensor -> its gradient before its hooks, then after each


@dataclass(frozen=True, eq=False)
class Bulk:
    """The derivation of a large example: float64 arrays, flat in row-major order."""

    graph: Graph
    values: dict[str, np.ndarray]
    passes: tuple[BulkPass, ...]
    grads: dict[str, np.ndarray | None]

    large: ClassVar[bool] = True  # float64 arrays, Sparse Jacobians (engines/exact.py: False)


def is_large(graph: Graph) -> bool:
    """Tell whether a graph has a tensor too large to derive element by element."""
    return any(numel(n.shape) > SMALL for n in graph.nodes)


def _operands(node: Node, values: dict[str, np.ndarray], graph: Graph, cast: Cast | None = None) -> list[Any]:
    return [
        values[a].reshape(graph.node(a).shape) if isinstance(a, str)
        else sp.Rational(a.numerator, a.denominator) if cast is None
        else REGISTRY[node.op].dtype_constant(cast, i, a)
        for i, a in enumerate(node.args)
    ]


def operand_shapes(node: Node, graph: Graph) -> list[tuple[int, ...]]:
    return [graph.node(a).shape if isinstance(a, str) else () for a in node.args]


def spec_array(array) -> np.ndarray:
    return floats(array).copy()


class Cast:
    """Floating-point rounding after every op, as torch computes in a dtype (generator/engines/shadow.py)."""

    def __call__(self, array: np.ndarray) -> np.ndarray:
        """Return array rounded to the dtype (kept as float64)."""
        return array

    def constant(self, value: Any) -> sp.Expr:
        """Return a number of the spec (a Fraction) as the dtype holds it, as an exact sympy number."""
        return sp.Rational(value.numerator, value.denominator)

    def params(self, node: Node) -> dict[str, Any]:
        """Return the op's parameters with its numbers as the dtype holds them."""
        return sympy_params(node)

    def forward(self, op: Any, xs: list[Any], shapes: list[tuple[int, ...]], params: dict[str, Any]) -> np.ndarray:
        """Return an op's output as the dtype's kernel computes it, before the final rounding."""
        return op.array_forward(xs, shapes, params)

    def local(self, op: Any, xs: list[Any], out: np.ndarray, shapes: list[tuple[int, ...]],
              params: dict[str, Any]) -> list[Local]:
        """Return an op's local Jacobian as the dtype's backward formula computes it."""
        return op.array_local(xs, out, shapes, params)

    def vjp(self, node: Node, upstream: np.ndarray, out: np.ndarray, operands: list[Any]) -> np.ndarray | None:
        """Return what the node sends back to its operand where the dtype's kernel has its own formula, else None."""
        return None

    def sum(self, index: np.ndarray, terms: np.ndarray, size: int) -> np.ndarray:
        """Return the sums of terms by index, rounded as the dtype's kernel rounds them."""
        return np.bincount(index, weights=terms, minlength=size)

    def broadcast_sum(self, index: np.ndarray, terms: np.ndarray, size: int) -> np.ndarray:
        """Return a gradient summed over broadcast dims, as torch's sum kernel rounds it."""
        return self.sum(index, terms, size)

    def at(self, node: Node) -> None:
        """Say which node the engine works on now (for a message about it)."""


class ArrayEngine:
    """Forward values once; local Jacobians on demand, once per node."""

    def __init__(self, graph: Graph, *, cast: Cast | None = None):
        self.graph = graph
        self.cast = cast
        self.values: dict[str, np.ndarray] = {}
        self.locals: dict[str, list[Local]] = {}
        inputs = {i.name: i for i in graph.spec.inputs}
        for node in graph.nodes:
            if node.is_leaf:
                self.values[node.name] = self._round(spec_array(inputs[node.name].value))
            else:
                op = REGISTRY[node.op]
                if cast is not None:
                    cast.at(node)
                operands, shapes, params = self._operands(node), operand_shapes(node, graph), self._params(node)
                out = op.array_forward(operands, shapes, params) if cast is None else cast.forward(op, operands, shapes, params)
                self.values[node.name] = self._round(np.asarray(out, dtype=np.float64).reshape(-1))

    def _round(self, array: np.ndarray) -> np.ndarray:
        return array if self.cast is None else self.cast(array)

    def _sum(self, index: np.ndarray, terms: np.ndarray, size: int, *, broadcast: bool = False) -> np.ndarray:
        """Return the sums of terms by index; in a cast, as torch's kernel adds them (broadcast: its sum_to_size)."""
        if self.cast is None:
            return np.bincount(index, weights=terms, minlength=size)
        return self.cast.broadcast_sum(index, terms, size) if broadcast else self.cast.sum(index, terms, size)

    def _operands(self, node: Node) -> list[Any]:
        return _operands(node, self.values, self.graph, self.cast)

    def _params(self, node: Node) -> dict[str, Any]:
        return sympy_params(node) if self.cast is None else self.cast.params(node)

    def local(self, node: Node) -> list[Local]:
        if node.name not in self.locals:
            op = REGISTRY[node.op]
            out = self.values[node.name].reshape(node.shape)
            operands, shapes, params = self._operands(node), operand_shapes(node, self.graph), self._params(node)
            found = op.array_local(operands, out, shapes, params) if self.cast is None else self.cast.local(
                op, operands, out, shapes, params)
            self.locals[node.name] = [(a, k, j, self._round(value), masked) for a, k, j, value, masked in found]
        return self.locals[node.name]

    def _fraction(self, node: Node, a: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the local derivative's numerator and denominator where torch's backward divides by it."""
        out = self.values[node.name].reshape(node.shape)
        with rounding(self.cast):
            return REGISTRY[node.op].array_fraction(
                a, self._operands(node), out, operand_shapes(node, self.graph), self._params(node)
            )

    def kinks(self, node: Node) -> list[tuple[str, str, np.ndarray]]:
        op = REGISTRY[node.op]
        out = self.values[node.name].reshape(node.shape)
        found = op.array_kinks(self._operands(node), out, operand_shapes(node, self.graph), self._params(node))
        return [(node.name, key, where) for where, key in found]

    def backward(self, nodes: list[Node], v: np.ndarray, hooks: dict[str, tuple[Hook, ...]] | None = None, *,
                 tracked: bool = False) -> dict[str, np.ndarray]:
        """Propagate v back through nodes (output first): every adjoint, as torch sums them.

        hooks: per tensor, what torch calls on its gradient once complete; self.seen_hooks keeps each step.
        tracked: only the adjoints torch computes, those of tensors that require grad (the others stay zero).
        """
        adj = {n.name: np.zeros(numel(n.shape)) for n in nodes}
        adj[nodes[0].name] = self._round(v.astype(np.float64))
        reached = {nodes[0].name}
        self.seen_hooks: dict[str, tuple[np.ndarray, ...]] = {}
        for node in nodes:
            if hooks and node.name in hooks:
                chain = [adj[node.name]]
                for hook in hooks[node.name]:
                    chain.append(array_hook(self.graph, hook, self.cast)(chain[-1]))
                self.seen_hooks[node.name] = tuple(chain)
                adj[node.name] = chain[-1]
            if node.is_leaf:
                continue
            upstream = adj[node.name]
            if self.cast is not None:
                self.cast.at(node)
            for a, k, j, value, masked in self.local(node):
                parent = node.args[a]
                if parent not in adj or (tracked and not self.graph.node(parent).requires_grad):
                    continue
                with np.errstate(all="ignore"):
                    direct = None if self.cast is None else self.cast.vjp(node, upstream, self.values[node.name],
                                                                          self._operands(node))
                    # the shadow divides as torch does; float64 needs to only where 1/denominator is out of range
                    divide = self.cast is not None or not np.all(np.isfinite(value))
                    fraction = self._fraction(node, a) if divide else None
                    if direct is not None:
                        arrived = direct
                    else:
                        flow = self._round(upstream[k] * value)
                        if fraction is not None:  # torch divides here: grad · numerator / denominator
                            divided = self._round(self._round(upstream[k] * fraction[0][k]) / fraction[1][k])
                            flow = divided if self.cast is not None else np.where(np.isfinite(value), flow, divided)
                        if masked is not None:
                            flow[masked] = 0.0  # torch selects here: nan or inf upstream stops at a masked zero
                        arrived = self._sum(j, flow, adj[parent].size, broadcast=REGISTRY[node.op].broadcasts)
                    # torch keeps the first gradient to arrive as it is (-0.0 stays -0.0), and adds the others
                    first = self.cast is not None and parent not in reached
                    adj[parent] = arrived if first else self._round(adj[parent] + arrived)
                    reached.add(parent)
        return adj

    def jacobians(self, nodes: list[Node], leaves: list[str], *,
                  row: dict[str, np.ndarray] | None = None) -> dict[str, Sparse | None]:
        """Multiply the sparse local Jacobians from the output back to each leaf.

        row: the adjoints of a backward pass from a one-element output with v = 1, which are J's one row.
        """
        out = nodes[0]
        size = numel(out.shape)
        if row is not None and size == 1:
            return {leaf: _dense([row[leaf]]) for leaf in leaves}
        if not self._finite(nodes):
            return self._by_rows(nodes, leaves)
        eye = np.arange(size)
        names = {n.name for n in nodes}
        acc: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {out.name: (eye, eye, np.ones(size))}
        for node in nodes:
            if node.is_leaf or node.name not in acc:
                continue
            here = _coalesce(acc[node.name], size, numel(node.shape))
            for a, k, j, value, masked in self.local(node):
                parent = node.args[a]
                if parent not in names:
                    continue
                if masked is not None:
                    k, j, value = k[~masked], j[~masked], value[~masked]
                product = _product((here.row, here.col, here.value), (k, j, value))
                if product is None:
                    return {leaf: None for leaf in leaves}
                acc[parent] = product if parent not in acc else _concat(acc[parent], product)
        return {
            leaf: _coalesce(acc[leaf], size, numel(self.graph.node(leaf).shape)) if leaf in acc
            else Sparse(size, numel(self.graph.node(leaf).shape), *(np.zeros(0, dtype=np.int64),) * 2, np.zeros(0))
            for leaf in leaves
        }

    def _finite(self, nodes: list[Node]) -> bool:
        """Tell whether every local derivative on the way back is finite.

        torch builds J row by row, a backward pass per output element, so a zero
        upstream meets every local derivative: 0 · inf is nan there, where the sparse
        product has no entry. With an infinite or nan local derivative, J is built as
        torch builds it.
        """
        for node in nodes:
            if not node.is_leaf:
                for _, _, _, value, masked in self.local(node):
                    live = value if masked is None else value[~masked]
                    if not np.all(np.isfinite(live)):
                        return False
        return True

    def _by_rows(self, nodes: list[Node], leaves: list[str]) -> dict[str, Sparse | None]:
        size = numel(nodes[0].shape)
        if size * sum(numel(self.graph.node(leaf).shape) for leaf in leaves) > MAX_JACOBIAN_ENTRIES:
            return {leaf: None for leaf in leaves}
        rows = {leaf: [] for leaf in leaves}
        for r in range(size):
            unit = np.zeros(size)
            unit[r] = 1.0
            adj = self.backward(nodes, unit)
            for leaf in leaves:
                rows[leaf].append(adj[leaf])
        return {leaf: _dense(rows[leaf]) for leaf in leaves}


def _dense(rows: list[np.ndarray]) -> Sparse:
    """Return a Jacobian from its rows, keeping the entries that are not 0 (nan included)."""
    dense = np.array(rows).reshape(len(rows), -1)
    r, c = np.nonzero(dense != 0)
    return Sparse(len(rows), dense.shape[1], r, c, dense[r, c])


def _product(a: tuple, b: tuple) -> tuple | None:
    """Return the entries of A·B for A (rows, cols, values) and B's entries (rows, cols, values)."""
    a_row, a_col, a_val = a
    b_row, b_col, b_val = b
    order = np.argsort(b_row, kind="stable")
    b_row, b_col, b_val = b_row[order], b_col[order], b_val[order]
    starts = np.searchsorted(b_row, a_col, side="left")
    counts = np.searchsorted(b_row, a_col, side="right") - starts
    total = int(counts.sum())
    if total > MAX_JACOBIAN_ENTRIES:
        return None
    pick_a = np.repeat(np.arange(a_row.size), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    pick_b = np.repeat(starts, counts) + offsets
    return a_row[pick_a], b_col[pick_b], a_val[pick_a] * b_val[pick_b]


def _concat(a: tuple, b: tuple) -> tuple:
    return tuple(np.concatenate([x, y]) for x, y in zip(a, b))


def _coalesce(entries: tuple, rows: int, cols: int) -> Sparse:
    """Sum repeated (row, column) entries and drop zeros; keep row-major order."""
    r, c, v = entries
    keys, inverse = np.unique(r * cols + c, return_inverse=True)
    sums = np.bincount(inverse.reshape(-1), weights=v, minlength=keys.size)
    keep = sums != 0
    return Sparse(rows, cols, keys[keep] // cols, keys[keep] % cols, sums[keep])


def derive_bulk(graph: Graph) -> Bulk:
    """Derive values, every backward pass and the leaves' grads on whole arrays."""
    engine = ArrayEngine(graph)
    passes = []
    grads: dict[str, np.ndarray | None] = {i.name: None for i in graph.spec.inputs}
    for i, call in enumerate(graph.spec.backward):
        grads = apply_resets(grads, graph.spec.resets_before(i), lambda leaf, g: np.zeros_like(g))
        out = graph.node(call.output)
        implicit = call.gradient is None
        v = spec_array(ones_gradient(out) if implicit else call.gradient)
        nodes = graph.ancestors(call.output)
        adj = engine.backward(nodes, v, active_hooks(graph.spec, call))
        seen = engine.seen_hooks
        leaves = [n.name for n in nodes if n.is_leaf]
        kinks = tuple(k for n in nodes if not n.is_leaf for k in engine.kinks(n))
        passes.append(BulkPass(
            call=call, gradient=v, implicit=implicit, order=tuple(n.name for n in nodes),
            adjoints={**adj, **{name: chain[0] for name, chain in seen.items()}},
            jacobians=engine.jacobians(nodes, leaves, row=adj if v.size == 1 and v[0] == 1.0 and not seen else None),
            vjp={leaf: adj[leaf] for leaf in leaves}, kinks=kinks,
            hooked=seen,
        ))
        for leaf in leaves:
            if not graph.spec.accumulates(leaf, call.seq):
                continue
            key = graph.spec.identity(leaf)  # a leaf changed in place keeps one .grad
            grads[key] = adj[leaf] if grads[key] is None else grads[key] + adj[leaf]
    grads = shared(grads, graph.spec)
    return Bulk(graph=graph, values=engine.values, passes=tuple(passes), grads=grads)


def array_hook(graph: Graph, hook: Hook, cast: Cast | None):
    """Return what a hook makes of a gradient on float64 arrays, rounded as the cast rounds each op."""
    from ..graph.walk import hook_graph

    mini, out = hook_graph(graph, hook)

    def run(grad: np.ndarray) -> np.ndarray:
        values = {hook.param: grad}
        for node in mini.nodes:
            if node.is_leaf:
                continue
            op = REGISTRY[node.op]
            if cast is not None:
                cast.at(node)
            operands, shapes = _operands(node, values, mini, cast), operand_shapes(node, mini)
            params = sympy_params(node) if cast is None else cast.params(node)
            found = op.array_forward(operands, shapes, params) if cast is None else cast.forward(op, operands, shapes, params)
            found = np.asarray(found, dtype=np.float64).reshape(-1)
            values[node.name] = found if cast is None else cast(found)
        return values[out]

    return run
