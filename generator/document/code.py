"""The runnable torch code of an example, and what it prints."""

from __future__ import annotations

import ast
import math
from dataclasses import replace
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from ..engines.exact import Derivation
from ..floats.ieee import to_float
from ..graph.model import Function, Graph, Node
from ..ops import REGISTRY
from ..ops.base import numel
from ..spec.model import Array, Call, Compared, Floats, Functional, Print, Shown, apply_resets
from ..spec.model import active_hooks
from ..floats.torchprint import format_bools, format_ints, format_tensor

if TYPE_CHECKING:
    from ..engines.shadow import Shadow


def literal(value: Fraction) -> str:
    """Write a number as a float literal, exactly as the spec gave it (1 -> 1., 0.1 -> 0.1)."""
    if value.denominator == 1:
        return f"{value.numerator}."
    q, twos, fives = value.denominator, 0, 0
    while q % 2 == 0:
        q, twos = q // 2, twos + 1
    while q % 5 == 0:
        q, fives = q // 5, fives + 1
    if q != 1:
        return repr(float(value))
    places = max(twos, fives)
    scaled = abs(value.numerator) * 10**places // value.denominator
    digits = str(scaled).rjust(places + 1, "0")
    text = f"{digits[:-places]}.{digits[-places:]}".rstrip("0")
    return ("-" if value < 0 else "") + text


def short_literal(value: Fraction, dtype: str) -> str:
    """Write a number as literal does, or, where that is long, as the shortest literal torch reads back as the same
    number of the dtype (a float32 linspace point 0.2617993950843811035... is 0.2617994 to torch)."""
    text = literal(value)
    if len(text) <= SHORT or dtype != "float32":
        return text
    with np.errstate(over="ignore"):  # beyond float32's range: torch reads the literal as inf, written as it is
        if float(np.float32(float(value))) != value:
            return text
    single = np.float32(float(value))
    short = min(np.format_float_positional(single, unique=True, trim="0"),
                np.format_float_scientific(single, unique=True, trim="0"), key=len)
    return short if len(short) < len(text) and Fraction(float(np.float32(float(short)))) == value else text


def nested(array: Array, dtype: str = "float64") -> str:
    """Write an array's values as a nested Python list (or a bare number for 0-d)."""
    items = [short_literal(v, dtype) for v in array.values]

    def build(shape: tuple[int, ...], flat: list[str]) -> str:
        if not shape:
            return flat[0]
        size = numel(shape[1:])
        return "[" + ", ".join(build(shape[1:], flat[i * size:(i + 1) * size]) for i in range(shape[0])) + "]"

    return build(array.shape, items)


def _tensor_code(array: Array, *, dtype: str, requires_grad: bool, drawn: str = "", drawn_args: tuple = (),
                 file: str = "") -> str:
    extras = ([] if dtype == "float32" else ["dtype=torch.float64"]) + (["requires_grad=True"] if requires_grad else [])
    tail = "".join(", " + e for e in extras)
    if file:  # the values of a .npy file beside the spec, in the spec's dtype whatever the file's
        return f'torch.tensor(numpy.load("{file}"), dtype=torch.{dtype}{", requires_grad=True" if requires_grad else ""})'
    if drawn.endswith("_"):  # torch.empty(2, 3).normal_(0., 0.02): filled in place, so requires_grad comes after
        dims = ", ".join(str(n) for n in array.shape) or "()"
        made = f"torch.empty({dims}{', dtype=torch.float64' if dtype == 'float64' else ''})"
        return f"{made}.{drawn}({', '.join(literal(a) for a in drawn_args)}){'.requires_grad_()' if requires_grad else ''}"
    if drawn:  # torch.randn(2, 3, ...): the numbers are torch's own after torch.manual_seed
        return f"torch.{drawn}({', '.join(str(n) for n in array.shape) or '()'}{tail})"
    held = array.values
    values = {held.fill} if isinstance(held, Floats) and held.fill is not None else set(held)
    dims = ", ".join(str(n) for n in array.shape)
    if len(array.values) > 1 and values == {Fraction(1)}:
        return f"torch.ones({dims}{tail})"
    if len(array.values) > 1 and values == {Fraction(0)}:
        return f"torch.zeros({dims}{tail})"
    if len(array.values) > 4 and len(values) == 1:
        shape = "(" + dims + ("," if len(array.shape) == 1 else "") + ")"
        return f"torch.full({shape}, {literal(array.values[0])}{tail})"
    return f"torch.tensor({nested(array, dtype)}{tail})"


