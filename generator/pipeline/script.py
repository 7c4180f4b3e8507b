"""Run a document's own code in a fresh Python with real torch, and compare what it prints and its grad_fns.

The code is ours (document/code.py writes it from the validated graph), but a graph's names
come from a spec, so before it runs its syntax tree is checked against what the generator
writes: `import torch`, assignments to plain names, torch's constructors, the ops' own
spellings, `.backward(...)` and prints of tensors, their .grad, .is_leaf and .requires_grad, text and f-strings. Anything else is refused and nothing runs.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from ..ops import CHOICES, KEYWORDS, REGISTRY, operators
from ..ops.base import dotted_name
from ..spec.files import NPY_NAME
from ..spec.python import float_format, is_comparison

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
CONSTRUCTORS = ("tensor", "ones", "zeros", "full", "ones_like", "randn", "rand", "empty", "randint", "randperm")  # torch.<name>(...) as code.py writes an input or a gradient
FILLS = ("normal_", "uniform_")  # torch.empty(2, 3).normal_(0., 0.02), as code.py writes a drawn input
OWN_KEYWORDS = ("dtype", "requires_grad", "retain_graph", "create_graph")  # code.py's own, beside the ops' KEYWORDS
EXPRESSIONS = (ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Call, ast.Attribute, ast.Subscript, ast.Tuple,
               ast.List, ast.keyword, ast.Load, ast.Store, ast.Slice, ast.Compare)
RESERVED = ("torch", "print")
SHOWN = ("data", "grad", "grad_fn", "is_leaf", "requires_grad", "shape")  # what a print may show of a tensor, beside its value
PARAMETER = ast.dump(ast.parse("torch.nn.Parameter", mode="eval").body)
MEMORY = re.compile(r"0x[0-9a-fA-F]+")  # an address in what torch prints, which the document writes as 0x...

# Runs the script, then writes each tensor's (grad_fn name, requires_grad, is_leaf) by variable name.
# It dies with its parent (a killed check) and stops if that parent is already gone.
HARNESS = """\
import os, sys
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, 9)
except Exception:
    pass
if os.getppid() != int(sys.argv[3]):
    os._exit(124)
import json, runpy
scope = runpy.run_path(sys.argv[1], run_name="__main__")
sys.stdout.flush()
import torch
labels = {k: [None if v.grad_fn is None else type(v.grad_fn).__name__, v.requires_grad, v.is_leaf]
          for k, v in scope.items() if isinstance(v, torch.Tensor)}
with open(sys.argv[2], "w") as f:
    json.dump(labels, f)
