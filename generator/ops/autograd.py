"""torch.autograd.grad(y, x)[k]: the gradient built out of ordinary ops, as torch's backward formulas compute it.

torch's backward of each op is itself made of ops (pow's is grad * (3 * x.pow(2))); with create_graph=True
torch records them, so the gradient is a tensor of the graph that can be differentiated again. Here the
walker adds those same ops as nodes, in torch's order, so every later stage (exact values, float32
rounding, grad_fn names, a second backward) treats the gradient as any other computed tensor. Without
create_graph the nodes are computed but not recorded, as torch computes them.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from fractions import Fraction
from typing import Any

import numpy as np

from . import REGISTRY
from .base import Arg, ExprError, bind_args, dotted_name, num, numel

FUNCTION = "torch.autograd.grad"
PARAMS = ("outputs", "inputs", "grad_outputs", "retain_graph", "create_graph")
SUPPORTED = "+, -, *, unary minus, ** with a constant exponent, / by a constant, sin, cos, exp, and sum() or mean() of all elements"
REDUCED = ("sum", "mean")  # reductions of all elements, whose backward spreads a constant gradient as it is



def is_grad_call(node: ast.AST) -> bool:
    """Tell whether an expression is a call of torch.autograd.grad."""
    return isinstance(node, ast.Call) and dotted_name(node.func) == FUNCTION


class _Ops:
    """Make the nodes of a backward formula through the ops' own operate (constants fold as Python does)."""

    def __init__(self, walk: Any):
        self.walk = walk
        self.dtype = walk.spec.dtype

    def __call__(self, key: str, *args: Arg) -> Arg:
        if any(isinstance(a, str) for a in args):
            return REGISTRY[key].operate(self.walk, list(args), top=False)
        # torch computes a constant gradient on tensors too, rounding each step to the dtype: (1 / 3) * 0.7 twice.
        # The exact value serves where that rounds alike (each constant rounded once, as the shadow rounds it).
        exact = REGISTRY[key].fold(list(args))
        if self.rounded(REGISTRY[key].fold([self.rounded(a) for a in args])) != self.rounded(exact):
            shown = f" {REGISTRY[key].spelling.symbol} ".join(num(a) for a in args)
            raise ExprError(f"torch.autograd.grad: torch computes the constant factor {shown} of the gradient in"
                            f" {self.dtype}, one rounding per step, and that differs from rounding the exact"
                            f" {num(exact)} once (allowed: not supported yet; gradients whose constant factors"
                            " round alike)")
        return exact

    def rounded(self, value: Fraction) -> Fraction:
        """Return a number as the dtype holds it."""
        return Fraction(float(np.float32(value) if self.dtype == "float32" else np.float64(value)))

    def unary(self, key: str, x: str) -> str:
        return self.walk.make(key, [x], top=False)


def _vjp(ops: _Ops, node: Any, a: int, up: Arg) -> Arg:
    """Return what operand a of node gets back from upstream `up`, in the ops of torch's backward formula."""
    x = node.args
    key = node.op
    if key == "add":
        return up
    if key == "sub":
        return up if a == 0 else ops("neg", up) if isinstance(up, str) else -up
    if key == "neg":
        return ops("neg", up) if isinstance(up, str) else -up
    if key == "mul":
        return ops("mul", up, x[1 - a])  # grad * other, grad * self
    if key == "pow" and a == 0 and not isinstance(x[1], str):
        c = x[1]
        if c == 0:
            raise ExprError("x ** 0 inside torch.autograd.grad: torch returns zeros there"
                            f" (allowed: not supported yet; {SUPPORTED})")
        return ops("mul", up, ops("mul", c, ops("pow", x[0], c - 1)))  # grad * (c * x.pow(c - 1))
    if key == "div" and a == 0 and not isinstance(x[1], str):
        return ops("div", up, x[1])  # grad / other
    if key == "sin":
        return ops("mul", up, ops.unary("cos", x[0]))
    if key == "cos":
        return ops("mul", up, ops("neg", ops.unary("sin", x[0])))
    if key == "exp":
        return ops("mul", up, node.name)  # grad * result
    if key in REDUCED and node.kwargs.get("dim") is None:
        if isinstance(up, str):
            raise ExprError(f"torch.autograd.grad through {key}() of a gradient that is itself a tensor of the graph"
                            f" (allowed: not supported yet; {SUPPORTED})")
        return up if key == "sum" else ops("div", up, Fraction(numel(ops.walk.known[x[0]].shape)))
    raise ExprError(f"torch.autograd.grad through '{key}' is not supported yet (allowed: {SUPPORTED})")


