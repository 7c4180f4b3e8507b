"""The validated spec: plain frozen values, produced by load and read by graph."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from fractions import Fraction
from typing import Any

import numpy as np

from .numbers import NAME, RESERVED


class Floats(Sequence):
    """A large tensor's values kept as one float64 array (a .npy file's, a fill's): each a Fraction when asked.

    A tuple of a million Fractions costs seconds and hundreds of megabytes; the array engine reads the floats
    at once (floats()), and only the few values a document writes out become Fractions. fill: the exact
    number every element holds, where the float would round it (0.1).
    """

    __slots__ = ("array", "fill")

    def __init__(self, array: Any, fill: Fraction | None = None):
        array = np.array(array, dtype=np.float64).reshape(-1)
        array.flags.writeable = False
        self.array, self.fill = array, fill

    def __len__(self) -> int:
        return self.array.size

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self)[index] if self.fill is None else (self.fill,) * len(range(*index.indices(len(self))))
        return self.fill if self.fill is not None and -len(self) <= index < len(self) else Fraction(
            float(self.array[index]))

    def __iter__(self) -> Iterator[Fraction]:
        if self.fill is not None:
            return iter((self.fill,) * len(self))
        return (Fraction(x) for x in self.array.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Floats):
            return self.fill == other.fill and self.array.tobytes() == other.array.tobytes()
        return isinstance(other, tuple) and tuple(self) == other

    def __hash__(self) -> int:
        return hash((self.fill, self.array.tobytes()))

    def __repr__(self) -> str:
        return f"Floats({self.array.size} elements)"


@dataclass(frozen=True)
class Array:
    """A tensor literal: exact values, flattened row-major, with its shape."""

    shape: tuple[int, ...]
    values: tuple[Fraction, ...] | Floats


def repeated(value: Fraction, count: int) -> tuple[Fraction, ...] | Floats:
    """Return count copies of one number: a tuple for a few, Floats (the number kept exact) for many."""
    if count <= FEW:
        return (value,) * count
    try:
        return Floats(np.full(count, float(value)), value)
    except OverflowError:  # beyond float64, as torch reads it: kept as a tuple, which the checks refuse with a line
        return (value,) * count


def exact(numbers: Any) -> tuple[Fraction, ...] | Floats:
    """Return floats (a draw's, a file's) as a tensor literal's values: Fractions for a few, Floats for many."""
    if len(numbers) <= FEW:
        return tuple(Fraction(float(v)) for v in np.asarray(numbers, dtype=np.float64).reshape(-1).tolist())
    return Floats(numbers)


FEW = 4096  # elements up to which a tensor's values are a tuple of Fractions


def floats(array: Array) -> np.ndarray:
    """Return a tensor literal's values as a float64 array (at once for Floats)."""
    if isinstance(array.values, Floats):
        return array.values.array
    return np.array([float(v) for v in array.values], dtype=np.float64)


@dataclass(frozen=True)
class Input:
    """A leaf tensor of the example."""

    name: str
    value: Array
    requires_grad: bool
    line: int
    seq: int = 0  # a Python example's statement count where the tensor is made (0: before any code)
    grad_from: int = 0  # the statement of a later requires_grad_(True), when prints came between; 0: from the start
    parameter: bool = False  # made by torch.nn.Parameter(...): printed as "Parameter containing:"
    drawn: str = ""  # randn, rand, randint, randperm, normal_ or uniform_: drawn after torch.manual_seed(spec.seed);
    # "picked": an int64 tensor's rows another picks (Yb = Ytr[ix] in torch code)
    drawn_args: tuple[Fraction | str, ...] = ()  # randint's low and high, normal_'s mean and std, uniform_'s from and to;
    # for "picked", the two inputs' names
    file: str = ""  # a .npy file beside the spec that holds the values (read by spec/files.read_npy)
    integer: bool = False  # an int64 tensor (class indices, an index): read only as indices or targets, never differentiated


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
    what: str  # "value", "data", "grad", "grad_fn", "next_functions", "is_leaf", "requires_grad" or "shape"
    formatted: bool = False  # a field of an f-string: a one-element tensor shows as a Python float there
    item: bool = False  # .item(): the one element as a Python float
    spec: str = ""  # an f-string field's format, such as .4f: applied to the Python float
    path: tuple[int, ...] = ()  # grad_fn then .next_functions[i][0] for each i; what "next_functions": the tuple there


