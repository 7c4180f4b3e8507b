"""The expression parser: what it builds, and what it refuses with which message."""

from __future__ import annotations

import pytest

from generator.errors import SpecError
from generator.graph.walk import build_graph

from .helpers import FUNCS, make_spec

ANY = f"+ - * / ** @, numbers, names, calls of {FUNCS}, x[i], x[a:b], x.max(dim).values, x.T"
INPUTS = {"x": ([[1, 2], [3, 4]], True), "W": ([1, 2, 3], True)}


def problem(expr: str) -> str:
    """Return the one problem reported for step y = expr."""
    with pytest.raises(SpecError) as e:
        build_graph(make_spec(INPUTS, {"y": expr}, ("y", [[1, 1], [1, 1]])))
    assert len(e.value.problems) == 1
    return e.value.problems[0].message


class TestBuilds:
    def test_one_line_can_hold_several_nodes(self):
        """y * y * 3 records two MulBackward0 nodes; the unnamed one gets a fresh name."""
        g = build_graph(make_spec({"x": ([1, 2], True)}, {"z": "x * x * 3"}, ("z", [1, 1])))
        t, z = g.nodes[1:]
        assert (t.name, t.op, t.args, t.step) == ("t", "mul", ("x", "x"), "z")
        assert (z.name, z.op, z.args[0], z.step) == ("z", "mul", "t", "z")

    def test_constant_over_tensor_is_a_reciprocal_then_a_multiplication(self):
        """2 / x is x.reciprocal() * 2 in torch, so the graph holds both nodes."""
        g = build_graph(make_spec({"x": ([1, 2], True)}, {"y": "2 / x"}, ("y", [1, 1])))
        assert [n.op for n in g.nodes[1:]] == ["reciprocal", "mul"]

    def test_intermediate_names_avoid_the_specs_names(self):
        """A fresh name never collides with an input or step name."""
        g = build_graph(make_spec({"t": ([1, 2], True)}, {"u": "t * t * t"}, ("u", [1, 1])))
        assert [n.name for n in g.nodes] == ["t", "w", "u"]

    def test_constants_fold_exactly(self):
        """Arithmetic on numbers alone is done exactly before torch sees it, as Python would."""
        g = build_graph(make_spec({"x": ([1, 2], True)}, {"y": "x * (1 / 10 + 2 ** 3)"}, ("y", [1, 1])))
        assert str(g.nodes[1].args[1]) == "81/10"

    def test_code_is_normalised_from_the_parsed_tree(self):
        """The torch code shown is re-written from the syntax tree, not copied from the spec."""
        g = build_graph(make_spec({"x": ([1, 2], True)}, {"y": "x*2   +1"}, ("y", [1, 1])))
        assert g.code == (("y", "x * 2 + 1"),)

    def test_requires_grad_flows_from_any_operand(self):
        """A result requires grad when any operand does."""
        g = build_graph(make_spec({"x": ([1, 2], True), "c": ([3, 4], False)}, {"y": "x + c", "k": "c * 2"}, ("y", [1, 1])))
        assert [n.requires_grad for n in g.nodes] == [True, False, True, False]


class TestRefusesCode:
    @pytest.mark.parametrize(
        ("expr", "message"),
        [
            ("__import__('os').system('echo hi')", f"step 'y': unknown function 'system' (allowed: {FUNCS})"),
            ("open('/etc/passwd')", f"step 'y': calling 'open' is not allowed (allowed: torch.f(x) or x.f() for f in {FUNCS})"),
            ("getattr(x, 'T')", f"step 'y': calling 'getattr' is not allowed (allowed: torch.f(x) or x.f() for f in {FUNCS})"),
            ("(lambda: 1)()", f"step 'y': calling a lambda is not allowed (allowed: torch.f(x) or x.f() for f in {FUNCS})"),
            ("x.__class__", f"step 'y': attribute '.__class__' is not allowed (allowed: .max(dim).values, .T and the methods {FUNCS})"),
            ("x.exp.__globals__", f"step 'y': attribute '.__globals__' is not allowed (allowed: .max(dim).values, .T and the methods {FUNCS})"),
            ("torch.nn.functional.exp(x)", "step 'y': torch.nn.functional.exp is not read here (allowed: torch.exp(x) or x.exp())"),
            ("x.mse_loss(x)", "step 'y': mse_loss is a function of torch.nn.functional (allowed:"
                              " torch.nn.functional.mse_loss(...), or F.mse_loss(...) after import torch.nn.functional as F)"),
            ("[v for v in x]", f"step 'y': a list comprehension is not allowed (allowed: {ANY})"),
            ("x if x else x", f"step 'y': an if-expression is not allowed (allowed: {ANY})"),
            ("f'{x}'", f"step 'y': an f-string is not allowed (allowed: {ANY})"),
            ("x.exp(*x)", "step 'y': * and ** arguments are not allowed (allowed: plain arguments)"),
        ],
    )
    def test_refused(self, expr, message):
        """Anything outside the whitelist is refused with what is allowed."""
        assert problem(expr) == message