def _integer_code(array: Array, *, drawn: str = "", drawn_args: tuple = ()) -> str:
    """Return an int64 tensor as torch code: torch.tensor([1, 0, 2]) (Python's integers make int64), or its draw."""
    if drawn == "randperm":
        return f"torch.randperm({array.shape[0]})"
    if drawn == "picked":  # Yb = Ytr[ix]: the rows of one int64 tensor that another picks
        return f"{drawn_args[0]}[{drawn_args[1]}]"
    if drawn == "randint":
        low, high = (int(a) for a in drawn_args)
        return f"torch.randint({low}, {high}, ({', '.join(str(n) for n in array.shape)}{',' if len(array.shape) == 1 else ''}))"
    def build(shape: tuple[int, ...], flat: list[str]) -> str:
        if not shape:
            return flat[0]
        size = len(flat) // shape[0]
        return "[" + ", ".join(build(shape[1:], flat[i * size:(i + 1) * size]) for i in range(shape[0])) + "]"

    return f"torch.tensor({build(array.shape, [str(int(v)) for v in array.values])})"


def gradient_names(graph: Graph) -> list[str | None]:
    """Name the gradient tensor of each backward call (None where torch supplies 1)."""
    taken = {n.name for n in graph.nodes}
    explicit = [c for c in graph.spec.backward if c.gradient is not None]
    names, counter = [], 0
    for call in graph.spec.backward:
        if call.gradient is None:
            names.append(None)
            continue
        while True:
            counter += 1
            name = "v" if len(explicit) == 1 and counter == 1 else f"v{counter}"
            if name not in taken:
                taken.add(name)
                names.append(name)
                break
    return names


def writes_retain(call: Call, i: int, last: int) -> bool:
    """Tell whether the code writes retain_graph=True on call i: a Python example's as written, a YAML spec's on all but the last."""
    return call.retain and (i < last or call.seq > 0)