@dataclass(frozen=True)
class Compared:
    """What print(a == b) shows: a bool tensor, torch comparing two expressions element by element."""

    left: str  # an expression of the placeholders in refs, as a step of a spec writes it
    right: str
    refs: tuple[tuple[str, str, str], ...]  # (placeholder, node, "value" or "grad")
    numbers: tuple[tuple[str, Fraction], ...] = ()  # (placeholder, value): a side that is a number, a 0-d tensor to torch
    op: str = "=="  # a while's or an if's condition compares with <, <=, >, >=, == or !=


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
    skips: bool = False  # optimizer.zero_grad(set_to_none=False): torch leaves a .grad that is None as it is

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
class Update:
    """A leaf's values changed in place, which torch does not record: `w -= lr * w.grad` under no_grad, `x.data *= 2`.

    The tensor stays the same leaf with the same .grad; its new values are a new node of the graph (w2), computed
    from refs as torch computes them when the example runs (generator/engines/updates.py).
    """

    node: str  # the new values' node
    of: str  # the tensor's first node: every version shares its .grad
    expr: str  # the new values, an expression of the placeholders, as a step of a spec writes it
    refs: tuple[tuple[str, str, str], ...]  # (placeholder, node, "value" or "grad"): a grad is the tensor's, of
    after: int  # backward calls before it
    code: str  # the statement, as the document's code writes it
    line: int
    seq: int = 0
    data: bool = False  # through .data, which torch allows outside no_grad too
    requires_grad: bool | None = None  # requires_grad_(flag) after the tensor was used: the same values, a new flag
    skips: bool = False  # optimizer.step(): torch leaves a parameter whose .grad is None as it is

    @property
    def copy(self) -> bool:
        """Tell whether the new values are the old ones (only the flag changes)."""
        return self.expr in {p for p, _, _ in self.refs}


@dataclass(frozen=True)
class Module:
    """What torch.nn or torch.optim made in a Python example, read as plain tensor code: the document says what it does."""

    kind: str  # "linear" (nn.Linear), "mse" (nn.MSELoss) or "sgd" (torch.optim.SGD)
    name: str  # the Python name bound to it
    code: str  # the author's statement
    line: int
    params: tuple[str, ...] = ()  # its parameters' first nodes (Linear: weight, then bias; SGD: those it updates)
    setting: str = ""  # the loss's reduction, or the learning rate as Python writes it
    numbers: tuple[str, ...] = ()  # Linear: the constant each parameter is set to, as written
    zeroed: str = ""  # SGD: "none" after zero_grad() (set_to_none), "zeros" after zero_grad(set_to_none=False)


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
    updates: tuple[Update, ...] = ()  # leaves changed in place, in the example's order

    def identity(self, name: str) -> str:
        """Return the first node of the tensor a node is a version of (itself, unless an update made it)."""
        return self._identities.get(name, name)

    def accumulates(self, name: str, seq: int) -> bool:
        """Tell whether a backward call at statement seq adds to a leaf's .grad: torch's AccumulateGrad skips a tensor
        whose requires_grad was turned off since (its latest values before seq do not require grad)."""
        first = self.identity(name)
        current = first
        for u in self.updates:
            if u.seq < seq and self.identity(u.node) == first:
                current = u.node
        return next((i.requires_grad for i in self.inputs if i.name == current), True)

    @cached_property
    def _identities(self) -> dict[str, str]:
        inputs = {i.name for i in self.inputs}
        first: dict[str, str] = {}  # a computed tensor made a leaf: its first leaf node
        found = {}
        for u in self.updates:
            found[u.node] = u.of if u.of in inputs else first.setdefault(u.of, u.node)
        return {k: v for k, v in found.items() if k != v}
    functions: tuple[Function, ...] = ()  # a Python example's custom torch.autograd.Function classes
    applied: tuple[Applied, ...] = ()  # each F.apply(x) of them
    hooks: tuple[Hook, ...] = ()  # t.register_hook(fn) of a Python example, in the order registered
    modules: tuple[Module, ...] = ()  # nn.Linear, nn.MSELoss and torch.optim.SGD of a Python example, as made
    seed: int | None = None  # torch.manual_seed(seed) before the inputs, which randn and rand inputs draw from

    def leaf_names(self) -> tuple[tuple[str, str], ...]:
        """Return (name, leaf) for each name bound at the end to a leaf that requires grad: what .grad is read from."""
        grad_leaves = {i.name for i in self.inputs if i.requires_grad}
        pairs = self.bound if self.bound is not None else tuple((i.name, i.name) for i in self.inputs)
        return tuple((name, node) for name, node in pairs if node in grad_leaves)

    def resets_before(self, call: int, seq: int | None = None) -> tuple[Reset, ...]:
        """Return the resets after `call` calls and before the next one (and before statement seq, if given)."""
        return tuple(r for r in self.resets if r.after == call and (seq is None or r.seq < seq))


