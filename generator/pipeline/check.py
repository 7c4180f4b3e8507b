"""Run an example in real torch and compare it with the derivation."""

from __future__ import annotations

import contextlib

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..floats.ieee import to_float
from ..errors import TorchMissing
from ..graph.model import Graph, ones_gradient
from ..ops import REGISTRY
from ..ops.base import numel
from ..spec.model import floats
from .script import first_difference, torch_labels

if TYPE_CHECKING:
    from ..engines.sparse import Bulk
    from ..engines.exact import Derivation
    from ..engines.shadow import Shadow

RTOL = 1e-7
ATOL = 1e-10
MAX_DENSE = 1_000_000  # Jacobian entries compared one by one; a larger J is compared through PROBES products
PROBES = 3  # random vectors u for which Jᵀ·u is compared with torch's, when J is too large to compare whole


@dataclass(frozen=True)
class Probe:
    """Jᵀ·u as torch computes it, for a Jacobian too large to compare entry by entry."""

    u: list[float]
    product: list[float]


@dataclass(frozen=True)
class TorchRun:
    """What torch computed: values, leaf grads after every call, and Jacobians per call."""

    values: dict[str, list[float]]
    grads: dict[str, list[float] | None]
    jacobians: tuple[dict[str, list[list[float]] | tuple[Probe, ...]], ...]
    labels: dict[str, tuple[str | None, bool, bool]] = field(default_factory=dict)  # (grad_fn, requires_grad, is_leaf)


def import_torch() -> Any:
    """Import torch, or raise TorchMissing with what to do."""
    try:
        import torch
    except ImportError:
        raise TorchMissing(
            "derive check needs PyTorch, which is not installed: pip install torch==2.13.0"
        ) from None
    return torch


def forward(torch: Any, graph: Graph, leaves: dict[str, Any]) -> dict[str, Any]:
    """Compute every node with torch, from the given leaf tensors."""
    tensors = dict(leaves)
    for node in graph.nodes:
        if node.is_leaf:
            continue
        args = [tensors[a] if isinstance(a, str) else float(a) for a in node.args]
        with torch.no_grad() if node.cut in ("no_grad", "grad") else contextlib.nullcontext():
            tensors[node.name] = REGISTRY[node.op].run(torch, args, node.kwargs)
    return tensors


def run(graph: Graph, *, dtype: str = "float64", jacobians: bool = True) -> TorchRun:
    """Run the example's forward and backward calls in torch."""
    torch = import_torch()
    tdtype = getattr(torch, dtype)
    leaves = {
        i.name: torch.tensor(floats(i.value), dtype=tdtype)
        .reshape(i.value.shape)
        .requires_grad_(i.requires_grad)
        for i in graph.spec.inputs
    }
    tensors = forward(torch, graph, leaves)
    want, jacobians = jacobians, []
    spec = graph.spec
    for i, call in enumerate(spec.backward):
        for reset in spec.resets_before(i):
            if reset.clear:
                leaves[reset.leaf].grad = None
            else:
                leaves[reset.leaf].grad.zero_()
        out = graph.node(call.output)
        gradient = call.gradient or ones_gradient(out)
        v = torch.tensor(floats(gradient), dtype=tdtype).reshape(out.shape)
        kept = {name: t.grad for name, t in leaves.items()}
        for t in leaves.values():
            t.grad = None
        handles = [tensors[h.name].register_hook(_hook(torch, graph, h)) for h in graph.spec.hooks if h.active(call)]
        tensors[call.output].backward(v, retain_graph=True)
        for handle in handles:
            handle.remove()
        for name, t in leaves.items():  # a leaf changed in place is one tensor to torch: its versions share .grad
            first = spec.identity(name)
            added, t.grad = t.grad, kept[name] if name == first else None
            if added is not None and spec.accumulates(name, call.seq):
                held = leaves[first].grad
                leaves[first].grad = added if held is None else held + added
        if want:
            jacobians.append(_jacobians(torch, graph, leaves, call.output))
    return TorchRun(
        values={n.name: _flat(tensors[n.name]) for n in graph.nodes},
        grads={name: None if leaves[spec.identity(name)].grad is None else _flat(leaves[spec.identity(name)].grad)
               for name in leaves},
        jacobians=tuple(jacobians),
        labels=torch_labels(tensors),
    )


def _hook(torch: Any, graph: Graph, hook: Any) -> Any:
    """Return a hook for torch that computes what the example's hook returns, with torch's own ops."""
    from ..graph.walk import hook_graph

    mini, out = hook_graph(graph, hook)

    def run(grad: Any) -> Any:
        return forward(torch, mini, {hook.param: grad})[out] if hook.expr else None

    return run


