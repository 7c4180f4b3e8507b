"""What torch computes in a spec's dtype: the graph evaluated op by op, rounded after each op.

The exact derivation gives the true numbers; torch rounds every operand, every result,
every local derivative and every product and sum of the chain rule to its dtype. The
shadow does the same on the float64 array engine (generator/engines/sparse.py): each op is computed
in float64 from operands already in the dtype, then rounded to it. Rounding float64 to
float32 with numpy's astype is the same on every CPU, unlike numpy's own float32 kernels,
so the shadow, and the documents printed from it, never depend on the machine.

Each number also gets a magnitude, a first-order bound on how far rounding can move it:
the sum, over every rounding on its way, of the size of what was rounded times the
derivative that carries it (the condition of the computation). Cancellation, where a
small result comes from large terms, shows as a magnitude far above the result.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from .sparse import Cast, spec_array, ArrayEngine, operand_shapes
from .exact import sympy_params
from ..errors import Problem, SpecError
from ..graph.model import Graph, Node, ones_gradient
from ..floats.numeric import rounding
from ..ops import REGISTRY
from ..ops.base import numel
from ..spec.model import apply_resets, shared
from ..spec.model import active_hooks

SEQUENTIAL = 8  # sums outside torch's sum kernel (softmax's backward, matmul, indexing): in order up to this many terms, then at once
UNIT = {"float32": 2.0**-24, "float64": 2.0**-53}  # the unit roundoff
NORMAL = {"float32": 2.0**-126, "float64": 2.0**-1022}  # the smallest normal number: below it rounding is absolute


VECTOR_BYTES = 32  # torch's sum kernel adds vectors of 32 bytes, on every CPU (measured against torch 2.13 on AVX-512)
ITEM_BYTES = {"float32": 4, "float64": 8}
ILP = 4  # rows of a row sum: four partial sums side by side
LEVELS = 4  # the cascade's levels, each holding the sum of 2**level_power rows of the one below


def cascade_sum(cast: Any, rows: np.ndarray, lanes: int) -> np.ndarray:
    """Sum each row (groups × n) as aten's cascade_sum does for a contiguous row, each addition rounded by cast.

    From n = lanes on, the row is read as vectors of `lanes` elements summed by the cascade, the leftover
    elements added to 0 one by one, then the vector's lanes one by one; a shorter row is summed by the cascade
    itself (ILP partial sums side by side). Rows all of one length, so every step runs on all rows at once.
    """
    groups, n = rows.shape
    if n >= lanes:
        count = n // lanes
        vectors = rows[:, : count * lanes].reshape(groups, count, lanes)
        acc = _row_sum(cast, vectors)
        total = np.zeros(groups)
        for k in range(count * lanes, n):
            total = cast(total + rows[:, k])
        for k in range(lanes):
            total = cast(total + acc[:, k])
        return cast(0.0 + total)
    return cast(0.0 + _row_sum(cast, rows))


def _row_sum(cast: Any, items: np.ndarray) -> np.ndarray:
    """Sum items along axis 1 with ILP partial sums (aten's row_sum); trailing axes (vector lanes) ride along."""
    groups, n = items.shape[:2]
    size = n // ILP
    rows = items[:, : size * ILP].reshape(groups, size, ILP, *items.shape[2:])
    partial = _multi_row_sum(cast, rows)
    for i in range(size * ILP, n):
        partial[:, 0] = cast(partial[:, 0] + items[:, i])
    total = partial[:, 0]
    for k in range(1, ILP):
        total = cast(total + partial[:, k])
    return total


def _multi_row_sum(cast: Any, rows: np.ndarray) -> np.ndarray:
    """Sum rows (groups × size × ILP × ...) into ILP partial sums by aten's multi_row_sum cascade of LEVELS levels."""
    groups, size = rows.shape[:2]
    power = max(4, (max(size - 1, 0)).bit_length() // LEVELS)
    step, mask = 1 << power, (1 << power) - 1
    acc = np.zeros((LEVELS, groups, *rows.shape[2:]))
    i = 0
    while i + step <= size:
        for _ in range(step):
            acc[0] = cast(acc[0] + rows[:, i])
            i += 1
        for j in range(1, LEVELS):
            acc[j] = cast(acc[j] + acc[j - 1])
            acc[j - 1] = 0.0
            if i & (mask << (j * power)):
                break
    for k in range(i, size):
        acc[0] = cast(acc[0] + rows[:, k])
    for j in range(1, LEVELS):
        acc[0] = cast(acc[0] + acc[j])
    return acc[0]


def literal(value: Fraction) -> float:
    """Return a number as Python reads its literal: the nearest float64, inf beyond the range."""
    try:
        return float(value)
    except OverflowError:
        return math.copysign(math.inf, value)


class DtypeCast(Cast):
    """Round to float32 or float64; constants become 0-d arrays, so that x * 0 is nan at inf as in torch."""

    def __init__(self, dtype: str, *, path: str = "", shuffle: np.random.Generator | None = None):
        self.dtype = dtype
        self.path = path
        self.node: Node | None = None
        self.shuffle = shuffle  # set: the sums whose order torch's kernel picks run in random orders (order_spread)
        self.unordered: dict[str, int] = {}  # the nodes with such sums of more than SEQUENTIAL terms: their most terms
        self.sorted: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # _sorting's: by id, the index array and its order

    def at(self, node: Node) -> None:
        self.node = node

    def __call__(self, array: np.ndarray) -> np.ndarray:
        if self.dtype == "float64":
            return np.asarray(array, dtype=np.float64)
        with np.errstate(over="ignore"):
            return np.asarray(array, dtype=np.float64).astype(np.float32).astype(np.float64)

    def constant(self, value: Any) -> Any:
        # torch turns a Python number into the tensor's dtype before the op
        return self(np.array(literal(value)))

    def forward(self, op: Any, xs: list[Any], shapes: list[tuple[int, ...]], params: dict[str, Any]) -> np.ndarray:
        with rounding(self), np.errstate(all="ignore"):
            return op.dtype_forward(self, xs, shapes, params)

    def local(self, op: Any, xs: list[Any], out: np.ndarray, shapes: list[tuple[int, ...]],
              params: dict[str, Any]) -> list:
        with rounding(self), np.errstate(all="ignore"):  # torch rounds inside its backward formulas too
            return op.dtype_local(self, xs, out, shapes, params)

    def vjp(self, node: Node, upstream: np.ndarray, out: np.ndarray, operands: list[Any]) -> np.ndarray | None:
        return REGISTRY[node.op].dtype_vjp(self, upstream, out, node.shape, node.kwargs, operands)

    def broadcast_sum(self, index: np.ndarray, terms: np.ndarray, size: int) -> np.ndarray:
        """Return a gradient summed over the dims a broadcast added, as torch's sum kernel adds it (sum_to_size)."""
        n = index.size // size if size else 0
        if n > 1 and index.size == n * size:
            if np.array_equal(index, np.repeat(np.arange(size), n)):
                return self.inner_sum(np.asarray(terms, dtype=np.float64).reshape(size, n))
            if np.array_equal(index, np.tile(np.arange(size), n)):
                return self.outer_sum(np.asarray(terms, dtype=np.float64).reshape(n, size))
        return self.sum(index, terms, size)

    def order(self, n: int) -> np.ndarray | None:
        """Return the order in which the node being computed adds n terms: random where torch's kernel picks it and
        the cast shuffles, else None (0, 1, 2, ...)."""
        return self.shuffle.permutation(n) if self._shuffled(n) else None

    def _shuffled(self, n: int) -> bool:
        """Tell whether sums of n terms of the node being computed run in random orders; note such sums."""
        node = self.node
        if node is None or n <= SEQUENTIAL or not REGISTRY[node.op].kernel_order:
            return False
        self.unordered[node.name] = max(n, self.unordered.get(node.name, 0))
        return self.shuffle is not None

    def sum(self, index: np.ndarray, terms: np.ndarray, size: int) -> np.ndarray:
        self._refuse_order_dependent(index, terms, size)
        counts = np.bincount(index, minlength=size)
        if counts.size and self._shuffled(int(counts.max())):
            return self._one_by_one(index, terms, size, counts, shuffle=True)
        if counts.size == 0 or counts.max() > SEQUENTIAL:
            return self(np.bincount(index, weights=terms, minlength=size))
        return self._one_by_one(index, terms, size, counts)

    def _one_by_one(self, index: np.ndarray, terms: np.ndarray, size: int, counts: np.ndarray, *,
                    shuffle: bool = False) -> np.ndarray:
        """Return the sums of terms by index, each added one after another in the order given (shuffle: in a random
        order), every addition rounded."""
        order = self._sorting(index)
        terms = np.asarray(terms, dtype=np.float64)[order]
        if shuffle and counts.min() == counts.max():
            # sums all of n terms (a matrix product's), in one random order for all, as a BLAS kernel has one
            grouped = terms.reshape(size, -1)
            picked = self.shuffle.permutation(grouped.shape[1])
            total = grouped[:, picked[0]].copy()
            for r in picked[1:]:
                total = self(total + grouped[:, r])
            return total
        index = index[order]
        if shuffle:
            mixed = self.shuffle.permutation(index.size)
            index, terms = index[mixed], terms[mixed]
            order = np.argsort(index, kind="stable")
            index, terms = index[order], terms[order]
        rank = np.arange(index.size) - np.repeat(np.cumsum(counts) - counts, counts)
        total = np.zeros(size)
        total[index[rank == 0]] = terms[rank == 0]  # a sum of one term is that term, -0.0 included
        for r in range(1, int(counts.max())):
            at = rank == r
            total[index[at]] = self(total[index[at]] + terms[at])
        return total

    def _sorting(self, index: np.ndarray) -> np.ndarray:
        """Return the stable order that sorts index (kept for the index arrays a node's sums share between runs)."""
        key = id(index)
        if key not in self.sorted or self.sorted[key][0] is not index:
            self.sorted[key] = (index, np.argsort(index, kind="stable"))
        return self.sorted[key][1]

    def inner_sum(self, rows: np.ndarray) -> np.ndarray:
        """Return each row's sum as torch's kernel adds a contiguous row (cascade_sum), rounding every addition."""
        self._refuse_order_dependent(np.repeat(np.arange(rows.shape[0]), rows.shape[1]), rows.reshape(-1), rows.shape[0])
        return cascade_sum(self, np.asarray(rows, dtype=np.float64), VECTOR_BYTES // ITEM_BYTES[self.dtype])

    def outer_sum(self, matrix: np.ndarray) -> np.ndarray:
        """Return each column's sum (n rows × m columns) as torch's kernel adds along a strided dim, each addition rounded.

        Columns go in blocks: those of whole blocks of four (of four vectors, from one vector's width on) by the
        cascade over rows, the rest by a row sum of their own; a single column is a contiguous row.
        """
        n, m = matrix.shape
        self._refuse_order_dependent(np.tile(np.arange(m), n), matrix.reshape(-1), m)
        matrix = np.asarray(matrix, dtype=np.float64)
        lanes = VECTOR_BYTES // ITEM_BYTES[self.dtype]
        if m == 1:
            return cascade_sum(self, matrix.T, lanes)
        block = ILP * lanes if m >= lanes else ILP
        cascaded = m // block * block
        out = np.empty(m)
        if cascaded:
            out[:cascaded] = self(0.0 + _multi_row_sum(self, matrix[None, :, :cascaded])[0])
        if cascaded < m:
            out[cascaded:] = self(0.0 + _row_sum(self, matrix[:, cascaded:].T))
        return out

    def refuse(self, what: str) -> None:
        """Refuse the node being computed: what torch does there depends on more than derive models (what says why)."""
        node = self.node
        raise SpecError([Problem(self.path, node.line if node is not None else None,
                                 f"{node.step if node is not None else 'a step'}: {what}")])

    def _refuse_order_dependent(self, index: np.ndarray, terms: np.ndarray, size: int) -> None:
        """Refuse a sum whose result in the dtype depends on the order of its terms (torch's kernels differ by CPU).

        That is where a partial sum can overflow to ±inf in one order and not in another: the positive or
        negative terms alone overflow while the whole sum does not, or an inf term meets terms that overflow
        the other way (inf - inf is nan).
        """
        if self.shuffle is not None or np.all(np.bincount(index, minlength=size) < 2):
            return  # (the first run, in derive's own order, refused or not)
        with np.errstate(all="ignore"):  # no partial sum in any order is larger than the sum of the sizes
            bound = np.bincount(index, weights=np.abs(terms), minlength=size) * (1 + 2**-20)
        if np.all(np.isfinite(self(bound))):
            return
        wide = np.asarray(terms, dtype=np.longdouble)
        with np.errstate(all="ignore"):
            finite = np.where(np.isfinite(wide), wide, 0)
            positive = np.bincount(index, weights=np.maximum(finite, 0).astype(np.float64), minlength=size)
            negative = np.bincount(index, weights=np.minimum(finite, 0).astype(np.float64), minlength=size)
            exact = np.zeros(size, dtype=np.longdouble)
            np.add.at(exact, index, finite)
            up = np.isinf(self(positive)) | (np.bincount(index, weights=(wide == np.inf), minlength=size) > 0)
            down = np.isinf(self(negative)) | (np.bincount(index, weights=(wide == -np.inf), minlength=size) > 0)
            has_inf = np.bincount(index, weights=np.isinf(wide), minlength=size) > 0
            total_fits = np.isfinite(self(exact.astype(np.float64))) & ~has_inf
        both_infs = (np.bincount(index, weights=(wide == np.inf), minlength=size) > 0) & (
            np.bincount(index, weights=(wide == -np.inf), minlength=size) > 0)
        unsure = ((up & down) & ~both_infs) | ((up ^ down) & total_fits)
        if unsure.any():
            node = self.node
            where = f"{node.step}" if node is not None else "a sum"
            raise SpecError([Problem(self.path, node.line if node is not None else None,
                                     f"{where}: a sum here overflows {self.dtype} in some orders of its terms and not"
                                     f" in others, so what torch prints depends on its kernel (allowed: sums whose"
                                     f" positive and negative terms each stay within {self.dtype}'s range)")])

    def params(self, node: Node) -> dict[str, Any]:
        return REGISTRY[node.op].dtype_params(self, sympy_params(node))


@dataclass(frozen=True, eq=False)
class Shadow:
    """Values and leaf grads as torch computes them in dtype, each with its rounding magnitude."""

    dtype: str
    values: dict[str, np.ndarray]
    grads: dict[str, np.ndarray | None]
    value_scale: dict[str, np.ndarray]
    grad_scale: dict[str, np.ndarray | None]
    adjoints: tuple[dict[str, np.ndarray], ...] = ()  # each call's gradient of every tensor it reaches
    hooked: tuple[dict[str, tuple[np.ndarray, ...]], ...] = ()  # each call's gradients before and after each hook
    unordered: tuple[tuple[str, int], ...] = ()  # the nodes whose sums torch's kernel orders (DtypeCast.order): most terms


def shadow(graph: Graph, *, dtype: str | None = None) -> Shadow:
    """Evaluate the graph as torch does in dtype (the spec's by default): values and accumulated grads."""
    dtype = dtype or graph.spec.dtype
    cast = DtypeCast(dtype, path=graph.spec.path)
    engine = ArrayEngine(graph, cast=cast)
    with np.errstate(all="ignore"):
        value_scale = _forward_scale(engine, graph, UNIT[dtype])
        grads, grad_scale, adjoints, hooked = _calls(graph, engine, value_scale)
    return Shadow(dtype=dtype, values=engine.values, grads=grads, value_scale=value_scale, grad_scale=grad_scale,
                  adjoints=adjoints, hooked=hooked, unordered=tuple(cast.unordered.items()))


RUNS = 4  # the other orders order_spread adds the kernel-ordered sums in
SPREAD_FACTOR = 8  # a stated bound: this many times the largest change those orders made to a tensor


@dataclass(frozen=True)
class Spread:
    """How far other orders of the kernel-ordered sums moved each number of a shadow: the largest change seen."""

    values: dict[str, np.ndarray]
    grads: dict[str, np.ndarray | None]
    runs: int = 0  # the orders tried

    def bound(self, name: str, what: str, *, factor: float | None = None) -> float:
        """Return the bound a document states for a tensor's value or grad (what): factor (SPREAD_FACTOR) × its
        largest change, rounded up to two significant digits."""
        found = self.values[name] if what == "value" else self.grads.get(name)
        factor = SPREAD_FACTOR if factor is None else factor
        return 0.0 if found is None or found.size == 0 else rounded_up(factor * float(found.max()))


def rounded_up(x: float) -> float:
    """Return x rounded up to two significant digits (inf and 0 as they are)."""
    if x == 0 or not math.isfinite(x):
        return x
    step = 10.0 ** (math.floor(math.log10(x)) - 1)
    return float(f"{math.ceil(x / step) * step:.2g}") if math.ceil(x / step) * step >= x else x


_SPREADS: "weakref.WeakKeyDictionary[Shadow, Spread]" = weakref.WeakKeyDictionary()


def order_spread(graph: Graph, shade: Shadow, *, runs: int = RUNS) -> Spread:
    """Return how far the order of the sums torch's kernels order moves each number of shade (zero where none).

    torch's BLAS picks the order in which a matrix product adds its terms by CPU and size, so no single order
    is torch's: the graph is run again with those sums in `runs` seeded random orders (the same on every machine),
    everything else as in shade, and each number's largest change is kept. A spread of fewer runs asked for
    before is carried on, not done again.
    """
    found = _SPREADS.get(shade) or Spread({n: np.zeros_like(v) for n, v in shade.values.items()},
                                          {leaf: None if g is None else np.zeros_like(g) for leaf, g in shade.grads.items()})
    if found.runs >= runs or not shade.unordered:
        return found
    values, grads = dict(found.values), dict(found.grads)
    sorted_: dict = {}
    for seed in range(found.runs + 1, runs + 1):
        cast = DtypeCast(shade.dtype, path=graph.spec.path, shuffle=np.random.default_rng(seed))
        cast.sorted = sorted_  # the runs sum by the same index arrays: sort each once
        engine = ArrayEngine(graph, cast=cast)
        with np.errstate(all="ignore"):
            other = _calls(graph, engine, None)[0]
        for n in values:
            values[n] = np.maximum(values[n], _change(engine.values[n], shade.values[n]))
        for leaf, g in other.items():
            if g is not None and grads.get(leaf) is not None:
                grads[leaf] = np.maximum(grads[leaf], _change(g, shade.grads[leaf]))
    _SPREADS[shade] = Spread(values, grads, runs)
    return _SPREADS[shade]


def _change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return |a - b| elementwise: 0 where both are the same inf or nan, inf where only one is finite."""
    with np.errstate(all="ignore"):
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        return np.where(same, 0.0, np.nan_to_num(np.abs(a - b), nan=np.inf))


def _calls(graph: Graph, engine: ArrayEngine, value_scale: dict[str, np.ndarray] | None) -> tuple:
    """Run every backward call on the engine: the leaves' grads, their rounding magnitudes (None without value_scale,
    and then only the adjoints of tensors that require grad), and each call's adjoints and hooked gradients."""
    cast, unit = engine.cast, UNIT[engine.cast.dtype]
    grads: dict[str, np.ndarray | None] = {i.name: None for i in graph.spec.inputs}
    grad_scale: dict[str, np.ndarray | None] = {i.name: None for i in graph.spec.inputs}
    adjoints: list[dict[str, np.ndarray]] = []
    hooked: list[dict[str, tuple[np.ndarray, ...]]] = []
    for i, call in enumerate(graph.spec.backward):
        resets = graph.spec.resets_before(i)
        grads = apply_resets(grads, resets, lambda leaf, g: np.zeros_like(g))
        grad_scale = apply_resets(grad_scale, resets, lambda leaf, g: np.zeros_like(g))
        out = graph.node(call.output)
        v = cast(spec_array(ones_gradient(out) if call.gradient is None else call.gradient))
        nodes = graph.ancestors(call.output)
        adj = engine.backward(nodes, v, active_hooks(graph.spec, call), tracked=value_scale is None)
        adjoints.append(adj)
        hooked.append(engine.seen_hooks)
        scale = {} if value_scale is None else _backward_scale(engine, nodes, adj, value_scale, unit)
        for n in nodes:
            if n.is_leaf and graph.spec.accumulates(n.name, call.seq):
                leaf = graph.spec.identity(n.name)  # a leaf changed in place keeps one .grad
                if grads[leaf] is None:
                    grads[leaf], grad_scale[leaf] = adj[n.name], scale.get(n.name)
                else:
                    grads[leaf] = cast(grads[leaf] + adj[n.name])
                    if value_scale is not None:
                        grad_scale[leaf] = grad_scale[leaf] + scale[n.name] + np.abs(grads[leaf])
    return shared(grads, graph.spec), shared(grad_scale, graph.spec), tuple(adjoints), tuple(hooked)


def _carry(values: np.ndarray, masked: np.ndarray | None, scale: np.ndarray) -> np.ndarray:
    """Return |values| · scale, with 0 where the derivative is a masked zero (nan and inf stop there)."""
    flow = np.where(values == 0, 0.0, np.abs(values) * scale)
    if masked is not None:
        flow = np.where(masked, 0.0, flow)
    return np.where(np.isnan(flow), np.inf, flow)


def _forward_scale(engine: ArrayEngine, graph: Graph, unit: float) -> dict[str, np.ndarray]:
    """Return, per node, how far rounding can move each value: Σ over roundings of |what was rounded| · |its path|."""
    scale: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        out = engine.values[node.name]
        here = unit * np.abs(out)
        if node.is_leaf:
            scale[node.name] = np.zeros(out.size)
            continue
        operands, shapes = engine._operands(node), operand_shapes(node, graph)
        here = here + unit * np.abs(REGISTRY[node.op].dtype_rounding(operands, out, shapes, node.kwargs,
                                                                     normal=NORMAL[engine.cast.dtype]))
        for a, k, j, value, masked in engine.local(node):
            parent = node.args[a]
            if not isinstance(parent, str):
                continue
            x = engine.values[parent]
            # the parent's own error, carried; and the rounding of each term of a sum (|∂out/∂x · x|)
            carried = _carry(value, masked, scale[parent][j] + unit * np.abs(x[j]))
            here = here + np.bincount(k, weights=carried, minlength=out.size) * _terms(k, out.size)
        scale[node.name] = here
    return scale


def _backward_scale(engine: ArrayEngine, nodes: list[Node], adj: dict[str, np.ndarray], value_scale: dict[str, np.ndarray],
                    unit: float) -> dict[str, np.ndarray]:
    """Return, per node of one backward call, how far rounding can move each adjoint."""
    scale = {n.name: np.zeros(numel(n.shape)) for n in nodes}
    for node in nodes:
        if node.is_leaf:
            continue
        upstream, err = adj[node.name], scale[node.name]
        for (a, k, j, value, masked), moved in zip(engine.local(node), _moved(engine, node, value_scale)):
            parent = node.args[a]
            if parent not in scale:
                continue
            size = scale[parent].size
            # the product's rounding, and the local derivative's own error: how far it moves when its
            # operands move by their forward error (1 - y² near y = 1 moves far)
            drift = np.where(np.isnan(moved) & np.isnan(value), 0.0, np.abs(moved - value))
            own = np.abs(upstream[k]) * (unit * np.abs(value) + np.nan_to_num(drift, nan=np.inf))
            own = np.where(upstream[k] == 0, 0.0, own)
            carried = _carry(value, masked, err[k]) + np.where(masked if masked is not None else False, 0.0, own)
            scale[parent] = scale[parent] + np.bincount(j, weights=carried, minlength=size) * _terms(j, size)
            scale[parent] = scale[parent] + unit * np.abs(adj[parent])
            inside = REGISTRY[node.op].vjp_rounding(a, upstream, engine._operands(node), engine.values[node.name],
                                                    operand_shapes(node, engine.graph), engine._params(node))
            if inside is not None:  # a fused kernel's own sums: layer_norm's
                scale[parent] = scale[parent] + unit * np.abs(inside).reshape(-1)
    return scale


def _terms(index: np.ndarray, size: int) -> np.ndarray:
    """Return √(terms summed) per element: the typical growth of rounding over a float sum (kernels sum in blocks)."""
    return np.sqrt(np.maximum(np.bincount(index, minlength=size), 1))


def _moved(engine: ArrayEngine, node: Node, value_scale: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Return the node's local derivatives at operands and output moved by their forward error."""
    graph = engine.graph
    if REGISTRY[node.op].local_from_ties:  # shares of the extreme: they depend on ties, found in the dtype itself
        return [value for _, _, _, value, _ in engine.local(node)]
    operands = [
        x if not isinstance(x, np.ndarray) or not isinstance(name, str)
        else (engine.values[name] + value_scale[name]).reshape(x.shape)
        for x, name in zip(engine._operands(node), node.args)
    ]
    out = (engine.values[node.name] + value_scale[node.name]).reshape(node.shape)
    found = engine.cast.local(REGISTRY[node.op], operands, out, operand_shapes(node, graph), engine._params(node))
    return [value for _, _, _, value, _ in found]
