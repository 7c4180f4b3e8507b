"""A custom torch.autograd.Function in torch code: forward inlined, the author's backward used and checked (issue 12)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from generator.pipeline.build import graph_of
from tests.test_python import checked_json, problems, run, torch_run, write

ROOT = Path(__file__).resolve().parent.parent

SQUARE = """\
import torch
from torch.autograd import Function

class Square(Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input ** 2

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * {factor} * input

x = torch.tensor([3.0, -1.5], requires_grad=True)
square = Square.apply
y = square(x)
y.sum().backward()
print(y)
print(y.grad_fn)
print("Custom grad:", x.grad)
"""

# The tutorial's LegendrePolynomial3 (19_examples_legendre_function), one forward and backward, without the loop.
LEGENDRE = """\
import torch

class LegendrePolynomial3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)

x = torch.tensor([-3.0, -1.25, 0.5, 2.0])
y = torch.sin(x)
a = torch.full((), 0.0, requires_grad=True)
b = torch.full((), -1.0, requires_grad=True)
c = torch.full((), 0.0, requires_grad=True)
d = torch.full((), 0.3, requires_grad=True)
P3 = LegendrePolynomial3.apply
y_pred = a + b * P3(c + d * x)
loss = (y_pred - y).pow(2).sum()
print("loss", loss.item())
loss.backward()
print(a.grad, b.grad, c.grad, d.grad)
"""


# A wrong backward (3x for x**2), grouped as grad_output * (factor) so that torch rounds it as derive does.
WRONG = SQUARE.format(factor=3).replace("grad_output * 3 * input", "grad_output * (3 * input)")


def first_problem(path: Path, line: int, message: str) -> None:
    """Assert that reading the file finds its first problem at that line, whose text holds message."""
    found = problems(path)
    assert found[0].startswith(f"{path}:{line}: ") and message in found[0], found


# The tutorial's MyReLU (18_examples_custom_relu_function), one forward and backward on its numbers, without the loop.
RELU = """\
import torch


class MyReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


dtype = torch.float
device = torch.device("cpu")
x = torch.tensor([[1.0, -0.5, 0.25], [0.5, 1.5, -1.0]], device=device, dtype=dtype)
y = torch.tensor([[0.5], [-1.0]], device=device, dtype=dtype)
w1 = torch.tensor([[0.5, -0.25], [0.75, 0.5], [-0.5, 1.0]], device=device, dtype=dtype, requires_grad=True)
w2 = torch.tensor([[1.0], [-0.5]], device=device, dtype=dtype, requires_grad=True)
relu = MyReLU.apply
y_pred = relu(x.mm(w1)).mm(w2)
loss = (y_pred - y).pow(2).sum()
print("loss", loss.item())
loss.backward()
print(w1.grad)
print(w2.grad)
"""


class TestApply:
    def test_exp_docstring_example_agrees_with_torch(self, tmp_path):
        """The Function docstring's Exp: values, printed text and the leaf's grad are torch's."""
        code = (ROOT / "tests/corpus/35_docs_function_exp.py").read_text(encoding="utf-8")
        data = checked_json(tmp_path, code)
        printed, grads = torch_run(code)
        assert data["printed"] == printed
        assert data["grads"]["input"] == pytest.approx(grads["input"], rel=1e-6)  # exact, torch's float32

    def test_alias_and_grad_fn_are_torchs(self, tmp_path):
        """square = Square.apply; y = square(x): torch's grad_fn class (SquareBackward, in its module) and grads."""
        code = SQUARE.format(factor=2)
        data = checked_json(tmp_path, code)
        printed, grads = torch_run(code)
        assert data["printed"] == re.sub(r"0x[0-9a-f]+", "0x...", printed)
        assert data["grads"] == grads
        graph = graph_of(write(tmp_path, code))
        x = torch.tensor([3.0, -1.5], requires_grad=True)
        torch_y = _square().apply(x)
        assert graph.grad_fn(graph.node("y")) == type(torch_y.grad_fn).__name__

    def test_legendre_forward_and_backward_agree_with_torch(self, tmp_path):
        """LegendrePolynomial3 applied inside an expression: every leaf's grad and the printed loss are torch's."""
        # the loss is printed to 6 places: its 17 digits go through float32 sin, which torch does not round correctly
        code = LEGENDRE.replace('print("loss", loss.item())', 'print("loss", f"{loss.item():.6f}")')
        data = checked_json(tmp_path, code)
        printed, grads = torch_run(code)
        assert data["printed"] == printed
        for leaf, grad in grads.items():
            assert data["grads"][leaf] == pytest.approx(grad, rel=1e-5)  # exact, torch's float32
        assert data["functions"][0]["agree"] is True

    def test_relu_mask_agrees_with_torch(self, tmp_path):
        """MyReLU's clone-and-mask backward: the printed grads (a +0.0 where the mask writes 0) and grads are torch's."""
        data = checked_json(tmp_path, RELU)
        printed, grads = torch_run(RELU)
        assert data["printed"] == printed
        assert data["grads"] == grads

    def test_mask_at_kink_agrees_with_clamp(self, tmp_path):
        """At input 0, MyReLU keeps the gradient (0 < 0 is false) and torch's clamp'(0) is 1: they agree there."""
        data = checked_json(tmp_path, RELU)
        [found] = data["functions"]
        assert found["backward"] == found["derivative"] == [[1.0, 0.0], [1.0, 0.0]]  # x.mm(w1) is [[0, -.25], ...]
        zero = torch.tensor([0.0], requires_grad=True)
        zero.clamp(min=0).sum().backward()
        assert zero.grad.tolist() == [1.0]  # torch's own clamp'(0), which the derivative of forward follows

    def test_forward_is_read_as_unrecorded_steps(self, tmp_path):
        """Forward's steps require no grad (torch runs forward without recording); the output requires grad."""
        graph = graph_of(write(tmp_path, SQUARE.format(factor=2)))
        applied = graph.spec.applied[0]
        assert [graph.node(h).requires_grad for h in applied.hidden] == [False] * len(applied.hidden)
        assert graph.node("y").requires_grad and not graph.node("y").is_leaf