def _names(node: ast.AST, what: str) -> list[str]:
    items = node.elts if isinstance(node, (ast.Tuple, ast.List)) else [node]
    if not items or not all(isinstance(i, ast.Name) for i in items):
        raise ExprError(f"{FUNCTION}'s {what} must be tensor names (allowed: y, or (x, w))")
    return [i.id for i in items]


def _flag(node: ast.AST | None, what: str) -> bool | None:
    if node is None or isinstance(node, ast.Constant) and node.value is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    raise ExprError(f"{what}= must be True or False (allowed: True, False)")


def read_call(call: ast.Call) -> tuple[list[str], list[str], bool, bool]:
    """Return (outputs, inputs, retain_graph, create_graph) of a torch.autograd.grad call, or raise ExprError."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise ExprError("* and ** arguments are not allowed (allowed: plain arguments)")
    bound = bind_args("grad", list(call.args), {k.arg: k.value for k in call.keywords}, PARAMS,
                      required=("outputs", "inputs"))
    grad_outputs = bound.get("grad_outputs")
    if grad_outputs is not None and not (isinstance(grad_outputs, ast.Constant) and grad_outputs.value is None):
        raise ExprError("grad_outputs= other than None (allowed: not supported yet; a one-element output,"
                        " whose gradient torch makes as 1)")
    create = bool(_flag(bound.get("create_graph"), "create_graph"))
    retain = _flag(bound.get("retain_graph"), "retain_graph")
    outputs = _names(bound["outputs"], "outputs")
    if len(outputs) != 1:
        raise ExprError(f"{FUNCTION} of {len(outputs)} outputs (allowed: one output tensor)")
    return outputs, _names(bound["inputs"], "inputs"), create if retain is None else retain, create


def gradient(walk: Any, call: ast.Call, index: ast.AST, *, top: bool) -> str:
    """Add the nodes of torch.autograd.grad(y, inputs)[index] to the walker's graph; return the gradient's name."""
    from .base import int_index

    outputs, inputs, retain, create = read_call(call)
    k = int_index(index)
    if not -len(inputs) <= k < len(inputs):
        raise ExprError(f"index {k} of the {len(inputs)} gradients {FUNCTION} returns"
                        f" (allowed: 0 to {len(inputs) - 1})")
    output = walk.tensor(ast.Name(outputs[0], ast.Load()), f"{FUNCTION}'s output")
    target = walk.tensor(ast.Name(inputs[k], ast.Load()), f"{FUNCTION}'s input")
    for name in inputs:
        walk.tensor(ast.Name(name, ast.Load()), f"{FUNCTION}'s input")
    out = walk.known[output]
    if not out.requires_grad:
        raise ExprError(f"'{output}' does not require grad, so torch raises 'element 0 of tensors does not require"
                        " grad and does not have a grad_fn' (allowed: an output computed from a tensor that"
                        " requires grad)")
    if numel(out.shape) != 1:
        raise ExprError(f"'{output}' has {numel(out.shape)} elements, so torch raises 'grad can be implicitly created"
                        " only for scalar outputs' (allowed: a one-element output)")
    if not walk.known[target].requires_grad:
        raise ExprError(f"'{target}' does not require grad, so torch raises 'One of the differentiated Tensors does"
                        " not require grad' (allowed: a tensor made with requires_grad=True)")
    if not walk.known[target].is_leaf:
        raise ExprError(f"the gradient with respect to '{target}', which is not a leaf"
                        " (allowed: not supported yet; leaves made by torch.tensor, ones, ...)")
    between = _between(walk, output, target)
    if not between:
        raise ExprError(f"'{output}' does not depend on '{target}', so torch raises 'One of the differentiated"
                        " Tensors appears to not have been used in the graph' (allowed: an input that the output"
                        " is computed from)")
    before = len(walk.nodes)
    outer = walk.no_grad
    walk.no_grad = outer or not create  # without create_graph torch computes the formulas without recording them
    try:
        result = _backward(_Ops(walk), walk, between, output, target)
    finally:
        walk.no_grad = outer
    made = [n.name for n in walk.nodes[before:]]
    if not isinstance(result, str) or not made or result != made[-1]:
        raise ExprError(f"the gradient of '{output}' with respect to '{target}' does not depend on '{target}'"
                        f" (allowed: not supported yet; an output whose gradient changes with '{target}')")
    if not outer and not create:
        for i in range(before, len(walk.nodes)):
            if walk.nodes[i].cut == "no_grad":
                walk.nodes[i] = replace(walk.nodes[i], cut="grad")
    if top:
        last = replace(walk.nodes[-1], name=walk.current)
        walk.nodes[-1] = last
        walk.known.pop(result, None)
        walk.known[last.name] = last
        result = last.name
    for n in walk.nodes[before:]:
        walk.known[n.name] = n
    runs = tuple(n.name for n in between if n.tracked)
    walk.grad_calls.append((walk.current, walk.line, retain, runs))
    return result


def _between(walk: Any, output: str, target: str) -> list[Any]:
    """Return the nodes on a path from target to output that require grad, output first."""
    depends: set[str] = set()
    for node in walk.nodes:
        if node.name == target or any(a in depends for a in node.parents):
            depends.add(node.name)
        if node.name == output:
            break
    needed = {output}
    for node in reversed(walk.nodes[: [n.name for n in walk.nodes].index(output) + 1]):
        if node.name in needed:
            needed.update(a for a in node.parents if a in depends and walk.known[a].requires_grad)
    return [n for n in reversed(walk.nodes) if n.name in needed and n.name in depends]


def _backward(ops: _Ops, walk: Any, between: list[Any], output: str, target: str) -> Arg:
    """Propagate the implicit gradient 1 from output to target through torch's backward formulas."""
    adj: dict[str, Arg] = {output: Fraction(1)}
    for node in between:
        if node.is_leaf or node.name not in adj:
            continue
        up = adj.pop(node.name)
        for a, parent in enumerate(node.args):
            if not isinstance(parent, str) or not any(n.name == parent for n in between):
                continue
            shape = walk.known[parent].shape
            if shape not in (node.shape, ()) and node.op not in REDUCED:
                raise ExprError(f"torch.autograd.grad through a broadcast ('{parent}' has another shape than"
                                f" '{node.name}') (allowed: not supported yet; operands of one shape, or 0-d)")
            got = _vjp(ops, node, a, up)
            if shape != node.shape and node.op not in REDUCED:  # a 0-d operand gets the sum, as torch's sum_to
                got = ops.unary("sum", got) if isinstance(got, str) else ops("mul", got, Fraction(numel(node.shape)))
            adj[parent] = got if parent not in adj else ops("add", adj[parent], got)  # torch: old + new
    return adj.get(target, Fraction(0))


def request(expr: str) -> tuple[str, tuple[str, ...], int, bool, bool] | None:
    """Return (output, inputs, index, retain_graph, create_graph) of a step written torch.autograd.grad(...)[k]."""
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(tree, ast.Subscript) and is_grad_call(tree.value)):
        return None
    from .base import int_index

    outputs, inputs, retain, create = read_call(tree.value)
    return outputs[0], tuple(inputs), int_index(tree.slice), retain, create
