"""Each limit on expressions and graphs: its value is allowed, one more is refused with a message."""

from __future__ import annotations

import ast

import pytest

from generator.graph import walk as graph
from generator.errors import SpecError
from generator.graph.walk import build_graph
from generator.ops.elementwise import MAX_EXPONENT

from .helpers import make_spec


def problems(steps: dict, inputs: dict | None = None) -> list[str]:
    """Return the messages build_graph reports (empty when the graph builds)."""
    inputs = inputs or {"x": (1, True)}
    last = list(steps)[-1]
    try:
        build_graph(make_spec(inputs, steps, last))
    except SpecError as e:
        return [p.message for p in e.problems]
    return []


def count(expr: str) -> int:
    """Count AST nodes independently of the parser."""
    return sum(1 for _ in ast.walk(ast.parse(expr, mode="eval")))


def depth(node: ast.AST) -> int:
    """Measure AST depth independently of the parser."""
    return 1 + max((depth(c) for c in ast.iter_child_nodes(node)), default=0)


def test_expression_length():
    """MAX_EXPR_CHARS characters pass; one more is refused."""
    base = "x * 2"
    limit = graph.MAX_EXPR_CHARS
    assert problems({"y": base + " " * (limit - len(base))}) == []
    assert problems({"y": base + " " * (limit + 1 - len(base))}) == [
        f"step 'y': the expression has {limit + 1} characters (allowed: at most {limit})"
    ]


def balanced(leaves: int) -> str:
    """Return a sum of `leaves` x's as a balanced tree, wide rather than deep."""
    if leaves == 1:
        return "x"
    half = leaves // 2
    return f"({balanced(half)} + {balanced(leaves - half)})"


def test_ast_nodes():
    """An expression of at most MAX_AST_NODES parts passes; the next size is refused."""
    leaves = 1
    while count(balanced(leaves + 1)) <= graph.MAX_AST_NODES:
        leaves += 1
    fits, over = balanced(leaves), balanced(leaves + 1)
    assert count(fits) <= graph.MAX_AST_NODES < count(over)
    assert problems({"y": fits}) == []
    assert problems({"y": over}) == [
        f"step 'y': the expression has {count(over)} parts (allowed: at most {graph.MAX_AST_NODES})"
    ]


def test_nesting_depth():
    """Nesting up to MAX_DEPTH levels passes; one level more is refused."""
    levels = 1
    while depth(ast.parse("-(" * (levels + 1) + "x" + ")" * (levels + 1), mode="eval")) <= graph.MAX_DEPTH:
        levels += 1
    fits = "-(" * levels + "x" + ")" * levels
    over = "-(" * (levels + 1) + "x" + ")" * (levels + 1)
    assert depth(ast.parse(fits, mode="eval")) == graph.MAX_DEPTH
    assert problems({"y": fits}) == []
    assert problems({"y": over}) == [
        f"step 'y': the expression is nested too deeply (allowed: at most {graph.MAX_DEPTH} levels)"
    ]


def test_integer_digits():
    """Numbers of MAX_INT_DIGITS digits pass; one digit more is refused."""
    digits = graph.MAX_INT_DIGITS
    assert problems({"y": f"x * {'1' * digits}"}) == []
    assert problems({"y": f"x * {'1' * (digits + 1)}"}) == [
        f"step 'y': the number {'1' * (digits + 1)}... has too many digits (allowed: at most {digits})"
    ]


@pytest.mark.parametrize("sign", [1, -1])
def test_constant_exponent(sign):
    """x ** ±MAX_EXPONENT passes; a larger exponent is refused before anything is computed."""
    limit = MAX_EXPONENT
    assert problems({"y": f"x ** ({sign * limit})"}) == []
    assert problems({"y": f"x ** ({sign * (limit + 1)})"}) == [
        f"step 'y': the exponent {sign * (limit + 1)} is too large (allowed: at most {limit} in size)"
    ]


def test_number_of_tensors():
    """MAX_NODES tensors, leaves included, pass; one more is refused."""
    limit = graph.MAX_NODES
    steps = {f"s{i}": "x * 2" for i in range(limit - 1)}
    assert problems(steps) == []
    steps[f"s{limit - 1}"] = "x * 2"
    assert problems(steps)[0] == f"step 's{limit - 1}': the graph has more than {limit} tensors (allowed: at most {limit})"


def test_total_elements(monkeypatch):
    """MAX_TOTAL_ELEMENTS elements over all tensors pass; one more is refused."""
    monkeypatch.setattr(graph, "MAX_TOTAL_ELEMENTS", 31)
    inputs = {"x": ([1] * 10, True)}
    assert problems({"a": "x * 2", "b": "(a * 2).sum()"}, inputs) == []
    assert problems({"a": "x * 2", "b": "(a * 2).sum() * 2"}, inputs) == [
        "step 'b': the graph's tensors have more than 31 elements together (allowed: at most 31)"
    ]


def test_total_elements_of_inputs(monkeypatch):
    """Inputs count too, and the problem names the input."""
    monkeypatch.setattr(graph, "MAX_TOTAL_ELEMENTS", 15)
    assert problems({"a": "x.sum()"}, {"x": ([1] * 10, True), "w": ([1] * 10, True)}) == [
        "input 'w': the graph's tensors have more than 15 elements together (allowed: at most 15)"
    ]