class TestRefusesMistakes:
    @pytest.mark.parametrize(
        ("expr", "message"),
        [
            ("x + W", "step 'y': shapes [2, 2] and [3] do not broadcast (allowed: sizes equal or 1, compared from the right)"),
            ("q + 1", "step 'y': unknown name 'q' (allowed: inputs and earlier steps: x, W)"),
            ("y + 1", "step 'y': step 'y' uses itself (allowed: inputs and earlier steps: x, W)"),
            ("x @ 2", "step 'y': @ needs two tensors (allowed: tensor @ tensor)"),
            ("x @ W", "step 'y': @ cannot multiply [2, 2] by [3]: 2 != 3 (allowed: the inner sizes equal)"),
            ("x.foo()", f"step 'y': unknown function 'foo' (allowed: {FUNCS})"),
            ("x // 2", "step 'y': the operator // is not allowed (allowed: + - * / ** @)"),
            ("x[0.5]", "step 'y': an index must be an integer, a slice of integers or an int64 tensor (allowed: x[1], x[1:3],"
                       " x[:, 0], x[::2], x[idx], x[[0, 2]], x[range(3), idx])"),
            ("x[:, 2:]", "step 'y': the slice 2: of dim 1 (size 2) keeps no element, and derive does not follow empty tensors"
                         " (allowed: a slice that keeps at least one element)"),
            ("x.var(1, correction=2)", "step 'y': var of 2 element(s) with correction=2 divides by 0 (allowed: a correction"
                                       " below the group's size, as torch warns otherwise and returns nan or inf)"),
            ("x.logsumexp()", "step 'y': logsumexp() needs dim= (allowed: logsumexp(x, dim=...))"),
            ("torch.cat([x, W])", "step 'y': cat() cannot join [2, 2] and [3] (allowed: equal sizes in every dim but dim 0)"),
            ("torch.stack([x, x.T, W])", "step 'y': stack() cannot join [2, 2] and [3] (allowed: equal shapes)"),
            ("torch.stack([x, 2])", "step 'y': stack's operand must be a tensor, got the number 2 (allowed: a tensor name or"
                                    " expression)"),
            ("torch.cat(x)", "step 'y': cat() takes a list of tensors first (allowed: torch.cat([a, b], dim=0))"),
            ("torch.cat([x, x], dim=2)", "step 'y': cat(): dim 2 is out of range for 2 dimension(s) (allowed: -2 to 1)"),
            ("W.expand(2, 2)", "step 'y': [3] cannot be expanded to [2, 2] (allowed: each size equal to the tensor's, or any"
                               " size where it has 1, or -1 to keep it; new dims only in front)"),
            ("x[2] * 1", "step 'y': index 2 is out of range for size 2 (allowed: -2 to 1)"),
            ("x.softmax()", "step 'y': softmax() needs dim= (allowed: softmax(x, dim=...))"),
            ("x.softmax(dim=2)", "step 'y': dim 2 is out of range for a 2-d tensor (allowed: -2 to 1)"),
            ("x.clamp()", "step 'y': clamp needs min= or max= (allowed: clamp(min=a), clamp(max=b), clamp(min=a, max=b))"),
            ("x.sum(axis=0)", "step 'y': sum() got an unknown argument 'axis' (allowed: dim=, keepdim=)"),
            ("x.sum(dim=x)", "step 'y': dim= must be an integer (allowed: an integer such as 0 or -1)"),
            ("x.max(0)", "step 'y': max(dim) returns values and indices (allowed: x.max(dim).values, x.max(dim)[0], or"
                         " x.max() over all elements)"),
            ("x.max(0)[1]", "step 'y': x.max(dim)[1] is the indices, integers with no gradient (allowed: x.max(dim)[0] or"
                            " x.max(dim).values)"),
            ("x.values", "step 'y': .values belongs to x.max(dim) or x.min(dim) (allowed: x.max(1).values,"
                         " x.min(dim=0).values)"),
            ("W.T", "step 'y': .T needs a 2-d tensor, got [3] (allowed: matrices)"),
            ("x.chunk(2)", "step 'y': chunk() returns a tuple of tensors (allowed: one of them, x.chunk(...)[0])"),
            ("x.chunk(2)[2]", "step 'y': chunk() makes 2 piece(s) here, so [2] raises IndexError: tuple index out of range"
                              " (allowed: -2 to 1)"),
            ("W.split([1, 1])[0]", "step 'y': split_with_sizes expects split_sizes to sum exactly to 3 (input tensor's"
                                   " size at dimension 0), but got split_sizes=[1, 1] (allowed: positive sizes that sum"
                                   " to 3; derive does not follow empty pieces)"),
            ("x.split(0)[0]", "step 'y': split() needs split_size of at least 1, got 0 (allowed: 1, 2, ...)"),
            ("x.norm(1, dim=0)", "step 'y': norm() computes the 2-norm here (allowed: p=2 or p='fro', or no p)"),
            ("torch.nn.functional.normalize(x, p=1)", "step 'y': normalize() divides by the 2-norm here, got p=1"
                                                      " (allowed: p=2, the default)"),
            ("torch.nn.functional.normalize(W)", "step 'y': dim 1 is out of range for a 1-d tensor (allowed: -1 to 0)"),
            ("torch.nn.functional.dropout(x * 2)", "step 'y': dropout() in training zeroes elements at random, which"
                                                   " derive does not draw (allowed: dropout(x, p, training=False), as"
                                                   " after model.eval(), or p=0)"),
            ("torch.nn.functional.dropout(x, 0.5, training=False)",
             "step 'y': dropout() here returns 'x' itself, so this step would be no new tensor (allowed: dropout() around"
             " an operation, such as dropout(x @ w, 0.5, training=False))"),
            ("torch.nn.functional.dropout(x * 2, 1.5, training=False)",
             "step 'y': dropout probability has to be between 0 and 1, but got 1.5 (allowed: 0 <= p <= 1)"),
            ("1 + 2", "step 'y': a step must compute a tensor from inputs or earlier steps (allowed: an operation such as x + 1)"),
            ("x", "step 'y': a step must compute a tensor from inputs or earlier steps (allowed: an operation such as x + 1)"),
            ("x +", "step 'y': not a valid expression: invalid syntax (allowed: torch-like Python such as x * 2 + 1)"),
            ("1/0 + x", "step 'y': division by the constant 0 (allowed: a non-zero divisor)"),
            ("x ** (9 ** 9 ** 9)", "step 'y': the exponent 387420489 is too large (allowed: at most 64 in size)"),
            ("12345678901234567 * x", "step 'y': the number 12345678901234567... has too many digits (allowed: at most 15)"),
        ],
    )
    def test_refused(self, expr, message):
        """Each mistake gets one message that says what is allowed."""
        assert problem(expr) == message