def _jacobians(torch: Any, graph: Graph, leaves: dict[str, Any], output: str) -> dict[str, Any]:
    names = [n for n, t in leaves.items() if t.requires_grad]
    size = numel(graph.node(output).shape)
    if size * sum(numel(leaves[n].shape) for n in names) > MAX_DENSE:
        return _probes(torch, graph, leaves, output, names)

    def f(*xs: Any) -> Any:
        return forward(torch, graph, {**leaves, **dict(zip(names, xs))})[output]

    inputs = tuple(leaves[n].detach() for n in names)
    result = torch.autograd.functional.jacobian(f, inputs)
    return {
        n: j.reshape(size, numel(leaves[n].shape)).tolist() for n, j in zip(names, result)
    }


def _probes(torch: Any, graph: Graph, leaves: dict[str, Any], output: str, names: list[str]) -> dict[str, Any]:
    """Return, per leaf, Jᵀ·u for a few random u: one backward pass each, as torch's own."""
    fresh = {n: t.detach().clone().requires_grad_(t.requires_grad) for n, t in leaves.items()}
    out = forward(torch, graph, fresh)[output]
    rng = np.random.default_rng(0)
    probes: dict[str, list[Probe]] = {n: [] for n in names}
    for _ in range(PROBES):
        u = rng.standard_normal(out.numel())
        grads = torch.autograd.grad(
            out, [fresh[n] for n in names], torch.tensor(u, dtype=out.dtype).reshape(out.shape),
            retain_graph=True, allow_unused=True,
        )
        for n, g in zip(names, grads):
            product = [0.0] * numel(leaves[n].shape) if g is None else _flat(g)
            probes[n].append(Probe(u.tolist(), product))
    return {n: tuple(p) for n, p in probes.items()}


def _flat(t: Any) -> list[float]:
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def close(a: float, b: float) -> bool:
    """Compare two floats the way the check does: nan equals nan, infinities exactly."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= ATOL + RTOL * abs(b)


def far(ours: Any, theirs: Any) -> np.ndarray:
    """Return the flat positions where two arrays differ, compared as `close` does."""
    a = np.asarray(ours, dtype=np.float64).reshape(-1)
    b = np.asarray(theirs, dtype=np.float64).reshape(-1)
    with np.errstate(invalid="ignore"):
        same = np.where(
            np.isnan(a) | np.isnan(b), np.isnan(a) & np.isnan(b),
            np.where(np.isinf(a) | np.isinf(b), a == b, np.abs(a - b) <= ATOL + RTOL * np.abs(b)),
        )
    return np.flatnonzero(~same)


SLACK = 8  # times the rounding magnitude a shadow number may differ from torch's (kernels differ by an ulp or two)
TINY = {"float32": 2.0**-149, "float64": 2.0**-1074}  # the smallest subnormal: sums of zeros may differ by one


def loose(ours: Any, theirs: Any, scale: Any, *, dtype: str) -> np.ndarray:
    """Return the flat positions where a shadow and torch differ: inf and nan exactly, finite within the scale."""
    a = np.asarray(ours, dtype=np.float64).reshape(-1)
    b = np.asarray(theirs, dtype=np.float64).reshape(-1)
    finite = np.isfinite(a) & np.isfinite(b)
    with np.errstate(invalid="ignore", over="ignore"):
        tol = np.nan_to_num(np.asarray(scale, dtype=np.float64).reshape(-1), nan=np.inf) * SLACK + TINY[dtype]
        same = np.where(
            finite, np.abs(a - b) <= tol,
            (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b)),
        )
    return np.flatnonzero(~same)


def compare_shadow(shade: Shadow, torch_run: TorchRun, graph: Graph) -> list[str]:
    """Return one line per number where derive's prediction in the spec's dtype and torch's differ."""
    diffs: list[str] = []

    def cmp(label: str, ours: Any, theirs: Any, scale: Any, shape: tuple[int, ...]) -> None:
        a, b = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
        for k in loose(a, b, scale, dtype=shade.dtype):
            diffs.append(
                f"{label}{_index(int(k), shape)} in {shade.dtype}: predicted {float(a[k])!r}, torch {float(b[k])!r}"
            )

    for node in graph.nodes:
        cmp(node.name, shade.values[node.name], torch_run.values[node.name], shade.value_scale[node.name], node.shape)
    for leaf, grad in shade.grads.items():
        theirs = torch_run.grads[leaf]
        if grad is not None and theirs is not None:
            cmp(f"{leaf}.grad", grad, theirs, shade.grad_scale[leaf], graph.node(leaf).shape)
    return diffs


