"""torch.autograd.functional.hessian and hvp of a helper or lambda: printed, explained and checked as torch does."""

from __future__ import annotations

import pytest
import torch

from generator.render.flavor import inert

from tests.test_functional import agrees
from tests.test_python import assert_one_problem, run, write

POW_REDUCER = """\
import torch
from torch.autograd.functional import hessian, hvp

def pow_reducer(x):
    return x.pow(3).sum()
inputs = torch.tensor([[0.25, 0.5], [0.75, 1.0]])
print(hessian(pow_reducer, inputs))
v = torch.ones(2, 2)
print(hvp(pow_reducer, inputs, v))
"""

INDEXED = """\
import torch
from torch.autograd.functional import hessian

def f(x):
    return (x[0] ** 2 + x[1] ** 3)

x = torch.tensor([1.0, 2.0], requires_grad=True)
hess = hessian(f, x)
print("Hessian matrix:\\n", hess)
print(x.grad)
"""


class TestHessian:
    def test_pow_reducer_prints_input_shape_twice(self, tmp_path):
        """hessian of sum(x^3) at a 2x2 input prints torch's 2x2x2x2 H, and hvp prints (f(x), H v)."""
        agrees(tmp_path, POW_REDUCER)

    def test_indexing_kept_in_a_name_then_printed(self, tmp_path):
        """H = hessian(f, x) of x[0]^2 + x[1]^3, printed later with text, is torch's diag(2, 6 x[1]); x.grad stays None."""
        agrees(tmp_path, INDEXED)

    def test_sin_exp_mixture_float64(self, tmp_path):
        """A mixture of sin, exp and products in float64 prints torch's H, off-diagonal entries included."""
        agrees(tmp_path, """\
        import torch
        x = torch.tensor([0.3, -1.2, 2.5], dtype=torch.float64)
        print(torch.autograd.functional.hessian(lambda a: (a.sin() * a.exp()).sum() + a[0] * a[1] * a[2], x))
        """)

    def test_sin_exp_mixture_float32(self, tmp_path):
        """The same kind of function in float32: H's numbers print as torch's (4 decimals)."""
        agrees(tmp_path, """\
        import torch
        x = torch.tensor([0.1, 0.7, 3.3])
        print(torch.autograd.functional.hessian(lambda a: (a.exp() * a.sin()).sum() / 3 + (a[0] * a[2]).exp(), x))
        """)

    def test_two_inputs_give_a_tuple_of_tuples(self, tmp_path):
        """A tuple of two inputs prints torch's ((H_xx, H_xy), (H_yx, H_yy)), with the blocks' own shapes."""
        agrees(tmp_path, """\
        import torch
        x = torch.tensor([0.5, 1.5])
        y = torch.tensor([[0.25], [0.75], [2.0]])
        print(torch.autograd.functional.hessian(lambda a, b: (a.exp() * b.sum()).sum() + (b ** 3).sum(), (x, y)))
        print(torch.autograd.functional.hessian(lambda a: (a * a).sum(), (x,)))
        """)

    def test_zeros_print_with_torchs_sign(self, tmp_path):
        """Entries torch's one-hot passes leave as -0.0 or 0.0 print as it prints them, in H and in H v."""
        agrees(tmp_path, """\
        import torch
        x = torch.tensor([0.3, -1.2, 2.5])
        print(torch.autograd.functional.hessian(lambda a: a.cos().sum(), x))
        print(torch.autograd.functional.hessian(lambda a: -(a.sin() ** 2).sum(), x))
        print(torch.autograd.functional.hessian(lambda a: (a * a * a).sum() - a.exp().sum(), x))
        print(torch.autograd.functional.hvp(lambda a: a.cos().sum(), x, torch.tensor([1.0, 0.0, -2.0])))
        """)

    def test_values_are_torchs_hessian(self, tmp_path):
        """The JSON's hessians, blocks per pair of inputs, are torch's in float64, and follow the document schema."""
        import jsonschema

        from generator.render.json import document_schema

        data = agrees(tmp_path, """\
        import torch
        x = torch.tensor([0.5, 1.5])
        y = torch.tensor([0.25, -0.75])
        print(torch.autograd.functional.hessian(lambda a, b: (a.sin() * b.exp()).sum(), (x, y)))
        """)
        (call,) = data["functionals"]
        x, y = torch.tensor([0.5, 1.5], dtype=torch.float64), torch.tensor([0.25, -0.75], dtype=torch.float64)
        h = torch.autograd.functional.hessian(lambda a, b: (a.sin() * b.exp()).sum(), (x, y))
        for i, p in enumerate("ab"):
            for j, q in enumerate("ab"):
                assert sum(call["hessians"][p][q], []) == pytest.approx(h[i][j].flatten().tolist(), rel=1e-12, abs=1e-15)
        assert call["kind"] == "hessian" and len(call["returned"]) == 4
        jsonschema.Draft202012Validator(document_schema()).validate(data)


class TestHvp:
    def test_hvp_returns_output_and_hv(self, tmp_path):
        """hvp(f, x, v) prints (f(x), H v) as torch does, for one input, a tuple of inputs, and a one-element input."""
        agrees(tmp_path, """\
        import torch
        from torch.autograd.functional import hvp
        x = torch.tensor([0.5, -1.0, 2.0])
        y = torch.tensor([1.5, 0.25, -0.5])
        v = torch.tensor([0.1, 1.0, -2.0])
        print(hvp(lambda a: (a.exp() * a.sin()).sum(), x, v))
        print(hvp(lambda a, b: (a * a * b).sum() + b.pow(3).sum(), (x, y), (v, x)))
        print(hvp(lambda a: a.pow(3).sum(), torch.tensor([2.0])))
        """)

    def test_hvp_float64(self, tmp_path):
        """hvp in float64 prints torch's H v to its last printed digit."""
        agrees(tmp_path, """\
        import torch
        x = torch.tensor([0.3, 1.7], dtype=torch.float64)
        v = torch.tensor([1.0, -0.5], dtype=torch.float64)
        print(torch.autograd.functional.hvp(lambda a: (a[0] ** 2 * a[1].sin()).exp(), x, v))
        """)


