"""The graph of an example: its nodes (tensors, leaves or results of ops) in topological order."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from fractions import Fraction
from typing import Any

from ..ops import REGISTRY
from ..ops.base import Arg, Shape, numel
from ..spec.model import Array, Spec, repeated


Function = tuple[str, str] | None  # torch's node of a tensor: ("node", name) or ("leaf", name), or None


@dataclass(frozen=True)
class Node:
    """One tensor of the example: a leaf (op is None) or the result of an op."""

    name: str
    op: str | None
    args: tuple[Arg, ...]
    params: tuple[tuple[str, Any], ...]
    shape: Shape
    requires_grad: bool
    step: str  # the input or step this node belongs to
    line: int
    cut: str = ""  # "no_grad", or the key of an op torch does not record: computed from tensors that require grad
    integer: bool = False  # an int64 input: read only as indices or targets (its values go into the op's parameters)

    @property
    def is_leaf(self) -> bool:
        return self.op is None

    @property
    def tracked(self) -> bool:
        """Tell whether torch records this tensor in its graph: computed, and requiring grad (else a leaf to torch)."""
        return self.op is not None and self.requires_grad

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(a for a in self.args if isinstance(a, str))


@dataclass(frozen=True)
class Graph:
    """Every node in topological order, and the torch code of each step."""

    spec: Spec
    nodes: tuple[Node, ...]
    code: tuple[tuple[str, str], ...]  # (step name, normalised expression)

    def node(self, name: str) -> Node:
        """Return the node of that name."""
        return self._index[name]

    @cached_property
    def _index(self) -> dict[str, Node]:  # built once: node() is asked for every element of every pass
        return {n.name: n for n in self.nodes}

    def ancestors(self, output: str) -> list[Node]:
        """Return the nodes that output depends on and that require grad, output first (backward's order)."""
        needed = {output}
        for node in reversed(self.nodes):
            if node.name in needed:
                needed.update(a for a in node.parents if self.node(a).requires_grad)
        return [n for n in reversed(self.nodes) if n.name in needed]

    def grad_fn(self, node: Node) -> str:
        """Return torch's grad_fn name of a node, '' where torch has none (a leaf, or a tensor not requiring grad)."""
        if not node.tracked:
            return ""
        op = REGISTRY[node.op]
        consts = tuple(not isinstance(a, str) for a in node.args)
        shapes = [self.node(a).shape if isinstance(a, str) else () for a in node.args]
        return op.grad_fn(consts, shapes, node.kwargs)

    def grad_fn_repr(self, node: Node) -> str:
        """Return what print(t.grad_fn) writes before ' object at': the class, with its module for a custom Function."""
        return REGISTRY[node.op].grad_fn_module + self.grad_fn(node)

    def function(self, name: str, path: tuple[int, ...] = ()) -> Function:
        """Return t.grad_fn, then .next_functions[i][0] for each i of path; raise LookupError saying why not.

        A function is ("node", name) for a computed tensor's grad_fn, ("leaf", name) for a leaf's AccumulateGrad.
        """
        found: Function = ("node", name) if self.node(name).tracked else None
        for i in path:
            following = self.linked(found)
            if not -len(following) <= i < len(following):
                raise LookupError(f"{self.function_repr(found)} links to {len(following)} functions, so torch raises"
                                  " IndexError: tuple index out of range")
            found = following[i]
        return found

    def linked(self, function: Function) -> tuple[Function, ...]:
        """Return a function's next_functions; raise LookupError where torch cannot or derive does not follow."""
        if function is None:
            raise LookupError("that grad_fn is None, so torch raises AttributeError: 'NoneType' object has no"
                              " attribute 'next_functions'")
        following = self.next_functions(function)
        if following is None:
            raise LookupError(f"torch's {self.function_repr(function)} links to nodes of its own, which derive does"
                              " not follow yet")
        return following

    def next_functions(self, function: Function) -> tuple[Function, ...] | None:
        """Return what torch's function links to, in order; None where torch links to nodes the graph lacks."""
        if function is None or function[0] == "leaf":
            return ()
        node = self.node(function[1])
        consts = tuple(not isinstance(a, str) for a in node.args)
        shapes = [self.node(a).shape if isinstance(a, str) else () for a in node.args]
        edges = REGISTRY[node.op].edges(consts, shapes, node.kwargs)
        if edges is None:
            return None
        linked: list[Function] = []
        for i in edges:
            arg = node.args[i]
            parent = self.node(arg) if isinstance(arg, str) else None
            if parent is not None and parent.tracked:
                linked.append(("node", arg))
            elif parent is not None and parent.is_leaf and parent.requires_grad:
                linked.append(("leaf", arg))
            else:
                linked.append(None)
        return tuple(linked)

    def function_repr(self, function: Function) -> str:
        """Return what print() writes of a function: <AddBackward0 object at ...> without the address, or None."""
        if function is None:
            return "None"
        if function[0] == "leaf":
            return "AccumulateGrad"
        return self.grad_fn_repr(self.node(function[1]))

    def rule(self, node: Node) -> str:
        """Return the name of the differentiation rule a non-leaf node uses."""
        consts = tuple(not isinstance(a, str) for a in node.args)
        same = len(node.args) == 2 and node.args[0] == node.args[1]
        return REGISTRY[node.op].rule_for(consts, same)


def ones_gradient(node: Node) -> Array:
    """Return the implicit gradient of a one-element output."""
    return Array(node.shape, repeated(Fraction(1), numel(node.shape)))