def compare_printed(ours: str, theirs: str, blocks: list[tuple[str, str]]) -> list[str]:
    """Return one line naming the first printed line where the document's block and torch's output differ."""
    found = first_difference(ours, theirs)
    if found is None:
        return []
    number, a, b = found
    where, end = "", 0
    for code, text in blocks:
        end += text.count("\n") + 1
        if number <= end:
            where = f" ({code})"
            break
    shown = lambda line: "nothing" if line is None else repr(line)  # noqa: E731
    return [f"printed line {number}{where}: predicted {shown(a)}, torch {shown(b)}"]


def compare_labels(rows: Any, labels: dict[str, tuple[str | None, bool, bool]]) -> list[str]:
    """Return one line per tensor whose grad_fn, requires_grad or is_leaf the document states otherwise than torch."""
    diffs = []
    for row in rows:
        stated = (None if row.is_leaf else row.grad_fn, row.requires_grad, row.is_leaf)
        real = labels.get(row.name)
        if real is not None and tuple(real) != stated:
            diffs.append(f"{row.name}: the document says {_label(stated)}; torch {_label(real)}")
    return diffs


def _label(label: tuple[str | None, bool, bool]) -> str:
    return f"grad_fn={label[0]}, requires_grad={label[1]}, is_leaf={label[2]}"


def _floats(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    return np.array([to_float(v) for v in values], dtype=np.float64)


def _dense(jacobian: Any, rows: int, cols: int, *, large: bool) -> np.ndarray:
    """Return a derived J as an array: from a large example's Sparse, or the exact rows."""
    if jacobian is None:
        return np.zeros((rows, cols))
    if large:
        return jacobian.dense()
    return np.array([[to_float(x) for x in row] for row in jacobian], dtype=np.float64).reshape(rows, cols)


def rounded_away(ours: Any, theirs: Any, predicted: Any, scale: Any) -> np.ndarray:
    """Return a mask of the positions where float64 rounding explains why an exact number and torch's differ.

    That is where derive's own float64 prediction (op by op, as torch rounds) agrees with torch, and the
    exact number is within that prediction's rounding bound of it, or where floating point itself leaves
    the exact value (a cancellation to 0, inf, nan) and the prediction says so.
    """
    a, b = np.asarray(ours, dtype=np.float64).reshape(-1), np.asarray(theirs, dtype=np.float64).reshape(-1)
    p = np.asarray(predicted, dtype=np.float64).reshape(-1)
    with np.errstate(over="ignore"):
        bound = np.nan_to_num(np.asarray(scale, dtype=np.float64).reshape(-1), nan=np.inf) * SLACK + TINY["float64"]
    agrees = np.ones(b.size, dtype=bool)
    agrees[loose(p, b, scale, dtype="float64")] = False
    with np.errstate(invalid="ignore", over="ignore"):
        within = np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= bound)
    return agrees & (within | ~np.isfinite(b) | ~np.isfinite(a))


def compare(derivation: Derivation | Bulk, torch_run: TorchRun, rounding: Shadow | None = None) -> list[str]:
    """Return one line per number where the derivation (exact or bulk) and torch disagree.

    With rounding (derive's float64 prediction of torch), a difference that float64 rounding explains,
    as `rounded_away` decides, is not one: the document prints that prediction and says where it departs.
    """
    diffs: list[str] = []
    graph = derivation.graph

    rounded: dict[str, set[int]] = {}  # per leaf, the grad elements where rounding explains a difference

    def cmp(label: str, ours: Any, theirs: Any, shape: tuple[int, ...], predicted: tuple[Any, Any] = (None, None),
            leaf: str = "") -> None:
        a, b = _floats(ours), np.asarray(theirs, dtype=np.float64)
        explained = None if predicted[0] is None else rounded_away(a, b, *predicted)
        for k in far(a, b):
            if explained is None or not explained[k]:
                diffs.append(f"{label}{_index(int(k), shape)}: derived {float(a[k])!r}, torch {float(b[k])!r}")
            else:
                rounded.setdefault(leaf, set()).add(int(k))

    def value(name: str) -> tuple[Any, Any]:
        return (None, None) if rounding is None else (rounding.values[name], rounding.value_scale[name])

    def grad_of(leaf: str) -> tuple[Any, Any]:
        return (None, None) if rounding is None else (rounding.grads.get(leaf), rounding.grad_scale.get(leaf))

    for node in graph.nodes:
        cmp(node.name, derivation.values[node.name], torch_run.values[node.name], node.shape, value(node.name))
    for leaf, grad in derivation.grads.items():
        theirs = torch_run.grads[leaf]
        if (grad is None) != (theirs is None):
            diffs.append(f"{leaf}.grad: derived {'None' if grad is None else 'a tensor'}, torch {'None' if theirs is None else 'a tensor'}")
        elif grad is not None:
            cmp(f"{leaf}.grad", grad, theirs, graph.node(leaf).shape, grad_of(leaf), leaf)
    for i, (p, theirs) in enumerate(zip(derivation.passes, torch_run.jacobians), start=1):
        rows = numel(graph.node(p.call.output).shape)
        for leaf, expected in theirs.items():
            label = f"call {i}: d{p.call.output}/d{leaf} (Jacobian)"
            cols = numel(graph.node(leaf).shape)
            ours = p.jacobians.get(leaf)  # None: this call does not reach the leaf, so J is zero
            if isinstance(expected, tuple):
                for n, probe in enumerate(expected, start=1):
                    product = _product(ours, p, leaf, np.array(probe.u), cols, large=derivation.large)
                    if product is None:
                        diffs.append(f"{label}: too large to build, so Jᵀ·u cannot be compared")
                        break
                    cmp(f"{label} Jᵀ·u for random u #{n} ", product, probe.product, graph.node(leaf).shape)
                continue
            dense = _dense(ours, rows, cols, large=derivation.large)
            table = np.asarray(expected, dtype=np.float64).reshape(rows, cols)
            for k in far(dense, table):
                r, c = divmod(int(k), cols)
                if c in rounded.get(leaf, ()):  # the rounding that explains the leaf's grad explains its column
                    continue
                diffs.append(f"{label} [{r},{c}]: derived {float(dense[r, c])!r}, torch {float(table[r, c])!r}")
    return diffs


