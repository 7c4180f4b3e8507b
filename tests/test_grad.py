"""torch.autograd.grad, create_graph and second derivatives: torch code in, torch's numbers and prints out."""

from __future__ import annotations

import json

import jsonschema
import pytest
import sympy as sp
import torch

from generator.render.flavor import inert

from tests.test_corpus import CORPUS, outcome
from tests.test_python import assert_one_problem, checked_json, run, torch_run, write

SECOND = """\
import torch
x = torch.tensor([2.0], requires_grad=True)
y = x ** 3
dy_dx = torch.autograd.grad(y, x, create_graph=True)[0]
d2y_dx2 = torch.autograd.grad(dy_dx, x)[0]
print(dy_dx, d2y_dx2, x.grad)
"""


def _torch_raises(code: str) -> str:
    """Return the message torch raises running trusted test code (the oracle), failing if it runs through."""
    with pytest.raises(RuntimeError) as caught:
        torch_run(code)
    return str(caught.value)


class TestCorpus:
    @pytest.mark.parametrize("stem", ["45_linkedin_autograd_grad_second", "49_qap_grad_then_backward"])
    def test_corpus_snippets_are_explained(self, stem):
        """The corpus' autograd.grad snippets build and check, and print and leave grads exactly as torch does."""
        found = outcome(CORPUS / f"{stem}.py")
        assert found.kind == "explained", found


class TestValues:
    def test_second_derivative_prints_as_torch(self, tmp_path):
        """grad with create_graph gives a tensor with torch's grad_fn; its grad is the second derivative; .grad untouched."""
        data = checked_json(tmp_path, SECOND)
        assert data["printed"] == torch_run(SECOND)[0]
        assert data["grads"]["x"] is None

    def test_float32_rounding_of_the_backward_formulas(self, tmp_path):
        """Gradients through sin, powers, products, a division and a mean print torch's float32 digits, ten of them."""
        code = """\
        import torch
        x = torch.tensor([0.3, 1.7], requires_grad=True)
        w = torch.tensor([1.1, -0.7], requires_grad=True)
        y = (x ** 3 * w + x * x / 3 - w * x.sin()).mean()
        g = torch.autograd.grad(y, x, create_graph=True)[0]
        print(g)
        s = g.sum()
        print(f"{s.item():.10f}")
        h = (g * g - w).sum()
        dx, dw = torch.autograd.grad(h, (x, w), retain_graph=True)
        dx1, dw0 = dx[1], dw[0]
        print(f"{dx1.item():.10f} {dw0.item():.10f}")
        h.backward()
        print(x.grad, w.grad)
        """
        data = checked_json(tmp_path, code)
        printed, grads = torch_run(code)
        assert data["printed"] == printed
        exact = torch_run(code, float64=True)[1]
        for leaf in ("x", "w"):
            assert data["grads"][leaf] == pytest.approx(exact[leaf], rel=1e-12)

    def test_backward_through_a_gradient_accumulates(self, tmp_path):
        """backward() of a tensor built from create_graph gradients adds its second derivatives into the leaf's .grad."""
        code = (CORPUS / "49_qap_grad_then_backward.py").read_text()
        data = checked_json(tmp_path, code)
        assert data["printed"] == torch_run(code)[0]
        assert data["grads"]["x"] == torch_run(code)[1]["x"] == 80.0

    def test_forms_of_the_call(self, tmp_path):
        """Keywords, `from torch.autograd import grad`, g, = ..., a tuple read as g[0], and two inputs all read."""
        code = """\
        import torch
        from torch.autograd import grad
        a = torch.tensor(1.5, requires_grad=True)
        b = torch.tensor([0.5, -2.0], requires_grad=True)
        y = (a * b * b).sum()
        g = grad(outputs=y, inputs=a, retain_graph=True)
        gb, = torch.autograd.grad(y, [b], retain_graph=True)
        da, db = torch.autograd.grad(y, (a, b))
        print(g[0], gb, da, db)
        """
        data = checked_json(tmp_path, code)
        assert data["printed"] == torch_run(code)[0]
        assert [c["result"] for c in data["grad_calls"]] == ["g", "gb", "da", "db"]


    def test_a_yaml_step_may_call_grad(self, tmp_path):
        """A YAML spec's step may be torch.autograd.grad(y, x)[0]; its values and the leaf's grad are torch's."""
        spec = tmp_path / "g.yaml"
        spec.write_text("title: grad in a step\nsummary: a step calls torch.autograd.grad\ninputs:\n  x:\n"
                        "    value: [1, 2]\n    requires_grad: true\nsteps:\n  y: (x ** 3).sum()\n"
                        "  g: torch.autograd.grad(y, x, create_graph=True)[0]\n  out: (g * g).sum()\nbackward: out\n")
        assert run("check", str(spec)) == (0, "1 agree with torch, 0 failed\n", "")
        assert run("build", str(spec), "--out", str(tmp_path / "o"), "--format", "json")[0] == 0
        data = json.loads((tmp_path / "o/g.json").read_text())
        x = torch.tensor([1.0, 2.0], requires_grad=True)
        g = torch.autograd.grad((x ** 3).sum(), x, create_graph=True)[0]
        (g * g).sum().backward()
        assert (data["values"]["g"], data["grads"]["x"]) == (g.tolist(), x.grad.tolist())

    def test_the_tuple_itself_is_refused_in_a_step(self, tmp_path):
        """A step that is the call itself, a tuple to torch, is refused where it is, saying to pick one gradient."""
        spec = tmp_path / "g.yaml"
        spec.write_text("title: t\nsummary: s\ninputs:\n  x:\n    value: [1, 2]\n    requires_grad: true\n"
                        "steps:\n  y: (x ** 3).sum()\n  g: torch.autograd.grad(y, x)\nbackward: y\n")
        assert_one_problem(spec, 9, "returns a tuple of gradients (allowed: one of them, torch.autograd.grad(y, x)[0])")


