"""Read a Python file of torch code into a Spec: parsed with ast, walked through a whitelist, never run.

A module is a list of statements, and each is one of a few forms: an import of torch, a tensor made by
a creation function (a leaf), `name = expression` (a step; a name bound again becomes a new node, c then
c2), `out.backward(...)`, `print(...)`, a `for` loop over `range(k)` (unrolled), a helper function or lambda
that returns one expression (inlined), and constants. Expressions keep torch's spelling and are checked
op by op later, by the graph (generator/graph/walk.py), exactly as a YAML spec's steps are.

Every problem is collected with its line; anything outside the whitelist is refused with what is allowed.
Number literals become exact Fractions from the text the author wrote, as in a YAML spec.
"""

from __future__ import annotations

import ast
import copy
import io
import math
import re
import tokenize
import warnings
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import NoReturn

import numpy as np

from ..errors import Problem, SpecError
from ..floats.ieee import linspace
from ..ops import by_operator, comparison
from ..ops.base import ExprError, dotted_name
from ..ops.elementwise import scaled_add
from ..ops.linalg import is_linear, linear as linear_forward
from ..ops.losses import REDUCTIONS, mse_criterion
from .files import MAX_BYTES
from .seeded import Generator, SeededError
from .model import (
    Applied, Array, Call, Compared, Evaluate, Function, Functional, Hook, Input, Module, Print, Reset, Retain, Shown, Spec,
    Step, Update, exact, repeated,
)
from .numbers import (
    ACTIVE_TEX, DTYPES, FLAVORS, LANGS, MAX_DIMS, MAX_ELEMENTS, NAME, PLAIN_TEXT, RESERVED, clip, decimal, integer,
)

MAX_STATEMENTS = 2000  # statements once loops are unrolled and functions inlined
MAX_ITERATIONS = 100  # iterations of one for loop
MAX_INLINE_DEPTH = 8  # helper functions calling helper functions
MAX_AST_NODES = 20_000  # parts of the whole module
MAX_DEPTH = 60  # nesting of the module's syntax tree

CREATORS = ("tensor", "ones", "zeros", "full", "eye", "arange", "linspace", "ones_like", "zeros_like", "Tensor",
            "FloatTensor", "DoubleTensor", "randn", "rand", "randint", "randperm", "empty")
FILLS = {"normal_": ("mean", "std", 0, 1), "uniform_": ("from", "to", 0, 1)}  # in place, torch's numbers after the seed
DRAWS = ("randn", "rand", "randint", "randperm")
LEGACY = {"Tensor": "float32", "FloatTensor": "float32", "DoubleTensor": "float64"}  # torch.Tensor([...]) and kin
TORCH_DTYPES = {"float32": "float32", "float": "float32", "float64": "float64", "double": "float64", "int64": "int64",
                "long": "int64"}
CASTS = {"float": "float32", "double": "float64"}
SHOWN = ("grad", "is_leaf", "requires_grad", "grad_fn", "shape")
HEADER_KEYS = ("lang", "flavor")
FUNCTIONALS = ("jacobian", "vjp", "jvp", "hessian", "hvp")  # torch.autograd.functional's, read so far
FUNCTIONAL_ARGS = {
    "jacobian": ("func", "inputs", "create_graph", "strict", "vectorize", "strategy"),
    "hessian": ("func", "inputs", "create_graph", "strict", "vectorize", "outer_jacobian_strategy"),
}  # the others: func, inputs, v, create_graph, strict

SIGNED = re.compile(r"[-+][0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9_]+)?|[-+]\.[0-9_]+([eE][-+]?[0-9_]+)?")
_STATEMENTS = ("imports of torch, tensors made with torch." + "/".join(CREATORS) + ", name = expression,"
               " t.backward(...), t.grad.zero_(), t.grad = None, t.retain_grad(), print(...), with torch.no_grad():"
               " (or enable_grad(), set_grad_enabled(flag), as blocks or decorators),"
               " for loops over range(k) or [w, b], functions and lambdas returning one expression")
_IMPORTS = ("allowed: import torch, import torch.nn.functional as F, import torch.nn as nn, import torch.optim as optim,"
            " import math,"
            " from torch.autograd import Variable, grad")
_LITERAL = "allowed: numbers, math.pi, arithmetic of them, or nested lists of numbers such as [[1., 2.], [3., 4.]]"
MATH_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
FLOAT_LIMITS = {"float32": Fraction(float(np.finfo(np.float32).max)), "float64": Fraction(float(np.finfo(np.float64).max))}


class Refused(Exception):
    """One statement or expression outside the whitelist: what it is and what is allowed."""


@dataclass
class _Leaf:
    """A tensor made by a creation function, before we know whether a step uses it."""

    array: Array
    dtype: str | None  # None: torch's default, float32
    requires_grad: bool
    line: int
    used: bool = False  # by a step, a print or a backward call
    seq: int = 0
    grad_from: int = 0  # see Input.grad_from
    parameter: bool = False  # see Input.parameter


@dataclass
class _Linear:
    """An nn.Linear module: its parameters' first nodes once set (torch draws them at random until then)."""

    name: str
    inputs: int
    outputs: int
    bias: bool
    dtype: str | None
    line: int
    code: str = ""
    weight_node: str = ""
    bias_node: str = ""
    numbers: dict[str, str] = field(default_factory=dict)  # "weight" / "bias" -> the constant it is set to


@dataclass
class _Criterion:
    """An nn.MSELoss."""

    name: str
    reduction: str
    code: str
    line: int


@dataclass
class _Optimizer:
    """A torch.optim.SGD: its parameters (the Linear and attribute, or a leaf's first node) and learning rate."""

    params: tuple[tuple[str, str], ...]  # ("", first node) of a tensor, or (module, "weight" / "bias")
    lr: Fraction
    name: str = ""
    code: str = ""
    line: int = 0
    zeroed: str = ""  # see Module.zeroed


class _Reported(Refused):
    """A refusal whose problems are already collected: the statement that needed the part refused stops quietly."""


