"""From a spec's expressions to a graph of operations with shapes.

Expressions are parsed with Python's ``ast`` and walked against an explicit
whitelist; anything else is refused. Nothing from a spec is ever evaluated.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import replace
from fractions import Fraction
from typing import Any

from ..errors import Problem, SpecError
from ..ops import REGISTRY, attributes, by_attribute, by_name, by_operator, by_subscript, function_names, operator_symbols
from ..ops.autograd import gradient, is_grad_call
from ..ops.base import MAX_INT_DIGITS, Arg, ExprError, Op, ShapeError, dotted_name, fmt_shape, num, numel
from ..spec.model import Array, Call, Compared, Functional, Input, Shown, Spec, Step, Update, repeated
from .model import Graph, Node
from ..spec.model import Hook

MAX_EXPR_CHARS = 1000
MAX_AST_NODES = 200
MAX_DEPTH = 40
MAX_EXPONENT_DIGITS = 3  # digits after the e of a literal, leading zeros not counted (1e-308 needs 3)
LARGEST = Fraction(2**1024 - 2**970)  # the least magnitude that float64 rounds to inf
SMALLEST = Fraction(1, 2**1075)  # the largest magnitude that float64 rounds to 0
RANGE = "allowed: 0, or magnitudes from about 5e-324 to 1.8e308"
MAX_NODES = 1000  # tensors in the whole graph, leaves included: 100 epochs of a small training loop
MAX_TOTAL_ELEMENTS = 16_000_000  # elements of all tensors in the graph together

INTERMEDIATE_NAMES = tuple("tuwpqrs")  # letters for the tensors inside a step


class _Walker:
    """Turn the steps of one spec into nodes, collecting problems."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.nodes: list[Node] = []
        self.known: dict[str, Node] = {}
        self.taken = {i.name for i in spec.inputs} | {s.name for s in spec.steps}
        self.fresh = 0
        self.elements = 0
        self.no_grad = False
        self.failed: set[str] = set()
        self.grad_calls: list[tuple[str, int, bool, tuple[str, ...]]] = []  # (step, line, retain_graph, nodes it runs)

    def leaf(self, inp) -> None:
        """Add an input as a leaf node."""
        self._add(Node(inp.name, None, (), (), inp.value.shape, inp.requires_grad, inp.name, inp.line,
                       integer=inp.integer))

    def _names(self) -> str:
        return ", ".join(n.name for n in self.nodes if n.name == n.step) or "none"

    def _add(self, node: Node) -> str:
        if len(self.nodes) >= MAX_NODES:
            raise ExprError(f"the graph has more than {MAX_NODES} tensors (allowed: at most {MAX_NODES})")
        self.elements += numel(node.shape)
        if self.elements > MAX_TOTAL_ELEMENTS:
            raise ExprError(f"the graph's tensors have more than {MAX_TOTAL_ELEMENTS} elements together"
                            f" (allowed: at most {MAX_TOTAL_ELEMENTS})")
        self.nodes.append(node)
        self.known[node.name] = node
        return node.name

    def _name(self) -> str:
        while True:
            i, self.fresh = self.fresh, self.fresh + 1
            base = INTERMEDIATE_NAMES[i % len(INTERMEDIATE_NAMES)]
            name = base if i < len(INTERMEDIATE_NAMES) else f"{base}{i // len(INTERMEDIATE_NAMES)}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def step(self, name: str, expr: str, line: int) -> str:
        """Parse one step and add its nodes; return the normalised code."""
        tree = _parse(expr)
        self.current, self.line, self.source = name, line, expr
        result = self.visit(tree.body, top=True)
        if not isinstance(result, str) or result != name:
            raise ExprError("a step must compute a tensor from inputs or earlier steps (allowed: an operation such as x + 1)")
        return ast.unparse(tree.body)

    def make(self, key: str, args: list[Arg], params: dict[str, Any] | None = None, *, top: bool) -> str:
        """Add the node of op `key` on these operands; return its name."""
        params = params or {}
        for i, a in enumerate(args):
            if isinstance(a, str) and self.known[a].integer:
                raise ExprError(f"'{a}' is an int64 tensor, which derive reads only as indices or class targets"
                                f" (allowed: an index such as x[{a}], or a loss's target)")
            if isinstance(a, str) and self.boolean(a) and i not in REGISTRY[key].conditions:
                raise ExprError(f"'{a}' is a bool tensor (a comparison), which derive reads only as a condition"
                                " (allowed: torch.where(x > 0, a, b), a.masked_fill(x < 0, 0.0))")
        shapes = [self.known[a].shape if isinstance(a, str) else () for a in args]
        try:
            shape = REGISTRY[key].shape(shapes, params)
        except ShapeError as e:
            raise ExprError(str(e)) from None
        grad = any(self.known[a].requires_grad for a in args if isinstance(a, str))
        op = REGISTRY[key]
        cut = "no_grad" if grad and self.no_grad else (op.cut_kind or key) if grad and not op.tracks else ""
        name = self.current if top else self._name()
        return self._add(Node(name, key, tuple(args), tuple(sorted(params.items())), shape, grad and not cut,
                              self.current, self.line, cut, op.integer))

    def applied(self, function: str):
        """Return the Applied record (generator/spec/model.py) of F.apply(x) in the current step, if it makes one."""
        return next((a for a in self.spec.applied if a.node == self.current and a.function == function), None)

    def strided(self, name: str) -> bool:
        """Tell whether a tensor was computed through an op whose result is not in row-major order (a transpose)."""
        seen, todo = set(), [name]
        while todo:
            node = self.known[todo.pop()]
            if node.name in seen or node.is_leaf:
                continue
            seen.add(node.name)
            if REGISTRY[node.op].permutes:
                return True
            todo.extend(a for a in node.args if isinstance(a, str))
        return False

    def boolean(self, name: str) -> bool:
        """Tell whether a tensor read so far is a bool tensor: the result of a comparison."""
        node = self.known[name]
        return node.op is not None and REGISTRY[node.op].boolean

    def integers(self, name: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """Return an int64 input's shape and values, or None for any other tensor."""
        node = self.known[name]
        if not node.integer:
            return None
        if not node.is_leaf:
            raise ExprError(f"'{name}' holds indices computed by {node.op}, which derive reads only to show and print"
                            " (allowed: an int64 input as an index or a target)")
        value = next(i.value for i in self.spec.inputs if i.name == name)
        return value.shape, tuple(int(v) for v in value.values)

    def requires_grad(self, name: str) -> bool:
        """Tell whether a tensor read so far requires grad."""
        return self.known[name].requires_grad

    def shape_of(self, name: str) -> tuple[int, ...]:
        """Return the shape of a tensor read so far."""
        return self.known[name].shape

    def tensor(self, node: ast.AST, what: str) -> str:
        """Return a sub-expression that must be a tensor, as its node's name."""
        value = self.visit(node)
        if not isinstance(value, str):
            raise ExprError(f"{what} must be a tensor, got the number {num(value)} (allowed: a tensor name or expression)")
        return value

    def fold(self, op: Op, values: list[Fraction]) -> Fraction:
        """Compute an op on constants exactly, as Python would before torch sees it; refuse inf and 0.0 from rounding."""
        value = op.fold(values)
        if not _representable(value):
            shown = f" {op.spelling.symbol} ".join(num(v) for v in values)
            raise ExprError(f"{shown if len(values) > 1 else op.spelling.symbol + shown} is out of float64's range ({RANGE})")
        return value

    def visit(self, node: ast.AST, top: bool = False) -> Arg:
        """Return a sub-expression as a node's name, or a constant."""
        if isinstance(node, ast.Constant):
            return _constant(node, self.source)
        if isinstance(node, ast.Name):
            if node.id == self.current:
                raise ExprError(f"step '{node.id}' uses itself (allowed: inputs and earlier steps: {self._names()})")
            if node.id in self.failed:
                raise ExprError(f"uses '{node.id}', which has a problem of its own (allowed: fix '{node.id}' first)")
            known = self.known.get(node.id)
            if known is None or known.step != node.id:
                raise ExprError(f"unknown name '{node.id}' (allowed: inputs and earlier steps: {self._names()})")
            return node.id
        if isinstance(node, ast.BinOp):
            return self._binop(node, top)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node, top)
        if isinstance(node, ast.Compare):
            return self._compare(node, top)
        if isinstance(node, ast.Call) and is_grad_call(node):
            raise ExprError("torch.autograd.grad(...) returns a tuple of gradients"
                            " (allowed: one of them, torch.autograd.grad(y, x)[0])")
        if isinstance(node, ast.Call):
            return self._call(node, top)
        if isinstance(node, ast.Attribute):
            op = by_attribute(node.attr)
            if op is None:
                raise ExprError(f"attribute '.{node.attr}' is not allowed"
                                f" (allowed: {attributes()} and the methods {', '.join(function_names())})")
            return op.attribute(self, node.value, top=top)
        if isinstance(node, ast.Subscript) and is_grad_call(node.value):
            return gradient(self, node.value, node.slice, top=top)
        if isinstance(node, ast.Subscript) and by_subscript() is not None:
            return by_subscript().subscript(self, node.value, node.slice, top=top)
        raise ExprError(f"{_describe(node)} is not allowed (allowed: {operator_symbols()}, numbers, names,"
                        f" calls of {', '.join(function_names())}, x[i], x[a:b], {attributes('x')})")

    def _compare(self, node: ast.Compare, top: bool) -> Arg:
        if len(node.ops) != 1:
            raise ExprError("a chained comparison (allowed: one comparison, such as x > 0)")
        op = by_operator(type(node.ops[0]))
        if op is None:
            raise ExprError(f"the comparison {_describe(node.ops[0])} is not allowed (allowed: > >= < <= == !=)")
        return op.operate(self, [self.visit(node.left), self.visit(node.comparators[0])], top=top)

    def _binop(self, node: ast.BinOp, top: bool) -> Arg:
        op = by_operator(type(node.op))
        if op is None:
            raise ExprError(f"the operator {_describe(node.op)} is not allowed (allowed: {operator_symbols()})")
        return op.operate(self, [self.visit(node.left), self.visit(node.right)], top=top)

    def _unary(self, node: ast.UnaryOp, top: bool) -> Arg:
        if isinstance(node.op, ast.UAdd):
            return self.visit(node.operand, top=top)
        op = by_operator(type(node.op))
        if op is None:
            raise ExprError(f"the operator {_describe(node.op)} is not allowed (allowed: unary minus)")
        return op.operate(self, [self.visit(node.operand)], top=top)

    def _call(self, node: ast.Call, top: bool) -> Arg:
        func = node.func
        names = ", ".join(function_names())
        if not isinstance(func, ast.Attribute):
            name = f"'{func.id}'" if isinstance(func, ast.Name) else _describe(func)
            raise ExprError(f"calling {name} is not allowed (allowed: torch.f(x) or x.f() for f in {names})")
        op = by_name(func.attr)
        if op is None:
            raise ExprError(f"unknown function '{func.attr}' (allowed: {names})")
        args = list(node.args)
        module = dotted_name(func.value)
        if module == "torch.nn.functional" and func.attr not in op.spelling.functional:
            raise ExprError(f"torch.nn.functional.{func.attr} is not read here"
                            f" (allowed: torch.{func.attr}(x) or x.{func.attr}())")
        if module != "torch.nn.functional" and func.attr not in op.spelling.names:
            raise ExprError(f"{func.attr} is a function of torch.nn.functional"
                            f" (allowed: torch.nn.functional.{func.attr}(...), or F.{func.attr}(...) after"
                            " import torch.nn.functional as F)")
        if module in ("torch", "torch.nn.functional"):
            if not args:
                raise ExprError(f"{module}.{func.attr}() needs a tensor argument (allowed: {module}.{func.attr}(x, ...))")
            subject = args.pop(0)
        else:
            subject = func.value
        if any(isinstance(a, ast.Starred) for a in args) or any(k.arg is None for k in node.keywords):
            raise ExprError("* and ** arguments are not allowed (allowed: plain arguments)")
        kwargs = {k.arg: k.value for k in node.keywords}
        return op.call(self, func.attr, subject, args, kwargs, top=top)