def torch_code(graph: Graph) -> str:
    """Return the example as a runnable Python script, its statements in the example's order."""
    spec = graph.spec
    events: list[tuple[float, list[str], bool]] = []  # (statement count, lines, inside torch.no_grad())
    versions = {u.node: u.of for u in spec.updates}
    if spec.seed is not None:
        events.append((0, [f"torch.manual_seed({spec.seed})"], False))
    for inp in spec.inputs:
        if inp.name in versions:
            continue  # made by its update, below
        made = inp.requires_grad and not inp.grad_from
        tensor = (_integer_code(inp.value, drawn=inp.drawn, drawn_args=inp.drawn_args) if inp.integer else
                  _tensor_code(inp.value, dtype=spec.dtype, requires_grad=made and not inp.parameter, drawn=inp.drawn,
                               drawn_args=inp.drawn_args, file=inp.file))
        if inp.parameter:  # a Parameter requires grad unless told
            tensor = f"torch.nn.Parameter({tensor}{'' if inp.requires_grad else ', requires_grad=False'})"
        events.append((inp.seq, [f"{inp.name} = {tensor}"], False))
        if inp.requires_grad and inp.grad_from:
            events.append((inp.grad_from, [f"{inp.name}.requires_grad_(True)"], False))
    steps = {s.name: s for s in spec.steps}
    hidden = {h for a in spec.applied for h in a.hidden}  # a Function's forward and backward: its class says them
    for f in spec.functions:
        events.append((f.seq, ["", *f.code.splitlines(), ""], False))
    for name, expr in graph.code:
        if name not in hidden:
            events.append((steps[name].seq, [f"{name} = {_first_names(expr, versions)}"], steps[name].no_grad))
    events += [(u.seq, [u.code], not u.data and u.requires_grad is None) for u in spec.updates]
    names = gradient_names(graph)
    last = len(spec.backward) - 1
    for i, (call, vname) in enumerate(zip(spec.backward, names)):
        lines, args = [], []
        if vname:  # ones(len(y)) of a 1-d y is ones_like(y)
            made = f"torch.ones_like({call.like})" if call.like else _tensor_code(call.gradient, dtype=spec.dtype,
                                                                                  requires_grad=False)
            lines.append(f"{vname} = {made}")
            args.append(vname)
        if writes_retain(call, i, last):
            args.append("retain_graph=True")
        lines.append(f"{call.output}.backward({', '.join(args)})")
        events.append((call.seq, lines, False))
    for p in spec.prints or ():  # f of several statements given to jacobian, vjp or jvp: its def as run, above the print
        for part in p.parts:
            if isinstance(part, Functional) and part.definition:
                events.append((p.seq, ["", *part.definition, ""], False))
    events += [(item.seq, [item.code], False) for item in (*(spec.prints or ()), *spec.resets, *spec.retained)]
    events += [(hook.seq, list(hook.code), False) for hook in spec.hooks]
    events += [(hook.removed, [f"{hook.handle}.remove()"], False) for hook in spec.hooks if hook.removed]
    if spec.prints is None:  # the example prints nothing itself: each leaf's grad, at the end
        events.append((math.inf, [f"print({inp.name}.grad)" for inp in spec.inputs if inp.requires_grad], False))
    lines = ["import numpy", "import torch", ""] if any(i.file for i in spec.inputs) else ["import torch", ""]
    quiet = False
    for _, code, inside in sorted(events, key=lambda e: e[0]):  # stable: a YAML spec's stay in the order above
        if inside and not quiet:
            lines.append("with torch.no_grad():")
        quiet = inside
        lines += [("    " if inside else "") + line for line in code]
    return "\n".join(lines) + "\n"


def _first_names(expr: str, versions: dict[str, str]) -> str:
    """Return a step's code with each leaf changed in place named by its first node: one tensor to torch."""
    if not versions:
        return expr
    tree = ast.parse(expr, mode="eval")
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            n.id = versions.get(n.id, n.id)
    return ast.unparse(tree)


SHORT = 12  # characters: a longer literal of a float32 number is written as its shortest form
ADDRESS = "0x..."  # how a printed block writes a memory address


def printed(derivation: Derivation, shade: Shadow | None = None) -> str:
    """Return what the script prints, as torch formats it.

    shade: the values and grads as torch computes them in the spec's dtype (generator/engines/shadow.py);
    without it, the derivation's own.
    """
    return "\n".join(text for _, text in printed_blocks(derivation, shade)) + "\n"


def printed_blocks(derivation: Derivation, shade: Shadow | None = None) -> list[tuple[str, str]]:
    """Return, in order, each print of the script: (its code, what it writes without the last newline)."""
    graph = derivation.graph
    spec = graph.spec
    prints = spec.prints
    if prints is None:
        prints = tuple(Print((Shown(i.name, "grad"),), len(spec.backward), f"print({i.name}.grad)", i.line)
                       for i in spec.inputs if i.requires_grad)
    grads_after = _Grads(derivation, shade)
    out = []
    for p in prints:
        text = "".join(part if isinstance(part, str) else _show(part, p.after, p.seq, derivation, shade, grads_after)
                       for part in p.parts)
        out.append((p.seq if spec.prints is not None else math.inf, p.code, text))  # each leaf's grad: at the end
    out += [(call.seq, code, text) for call, code, text, _ in hook_prints(derivation, shade)]
    return [(code, text) for _, code, text in sorted(out, key=lambda o: o[0])]  # stable: a call's hooks in order