class _Located(Refused):
    """A refusal inside a compound statement, at the line of the part refused."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


_FUNCTION = ("allowed: class F(torch.autograd.Function) with @staticmethod def forward(ctx, x) and"
             " @staticmethod def backward(ctx, grad_output) of name = expression, ctx.save_for_backward(...),"
             " a, = ctx.saved_tensors, and one return")


@dataclass
class _Custom:
    """A custom torch.autograd.Function as read: forward's and backward's statements, checked, not yet applied."""

    function: Function
    forward: list[tuple[str, ast.expr, int]]  # forward's locals: (name, expression, line)
    result: ast.expr  # what forward returns
    saved: list[tuple[str, str]]  # (backward's name, forward's name it gets from ctx.saved_tensors)
    backward: list[tuple[str, ast.expr, int]]  # backward's locals
    factor: list[ast.expr]  # what backward multiplies grad_output by: the return's other factors, in order
    line: int
    masks: list[tuple[str, ast.expr, Fraction]] = field(default_factory=list)  # grad_input[m < 0] = 0: (keep, m, at)
    chain: list[ast.expr] = field(default_factory=list)  # grad_output * 1.5 * h: the factors torch multiplies in turn


@dataclass
class _Reader:
    """Collect the problems of one Python file while reading it."""

    path: str
    problems: list[Problem] = field(default_factory=list)
    leaves: dict[str, _Leaf] = field(default_factory=dict)  # node name -> leaf
    steps: list[Step] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    prints: list[Print] = field(default_factory=list)
    resets: list[Reset] = field(default_factory=list)
    retained: list[Retain] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (node name, the Python name it binds)
    bound: dict[str, str] = field(default_factory=dict)  # Python name -> node name
    constants: dict[str, ast.expr] = field(default_factory=dict)  # Python name -> a number
    flags: dict[str, bool] = field(default_factory=dict)  # Python name -> True or False (is_train = False)
    devices: set[str] = field(default_factory=set)  # Python names bound to torch.device("cpu")
    dtypes: dict[str, str] = field(default_factory=dict)  # Python name -> a dtype (dtype = torch.float)
    modes: dict[str, bool] = field(default_factory=dict)  # helper -> the grad mode its decorator sets
    functions: dict[str, tuple[list[str], ast.expr]] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)  # alias -> "torch", "F" or "math"
    taken: set[str] = field(default_factory=set)  # node names
    updates: list[Update] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # a leaf's node after an in-place update -> its first node
    computed: dict[int, str] = field(default_factory=dict)  # a printed computation (its syntax node) -> its step
    evaluate: Evaluate | None = None  # decides while's and if's conditions on tensor values (the pipeline's)
    procedures: dict[str, tuple[list[str], list[ast.stmt]]] = field(default_factory=dict)  # several statements
    depth: int = 0  # functions of several statements being read inside one another
    local: bool = False  # inside one: its in-place updates would change the caller's tensors
    customs: dict[str, _Custom] = field(default_factory=dict)  # class name -> a custom torch.autograd.Function
    aliases: dict[str, str] = field(default_factory=dict)  # Python name -> the Function whose apply it is (f = F.apply)
    applied: list[Applied] = field(default_factory=list)
    count: int = 0
    no_grad: bool = False  # inside `with torch.no_grad():`
    last_line: int = 1  # the line of the statement being read
    tuples: dict[str, tuple[str, ...]] = field(default_factory=dict)  # Python name -> the tensors of a tuple
    kept: dict[str, Functional] = field(default_factory=dict)  # Python name -> the functional call it holds, to print
    seed: int | None = None  # torch.manual_seed(seed), read once before any randn or rand
    generator: Generator | None = None  # torch's generator after that seed, as the draws leave it
    drawn: list[tuple[Array, str, tuple]] = field(default_factory=list)  # each drawn tensor's array, kind and arguments
    gathers: list[tuple[Array, str, tuple]] = field(default_factory=list)  # Yb = Ytr[ix]: its array, "picked", the names
    hooks: list[Hook] = field(default_factory=list)
    hook_defs: dict[str, ast.FunctionDef] = field(default_factory=dict)  # def f(g): print(g); return g + 1
    handles: dict[str, int] = field(default_factory=dict)  # h of h = t.register_hook(fn) -> its hook
    grads: dict[str, list[str]] = field(default_factory=dict)  # Python name -> the nodes of torch.autograd.grad's tuple
    linears: dict[str, _Linear] = field(default_factory=dict)  # Python name -> an nn.Linear module
    criteria: dict[str, _Criterion] = field(default_factory=dict)  # Python name -> an nn.MSELoss
    made: list[_Linear | _Criterion | _Optimizer] = field(default_factory=list)  # in order, for the document
    optimizers: dict[str, _Optimizer] = field(default_factory=dict)  # Python name -> a torch.optim.SGD
    latest: dict[str, str] = field(default_factory=dict)  # a leaf's first node -> the node of its current values
    linear_weights: set[str] = field(default_factory=set)  # the weights nn.Linear's forward read (x @ weight.T + bias)
    inside: tuple[str, str] = ()  # (kind, f) while reading f of several statements for jacobian, vjp or jvp
    decided: list[tuple[int, str, int]] | None = None  # there: each loop's runs and each if's branch, (line, header, n)

    def bad(self, line: int, what: str, allowed: str) -> None:
        self.problems.append(Problem(self.path, line, f"{what} ({allowed})"))

    # -- statements ------------------------------------------------------

    def block(self, body: list[ast.stmt]) -> None:
        """Read statements in order; a loop's body is read once per iteration."""
        for statement in body:
            self.last_line = statement.lineno
            self.count += 1
            if self.count > MAX_STATEMENTS:
                raise Refused(f"more than {MAX_STATEMENTS} statements once loops are unrolled"
                              f" (allowed: at most {MAX_STATEMENTS})")
            try:
                self.statement(statement)
            except _Reported:
                continue
            except Refused as e:
                line = min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", [])])
                self.problems.append(Problem(self.path, getattr(e, "line", None) or line, str(e)))

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.FunctionDef):
            _refuse_in_place(node)
        missing = _missing_feature(node)
        if missing:
            raise Refused(f"{missing} is not supported yet (allowed: {_STATEMENTS})")
        if isinstance(node, ast.AugAssign):
            return self.update(node.target, node.op, node.value, node.lineno)
        if isinstance(node, ast.If):
            taken = self.condition(node.test)
            self.decide(node, f"if {ast.unparse(node.test)}", int(taken))
            return self.block(node.body if taken else node.orelse)
        if isinstance(node, ast.While):
            return self.while_(node)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return self.imports(node)
        if isinstance(node, ast.Assign):
            if len(node.targets) != 1:
                raise Refused("a chained assignment a = b = ... (allowed: one name = one expression)")
            return self.assign(node.targets[0], node.value, node.lineno)
        if isinstance(node, ast.Expr):
            return self.expression_statement(node.value, node.lineno)
        if isinstance(node, ast.For):
            return self.loop(node)
        if isinstance(node, ast.FunctionDef):
            return self.function(node)
        if isinstance(node, ast.Pass):
            return None
        if isinstance(node, ast.ClassDef):
            return self.custom(node)
        if isinstance(node, ast.With) and len(node.items) == 1 and node.items[0].optional_vars is None:
            mode = self.grad_mode(node.items[0].context_expr)
            if mode is not None:
                outer, self.no_grad = self.no_grad, not mode
                try:
                    self.block(node.body)
                finally:
                    self.no_grad = outer  # torch restores the mode it found on entering, whatever the body set
                return None
        raise _refuse_statement(node)

    def grad_mode(self, node: ast.expr) -> bool | None:
        """Return whether torch.no_grad(), enable_grad() or set_grad_enabled(flag) turns gradients on; None if not one."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and self.modules.get(node.func.value.id) == "torch"
                and node.func.attr in ("no_grad", "enable_grad", "set_grad_enabled")):
            return None
        if node.func.attr == "set_grad_enabled":
            if len(node.args) != 1 or node.keywords:
                raise Refused("torch.set_grad_enabled with other than one flag (allowed: torch.set_grad_enabled(False))")
            return self.flag(node.args[0], "set_grad_enabled")
        if node.args or node.keywords:
            raise Refused(f"torch.{node.func.attr}(...) with arguments (allowed: torch.{node.func.attr}())")
        return node.func.attr == "enable_grad"

    def imports(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.ImportFrom):
            if node.module == "torch.autograd" and [a.name for a in node.names] == ["Variable"]:
                self.modules[node.names[0].asname or "Variable"] = "Variable"  # the API before PyTorch 0.4
                return
            if node.module == "torch.autograd.functional" and all(a.name in FUNCTIONALS for a in node.names):
                for alias in node.names:
                    self.forget(alias.asname or alias.name)
                    self.modules[alias.asname or alias.name] = "functional." + alias.name
                return
            if node.module == "torch" and {a.name for a in node.names} <= {"nn", "optim"}:
                for a in node.names:  # from torch import nn
                    self.forget(a.asname or a.name)
                    self.modules[a.asname or a.name] = a.name
                return
            if node.module == "torch.autograd" and [a.name for a in node.names] == ["Function"]:
                self.modules[node.names[0].asname or "Function"] = "Function"  # class F(Function): a custom Function
                return
            if node.module == "torch.autograd" and {a.name for a in node.names} <= {"Variable", "grad"}:
                for a in node.names:
                    self.forget(a.asname or a.name)
                    self.modules[a.asname or a.name] = a.name
                return
            raise Refused(f"from {node.module or '.'} import ... is not supported ({_IMPORTS})")
        for alias in node.names:
            name = alias.asname or alias.name
            if alias.name == "torch" and alias.asname is None:
                self.modules["torch"] = "torch"
            elif alias.name == "torch.nn.functional" and alias.asname:
                self.modules[alias.asname] = "F"
            elif alias.name in ("torch.nn", "torch.optim") and alias.asname:  # import torch.nn as nn
                self.forget(alias.asname)
                self.modules[alias.asname] = alias.name.removeprefix("torch.")
            elif alias.name == "math" and alias.asname is None:
                self.modules["math"] = "math"
            else:
                raise Refused(f"import {alias.name}{' as ' + name if alias.asname else ''} is not supported ({_IMPORTS})")

    def function(self, node: ast.FunctionDef) -> None:
        """Keep a helper that returns one expression, to inline where it is called."""
        a = node.args
        modes = [self.grad_mode(d if isinstance(d, ast.Call) else ast.Call(d, [], [])) for d in node.decorator_list]
        if (None in modes or len(modes) > 1 or a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs
                or node.returns):
            raise Refused(f"function '{node.name}' has decorators, defaults or special parameters"
                          " (allowed: def f(a, b): return expression, perhaps under @torch.no_grad())")
        body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                             and isinstance(s.value.value, str))]
        if (len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None) and _hook_shaped(node, body):
            self.forget(node.name)
            self.hook_defs[node.name] = node  # only a hook may print and return None
            return None
        if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
            raise Refused(f"function '{node.name}' does not end with return expression"
                          " (allowed: def f(a, b): ... return expression)")
        self.forget(node.name)
        if len(body) > 1:  # statements, then a return: read where it is called, as name = f(...)
            if modes:
                raise Refused(f"function '{node.name}' under a decorator holds more than a return statement"
                              " (allowed: def f(a, b): return expression)")
            self.procedures[node.name] = ([p.arg for p in a.args], body)
            return
        self.functions[node.name] = ([p.arg for p in a.args], body[0].value)
        if modes:
            self.modes[node.name] = modes[0]

    def decide(self, node: ast.stmt, header: str, n: int) -> None:
        """Note how a loop or an if of f given to jacobian, vjp or jvp went: its runs, or 1 for its body and 0 for else."""
        if self.decided is not None:
            self.decided.append((node.lineno, header, n))

    def within(self, what: str) -> NoReturn:
        """Refuse what f, given to jacobian, vjp or jvp, does besides computing: torch would do it while it calls f."""
        kind, function = self.inside
        raise Refused(f"{what} inside '{function}', the function given to {kind} (allowed: not supported yet;"
                      " inside it: name = expression, for, while and if, then return)")

    def loop(self, node: ast.For) -> None:
        """Unroll `for i in range(k)`: the body once per value of i."""
        if node.orelse:
            raise Refused("for ... else is not supported (allowed: for i in range(k): ...)")
        if not isinstance(node.target, ast.Name):
            raise Refused("a for loop over anything but one name is not supported (allowed: for i in range(k): ...)")
        if isinstance(node.iter, (ast.List, ast.Tuple)):  # for p in [w, b]: the body once per tensor
            names = [self.tensor_name(e) if isinstance(e, ast.Name) else None for e in node.iter.elts]
            if None in names or len(names) > MAX_ITERATIONS:
                raise Refused(f"a loop over {_describe(node.iter)} (allowed: for i in range(k), for p in [w, b])")
            for name in names:
                self.forget(node.target.id)
                self.bound[node.target.id] = name
                self.block(node.body)
            return
        values = self.range_of(node.iter)
        self.decide(node, f"for {ast.unparse(node.target)} in {ast.unparse(node.iter)}", len(values))
        for i in values:
            self.constants[node.target.id] = ast.Constant(i)
            self.bound.pop(node.target.id, None)
            self.block(node.body)

    def range_of(self, node: ast.expr) -> range:
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
                and not node.keywords and 1 <= len(node.args) <= 3):
            raise Refused(f"a loop over {_describe(node)} is not supported (allowed: for i in range(k), for p in [w, b])")
        bounds = [self.integer_of(a) for a in node.args]
        try:
            values = range(*bounds)
        except ValueError:
            raise Refused("range() with step 0 (allowed: a non-zero step)") from None
        if len(values) > MAX_ITERATIONS:
            raise Refused(f"a loop of {len(values)} iterations (allowed: at most {MAX_ITERATIONS})")
        return values

    def integer_of(self, node: ast.expr) -> int:
        value = self.number(node)
        if value.denominator != 1:
            raise Refused(f"range() of {_describe(node)} (allowed: integers)")
        return int(value)

    def assign(self, target: ast.expr, value: ast.expr, line: int) -> None:
        if self.inside and (not isinstance(target, (ast.Name, ast.Tuple)) or self.grad_call(value) is not None
                            or self.functional_kind(value) or self.custom_of(value) or self.custom_of(value, called=False)
                            or isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                            and value.func.attr == "register_hook"):
            self.within(f"'{clip(ast.unparse(target) + ' = ' + ' '.join(ast.unparse(value).split()))}'")
        if isinstance(target, ast.Attribute) and target.attr == "data":  # w.data = w.data - lr * w.grad
            return self.update(target, None, value, line)
        if isinstance(target, ast.Attribute) and target.attr == "requires_grad":
            return self.set_requires_grad(target.value, value, line)
        if isinstance(target, ast.Attribute) and target.attr == "grad":
            if not (isinstance(value, ast.Constant) and value.value is None):
                raise Refused(f"assigning {_describe(value)} to {_describe(target)} (allowed: t.grad = None, t.grad.zero_())")
            return self.reset(target.value, line, clear=True)
        if self.grad_call(value) is not None:
            return self.assign_grad(target, value, line)
        if isinstance(target, (ast.Tuple, ast.List)) and self.unpacked(target, value):
            return None
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            names = [t.id for t in target.elts if isinstance(t, ast.Name)]
            taken = {n.id for v in value.elts for n in ast.walk(v) if isinstance(n, ast.Name)}
            if len(names) == len(target.elts) and not set(names) & taken:  # a, b = x, y: one after the other
                for t, v in zip(target.elts, value.elts):
                    self.assign(t, v, line)
                return None
        if not isinstance(target, ast.Name):
            raise Refused(f"assigning to {_describe(target)} (allowed: name = expression, or a, b = x, y)")
        name = target.id
        if self.gather(name, value, line):
            return None
        if isinstance(value, ast.Tuple):
            return self.tuple_(name, value, line)
        if self.functional_kind(value):  # H = hessian(f, x): what print(H) shows later is the call's
            called = self.functional(value)  # type: ignore[arg-type]
            self.forget(name)
            self.kept[name] = called
            return None
        if name == "_" and isinstance(value, ast.Call) and self.grad_mode(value) is not None:
            return self.expression_statement(value, line)  # _ = torch.set_grad_enabled(False)
        if isinstance(value, ast.Constant) and isinstance(value.value, bool):
            self.forget(name)
            self.flags[name] = value.value
            return None
        if isinstance(value, ast.Call) and dotted_name(value.func) == "torch.device":
            self.device(value)
            self.forget(name)
            self.devices.add(name)
            return None
        if isinstance(value, ast.Attribute) and dotted_name(value) in {f"torch.{d}" for d in TORCH_DTYPES}:
            self.forget(name)
            self.dtypes[name] = self.dtype(value)
            return None
        if isinstance(value, ast.Lambda):
            return self.lambda_(name, value)
        if self.custom_of(value, called=False):  # square = Square.apply
            function = self.custom_of(value, called=False)
            self.forget(name)
            self.aliases[name] = function
            return None
        if self.custom_of(value):  # y = Square.apply(x): y is the Function's output
            return self.apply(value, {}, 0, name=name)
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "register_hook":
            self.forget(name)
            self.register_hook(value, line, handle=name)
            self.handles[name] = len(self.hooks) - 1
            return None
        if self.is_number(value):
            self.forget(name)
            self.constants[name] = ast.Constant(self.number(value))
            return None
        if isinstance(value, ast.Call) and self.torch_path(value.func) == "torch.nn.Parameter":
            return self.parameter(name, value, line)
        if (isinstance(value, ast.Call) and self.torch_path(value.func).startswith(("torch.nn.", "torch.optim."))
                and not self.torch_path(value.func).startswith("torch.nn.functional.")):
            return self.module(name, value, line)
        made = self.creation(value)
        if made is not None:
            return self.leaf(name, made, line)
        if isinstance(value, ast.Name) and value.id in self.bound:  # h = x: another name for the same tensor
            node = self.tensor_name(value)
            self.forget(name)
            self.bound[name] = node
            return None
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in self.procedures:
            node = self.procedure(name, value, line)
            self.forget(name)
            self.bound[name] = node
            return None
        no_grad = self.no_grad
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in self.modes:
            no_grad = not self.modes[value.func.id]  # name = f(...) of a helper under @torch.no_grad()
            expr = ast.unparse(self.translate(value, decorated=True))
        else:
            expr = ast.unparse(self.translate(value))
        node = self.fresh(name)
        self.forget(name)
        self.bound[name] = node
        self.steps.append(Step(node, expr, line, no_grad, self.count))

    def procedure(self, name: str, call: ast.Call, line: int) -> str:
        """Read a call of a function of several statements: its body with the parameters bound; return its result's node.

        Its names are its own: the caller's bindings are as they were afterwards, as in Python.
        """
        params, body = self.procedures[call.func.id]  # type: ignore[attr-defined]
        if call.keywords or len(call.args) != len(params):
            raise Refused(f"calling {call.func.id} with other than its {len(params)} plain arguments"  # type: ignore[attr-defined]
                          f" (allowed: {call.func.id}({', '.join(params)}))")  # type: ignore[attr-defined]
        if self.depth >= MAX_INLINE_DEPTH:
            raise Refused(f"functions calling functions more than {MAX_INLINE_DEPTH} deep (allowed: at most {MAX_INLINE_DEPTH})")
        args = [self.tensor_name(a) if isinstance(a, ast.Name) and a.id in self.bound else None for a in call.args]
        if None in args:
            raise Refused(f"calling {call.func.id} with other than names of tensors"  # type: ignore[attr-defined]
                          " (allowed: f(x) with x a tensor of the example)")
        return self.body_of(params, args, body, name, line)  # type: ignore[arg-type]

    def body_of(self, params: list[str], args: list[str], body: list[ast.stmt], name: str, line: int) -> str:
        """Read a function's statements with its parameters bound to nodes; return its result's node."""
        saved = {k: dict(getattr(self, k)) for k in ("bound", "constants", "functions", "flags", "modes", "dtypes")}
        self.depth += 1
        try:
            for p, node in zip(params, args):
                self.forget(p)
                self.bound[p] = node
            self.local = True
            self.block(body[:-1])
            result = body[-1].value  # type: ignore[attr-defined]
            if isinstance(result, ast.Name) and result.id in self.bound:
                return self.tensor_name(result)
            node = self.fresh(name)
            self.steps.append(Step(node, ast.unparse(self.translate(result)), line, self.no_grad, self.count))
            return node
        finally:
            self.depth -= 1
            self.local = self.depth > 0
            for k, table in saved.items():
                setattr(self, k, table)
    def custom(self, node: ast.ClassDef) -> None:
        """Read class F(torch.autograd.Function): forward and backward static methods of whitelisted code."""
        base = node.bases[0] if len(node.bases) == 1 else None
        if (base is None or node.keywords or not (
                (isinstance(base, ast.Name) and self.modules.get(base.id) == "Function")
                or (dotted_name(base) == "torch.autograd.Function" and self.modules.get("torch") == "torch"))):
            raise Refused(f"the class '{clip(node.name)}', which is not a custom torch.autograd.Function ({_FUNCTION})")
        if not NAME.fullmatch(node.name) or node.name in RESERVED:
            raise Refused(f"the class name '{clip(node.name)}' (allowed: a letter, then up to 31 letters, digits or underscores)")
        methods: dict[str, ast.FunctionDef] = {}
        for item in node.body:
            if isinstance(item, ast.Pass) or (isinstance(item, ast.Expr) and isinstance(item.value, ast.Constant)
                                              and isinstance(item.value.value, str)):
                continue  # the class's docstring
            if not (isinstance(item, ast.FunctionDef) and item.name in ("forward", "backward") and item.name not in methods):
                raise _Located(item.lineno, f"{_describe(item) if not isinstance(item, ast.FunctionDef) else item.name!r}"
                               f" in the class {node.name} ({_FUNCTION})")
            a = item.args
            if (len(item.decorator_list) != 1 or not (isinstance(item.decorator_list[0], ast.Name)
                                                      and item.decorator_list[0].id == "staticmethod")):
                raise _Located(item.lineno, f"{item.name} of {node.name} without exactly @staticmethod ({_FUNCTION})")
            if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs or item.returns or len(a.args) != 2:
                raise _Located(item.lineno, f"{item.name}({', '.join(p.arg for p in a.args)}) of {node.name}: a Function"
                               " of other than one tensor, or special parameters (allowed: forward(ctx, x), backward(ctx,"
                               " grad_output))")
            methods[item.name] = item
        if set(methods) != {"forward", "backward"}:
            raise Refused(f"the class {node.name} without both forward and backward ({_FUNCTION})")
        fwd, bwd = methods["forward"], methods["backward"]
        ctx, param = (p.arg for p in fwd.args.args)
        bctx, grad = (p.arg for p in bwd.args.args)
        forward, saved_names, result = self.method_body(fwd, ctx, {param}, node.name)
        if result is None:
            raise _Located(fwd.lineno, f"forward of {node.name} without a return ({_FUNCTION})")
        known = {param} | {n for n, _, _ in forward}
        saves = saved_names or []
        if any(n not in known for n in saves):
            raise _Located(fwd.lineno, f"ctx.save_for_backward of a name forward does not bind ({_FUNCTION})")
        masks: list = []
        clones: set[str] = set()
        backward, unpacked, ret = self.method_body(bwd, bctx, {grad}, node.name, saves=saves, masks=masks, clones=clones)
        if ret is None:
            raise _Located(bwd.lineno, f"backward of {node.name} without a return ({_FUNCTION})")
        from ..ops.function import chain_of, factors as split, other_side, regrouped_product

        factors = split(ret)
        grads = {grad} | clones if masks or clones else {grad}
        own = [f for f in factors if isinstance(f, ast.Name) and f.id in grads]
        rest = [f for f in factors if not (isinstance(f, ast.Name) and f.id in grads)]
        if masks and [f.id for f in own] != [next(iter(clones))]:  # type: ignore[attr-defined]
            raise _Located(ret.lineno, f"backward of {node.name} returns {_describe(ret)} after masking the clone"
                           " (allowed: return the masked clone)")
        if len(masks) > 1:
            raise _Located(bwd.lineno, f"backward of {node.name} masks more than once (allowed: one grad_input[m < 0] = 0)")
        mentions = any(isinstance(n, ast.Name) and n.id == grad for f in rest for n in ast.walk(f))
        if len(own) != 1 or mentions or any(grad in {n.id for n in ast.walk(v) if isinstance(n, ast.Name)}
                                            for _, v, _ in backward):
            raise _Located(ret.lineno, f"backward of {node.name} returns {_describe(ret)}, not {grad} times a factor"
                           f" (allowed: return {grad} * expression, element by element)")
        self.forget(node.name)
        other = other_side(ret, own[0])
        rest = [other] if other is not None and not masks else rest
        chain = chain_of(ret, own[0]) if other is None and regrouped_product(rest) else []
        code = ast.unparse(_canonical(node, fwd, bwd))
        function = Function(node.name, code, node.lineno, self.count, ast.unparse(result), ast.unparse(ret), param, grad,
                            ret.lineno)
        self.customs[node.name] = _Custom(function, forward, result, unpacked, backward, rest, node.lineno, masks,
                                          chain)

    def method_body(self, method: ast.FunctionDef, ctx: str, names: set[str], cls: str, *,
                    saves: list[str] | None = None, masks: list | None = None,
                    clones: set[str] | None = None) -> tuple[list[tuple[str, ast.expr, int]], list, ast.expr | None]:
        """Return a method's locals, what it saves (forward) or unpacks (backward), and its return.

        In backward (masks given): grad_input = grad_output.clone() adds to clones, grad_input[m < 0] = 0 to masks.
        """
        from ..ops.function import keeps

        clones = set() if clones is None else clones
        local: list[tuple[str, ast.expr, int]] = []
        extra: list = []
        found: ast.expr | None = None
        body = [s for s in method.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                               and isinstance(s.value.value, str))]
        bound = set(names)
        for item in body:
            where = f"in {method.name} of {cls}"
            if found is not None:
                raise _Located(item.lineno, f"a statement after the return {where} ({_FUNCTION})")
            if isinstance(item, ast.Return) and item.value is not None:
                found = item.value
            elif (saves is None and isinstance(item, ast.Expr) and isinstance(item.value, ast.Call)
                  and dotted_name(item.value.func) == f"{ctx}.save_for_backward" and not item.value.keywords
                  and all(isinstance(a, ast.Name) for a in item.value.args) and not extra):
                extra = [a.id for a in item.value.args]  # type: ignore[attr-defined]
                continue
            elif saves is not None and isinstance(item, ast.Assign) and len(item.targets) == 1 and (
                    dotted_name(item.value) == f"{ctx}.saved_tensors" or (
                    isinstance(item.value, ast.Subscript) and dotted_name(item.value.value) == f"{ctx}.saved_tensors")):
                target, value = item.targets[0], item.value
                if isinstance(value, ast.Subscript):  # a = ctx.saved_tensors[0]
                    index = value.slice
                    if not (isinstance(target, ast.Name) and isinstance(index, ast.Constant) and type(index.value) is int
                            and 0 <= index.value < len(saves)):
                        raise _Located(item.lineno, f"{_describe(item)} {where} (allowed: a = ctx.saved_tensors[i]"
                                       f" for i below {len(saves)})")
                    pairs = [(target.id, saves[index.value])]
                else:  # a, = ctx.saved_tensors
                    elts = target.elts if isinstance(target, (ast.Tuple, ast.List)) else None
                    if elts is None or len(elts) != len(saves) or not all(isinstance(e, ast.Name) for e in elts):
                        raise _Located(item.lineno, f"{_describe(item)} {where} (allowed: one name for each of the"
                                       f" {len(saves)} saved tensors, such as a, = ctx.saved_tensors)")
                    pairs = [(e.id, saved) for e, saved in zip(elts, saves)]  # type: ignore[attr-defined]
                extra += pairs
                bound.update(n for n, _ in pairs)
                continue
            elif (masks is not None and isinstance(item, ast.Assign) and len(item.targets) == 1
                  and isinstance(item.targets[0], ast.Name) and isinstance(item.value, ast.Call)
                  and dotted_name(item.value.func) in {f"{n}.clone" for n in names} and not item.value.args
                  and not item.value.keywords and not clones):
                clones.add(item.targets[0].id)  # grad_input = grad_output.clone(): grad_output, to be masked
                bound.add(item.targets[0].id)
                continue
            elif masks is not None and isinstance(item, ast.Assign) and len(item.targets) == 1 and _is_mask(item, clones):
                target = item.targets[0]
                compare = target.slice  # type: ignore[attr-defined]
                if self.number(item.value) != 0 or not keeps(compare.ops[0]):
                    raise _Located(item.lineno, f"{_describe(item)} {where} (allowed: grad_input[m < 0] = 0, with"
                                   " <, >, <= or >= and a number)")
                free = {n.id for n in ast.walk(compare.left) if isinstance(n, ast.Name)} - bound - {"torch"}
                if free or names & {n.id for n in ast.walk(compare.left) if isinstance(n, ast.Name)}:
                    raise _Located(item.lineno, f"{_describe(item)} {where} (allowed: a mask of the saved tensors)")
                masks.append((keeps(compare.ops[0]), compare.left, self.number(compare.comparators[0])))
                continue
            elif (isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name)
                  and item.targets[0].id not in bound | {ctx}):
                local.append((item.targets[0].id, item.value, item.lineno))
            else:
                raise _Located(item.lineno, f"{_describe(item)} {where} ({_FUNCTION})")
            value = found if found is not None else item.value  # type: ignore[attr-defined]
            free = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)} - bound - {"torch"}
            if free:
                raise _Located(item.lineno, f"the name '{clip(sorted(free)[0])}' {where} (allowed: its parameters,"
                               " the names it binds and torch)")
            if found is None:
                bound.add(item.targets[0].id)  # type: ignore[attr-defined]
        return local, extra, found

    def custom_of(self, node: ast.expr, *, called: bool = True) -> str:
        """Return the Function a call F.apply(x) (or f(x), with f = F.apply) applies; called=False: F.apply itself."""
        from ..ops.function import is_apply

        if called:
            if not isinstance(node, ast.Call):
                return ""
            if isinstance(node.func, ast.Name) and node.func.id in self.aliases:
                return self.aliases[node.func.id]
            node = node.func
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in self.customs
                and is_apply(node.attr)):
            return node.value.id
        return ""

    def apply(self, call: ast.Call, env: dict[str, ast.expr], depth: int, *, name: str = "") -> ast.expr:
        """Inline F.apply(x): forward's steps (unrecorded, as torch runs it), backward's factor, and the output's step."""
        from ..ops.function import APPLY, product as products

        cls = self.custom_of(call)
        if self.inside:
            self.within(f"{cls}.apply(...)")
        custom = self.customs[cls]
        if len(call.args) != 1 or call.keywords or isinstance(call.args[0], ast.Starred):
            raise Refused(f"{cls}.apply with other than one tensor (allowed: {cls}.apply(x))")
        line = self.last_line
        hidden: list[str] = []

        def step(base: str, expr: ast.expr, scope: dict[str, ast.expr], line: int) -> ast.expr:
            translated = self.translate(expr, scope, depth + 1)
            if isinstance(translated, (ast.Name, ast.Constant)):
                return translated
            node = self.fresh(base)
            if self.renamed and self.renamed[-1][0] == node:
                self.renamed.pop()  # a Function's own local, which the code never binds at the top: no rebinding to tell
            self.steps.append(Step(node, ast.unparse(translated), line, True, self.count))
            hidden.append(node)
            return ast.Name(node, ast.Load())

        arg = self.translate(call.args[0], env, depth)
        if isinstance(arg, ast.Name) and (arg.id in self.leaves or arg.id in {s.name for s in self.steps}):
            x = arg.id
        else:  # Exp.apply(c + d * x): the input is a step of its own
            x = self.fresh(custom.function.param)
            self.steps.append(Step(x, ast.unparse(arg), line, self.no_grad, self.count))
        scope: dict[str, ast.expr] = {custom.function.param: ast.Name(x, ast.Load())}
        for local, expr, at in custom.forward:
            scope[local] = step(local, expr, scope, at)
        result = step("forward", custom.result, scope, custom.result.lineno)
        if not isinstance(result, ast.Name) or result.id == x:
            raise _Located(custom.line, f"forward of {cls} returns {_describe(custom.result)}, not a new tensor"
                           " (allowed: a computation on its input)")
        bscope = {mine: scope[theirs] for mine, theirs in custom.saved}
        for local, expr, at in custom.backward:
            bscope[local] = step(local, expr, bscope, at)
        product = products(custom.factor)
        factor = step("d" + cls, product, bscope, custom.factor[0].lineno) if product is not None else ast.Constant(1)
        factor_arg = _arg(factor)
        chain = tuple(_arg(step("d" + cls, f, bscope, f.lineno)) for f in custom.chain)
        mask = ("", "", Fraction(0))
        if custom.masks:
            keep, subject, at = custom.masks[0]
            m = step("mask", subject, bscope, custom.line)
            if not isinstance(m, ast.Name):
                raise _Located(custom.line, f"backward of {cls} masks by {_describe(subject)} (allowed: a tensor)")
            mask = (m.id, keep, at)
        node = self.fresh(name or cls.lower())
        if name:
            self.forget(name)
            self.bound[name] = node
        self.steps.append(Step(node, f"{cls}.{APPLY}({x})", line, self.no_grad, self.count))
        self.applied.append(Applied(node, cls, x, result.id, factor_arg, tuple(hidden), line, *mask, chain=chain))
        return ast.Name(node, ast.Load())

    def lambda_(self, name: str, node: ast.Lambda) -> None:
        a = node.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs:
            raise Refused(f"lambda '{name}' has defaults or special parameters (allowed: lambda a, b: expression)")
        self.forget(name)
        self.functions[name] = ([p.arg for p in a.args], node.body)

    def grad_call(self, node: ast.expr) -> ast.Call | None:
        """Return the torch.autograd.grad(...) call of grad(...) or grad(...)[k], if node is one."""
        call = node.value if isinstance(node, ast.Subscript) else node
        if not isinstance(call, ast.Call):
            return None
        func = call.func
        if isinstance(func, ast.Name) and self.modules.get(func.id) == "grad":
            return call
        dotted = dotted_name(func)
        head = dotted.partition(".")[0]
        if dotted.endswith(".autograd.grad") and dotted.count(".") == 2 and self.modules.get(head) == "torch":
            return call
        return None

    def assign_grad(self, target: ast.expr, value: ast.expr, line: int) -> None:
        """Read g = torch.autograd.grad(y, x)[0], g, = ..., dx, dw = ... or g = ... (a tuple read as g[0])."""
        call = self.grad_call(value)
        names = ("outputs", "inputs", "grad_outputs", "retain_graph", "create_graph")
        if len(call.args) > len(names) or any(k.arg not in names for k in call.keywords):
            raise Refused("torch.autograd.grad with other arguments than outputs, inputs, grad_outputs=,"
                          " retain_graph=, create_graph= (allowed: those)")
        given = dict(zip(names, call.args)) | {k.arg: k.value for k in call.keywords}
        if "outputs" not in given or "inputs" not in given:
            raise Refused("torch.autograd.grad without outputs and inputs (allowed: torch.autograd.grad(y, x))")
        inputs = given["inputs"].elts if isinstance(given["inputs"], (ast.Tuple, ast.List)) else [given["inputs"]]
        flags = {k: self.flag(given[k], k) for k in ("retain_graph", "create_graph")
                 if k in given and not (isinstance(given[k], ast.Constant) and given[k].value is None)}
        if "grad_outputs" in given and not (isinstance(given["grad_outputs"], ast.Constant)
                                            and given["grad_outputs"].value is None):
            raise Refused("torch.autograd.grad(grad_outputs=...) (allowed: not supported yet; a one-element output,"
                          " whose gradient torch makes as 1)")
        create = flags.get("create_graph", False)
        retain = flags.get("retain_graph", create)
        outputs = self.translate(given["outputs"])
        ins = [self.translate(i) for i in inputs]
        if isinstance(value, ast.Subscript):
            picks = [self.integer_of(value.slice)]
            if not -len(ins) <= picks[0] < len(ins):
                raise Refused(f"index {picks[0]} of the {len(ins)} gradients torch.autograd.grad returns"
                              f" (allowed: 0 to {len(ins) - 1})")
            targets = [target]
        elif isinstance(target, (ast.Tuple, ast.List)):
            if len(target.elts) != len(ins):
                raise Refused(f"unpacking the {len(ins)} gradients torch.autograd.grad returns into"
                              f" {len(target.elts)} names (allowed: as many names as inputs)")
            picks, targets = list(range(len(ins))), list(target.elts)
        elif isinstance(target, ast.Name):
            picks, targets = list(range(len(ins))), [target]
        else:
            raise Refused(f"assigning to {_describe(target)} (allowed: g = torch.autograd.grad(y, x)[0])")
        if not all(isinstance(t, ast.Name) for t in targets):
            raise Refused("unpacking torch.autograd.grad's tuple into other than names (allowed: dx, dw = ...)")
        made = []
        for n, k in enumerate(picks):
            keep = retain or n < len(picks) - 1  # one call per gradient in the code: all but the last keep the graph
            args = [outputs, ast.Tuple(ins, ast.Load()) if len(ins) > 1 else ins[0]]
            keywords = ([ast.keyword("retain_graph", ast.Constant(True))] if keep and not create else [])
            keywords += [ast.keyword("create_graph", ast.Constant(True))] if create else []
            call_code = ast.Call(ast.Attribute(ast.Attribute(ast.Name("torch"), "autograd"), "grad"), args, keywords)
            expr = ast.unparse(ast.Subscript(call_code, ast.Constant(k)))
            base = targets[min(n, len(targets) - 1)].id
            node = self.fresh(base)
            self.steps.append(Step(node, expr, line, self.no_grad, self.count))
            made.append(node)
        if isinstance(target, ast.Name) and not isinstance(value, ast.Subscript):
            self.forget(target.id)
            self.grads[target.id] = made
            return None
        for t, node in zip(targets, made):
            self.forget(t.id)
            self.bound[t.id] = node
        return None

    def grad_item(self, node: ast.AST) -> str | None:
        """Return the node of g[k], where g holds torch.autograd.grad's tuple."""
        if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in self.grads):
            return None
        made = self.grads[node.value.id]
        k = self.integer_of(node.slice)
        if not -len(made) <= k < len(made):
            raise Refused(f"{node.value.id}[{k}] of a tuple of {len(made)} gradients (allowed: 0 to {len(made) - 1})")
        return made[k]

    # -- torch.nn.Linear, torch.nn.MSELoss and torch.optim.SGD ------------

    def torch_path(self, node: ast.expr) -> str:
        """Return the dotted name torch knows a chain by: nn.Linear (import torch.nn as nn) is torch.nn.Linear."""
        dotted = dotted_name(node)
        head, dot, rest = dotted.partition(".")
        alias = self.modules.get(head) if head not in self.bound else None
        if alias in ("nn", "optim"):
            return f"torch.{alias}{dot}{rest}"
        if alias == "torch":
            return f"torch{dot}{rest}"
        return ""

    def module(self, name: str, call: ast.Call, line: int) -> None:
        """Read model = nn.Linear(...), loss = nn.MSELoss(...) or optimizer = torch.optim.SGD(params, lr=...)."""
        path = self.torch_path(call.func)
        if not NAME.fullmatch(name) or name in RESERVED:
            raise Refused(f"the name '{clip(name)}' (allowed: a letter, then up to 31 letters, digits or underscores)")
        if path == "torch.nn.Linear":
            given = self.arguments(call, "nn.Linear", ("in_features", "out_features", "bias", "device", "dtype"), 2)
            sizes = [self.integer_of(given[k]) for k in ("in_features", "out_features")]
            if min(sizes) < 1:
                raise Refused(f"nn.Linear{tuple(sizes)} (allowed: positive sizes)")
            self.sized((sizes[1], sizes[0]))
            if "device" in given:
                self.device(given["device"])
            bias = self.flag(given["bias"], "bias") if "bias" in given else True
            dtype = self.dtype(given["dtype"]) if "dtype" in given else None
            self.forget(name)
            self.linears[name] = _Linear(name, sizes[0], sizes[1], bias, dtype, line, f"{name} = {ast.unparse(call)}")
            self.made.append(self.linears[name])
            return None
        if path == "torch.nn.MSELoss":
            given = self.arguments(call, "nn.MSELoss", ("size_average", "reduce", "reduction"), 0)
            if "size_average" in given or "reduce" in given:
                raise Refused("nn.MSELoss(size_average=..., reduce=...), deprecated (allowed: reduction='mean', 'sum' or"
                              " 'none')")
            reduction = given.get("reduction", ast.Constant(REDUCTIONS[0]))
            if not (isinstance(reduction, ast.Constant) and reduction.value in REDUCTIONS):
                raise Refused(f"nn.MSELoss(reduction={_describe(reduction)[1:-1]})"
                              f" (allowed: {', '.join(repr(r) for r in REDUCTIONS)})")
            self.forget(name)
            self.criteria[name] = _Criterion(name, reduction.value, f"{name} = {ast.unparse(call)}", line)
            self.made.append(self.criteria[name])
            return None
        if path == "torch.optim.SGD":
            given = self.arguments(call, "torch.optim.SGD", ("params", "lr", "momentum", "dampening", "weight_decay",
                                                             "nesterov", "maximize", "foreach", "differentiable",
                                                             "fused"), 1)
            for key in ("momentum", "dampening", "weight_decay", "nesterov", "maximize", "foreach", "differentiable",
                        "fused"):
                if key in given and not (isinstance(given[key], ast.Constant) and given[key].value in (0, False, None)):
                    raise Refused(f"torch.optim.SGD({key}={_describe(given[key])[1:-1]}) (allowed: not supported yet;"
                                  " plain SGD: torch.optim.SGD(params, lr=...))")
            lr = self.number(given["lr"]) if "lr" in given else Fraction(1, 1000)  # torch's default
            if lr < 0:
                raise Refused(f"torch.optim.SGD(lr={_describe(given['lr'])[1:-1]}): torch raises ValueError"
                              " (allowed: lr >= 0)")
            params = self.parameters_of(given["params"])
            self.forget(name)
            self.optimizers[name] = _Optimizer(params, lr, name, f"{name} = {ast.unparse(call)}", line)
            self.made.append(self.optimizers[name])
            return None
        kind = "an optimizer" if path.startswith("torch.optim.") else "a module"
        raise Refused(f"{path}, {kind} derive does not read yet (allowed: torch.nn.Linear, torch.nn.MSELoss,"
                      " torch.nn.init.constant_, torch.optim.SGD)")

    def arguments(self, call: ast.Call, what: str, names: tuple[str, ...], required: int) -> dict[str, ast.expr]:
        """Match a call's arguments to names as Python does; the first `required` must be given."""
        if len(call.args) > len(names) or any(isinstance(a, ast.Starred) for a in call.args):
            raise Refused(f"{what} with {len(call.args)} arguments (allowed: {what}({', '.join(names[:max(required, 1)])}, ...))")
        given = dict(zip(names, call.args))
        for k in call.keywords:
            if k.arg not in names or k.arg in given:
                raise Refused(f"{what}({k.arg or '**'}=...) (allowed: {', '.join(n + '=' for n in names)})")
            given[k.arg] = k.value
        missing = [n for n in names[:required] if n not in given]
        if missing:
            raise Refused(f"{what} without {missing[0]} (allowed: {what}({', '.join(names[:required])}))")
        return given

    def parameters_of(self, node: ast.expr) -> tuple[tuple[str, str], ...]:
        """Return an optimizer's parameters: model.parameters(), or a list of tensors such as [w, b]."""
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "list"
                and len(node.args) == 1 and not node.keywords):
            node = node.args[0]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "parameters"
                and isinstance(node.func.value, ast.Name) and node.func.value.id in self.linears
                and not node.args and not node.keywords):
            linear = self.linears[node.func.value.id]
            return tuple((linear.name, k) for k in ("weight", "bias") if k == "weight" or linear.bias)
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
            found = []
            for e in node.elts:
                attr = self.linear_attribute(e)
                if attr is not None:
                    found.append(attr)
                    continue
                current = self.tensor_name(e)
                if current not in self.leaves:
                    raise Refused(f"optimizing '{current}', which is not a leaf: torch raises ValueError (allowed:"
                                  " tensors made by torch.tensor, ones, ..., or model.parameters())")
                found.append(("", self.versions.get(current, current)))
            if len(set(found)) != len(found):
                raise Refused("a tensor twice among an optimizer's parameters (allowed: each once)")
            return tuple(found)
        raise Refused(f"the parameters {_describe(node)} (allowed: model.parameters() of an nn.Linear, or [w, b])")

    def linear_attribute(self, node: ast.expr) -> tuple[str, str] | None:
        """Return (module, "weight" or "bias") for model.weight or model.bias of an nn.Linear, else None."""
        if (isinstance(node, ast.Attribute) and node.attr in ("weight", "bias") and isinstance(node.value, ast.Name)
                and node.value.id in self.linears):
            linear = self.linears[node.value.id]
            if node.attr == "bias" and not linear.bias:
                raise Refused(f"{node.value.id}.bias of nn.Linear(..., bias=False), which is None (allowed: the weight)")
            return linear.name, node.attr
        return None

    def current(self, ref: tuple[str, str]) -> str:
        """Return the node of a parameter's values now: refused if torch would still hold random numbers."""
        module, what = ref
        if not module:
            first = what
        else:
            linear = self.linears[module] if module in self.linears else None
            first = getattr(linear, what + "_node", "") if linear is not None else ""
            if not first:
                raise Refused(f"{module}.{what} is used before it is set: torch draws nn.Linear's initial {what} at"
                              f" random, so its numbers are not known (allowed: nn.init.constant_({module}.{what}, c)"
                              f" before using it, or {module}.{what}.copy_(torch.tensor(...)) under torch.no_grad())")
        node = self.latest.get(first, first)
        self.leaves[node].used = True
        return node

    def initialize(self, call: ast.Call, line: int) -> None:
        """Read nn.init.constant_(model.weight, c): the parameter's numbers, all c, set once before it is used."""
        path = self.torch_path(call.func)
        method = call.func.attr if not path else ""  # type: ignore[attr-defined]
        if method:  # model.weight.fill_(c) or .copy_(torch.tensor(...)) under torch.no_grad()
            given = self.arguments(call, method, ("value" if method == "fill_" else "src",), 1)
            given["tensor"] = call.func.value  # type: ignore[attr-defined]
            if not self.no_grad:
                raise Refused(f"{_describe(call.func)[1:-1]}(...) while torch records: torch raises 'a leaf Variable"  # type: ignore[attr-defined]
                              " that requires grad is being used in an in-place operation' (allowed: inside with"
                              " torch.no_grad():, or nn.init.constant_(t, c))")
        elif path != "torch.nn.init.constant_":
            raise Refused(f"{path}, which draws random numbers or is not read yet (allowed: nn.init.constant_(t, c))")
        else:
            given = self.arguments(call, "nn.init.constant_", ("tensor", "val"), 2)
        ref = self.linear_attribute(given["tensor"])
        if ref is None:
            raise Refused(f"nn.init.constant_ of {_describe(given['tensor'])} (allowed: model.weight or model.bias of an"
                          " nn.Linear)")
        linear = self.linears[ref[0]]
        if getattr(linear, ref[1] + "_node"):
            raise Refused(f"{ref[0]}.{ref[1]} set a second time (allowed: nn.init.constant_ once, before using it)")
        shape = (linear.outputs, linear.inputs) if ref[1] == "weight" else (linear.outputs,)
        if method == "copy_":
            made = self.creation(given["src"])
            if made is None:
                raise Refused(f"{ref[0]}.{ref[1]}.copy_ of {_describe(given['src'])} (allowed: a tensor made by"
                              " torch.tensor, ones, ...)")
            array = _rounded(made[0], made[1] or "float32")
            if array.shape != shape:
                raise Refused(f"{ref[0]}.{ref[1]}.copy_ of shape {list(array.shape)} into shape {list(shape)}"
                              " (allowed: the parameter's own shape)")
            value = None
        else:
            value = self.number(given["value" if method else "val"])
            array = Array(shape, (value,) * math.prod(shape))
        node = self.fresh(ref[1])
        if self.renamed and self.renamed[-1][0] == node:
            self.renamed.pop()  # no Python name of the author's: the module's own
        array = _rounded(array, linear.dtype or "float32")
        self.leaves[node] = _Leaf(array, linear.dtype, True, line, seq=self.count, parameter=True)
        setattr(linear, ref[1] + "_node", node)
        linear.numbers[ref[1]] = _number_text(value) if value is not None else ""

    def optimize(self, call: ast.Call, line: int) -> None:
        """Read optimizer.step(): p.add_(p.grad, alpha=-lr) for each parameter; optimizer.zero_grad(): reset each grad."""
        func = call.func
        owner = func.value.id if isinstance(func.value, ast.Name) else ""  # type: ignore[attr-defined]
        if owner in self.linears and func.attr == "zero_grad":  # type: ignore[attr-defined]
            params = self.parameters_of(ast.Call(ast.Attribute(func.value, "parameters"), [], []))  # type: ignore[attr-defined]
            lr = Fraction(0)
        elif owner in self.optimizers:
            params, lr = self.optimizers[owner].params, self.optimizers[owner].lr
        else:
            raise Refused(f"calling {_describe(func)} on its own: '{owner or _describe(func.value)}' is not an optimizer"  # type: ignore[attr-defined]
                          " of the example (allowed: optimizer.step() and optimizer.zero_grad() of a torch.optim.SGD)")
        if func.attr == "zero_grad":  # type: ignore[attr-defined]
            given = self.arguments(call, f"{owner}.zero_grad", ("set_to_none",), 0)
            clear = self.flag(given["set_to_none"], "set_to_none") if "set_to_none" in given else True
            if owner in self.optimizers:
                self.optimizers[owner].zeroed = "none" if clear else "zeros"
            for ref in params:
                node = self.current(ref)
                self.resets.append(Reset(self.versions.get(node, node), clear, len(self.calls), line, self.count,
                                         skips=True))
            return None
        if call.args or call.keywords:
            raise Refused(f"{owner}.step(...) with a closure (allowed: {owner}.step())")
        if self.local:
            raise Refused(f"{owner}.step() inside a function of several statements (allowed: outside functions)")
        alpha = _number_text(-lr)
        for ref in params:
            node = self.current(ref)
            first = self.versions.get(node, node)
            code = f"{first}.data = {scaled_add(first, first + '.grad', alpha)}"
            self.version_of(node, scaled_add("p1", "p2", alpha), {(node, "value"): "p1", (node, "grad"): "p2"},
                            line, code, data=True, skips=True)
        return None

    def unpacked(self, target: ast.Tuple | ast.List, value: ast.expr) -> bool:
        """Read [w, b] = model.parameters() or n, d = X.shape; return False for other unpacking."""
        names = [t.id if isinstance(t, ast.Name) else None for t in target.elts]
        if isinstance(value, ast.Attribute) and value.attr == "shape" and isinstance(value.value, ast.Name):
            node = self.tensor_name(value.value)
            shape = self.shape_of(node)
            if None in names or len(names) != len(shape):
                raise Refused(f"unpacking the shape {list(shape)} into {len(names)} names (allowed: as many names as"
                              " dimensions)")
            for n, size in zip(names, shape):
                self.forget(n)  # type: ignore[arg-type]
                self.constants[n] = ast.Constant(size)  # type: ignore[index]
            return True
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "list"
                and len(value.args) == 1):
            value = value.args[0]
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "parameters"):
            return False
        params = self.parameters_of(value)
        if None in names or len(names) != len(params):
            raise Refused(f"unpacking {len(params)} parameters into {len(names)} names (allowed: as many names)")
        nodes = [self.current(ref) for ref in params]
        for n, node in zip(names, nodes):
            self.forget(n)  # type: ignore[arg-type]
            self.bound[n] = node  # type: ignore[index]
        return True

    def leaf(self, name: str, made: tuple[Array, str | None, bool], line: int) -> None:
        node = self.fresh(name)
        self.forget(name)
        self.bound[name] = node
        self.leaves[node] = _Leaf(made[0], made[1], made[2], line, seq=self.count)

    def parameter(self, name: str, node: ast.Call, line: int) -> None:
        """Read torch.nn.Parameter(t, requires_grad=True): a leaf of t's values that requires grad by default."""
        if len(node.args) != 1 or any(k.arg != "requires_grad" for k in node.keywords):
            raise Refused("torch.nn.Parameter(...) with other than a tensor and requires_grad="
                          " (allowed: torch.nn.Parameter(torch.tensor([...])))")
        made = self.creation(node.args[0])
        if made is None:
            source = self.tensor_name(node.args[0])
            if source not in self.leaves:
                raise Refused(f"a Parameter of the computed tensor '{source}'"
                              " (allowed: of a tensor made by torch.tensor, ones, ...)")
            made = (self.leaves[source].array, self.leaves[source].dtype, False)
        grad = self.flag(node.keywords[0].value, "requires_grad") if node.keywords else True
        self.leaf(name, (made[0], made[1], grad), line)
        self.leaves[self.bound[name]].parameter = True

    def set_requires_grad(self, target: ast.expr, value: ast.expr, line: int) -> None:
        flag = self.flag(value, "requires_grad")
        if self.changes_flag(target, flag, line, "{}.requires_grad = " + str(flag)):
            return
        self.require(self.leaf_named(target), flag)

    def changes_flag(self, target: ast.expr, flag: bool, line: int, code: str) -> bool:  # code: "{}" for its name
        """Read a requires_grad change after the tensor was computed with, or of a computed tensor: new values' node.

        To torch it is the same tensor; what is computed from it afterwards does (or does not) record a grad_fn.
        """
        if not (isinstance(target, ast.Name) and target.id in self.bound):
            return False
        node = self.bound[target.id]
        if node in self.leaves:
            leaf = self.leaves[node]
            used = any(node in _names_in(s.expr) for s in self.steps) or any(c.output == node for c in self.calls)
            if flag == leaf.requires_grad or not used:
                return False
        refs = {(node, "value"): "p1"}
        self.new_version(target.id, "p1", refs, line, code.format(self.versions.get(node, node)), requires_grad=flag)
        return True

    def leaf_named(self, node: ast.expr) -> str:
        name = node.id if isinstance(node, ast.Name) else None
        if name is None or self.bound.get(name) not in self.leaves:
            raise Refused(f"requires_grad of {_describe(node)} (allowed: set it on a tensor made by torch.tensor, ones, ...)")
        return self.bound[name]

    def require(self, node: str, flag: bool) -> None:
        leaf = self.leaves[node]
        if flag == leaf.requires_grad:
            return
        if any(node in _names_in(s.expr) for s in self.steps) or any(c.output == node for c in self.calls):
            raise Refused(f"requires_grad changed after '{node}' was used (allowed: set it before computing with it)")
        if not flag and leaf.used:
            raise Refused(f"requires_grad turned off after '{node}' was printed (allowed: turn it on after printing)")
        if leaf.used:  # printed before: those prints show the tensor without requires_grad, as torch does
            leaf.grad_from = self.count
        leaf.requires_grad = flag

    def forget(self, name: str) -> None:
        """Unbind a Python name before binding it anew."""
        for table in (self.bound, self.constants, self.functions, self.flags, self.modes, self.dtypes, self.procedures,
                      self.aliases, self.grads, self.linears, self.criteria, self.optimizers):
            table.pop(name, None)
        self.tuples.pop(name, None)
        self.kept.pop(name, None)
        self.devices.discard(name)

    def fresh(self, name: str) -> str:
        """Return a node name for a new binding of a Python name: the name itself first, then name2, name3, ..."""
        base = name + "_" if name in RESERVED else name
        if not NAME.fullmatch(base):
            raise Refused(f"the name '{clip(name)}' (allowed: a letter, then up to 31 letters, digits or underscores)")
        candidate, k = base, 1
        while candidate in self.taken or candidate in self.bound.values():
            k += 1
            candidate = f"{base}_{k}" if base[-1].isdigit() else f"{base}{k}"  # c1's second binding: c1_2, not c12
        self.taken.add(candidate)
        if candidate != name:
            self.renamed.append((candidate, name))
        return candidate

    def expression_statement(self, node: ast.expr, line: int) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return None  # a docstring or a string used as a comment
        if self.inside:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                self.within(f"{_describe(node)}, which torch runs once when it calls the function,")
            self.within(_describe(node))
        if not isinstance(node, ast.Call):
            raise Refused(f"{_describe(node)} as a statement (allowed: t.backward(...), print(...))")
        func = node.func
        if isinstance(func, ast.Name) and func.id == "print":
            return self.print_(node, line)
        if isinstance(func, ast.Attribute) and func.attr == "set_grad_enabled":
            mode = self.grad_mode(node)
            if mode is not None:
                self.no_grad = not mode  # from here on, until a with block it is inside ends
                return None
        if isinstance(func, ast.Attribute) and func.attr == "backward":
            return self.backward(node, line)
        if self.torch_path(func).startswith("torch.nn.init."):
            return self.initialize(node, line)
        if isinstance(func, ast.Attribute) and func.attr in ("fill_", "copy_") and self.linear_attribute(func.value):
            return self.initialize(node, line)
        if isinstance(func, ast.Attribute) and func.attr in ("step", "zero_grad"):
            return self.optimize(node, line)
        if isinstance(func, ast.Attribute) and func.attr == "zero_" and not node.args and not node.keywords:
            grad = func.value.value if isinstance(func.value, ast.Attribute) and func.value.attr == "data" else func.value
            if isinstance(grad, ast.Attribute) and grad.attr == "grad":
                return self.reset(grad.value, line, clear=False)
        if isinstance(func, ast.Attribute) and func.attr == "retain_grad" and not node.args and not node.keywords:
            self.retained.append(Retain(self.tensor_name(func.value), len(self.calls), line, self.count))
            return None
        if isinstance(func, ast.Attribute) and func.attr == "requires_grad_":
            flag = self.flag(node.args[0], "requires_grad_") if node.args else True
            if self.changes_flag(func.value, flag, line, "{}.requires_grad_(" + str(flag) + ")"):
                return None
            return self.require(self.leaf_named(func.value), flag)
        if isinstance(func, ast.Attribute) and func.attr == "register_hook":
            return self.register_hook(node, line)
        if (isinstance(func, ast.Attribute) and func.attr == "remove" and isinstance(func.value, ast.Name)
                and func.value.id in self.handles and not node.args and not node.keywords):
            return self.remove_hook(func.value.id)
        if (isinstance(func, ast.Attribute) and func.attr == "manual_seed" and isinstance(func.value, ast.Name)
                and self.modules.get(func.value.id) == "torch"):
            return self.manual_seed(node)
        raise Refused(f"calling {_describe(func)} on its own {_call_allowed(func)}")

    def manual_seed(self, node: ast.Call) -> None:
        """Read torch.manual_seed(n): the randn and rand below draw what torch draws after it."""
        if len(node.args) != 1 or node.keywords:
            raise Refused("torch.manual_seed(...) takes one integer (allowed: torch.manual_seed(0))")
        seed = self.integer_of(node.args[0])
        if self.seed is not None or self.drawn:
            raise Refused("a second torch.manual_seed, or one after random tensors (allowed: one torch.manual_seed"
                          " before the first torch.randn or torch.rand)")
        if not 0 <= seed < 2**63:
            raise Refused(f"torch.manual_seed({seed}) (allowed: a seed from 0 to {2**63 - 1})")
        self.seed, self.generator = seed, Generator(seed)

    def backward(self, node: ast.Call, line: int) -> None:
        subject = node.func.value  # type: ignore[attr-defined]
        if isinstance(subject, ast.Name):
            output = self.tensor_name(subject)
        else:  # (x ** 2).sum().backward(): the output gets a name of its own, out
            output = self.fresh("out")
            self.steps.append(Step(output, ast.unparse(self.translate(subject)), line, self.no_grad, self.count))
        args = dict(zip(("gradient", "retain_graph", "create_graph"), node.args))
        if len(node.args) > 3:
            raise Refused("backward() takes at most gradient, retain_graph, create_graph")
        for k in node.keywords:
            if k.arg not in ("gradient", "retain_graph", "create_graph", "inputs") or k.arg in args:
                raise Refused(f"backward({k.arg}=...) (allowed: gradient=, retain_graph=)")
            args[k.arg] = k.value
        if "inputs" in args:
            raise Refused("backward(inputs=...) (allowed: not supported yet; gradient=, retain_graph=)")
        if "create_graph" in args and self.flag(args["create_graph"], "create_graph"):
            raise Refused("backward(create_graph=True) (allowed: not supported yet: second derivatives)")
        retain = self.flag(args["retain_graph"], "retain_graph") if "retain_graph" in args else False
        gradient, like = None, None
        if "gradient" in args and not (isinstance(args["gradient"], ast.Constant) and args["gradient"].value is None):
            like = self.ones_like(args["gradient"])
            gradient = None if like else self.gradient(args["gradient"])
        self.calls.append(Call(output, gradient, line, retain, self.count, *(like or ("", False))))

    def register_hook(self, node: ast.Call, line: int, *, handle: str = "") -> None:
        """Record t.register_hook(fn): fn a lambda or a def of the gradient that prints, returns None or a new gradient."""
        if len(node.args) != 1 or node.keywords:
            raise Refused("register_hook with other than one function (allowed: t.register_hook(lambda g: g * 2))")
        name = self.tensor_name(node.func.value)  # type: ignore[attr-defined]
        fn, function = node.args[0], ""
        if isinstance(fn, ast.Lambda):
            a = fn.args
            params, body = [p.arg for p in a.args], [ast.Return(fn.body)]
            if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs:
                params = []
        elif isinstance(fn, ast.Name) and fn.id in self.hook_defs:
            function, found = fn.id, self.hook_defs[fn.id]
            params = [p.arg for p in found.args.args]
            body = [s for s in found.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        elif isinstance(fn, ast.Name) and fn.id in self.functions:
            function, (params, expr) = fn.id, self.functions[fn.id]
            body = [ast.Return(expr)]
        else:
            raise Refused(f"register_hook({_describe(fn)[1:-1]}): not a lambda, nor a function read above (allowed: a lambda"
                          " of the gradient, or a function defined above that prints and returns an expression of it)")
        if len(params) != 1:
            raise Refused(f"a hook taking {len(params)} arguments (allowed: one, the gradient: lambda g: g * 2)")
        param = params[0]
        prints, expr = [], ""
        for statement in body:
            value = statement.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "print":
                prints.append(self.hook_print(value, param, line))
            elif isinstance(statement, ast.Return) and not (value is None or isinstance(value, ast.Constant)
                                                             and value.value is None):
                expr = self.hook_expr(value, param)
        self.hooks.append(Hook(name, param, expr, tuple(prints), line, self.count, function, handle))

    def hook_expr(self, node: ast.expr, param: str) -> str:
        """Return what a hook returns, an expression of its gradient param as a step writes it."""
        if any(isinstance(n, ast.Call) and self.is_creation(n) for n in ast.walk(node)):
            raise Refused(f"a hook returning {_describe(node)}, a new tensor (allowed: an expression of the gradient,"
                          f" such as {param} * 2 or {param}.clamp(-1, 1))")
        translated = self.translate(node, {param: ast.Name(param, ast.Load())})
        if not any(isinstance(n, ast.Name) and n.id == param for n in ast.walk(translated)):
            raise Refused(f"a hook returning {_describe(node)}, which torch refuses: not a tensor of the gradient's size"
                          f" (allowed: an expression of the gradient, such as {param} * 2)")
        return ast.unparse(translated)

    def hook_print(self, node: ast.Call, param: str, line: int) -> Print:
        """Return a print(...) inside a hook: text, and the gradient param, alone or in f-strings."""
        if node.keywords:
            raise Refused("print(...) with keywords inside a hook (allowed: print('text', g))")
        parts: list[str | Shown] = []
        for i, arg in enumerate(node.args):
            if i:
                parts.append(" ")
            pieces = arg.values if isinstance(arg, ast.JoinedStr) else [arg]
            for piece in pieces:
                value = piece.value if isinstance(piece, ast.FormattedValue) else piece
                if isinstance(piece, ast.FormattedValue) and (piece.conversion != -1 or piece.format_spec):
                    value = None
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    parts.append(_plain(value.value))
                elif isinstance(value, ast.Name) and value.id == param:
                    parts.append(Shown(param, "value", formatted=isinstance(arg, ast.JoinedStr)))
                else:
                    raise Refused(f"printing {_describe(arg)} inside a hook (allowed: text and the gradient {param},"
                                  f" such as print('grad:', {param}))")
        return Print(tuple(parts), len(self.calls), ast.unparse(node), line, self.count)

    def remove_hook(self, handle: str) -> None:
        """Record h.remove(): the hook no longer runs from the next backward call on (a second remove does nothing)."""
        k = self.handles[handle]
        if not self.hooks[k].removed:
            self.hooks[k] = replace(self.hooks[k], removed=self.count)

    def ones_like(self, node: ast.expr) -> tuple[str, bool] | None:
        """Return (t, by len) for torch.ones_like(t), ones(t.shape), ones(t.size()) or ones(len(t)) of a computed t."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and len(node.args) == 1
                and not node.keywords and isinstance(node.func.value, ast.Name)
                and self.modules.get(node.func.value.id) == "torch" and node.func.attr in ("ones", "ones_like")):
            return None
        arg = node.args[0]
        by_len = False
        if node.func.attr == "ones":
            if isinstance(arg, ast.Attribute) and arg.attr == "shape":
                arg = arg.value
            elif (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr == "size"
                  and not arg.args and not arg.keywords):
                arg = arg.func.value
            elif (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "len"
                  and len(arg.args) == 1 and not arg.keywords):
                arg, by_len = arg.args[0], True
            else:
                return None
        if not (isinstance(arg, ast.Name) and arg.id in self.bound) or self.bound[arg.id] in self.leaves:
            return None  # a leaf's shape is known here: made as any other gradient
        return self.tensor_name(arg), by_len

    def gradient(self, node: ast.expr) -> Array:
        if isinstance(node, ast.Name) and self.bound.get(node.id) in self.leaves:
            leaf = self.leaves[self.bound[node.id]]
            if leaf.requires_grad:
                raise Refused(f"a gradient that requires grad: '{node.id}' (allowed: a tensor without requires_grad)")
            return leaf.array
        made = self.creation(node)
        if made is None:
            raise Refused(f"the gradient {_describe(node)} (allowed: a tensor made by torch.tensor, ones, ..., or its name)")
        return made[0]

    def reset(self, subject: ast.expr, line: int, *, clear: bool) -> None:
        """Record t.grad.zero_() or t.grad = None on a leaf."""
        name = self.tensor_name(subject)
        if name not in self.leaves:
            raise Refused(f"resetting the grad of '{name}', which is not a leaf: its .grad is None"
                          " (allowed: leaves, made by torch.tensor, ones, ...)")
        self.resets.append(Reset(self.versions.get(name, name), clear, len(self.calls), line, self.count))

    def print_(self, node: ast.Call, line: int) -> None:
        self.computed.clear()
        sep, end = " ", "\n"
        for k in node.keywords:
            if k.arg not in ("sep", "end") or not (isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)):
                raise Refused(f"print({k.arg}=...) (allowed: print(...) with sep= or end= strings)")
            sep, end = (_plain(k.value.value), end) if k.arg == "sep" else (sep, k.value.value)
        if end != "\n":
            raise Refused("print(end=...) (allowed: the default end, a newline)")
        parts: list[str | Shown] = []
        args = []
        for i, arg in enumerate(node.args):
            if i:
                parts.append(sep)
            shown, code = self.shown(arg)
            parts.extend(shown)
            args.append(code)
        keywords = "" if sep == " " else f", sep={sep!r}"
        self.prints.append(Print(tuple(parts), len(self.calls), f"print({', '.join(args)}{keywords})", line, self.count))

    def shown(self, node: ast.expr) -> tuple[list[str | Shown], str]:
        """Return what one argument of print shows, and its code (loop constants written in)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [_plain(node.value)], repr(node.value)
        if isinstance(node, ast.Name) and node.id in self.constants:
            text = _number_text(self.number(node))
            return [text], text
        if isinstance(node, ast.Compare):
            return self.compared(node)
        if isinstance(node, ast.BinOp) and self.is_arithmetic(node):  # print('epoch', epoch + 1)
            text = _number_text(self.arithmetic(node))
            return [text], text
        detached = {"requires_grad": "False", "is_leaf": "True", "grad_fn": "None"}
        if (isinstance(node, ast.Attribute) and node.attr in detached and isinstance(node.value, ast.Attribute)
                and node.value.attr == "data"):  # t.data is t's numbers detached: a leaf without requires_grad
            name = self.tensor_name(node.value.value)
            return [detached[node.attr]], f"{self.versions.get(name, name)}.data.{node.attr}"
        if isinstance(node, ast.Tuple) or (isinstance(node, ast.Name) and node.id in self.tuples):
            return self.tuple_shown(node)
        if self.functional_kind(node):
            called = self.functional(node)  # type: ignore[arg-type]
            return [called], called.code
        if isinstance(node, ast.Name) and node.id in self.kept:
            called = self.kept[node.id]
            changed = [n for n in (*called.inputs, *called.outside, *called.v) if n in self.versions.values()]
            if changed:
                raise Refused(f"printing '{node.id}', what {called.kind}(...) returned before '{changed[0]}' was updated"
                              f" in place (allowed: not supported yet; print({node.id}) before the update)")
            return [called], called.code
        if not isinstance(node, ast.JoinedStr):
            return [self.one_shown(node)], ast.unparse(self.shown_expr(node))
        parts: list[str | Shown] = []
        pieces: list[ast.expr] = []
        for piece in node.values:
            spec = ""
            if isinstance(piece, ast.FormattedValue) and piece.format_spec is not None:
                spec = float_format(piece.format_spec)
            if isinstance(piece, ast.FormattedValue) and (piece.conversion != -1 or spec is None):
                raise Refused("an f-string field with a conversion or a format other than a number's"
                              " (allowed: {t}, {t.grad}, {loss.item():.4f}, {w.grad.item():8.3e})")
            value = piece.value if isinstance(piece, ast.FormattedValue) else piece
            if isinstance(value, ast.Name) and value.id in self.constants:
                value = ast.Constant(_number_text(self.number(value)))
            elif isinstance(value, ast.BinOp) and self.is_arithmetic(value):  # {epoch + 1}
                value = ast.Constant(_number_text(self.arithmetic(value)))
            if isinstance(value, ast.Constant):
                parts.append(_plain(str(value.value)))
                pieces.append(ast.Constant(str(value.value)))
            else:
                shown = replace(self.one_shown(value), formatted=True, spec=spec)
                if spec and shown.what not in ("value", "grad"):
                    raise Refused(f"a format {spec!r} for {_describe(value)}, which is not a number"
                                  " (allowed: formats of t.item() or a 0-d tensor)")
                parts.append(shown)
                pieces.append(ast.FormattedValue(self.shown_expr(value), -1,
                                                 ast.JoinedStr([ast.Constant(spec)]) if spec else None))
        merged: list[ast.expr] = []
        for piece in pieces:  # neighbouring texts as one, as Python writes an f-string
            if merged and isinstance(piece, ast.Constant) and isinstance(merged[-1], ast.Constant):
                merged[-1] = ast.Constant(merged[-1].value + piece.value)
            else:
                merged.append(piece)
        return parts, ast.unparse(ast.JoinedStr(merged))

    def compared(self, node: ast.Compare) -> tuple[list[str | Shown | Compared], str]:
        """Return print(a == b)'s comparison, each side an expression of tensors, their grads and numbers."""
        if len(node.ops) != 1 or not is_comparison(node.ops[0], "=="):
            raise Refused(f"printing the comparison {_describe(node)} (allowed: a == b, such as x.grad == 4 * x)")
        refs: dict[tuple[str, str], str] = {}
        numbers: dict[str, Fraction] = {}
        sides, codes = [], []
        for side in (node.left, node.comparators[0]):
            if self.is_number(side):
                value = self.number(side)
                placeholder = f"p{len(refs) + len(numbers) + 1}"
                numbers[placeholder] = value
                sides.append(placeholder)
                codes.append(ast.Constant(_float_or_int(value)))
                continue
            expr, code = self.marked(side, refs, len(numbers))
            sides.append(expr)
            codes.append(code)
        if numbers and not refs:
            raise Refused(f"printing {_describe(node)}, two numbers (allowed: a tensor, or its grad, on one side)")
        compared = Compared(sides[0], sides[1], tuple((p, name, what) for (name, what), p in refs.items()),
                            tuple(numbers.items()))
        return [compared], ast.unparse(ast.Compare(codes[0], node.ops, [codes[1]]))

    def marked(self, side: ast.expr, refs: dict[tuple[str, str], str], numbers: int = 0) -> tuple[str, ast.expr]:
        """Return an expression of tensors and their grads with each one a placeholder (refs), and its code."""
        grads: dict[str, ast.expr] = {}

        def mark(n: ast.AST) -> ast.AST:  # t.grad -> a marker name that translate() passes through
            if isinstance(n, ast.Attribute) and n.attr == "data" and isinstance(n.value, ast.Attribute):
                n = n.value  # w.grad.data: the same numbers
            if isinstance(n, ast.Attribute) and n.attr == "grad":
                marker = f"grad of {self.tensor_name(n.value)}"
                grads[marker] = ast.Name(marker, ast.Load())
                return grads[marker]
            if isinstance(n, ast.Attribute) and n.attr == "data" and isinstance(n.value, ast.Name):
                return mark(n.value)  # w.data: w's numbers
            return _map_children(n, mark)

        translated = self.translate(mark(copy.deepcopy(side)), grads)
        code, expr = copy.deepcopy(translated), translated
        for n in ast.walk(code):
            for field_name, value in ast.iter_fields(n):
                if isinstance(value, ast.Name) and value.id.startswith("grad of "):
                    setattr(n, field_name, ast.Attribute(ast.Name(value.id[8:], ast.Load()), "grad", ast.Load()))
        if isinstance(code, ast.Name) and code.id.startswith("grad of "):
            code = ast.Attribute(ast.Name(code.id[8:], ast.Load()), "grad", ast.Load())
        for n in ast.walk(code):  # the code names a tensor changed in place by its first node, as torch's code does
            if isinstance(n, ast.Name):
                n.id = self.versions.get(n.id, n.id)
        for n in ast.walk(expr):
            if isinstance(n, ast.Name) and n.id != "torch":
                key = (n.id[8:], "grad") if n.id.startswith("grad of ") else (n.id, "value")
                n.id = refs.setdefault(key, f"p{len(refs) + numbers + 1}")
        return ast.unparse(expr), code

    def update(self, target: ast.expr, op: ast.operator | None, value: ast.expr, line: int) -> None:
        """Read w -= expression, w.data -= ... or w.data = ...: a leaf's new values, which torch does not record."""
        data = isinstance(target, ast.Attribute) and target.attr == "data"
        name = target.value if data else target  # type: ignore[attr-defined]
        if self.local:
            raise Refused(f"an in-place update of {_describe(target)} inside a function of several statements"
                          " (allowed: updates outside functions)")
        allowed = ("allowed: w -= expression on a leaf made by torch.tensor, ones, ..., inside with torch.no_grad():,"
                   " or w.data -= ..., w.data = ...")
        if not (isinstance(name, ast.Name) and self.bound.get(name.id) in self.leaves):
            raise Refused(f"an in-place update of {_describe(target)}, which is not a leaf of the example ({allowed})")
        old = self.bound[name.id]
        leaf = self.leaves[old]
        if leaf.requires_grad and not self.no_grad and not data:
            raise Refused(f"updating '{name.id}' in place while torch records: torch raises 'a leaf Variable that"
                          f" requires grad is being used in an in-place operation' ({allowed})")
        refs: dict[tuple[str, str], str] = {}
        new = value if op is None else ast.BinOp(ast.Name(name.id, ast.Load()), op, value)
        expr, code = self.marked(new, refs)
        of = self.versions.get(old, old)
        written = ast.Attribute(ast.Name(of, ast.Load()), "data", ast.Store()) if data else ast.Name(of, ast.Store())
        if op is None:
            statement = ast.Assign([written], code, lineno=line)
        else:
            statement = ast.AugAssign(written, op, code.right)  # type: ignore[attr-defined]
        self.new_version(name.id, expr, refs, line, ast.unparse(statement), data=data)

    def new_version(self, name: str, expr: str, refs: dict[tuple[str, str], str], line: int, code: str, *,
                    data: bool = False, requires_grad: bool | None = None) -> None:
        """Bind a Python name to a tensor's new values: a leaf node of the graph, the same tensor to torch."""
        old = self.bound[name]
        version = self.version_of(old, expr, refs, line, code, data=data, requires_grad=requires_grad, name=name)
        self.forget(name)
        self.bound[name] = version

    def version_of(self, old: str, expr: str, refs: dict[tuple[str, str], str], line: int, code: str, *,
                   data: bool = False, requires_grad: bool | None = None, name: str = "", skips: bool = False) -> str:
        """Return the node of a tensor's new values; every Python name bound to its old values follows."""
        of = self.versions.get(old, old)
        name = name or of
        refs_grads = tuple((p, self.versions.get(n, n) if what == "grad" else n, what) for (n, what), p in refs.items())
        version = self.fresh(name)
        if self.renamed and self.renamed[-1][0] == version:
            self.renamed.pop()  # not a new tensor: the document says so itself
        leaf = self.leaves.get(old)
        if leaf is not None:
            leaf.used = True
            array, dtype, grad = leaf.array, leaf.dtype, leaf.requires_grad
        else:  # a computed tensor: its shape is the graph's to know, and the update's to give
            array, dtype, grad = Array((), (Fraction(0),)), None, False
        for python, node in list(self.bound.items()):
            if node == old:  # w = model.weight: the same tensor, whose numbers changed
                self.bound[python] = version
        self.versions[version] = of
        self.latest[of] = version
        self.leaves[version] = _Leaf(Array(array.shape, (Fraction(0),) * len(array.values)), dtype,
                                     grad if requires_grad is None else requires_grad, line, used=True, seq=self.count,
                                     parameter=leaf is not None and leaf.parameter)
        self.updates.append(Update(version, of, expr, refs_grads, len(self.calls), code, line, self.count, data,
                                   requires_grad, skips))
        return version

    def is_arithmetic(self, node: ast.expr) -> bool:
        try:
            self.arithmetic(node)
        except Refused:
            return False
        return True

    def while_(self, node: ast.While) -> None:
        """Unroll a while loop, its condition decided before each iteration from the values computed so far."""
        if node.orelse:
            raise Refused("while ... else is not supported (allowed: while condition: ...)")
        for runs in range(MAX_ITERATIONS + 1):
            if not self.condition(node.test):
                self.decide(node, f"while {ast.unparse(node.test)}", runs)
                return
            self.block(node.body)
        raise Refused(f"a while loop still running after {MAX_ITERATIONS} iterations (allowed: at most {MAX_ITERATIONS})")

    def on_tensors(self, test: ast.Compare) -> bool:
        """Decide a comparison of tensor values (b.norm() < 1000) as torch does, from what the code computed so far."""
        if len(test.ops) != 1 or comparison(test.ops[0]) is None:
            raise Refused(f"the condition {_describe(test)} (allowed: one comparison, such as b.norm() < 1000)")
        if self.evaluate is None:
            raise Refused(f"the condition {_describe(test)} on tensor values (allowed: conditions on numbers here)")
        refs: dict[tuple[str, str], str] = {}
        numbers: dict[str, Fraction] = {}
        sides = []
        for side in (test.left, test.comparators[0]):
            if self.is_number(side):
                placeholder = f"p{len(refs) + len(numbers) + 1}"
                numbers[placeholder] = self.number(side)
                sides.append(placeholder)
            else:
                sides.append(self.marked(side, refs, len(numbers))[0])
        compared = Compared(sides[0], sides[1], tuple((p, n, w) for (n, w), p in refs.items()), tuple(numbers.items()),
                            comparison(test.ops[0]).spelling.symbol)
        if self.problems:
            raise Refused(f"the condition {_describe(test)}, after a problem above (allowed: fix that first)")
        try:
            return self.evaluate(self.snapshot(), compared)
        except SpecError as e:
            raise Refused(f"the condition {_describe(test)}: {e.problems[0].message}") from None

    def condition(self, test: ast.expr) -> bool:
        """Return an if's or a while's test: of numbers, flags and loop counters, or a comparison of tensor values."""
        if isinstance(test, ast.Compare) and not all(self.is_arithmetic(s) for s in [test.left, *test.comparators]):
            return self.on_tensors(test)
        if isinstance(test, ast.Constant) and isinstance(test.value, bool):
            return test.value  # while True: ... runs until the bound
        if isinstance(test, ast.Name) and test.id in self.flags:
            return self.flags[test.id]
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return not self.condition(test.operand)
        if isinstance(test, ast.BoolOp):
            values = [self.condition(v) for v in test.values]
            return all(values) if isinstance(test.op, ast.And) else any(values)
        if isinstance(test, ast.Compare):
            sides = [self.arithmetic(test.left)] + [self.arithmetic(c) for c in test.comparators]
            if all(comparison(o) is not None for o in test.ops):
                return all(comparison(o).decide(a, b) for o, a, b in zip(test.ops, sides, sides[1:]))
        raise Refused(f"the condition {_describe(test)} (allowed: comparisons of numbers and loop counters, such as"
                      " if epoch % 10 == 0:; not yet conditions on tensor values)")

    def arithmetic(self, node: ast.expr) -> Fraction:
        """Return a number computed from literals and constants with + - * / // % and **, as Python does on ints."""
        if isinstance(node, ast.BinOp):
            a, b = self.arithmetic(node.left), self.arithmetic(node.right)
            if a.denominator == 1 and b.denominator == 1:  # Python's own integer arithmetic, exact
                try:
                    if isinstance(node.op, ast.Mod):
                        return Fraction(int(a) % int(b))
                    if isinstance(node.op, ast.FloorDiv):
                        return Fraction(int(a) // int(b))
                except ZeroDivisionError:
                    raise Refused(f"{_describe(node)} divides by zero (allowed: arithmetic that Python can do)") from None
                op = by_operator(type(node.op))
                if op is not None and op.spelling.symbol in ("+", "-", "*"):
                    return op.fold([a, b])
            raise Refused(f"{_describe(node)} (allowed: + - * % // of integers)")
        return self.number(node)

    def one_shown(self, node: ast.expr) -> Shown:
        shown = self.shown_one(node)
        top, anywhere = self.through_linear(shown.name)
        if (top and (shown.what in ("grad_fn", "next_functions") or shown.what == "value" and not shown.item)
                or anywhere and (shown.path or shown.what == "next_functions")):
            raise Refused(f"printing {_describe(node)}, whose grad_fn is nn.Linear's kernel in torch (AddmmBackward0, or"
                          " ViewBackward0 of a 1-d input), which derive explains as a product, then a sum (allowed: not"
                          " supported yet; its .item(), or the tensor computed under torch.no_grad())")
        return shown

    def through_linear(self, name: str) -> tuple[bool, bool]:
        """Tell whether a tensor is an nn.Linear's output recording a grad_fn, and whether one is among its inputs."""
        if not self.linear_weights:
            return False, False
        steps = {s.name: s for s in self.steps}

        def top(n: str) -> bool:
            step = steps.get(n)
            if step is None or step.no_grad:
                return False
            return is_linear(ast.parse(step.expr, mode="eval").body, self.linear_weights)

        seen, stack = set(), [name]
        while stack:
            n = stack.pop()
            if n in seen or n not in steps:
                continue
            seen.add(n)
            if top(n) or steps[n].no_grad is False and _names_in(steps[n].expr) & self.linear_weights:
                return top(name), True
            stack.extend(_names_in(steps[n].expr))
        return False, False

    def shown_one(self, node: ast.expr) -> Shown:
        return self.shown_tensor(node)

    def shown_tensor(self, node: ast.expr) -> Shown:
        picked = self.grad_item(node)
        if picked is not None:  # g[0] of g = torch.autograd.grad(y, x)
            return Shown(picked, "value")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "item"
                and not node.args and not node.keywords):  # t.item(), t.data.item(), t.grad.item(): a Python float
            inner = node.func.value
            inner = inner.value if isinstance(inner, ast.Attribute) and inner.attr == "data" else inner
            if isinstance(inner, ast.Attribute) and inner.attr == "grad":
                return Shown(self.tensor_name(inner.value), "grad", item=True)
            return Shown(self.printed_tensor(inner), "value", item=True)
        if isinstance(node, ast.Attribute) and node.attr == "data":
            return Shown(self.tensor_name(node.value), "data")
        chain = self.function_chain(node)
        if chain is not None:
            return chain
        if isinstance(node, ast.Attribute) and node.attr in SHOWN:
            if node.attr != "grad" and isinstance(node.value, (ast.Call, ast.BinOp, ast.UnaryOp)):
                return Shown(self.printed_tensor(node.value), node.attr)  # (x ** 2).requires_grad
            return Shown(self.tensor_name(node.value), node.attr)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "size"
                and not node.args and not node.keywords):  # t.size() is t.shape
            return Shown(self.tensor_name(node.func.value), "shape")
        if isinstance(node, ast.Name) and node.id in self.bound or self.linear_attribute(node) is not None:
            return Shown(self.tensor_name(node), "value")
        if isinstance(node, (ast.Call, ast.BinOp, ast.UnaryOp)) and not self.is_arithmetic(node):
            return Shown(self.printed_tensor(node), "value")
        raise Refused(f"printing {_describe(node)} (allowed: t, t.grad, t.grad_fn, t.is_leaf, t.requires_grad, t.shape,"
                      " text, f-strings of them)")

    def function_chain(self, node: ast.expr) -> Shown | None:
        """Read t.grad_fn.next_functions, t.grad_fn.next_functions[i][0] and so on down the chain, else None."""
        what, path = "grad_fn", []
        if isinstance(node, ast.Attribute) and node.attr == "next_functions":
            what, node = "next_functions", node.value
        while (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Subscript)
               and isinstance(node.value.value, ast.Attribute) and node.value.value.attr == "next_functions"):
            if self.number(node.slice) != 0:
                raise Refused(f"{_describe(node)}: the second item of a next_functions entry, an output number"
                              " (allowed: [i][0], the function)")
            path.append(self.integer_of(node.value.slice))
            node = node.value.value.value
        if not (isinstance(node, ast.Attribute) and node.attr == "grad_fn") or (what == "grad_fn" and not path):
            return None
        return Shown(self.tensor_name(node.value), what, path=tuple(reversed(path)))

    def printed_tensor(self, node: ast.expr) -> str:
        """Return the node of a printed tensor: a name's, or a computation's own step (shown, shown2, ...)."""
        if isinstance(node, ast.Name):
            return self.tensor_name(node)
        if id(node) not in self.computed:  # one step, however often this print's pieces ask
            name = self.fresh("shown")
            self.steps.append(Step(name, ast.unparse(self.translate(node)), self.last_line, self.no_grad, self.count))
            self.computed[id(node)] = name
        return self.computed[id(node)]

    def shown_expr(self, node: ast.expr) -> ast.expr:
        shown = self.one_shown(node)
        name = ast.Name(self.versions.get(shown.name, shown.name))  # a tensor changed in place: its first name
        expr = name if shown.what == "value" else ast.Attribute(name, shown.what)
        if shown.path or shown.what == "next_functions":  # d.grad_fn.next_functions[0][0].next_functions
            expr = ast.Attribute(name, "grad_fn")
            for i in shown.path:
                expr = ast.Subscript(ast.Subscript(ast.Attribute(expr, "next_functions"), ast.Constant(i)), ast.Constant(0))
            expr = ast.Attribute(expr, "next_functions") if shown.what == "next_functions" else expr
        return ast.Call(ast.Attribute(expr, "item"), [], []) if shown.item else expr

    def tensor_name(self, node: ast.expr) -> str:
        if self.linear_attribute(node) is not None:
            return self.current(self.linear_attribute(node))  # type: ignore[arg-type]
        if isinstance(node, ast.Name) and node.id in self.bound:
            target = self.bound[node.id]
            if target in self.leaves:
                self.leaves[target].used = True
            return target
        if isinstance(node, ast.Name) and node.id in self.kept:
            kind = self.kept[node.id].kind
            raise Refused(f"using what {kind}(...) returns other than printing it (allowed: not supported yet;"
                          f" print({node.id}))")
        raise Refused(f"{_describe(node)} is not a tensor of the example (allowed: {self.names()})")

    def names(self) -> str:
        return ", ".join(sorted(self.bound)) or "none yet"

    # -- tensors made by creation functions ------------------------------

    def is_creation(self, node: ast.expr) -> bool:
        """Tell whether an expression is torch.ones(...) and the like, perhaps with .requires_grad_() or a cast."""
        while (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and node.func.attr in ("requires_grad_", "double", "float", "to")):
            node = node.func.value
        return self.is_variable(node) or (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and self.modules.get(node.func.value.id) == "torch"
            and node.func.attr in CREATORS)

    def is_variable(self, node: ast.expr) -> bool:
        """Tell whether an expression is Variable(t, ...), from torch.autograd."""
        return (isinstance(node, ast.Call) and (
            (isinstance(node.func, ast.Name) and self.modules.get(node.func.id) == "Variable")
            or dotted_name(node.func) == "torch.autograd.Variable"))

    def variable(self, node: ast.Call) -> tuple[Array, str | None, bool]:
        """Return Variable(t, requires_grad=flag): a leaf of t's values, as torch 0.4 and later make it."""
        if len(node.args) != 1 or any(k.arg != "requires_grad" for k in node.keywords):
            raise Refused("Variable(...) with other than a tensor and requires_grad= (allowed: Variable(t, requires_grad=True))")
        made = self.creation(node.args[0])
        if made is None:
            source = self.tensor_name(node.args[0])
            if source not in self.leaves:
                raise Refused(f"Variable of the computed tensor '{source}' (allowed: Variable of a tensor made by torch.tensor, ...)")
            made = (self.leaves[source].array, self.leaves[source].dtype, False)
        grad = self.flag(node.keywords[0].value, "requires_grad") if node.keywords else False
        return made[0], made[1], grad

    def anonymous_leaf(self, node: ast.Call) -> str:
        """Make a leaf of a tensor created inside an expression, named after its maker (ones, ones2, ...)."""
        made = self.creation(node)
        assert made is not None
        inner = node
        while not self.is_variable(inner) and inner.func.attr not in CREATORS:  # type: ignore[attr-defined]
            inner = inner.func.value  # type: ignore[attr-defined]
        base = "variable" if self.is_variable(inner) else inner.func.attr.lower()  # type: ignore[attr-defined]
        name, k = base, 1
        while name in self.taken or name in self.bound or name in RESERVED:
            k += 1
            name = f"{base}{k}"
        self.taken.add(name)
        self.leaves[name] = _Leaf(made[0], made[1], made[2], self.last_line, used=True, seq=self.count)
        return name

    def creation(self, node: ast.expr) -> tuple[Array, str | None, bool] | None:
        """Return (values, dtype, requires_grad) of a creation call, perhaps with .requires_grad_() or .double(); else None."""
        tail: list[ast.Call] = []
        while (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and node.func.attr in ("requires_grad_", "double", "float", "to", *FILLS)):
            tail.append(node)
            node = node.func.value
        if self.is_variable(node):
            array, dtype, grad = self.variable(node)  # type: ignore[arg-type]
        elif not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and isinstance(node.func.value, ast.Name) and self.modules.get(node.func.value.id) == "torch"
                  and node.func.attr in CREATORS):
            if tail:
                raise Refused(f"{_describe(tail[-1].func)} on {_describe(node)}"
                              " (allowed: on a tensor made by torch.tensor, ones, ...)")
            return None
        else:
            array, dtype, grad = self.created(node.func.attr, node)
        filled = ""
        for call in reversed(tail):
            method = call.func.attr  # type: ignore[attr-defined]
            if method in FILLS:
                array = self.fill(call, node, array, dtype, grad, bool(filled))
                filled = method
                continue
            if filled and method != "requires_grad_":
                raise Refused(f".{method}() after .{filled}() (allowed: the dtype on torch.empty, such as"
                              f" torch.empty(3, dtype=torch.float64).{filled}())")
            if method == "requires_grad_":
                grad = self.flag(call.args[0], "requires_grad_") if call.args else True
                continue
            if method == "to":
                if len(call.args) != 1 or call.keywords:
                    raise Refused("to(...) with other than one dtype (allowed: .to(torch.float64))")
                cast = self.dtype(call.args[0])
            else:
                if call.args or call.keywords:
                    raise Refused(f".{method}() with arguments (allowed: .{method}())")
                cast = CASTS[method]
            if cast == "int64" and dtype != "int64":
                raise Refused(f"{_describe(call.func)} to int64 of a float tensor (allowed: make it with integers,"
                              " torch.tensor([1, 0, 2]))")
            if cast != (dtype or "float32"):  # the values were already rounded to the dtype they were made in
                array = _rounded(array, dtype or "float32")
            dtype = cast
        if not self.is_variable(node) and node.func.attr == "empty" and not filled:  # type: ignore[attr-defined]
            raise Refused("torch.empty(...) whose values are whatever the memory held (allowed: torch.empty(...)"
                          ".normal_() or .uniform_(), or torch.zeros)")
        if dtype == "int64" and grad:
            raise Refused("an int64 tensor that requires grad, which torch refuses: only tensors of floating point dtype"
                          " can require gradients (allowed: requires_grad on float tensors)")
        return array, dtype, grad

    def fill(self, call: ast.Call, base: ast.Call, array: Array, dtype: str | None, grad: bool, filled: bool) -> Array:
        """Return t.normal_(mean, std) or t.uniform_(a, b) of a new tensor: torch's numbers after the seed."""
        kind = call.func.attr  # type: ignore[attr-defined]
        first, second, *defaults = FILLS[kind]
        if filled or base.func.attr not in ("empty", "zeros", "ones"):  # type: ignore[attr-defined]
            raise Refused(f"{kind}() on torch.{base.func.attr}(...) (allowed: on a new torch.empty, zeros or ones)")  # type: ignore[attr-defined]
        if grad:
            raise Refused(f"{kind}() on a tensor made with requires_grad=True, which torch refuses: a leaf that requires"
                          f" grad cannot change in place (allowed: torch.empty(3).{kind}().requires_grad_())")
        if dtype == "int64":
            raise Refused(f"{kind}() of an int64 tensor (allowed: float32 or float64)")
        bound = dict(zip((first, second), call.args))
        for k in call.keywords:
            if k.arg not in (first, second) or k.arg in bound:
                raise Refused(f"{kind}({k.arg}=...) (allowed: {kind}({first}, {second}))")
            bound[k.arg] = k.value
        if len(call.args) > 2:
            raise Refused(f"{kind}() with more than two numbers (allowed: {kind}({first}, {second}))")
        params = tuple(self.number(bound[p]) if p in bound else Fraction(d) for p, d in zip((first, second), defaults))
        if kind == "normal_" and params[1] < 0 or kind == "uniform_" and params[0] > params[1]:
            raise Refused(f"{kind}{tuple(float(p) for p in params)}, which torch refuses"
                          f" (allowed: {'std >= 0' if kind == 'normal_' else 'from <= to'})")
        if self.generator is None:
            raise Refused(f"{kind}() without torch.manual_seed before it, so its numbers are not known"
                          " (allowed: torch.manual_seed(0) first, as tutorials do)")
        method = self.generator.normal_fill if kind == "normal_" else self.generator.uniform_fill
        try:
            numbers = method(math.prod(array.shape), *(float(p) for p in params), dtype or "float32")
        except SeededError as error:
            raise Refused(f"{error} (allowed: {error.allowed})") from None
        filled_array = Array(array.shape, exact(numbers))
        self.drawn.append((filled_array, kind, params))
        return filled_array

    def created(self, kind: str, node: ast.Call) -> tuple[Array, str | None, bool]:
        kwargs = {}
        for k in node.keywords:
            if k.arg == "device":
                self.device(k.value)
                continue
            if k.arg not in ("requires_grad", "dtype", "size", "fill_value", "n", "m", "steps", "low", "high"):
                raise Refused(f"torch.{kind}({k.arg}=...) (allowed: requires_grad=, dtype=, device='cpu')")
            kwargs[k.arg] = k.value
        grad = self.flag(kwargs.pop("requires_grad"), "requires_grad") if "requires_grad" in kwargs else False
        dtype = self.dtype(kwargs.pop("dtype")) if "dtype" in kwargs else None
        args = list(node.args)
        integral = False
        if kind == "tensor" or kind in LEGACY:
            if len(args) != 1 or kwargs or (kind in LEGACY and (dtype or grad)):
                raise Refused(f"torch.{kind}(...) takes one nested list of numbers (allowed: torch.tensor([1., 2.]))")
            array, integral = self.literal(args[0])
            if kind in LEGACY:  # the old constructors make float32 (or float64) of any numbers
                array, integral, dtype = _rounded(array, LEGACY[kind]), False, LEGACY[kind]
        elif kind in ("ones", "zeros"):
            shape = self.shape(args, kwargs.pop("size", None), kind)
            array = Array(shape, repeated(Fraction(kind == "ones"), math.prod(shape)))
        elif kind == "full":
            if "fill_value" in kwargs:
                args.append(kwargs.pop("fill_value"))
            if len(args) != 2:
                raise Refused("torch.full(size, value) (allowed: torch.full((2, 3), 0.5))")
            shape = self.shape([args[0]], kwargs.pop("size", None), kind)
            value = self.number(args[1])
            integral = _is_int_literal(args[1])
            array = Array(shape, repeated(value, math.prod(shape)))
        elif kind == "eye":
            dims = [self.integer_of(a) for a in args + [kwargs.pop(k) for k in ("n", "m") if k in kwargs]]
            if not 1 <= len(dims) <= 2 or min(dims) < 1:
                raise Refused("torch.eye(n) or torch.eye(n, m) (allowed: positive sizes)")
            n, m = dims[0], dims[-1]
            self.sized((n, m))
            array = Array((n, m), tuple(Fraction(i == j) for i in range(n) for j in range(m)))
        elif kind == "arange":
            if not 1 <= len(args) <= 3:
                raise Refused("torch.arange(end), (start, end) or (start, end, step) (allowed: numbers)")
            bounds = [self.number(a) for a in args]
            integral = all(_is_int_literal(a) for a in args)
            start, end, step = (Fraction(0), bounds[0], Fraction(1)) if len(bounds) == 1 else (
                bounds[0], bounds[1], bounds[2] if len(bounds) == 3 else Fraction(1))
            if step == 0:
                raise Refused("torch.arange with step 0 (allowed: a non-zero step)")
            count = max(0, math.ceil((end - start) / step))
            self.sized((count,))
            array = Array((count,), tuple(start + i * step for i in range(count)))
        elif kind == "linspace":
            if "steps" in kwargs:
                args.append(kwargs.pop("steps"))
            if len(args) != 3:
                raise Refused("torch.linspace(start, end, steps) (allowed: numbers)")
            start, end = self.number(args[0]), self.number(args[1])
            steps = self.integer_of(args[2])
            if steps < 1:
                raise Refused("torch.linspace with fewer than 1 step (allowed: steps >= 1)")
            self.sized((steps,))
            limit = FLOAT_LIMITS[dtype or "float32"]
            if max(abs(start), abs(end)) >= limit or abs(end - start) >= limit:
                raise Refused(f"torch.linspace beyond {dtype or 'float32'}'s range, where torch makes inf or nan"
                              " (allowed: finite points and steps)")
            # torch computes each point in the dtype from both ends, rounding as its CPU kernel does
            array = Array((steps,), linspace(start, end, steps, dtype or "float32"))
        elif kind == "empty":  # its values come from the normal_ or uniform_ after it
            array = Array(self.shape(args, kwargs.pop("size", None), kind), ())
        elif kind in DRAWS:
            if self.generator is None:
                raise Refused(f"torch.{kind} without torch.manual_seed before it, so its numbers are not known"
                              " (allowed: torch.manual_seed(0) first, as tutorials do)")
            array, params = self.draw(kind, args, kwargs, dtype)
            integral = kind in ("randint", "randperm")
            self.drawn.append((array, kind, params))
        else:  # ones_like, zeros_like
            if len(args) != 1 or kwargs:
                raise Refused(f"torch.{kind}(t) (allowed: one tensor name)")
            source = self.tensor_name(args[0])
            shape = self.shape_of(source)
            array = Array(shape, (Fraction(kind == "ones_like"),) * math.prod(shape))
            dtype = dtype or self.leaves[source].dtype if source in self.leaves else dtype
        if kwargs:
            raise Refused(f"torch.{kind}({', '.join(k + '=' for k in kwargs)}...) (allowed: requires_grad=, dtype=)")
        if integral and dtype is None:
            dtype = "int64"  # torch.tensor([1, 0, 2]) and torch.arange(3) make int64 tensors, as Python's integers
        if dtype == "int64" and (kind in ("randn", "rand", "linspace", "empty") or any(v.denominator != 1 for v in array.values)):
            raise Refused(f"torch.{kind} of numbers that are not whole as int64 (allowed: whole numbers, or a float dtype)")
        return array, dtype, grad

    def draw(self, kind: str, args: list[ast.expr], kwargs: dict[str, ast.expr],
             dtype: str | None) -> tuple[Array, tuple[Fraction, ...]]:
        """Return torch.randn, rand, randint or randperm's numbers and the arguments that are not the shape."""
        assert self.generator is not None
        if kind in ("randint", "randperm") and dtype not in (None, "int64"):
            raise Refused(f"torch.{kind}(..., dtype=torch.{dtype}) (allowed: int64, its default)")
        if kind == "randperm":
            if len(args) != 1 or kwargs:
                raise Refused("torch.randperm(n) takes one integer (allowed: torch.randperm(5))")
            n = self.integer_of(args[0])
            if n < 1:
                raise Refused(f"torch.randperm({n}) (allowed: n >= 1)")
            self.sized((n,))
            return Array((n,), tuple(Fraction(v) for v in self.generator.randperm(n))), ()
        if kind == "randint":
            bounds = [kwargs.pop(k) for k in ("low", "high") if k in kwargs]
            if "size" in kwargs:
                args = [*args, kwargs.pop("size")]
            args = [*bounds, *args] if bounds else args
            if len(args) not in (2, 3) or not isinstance(args[-1], (ast.Tuple, ast.List)):
                raise Refused("torch.randint(high, size) or (low, high, size), size a tuple (allowed: torch.randint(0,"
                              " 10, (3,)))")
            low, high = ([0] if len(args) == 2 else [self.integer_of(args[0])]) + [self.integer_of(args[-2])]
            if not -2**63 <= low < high <= 2**63 - 1:
                raise Refused(f"torch.randint({low}, {high}, ...) (allowed: low < high, both int64)")
            shape = self.shape([args[-1]], None, kind)
            numbers = self.generator.randint(math.prod(shape), low, high)
            return Array(shape, tuple(Fraction(v) for v in numbers)), (Fraction(low), Fraction(high))
        shape = self.shape(args, kwargs.pop("size", None), kind)
        try:
            numbers = getattr(self.generator, kind)(math.prod(shape), dtype or "float32")
        except SeededError as error:
            raise Refused(f"{error} (allowed: {error.allowed})") from None
        return Array(shape, exact(numbers)), ()

    def gather(self, name: str, value: ast.expr, line: int) -> bool:
        """Read Yb = Ytr[ix], int64 tensors both (a minibatch's targets): an int64 leaf of the rows picked, as torch
        makes it (no grad_fn), written in the document's code as the same indexing; False for any other code."""
        if not (isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name)
                and isinstance(value.slice, ast.Name)):
            return False
        source, index = self.bound.get(value.value.id), self.bound.get(value.slice.id)
        if any(n not in self.leaves or self.leaves[n].dtype != "int64" for n in (source, index)):
            return False
        table, picks = self.leaves[source].array, [int(v) for v in self.leaves[index].array.values]
        if not table.shape:
            raise Refused(f"{_describe(value)}: indexing a 0-d tensor (allowed: a tensor with dimensions)")
        rows, width = table.shape[0], math.prod(table.shape[1:])
        for pick in picks:
            if not -rows <= pick < rows:
                raise Refused(f"index {pick} is out of bounds for dimension 0 with size {rows}"
                              f" (allowed: -{rows} to {rows - 1})")
        shape = self.sized(self.leaves[index].array.shape + table.shape[1:])
        array = Array(shape, tuple(table.values[(pick % rows) * width + k] for pick in picks for k in range(width)))
        self.leaf(name, (array, "int64", False), line)
        self.leaves[source].used = self.leaves[index].used = True  # the document's code indexes them too
        self.gathers.append((array, "picked", (source, index)))
        return True

    def size_of(self, node: ast.expr) -> int | None:
        """Return t.shape[i], t.size(i) or len(t) of a tensor made by a creation function, or None for other code."""
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
            tensor, dim = node.value.value, node.slice
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "size"
              and len(node.args) == 1 and not node.keywords):
            tensor, dim = node.func.value, node.args[0]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"
              and len(node.args) == 1 and not node.keywords):
            tensor, dim = node.args[0], ast.Constant(0)
        else:
            return None
        if not (isinstance(tensor, ast.Name) and tensor.id in self.bound):
            return None
        shape = self.shape_of(self.bound[tensor.id])
        index = int(self.number(dim)) if self.number(dim).denominator == 1 else None
        if index is None or not -len(shape) <= index < len(shape):
            raise Refused(f"{_describe(node)}: a dimension out of range (allowed: -{len(shape)} to {len(shape) - 1})"
                          if shape else f"{_describe(node)} of a 0-d tensor (allowed: a tensor with dimensions)")
        return shape[index]

    def shape_of(self, name: str) -> tuple[int, ...]:
        if name in self.leaves:
            return self.leaves[name].array.shape
        raise Refused(f"the shape of step '{name}' (allowed: *_like of a tensor made by torch.tensor, ones, ...)")

    def shape(self, args: list[ast.expr], size: ast.expr | None, kind: str) -> tuple[int, ...]:
        if size is not None:
            args = [size, *args]
        if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
            args = list(args[0].elts)
        dims = tuple(self.integer_of(a) for a in args)
        if len(dims) > MAX_DIMS or any(d < 1 for d in dims):
            raise Refused(f"torch.{kind} of shape {dims} (allowed: 0 to {MAX_DIMS} positive sizes)")
        return self.sized(dims)

    def sized(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        count = math.prod(shape)
        if count > MAX_ELEMENTS:
            raise Refused(f"too many elements: {count} (allowed: at most {MAX_ELEMENTS})")
        return shape

    def literal(self, node: ast.expr) -> tuple[Array, bool]:
        """Return a nested list of numbers as an Array, and whether every number was written as an integer."""
        if not isinstance(node, (ast.List, ast.Tuple)):
            return Array((), (self.number(node),)), _is_int_literal(node)
        shape: list[int] = []
        current: ast.expr = node
        while isinstance(current, (ast.List, ast.Tuple)):
            if not current.elts:
                raise Refused(f"an empty list (allowed: non-empty nested lists; {_LITERAL})")
            if len(shape) == MAX_DIMS:
                raise Refused(f"too many dimensions: more than {MAX_DIMS} (allowed: at most {MAX_DIMS})")
            shape.append(len(current.elts))
            current = current.elts[0]
        self.sized(tuple(shape))
        values: list[Fraction] = []
        ints: list[bool] = []

        def flatten(item: ast.expr, dims: list[int]) -> None:
            if not dims:
                if isinstance(item, (ast.List, ast.Tuple)):
                    raise Refused(f"a ragged list (allowed: rectangular nested lists; {_LITERAL})")
                values.append(self.number(item))
                ints.append(_is_int_literal(item))
                return
            if not isinstance(item, (ast.List, ast.Tuple)) or len(item.elts) != dims[0]:
                raise Refused(f"a ragged list (allowed: rectangular nested lists; {_LITERAL})")
            for child in item.elts:
                flatten(child, dims[1:])

        flatten(node, shape)
        return Array(tuple(shape), tuple(values)), all(ints)

    # -- numbers and flags -----------------------------------------------

    def is_number(self, node: ast.expr) -> bool:
        try:
            self.number(node)
        except Refused:
            return False
        return True

    def number(self, node: ast.expr) -> Fraction:
        """Return a number written as a literal, a constant's name, or unary minus of one, exactly."""
        if isinstance(node, ast.UnaryOp) and getattr(node, "source", None):  # -0.5 or +2, read as written
            return _exact(node.source)  # type: ignore[attr-defined]
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.number(self.constants[node.id])
        if isinstance(node, ast.Constant) and isinstance(node.value, Fraction):
            return node.value
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            text = getattr(node, "source", None) or repr(node.value)
            return _exact(text)
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and self.modules.get(node.value.id) == "math" and node.attr in MATH_CONSTANTS):
            return Fraction(MATH_CONSTANTS[node.attr])  # the double Python holds, exactly
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
            return self.number(node.operand)
        size = self.size_of(node)
        if size is not None:  # Xtr.shape[0], Xtr.size(0), len(Xtr): a size the tensor's making fixed
            return Fraction(size)
        op = by_operator(type(node.op)) if isinstance(node, (ast.BinOp, ast.UnaryOp)) else None
        if op is not None:  # 2. * math.pi, -math.pi: Python computes the number before torch sees it
            operands = [node.operand] if isinstance(node, ast.UnaryOp) else [node.left, node.right]
            try:
                return op.python_number([self.number(x) for x in operands])
            except ExprError as e:
                raise Refused(f"{_describe(node)}: {e}") from None
        raise Refused(f"{_describe(node)} where a number is needed ({_LITERAL})")

    def device(self, node: ast.expr) -> None:
        """Accept device='cpu', torch.device('cpu') or a name bound to it: derive explains what the CPU computes."""
        if isinstance(node, ast.Name) and node.id in self.devices:
            return
        if isinstance(node, ast.Call) and dotted_name(node.func) == "torch.device" and len(node.args) == 1 and not node.keywords:
            node = node.args[0]
        if not (isinstance(node, ast.Constant) and node.value == "cpu"):
            raise Refused(f"the device {clip(' '.join(ast.unparse(node).split()))} (allowed: 'cpu', torch.device('cpu'))")

    def flag(self, node: ast.expr, what: str) -> bool:
        if isinstance(node, ast.Name) and node.id in self.flags:
            return self.flags[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return node.value
        raise Refused(f"{what}={_describe(node)} (allowed: True or False)")

    def dtype(self, node: ast.expr) -> str:
        if isinstance(node, ast.Name) and node.id in self.dtypes:  # dtype = torch.float, then dtype=dtype
            return self.dtypes[node.id]
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and self.modules.get(node.value.id) == "torch" and node.attr in TORCH_DTYPES):
            return TORCH_DTYPES[node.attr]
        raise Refused(f"the dtype {_describe(node)} (allowed: torch.float32, torch.float, torch.float64, torch.double,"
                      " torch.int64, torch.long)")

    # -- expressions -----------------------------------------------------

    def translate(self, node: ast.expr, env: dict[str, ast.expr] | None = None, depth: int = 0, *,
                  decorated: bool = False) -> ast.expr:
        """Return an expression with names bound to their nodes, constants and functions inlined, F. as torch.nn.functional.

        decorated: the expression is a call of a helper under a grad-mode decorator, which may be inlined there.
        """
        env = env or {}
        root = copy.deepcopy(node)

        def visit(n: ast.AST) -> ast.AST:
            picked = self.grad_item(n)
            if picked is not None:
                return ast.Name(picked, ast.Load())
            if isinstance(n, ast.Name) and n.id in self.grads and n.id not in env:
                raise Refused(f"'{n.id}', the tuple torch.autograd.grad returns (allowed: {n.id}[0])")
            if isinstance(n, ast.Name):
                if n.id in env:
                    return copy.deepcopy(env[n.id])
                if n.id in self.bound:
                    return ast.Name(self.tensor_name(n), ast.Load())
                if n.id in self.constants:
                    return ast.Constant(_float_or_int(self.number(self.constants[n.id])))
                if n.id in self.modules and self.modules[n.id] == "F":  # F.relu(x) is torch.nn.functional.relu(x)
                    return ast.parse("torch.nn.functional", mode="eval").body
                if n.id in self.modules:
                    return ast.Name("torch" if self.modules[n.id] == "torch" else n.id, ast.Load())
                if n.id in self.kept:
                    return ast.Name(self.tensor_name(n), ast.Load())  # refused: what a functional call returned
                raise Refused(f"unknown name '{clip(n.id)}' (allowed: {self.names()})")
            if isinstance(n, ast.Call) and self.is_creation(n):  # torch.ones(2, requires_grad=True) * 2
                return ast.Name(self.anonymous_leaf(n), ast.Load())
            if isinstance(n, ast.Call) and self.custom_of(n):  # relu(x.mm(w1)).mm(w2): the Function's output, a step
                return self.apply(n, env, depth)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id not in env and (
                    n.func.id in self.linears or n.func.id in self.criteria):
                return self.called_module(n, visit)
            if isinstance(n, ast.Attribute) and self.linear_attribute(n) is not None:
                return ast.Name(self.current(self.linear_attribute(n)), ast.Load())
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "range"
                    and n.func.id not in env and n.func.id not in self.functions and not n.keywords):
                return ast.Call(ast.Name("range", ast.Load()), [visit(a) for a in n.args], [])  # logp[range(n), y]
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
                if n.func.id in self.modes and not (decorated and n is root):
                    raise Refused(f"calling '{n.func.id}', a helper under a grad-mode decorator, inside a computation"
                                  f" (allowed: name = {n.func.id}(...), a step of its own)")
                if n.func.id in self.hook_defs:
                    raise Refused(f"calling '{n.func.id}', a function that prints, inside a computation (allowed: def f(a, b):"
                                  f" return expression; one that prints only as a hook: t.register_hook({n.func.id}))")
                if n.func.id in self.functions:
                    return self.inline(n, env, depth)
                helpers = ", ".join(sorted(self.functions)) or "none yet"
                raise Refused(f"calling '{clip(n.func.id)}' is not supported"
                              f" (allowed: torch.f(x), x.f(), and the functions defined above: {helpers})")
            if isinstance(n, ast.Attribute) and n.attr.startswith("_"):
                raise Refused(f"the attribute '.{clip(n.attr)}' (allowed: torch's ops, such as x.sum() or x.T)")
            if isinstance(n, ast.Attribute) and n.attr in ("grad", "data", "grad_fn", "requires_grad"):
                raise Refused(f"{_describe(n)} inside a computation (allowed: not supported yet; operations on tensors)")
            if isinstance(n, ast.Constant) and type(n.value) in (int, float):
                return ast.Constant(_float_or_int(self.number(n)))
            if isinstance(n, (ast.Lambda, ast.NamedExpr, ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.SetComp,
                              ast.IfExp, ast.Await, ast.Yield, ast.YieldFrom, ast.Starred)):
                raise Refused(f"{_describe(n)} inside a computation (allowed: operations on tensors and numbers)")
            return _map_children(n, visit)

        result = visit(root)
        assert isinstance(result, ast.expr)
        return result

    def called_module(self, call: ast.Call, visit) -> ast.expr:
        """Return model(x) as x @ weight.T + bias, and loss(a, b) as torch.nn.functional.mse_loss(a, b)."""
        name = call.func.id  # type: ignore[attr-defined]
        if call.keywords or any(isinstance(a, ast.Starred) for a in call.args) or len(call.args) != (
                1 if name in self.linears else 2):
            shown = f"{name}(x)" if name in self.linears else f"{name}(input, target)"
            raise Refused(f"calling {name} with other arguments (allowed: {shown})")
        if name in self.criteria:
            return mse_criterion([visit(a) for a in call.args], self.criteria[name].reduction)
        weight = self.current((name, "weight"))
        self.linear_weights.add(weight)
        bias = self.current((name, "bias")) if self.linears[name].bias else ""
        return linear_forward(visit(call.args[0]), weight, bias)

    def inline(self, call: ast.Call, env: dict[str, ast.expr], depth: int) -> ast.expr:
        """Return a helper's expression with its parameters replaced by the call's arguments."""
        name = call.func.id  # type: ignore[attr-defined]
        params, body = self.functions[name]
        if depth >= MAX_INLINE_DEPTH:
            raise Refused(f"helpers calling helpers more than {MAX_INLINE_DEPTH} deep (allowed: at most {MAX_INLINE_DEPTH})")
        if call.keywords or len(call.args) != len(params) or any(isinstance(a, ast.Starred) for a in call.args):
            raise Refused(f"calling {name} with other than its {len(params)} plain arguments (allowed: {name}({', '.join(params)}))")
        args = {p: self.translate(a, env, depth) for p, a in zip(params, call.args)}
        return self.translate(body, {**{k: v for k, v in env.items() if k not in params}, **args}, depth + 1)

    # -- tuples of tensors and torch.autograd.functional -----------------

    def tuple_(self, name: str, node: ast.Tuple, line: int) -> None:
        """Bind a name to a tuple of tensors: those named, or new leaves made in it (name_0, name_1, ...)."""
        if not node.elts or len(node.elts) > MAX_ITERATIONS:
            raise Refused(f"the tuple {_describe(node)} (allowed: a tuple of tensors, such as (x, y))")
        base, k = name, 1
        while not NAME.fullmatch(base + "_0") or base in RESERVED or any(
                f"{base}_{i}" in self.taken or f"{base}_{i}" in self.bound.values() for i in range(len(node.elts))):
            k += 1
            base = f"{name}{k}"
            if k > MAX_STATEMENTS:
                raise Refused(f"the name '{clip(name)}' (allowed: a letter, then up to 31 letters, digits or underscores)")
        members = []
        for i, element in enumerate(node.elts):
            made = self.creation(element)
            if made is None:
                members.append(self.tensor_name(element))
                continue
            member = f"{base}_{i}"
            self.taken.add(member)
            self.leaves[member] = _Leaf(made[0], made[1], made[2], line, seq=self.count)
            members.append(member)
        self.forget(name)
        self.tuples[name] = tuple(members)

    def tuple_of(self, node: ast.expr) -> tuple[str, ...]:
        """Return the tensors of a tuple: (x, y) written out, or a name bound to one."""
        if isinstance(node, ast.Name) and node.id in self.tuples:
            members = self.tuples[node.id]
            for member in members:
                if member in self.leaves:
                    self.leaves[member].used = True
            return members
        if isinstance(node, ast.Tuple) and node.elts:
            return tuple(self.tensor_or_leaf(e) for e in node.elts)
        raise Refused(f"{_describe(node)} where a tuple of tensors belongs (allowed: (x, y), or a name bound to one)")

    def tensor_or_leaf(self, node: ast.expr) -> str:
        """Return the node of a tensor named, or of a leaf made right here (torch.tensor([1., 2.]))."""
        if isinstance(node, ast.Call) and self.is_creation(node):
            return self.anonymous_leaf(node)
        return self.tensor_name(node)

    def tuple_shown(self, node: ast.expr) -> tuple[list[str | Shown], str]:
        """Return what printing a tuple of tensors shows: (tensor(...), tensor(...)), as Python writes a tuple."""
        members = self.tuple_of(node)
        parts: list[str | Shown] = ["("]
        for i, member in enumerate(members):
            parts += [", "] if i else []
            parts.append(Shown(member, "value"))
        parts.append(",)" if len(members) == 1 else ")")
        return parts, f"({', '.join(members)}{',' if len(members) == 1 else ''})"

    def functional_kind(self, node: ast.expr) -> str:
        """Return "jacobian", "vjp", "jvp", "hessian" or "hvp" for a call of torch.autograd.functional's, else ''."""
        if not isinstance(node, ast.Call):
            return ""
        dotted = dotted_name(node.func)
        head, _, kind = dotted.rpartition(".")
        if head == "torch.autograd.functional" and kind in FUNCTIONALS and self.modules.get("torch") == "torch":
            return kind
        if isinstance(node.func, ast.Name) and self.modules.get(node.func.id, "").startswith("functional."):
            return self.modules[node.func.id].removeprefix("functional.")
        return ""

    def functional(self, node: ast.Call) -> Functional:
        """Read jacobian(f, inputs, ...), hessian(f, inputs, ...), or vjp / jvp / hvp(f, inputs, v) of a helper or a lambda."""
        kind = self.functional_kind(node)
        names = FUNCTIONAL_ARGS.get(kind, ("func", "inputs", "v", "create_graph", "strict"))
        if len(node.args) > len(names) or any(isinstance(a, ast.Starred) for a in node.args):
            raise Refused(f"{kind}() with {len(node.args)} arguments (allowed: {kind}({', '.join(names)}))")
        args = dict(zip(names, node.args))
        for k in node.keywords:
            if k.arg not in names or k.arg in args:
                raise Refused(f"{kind}({k.arg}=...) (allowed: {kind}({', '.join(names)}))")
            args[k.arg] = k.value
        if "func" not in args or "inputs" not in args:
            raise Refused(f"{kind}() without a function and its inputs (allowed: {kind}(f, inputs))")
        create = self.flag(args["create_graph"], "create_graph") if "create_graph" in args else False
        if create and kind != "jacobian":
            raise Refused(f"{kind}(create_graph=True) (allowed: not supported yet; create_graph=False)")
        if "strict" in args and self.flag(args["strict"], "strict"):
            raise Refused(f"{kind}(strict=True) (allowed: not supported yet; strict=False)")
        vectorize = self.flag(args["vectorize"], "vectorize") if "vectorize" in args else False
        for key in ("strategy", "outer_jacobian_strategy"):
            if key in args and not (isinstance(args[key], ast.Constant) and args[key].value == "reverse-mode"):
                raise Refused(f"{kind}({key}={_describe(args[key])[1:-1]}) (allowed: {key}='reverse-mode')")
        given_f = args["func"]
        if isinstance(given_f, ast.Name) and given_f.id in self.procedures:
            function, (params, statements) = given_f.id, self.procedures[given_f.id]  # type: ignore[assignment]
            params = tuple(params)
        else:
            function, params, body = self.function_of(given_f)
            statements = None
        packed = not (isinstance(args["inputs"], ast.Name) and args["inputs"].id in self.bound) and not (
            isinstance(args["inputs"], ast.Call) and self.is_creation(args["inputs"]))
        inputs = self.tuple_of(args["inputs"]) if packed else (self.tensor_or_leaf(args["inputs"]),)
        if len(inputs) != len(params):
            raise Refused(f"{kind} of '{function}', which takes {len(params)} tensors, at {len(inputs)}: torch raises"
                          f" TypeError (allowed: {len(params)} inputs)")
        for name in inputs:
            if name not in self.leaves:
                raise Refused(f"{kind} at '{name}', a computed tensor (allowed: tensors made by torch.tensor, ones, ...)")
            if name in self.versions:  # its numbers are the update's, which the call does not follow
                raise Refused(f"{kind} at '{self.versions[name]}' after an in-place update (allowed: not supported yet;"
                              " the call before the update)")
        for p in params:
            if not NAME.fullmatch(p) or p in RESERVED:
                raise Refused(f"the parameter '{clip(p)}' of '{function}' (allowed: a letter, then letters, digits or _)")
        steps: tuple[Step, ...] = ()
        decided: tuple = ()
        if statements is not None:
            steps, expr, decided = self.unrolled(kind, function, params, statements, inputs)
        else:
            expr = ast.unparse(self.translate(body, {p: ast.Name(p, ast.Load()) for p in params}))
        outside = sorted(set().union(_names_in(expr), *(_names_in(s.expr) for s in steps))
                         - set(params) - {s.name for s in steps} - {"torch"})
        computed = [n for n in outside if n not in self.leaves]
        updated = [n for n in outside if n in self.versions]
        if updated:
            raise Refused(f"'{function}' uses '{self.versions[updated[0]]}' after an in-place update (allowed: not"
                          f" supported yet; {kind} before the update)")
        if computed:
            raise Refused(f"'{function}' uses {', '.join(repr(n) for n in computed)}, a computed tensor from outside it"
                          f" (allowed: {kind} of a function of its own parameters ({', '.join(params)}) and of tensors"
                          " made by torch.tensor, ones, ...)")
        v: tuple[str, ...] = ()
        v_packed = False
        given = args.get("v")
        if given is not None and not (isinstance(given, ast.Constant) and given.value is None):
            v_packed = kind in ("jvp", "hvp") and not (isinstance(given, ast.Name) and given.id in self.bound) and not (
                isinstance(given, ast.Call) and self.is_creation(given))
            v = self.tuple_of(given) if v_packed else (self.tensor_or_leaf(given),)
            if any(name not in self.leaves for name in v):
                raise Refused(f"{kind} with v {_describe(given)}, a computed tensor"
                              " (allowed: tensors made by torch.tensor, ones, ...)")
            if kind in ("jvp", "hvp") and len(v) != len(inputs):
                raise Refused(f"{kind} with {len(v)} tensors in v for {len(inputs)} inputs: torch raises RuntimeError"
                              f" (allowed: one v per input)")
        return Functional(kind, function, params, expr, inputs, packed, self.last_line, v, v_packed, create, vectorize,
                          tuple(outside), steps, decided)

    def unrolled(self, kind: str, function: str, params: tuple[str, ...], body: list[ast.stmt],
                 inputs: tuple[str, ...]) -> tuple[tuple[Step, ...], str, tuple]:
        """Read f of several statements as torch runs it once at the inputs' copies: its loops and ifs decided on
        their values, as the module's are. Return its steps before the return, the return's expression (both in f's
        own names: its parameters, then y, y2, ... for what it binds), and how its loops and ifs went."""
        if self.inside:
            self.within(f"{kind}(...)")
        marks = (len(self.steps), len(self.renamed), len(self.problems), set(self.leaves))
        kept = (set(self.taken), list(self.renamed), dict(self.computed), self.no_grad)
        copies = []
        for p, n in zip(params, inputs):  # torch detaches each input and sets requires_grad on the copy
            node = self.fresh(p)
            leaf = self.leaves[n]
            self.leaves[node] = _Leaf(leaf.array, leaf.dtype, True, self.last_line, used=True, seq=self.count)
            copies.append(node)
        self.inside, self.decided, self.no_grad = (kind, function), [], False  # f runs with gradients on
        try:
            try:
                result = self.body_of(list(params), copies, body, function, self.last_line)
            except _Reported:
                raise
            except Refused as e:  # the return's expression: refused at its line, unless a statement above failed first
                if len(self.problems) > marks[2]:
                    raise _Reported("") from None
                raise _Located(getattr(e, "line", None) or body[-1].lineno, str(e)) from None
            if len(self.problems) > marks[2]:
                raise _Reported("")
            made = self.steps[marks[0]:]
            py = dict(self.renamed[marks[1]:])
            decided = self.decided
        finally:
            self.steps = self.steps[:marks[0]]
            for node in copies:
                del self.leaves[node]
            created = set(self.leaves) - marks[3]
            self.taken, self.renamed, self.computed, self.no_grad = kept
            self.taken |= created  # a tensor made inside f is a constant to J, kept as a leaf of the example
            self.inside, self.decided = (), None
        for node in created:
            if self.leaves[node].requires_grad:
                raise Refused(f"'{function}' makes '{node}', a tensor that requires grad, inside it (allowed: not"
                              f" supported yet; {kind} differentiates by its inputs only)")
            self.leaves[node].used = True
        by_name = {s.name: s for s in made}
        if result not in by_name:
            which = "its parameter" if result in copies else "a tensor from outside it"
            shown = params[copies.index(result)] if result in copies else result
            raise Refused(f"'{function}' returns {which} '{shown}' unchanged (allowed: not supported yet; {kind} of a"
                          " computation of its parameters)")
        needed, wanted = set(), [result]
        while wanted:  # what f's result is computed from: the rest torch computes and drops
            name = wanted.pop()
            if name in by_name and name not in needed:
                needed.add(name)
                wanted.extend(_names_in(by_name[name].expr))
        made = [s for s in made if s.name in needed]
        quiet = next((s for s in made if s.no_grad), None)
        if quiet is not None:
            raise _Located(quiet.line, f"a step under torch.no_grad() inside '{function}', the function given to {kind}"
                           " (allowed: not supported yet; inside it: name = expression, for, while and if, then return)")
        out = Functional(kind, function, params, "", inputs, False, 0).output
        local = dict(zip(copies, params))
        outside = set().union(*(_names_in(s.expr) for s in made)) - needed - set(copies) - {"torch"}
        taken = set(params) | outside | {out, "torch"}
        for s in made[:-1]:
            base = py.get(s.name, s.name)
            base = base if NAME.fullmatch(base) and base not in RESERVED else s.name
            candidate, k = base, 1
            while candidate in taken:
                k += 1
                candidate = f"{base}_{k}" if base[-1].isdigit() else f"{base}{k}"
            taken.add(candidate)
            local[s.name] = candidate
        local[result] = out

        def named(expr: str) -> str:
            tree = ast.parse(expr, mode="eval")
            for n in ast.walk(tree):
                if isinstance(n, ast.Name):
                    n.id = local.get(n.id, n.id)
            return ast.unparse(tree)

        steps = tuple(Step(local[s.name], named(s.expr), s.line) for s in made[:-1])
        summary: dict[tuple[int, str], tuple[int, ...]] = {}
        for line, header, n in decided:
            summary[(line, header)] = summary.get((line, header), ()) + (n,)
        return steps, named(made[-1].expr), tuple((line, header, ns) for (line, header), ns in summary.items())

    def function_of(self, node: ast.expr) -> tuple[str, tuple[str, ...], ast.expr]:
        """Return (name, parameters, return expression) of a helper named or a lambda written in place."""
        if isinstance(node, ast.Lambda):
            a = node.args
            if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs:
                raise Refused("a lambda with defaults or special parameters (allowed: lambda a, b: expression)")
            return "f", tuple(p.arg for p in a.args), node.body
        if isinstance(node, ast.Name) and node.id in self.functions and node.id not in self.modes:
            params, body = self.functions[node.id]
            return node.id, tuple(params), body
        raise Refused(f"the function {_describe(node)} (allowed: a helper defined above, or a lambda:"
                      f" {', '.join(sorted(set(self.functions) - set(self.modes))) or 'none yet'})")

    # -- the whole file --------------------------------------------------

    def snapshot(self) -> Spec:
        """Return the spec of what the code has done so far, for deciding a condition on its values."""
        dtypes = {leaf.dtype for leaf in self.leaves.values()} - {None, "int64"}
        inputs = tuple(Input(n, leaf.array, leaf.requires_grad, leaf.line, leaf.seq, leaf.grad_from,
                             integer=leaf.dtype == "int64") for n, leaf in self.leaves.items())
        return Spec(self.path, "", "", inputs, tuple(self.steps), tuple(self.calls),
                    dtypes.pop() if len(dtypes) == 1 else "float32", resets=tuple(self.resets),
                    updates=tuple(self.updates))

    def spec(self, tree: ast.Module, text: str, stem: str, default_dtype: str = "float32", last_line: int = 1) -> Spec:
        title, summary = _title(tree, text, stem)
        active = ACTIVE_TEX.search(title + "\n" + summary)
        if active:
            self.bad(1, f"TeX macro {active.group()} in the docstring", PLAIN_TEXT)
        header = self.header(text)
        try:
            self.block(tree.body)
        except Refused as e:  # the statement count ran out at the top level
            self.problems.append(Problem(self.path, self.last_line, str(e)))
        used = {n for s in self.steps for n in _names_in(s.expr)}
        for name, leaf in self.leaves.items():
            leaf.used = leaf.used or name in used
        kept = {n: leaf for n, leaf in self.leaves.items() if leaf.used or leaf.requires_grad}
        dtypes = {leaf.dtype or default_dtype for leaf in kept.values()} - {"int64"}
        if len(dtypes) > 1:
            self.bad(min(leaf.line for leaf in kept.values()), "tensors of both float32 and float64",
                     "allowed: one dtype for the whole example")
        if self.problems:
            raise SpecError(sorted(dict.fromkeys(self.problems), key=lambda p: p.line or 0))  # a loop's once
        inputs = tuple(Input(n, leaf.array, leaf.requires_grad, leaf.line, leaf.seq, leaf.grad_from, leaf.parameter,
                             *next(((kind, params) for array, kind, params in self.drawn + self.gathers
                                    if array is leaf.array),
                                   ("", ())),
                             integer=leaf.dtype == "int64")
                       for n, leaf in kept.items())
        prints = tuple(self.prints) or None
        return Spec(self.path, title, summary, inputs, tuple(self.steps), tuple(self.calls),
                    dtypes.pop() if dtypes else default_dtype, header.get("lang", "en"), header.get("flavor", "portable"),
                    prints, tuple(self.resets), tuple(self.retained), tuple(self.renamed), tuple(self.bound.items()),
                    tuple(self.updates), tuple(c.function for c in self.customs.values()), tuple(self.applied),
                    tuple(self.hooks), self.made_modules(), self.seed)

    def made_modules(self) -> tuple[Module, ...]:
        """Return what torch.nn and torch.optim made, for the document to say what each does."""
        found = []
        for m in self.made:
            if isinstance(m, _Linear):
                params = tuple(n for n in (m.weight_node, m.bias_node) if n)
                numbers = tuple(m.numbers[k] for k in ("weight", "bias") if k in m.numbers)
                found.append(Module("linear", m.name, m.code, m.line, params, numbers=numbers))
            elif isinstance(m, _Criterion):
                found.append(Module("mse", m.name, m.code, m.line, setting=m.reduction))
            else:
                params = tuple(what if not module else getattr(self.linears.get(module), what + "_node", "")
                               for module, what in m.params)
                found.append(Module("sgd", m.name, m.code, m.line, tuple(p for p in params if p),
                                    setting=_number_text(m.lr), zeroed=m.zeroed))
        return tuple(found)

    def header(self, text: str) -> dict[str, str]:
        """Return the settings of `# derive: lang=zh, flavor=github` comment lines."""
        found: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped.startswith("# derive:"):
                continue
            for item in filter(None, (s.strip() for s in stripped.removeprefix("# derive:").split(","))):
                key, _, value = item.partition("=")
                key, value = key.strip(), value.strip()
                choices = {"lang": LANGS, "flavor": FLAVORS}.get(key)
                if choices is None:
                    self.bad(number, f"# derive: unknown setting '{clip(key)}'", "allowed: " + ", ".join(HEADER_KEYS))
                elif value not in choices:
                    self.bad(number, f"# derive: {key}={clip(value)}", "allowed: " + ", ".join(choices))
                else:
                    found[key] = value
        return found