def _parse(expr: str) -> ast.Expression:
    """Parse an expression with the size limits checked first."""
    if len(expr) > MAX_EXPR_CHARS:
        raise ExprError(f"the expression has {len(expr)} characters (allowed: at most {MAX_EXPR_CHARS})")
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError) as e:
        reason = getattr(e, "msg", None) or str(e)
        raise ExprError(f"not a valid expression: {reason} (allowed: torch-like Python such as x * 2 + 1)") from None
    except RecursionError:
        raise ExprError(f"the expression is nested too deeply (allowed: at most {MAX_DEPTH} levels)") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_AST_NODES:
        raise ExprError(f"the expression has {count} parts (allowed: at most {MAX_AST_NODES})")
    if _depth(tree) > MAX_DEPTH:
        raise ExprError(f"the expression is nested too deeply (allowed: at most {MAX_DEPTH} levels)")
    return tree


def _depth(node: ast.AST) -> int:
    children = list(ast.iter_child_nodes(node))
    return 1 + max((_depth(c) for c in children), default=0)


def _constant(node: ast.Constant, source: str) -> Fraction:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExprError(f"the constant {value!r} is not allowed (allowed: numbers)")
    text = (ast.get_source_segment(source, node) or repr(value)).replace("_", "")
    mantissa, _, exponent = text.lower().partition("e")
    digits = mantissa.lstrip("+-").split(".")[0]
    if len(digits) > MAX_INT_DIGITS:
        raise ExprError(f"the number {text[:20]}... has too many digits (allowed: at most {MAX_INT_DIGITS})")
    if len(exponent.lstrip("+-").lstrip("0")) > MAX_EXPONENT_DIGITS:
        raise ExprError(f"the number {text[:20]}{'...' if len(text) > 20 else ''} has too many exponent digits"
                        f" (allowed: at most {MAX_EXPONENT_DIGITS} after the e)")
    try:
        number = Fraction(text)
    except (ValueError, ZeroDivisionError):
        number = Fraction(repr(float(value)))
    if not _representable(number):
        # Python would hand torch inf or 0.0 for it
        raise ExprError(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is out of float64's range ({RANGE})")
    return number


def _representable(value: Fraction) -> bool:
    """Tell whether float64 holds a number as itself or a rounding of it, not as inf or 0."""
    return value == 0 or SMALLEST < abs(value) < LARGEST


def _describe(node: ast.AST) -> str:
    names = {
        "Lambda": "a lambda", "ListComp": "a list comprehension", "GeneratorExp": "a generator",
        "Compare": "a comparison", "BoolOp": "and/or", "IfExp": "an if-expression", "List": "a list",
        "Tuple": "a tuple", "Dict": "a dict", "Set": "a set", "JoinedStr": "an f-string",
        "NamedExpr": "an assignment expression", "Await": "await", "Starred": "a starred argument",
        "Slice": "a slice", "SetComp": "a set comprehension", "DictComp": "a dict comprehension",
        "FloorDiv": "//", "Mod": "%", "BitAnd": "&", "BitOr": "|", "BitXor": "^", "LShift": "<<",
        "RShift": ">>", "Invert": "~", "Not": "not", "Yield": "yield",
    }
    return names.get(type(node).__name__, type(node).__name__)


def build_graph(spec: Spec) -> Graph:
    """Parse every step and check every backward call; raise SpecError with all problems."""
    builder = _Walker(spec)
    problems: list[Problem] = []
    failed: set[str] = set()
    code: list[tuple[str, str]] = []
    names = {i.name for i in spec.inputs}
    late = {u.node: u for u in spec.updates if u.copy and u.refs[0][1] not in names}  # a computed tensor made a leaf
    inputs = {i.name: i for i in spec.inputs}
    for inp in spec.inputs:
        if inp.name in late:
            continue
        try:
            builder.leaf(inp)
        except ExprError as e:
            raise SpecError([Problem(spec.path, inp.line, f"input '{inp.name}': {e}")]) from None

    def add_late(before: float) -> None:
        for name, update in list(late.items()):
            if update.seq < before:
                del late[name]
                source = builder.known.get(update.refs[0][1])
                if source is None:
                    failed.add(name)
                    continue
                shape = source.shape
                inputs[name] = replace(inputs[name], value=Array(shape, repeated(Fraction(0), numel(shape))))
                builder.leaf(inputs[name])

    for step in spec.steps:
        add_late(step.seq)
        try:
            builder.no_grad = step.no_grad
            code.append((step.name, builder.step(step.name, step.expr, step.line)))
        except ExprError as e:
            problems.append(Problem(spec.path, step.line, f"step '{step.name}': {e}"))
            failed.add(step.name)
            builder.failed.add(step.name)
            builder.nodes = [n for n in builder.nodes if n.step != step.name]
            builder.known = {n.name: n for n in builder.nodes}
            builder.elements = sum(numel(n.shape) for n in builder.nodes)
    add_late(math.inf)
    spec = replace(spec, inputs=tuple(inputs.values()))
    nodes = {n.name: n for n in builder.nodes}
    calls = []
    for call in spec.backward:
        call, problem = _ones_like(spec.path, call, nodes)
        calls.append(call)
        problems.extend([problem] if problem else _check_call(spec.path, call, nodes, failed))
    if problems:
        raise SpecError(problems)
    graph = Graph(replace(spec, backward=tuple(calls)), tuple(builder.nodes), tuple(code))
    problems.extend(_freed(graph))
    problems.extend(_changed_in_place(graph))
    problems.extend(_updates(graph))
    problems.extend(_freed_by_grad(graph, builder.grad_calls))
    problems.extend(_zeroed_none(graph))
    problems.extend(_comparisons(graph))
    problems.extend(_items_of_none(graph))
    problems.extend(_functions(graph))
    problems.extend(_unpredictable_digits(graph))
    problems.extend(_functionals(graph))
    problems.extend(_hook_problems(graph))
    if problems:
        raise SpecError(problems)
    return graph


def comparison_graph(graph: Graph, compared: Compared, values: dict[str, Array] | None = None) -> Graph:
    """Return the graph of a printed a == b: its tensors as inputs, a step for each side that computes, and d = a - b.

    values: each placeholder's numbers (the tensor's, or its grad's, when printed); zeros when only checking.
    Node d's shape is the comparison's (the sides broadcast); comparison_sides names each side's node.
    """
    inputs = []
    for placeholder, name, _ in compared.refs:
        shape = graph.node(name).shape
        array = values[placeholder] if values else Array(shape, repeated(Fraction(0), numel(shape)))
        inputs.append(Input(placeholder, array, False, 0))
    inputs += [Input(placeholder, Array((), (value,)), False, 0) for placeholder, value in compared.numbers]
    left, right = comparison_sides(compared)
    steps = [Step(k, e, 0) for k, e in ((left, compared.left), (right, compared.right)) if k != e]
    spec = Spec(graph.spec.path, "", "", tuple(inputs), (*steps, Step("d", f"{left} - {right}", 0)), (), graph.spec.dtype)
    return build_graph(spec)


def update_graph(graph: Graph, update: Update, values: dict[str, Array] | None = None) -> Graph:
    """Return the graph of a leaf's in-place update: its tensors and grads as inputs, and node new, its new values.

    values: each placeholder's numbers; zeros when only checking.
    """
    inputs = []
    for placeholder, name, _ in update.refs:
        shape = graph.node(name).shape
        array = values[placeholder] if values else Array(shape, repeated(Fraction(0), numel(shape)))
        inputs.append(Input(placeholder, array, False, 0))
    spec = Spec(graph.spec.path, "", "", tuple(inputs), (Step("new", update.expr, 0),), (), graph.spec.dtype)
    return build_graph(spec)


def _updates(graph: Graph) -> list[Problem]:
    """Report an in-place update torch could not compute: of another shape, or reading a .grad that is None."""
    spec, problems = graph.spec, []
    for update in spec.updates:
        shape = graph.node(update.node).shape
        if update.copy:
            source = graph.node(update.refs[0][1])
            if source.tracked:
                problems.append(Problem(spec.path, update.line, f"requires_grad of '{update.of}', which torch computed"
                                        f" with {graph.grad_fn(source)}: torch changes the flag of leaves only"
                                        " (allowed: on a tensor made by torch.tensor, ones, ..., or computed without"
                                        " grad)"))
            continue
        try:
            new = update_graph(graph, update).node("new").shape
        except SpecError as e:
            problems += [Problem(spec.path, update.line, re.sub(r"^step 'new': ", "in the update: ", p.message))
                         for p in e.problems]
            continue
        if new != shape:
            problems.append(Problem(spec.path, update.line, f"the update gives shape {list(new)} to"
                                    f" '{update.of}' of shape {list(shape)}: torch raises a RuntimeError"
                                    " (allowed: new values of the tensor's own shape)"))
        for _, name, what in update.refs:
            if what == "grad" and not _has_grad(graph, name, update.after, update.seq) and update.skips:
                problems.append(Problem(spec.path, update.line, f"{name}.grad is None here: torch's optimizer.step()"
                                        " skips such a parameter, which derive does not follow yet (allowed: a step"
                                        f" after a backward call that reaches {name})"))
            elif what == "grad" and not _has_grad(graph, name, update.after, update.seq):
                problems.append(Problem(spec.path, update.line, f"{name}.grad is None here, so torch raises"
                                        " TypeError (allowed: the update after a backward call that reaches"
                                        f" {name})"))
    return problems


def _has_grad(graph: Graph, leaf: str, after: int, seq: int) -> bool:
    """Tell whether a leaf's .grad is a tensor after `after` backward calls, where statement seq runs."""
    spec, has = graph.spec, False
    for i in range(after):
        has = has and not any(r.leaf == leaf and r.clear for r in spec.resets_before(i))
        has = has or any(spec.identity(n.name) == leaf and spec.accumulates(n.name, spec.backward[i].seq)
                         for n in graph.ancestors(spec.backward[i].output) if n.is_leaf)
    return has and not any(r.leaf == leaf and r.clear for r in spec.resets_before(after, seq))


def comparison_sides(compared: Compared) -> tuple[str, str]:
    """Name the nodes that hold a printed comparison's two sides: a placeholder itself, or l and r."""
    names = {placeholder for placeholder, _, _ in compared.refs} | {placeholder for placeholder, _ in compared.numbers}
    return (compared.left if compared.left in names else "l", compared.right if compared.right in names else "r")


def _comparisons(graph: Graph) -> list[Problem]:
    """Report a printed a == b whose sides torch could not compute or compare."""
    problems = []
    for p in graph.spec.prints or ():
        for part in p.parts:
            if isinstance(part, Compared):
                try:
                    comparison_graph(graph, part)
                except SpecError as e:
                    shown = {ph: name if what == "value" else f"{name}.grad" for ph, name, what in part.refs}
                    what = "; ".join(re.sub(r"\bp\d+\b", lambda m: shown.get(m.group(), m.group()),
                                            re.sub(r"^step '[lrd]': ", "", problem.message)) for problem in e.problems)
                    problems.append(Problem(graph.spec.path, p.line, f"in the printed comparison: {what}"))
    return problems


def _functions(graph: Graph) -> list[Problem]:
    """Report a printed grad_fn.next_functions chain that torch could not follow, or that derive does not yet."""
    problems = []
    for p in graph.spec.prints or ():
        for part in p.parts:
            if not (isinstance(part, Shown) and (part.path or part.what == "next_functions")):
                continue
            try:
                found = graph.function(part.name, part.path)
                if part.what == "next_functions":
                    graph.linked(found)
            except LookupError as e:
                problems.append(Problem(graph.spec.path, p.line, f"following {part.name}.grad_fn.next_functions:"
                                            f" {e.args[0]} (allowed: t.grad_fn.next_functions[i][0] of the"
                                            " functions torch links to)"))
    return problems


def _unpredictable_digits(graph: Graph) -> list[Problem]:
    """Report print(t.item()) of a float32 number computed through a kernel torch does not round correctly."""
    if graph.spec.dtype != "float32":
        return []
    problems, lines = [], set()
    updated = {u.node for u in graph.spec.updates}
    for p in graph.spec.prints or ():
        for part in p.parts:
            if not (isinstance(part, Shown) and not part.spec and (part.item or part.formatted)):
                continue
            if part.what not in ("value", "data", "grad") or graph.node(part.name).shape and not part.item:
                continue
            names, found, anywhere = [part.name], None, part.what == "grad"  # a grad: through every backward
            seen: set[str] = set()
            while names and found is None and not anywhere:
                node = graph.node(names.pop())
                if node.name in seen:
                    continue
                seen.add(node.name)
                found = node if node.op and REGISTRY[node.op].inexact32 else None
                anywhere = node.name in updated  # new values from a grad
                names.extend(node.parents)
            if anywhere:
                found = next((n for n in graph.nodes if n.op and REGISTRY[n.op].inexact32), None)
            if found is not None and p.line not in lines:
                lines.add(p.line)  # a loop's print: once
                what = graph.spec.identity(part.name) + (".grad" if part.what == "grad" else "")
                problems.append(Problem(graph.spec.path, p.line, f"the 17 digits Python prints of {what}'s float32"
                                        f" number, computed through {found.op}: torch's float32 {found.op} is not"
                                        " correctly rounded, so derive cannot predict its last bit (allowed: a format"
                                        f" such as {{{what}.item():.6f}}, or float64)"))
    return problems


def _zeroed_none(graph: Graph) -> list[Problem]:
    """Report t.grad.zero_() where t.grad is still None, as torch raises AttributeError there."""
    spec, problems, has = graph.spec, [], set()
    for i in range(len(spec.backward) + 1):
        for reset in spec.resets_before(i):
            if reset.clear:
                has.discard(reset.leaf)
            elif reset.leaf not in has and reset.skips:
                problems.append(Problem(spec.path, reset.line, f"{reset.leaf}.grad is None here: torch's"
                                        " zero_grad(set_to_none=False) skips such a parameter, which derive does not"
                                        " follow yet (allowed: zero_grad(), which sets each .grad to None, or"
                                        f" zero_grad(set_to_none=False) after a backward call that reaches {reset.leaf})"))
            elif reset.leaf not in has:
                problems.append(Problem(spec.path, reset.line, f"{reset.leaf}.grad is None here, so torch raises"
                                        " AttributeError: 'NoneType' object has no attribute 'zero_'"
                                        f" (allowed: {reset.leaf}.grad.zero_() after a backward call that reaches"
                                        f" {reset.leaf}, or {reset.leaf}.grad = None)"))
        if i < len(spec.backward):
            has.update(spec.identity(n.name) for n in graph.ancestors(spec.backward[i].output)
                       if n.is_leaf and spec.accumulates(n.name, spec.backward[i].seq))
    return problems


def _items_of_none(graph: Graph) -> list[Problem]:
    """Report t.grad.item() (or {t.grad:.2f}) where t.grad is None, and a number format of a tensor, as torch raises."""
    spec, problems = graph.spec, []
    for p in spec.prints or ():
        for part in p.parts:
            if isinstance(part, Shown) and part.spec and not part.item and graph.node(part.name).shape:
                what = part.name + (".grad" if part.what == "grad" else "")
                problems.append(Problem(spec.path, p.line, f"the format {part.spec!r} of '{what}', which has"
                                        f" {numel(graph.node(part.name).shape)} elements: torch raises TypeError:"
                                        " unsupported format string passed to Tensor.__format__"
                                        " (allowed: a format of t.item() or of a 0-d tensor)"))
                continue
            if not (isinstance(part, Shown) and part.what == "grad" and (part.item or part.spec)):
                continue
            node = graph.node(part.name)
            if node.is_leaf:
                has = set()
                for i in range(p.after):
                    has.difference_update(r.leaf for r in spec.resets_before(i) if r.clear)
                    has.update(spec.identity(n.name) for n in graph.ancestors(spec.backward[i].output)
                               if n.is_leaf and n.requires_grad and spec.accumulates(n.name, spec.backward[i].seq))
                has.difference_update(r.leaf for r in spec.resets_before(p.after, p.seq) if r.clear)
                none = spec.identity(part.name) not in has
            else:
                none = not any(r.name == part.name and r.after < p.after for r in spec.retained)
            if none:
                problems.append(Problem(spec.path, p.line, f"{part.name}.grad is None here, so torch raises"
                                        " AttributeError or TypeError reading it as a number"
                                        f" (allowed: {part.name}.grad after a backward call that reaches it)"))
    return problems


def _changed_in_place(graph: Graph) -> list[Problem]:
    """Report a backward call through an op that kept a leaf's values which an update changed since, as torch raises."""
    spec, problems = graph.spec, []
    made = {i.name: i.seq for i in spec.inputs}
    for call in spec.backward:
        for node in graph.ancestors(call.output):
            if not node.tracked:
                continue
            requires = tuple(isinstance(a, str) and graph.node(a).requires_grad for a in node.args)
            for index, parent in enumerate(node.args):
                if not isinstance(parent, str) or not REGISTRY[node.op].reads(index, requires, node.kwargs):
                    continue
                later = [u for u in spec.updates if parent in made and spec.identity(u.node) == spec.identity(parent)
                         and made[parent] < u.seq < call.seq and not u.copy]
                if later:
                    problems.append(Problem(spec.path, call.line, f"backward '{call.output}' needs the values of"
                                            f" '{spec.identity(parent)}' that {node.name} kept, but line {later[0].line}"
                                            " changed them in place: torch raises 'one of the variables needed for"
                                            " gradient computation has been modified by an inplace operation', or"
                                            " through .data uses the new values without a word (allowed: backward"
                                            " before the update, or compute again after it)"))
                    break
    return list(dict.fromkeys(problems))


def _freed(graph: Graph) -> list[Problem]:
    """Report a backward call through tensors that an earlier call without retain_graph freed, as torch raises."""
    problems: list[Problem] = []
    freed: dict[str, int] = {}  # node -> line of the call that freed what its backward keeps
    for call in graph.spec.backward:
        reached = [n for n in graph.ancestors(call.output) if n.tracked]
        hit = next((n for n in reached if n.name in freed), None)
        if hit is not None:
            problems.append(Problem(graph.spec.path, call.line, f"backward '{call.output}': torch raises 'Trying to"
                                    f" backward through the graph a second time': the call on line {freed[hit.name]}"
                                    f" freed what {hit.name}'s backward keeps"
                                    " (allowed: retain_graph=True on that call)"))
        if not call.retain:
            freed.update((n.name, call.line) for n in reached if REGISTRY[n.op].saves and n.name not in freed)
    return problems


def _freed_by_grad(graph: Graph, grads: list[tuple[str, int, bool, tuple[str, ...]]]) -> list[Problem]:
    """Report a backward call or torch.autograd.grad through tensors a torch.autograd.grad without retain_graph freed.

    A grad call runs the backward of the nodes between its output and its inputs, and frees what they keep unless
    retain_graph (or create_graph) is True; the reverse, a grad through what a backward call freed, raises too.
    Two backward calls alone are _freed's.
    """
    seq = {s.name: s.seq for s in graph.spec.steps}
    events = [((seq.get(step, 0), 0), line, retain, reached, True) for step, line, retain, reached in grads]
    for call in graph.spec.backward:
        reached = tuple(n.name for n in graph.ancestors(call.output) if n.tracked)
        events.append(((call.seq, 1), call.line, call.retain, reached, False))
    events.sort(key=lambda e: e[0])
    problems: list[Problem] = []
    freed: dict[str, tuple[int, bool]] = {}  # node -> (line of the call that freed it, whether a grad call did)
    for _, line, retain, reached, by_grad in events:
        hit = next((n for n in reached if n in freed and (by_grad or freed[n][1])), None)
        if hit is not None:
            what = "torch.autograd.grad" if by_grad else "backward"
            problems.append(Problem(graph.spec.path, line, f"{what}: torch raises 'Trying to backward through the"
                                    f" graph a second time': the call on line {freed[hit][0]} freed what {hit}'s"
                                    " backward keeps (allowed: retain_graph=True on that call)"))
        if not retain:
            freed.update((n, (line, by_grad)) for n in reached
                         if REGISTRY[graph.node(n).op].saves and n not in freed)
    return problems


def _ones_like(path: str, call: Call, nodes: dict[str, Node]) -> tuple[Call, Problem | None]:
    """Give a call whose gradient is ones shaped after a computed tensor (torch.ones_like(y)) its values."""
    if not call.like or call.like not in nodes:
        return call, None
    shape = nodes[call.like].shape
    if call.like_len:
        if not shape:
            return call, Problem(path, call.line, f"len({call.like}) of a 0-d tensor: torch raises TypeError"
                                 f" (allowed: torch.ones_like({call.like}))")
        shape = shape[:1]
    return replace(call, gradient=Array(shape, repeated(Fraction(1), numel(shape)))), None


def _check_call(path: str, call: Call, nodes: dict[str, Node], failed: set[str]) -> list[Problem]:
    if call.output in failed:
        return []
    node = nodes.get(call.output)
    where = f"backward '{call.output}'"
    if node is None:
        names = ", ".join(n for n in nodes if nodes[n].step == n)
        return [Problem(path, call.line, f"{where}: unknown tensor (allowed: {names})")]
    if not node.requires_grad:
        return [Problem(path, call.line, f"{where}: it does not require grad, so torch cannot backpropagate from it"
                        " (allowed: a tensor computed from an input with requires_grad: true)")]
    if call.gradient is None:
        if numel(node.shape) != 1:
            return [Problem(path, call.line, f"{where}: the output has shape {fmt_shape(node.shape)}, so torch needs"
                            " a gradient (grad can be implicitly created only for scalar outputs)"
                            f" (allowed: {{output: {call.output}, gradient: <values of shape {fmt_shape(node.shape)}>}})")]
        return []
    if call.gradient.shape != node.shape:
        return [Problem(path, call.line, f"{where}: gradient has shape {fmt_shape(call.gradient.shape)} but the output has"
                        f" shape {fmt_shape(node.shape)} (allowed: a gradient of the output's shape)")]
    return []


def _functionals(graph: Graph) -> list[Problem]:
    """Report a printed functional call whose function torch could not run at its inputs, or whose v does not fit."""
    problems = []
    for p in graph.spec.prints or ():
        for part in p.parts:
            if isinstance(part, Functional):
                try:
                    functional_graph(graph.spec, part)
                except SpecError as e:
                    problems.extend(e.problems)
    return problems


# -- torch.autograd.functional ------------------------------------------------
# The graph of one jacobian / vjp / jvp / hessian / hvp call: f's parameters as leaves that require grad,
# f's output a step.
# torch detaches each input and sets requires_grad on the copy, so the example's own tensors never change;
# the call is a small graph of its own, and J, Jᵀv and Ju come from its derivation.


MAX_FUNCTIONAL_ELEMENTS = 64  # the exact engine's size (engines/sparse.py SMALL): J entry by entry, one pass per row
MAX_HESSIAN_ELEMENTS = 16  # the inputs' elements in all: H has their square of entries, each a second derivative


def output_name(f: Functional) -> str:
    """Name f's output after the helper (exp_adder), unless a parameter has that name."""
    return f.output


def functional_graph(spec: Spec, f: Functional, *, rows: bool = False) -> Graph:
    """Return the call's graph: one backward call with v (or J's first row), or one per row of J with rows=True.

    torch builds J one row at a time: a vjp with a one-hot v for each element of f's output.
    """
    values = {i.name: i.value for i in spec.inputs}
    leaves = tuple(Input(p, values[n], True, f.line) for p, n in zip(f.params, f.inputs)) + tuple(
        Input(n, values[n], False, f.line) for n in f.outside)  # to J, what f uses from outside is a constant
    out = output_name(f)
    mini = Spec(spec.path, spec.title, spec.summary, leaves, (*f.steps, Step(out, f.expr, f.line)), (), spec.dtype,
                spec.lang, spec.flavor)
    try:
        graph = build_graph(mini)
    except SpecError as e:
        raise SpecError([Problem(spec.path, f.line, f"in {f.kind}'s function '{f.function}': {p.message}")
                         for p in e.problems]) from None
    shape = graph.node(out).shape
    size = numel(shape)
    largest = max(graph.nodes, key=lambda n: numel(n.shape))
    problem = _mismatch(spec, f, graph, values)
    if numel(largest.shape) > MAX_FUNCTIONAL_ELEMENTS:
        problem = (f"{f.kind} of '{f.function}', where '{largest.name}' has {numel(largest.shape)} elements (allowed: not"
                   f" supported yet; at most {MAX_FUNCTIONAL_ELEMENTS} elements per tensor, derived exactly)")
    inner = sum(numel(values[n].shape) for n in f.inputs)
    if f.kind in ("hessian", "hvp") and inner > MAX_HESSIAN_ELEMENTS and not problem:
        problem = (f"{f.kind} of '{f.function}', whose inputs have {inner} elements in all (allowed: not supported yet;"
                   f" at most {MAX_HESSIAN_ELEMENTS}, each second derivative derived exactly)")
    if problem:
        raise SpecError([Problem(spec.path, f.line, problem)])
    if f.kind == "vjp" and not rows:
        calls = (Call(out, values[f.v[0]] if f.v else Array(shape, (Fraction(1),) * size), f.line),)
    else:
        units = [Array(shape, tuple(Fraction(int(i == k)) for i in range(size))) for k in range(size)]
        calls = tuple(Call(out, u, f.line) for u in (units if rows else units[:1]))
    return replace(graph, spec=replace(graph.spec, backward=calls))


def _mismatch(spec: Spec, f: Functional, graph: Graph, values: dict[str, Array]) -> str:
    """Return why torch raises on v's shapes or on f's output, or ''."""
    out = graph.node(output_name(f)).shape
    if f.kind == "hvp" and not f.v and (len(f.inputs) != 1 or numel(values[f.inputs[0]].shape) != 1):
        return ("hvp without v at other than one input of one element: torch raises 'The vector v can only be None if"
                " the input to the user-provided function is a single Tensor with a single element.' (allowed: v of"
                " the inputs' shapes)")
    if f.kind == "hvp":
        for name, given in zip(f.inputs, f.v):
            if values[given].shape != values[name].shape:
                return (f"hvp with v of shape {fmt_shape(values[given].shape)} for the input '{name}' of shape"
                        f" {fmt_shape(values[name].shape)}: torch raises RuntimeError (allowed: v of the inputs' shapes)")
    if f.kind in ("hessian", "hvp") and numel(out) != 1:
        return (f"{f.kind} of '{f.function}', whose output has {numel(out)} elements: torch raises 'The Tensor returned"
                f" by the function given to {f.kind} should contain a single element' (allowed: a function returning"
                " one element, such as a sum)")
    if f.kind == "vjp" and not f.v and numel(out) != 1:
        return (f"vjp without v of '{f.function}', whose output has {numel(out)} elements: torch raises RuntimeError"
                " (allowed: v of the output's shape; None only for a one-element output)")
    if f.kind == "vjp" and f.v and values[f.v[0]].shape != out:
        return (f"vjp with v of shape {fmt_shape(values[f.v[0]].shape)} for an output of shape {fmt_shape(out)}:"
                " torch raises RuntimeError (allowed: v of the output's shape)")
    if f.kind == "jvp":
        if not f.v and (len(f.inputs) != 1 or numel(values[f.inputs[0]].shape) != 1):
            return ("jvp without v at other than one input of one element: torch raises RuntimeError"
                    " (allowed: v of the inputs' shapes)")
        for name, given in zip(f.inputs, f.v):
            if values[given].shape != values[name].shape:
                return (f"jvp with v of shape {fmt_shape(values[given].shape)} for the input '{name}' of shape"
                        f" {fmt_shape(values[name].shape)}: torch raises RuntimeError (allowed: v of the inputs' shapes)")
    return ""


def hook_graph(graph: Graph, hook: Hook, values: Array | None = None) -> tuple[Graph, str]:
    """Return the graph of what a hook returns, its gradient as the input, and the node that holds the result.

    values: the gradient's numbers; zeros when only checking.
    """
    shape = graph.node(hook.name).shape
    array = values or Array(shape, repeated(Fraction(0), numel(shape)))
    if not hook.expr or hook.expr == hook.param:  # returns None, or the gradient itself: g unchanged
        spec = Spec(graph.spec.path, "", "", (Input(hook.param, array, False, 0),), (), (), graph.spec.dtype)
        return build_graph(spec), hook.param
    out = "new" if hook.param != "new" else "new_"
    spec = Spec(graph.spec.path, "", "", (Input(hook.param, array, False, 0),), (Step(out, hook.expr, hook.line),), (),
                graph.spec.dtype)
    return build_graph(spec), out


def _hook_problems(graph: Graph) -> list[Problem]:
    """Report a hook torch refuses: on a tensor that does not require grad, or returning a gradient of another size."""
    problems = []
    for hook in graph.spec.hooks:
        node = graph.node(hook.name)
        if not node.requires_grad:
            problems.append(Problem(graph.spec.path, hook.line, f"register_hook on '{hook.name}', which does not require"
                                    " grad: torch raises 'cannot register a hook on a tensor that doesn't require"
                                    " gradient' (allowed: tensors that require grad)"))
            continue
        try:
            mini, out = hook_graph(graph, hook)
        except SpecError as e:
            what = "; ".join(re.sub(r"^step 'new_?': ", "", problem.message) for problem in e.problems)
            problems.append(Problem(graph.spec.path, hook.line, f"in the hook: {what}"))
            continue
        if mini.node(out).shape != node.shape:
            problems.append(Problem(graph.spec.path, hook.line, f"a hook returning a gradient of shape"
                                    f" {list(mini.node(out).shape)} for '{hook.name}' of shape {list(node.shape)}:"
                                    " torch raises 'hook has changed the size of value' (allowed: the same shape)"))
    return problems