def hook_lines(derivation: Derivation, shade: Shadow | None = None) -> dict[tuple[int, str, int], tuple[int, ...]]:
    """Return the lines (from 1) of the printed block that each hook's prints write: by (call, tensor, hook's place)."""
    spec = derivation.graph.spec
    texts = [text for _, text in printed_blocks(derivation, shade)]
    hooks = [(call.seq, tag) for call, _, _, tag in hook_prints(derivation, shade)]
    seqs = [p.seq for p in spec.prints] if spec.prints is not None else [math.inf] * (len(texts) - len(hooks))
    tags = sorted([(seq, None) for seq in seqs] + hooks, key=lambda t: t[0])  # as printed_blocks orders them
    found: dict[tuple[int, str, int], tuple[int, ...]] = {}
    line = 1
    for (_, tag), text in zip(tags, texts):
        count = text.count("\n") + 1
        if tag is not None:
            found[tag] = found.get(tag, ()) + tuple(range(line, line + count))
        line += count
    return found


def _show(shown: Shown | Compared | Functional, after: int, seq: int, derivation: Derivation, shade: Shadow | None,
          grads_after: "_Grads") -> str:
    """Return what printing one thing of a tensor writes."""
    graph = derivation.graph
    if isinstance(shown, Compared):
        return _compare(shown, after, seq, derivation, shade, grads_after)
    if isinstance(shown, Functional):
        from ..engines.functional import functional_text
        return functional_text(graph.spec, shown, shade=shade is not None)
    node = graph.node(shown.name)
    dtype = graph.spec.dtype
    if shown.what == "is_leaf":
        return str(not node.tracked)
    if shown.what == "shape":
        return f"torch.Size([{', '.join(str(n) for n in node.shape)}])"
    early = node.is_leaf and seq < next((i.grad_from for i in graph.spec.inputs if i.name == node.name), 0)
    if shown.what == "requires_grad":  # early: printed before the code's requires_grad_(True)
        return str(node.requires_grad and not early)
    if shown.what == "grad_fn":  # torch writes the object's address, which changes every run
        return _function_text(graph, graph.function(node.name, shown.path))
    if shown.what == "next_functions":  # a tuple of (function, output number) pairs
        entries = [f"({_function_text(graph, f)}, 0)" for f in graph.linked(graph.function(node.name, shown.path))]
        return f"({', '.join(entries)}{',' if len(entries) == 1 else ''})"
    if shown.what in ("value", "data"):
        values = derivation.values[node.name] if shade is None else shade.values[node.name]
        kind = plain_dtype(node)
        if kind:  # indices and conditions: torch writes each as str() of an int or a bool, no suffix
            flat = [int(v) if kind == "int64" else bool(v) for v in _flat(values)]
            if shown.item or (shown.formatted and not node.shape):
                return str(flat[0])
            return (format_ints if kind == "int64" else format_bools)(flat, node.shape)
        if shown.item or (shown.formatted and not node.shape):  # torch formats a 0-d tensor as its item()
            return _number_text(_in_dtype(_flat(values)[0], dtype), shown.spec)
        if shown.what == "data" or early:  # the same numbers, detached: no grad_fn, no requires_grad
            return format_tensor([to_float(v) for v in _flat(values)], node.shape, dtype=dtype)
        text = format_tensor([to_float(v) for v in _flat(values)], node.shape, dtype=dtype,
                             requires_grad=node.requires_grad, grad_fn=graph.grad_fn(node) or None)
        made = next((i for i in graph.spec.inputs if i.name == node.name), None)
        return "Parameter containing:\n" + text if made is not None and made.parameter else text
    grad = grads_after.at(node, after, seq)
    if grad is None:
        return "None"
    if shown.item or (shown.formatted and not node.shape):
        return _number_text(_in_dtype(_flat(grad)[0], dtype), shown.spec)
    return format_tensor([to_float(v) for v in _flat(grad)], node.shape, dtype=dtype)


def plain_dtype(node: Node) -> str:
    """Return "int64" for an index or target, "bool" for a condition, or "" for a float tensor."""
    return "int64" if node.integer else "bool" if node.op and REGISTRY[node.op].boolean else ""


def _function_text(graph: Graph, function: Function) -> str:
    """Return what print() writes of one of torch's autograd functions: <MulBackward0 object at 0x...>, or None."""
    return "None" if function is None else f"<{graph.function_repr(function)} object at {ADDRESS}>"