def read(path: str, data: bytes, *, stem: str, evaluate: Evaluate | None = None) -> Spec:
    """Read and validate one Python file of torch code; raise SpecError listing every problem."""
    if len(data) > MAX_BYTES:
        raise SpecError([Problem(path, None, f"file too large: more than {MAX_BYTES} bytes (allowed: at most {MAX_BYTES} bytes)")])
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise SpecError([Problem(path, line, f"invalid UTF-8: byte 0x{data[error.start]:02x} at offset {error.start}"
                                 " (allowed: UTF-8 text)")]) from None
    return code(path, text, stem=stem, evaluate=evaluate)


def code(path: str, text: str, *, stem: str, first_line: int = 1, settings: Spec | None = None,
         evaluate: Evaluate | None = None) -> Spec:
    """Read torch code (a whole file, or a YAML spec's `code:` block starting at first_line)."""
    odd = next((c for c in text if not (c.isprintable() or c in "\t\n\r")), None)
    if odd is not None:
        line = text[: text.index(odd)].count("\n") + first_line
        raise SpecError([Problem(path, line, f"invalid character U+{ord(odd):04X} (allowed: printable characters,"
                                 " spaces, tabs and newlines)")])
    try:
        with warnings.catch_warnings():  # an invalid escape in the author's strings is theirs to fix, not ours to print
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="exec")
    except SyntaxError as e:
        line = (e.lineno or 1) + first_line - 1
        raise SpecError([Problem(path, line, f"invalid Python: {e.msg} (allowed: Python 3 code)")]) from None
    except (RecursionError, MemoryError, ValueError):
        raise SpecError([Problem(path, first_line, f"the code is nested too deeply (allowed: at most {MAX_DEPTH} levels)")]) from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_AST_NODES:
        raise SpecError([Problem(path, first_line, f"the code has {count} parts (allowed: at most {MAX_AST_NODES})")])
    if _depth(tree) > MAX_DEPTH:
        raise SpecError([Problem(path, first_line, f"the code is nested too deeply (allowed: at most {MAX_DEPTH} levels)")])
    _keep_sources(tree, text)
    if first_line != 1:
        ast.increment_lineno(tree, first_line - 1)
    reader = _Reader(path, evaluate=evaluate)
    last = max(len(text.splitlines()), 1) + first_line - 1
    if settings is None:
        return reader.spec(tree, text, stem, last_line=last)
    for inp in settings.inputs:
        reader.bound[inp.name] = inp.name
        reader.taken.add(inp.name)
        reader.leaves[inp.name] = _Leaf(inp.value, None, inp.requires_grad, inp.line)
    spec = reader.spec(tree, text, stem, settings.dtype, last_line=last)
    return Spec(path, settings.title, settings.summary, spec.inputs, spec.steps, spec.backward, spec.dtype,
                settings.lang, settings.flavor, spec.prints, spec.resets, spec.retained, spec.renamed, spec.bound,
                spec.updates, spec.functions, spec.applied, spec.hooks, spec.modules)