class TestVerdict:
    def test_right_backward_agrees_with_sympy(self, tmp_path):
        """Square's backward 2x equals sympy's derivative of x**2 at every element: the JSON says so."""
        data = checked_json(tmp_path, SQUARE.format(factor=2))
        [found] = data["functions"]
        assert found["agree"] is True and found["disagree_at"] == []
        assert found["backward"] == found["derivative"] == [6.0, -3.0]

    def test_json_follows_the_document_schema(self, tmp_path):
        """The functions key of a document with a Function is valid against `derive schema --document`."""
        import jsonschema

        from generator.render.json import document_schema

        data = checked_json(tmp_path, SQUARE.format(factor=2))
        jsonschema.Draft202012Validator(document_schema()).validate(data)
        data["functions"][0]["extra"] = 1
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(document_schema()).validate(data)

    def test_wrong_backward_fails_check_located(self, tmp_path):
        """A backward of 3x for x**2: derive check names the line and element, with both numbers, and fails."""
        path = write(tmp_path, WRONG)
        code, out, err = run("check", str(path))
        assert code == 1
        assert f"{path}:13: backward of Square disagrees with the derivative of forward at x[0] = 3.0" \
               " (ours 9.0, forward's 6.0)" in err
        assert f"{path}:13: backward of Square disagrees with the derivative of forward at x[1] = -1.5" \
               " (ours -4.5, forward's -3.0)" in err

    def test_wrong_backward_still_builds_and_says_so(self, tmp_path):
        """build writes the document with the author's grads (torch's) and a sentence naming the disagreement."""
        code = WRONG
        path = write(tmp_path, code)
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md,json")[0] == 0
        data = json.loads((tmp_path / "o/example.json").read_text())
        _, grads = torch_run(code)
        assert data["grads"] == grads == {"x": [9.0, -4.5]}
        assert data["functions"][0]["disagree_at"] == [[0], [1]]
        markdown = (tmp_path / "o/example.md").read_text()
        assert "They disagree at $x_{0}$, $x_{1}$" in markdown

    def test_zh_document_says_it_in_chinese(self, tmp_path):
        """The Chinese document explains the Function and the disagreement in Chinese."""
        path = write(tmp_path, "# derive: lang=zh\n" + WRONG)
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md")[0] == 0
        markdown = (tmp_path / "o/example.md").read_text()
        assert "自定义 Function `Square`" in markdown and "处不相等" in markdown


class TestRefused:
    def test_backward_not_a_product_of_grad_output(self, tmp_path):
        """A backward that does not multiply grad_output by a factor is refused at its return line."""
        path = write(tmp_path, SQUARE.format(factor=2).replace("return grad_output * 2 * input",
                                                               "return grad_output + input"))
        first_problem(path, 13, "not grad_output times a factor")

    def test_other_statement_in_forward(self, tmp_path):
        """Anything but name = expression, ctx.save_for_backward and return in forward is refused, located."""
        path = write(tmp_path, SQUARE.format(factor=2).replace("        ctx.save_for_backward(input)\n",
                                                               "        ctx.save_for_backward(input)\n"
                                                               "        print(input)\n"))
        first_problem(path, 8, "in forward of Square")

    def test_free_name_in_backward(self, tmp_path):
        """A name backward does not bind (a global) is refused: the document's script could not define it."""
        path = write(tmp_path, SQUARE.format(factor="scale"))
        first_problem(path, 13, "the name 'scale' in backward of Square")

    def test_apply_in_yaml_is_refused(self, tmp_path):
        """F.apply(x) in a YAML step, where no Function is defined, is refused with a located message."""
        spec = tmp_path / "s.yaml"
        spec.write_text("title: t\ninputs:\n  x:\n    value: [1.0]\n    requires_grad: true\n"
                        "steps:\n  y: F.apply(x)\nbackward:\n  output: y\n", encoding="utf-8")
        code, _, err = run("build", str(spec), "--out", str(tmp_path / "o"))
        assert code == 1 and "custom torch.autograd.Function" in err and "Traceback" not in err


def _square():
    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input ** 2

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            return grad_output * 2 * input

    return Square



class TestScript:
    def test_vet_takes_the_class_as_written_and_nothing_more(self, tmp_path):
        """The document's script with its Function passes vet; the same with anything added to the class is refused."""
        from generator.document.code import torch_code
        from generator.pipeline.script import Refused, vet

        code = torch_code(graph_of(write(tmp_path, RELU)))
        vet(code)
        for old, new in [("        ctx.save_for_backward(input)\n", "        import os\n"),
                         ("        ctx.save_for_backward(input)\n", "        ctx.mark_dirty(input)\n"),
                         ("(torch.autograd.Function)", "(object)"),
                         ("        return input.clamp(min=0)\n", "        return input.__class__\n"),
                         ("        grad_input[input < 0] = 0\n", "        grad_input[input.__class__] = 0\n")]:
            assert old in code
            with pytest.raises(Refused):
                vet(code.replace(old, new))