Evaluate = Callable[["Spec", Compared], bool]  # decides a condition on tensor values from the code read so far


def shared(grads: dict, spec: Spec) -> dict:
    """Return every leaf's grad from grads kept per tensor: each version of a tensor changed in place shows its .grad."""
    return {i.name: grads.get(spec.identity(i.name)) for i in spec.inputs}
@dataclass(frozen=True)
class Function:
    """A custom torch.autograd.Function of a Python example: its code as written, and its forward and backward."""

    name: str  # the class name
    code: str  # the class, as the document's script writes it
    line: int
    seq: int
    forward: str  # what forward returns, as written (its parameter and locals by their own names)
    backward: str  # what backward returns, as written
    param: str  # forward's tensor parameter (after ctx)
    grad: str  # backward's parameter (after ctx), grad_output
    returns: int = 0  # the line of backward's return


@dataclass(frozen=True)
class Applied:
    """One F.apply(x): the nodes of its input, forward's result, and the factor backward multiplies grad_output by."""

    node: str  # the step F.apply(x) makes
    function: str
    input: str
    forward: str
    factor: str | Fraction  # a node, or a number (backward returns grad_output * 2)
    hidden: tuple[str, ...]  # the steps forward and backward compute: not the document's script's own lines
    line: int
    mask: str = ""  # grad_input[m < 0] = 0 in backward: the node m compared (and zeroed where the comparison holds)
    keep: str = ""  # where the gradient is kept: ">=" for m < at zeroed, and so on
    at: Fraction = Fraction(0)
    chain: tuple[str | Fraction, ...] = ()  # backward's factors, multiplied into grad_output one after another


def apply_resets(grads: dict, resets: tuple[Reset, ...], zeros) -> dict:
    """Return the leaves' grads with resets applied: zero_() keeps a tensor of zeros (zeros(leaf, grad)), = None clears."""
    grads = dict(grads)
    for r in resets:
        grads[r.leaf] = None if r.clear or grads[r.leaf] is None else zeros(r.leaf, grads[r.leaf])
    return grads


@dataclass(frozen=True)
class Functional:
    """What print(torch.autograd.functional.jacobian / vjp / jvp / hessian / hvp (f, inputs, v)) shows: f's derivatives."""

    kind: str  # "jacobian", "vjp", "jvp", "hessian" or "hvp"
    function: str  # the helper's name in the code (a lambda's: the name it is bound to, or "f")
    params: tuple[str, ...]  # f's parameters, one per input
    expr: str  # f's return expression of its parameters, as a step writes it
    inputs: tuple[str, ...]  # the leaves given as inputs, in order
    packed: bool  # inputs given as a tuple: torch answers with tuples
    line: int
    v: tuple[str, ...] = ()  # vjp: v of f's output shape; jvp, hvp: one per input (the leaves given)
    v_packed: bool = False  # jvp's or hvp's v given as a tuple
    create_graph: bool = False
    vectorize: bool = False  # torch computes J's rows at once with vmap: the same numbers
    outside: tuple[str, ...] = ()  # leaves of the example that f uses besides its parameters: constants to J
    steps: tuple[Step, ...] = ()  # f of several statements: its computations before the return, loops unrolled
    decided: tuple[tuple[int, str, tuple[int, ...]], ...] = ()  # f's loops and ifs: (line, header, runs or branch taken)

    @property
    def code(self) -> str:
        """The call as the document's script writes it: f as a lambda (or the def above it), the inputs by name."""
        def pack(names: tuple[str, ...], packed: bool) -> str:
            return f"({', '.join(names)}{',' if len(names) == 1 else ''})" if packed else names[0]
        f = self.function if self.steps else f"lambda {', '.join(self.params)}: {self.expr}"
        args = [f, pack(self.inputs, self.packed)]
        if self.v:
            args.append(pack(self.v, self.v_packed if self.kind in ("jvp", "hvp") else False))
        args += [k + "=True" for k, on in (("create_graph", self.create_graph), ("vectorize", self.vectorize)) if on]
        return f"torch.autograd.functional.{self.kind}({', '.join(args)})"

    @property
    def output(self) -> str:
        """Name f's output after the helper (exp_adder), unless a parameter has that name."""
        name = self.function
        return name if NAME.fullmatch(name) and name not in RESERVED and name not in self.params else "out"

    @property
    def definition(self) -> tuple[str, ...]:
        """Return f of several statements as the document's script writes it: its steps as run here, then the return."""
        if not self.steps:
            return ()
        body = [f"    {s.name} = {s.expr}" for s in self.steps] + [f"    return {self.expr}"]
        return (f"def {self.function}({', '.join(self.params)}):", *body)

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