class TestDocument:
    def test_the_derivative_of_a_derivative_with_sympy_s_formula(self, tmp_path):
        """The document writes the first derivative as a formula of x, and its derivative, as sympy.diff gives them."""
        path = write(tmp_path, SECOND)
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md,json,pdf")[0] == 0
        md = (tmp_path / "o/example.md").read_text()
        x = sp.Symbol("x")
        first, second = sp.diff(x**3, x), sp.diff(x**3, x, 2)
        assert (first, second, second.subs(x, 2)) == (3 * x**2, 6 * x, 12)
        assert inert(r"\mathrm{dy\_dx}_{0} = 3 \cdot x_{0}^{2}") in md
        assert inert(r"\frac{\partial \mathrm{dy\_dx}_{0}}{\partial x_{0}} = 6 \cdot x_{0} = 6 \cdot 2 = 12") in md
        assert "a derivative of a derivative, the second derivative of `y`" in md
        assert "`dy_dx` has a\n`grad_fn`" in md or "`dy_dx` has a `grad_fn`" in md

    def test_chinese_document(self, tmp_path):
        """The same example in Chinese says it is the second derivative."""
        path = write(tmp_path, "# derive: lang=zh\n" + SECOND)
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md")[0] == 0
        assert "`y` 的二阶导数" in (tmp_path / "o/example.md").read_text()

    def test_json_lists_each_grad_call_under_the_schema(self, tmp_path):
        """JSON's grad_calls hold each call's result, order and torch's values, and validate against the schema."""
        data = checked_json(tmp_path, SECOND)
        schema = json.loads(run("schema", "--document")[1])
        jsonschema.Draft202012Validator(schema).validate(data)
        scope: dict = {}
        exec(SECOND.replace("print(", "(").replace(", x.grad)", ")"), scope)  # noqa: S102 - the test's own code, the oracle
        assert [(c["result"], c["order"], c["create_graph"], c["value"]) for c in data["grad_calls"]] == [
            ("dy_dx", 1, True, scope["dy_dx"].tolist()), ("d2y_dx2", 2, False, scope["d2y_dx2"].tolist())]