def _compare(compared: Compared, after: int, seq: int, derivation: Derivation, shade: Shadow | None,
             grads_after: "_Grads") -> str:
    """Return what print(a == b) writes: each side computed as torch does in the dtype, then compared elementwise."""
    from ..engines.shadow import shadow
    from ..graph.walk import comparison_graph, comparison_sides

    graph = derivation.graph
    values = {}
    for placeholder, name, what in compared.refs:
        node = graph.node(name)
        if what == "value":
            found = derivation.values[name] if shade is None else shade.values[name]
        else:
            found = grads_after.at(node, after, seq)
            if found is None:
                return "False"  # torch: a tensor == None is False
        values[placeholder] = Array(node.shape, tuple(Fraction(to_float(v)) for v in _flat(found)))
    mini = comparison_graph(graph, compared, values)
    sides = shadow(mini)
    shape = mini.node("d").shape
    left, right = (np.broadcast_to(np.asarray(sides.values[k], dtype=np.float64).reshape(mini.node(k).shape), shape)
                   for k in comparison_sides(compared))
    return format_bools((left == right).ravel().tolist(), shape)


def _number_text(value: float, spec: str) -> str:
    """Return how Python writes a float: repr, or as an f-string's format asks (.4f)."""
    return format(value, spec) if spec else repr(value)


def _in_dtype(value, dtype: str) -> float:
    """Return a number as torch's item() gives it: rounded to the dtype, as a Python float."""
    x = to_float(value)
    return float(np.float32(x)) if dtype == "float32" else x


def _flat(values) -> list:
    return np.asarray(values).ravel().tolist() if isinstance(values, np.ndarray) else list(values)


class _Grads:
    """The leaves' grads after the first k backward calls: the final ones, or those of the first k calls alone."""

    def __init__(self, derivation: Derivation, shade: Shadow | None):
        self.derivation, self.shade, self.cache = derivation, shade, {}

    def at(self, node, k: int, seq: int):
        """Return a tensor's .grad where statement seq runs, after k calls: a leaf's with resets, else what it retained."""
        if not node.is_leaf:
            return self.retained(node.name, k, seq)
        spec = self.derivation.graph.spec
        grads = apply_resets(self(k), spec.resets_before(k, seq), lambda leaf, g: [0.0] * len(_flat(g)))
        return grads.get(spec.identity(node.name))  # a leaf changed in place keeps one .grad

    def retained(self, name: str, k: int, seq: int):
        """Return a computed tensor's .grad after k calls: None, unless retain_grad() kept its gradients since."""
        spec = self.derivation.graph.spec
        since = [r.after for r in spec.retained if r.name == name and (r.after < k or r.seq < seq)]
        if not since:
            return None  # torch warns that a non-leaf's .grad is not kept, and gives None
        total = None
        for j in range(min(since), k):
            if self.shade is not None:
                part = self.shade.adjoints[j].get(name)
            else:
                found = self.derivation.passes[j].adjoints.get(name)
                part = None if found is None else (found if isinstance(found, np.ndarray) else [a.value for a in found])
                if name in self.derivation.passes[j].hooked:  # after the tensor's hooks, as retain_grad() keeps it
                    part = list(self.derivation.passes[j].hooked[name][-1])
            if part is None:
                continue
            if total is None:
                total = part
            elif self.shade is not None:
                total = np.asarray(total) + np.asarray(part)
                total = total.astype(np.float32).astype(np.float64) if spec.dtype == "float32" else total
            else:
                total = [a + b for a, b in zip(total, part)]
        return total

    def __call__(self, k: int) -> dict:
        graph = self.derivation.graph
        if k == len(graph.spec.backward):
            return self.derivation.grads if self.shade is None else self.shade.grads
        if k == 0:
            return {}
        if k not in self.cache:
            from ..engines.exact import derive
            from ..engines.shadow import shadow
            from ..engines.sparse import derive_bulk, is_large

            prefix = replace(graph, spec=replace(graph.spec, backward=graph.spec.backward[:k]))
            if self.shade is not None:
                self.cache[k] = shadow(prefix).grads
            else:
                self.cache[k] = (derive_bulk(prefix) if is_large(prefix) else derive(prefix)).grads
        return self.cache[k]