# -- helpers -------------------------------------------------------------


def _keep_sources(tree: ast.Module, text: str) -> None:
    """Remember each number literal's text, so 0.1 is read as one tenth, exactly, as in a YAML spec."""
    lines = text.splitlines(keepends=True)
    for node in ast.walk(tree):
        signed = isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant)
        if ((signed or isinstance(node, ast.Constant) and type(node.value) in (int, float))
                and node.lineno == node.end_lineno):
            text = lines[node.lineno - 1][node.col_offset: node.end_col_offset]
            if signed:
                text = text[0] + text[1:].strip()
                if not SIGNED.fullmatch(text):
                    continue
            node.source = text  # type: ignore[attr-defined]


def _exact(text: str) -> Fraction:
    """Return a Python number literal's exact value."""
    text = text.replace("_", "")
    lower = text.lower()
    if lower.startswith(("0x", "0o", "0b")):
        value = int(text, 0)
        if len(str(value)) > 50:
            raise Refused(f"integer too long: {clip(text)} (allowed: at most 50 digits)")
        return Fraction(value)
    if any(c in lower for c in ".e") or lower in ("inf", "nan"):
        value, problem = decimal(text)
    else:
        value, problem = integer(text)
    if value is None:
        raise Refused(f"{problem[0]} ({problem[1]})")
    return value