class TestBackwardCalls:
    def test_non_scalar_output_needs_a_gradient(self):
        """Like torch, a gradient is required exactly when the output has more than one element."""
        with pytest.raises(SpecError) as e:
            build_graph(make_spec({"x": ([1, 2], True)}, {"y": "x * 2"}, "y"))
        assert str(e.value) == (
            "test.yaml:3: backward 'y': the output has shape [2], so torch needs a gradient"
            " (grad can be implicitly created only for scalar outputs)"
            " (allowed: {output: y, gradient: <values of shape [2]>})"
        )

    def test_one_element_output_needs_no_gradient(self):
        """A [1]-shaped output takes the implicit gradient, as torch allows."""
        build_graph(make_spec({"x": ([1], True)}, {"y": "x * 2"}, "y"))

    def test_gradient_must_have_the_outputs_shape(self):
        """A gradient of another shape is refused."""
        with pytest.raises(SpecError) as e:
            build_graph(make_spec({"x": ([1, 2], True)}, {"y": "x * 2"}, ("y", [1, 2, 3])))
        assert e.value.problems[0].message == (
            "backward 'y': gradient has shape [3] but the output has shape [2] (allowed: a gradient of the output's shape)"
        )

    def test_output_must_require_grad(self):
        """Nothing requiring grad means torch cannot backpropagate."""
        with pytest.raises(SpecError) as e:
            build_graph(make_spec({"x": (2, False)}, {"y": "x * 2"}, "y"))
        assert e.value.problems[0].message == (
            "backward 'y': it does not require grad, so torch cannot backpropagate from it"
            " (allowed: a tensor computed from an input with requires_grad: true)"
        )

    def test_every_problem_is_reported_once(self):
        """Every bad step and call is reported; a step using a failed one says so instead of 'unknown'."""
        spec = make_spec({"x": ([1, 2], True)}, {"a": "x.foo()", "b": "x @ x @ x", "c": "a + 1"}, "nope")
        with pytest.raises(SpecError) as e:
            build_graph(spec)
        messages = [p.message for p in e.value.problems]
        assert messages[0].startswith("step 'a': unknown function 'foo'")
        assert messages[1] == "step 'b': @ needs 1-d or 2-d operands, got [] and [2] (allowed: vectors and matrices)"
        assert messages[2] == "step 'c': uses 'a', which has a problem of its own (allowed: fix 'a' first)"
        assert messages[3] == "backward 'nope': unknown tensor (allowed: x)"