def hook_prints(derivation: Derivation, shade: Shadow | None = None) -> list[tuple[Call, str, str, tuple[int, str, int]]]:
    """Return what hooks print during each backward call, in torch's order: (the call, the print's code, its text, and
    which hook: the call's index, the tensor, the hook's place among the tensor's)."""
    graph = derivation.graph
    found = []
    for i, call in enumerate(graph.spec.backward):
        active = active_hooks(graph.spec, call)
        if not any(h.prints for found_ in active.values() for h in found_):
            continue  # nothing to print (and a Shadow made without hooks need not know them)
        hooked = derivation.passes[i].hooked if shade is None else shade.hooked[i]
        for name in hook_order(graph, call.output):
            for k, hook in enumerate(active.get(name, ())):
                grad = hooked[name][k]
                for p in hook.prints:
                    found.append((call, p.code, "".join(
                        part if isinstance(part, str) else _gradient_text(grad, graph.node(name).shape, graph.spec.dtype,
                                                                          formatted=part.formatted)
                        for part in p.parts), (i, name, k)))
    return found


def _gradient_text(grad, shape: tuple[int, ...], dtype: str, *, formatted: bool) -> str:
    """Return how print writes a gradient a hook receives: a tensor without grad_fn (a float in an f-string, if 0-d)."""
    if formatted and not shape:
        return _number_text(_in_dtype(_flat(grad)[0], dtype), "")
    return format_tensor([to_float(v) for v in _flat(grad)], shape, dtype=dtype)


def hook_order(graph: Graph, output: str) -> list[str]:
    """Return the tensors of a backward call in the order torch's engine completes their gradients (and runs their hooks).

    A tensor's gradient is complete once every op that uses it has sent its part back; the op then joins
    torch's ready queue (a std::priority_queue), which hands out the op made last first, and a leaf's
    accumulation before any op. Ties (two leaves) come out as that heap orders them, so it is kept here as it is.
    """
    nodes = graph.ancestors(output)
    names = {n.name for n in nodes}
    made = {n.name: i for i, n in enumerate(graph.nodes)}
    rank = {n.name: math.inf if n.is_leaf else made[n.name] for n in nodes}
    waiting = {n.name: 0 for n in nodes}
    for node in nodes:
        for parent in dict.fromkeys(node.parents):
            if parent in names:
                waiting[parent] += 1
    heap, order = [output], []
    while heap:
        name = _pop(heap, rank)
        order.append(name)
        for parent in dict.fromkeys(graph.node(name).parents):  # torch pushes an op's inputs in order
            if parent in names:
                waiting[parent] -= 1
                if not waiting[parent]:
                    _push(heap, parent, rank)
    return order


def _push(heap: list[str], item: str, rank: dict) -> None:
    """Add to a max-heap as libstdc++'s push_heap does."""
    heap.append(item)
    _sift_up(heap, len(heap) - 1, 0, item, rank)


def _sift_up(heap: list[str], hole: int, top: int, item: str, rank: dict) -> None:
    parent = (hole - 1) // 2
    while hole > top and rank[heap[parent]] < rank[item]:
        heap[hole] = heap[parent]
        hole = parent
        parent = (hole - 1) // 2
    heap[hole] = item


def _pop(heap: list[str], rank: dict) -> str:
    """Take the top of a max-heap as libstdc++'s pop_heap does (its order of equal items included)."""
    top = heap[0]
    last = heap.pop()
    if not heap:
        return top
    size, hole, child = len(heap), 0, 0
    while child < (size - 1) // 2:
        child = 2 * (child + 1)
        if rank[heap[child]] < rank[heap[child - 1]]:
            child -= 1
        heap[hole] = heap[child]
        hole = child
    if size % 2 == 0 and child == (size - 2) // 2:
        child = 2 * (child + 1)
        heap[hole] = heap[child - 1]
        hole = child - 1
    _sift_up(heap, hole, 0, last, rank)
    return top
