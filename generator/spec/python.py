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
from .files import MAX_BYTES
from .model import Array, Call, Compared, Input, Print, Reset, Retain, Shown, Spec, Step
from .numbers import (
    ACTIVE_TEX, DTYPES, FLAVORS, LANGS, MAX_DIMS, MAX_ELEMENTS, NAME, PLAIN_TEXT, RESERVED, clip, decimal, integer,
)

MAX_STATEMENTS = 2000  # statements once loops are unrolled and functions inlined
MAX_ITERATIONS = 100  # iterations of one for loop
MAX_INLINE_DEPTH = 8  # helper functions calling helper functions
MAX_AST_NODES = 20_000  # parts of the whole module
MAX_DEPTH = 60  # nesting of the module's syntax tree

CREATORS = ("tensor", "ones", "zeros", "full", "eye", "arange", "linspace", "ones_like", "zeros_like", "Tensor",
            "FloatTensor", "DoubleTensor")
LEGACY = {"Tensor": "float32", "FloatTensor": "float32", "DoubleTensor": "float64"}  # torch.Tensor([...]) and kin
TORCH_DTYPES = {"float32": "float32", "float": "float32", "float64": "float64", "double": "float64"}
CASTS = {"float": "float32", "double": "float64"}
SHOWN = ("grad", "is_leaf", "requires_grad", "grad_fn", "shape")
HEADER_KEYS = ("lang", "flavor")

SIGNED = re.compile(r"[-+][0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9_]+)?|[-+]\.[0-9_]+([eE][-+]?[0-9_]+)?")
_STATEMENTS = ("imports of torch, tensors made with torch." + "/".join(CREATORS) + ", name = expression,"
               " t.backward(...), t.grad.zero_(), t.grad = None, t.retain_grad(), print(...), with torch.no_grad():"
               " (or enable_grad(), set_grad_enabled(flag), as blocks or decorators),"
               " for loops over range(k) or [w, b], functions and lambdas returning one expression")
_IMPORTS = ("allowed: import torch, import torch.nn.functional as F, import math,"
            " from torch.autograd import Variable, grad")