def _arg(node: ast.expr) -> str | Fraction:
    """Return a step's node name, or the number a constant holds exactly."""
    if isinstance(node, ast.Constant):
        return Fraction(node.value) if isinstance(node.value, int) else _exact(repr(node.value))
    return node.id  # type: ignore[attr-defined]


def _float_or_int(value: Fraction) -> int | float:
    """Return a number as a constant for the graph: an int, or the float whose shortest repr the graph reads back."""
    return int(value) if value.denominator == 1 else float(value)


FLOAT_FORMAT = re.compile(r"[<>=^]?[-+ ]?0?[0-9]{0,2}[,_]?(\.[0-9]{1,2})?[eEfFgG%]?")


def is_comparison(operator: ast.cmpop, *symbols: str) -> bool:
    """Say whether an ast comparison is one of these (==, <, ...)."""
    op = comparison(operator)
    return op is not None and op.spelling.symbol in symbols


def float_format(node: ast.expr) -> str | None:
    """Return an f-string field's format if it is a plain number format (.4f, 8.3e, +.2%), else None."""
    if (isinstance(node, ast.JoinedStr) and len(node.values) == 1 and isinstance(node.values[0], ast.Constant)
            and isinstance(node.values[0].value, str) and FLOAT_FORMAT.fullmatch(node.values[0].value)):
        return node.values[0].value
    return None