class TestDocument:
    def test_markdown_explains_gradient_then_second_derivatives(self, tmp_path):
        """The Markdown shows the gradient's formulas, then H's formulas and numbers; hvp shows H v; zh has it too."""
        path = write(tmp_path, INDEXED)
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md,json")[0] == 0
        md = (tmp_path / "o/example.md").read_text()
        assert "gradient" in md and "Hessian" in md
        assert r"3 \cdot x_{1}^{2}" in md  # the gradient's second entry
        assert inert(r"\begin{bmatrix} 2 & 0 \\ 0 & 6 \cdot x_{1} \end{bmatrix} = \begin{bmatrix} 2 & 0 \\ 0 & 12") in md
        path = write(tmp_path, POW_REDUCER)
        assert run("build", str(path), "--out", str(tmp_path / "p"), "--format", "md")[0] == 0
        assert "H v" in (tmp_path / "p/example.md").read_text()
        zh = tmp_path / "zh.py"
        zh.write_text("# derive: lang=zh\n" + path.read_text())
        assert run("build", str(zh), "--out", str(tmp_path / "z"), "--format", "md")[0] == 0
        assert "黑塞矩阵" in (tmp_path / "z/zh.md").read_text()


class TestRefused:
    @pytest.mark.parametrize("line, message", [
        ("print(torch.autograd.functional.hessian(lambda a: a * 2, x))",
         "hessian of 'f', whose output has 2 elements: torch raises 'The Tensor returned by the function given to"
         " hessian should contain a single element'"),
        ("print(torch.autograd.functional.hvp(lambda a: a * 2, x, x))",
         "hvp of 'f', whose output has 2 elements: torch raises 'The Tensor returned by the function given to hvp"
         " should contain a single element'"),
        ("print(torch.autograd.functional.hvp(lambda a: a.sum(), x))",
         "hvp without v at other than one input of one element: torch raises 'The vector v can only be None"),
        ("print(torch.autograd.functional.hvp(lambda a: a.sum(), x, torch.ones(3)))",
         "hvp with v of shape [3] for the input 'x' of shape [2]: torch raises RuntimeError"),
        ("print(torch.autograd.functional.hessian(lambda a: a.sum(), x, create_graph=True))",
         "hessian(create_graph=True) (allowed: not supported yet; create_graph=False)"),
        ("print(torch.autograd.functional.hessian(lambda a: a.sum(), x, outer_jacobian_strategy='forward-mode'))",
         "hessian(outer_jacobian_strategy='forward-mode') (allowed: outer_jacobian_strategy='reverse-mode')"),
        ("print(torch.autograd.functional.hessian(lambda a: a.sum(), torch.ones(17)))",
         "hessian of 'f', whose inputs have 17 elements in all (allowed: not supported yet; at most 16"),
        ("H = torch.autograd.functional.hessian(lambda a: a.sum(), x); print(H + 1)",
         "using what hessian(...) returns other than printing it (allowed: not supported yet; print(H))"),
    ])
    def test_refused_with_a_located_message(self, tmp_path, line, message):
        """What torch raises on, or what is not read yet, is refused at its line, naming what is allowed."""
        path = write(tmp_path, f"import torch\nw = torch.tensor([1.0, 2.0], requires_grad=True)\n"
                               f"x = torch.tensor([1.0, 2.0])\n{line}\n")
        assert_one_problem(path, 4, message)

    def test_kept_then_updated_is_refused(self, tmp_path):
        """H kept in a name, then its input updated in place: printing H later is refused, as is a call at the update."""
        path = write(tmp_path, """\
        import torch
        x = torch.tensor([1.0, 2.0], requires_grad=True)
        H = torch.autograd.functional.hessian(lambda a: (a ** 3).sum(), x)
        (x ** 2).sum().backward()
        with torch.no_grad():
            x -= 0.25 * x.grad
        print(H)
        """)
        assert_one_problem(path, 7, "printing 'H', what hessian(...) returned before 'x' was updated in place")
        path.write_text(path.read_text().replace("print(H)", "print(torch.autograd.functional.hessian(lambda a: (a * x).sum(), w))")
                        .replace("x = torch", "w = torch.ones(2); x = torch"))
        assert_one_problem(path, 7, "'f' uses 'x' after an in-place update (allowed: not supported yet")

    def test_torch_raises_on_the_refused_ones(self):
        """The oracle: torch itself raises, with the text the refusals quote."""
        x = torch.tensor([1.0, 2.0])
        with pytest.raises(RuntimeError, match="given to hessian should contain a single element"):
            torch.autograd.functional.hessian(lambda a: a * 2, x)
        with pytest.raises(RuntimeError, match="given to hvp should contain a single element"):
            torch.autograd.functional.hvp(lambda a: a * 2, x, x)
        with pytest.raises(RuntimeError, match="The vector v can only be None"):
            torch.autograd.functional.hvp(lambda a: a.sum(), x)
        with pytest.raises(RuntimeError, match="v has invalid size"):
            torch.autograd.functional.hvp(lambda a: a.sum(), x, torch.ones(3))