_LITERAL = "allowed: numbers, or nested lists of numbers such as [[1., 2.], [3., 4.]]"


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
    count: int = 0
    no_grad: bool = False  # inside `with torch.no_grad():`
    last_line: int = 1  # the line of the statement being read
    grads: dict[str, list[str]] = field(default_factory=dict)  # Python name -> the nodes of torch.autograd.grad's tuple

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
            except Refused as e:
                line = min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", [])])
                self.problems.append(Problem(self.path, line, str(e)))

    def statement(self, node: ast.stmt) -> None:
        missing = _missing_feature(node)
        if missing:
            raise Refused(f"{missing} is not supported yet (allowed: {_STATEMENTS})")
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
        if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
            raise Refused(f"function '{node.name}' has more than a single return statement"
                          " (allowed: def f(a, b): return expression)")
        self.forget(node.name)
        self.functions[node.name] = ([p.arg for p in a.args], body[0].value)
        if modes:
            self.modes[node.name] = modes[0]

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
        if isinstance(target, ast.Attribute) and target.attr == "requires_grad":
            return self.set_requires_grad(target.value, value, line)
        if isinstance(target, ast.Attribute) and target.attr == "grad":
            if not (isinstance(value, ast.Constant) and value.value is None):
                raise Refused(f"assigning {_describe(value)} to {_describe(target)} (allowed: t.grad = None, t.grad.zero_())")
            return self.reset(target.value, line, clear=True)
        if self.grad_call(value) is not None:
            return self.assign_grad(target, value, line)
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
        if name == "_" and isinstance(value, ast.Call) and self.grad_mode(value) is not None:
            return self.expression_statement(value, line)  # _ = torch.set_grad_enabled(False)
        if isinstance(value, ast.Constant) and isinstance(value.value, bool):
            self.forget(name)
            self.flags[name] = value.value
            return None
        if isinstance(value, ast.Call) and _dotted(value.func) == "torch.device":
            self.device(value)
            self.forget(name)
            self.devices.add(name)
            return None
        if isinstance(value, ast.Attribute) and _dotted(value) in {f"torch.{d}" for d in TORCH_DTYPES}:
            self.forget(name)
            self.dtypes[name] = self.dtype(value)
            return None
        if isinstance(value, ast.Lambda):
            return self.lambda_(name, value)
        if self.is_number(value):
            self.forget(name)
            self.constants[name] = ast.Constant(self.number(value))
            return None
        made = self.creation(value)
        if made is not None:
            return self.leaf(name, made, line)
        if isinstance(value, ast.Name) and value.id in self.bound:  # h = x: another name for the same tensor
            node = self.tensor_name(value)
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
        dotted = _dotted(func)
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

    def leaf(self, name: str, made: tuple[Array, str | None, bool], line: int) -> None:
        node = self.fresh(name)
        self.forget(name)
        self.bound[name] = node
        self.leaves[node] = _Leaf(made[0], made[1], made[2], line, seq=self.count)

    def set_requires_grad(self, target: ast.expr, value: ast.expr, line: int) -> None:
        flag = self.flag(value, "requires_grad")
        self.require(self.leaf_named(target), flag)

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
        for table in (self.bound, self.constants, self.functions, self.flags, self.modes, self.dtypes, self.grads):
            table.pop(name, None)
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
        if isinstance(func, ast.Attribute) and func.attr == "zero_" and not node.args and not node.keywords:
            grad = func.value.value if isinstance(func.value, ast.Attribute) and func.value.attr == "data" else func.value
            if isinstance(grad, ast.Attribute) and grad.attr == "grad":
                return self.reset(grad.value, line, clear=False)
        if isinstance(func, ast.Attribute) and func.attr == "retain_grad" and not node.args and not node.keywords:
            self.retained.append(Retain(self.tensor_name(func.value), len(self.calls), line, self.count))
            return None
        if isinstance(func, ast.Attribute) and func.attr == "requires_grad_":
            flag = self.flag(node.args[0], "requires_grad_") if node.args else True
            return self.require(self.leaf_named(func.value), flag)
        raise Refused(f"calling {_describe(func)} on its own {_call_allowed(func)}")

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
        self.resets.append(Reset(name, clear, len(self.calls), line, self.count))

    def print_(self, node: ast.Call, line: int) -> None:
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
        if len(node.ops) != 1 or not isinstance(node.ops[0], ast.Eq):
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
            grads: dict[str, ast.expr] = {}

            def mark(n: ast.AST) -> ast.AST:  # t.grad -> a marker name that translate() passes through
                if isinstance(n, ast.Attribute) and n.attr == "grad":
                    marker = f"grad of {self.tensor_name(n.value)}"
                    grads[marker] = ast.Name(marker, ast.Load())
                    return grads[marker]
                return _map_children(n, mark)

            translated = self.translate(mark(copy.deepcopy(side)), grads)
            code, expr = copy.deepcopy(translated), translated
            for n in ast.walk(code):
                for field_name, value in ast.iter_fields(n):
                    if isinstance(value, ast.Name) and value.id.startswith("grad of "):
                        setattr(n, field_name, ast.Attribute(ast.Name(value.id[8:], ast.Load()), "grad", ast.Load()))
            if isinstance(code, ast.Name) and code.id.startswith("grad of "):
                code = ast.Attribute(ast.Name(code.id[8:], ast.Load()), "grad", ast.Load())
            for n in ast.walk(expr):
                if isinstance(n, ast.Name) and n.id != "torch":
                    key = (n.id[8:], "grad") if n.id.startswith("grad of ") else (n.id, "value")
                    n.id = refs.setdefault(key, f"p{len(refs) + len(numbers) + 1}")
            sides.append(ast.unparse(expr))
            codes.append(code)
        if numbers and not refs:
            raise Refused(f"printing {_describe(node)}, two numbers (allowed: a tensor, or its grad, on one side)")
        compared = Compared(sides[0], sides[1], tuple((p, name, what) for (name, what), p in refs.items()),
                            tuple(numbers.items()))
        return [compared], ast.unparse(ast.Compare(codes[0], [ast.Eq()], [codes[1]]))

    def one_shown(self, node: ast.expr) -> Shown:
        picked = self.grad_item(node)
        if picked is not None:  # g[0] of g = torch.autograd.grad(y, x)
            return Shown(picked, "value")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "item"
                and not node.args and not node.keywords):  # t.item(), t.data.item(), t.grad.item(): a Python float
            inner = node.func.value
            inner = inner.value if isinstance(inner, ast.Attribute) and inner.attr == "data" else inner
            if isinstance(inner, ast.Attribute) and inner.attr == "grad":
                return Shown(self.tensor_name(inner.value), "grad", item=True)
            return Shown(self.tensor_name(inner), "value", item=True)
        if isinstance(node, ast.Attribute) and node.attr == "data":
            return Shown(self.tensor_name(node.value), "data")
        if isinstance(node, ast.Attribute) and node.attr in SHOWN:
            return Shown(self.tensor_name(node.value), node.attr)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "size"
                and not node.args and not node.keywords):  # t.size() is t.shape
            return Shown(self.tensor_name(node.func.value), "shape")
        if isinstance(node, ast.Name) and node.id in self.bound:
            return Shown(self.tensor_name(node), "value")
        raise Refused(f"printing {_describe(node)} (allowed: t, t.grad, t.grad_fn, t.is_leaf, t.requires_grad, t.shape,"
                      " text, f-strings of them)")

    def shown_expr(self, node: ast.expr) -> ast.expr:
        shown = self.one_shown(node)
        name = ast.Name(shown.name)
        expr = name if shown.what == "value" else ast.Attribute(name, shown.what)
        return ast.Call(ast.Attribute(expr, "item"), [], []) if shown.item else expr

    def tensor_name(self, node: ast.expr) -> str:
        if isinstance(node, ast.Name) and node.id in self.bound:
            target = self.bound[node.id]
            if target in self.leaves:
                self.leaves[target].used = True
            return target
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
            or _dotted(node.func) == "torch.autograd.Variable"))

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
               and node.func.attr in ("requires_grad_", "double", "float", "to")):
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
        for call in reversed(tail):
            method = call.func.attr  # type: ignore[attr-defined]
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
            if cast != (dtype or "float32"):  # the values were already rounded to the dtype they were made in
                array = _rounded(array, dtype or "float32")
            dtype = cast
        return array, dtype, grad

    def created(self, kind: str, node: ast.Call) -> tuple[Array, str | None, bool]:
        kwargs = {}
        for k in node.keywords:
            if k.arg == "device":
                self.device(k.value)
                continue
            if k.arg not in ("requires_grad", "dtype", "size", "fill_value", "n", "m", "steps"):
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
            array = Array(shape, (Fraction(kind == "ones"),) * math.prod(shape))
        elif kind == "full":
            if "fill_value" in kwargs:
                args.append(kwargs.pop("fill_value"))
            if len(args) != 2:
                raise Refused("torch.full(size, value) (allowed: torch.full((2, 3), 0.5))")
            shape = self.shape([args[0]], kwargs.pop("size", None), kind)
            value = self.number(args[1])
            integral = _is_int_literal(args[1])
            array = Array(shape, (value,) * math.prod(shape))
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
            # torch computes each point in float from both ends; the exact points differ from it in the last bit
            if steps > 2 and any((end - start) * i % (steps - 1) for i in range(steps)):
                raise Refused("torch.linspace with points that are not exact binary fractions"
                              " (allowed: points such as 0, 0.25, 0.5; or torch.tensor([...]))")
            array = Array((steps,), tuple(start + (end - start) * i / max(steps - 1, 1) for i in range(steps)))
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
            raise Refused(f"torch.{kind} of integers makes an integer tensor (allowed: write 1. for 1, or dtype=torch.float32)")
        return array, dtype, grad

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
        raise Refused(f"{_describe(node)} where a number is needed ({_LITERAL})")

    def device(self, node: ast.expr) -> None:
        """Accept device='cpu', torch.device('cpu') or a name bound to it: derive explains what the CPU computes."""
        if isinstance(node, ast.Name) and node.id in self.devices:
            return
        if isinstance(node, ast.Call) and _dotted(node.func) == "torch.device" and len(node.args) == 1 and not node.keywords:
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
        raise Refused(f"the dtype {_describe(node)} (allowed: torch.float32, torch.float, torch.float64, torch.double)")

    # -- expressions -----------------------------------------------------

    def translate(self, node: ast.expr, env: dict[str, ast.expr] | None = None, depth: int = 0, *,
                  decorated: bool = False) -> ast.expr:
        """Return an expression with names bound to their nodes, constants and functions inlined, F. as torch.

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
                if n.id in self.modules:
                    return ast.Name("torch" if self.modules[n.id] in ("torch", "F") else n.id, ast.Load())
                raise Refused(f"unknown name '{clip(n.id)}' (allowed: {self.names()})")
            if isinstance(n, ast.Call) and self.is_creation(n):  # torch.ones(2, requires_grad=True) * 2
                return ast.Name(self.anonymous_leaf(n), ast.Load())
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
                if n.func.id in self.modes and not (decorated and n is root):
                    raise Refused(f"calling '{n.func.id}', a helper under a grad-mode decorator, inside a computation"
                                  f" (allowed: name = {n.func.id}(...), a step of its own)")
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

    # -- the whole file --------------------------------------------------

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
        dtypes = {leaf.dtype or default_dtype for leaf in kept.values()}
        if len(dtypes) > 1:
            self.bad(min(leaf.line for leaf in kept.values()), "tensors of both float32 and float64",
                     "allowed: one dtype for the whole example")
        if self.problems:
            raise SpecError(sorted(dict.fromkeys(self.problems), key=lambda p: p.line or 0))  # a loop's once
        inputs = tuple(Input(n, leaf.array, leaf.requires_grad, leaf.line, leaf.seq, leaf.grad_from)
                       for n, leaf in kept.items())
        prints = tuple(self.prints) or None
        return Spec(self.path, title, summary, inputs, tuple(self.steps), tuple(self.calls),
                    dtypes.pop() if dtypes else default_dtype, header.get("lang", "en"), header.get("flavor", "portable"),
                    prints, tuple(self.resets), tuple(self.retained), tuple(self.renamed), tuple(self.bound.items()))

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


def read(path: str, data: bytes, *, stem: str) -> Spec:
    """Read and validate one Python file of torch code; raise SpecError listing every problem."""
    if len(data) > MAX_BYTES:
        raise SpecError([Problem(path, None, f"file too large: more than {MAX_BYTES} bytes (allowed: at most {MAX_BYTES} bytes)")])
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise SpecError([Problem(path, line, f"invalid UTF-8: byte 0x{data[error.start]:02x} at offset {error.start}"
                                 " (allowed: UTF-8 text)")]) from None
    return code(path, text, stem=stem)


def code(path: str, text: str, *, stem: str, first_line: int = 1, settings: Spec | None = None) -> Spec:
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
    reader = _Reader(path)
    last = max(len(text.splitlines()), 1) + first_line - 1
    if settings is None:
        return reader.spec(tree, text, stem, last_line=last)
    for inp in settings.inputs:
        reader.bound[inp.name] = inp.name
        reader.taken.add(inp.name)
        reader.leaves[inp.name] = _Leaf(inp.value, None, inp.requires_grad, inp.line)
    spec = reader.spec(tree, text, stem, settings.dtype, last_line=last)
    return Spec(path, settings.title, settings.summary, spec.inputs, spec.steps, spec.backward, spec.dtype,
                settings.lang, settings.flavor, spec.prints, spec.resets, spec.retained, spec.renamed, spec.bound)


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


def _float_or_int(value: Fraction) -> int | float:
    """Return a number as a constant for the graph: an int, or the float whose shortest repr the graph reads back."""
    return int(value) if value.denominator == 1 else float(value)


FLOAT_FORMAT = re.compile(r"[<>=^]?[-+ ]?0?[0-9]{0,2}[,_]?(\.[0-9]{1,2})?[eEfFgG%]?")


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
    "register_hook": "a hook (t.register_hook)",
    "torch.autograd.functional": "torch.autograd.functional (jacobian, hessian, vjp, jvp, hvp)",
    "jacobian": "torch.autograd.functional.jacobian",
    "hessian": "torch.autograd.functional.hessian",
    "hvp": "torch.autograd.functional.hvp",
    "vjp": "torch.autograd.functional.vjp",
    "jvp": "torch.autograd.functional.jvp",
    "torch.autograd.Function": "a custom torch.autograd.Function",
    "Function": "a custom torch.autograd.Function",
    "Parameter": "torch.nn.Parameter",
    "torch.nn": "torch.nn modules",
    "nn": "torch.nn modules",
    "torch.optim": "an optimizer (torch.optim)",
    "optim": "an optimizer (torch.optim)",
    "zero_grad": "an optimizer's zero_grad()",
    "next_functions": "grad_fn.next_functions",
}


def _missing_feature(node: ast.stmt) -> str:
    """Return the name of a feature derive does not read yet that a statement uses, or ''."""
    if isinstance(node, ast.ImportFrom):
        found = _MISSING.get(node.module or "", "")
        for alias in node.names:
            found = found or _MISSING.get(f"{node.module}.{alias.name}", "") or _MISSING.get(alias.name, "")
        return found
    if isinstance(node, ast.Import):
        return next((_MISSING[a.name] for a in node.names if a.name in _MISSING), "")
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Attribute, ast.Name)):
            dotted = _dotted(sub)
            if dotted.startswith("torch.nn.functional") or "torch.nn.functional".startswith(dotted):
                continue  # its functions are read as torch's, and the graph names any it does not know
            for key in (dotted, dotted.rpartition(".")[2]) if dotted else ():
                if key in _MISSING and not (isinstance(sub, ast.Name) and key in ("nn", "optim", "Function")):
                    return _MISSING[key]
        if isinstance(sub, ast.AugAssign) and isinstance(sub.target, ast.Name):
            return "an in-place update of a tensor (a training step such as w -= lr * w.grad)"
        if isinstance(sub, ast.Attribute) and sub.attr == "data" and not isinstance(node, ast.Expr):
            return "t.data"
        if isinstance(sub, ast.ClassDef) and sub.decorator_list:
            return "a decorator on a class"
    return ""


def _dotted(node: ast.expr) -> str:
    """Return a.b.c for a chain of names, else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([node.id, *reversed(parts)])


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