def _product(ours: Any, p: Any, leaf: str, u: np.ndarray, cols: int, *, large: bool) -> np.ndarray | None:
    """Return Jᵀ·u from a derived J, or None where J was too large to build."""
    if ours is None:
        return None if leaf in p.jacobians else np.zeros(cols)
    if large:
        return ours.transpose_times(u)
    return _dense(ours, u.size, cols, large=large).T @ u


def _index(k: int, shape: tuple[int, ...]) -> str:
    from ..ops.base import unravel

    if not shape:
        return "" if k == 0 else f"[{k}]"
    return "[" + ",".join(map(str, unravel(k, shape))) + "]"


def compare_functionals(spec: Any) -> list[str]:
    """Return where a printed jacobian, vjp or jvp's derivation (f's values, J, Jᵀv) differs from float64 torch."""
    from ..engines.functional import solve
    from ..engines.shadow import shadow
    from ..spec.model import Functional

    diffs = []
    for p in spec.prints or ():
        for part in p.parts:
            if isinstance(part, Functional):
                solved = solve(spec, part)
                found = compare(solved.derivation, run(solved.graph, dtype="float64"),
                                shadow(solved.graph, dtype="float64"))
                diffs += [f"{part.kind} at line {part.line}: {d}" for d in found]
    return diffs


SHOWN_BEYOND = 5  # numbers beyond a stated bound named one by one; the rest counted


def within_order(graph: Graph, shade: Shadow, torch_run: TorchRun, note: Any) -> tuple[Shadow, list[str]]:
    """Return shade with torch's numbers in the tensors the document's order note bounds, where the order of a
    kernel's sums moves them; and one line per such number of torch's beyond the bound the note states.

    The first, printed as the document prints, must be exactly what torch printed: then the block and torch's
    output differ only in digits the note allows for.
    """
    from dataclasses import replace

    from ..document.parts import printed_tensors
    from ..engines.shadow import order_spread

    spec, spread = graph.spec, order_spread(graph, shade)
    values, grads = dict(shade.values), dict(shade.grads)
    bounded = {b.label for b in note.bounds}
    diffs: list[str] = []
    for label, name, what, _ in printed_tensors(spec):
        if label not in bounded:
            continue
        key = spec.identity(name) if what == "grad" else name
        ours = shade.values[key] if what == "value" else shade.grads.get(key)
        theirs = torch_run.values.get(key) if what == "value" else torch_run.grads.get(key)
        moved = spread.values[key] if what == "value" else spread.grads.get(key)
        if ours is None or theirs is None or moved is None:
            continue
        theirs = np.asarray(theirs, dtype=np.float64).reshape(-1)
        bound = spread.bound(key, what)
        with np.errstate(all="ignore"):
            beyond = np.flatnonzero((moved > 0) & ~(np.abs(theirs - ours) <= bound))
        shape = graph.node(name).shape
        diffs += [f"{label}{_index(int(k), shape)} in {shade.dtype}: predicted {float(ours[k])!r}, torch"
                  f" {float(theirs[k])!r}, beyond the ±{bound:.2g} the document states" for k in beyond[:SHOWN_BEYOND]]
        if beyond.size > SHOWN_BEYOND:
            diffs.append(f"{label}: {beyond.size - SHOWN_BEYOND} more numbers beyond ±{bound:.2g}")
        mixed = np.where(moved > 0, theirs, ours)
        if what == "value":
            values[key] = mixed
        else:
            grads[key] = mixed
    return replace(shade, values=values, grads=grads), diffs