def _plain(text: str) -> str:
    """Return text a print writes, if it is printable ASCII and newlines without backslashes.

    A PDF listing sets the code and what it prints verbatim: the code writes a newline as the escape \\n,
    which can never spell the listing's end, as a backslash of the text itself could.
    """
    if all(" " <= c <= "~" or c == "\n" for c in text) and "\\" not in text:
        return text
    raise Refused(f"the text {clip(repr(text))} in print(...) (allowed: printable ASCII and newlines, without backslashes)")


def _rounded(array: Array, dtype: str) -> Array:
    """Return an array's values as a tensor of that dtype holds them (a Python float first, as torch reads one)."""
    if dtype == "int64":  # whole numbers below 2**53, which every float dtype of the later cast reads as they are
        return array
    rounded = [float(v) if dtype == "float64" else float(np.float32(float(v))) for v in array.values]
    if not all(math.isfinite(v) for v in rounded):
        raise Refused(f"a value beyond {dtype}'s range, which torch makes inf (allowed: finite values)")
    return Array(array.shape, tuple(Fraction(v) for v in rounded))


def _map_children(node: ast.AST, fn) -> ast.AST:
    """Replace each child of a node by fn(child), in place; return the node."""
    for name, value in ast.iter_fields(node):
        if isinstance(value, list):
            setattr(node, name, [fn(v) if isinstance(v, ast.AST) else v for v in value])
        elif isinstance(value, ast.AST):
            setattr(node, name, fn(value))
    return node