"""


def _is_reset(statement: ast.stmt) -> bool:
    """Tell whether a statement is t.grad.zero_() or t.grad = None, as code.py writes a reset."""
    if isinstance(statement, ast.Expr):
        call = statement.value
        return (isinstance(call, ast.Call) and not call.args and not call.keywords
                and isinstance(call.func, ast.Attribute) and call.func.attr == "zero_"
                and isinstance(call.func.value, ast.Attribute) and call.func.value.attr == "grad")
    return (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Attribute) and statement.targets[0].attr == "grad"
            and isinstance(statement.value, ast.Constant) and statement.value.value is None)


def _is_data_update(statement: ast.stmt) -> bool:
    """Tell whether a statement is t.data = expression, as code.py writes an update through .data."""
    return (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Attribute) and statement.targets[0].attr == "data")


def _integer_tensor(node: ast.AST) -> bool:
    """Tell whether a node is torch.tensor(...) of integers, randint or randperm, as code.py writes an int64 input."""
    if not isinstance(node, ast.Call) or node.keywords:
        return False
    called = dotted_name(node.func)
    if called == "torch.randint":  # torch.randint(0, 3, (4,))
        return (len(node.args) == 3 and all(_integer(a) for a in node.args[:2]) and isinstance(node.args[2], ast.Tuple)
                and bool(node.args[2].elts) and all(_integer(e) for e in node.args[2].elts))
    if called == "torch.randperm":
        return len(node.args) == 1 and _integer(node.args[0])
    return called == "torch.tensor" and len(node.args) == 1 and (_integer(node.args[0]) or _integer_list(node.args[0]))


def _integer_list(node: ast.AST) -> bool:
    """Tell whether a node is a list of integers, nested or not: an index such as [0, 2]."""
    return isinstance(node, ast.List) and bool(node.elts) and all(
        _integer(e) or _integer_list(e) for e in node.elts)


def _integer_range(node: ast.AST) -> bool:
    """Tell whether a node is range(...) or torch.arange(...) of integers: an index such as range(3)."""
    return (isinstance(node, ast.Call) and dotted_name(node.func) in ("range", "torch.arange") and not node.keywords
            and 1 <= len(node.args) <= 3 and all(_integer(a) for a in node.args))


def _text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


class Refused(ValueError):
    """The code holds something the generator never writes."""


def vet(code: str) -> None:
    """Raise Refused unless the code uses only what document/code.py writes (a small whitelist)."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise Refused(f"a syntax error at line {e.lineno}") from None
    methods = {n for op in REGISTRY.values() for n in op.spelling.names} | {"backward"}
    functional_names = {n for op in REGISTRY.values() for n in op.spelling.functional}
    attributes = {op.spelling.attribute for op in REGISTRY.values() if op.spelling.attribute} | {"grad"}
    allowed_nodes = EXPRESSIONS + operators()
    keywords = set(KEYWORDS + OWN_KEYWORDS)
    defined: set[str] = set()

    def name(node: ast.expr) -> str:
        if not isinstance(node, ast.Name) or not IDENTIFIER.fullmatch(node.id):
            raise Refused(f"{ast.unparse(node)!r} where a name belongs")
        return node.id

    def expression(node: ast.AST) -> None:
        if not isinstance(node, allowed_nodes):
            raise Refused(f"a {type(node).__name__}")
        if isinstance(node, ast.Name) and node.id not in defined | {"torch"}:
            raise Refused(f"the name {node.id!r} before it is assigned")
        if isinstance(node, ast.Constant) and type(node.value) not in (int, float, bool, type(None)):
            raise Refused(f"the constant {node.value!r}")
        if isinstance(node, ast.keyword) and node.arg not in keywords:
            raise Refused(f"the keyword {node.arg!r}")
        if (isinstance(node, ast.keyword) and node.arg in CHOICES and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            if node.value.value not in CHOICES[node.arg]:
                raise Refused(f"the {node.arg}= {node.value.value!r}")
            return  # reduction='sum'
        if isinstance(node, ast.Subscript):
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            tensors = [i for i in items if isinstance(i, ast.Name) or _integer_list(i) or _integer_range(i)]
            bounds = [b for i in items if i not in tensors
                      for b in ((i.lower, i.upper, i.step) if isinstance(i, ast.Slice) else (i,))]
            if not items or not all(b is None or _integer(b) for b in bounds):
                raise Refused("an index that is not an integer, a slice of integers or a tensor of integers")
            for item in tensors:
                if isinstance(item, ast.Name) and item.id not in integers:
                    raise Refused(f"the index {item.id!r}, which is not an int64 tensor made above")
            expression(node.value)
            return
        if isinstance(node, ast.Attribute) and ast.dump(node) == PARAMETER:
            return  # torch.nn.Parameter, as code.py writes a Parameter
        if isinstance(node, ast.Attribute) and dotted_name(node.value) == "torch.nn.functional":
            if node.attr not in functional_names:
                raise Refused(f"the attribute {node.attr!r} of torch.nn.functional")
            return  # torch.nn.functional.relu, as the author wrote F.relu
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "numpy.load":  # an input's file, as code.py writes it
            if (len(node.args) != 1 or node.keywords or not _text(node.args[0])
                    or not re.fullmatch(NPY_NAME, node.args[0].value)):
                raise Refused(f"the call {ast.unparse(node)[:60]!r}")
            return
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.autograd.grad":
            for child in (*node.args, *node.keywords):  # torch.autograd.grad(y, x, create_graph=True)[0]
                expression(child)
            return
        if isinstance(node, ast.Attribute):
            torch = isinstance(node.value, ast.Name) and node.value.id == "torch"
            allowed = ({"float32", "float64", *CONSTRUCTORS} | methods - {"backward"}) if torch else (
                methods | attributes | {*FILLS, "requires_grad_"})
            if node.attr not in allowed:
                raise Refused(f"the attribute {node.attr!r}")
        if isinstance(node, ast.Call) and not isinstance(node.func, ast.Attribute):
            raise Refused(f"a call of {ast.unparse(node.func)!r}")
        for child in ast.iter_child_nodes(node):
            expression(child)

    def shown(node: ast.expr) -> None:
        if (isinstance(node, ast.Call) and not node.args and not node.keywords
                and isinstance(node.func, ast.Attribute) and node.func.attr == "item"):
            node = node.func.value
        chained = isinstance(node, ast.Attribute) and node.attr == "next_functions"
        node = node.value if chained else node
        while (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Subscript)  # .next_functions[i][0]
               and isinstance(node.value.value, ast.Attribute) and node.value.value.attr == "next_functions"
               and all(isinstance(s, ast.Constant) and type(s.value) is int for s in (node.slice, node.value.slice))):
            node, chained = node.value.value.value, True
        if chained and not (isinstance(node, ast.Attribute) and node.attr == "grad_fn"):
            raise Refused(f"{ast.unparse(node)!r} where a grad_fn belongs")
        if isinstance(node, ast.Attribute) and node.attr in SHOWN:
            node = node.value
        if isinstance(node, ast.Attribute) and node.attr == "data":  # t.data.requires_grad
            node = node.value
        name(node)
        expression(node)

    integers: set[str] = set()  # the names of int64 tensors, as code.py writes an int64 input: indices and targets
    procedures: set[str] = set()  # the defs of several statements given to jacobian, vjp or jvp, as code.py writes them

    def procedure(node: ast.FunctionDef) -> None:
        """Vet def f(a, b): name = expression ..., return expression; its names its own, the tensors above visible."""
        a = node.args
        if (not a.args or a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs or node.decorator_list
                or node.returns):
            raise Refused(f"the function {node.name!r}")
        target = name(ast.Name(node.name))
        if target in RESERVED or target in defined or target in handles or target in hooks:
            raise Refused(f"a function named {target!r}")
        outer = set(defined)
        for p in a.args:
            if name(ast.Name(p.arg)) in RESERVED:
                raise Refused(f"a parameter named {p.arg!r}")
            defined.add(p.arg)
        try:
            for statement in node.body[:-1]:
                if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1):
                    raise Refused(f"the statement {ast.unparse(statement)!r} in {node.name!r}")
                expression(statement.value)
                if name(statement.targets[0]) in RESERVED:
                    raise Refused(f"an assignment to {statement.targets[0].id!r}")  # type: ignore[attr-defined]
                defined.add(statement.targets[0].id)  # type: ignore[attr-defined]
            expression(node.body[-1].value)  # type: ignore[attr-defined]
        finally:
            defined.clear()
            defined.update(outer)
        procedures.add(target)

    def functional(call: ast.Call) -> None:
        """Vet torch.autograd.functional.jacobian(lambda a, b: expression, (x, y), v, create_graph=True), or of a def above."""
        f = call.args[0] if call.args else None
        named = isinstance(f, ast.Name) and f.id in procedures  # vetted where it is defined
        if not (named or isinstance(f, ast.Lambda)) or len(call.args) > 3:
            raise Refused(f"the call {ast.unparse(call)!r}")
        for k in call.keywords:
            if k.arg not in ("create_graph", "vectorize") or not (isinstance(k.value, ast.Constant) and k.value.value is True):
                raise Refused(f"the keyword {k.arg!r}")
        for given in call.args[1:]:
            for element in given.elts if isinstance(given, ast.Tuple) and given.elts else [given]:
                name(element)
                expression(element)
        if named:
            return
        a = f.args  # type: ignore[union-attr]
        if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs or not a.args:
            raise Refused("a lambda with special parameters")
        params = {p.arg for p in a.args}
        if any(not IDENTIFIER.fullmatch(p) or p in RESERVED for p in params):
            raise Refused("a lambda parameter that is not a plain name")
        outer = set(defined)
        defined.update(params)  # f's parameters, and the tensors assigned above
        try:
            expression(f.body)  # type: ignore[union-attr]
        finally:
            defined.clear()
            defined.update(outer)

    def printed(call: ast.Call) -> None:
        """Vet print(...) of tensors, their .grad, .is_leaf and .requires_grad, text and f-strings of them."""
        if any(k.arg != "sep" or not _text(k.value) for k in call.keywords):
            raise Refused("a print with keywords other than sep")
        for arg in call.args:
            if isinstance(arg, ast.JoinedStr):
                for piece in arg.values:
                    if (isinstance(piece, ast.FormattedValue) and piece.conversion == -1
                            and (piece.format_spec is None or float_format(piece.format_spec) is not None)):
                        shown(piece.value)
                    elif not _text(piece):
                        raise Refused("an f-string field with a conversion or format")
            elif isinstance(arg, ast.Compare) and len(arg.ops) == 1 and is_comparison(arg.ops[0], "=="):
                expression(arg.left)  # a == b of tensors, their grads and numbers, as code.py writes it
                expression(arg.comparators[0])
            elif isinstance(arg, ast.Tuple) and arg.elts:
                for element in arg.elts:  # a tuple of tensors
                    shown(element)
            elif isinstance(arg, ast.Call) and dotted_name(arg.func) in FUNCTIONAL_CALLS:
                functional(arg)
            elif not (_text(arg) or isinstance(arg, ast.Constant) and type(arg.value) in (int, float)):
                shown(arg)  # a number is a loop counter or a constant, written in

    def function(node: ast.ClassDef) -> None:
        """Vet a custom Function as code.py writes it: forward and backward of assignments, ctx's two calls and a return."""
        base = node.bases[0] if len(node.bases) == 1 else None
        if not (base is not None and ast.unparse(base) == "torch.autograd.Function" and not node.keywords
                and not node.decorator_list and [getattr(m, "name", "") for m in node.body] == ["forward", "backward"]):
            raise Refused(f"the class {node.name!r}")
        outer = set(defined)
        for method in node.body:
            a = method.args
            if (not isinstance(method, ast.FunctionDef) or [ast.unparse(d) for d in method.decorator_list] != ["staticmethod"]
                    or len(a.args) != 2 or a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs):
                raise Refused(f"the method {getattr(method, 'name', '')!r} of {node.name!r}")
            ctx = name(ast.Name(a.args[0].arg))
            defined.clear()
            defined.add(name(ast.Name(a.args[1].arg)))
            for i, s in enumerate(method.body):
                last = i == len(method.body) - 1
                if isinstance(s, ast.Return) and last and s.value is not None:
                    expression(s.value)
                elif (isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and not s.value.keywords
                      and ast.unparse(s.value.func) == f"{ctx}.save_for_backward"):
                    for arg in s.value.args:
                        expression(ast.Name(name(arg)))
                elif (isinstance(s, ast.Assign) and len(s.targets) == 1 and ast.unparse(s.value).startswith(f"{ctx}.saved_tensors")
                      and ast.unparse(s.value) in (f"{ctx}.saved_tensors", *(f"{ctx}.saved_tensors[{k}]" for k in range(8)))):
                    targets = s.targets[0].elts if isinstance(s.targets[0], ast.Tuple) else [s.targets[0]]
                    defined.update(name(t) for t in targets)
                elif (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.value, ast.Call)
                      and ast.unparse(s.value) == f"{a.args[1].arg}.clone()"):
                    defined.add(name(s.targets[0]))  # grad_input = grad_output.clone()
                elif (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Subscript)
                      and isinstance(s.targets[0].slice, ast.Compare) and len(s.targets[0].slice.ops) == 1
                      and is_comparison(s.targets[0].slice.ops[0], "<", ">", "<=", ">=")):
                    name(s.targets[0].value)  # grad_input[input < 0] = 0
                    expression(ast.Name(name(s.targets[0].value)))
                    expression(s.targets[0].slice.left)
                    expression(s.targets[0].slice.comparators[0])
                    expression(s.value)
                elif isinstance(s, ast.Assign) and len(s.targets) == 1 and name(s.targets[0]) not in RESERVED:
                    expression(s.value)
                    defined.add(name(s.targets[0]))
                else:
                    raise Refused(f"the statement {ast.unparse(s)!r} in {node.name!r}")
        defined.clear()
        defined.update(outer)

    hooks: set[str] = set()  # the defs of hooks, as code.py writes them
    handles: set[str] = set()

    def with_gradient(param: str, check) -> None:
        """Vet a hook's body with its parameter, the gradient, defined only there."""
        name(ast.Name(param))
        if param in RESERVED or param in defined:
            raise Refused(f"a hook's parameter {param!r}")
        defined.add(param)
        try:
            check()
        finally:
            defined.discard(param)

    def hook_body(param: str, body: list[ast.stmt]) -> None:
        """Vet prints of the gradient, then perhaps a return of an expression of it."""
        for k, statement in enumerate(body):
            if isinstance(statement, ast.Return) and k == len(body) - 1 and statement.value is not None:
                expression(statement.value)
            elif (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
                  and isinstance(statement.value.func, ast.Name) and statement.value.func.id == "print"):
                printed(statement.value)
            elif not isinstance(statement, ast.Pass):
                raise Refused(f"the statement {ast.unparse(statement)!r} in a hook")

    def register(call: ast.Call) -> None:
        """Vet t.register_hook(lambda g: ...) or t.register_hook(f) of a def above."""
        name(call.func.value)  # type: ignore[attr-defined]
        expression(call.func.value)  # type: ignore[attr-defined]
        if len(call.args) != 1 or call.keywords:
            raise Refused("register_hook with other than one function")
        fn = call.args[0]
        if isinstance(fn, ast.Name) and fn.id in hooks:
            return
        a = fn.args if isinstance(fn, ast.Lambda) else None
        if a is None or len(a.args) != 1 or a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs:
            raise Refused(f"the hook {ast.unparse(fn)!r}")
        body = fn.body
        returned = [ast.Expr(body)] if isinstance(body, ast.Call) and isinstance(body.func, ast.Name) else [ast.Return(body)]
        with_gradient(a.args[0].arg, lambda: hook_body(a.args[0].arg, returned))

    def statements(body: list[ast.stmt], *, quiet: bool = False) -> None:
        for statement in body:
            value = getattr(statement, "value", None)
            if not quiet and _is_hook(value) and (isinstance(statement, ast.Expr) or isinstance(statement, ast.Assign)
                                                  and len(statement.targets) == 1):
                register(value)
                if isinstance(statement, ast.Assign):
                    target = name(statement.targets[0])
                    if target in RESERVED or target in defined or target in hooks:
                        raise Refused(f"a handle named {target!r}")
                    handles.add(target)
                continue
            if (isinstance(statement, ast.Expr) and isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                    and value.func.attr == "remove" and not value.args and not value.keywords and not quiet
                    and isinstance(value.func.value, ast.Name) and value.func.value.id in handles):
                continue
            if (isinstance(statement, ast.FunctionDef) and not quiet and statement.body
                    and isinstance(statement.body[-1], ast.Return) and statement.body[-1].value is not None
                    and len(statement.body) > 1 and all(isinstance(s, ast.Assign) for s in statement.body[:-1])):
                procedure(statement)
                continue
            if isinstance(statement, ast.FunctionDef) and not quiet:
                a = statement.args
                if (len(a.args) != 1 or a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs
                        or statement.decorator_list or statement.returns):
                    raise Refused(f"the function {statement.name!r}")
                target = name(ast.Name(statement.name))
                if target in RESERVED or target in defined or target in handles:
                    raise Refused(f"a function named {target!r}")
                with_gradient(a.args[0].arg, lambda: hook_body(a.args[0].arg, statement.body))
                hooks.add(target)
                continue
            if isinstance(statement, ast.Import) and not quiet:
                if [(a.name, a.asname) for a in statement.names] not in ([("torch", None)], [("numpy", None)]):
                    raise Refused("an import other than `import torch` and `import numpy`")
            elif isinstance(statement, ast.With) and not quiet and _is_no_grad(statement):
                if not all(isinstance(s, (ast.Assign, ast.AugAssign)) for s in statement.body):
                    raise Refused("a with torch.no_grad() block holding anything but assignments")
                statements(statement.body, quiet=True)
            elif isinstance(statement, ast.AugAssign) or _is_data_update(statement):
                target = statement.target if isinstance(statement, ast.AugAssign) else statement.targets[0]
                data = isinstance(target, ast.Attribute) and target.attr == "data"
                if not (quiet or data) or name(target.value if data else target) not in defined:
                    raise Refused(f"the update {ast.unparse(statement)!r}")
                expression(statement.value)
            elif isinstance(statement, ast.ClassDef) and not quiet and statement.name not in RESERVED:
                function(statement)
                defined.add(name(ast.Name(statement.name)))
            elif _is_reset(statement) and not quiet:
                name(statement.value.func.value.value if isinstance(statement, ast.Expr) else statement.targets[0].value)
            elif (isinstance(statement, ast.Assign) and len(statement.targets) == 1 and not quiet
                  and isinstance(statement.targets[0], ast.Attribute) and statement.targets[0].attr == "requires_grad"
                  and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, bool)):
                name(statement.targets[0].value)
                expression(statement.targets[0].value)  # t.requires_grad = False, on a tensor made above
            elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                expression(statement.value)
                target = name(statement.targets[0])
                if target in RESERVED:
                    raise Refused(f"an assignment to {target!r}")
                defined.add(target)
                if _integer_tensor(statement.value):  # Y = torch.tensor([1, 0, 2]): an int64 index or target
                    integers.add(target)
                else:
                    integers.discard(target)
            elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call) and not quiet:
                call = statement.value
                if isinstance(call.func, ast.Name) and call.func.id == "print":
                    printed(call)
                elif isinstance(call.func, ast.Attribute) and call.func.attr == "backward":
                    expression(call)
                elif (isinstance(call.func, ast.Attribute) and call.func.attr == "retain_grad"
                      and not call.args and not call.keywords):
                    name(call.func.value)
                elif (isinstance(call.func, ast.Attribute) and call.func.attr == "requires_grad_"
                      and [ast.dump(a) for a in call.args] in ([ast.dump(ast.Constant(True))], [ast.dump(ast.Constant(False))])
                      and not call.keywords):
                    name(call.func.value)
                    expression(call.func.value)  # a tensor made above
                elif (ast.unparse(call.func) == "torch.manual_seed" and len(call.args) == 1 and not call.keywords
                      and isinstance(call.args[0], ast.Constant) and type(call.args[0].value) is int):
                    pass  # torch.manual_seed(0), as code.py writes a spec's seed
                else:
                    raise Refused(f"the statement {ast.unparse(statement)!r}")
            else:
                raise Refused(f"a {type(statement).__name__} statement")

    statements(tree.body)


