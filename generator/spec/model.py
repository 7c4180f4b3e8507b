"""The validated spec: plain frozen values, produced by load and read by graph."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Array:
    """A tensor literal: exact values, flattened row-major, with its shape."""

    shape: tuple[int, ...]
    values: tuple[Fraction, ...]


@dataclass(frozen=True)
class Input:
    """A leaf tensor of the example."""

    name: str
    value: Array
    requires_grad: bool
    line: int
    seq: int = 0  # a Python example's statement count where the tensor is made (0: before any code)
    grad_from: int = 0  # the statement of a later requires_grad_(True), when prints came between; 0: from the start


@dataclass(frozen=True)
class Step:
    """One line of the example's torch code: name = expression."""

    name: str
    expr: str
    line: int
    no_grad: bool = False  # inside `with torch.no_grad():`: torch records nothing
    seq: int = 0  # its place among a Python example's statements (0: a YAML spec's, in their order)


@dataclass(frozen=True)
class Call:
    """One `output.backward(gradient)` call; gradient is None for the implicit 1."""

    output: str
    gradient: Array | None
    line: int
    retain: bool = True  # retain_graph: the YAML spec's code keeps the graph for every later call
    seq: int = 0
    like: str = ""  # torch.ones_like(t), torch.ones(t.shape): ones of t's shape, which the graph knows
    like_len: bool = False  # torch.ones(len(t)): ones of t's first size


@dataclass(frozen=True)
class Shown:
    """One thing a print shows of a tensor: its value, grad, is_leaf or requires_grad."""

    name: str
    what: str  # "value", "data", "grad", "grad_fn", "is_leaf", "requires_grad" or "shape"
    formatted: bool = False  # a field of an f-string: a one-element tensor shows as a Python float there
    item: bool = False  # .item(): the one element as a Python float
    spec: str = ""  # an f-string field's format, such as .4f: applied to the Python float


@dataclass(frozen=True)
class Compared:
    """What print(a == b) shows: a bool tensor, torch comparing two expressions element by element."""

    left: str  # an expression of the placeholders in refs, as a step of a spec writes it
    right: str
    refs: tuple[tuple[str, str, str], ...]  # (placeholder, node, "value" or "grad")
    numbers: tuple[tuple[str, Fraction], ...] = ()  # (placeholder, value): a side that is a number, a 0-d tensor to torch


@dataclass(frozen=True)
class Print:
    """One print(...) of a Python example: its pieces in order, and how many backward calls came before it."""

    parts: tuple[str | Shown | Compared, ...]  # text as written, and the things shown
    after: int
    code: str  # the statement, as the document's script writes it
    line: int
    seq: int = 0  # its place among the example's prints and resets


@dataclass(frozen=True)
class Reset:
    """`leaf.grad.zero_()` (zeros) or `leaf.grad = None` (clear) in a Python example, after `after` backward calls."""

    leaf: str
    clear: bool
    after: int
    line: int
    seq: int = 0

    @property
    def code(self) -> str:
        return f"{self.leaf}.grad = None" if self.clear else f"{self.leaf}.grad.zero_()"


@dataclass(frozen=True)
class Retain:
    """`t.retain_grad()` in a Python example: t's gradient is kept from the next backward call on."""

    name: str
    after: int
    line: int
    seq: int = 0

    @property
    def code(self) -> str:
        return f"{self.name}.retain_grad()"


@dataclass(frozen=True)
class Spec:
    """A whole example, as written in its YAML file."""

    path: str
    title: str
    summary: str
    inputs: tuple[Input, ...]
    steps: tuple[Step, ...]
    backward: tuple[Call, ...]
    dtype: str = "float32"
    lang: str = "en"
    flavor: str = "portable"
    prints: tuple[Print, ...] | None = None  # a Python example's own prints; None: each leaf's grad at the end
    resets: tuple[Reset, ...] = ()  # grads zeroed or cleared between backward calls
    retained: tuple[Retain, ...] = ()  # computed tensors whose .grad torch keeps
    renamed: tuple[tuple[str, str], ...] = ()  # (node, the Python name it binds): c2 for the second c
    bound: tuple[tuple[str, str], ...] | None = None  # a Python example's (name, node) at its end; None: each input
    hooks: tuple[Hook, ...] = ()  # t.register_hook(fn) of a Python example, in the order registered

    def leaf_names(self) -> tuple[tuple[str, str], ...]:
        """Return (name, leaf) for each name bound at the end to a leaf that requires grad: what .grad is read from."""
        grad_leaves = {i.name for i in self.inputs if i.requires_grad}
        pairs = self.bound if self.bound is not None else tuple((i.name, i.name) for i in self.inputs)
        return tuple((name, node) for name, node in pairs if node in grad_leaves)

    def resets_before(self, call: int, seq: int | None = None) -> tuple[Reset, ...]:
        """Return the resets after `call` calls and before the next one (and before statement seq, if given)."""
        return tuple(r for r in self.resets if r.after == call and (seq is None or r.seq < seq))


def apply_resets(grads: dict, resets: tuple[Reset, ...], zeros) -> dict:
    """Return the leaves' grads with resets applied: zero_() keeps a tensor of zeros (zeros(leaf, grad)), = None clears."""
    grads = dict(grads)
    for r in resets:
        grads[r.leaf] = None if r.clear or grads[r.leaf] is None else zeros(r.leaf, grads[r.leaf])
    return grads


@dataclass(frozen=True)
class Hook:
    """`t.register_hook(fn)` in a Python example: during each later backward call, fn gets t's gradient g first.

    fn prints (prints, in order) and returns expr, a new gradient written in its parameter as a step is;
    expr "" returns None, which leaves g as it was. torch runs a tensor's hooks in the order registered.
    """

    name: str  # the node whose gradient the hook sees
    param: str  # fn's parameter, the gradient
    expr: str
    prints: tuple[Print, ...]  # each part a text or Shown(param, "value")
    line: int
    seq: int
    function: str = ""  # the def's name; "" for a lambda
    handle: str = ""  # h of h = t.register_hook(fn)
    removed: int = 0  # the statement of h.remove(); 0: kept to the end

    def active(self, call: Call) -> bool:
        """Tell whether torch runs this hook during a backward call: registered before it, not yet removed."""
        return self.seq < call.seq and not (self.removed and self.removed < call.seq)

    @property
    def code(self) -> tuple[str, ...]:
        """Return the lines that define and register the hook, as the document's script writes them."""
        target = f"{self.handle} = " if self.handle else ""
        body = [p.code for p in self.prints] + ([f"return {self.expr}"] if self.expr else [])
        if self.function:
            return (f"def {self.function}({self.param}):", *("    " + b for b in body or ["pass"]),
                    f"{target}{self.name}.register_hook({self.function})")
        inner = self.expr or (self.prints[0].code if self.prints else "None")
        return (f"{target}{self.name}.register_hook(lambda {self.param}: {inner})",)


def active_hooks(spec: Spec, call: Call) -> dict[str, tuple[Hook, ...]]:
    """Return, per tensor, the hooks torch runs on its gradient during a backward call, in the order registered."""
    found: dict[str, tuple[Hook, ...]] = {}
    for hook in spec.hooks:
        if hook.active(call):
            found[hook.name] = found.get(hook.name, ()) + (hook,)
    return found