def _number_text(value: Fraction) -> str:
    """Return how Python prints a number constant."""
    return str(int(value)) if value.denominator == 1 else repr(float(value))


def _is_int_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and getattr(node, "source", None):
        return _is_int_literal(node.operand)
    return isinstance(node, ast.Constant) and type(node.value) is int


def _names_in(expr: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Name)}


def _depth(node: ast.AST) -> int:
    stack, deepest = [(node, 1)], 0
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(current))
    return deepest


def _title(tree: ast.Module, text: str, stem: str) -> tuple[str, str]:
    """Return the title and summary: the module docstring's first line and the rest, else the leading comments."""
    doc = ast.get_docstring(tree, clean=True)
    if not doc:
        comments = []
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                body = token.string.lstrip("#").strip()
                if not body.startswith("derive:"):
                    comments.append(body)
            elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.ENCODING):
                break
        doc = "\n".join(comments).strip()
    if not doc:
        return stem, ""
    first, _, rest = doc.partition("\n")
    return first.strip(), " ".join(rest.split())


def _describe(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001 - a node unparse cannot write is named by its type
        text = type(node).__name__
    return "'" + clip(" ".join(text.split())) + "'"


# What tutorials use that derive does not read yet, by the dotted name (or its last part) that shows it.
_MISSING = {
    "torch.autograd.functional": "torch.autograd.functional's other functions (jacobian, vjp, jvp, hessian and hvp"
                                 " are read)",
}


def _missing_feature(node: ast.stmt) -> str:
    """Return the name of a feature derive does not read yet that a statement uses, or ''."""
    if isinstance(node, ast.ImportFrom):
        if node.module == "torch.autograd.functional" and all(a.name in FUNCTIONALS for a in node.names):
            return ""  # read by _Reader.imports
        found = _MISSING.get(node.module or "", "")
        for alias in node.names:
            found = found or _MISSING.get(f"{node.module}.{alias.name}", "") or _MISSING.get(alias.name, "")
        return found
    if isinstance(node, ast.Import):
        return next((_MISSING[a.name] for a in node.names if a.name in _MISSING), "")
    allowed = {id(n) for a in _own_parts(node) if isinstance(a, ast.Attribute) and dotted_name(a) == "torch.nn.Parameter"
               for n in ast.walk(a)}  # the one name of torch.nn read so far
    for sub in _own_parts(node):
        if id(sub) in allowed:
            continue
        if isinstance(sub, (ast.Attribute, ast.Name)):
            dotted = dotted_name(sub)
            head, _, tail = dotted.rpartition(".")
            if dotted == "torch.autograd.functional" or (head == "torch.autograd.functional" and tail in FUNCTIONALS):
                continue  # jacobian, vjp, jvp, hessian and hvp are read
            if head == "torch.autograd.functional":
                return f"torch.autograd.functional.{tail} (jacobian, vjp, jvp, hessian and hvp are read)"
            if dotted.startswith("torch.nn.functional") or "torch.nn.functional".startswith(dotted):
                continue  # its functions are read as torch's, and the graph names any it does not know
            for key in (dotted, dotted.rpartition(".")[2]) if dotted else ():
                if key in _MISSING and not (isinstance(sub, ast.Name) and key in ("nn", "optim", "Function")):
                    return _MISSING[key]
        if (isinstance(sub, ast.Attribute) and sub.attr == "data" and not isinstance(node, (ast.Expr, ast.FunctionDef))
                and not _update_of_data(node, sub)):  # a function's statements are read, and checked, where it is called
            return "t.data"
        if isinstance(sub, ast.ClassDef) and sub.decorator_list:
            return "a decorator on a class"
    return ""


def _own_parts(node: ast.stmt):
    """Yield a statement's parts, but not the statements of a loop's, with's or if's body: each is read on its own."""
    heads = {ast.For: ("target", "iter"), ast.With: ("items",), ast.If: ("test",), ast.While: ("test",)}
    if type(node) not in heads:
        yield from ast.walk(node)
        return
    yield node
    for name in heads[type(node)]:
        value = getattr(node, name)
        for part in value if isinstance(value, list) else [value]:
            yield from ast.walk(part)


def _update_of_data(statement: ast.stmt, attribute: ast.Attribute) -> bool:
    """Tell whether t.data is read by a condition or an in-place update, or written by one: w.data -= ..., w.data = ..."""
    if isinstance(statement, (ast.AugAssign, ast.While, ast.If)):
        return True
    return (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Attribute) and statement.targets[0].attr == "data")