FUNCTIONAL_CALLS = tuple(f"torch.autograd.functional.{k}" for k in ("jacobian", "vjp", "jvp", "hessian", "hvp"))




def _is_hook(value: Any) -> bool:
    """Tell whether an expression is t.register_hook(...)."""
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "register_hook"
            and isinstance(value.func.value, ast.Name))


def _is_no_grad(statement: ast.With) -> bool:
    """Tell whether a with statement is exactly `with torch.no_grad():`."""
    if len(statement.items) != 1 or statement.items[0].optional_vars is not None:
        return False
    call = statement.items[0].context_expr
    return (isinstance(call, ast.Call) and not call.args and not call.keywords
            and isinstance(call.func, ast.Attribute) and call.func.attr == "no_grad"
            and isinstance(call.func.value, ast.Name) and call.func.value.id == "torch")


@dataclass(frozen=True)
class Ran:
    """What the document's code did in torch: its stdout, and each named tensor's label."""

    stdout: str
    labels: dict[str, tuple[str | None, bool, bool]]  # name -> (grad_fn, requires_grad, is_leaf)


class Failed(RuntimeError):
    """The code did not run to its end (an error, or its time was up)."""


class Started:
    """The document's code running in a fresh Python: `python -I`, a new empty folder, an empty environment."""

    def __init__(self, code: str, files: tuple[str, ...] = ()):
        """Start the code; files (an input's .npy, read before as untrusted) are copied beside it first."""
        vet(code)
        self.folder = tempfile.TemporaryDirectory(prefix="derive-run-")
        for source in files:
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
            with os.fdopen(os.open(source, flags), "rb") as f, \
                    open(os.path.join(self.folder.name, os.path.basename(source)), "wb") as g:
                g.write(f.read())
        script = os.path.join(self.folder.name, "example.py")
        self.labels = os.path.join(self.folder.name, "labels.json")
        with open(script, "w", encoding="utf-8") as f:
            f.write(code)
        env = {"SYSTEMROOT": os.environ["SYSTEMROOT"]} if "SYSTEMROOT" in os.environ else {}  # Windows needs it
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", HARNESS, script, self.labels, str(os.getpid())],
            cwd=self.folder.name, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def result(self, timeout: float) -> Ran:
        """Wait for the code at most timeout seconds; return what it printed, or raise Failed."""
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Failed(f"took longer than {timeout:.3g} s (allowed: --timeout SECONDS to give it more)") from None
        if self.process.returncode != 0:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            raise Failed(f"exited with code {self.process.returncode}" + (f": {lines[-1]}" if lines else ""))
        with open(self.labels, encoding="utf-8") as f:
            labels = {k: (v[0], v[1], v[2]) for k, v in json.load(f).items()}
        return Ran(out.decode("utf-8", "replace"), labels)

    def stop(self) -> None:
        """Kill the code if it still runs, and remove its folder."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
        self.folder.cleanup()


def first_difference(ours: str, theirs: str) -> tuple[int, str, str] | None:
    """Return (line number from 1, our line, their line) where two printed texts first differ, or None."""
    a, b = ours.split("\n"), MEMORY.sub("0x...", theirs).split("\n")
    for k in range(max(len(a), len(b))):
        x, y = (a[k] if k < len(a) else None), (b[k] if k < len(b) else None)
        if x != y:
            return k + 1, x, y
    return None


def torch_labels(tensors: dict[str, Any]) -> dict[str, tuple[str | None, bool, bool]]:
    """Return each tensor's (grad_fn name or None, requires_grad, is_leaf), as torch reports them."""
    return {k: (None if t.grad_fn is None else type(t.grad_fn).__name__, bool(t.requires_grad), bool(t.is_leaf))
            for k, t in tensors.items()}


def _integer(node: ast.AST) -> bool:
    """Tell whether a node is an integer literal, negative or not."""
    node = node.operand if isinstance(node, ast.UnaryOp) else node  # its operator is checked with the others
    return isinstance(node, ast.Constant) and type(node.value) is int