class TestRefused:
    def test_backward_after_grad_freed_the_graph(self, tmp_path):
        """grad without retain_graph frees the graph: a later backward is refused, as torch raises."""
        code = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\n" \
               "g = torch.autograd.grad(y, x)[0]\ny.backward()\n"
        assert "backward through the graph a second time" in _torch_raises(code)
        assert_one_problem(write(tmp_path, code), 5, "Trying to backward through the graph a second time")

    def test_grad_after_backward_freed_the_graph(self, tmp_path):
        """A grad through what backward freed is refused, as torch raises."""
        code = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\ny.backward()\n" \
               "g = torch.autograd.grad(y, x)[0]\n"
        assert "backward through the graph a second time" in _torch_raises(code)
        assert_one_problem(write(tmp_path, code), 5, "Trying to backward through the graph a second time")

    def test_a_non_scalar_output(self, tmp_path):
        """grad of a tensor of several elements without grad_outputs is refused with torch's reason."""
        code = "import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\ny = x * x\n" \
               "g = torch.autograd.grad(y, x)[0]\n"
        assert "grad can be implicitly created only for scalar outputs" in _torch_raises(code)
        assert_one_problem(write(tmp_path, code), 4, "grad can be implicitly created only for scalar outputs")

    def test_an_unused_input(self, tmp_path):
        """grad with respect to a tensor the output does not use is refused with torch's reason."""
        code = "import torch\nx = torch.tensor(1.0, requires_grad=True)\nw = torch.tensor(1.0, requires_grad=True)\n" \
               "y = x * 2\ng = torch.autograd.grad(y, w)[0]\n"
        assert "appears to not have been used in the graph" in _torch_raises(code)
        assert_one_problem(write(tmp_path, code), 5, "appears to not have been used in the graph")

    def test_an_input_that_does_not_require_grad(self, tmp_path):
        """grad with respect to a tensor without requires_grad is refused with torch's reason."""
        code = "import torch\nx = torch.tensor(1.0)\nw = torch.tensor(2.0, requires_grad=True)\n" \
               "y = x * w\ng = torch.autograd.grad(y, x)[0]\n"
        assert "One of the differentiated Tensors does not require grad" in _torch_raises(code)
        assert_one_problem(write(tmp_path, code), 5, "One of the differentiated Tensors does not require grad")

    def test_a_constant_factor_torch_rounds_step_by_step(self, tmp_path):
        """A constant gradient factor that torch's float32 steps round otherwise than the exact one is refused."""
        code = "import torch\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n" \
               "y = (x ** 2 * 0.1 / 7.0 * 1.3).mean()\nk = torch.autograd.grad(y, x)[0]\n"
        rounded_once = torch.tensor(float(sp.Rational(13, 2100)), dtype=torch.float32)
        stepwise = torch.ones(()) / 3 * 1.3 / 7.0 * 0.1  # mean, * 1.3, / 7.0, * 0.1: backward goes last op first
        assert stepwise != rounded_once
        assert_one_problem(write(tmp_path, code), 4, "one rounding per step")

    @pytest.mark.parametrize("line, message", [
        ("g = torch.autograd.grad(y, x)[0]", "torch.autograd.grad through 'relu' is not supported yet"),
        ("g = torch.autograd.grad(y, x, grad_outputs=torch.ones(()))[0]", "grad_outputs="),
        ("g = torch.autograd.grad(y, x, allow_unused=True)[0]", "other arguments"),
        ("g = torch.autograd.grad(y, x)[1]", "index 1 of the 1 gradients"),
    ])
    def test_what_is_not_read_yet_is_located(self, tmp_path, line, message):
        """Ops, arguments and indexes outside what is built are refused at their line, with what is allowed."""
        code = f"import torch\nx = torch.tensor(1.0, requires_grad=True)\ny = x.relu() * 3\n{line}\n"
        path = write(tmp_path, code)
        assert_one_problem(path, 4, message)
        assert "(allowed:" in run("build", str(path), "--out", str(tmp_path / "o"))[2]