def _is_mask(item: ast.Assign, clones: set[str]) -> bool:
    """Tell whether a statement is clone[m < number] = number in backward (any comparison, checked later)."""
    target = item.targets[0]
    return (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id in clones
            and isinstance(target.slice, ast.Compare) and len(target.slice.ops) == 1)


def _canonical(node: ast.ClassDef, fwd: ast.FunctionDef, bwd: ast.FunctionDef) -> ast.ClassDef:
    """Return a Function's class as the document's script writes it: torch.autograd.Function, no docstrings."""
    def method(m: ast.FunctionDef) -> ast.FunctionDef:
        body = [s for s in m.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        return ast.FunctionDef(name=m.name, args=m.args, body=body, decorator_list=[ast.Name("staticmethod", ast.Load())])

    base = ast.Attribute(ast.Attribute(ast.Name("torch", ast.Load()), "autograd", ast.Load()), "Function", ast.Load())
    return ast.fix_missing_locations(ast.ClassDef(name=node.name, bases=[base], keywords=[], body=[method(fwd), method(bwd)],
                                                  decorator_list=[]))


def _refuse_in_place(node: ast.FunctionDef) -> None:
    """Refuse a function that changes its argument in place: a hook's grad *= 100 changes what other tensors get too."""
    params = [a.arg for a in node.args.args]
    for sub in ast.walk(node):
        if isinstance(sub, ast.AugAssign) and isinstance(sub.target, ast.Name) and sub.target.id in params:
            raise Refused(f"'{node.name}' changes its argument '{sub.target.id}' in place ({_describe(sub)[1:-1]}): as a hook"
                          " that mutates the gradient torch passes, it changes what other tensors receive too; this is"
                          f" not supported (allowed: return a new gradient, such as return {sub.target.id} * 100)")


def _hook_shaped(node: ast.FunctionDef, body: list[ast.stmt]) -> bool:
    """Tell whether a def is a hook's: one parameter; prints, then perhaps a return."""
    prints = body[:-1] if body and isinstance(body[-1], ast.Return) else body
    return len(node.args.args) == 1 and bool(body) and all(
        isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and isinstance(s.value.func, ast.Name)
        and s.value.func.id == "print" for s in prints)




_UNSUPPORTED = {
    ast.With: "a with block other than torch.no_grad(), enable_grad() or set_grad_enabled(flag)",
    ast.While: "a while loop",
    ast.If: "an if statement",
    ast.ClassDef: "a class (torch.autograd.Function and the like)",
    ast.Try: "a try block",
    ast.Delete: "del",
    ast.Global: "global",
    ast.Nonlocal: "nonlocal",
    ast.Return: "return outside a function",
    ast.AsyncFunctionDef: "an async function",
    ast.Raise: "raise",
    ast.Assert: "assert",
}


def _refuse_statement(node: ast.stmt) -> Refused:
    """Return the refusal of a statement outside the whitelist, naming the feature."""
    if isinstance(node, ast.AugAssign):
        return Refused(f"an in-place update such as {_describe(node)} is not supported (allowed: c = c + 1)")
    word = _UNSUPPORTED.get(type(node), _describe(node))
    return Refused(f"{word} is not supported (allowed: {_STATEMENTS})")


def _call_allowed(func: ast.expr) -> str:
    name = func.attr if isinstance(func, ast.Attribute) else ""
    if name == "zero_":
        return "(allowed: t.grad.zero_() on a leaf)"
    if name == "register_hook":
        return "(allowed: not supported yet: hooks)"
    return f"(allowed: {_STATEMENTS})"
