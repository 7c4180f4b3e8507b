"""torch.autograd.functional.jacobian, vjp and jvp of a helper or lambda: printed, explained and checked as torch does."""

from __future__ import annotations

import json

import pytest
import torch

from generator.pipeline.build import graph_of
from tests.test_python import assert_one_problem, checked_json, run, torch_run, write

EXP_ADDER = """\
import torch

def exp_adder(x, y):
    return 2 * x.exp() + 3 * y

inputs = (torch.tensor([0.5, 1.5]), torch.tensor([0.25, 0.75]))
print(inputs)
print(torch.autograd.functional.jacobian(exp_adder, inputs))
"""


def agrees(tmp_path, code: str) -> dict:
    """Assert that derive check passes and that the JSON's printed text and grads are torch's; return the JSON."""
    data = checked_json(tmp_path, code)
    printed, grads = torch_run(code)
    assert data["printed"] == printed
    assert data["grads"] == grads
    return data


class TestJacobian:
    def test_tuple_of_inputs_prints_a_tuple_of_jacobians(self, tmp_path):
        """jacobian of a two-input helper at a tuple prints torch's tuple of J's, and the tuple of inputs too."""
        agrees(tmp_path, EXP_ADDER)

    def test_values_are_torchs_jacobian(self, tmp_path):
        """The JSON's J of each input is torch.autograd.functional.jacobian's, in float64."""
        data = agrees(tmp_path, EXP_ADDER)
        (call,) = data["functionals"]
        x, y = torch.tensor([0.5, 1.5], dtype=torch.float64), torch.tensor([0.25, 0.75], dtype=torch.float64)
        jx, jy = torch.autograd.functional.jacobian(lambda a, b: 2 * a.exp() + 3 * b, (x, y))
        assert sum(call["jacobians"]["x"], []) == pytest.approx(jx.flatten().tolist(), rel=1e-12)
        assert sum(call["jacobians"]["y"], []) == pytest.approx(jy.flatten().tolist(), rel=1e-12)
        assert call["inputs"] == {"x": "inputs_0", "y": "inputs_1"}

    def test_one_input_reshapes_to_output_then_input(self, tmp_path):
        """A 2x2 input and a 2-element output: J prints as 2x2x2, imported by name from torch.autograd.functional."""
        agrees(tmp_path, """\
        import torch
        from torch.autograd.functional import jacobian

        def exp_reducer(x):
            return x.exp().sum(dim=1)
        inputs = torch.tensor([[0.25, 0.5], [0.75, 1.0]])
        print(jacobian(exp_reducer, inputs))
        """)

    def test_create_graph_prints_view_backward_where_j_depends_on_inputs(self, tmp_path):
        """create_graph=True: the J that depends on the inputs prints grad_fn=<ViewBackward0>, the constant one none."""
        agrees(tmp_path, """\
        import torch
        from torch.autograd.functional import jacobian as jac
        f = lambda x, y: 2 * x.exp() + 3 * y
        x = torch.tensor([0.5, 1.5])
        y = torch.tensor([0.25, 0.75])
        print(jac(f, (x, y), create_graph=True))
        print(jac(lambda a: a * 3, x, create_graph=True))
        """)

    def test_unused_input_gives_zeros(self, tmp_path):
        """An input the output does not depend on gets a J of zeros, as torch's strict=False gives."""
        agrees(tmp_path, """\
        import torch
        x = torch.tensor([1.0, 2.0])
        y = torch.tensor([3.0])
        print(torch.autograd.functional.jacobian(lambda a, b: a * a, (x, y), vectorize=True))
        """)

    def test_float32_rounding_is_torchs_row_by_row(self, tmp_path):
        """Numbers whose float32 rounding differs from the exact ones print as torch's vjps round them."""
        agrees(tmp_path, """\
        import torch
        x = torch.tensor([0.1, 0.7, 3.3])
        print(torch.autograd.functional.jacobian(lambda a: (a.exp() * a.sin()).sum() / 3, x))
        """)

    def test_closure_over_leaves_is_a_constant(self, tmp_path):
        """f may use the example's leaves: constants to J, a grad_fn with create_graph only where one requires grad."""
        data = agrees(tmp_path, """\
        import torch
        x = torch.tensor([0.1, 0.7, 3.3])
        m = torch.tensor([[0.3, 1.1, -0.7], [2.0, 0.1, 0.9], [0.33, 0.5, -1.25]])
        w = torch.tensor([2.0, -1.0, 0.5], requires_grad=True)
        print(torch.autograd.functional.jacobian(lambda a: a @ m, x, create_graph=True))
        print(torch.autograd.functional.jacobian(lambda a: a @ m * w, x, create_graph=True))
        print(w.grad)
        """)
        assert sum(data["functionals"][0]["jacobians"]["a"], []) == pytest.approx(
            [0.3, 2.0, 0.33, 1.1, 0.1, 0.5, -0.7, 0.9, -1.25], rel=1e-12)  # J of a @ m is mᵀ

    def test_inputs_do_not_change(self, tmp_path):
        """A leaf that requires grad, given to jacobian, keeps its .grad None: torch differentiates a copy."""
        agrees(tmp_path, """\
        import torch
        w = torch.tensor([1.0, -2.0], requires_grad=True)
        print(torch.autograd.functional.jacobian(lambda a: a ** 2, w))
        print(w.grad)
        """)


class TestVjpJvp:
    def test_vjp_returns_output_and_jtv(self, tmp_path):
        """vjp(f, x, v) prints (f(x), Jᵀv) as torch does; with a tuple of inputs, a tuple of Jᵀv's."""
        agrees(tmp_path, """\
        import torch
        from torch.autograd.functional import vjp
        def f(x, y):
            return x * y + x.exp()
        x = torch.tensor([0.5, -1.0, 2.0])
        y = torch.tensor([1.5, 0.25, -0.5])
        v = torch.tensor([0.1, 1.0, 0.0001])
        print(vjp(lambda a: a * 2 * 2 * 2, x, v=v))
        print(vjp(f, (x, y), v))
        print(vjp(lambda a: a.exp().sum(), x))
        """)

    def test_vjp_of_the_intro_doubling(self, tmp_path):
        """The intro tutorial's vjp of do_some_doubling (its while loop doubles 10 times at these inputs), as torch prints it."""
        data = agrees(tmp_path, """\
        import torch
        def do_some_doubling(x):
            return x * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2
        inputs = torch.tensor([-0.25, 1.25, 0.5])
        my_gradients = torch.tensor([0.1, 1.0, 0.0001])
        print(torch.autograd.functional.vjp(do_some_doubling, inputs, v=my_gradients))
        """)
        (call,) = data["functionals"]
        assert call["returned"] == [pytest.approx([102.4, 1024.0, 0.1024], rel=1e-12)]

    def test_jvp_returns_output_and_ju(self, tmp_path):
        """jvp(f, inputs, v) prints (f(x), J u) as torch does."""
        agrees(tmp_path, """\
        import torch
        from torch.autograd.functional import jvp
        x = torch.tensor([0.5, 1.5])
        y = torch.tensor([0.25, 0.75])
        u = torch.tensor([1.0, 2.0])
        w = torch.tensor([1.0, 1.0])
        print(jvp(lambda a, b: 2 * a.exp() + 3 * b, (x, y), (u, w)))
        print(jvp(lambda a: a.exp(), torch.tensor(1.0)))
        """)

    def test_document_explains_with_numbers(self, tmp_path):
        """The Markdown says what J's rows and columns are, shows J's numbers, and Jᵀv for vjp; zh has it too."""
        path = write(tmp_path, EXP_ADDER.replace("print(torch.autograd.functional.jacobian(exp_adder, inputs))",
                                                 "print(torch.autograd.functional.vjp(exp_adder, inputs, torch.tensor([1.0, 2.0])))"))
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md,json")[0] == 0
        md = (tmp_path / "o/example.md").read_text()
        assert "a row per element of `exp_adder` (2)" in md
        assert r"2 \cdot e^{x_{0}}" in md and "3.29744" in md and "8.96338" in md
        assert r"J^{\mathsf T} v" in md and "17.9268" in md  # 2 e^1.5 * 2, the second entry of Jᵀv for x
        zh = tmp_path / "zh.py"
        zh.write_text("# derive: lang=zh\n" + path.read_text())
        assert run("build", str(zh), "--out", str(tmp_path / "z"), "--format", "md")[0] == 0
        assert "向量-雅可比积" in (tmp_path / "z/zh.md").read_text()


class TestRefused:
    @pytest.mark.parametrize("line, message", [
        ("print(torch.autograd.functional.jacobian(lambda a: a * w2, x))",
         "uses 'w2', a computed tensor from outside it (allowed: jacobian of a function of its own parameters (a)"),
        ("print(torch.autograd.functional.vjp(lambda a: a * 2, x))",
         "vjp without v of 'f', whose output has 2 elements: torch raises RuntimeError"),
        ("print(torch.autograd.functional.vjp(lambda a: a * 2, x, torch.tensor([1.0, 2.0, 3.0])))",
         "vjp with v of shape [3] for an output of shape [2]: torch raises RuntimeError"),
        ("print(torch.autograd.functional.jacobian(lambda a, b: a * b, x))",
         "jacobian of 'f', which takes 2 tensors, at 1: torch raises TypeError"),
        ("print(torch.autograd.functional.jacobian(lambda a: a * 2, x, strict=True))",
         "jacobian(strict=True) (allowed: not supported yet; strict=False)"),
        ("print(torch.autograd.functional.vhp(lambda a: a.sum(), x, x))",
         "torch.autograd.functional.vhp (jacobian, vjp, jvp, hessian and hvp are read) is not supported yet"),
        ("print(torch.autograd.functional.jacobian(lambda a: a * 2, torch.ones(65)))",
         "jacobian of 'f', where 'a' has 65 elements (allowed: not supported yet; at most 64 elements per tensor"),
        ("J = torch.autograd.functional.jacobian(lambda a: a * 2, x); y = J * 2",
         "using what jacobian(...) returns other than printing it (allowed: not supported yet; print(J))"),
    ])
    def test_refused_with_a_located_message(self, tmp_path, line, message):
        """What torch raises on, or what is not read yet, is refused at its line, naming what is allowed."""
        path = write(tmp_path, f"import torch\nw = torch.tensor([1.0, 2.0], requires_grad=True); w2 = w * 2\n"
                               f"x = torch.tensor([1.0, 2.0])\n{line}\n")
        assert_one_problem(path, 4, message)

    def test_torch_raises_on_the_refused_ones(self):
        """The oracle: torch itself raises where the reader refuses for torch's reason."""
        x = torch.tensor([1.0, 2.0])
        with pytest.raises(RuntimeError):
            torch.autograd.functional.vjp(lambda a: a * 2, x)
        with pytest.raises(RuntimeError):
            torch.autograd.functional.vjp(lambda a: a * 2, x, torch.tensor([1.0, 2.0, 3.0]))
        with pytest.raises(TypeError):
            torch.autograd.functional.jacobian(lambda a, b: a * b, x)

    def test_script_runs_only_whitelisted_functional_calls(self):
        """The document's code may call jacobian on a lambda, but a lambda body with a call of anything else is refused."""
        from generator.pipeline.script import Refused, vet

        vet("import torch\nx = torch.tensor([1.])\nprint(torch.autograd.functional.jacobian(lambda a: a.exp(), x))\n")
        with pytest.raises(Refused):
            vet("import torch\nx = torch.tensor([1.])\n"
                "print(torch.autograd.functional.jacobian(lambda a: __import__('os'), x))\n")
        with pytest.raises(Refused):
            vet("import torch\nx = torch.tensor([1.])\nprint(torch.autograd.functional.jacobian(lambda a: y, x))\n")


DOUBLING = """\
import torch

def do_some_doubling(x):
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    return y

inputs = torch.tensor([-0.25, 1.25, 0.5]{dtype})
my_gradients = torch.tensor([0.1, 1.0, 0.0001]{dtype})
print(torch.autograd.functional.{call})
"""


def doublings(x: torch.Tensor) -> int:
    """Count the while loop's runs in do_some_doubling at x, as torch runs it."""
    y, runs = x * 2, 0
    while y.data.norm() < 1000:
        y, runs = y * 2, runs + 1
    return runs


class TestSeveralStatements:
    @pytest.mark.parametrize("call", ["vjp(do_some_doubling, inputs, v=my_gradients)",
                                      "jacobian(do_some_doubling, inputs)",
                                      "jvp(do_some_doubling, inputs, my_gradients)"])
    @pytest.mark.parametrize("dtype", ["", ", dtype=torch.float64"])
    def test_while_on_data_norm_is_decided_at_the_inputs(self, tmp_path, call, dtype):
        """A helper whose while loop reads y.data.norm(): vjp, jacobian and jvp print what torch prints, float32 and 64."""
        data = agrees(tmp_path, DOUBLING.format(call=call, dtype=dtype))
        (found,) = data["functionals"]
        x = torch.tensor([-0.25, 1.25, 0.5], dtype=torch.float64)
        assert found["output"] == pytest.approx((x * 2 ** (doublings(x) + 1)).tolist(), rel=1e-12)

    def test_document_says_how_often_the_loop_ran(self, tmp_path):
        """The Markdown says the loop inside f ran as often as it does in torch, and writes f out as those steps."""
        path = write(tmp_path, DOUBLING.format(call="vjp(do_some_doubling, inputs, v=my_gradients)", dtype=""))
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md")[0] == 0
        md = (tmp_path / "o/example.md").read_text()
        runs = doublings(torch.tensor([-0.25, 1.25, 0.5]))
        assert f"`while y.data.norm() < 1000` (line 5 of the file) runs {runs} times" in md
        assert f"    y{runs} = y{runs - 1} * 2\n    return y{runs} * 2\n" in md
        assert r"J^{\mathsf T} v = " in md and "102.4 & 1024 & 0.1024" in md

    def test_if_on_tensor_values_takes_the_branch_torch_takes(self, tmp_path):
        """An if on the values inside f goes one way at one input and the other way at another, as in torch."""
        data = agrees(tmp_path, """\
        import torch
        def f(a, b):
            c = a * b
            if c.sum() > 0:
                c = c.exp()
            else:
                c = c.sin() * b
            return c + a
        x = torch.tensor([0.5, 1.5], dtype=torch.float64)
        y = torch.tensor([0.25, -0.75], dtype=torch.float64)
        z = torch.tensor([-0.25, 0.75], dtype=torch.float64)
        print(torch.autograd.functional.jacobian(f, (x, y)))
        print(torch.autograd.functional.jacobian(f, (x, z)))
        """)
        first, second = data["functionals"]
        assert first["jacobians"] != second["jacobians"]

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_for_range_loop_and_a_reused_step_round_as_torch(self, tmp_path, dtype):
        """A for range loop and a step used twice inside f give torch's numbers, rounded as torch rounds them."""
        agrees(tmp_path, f"""\
        import torch
        w = torch.tensor([0.3, -1.1, 0.7], dtype=torch.{dtype})
        def g(x):
            h = x
            for i in range(3):
                h = (h * w).tanh() + x
            s = h.sin()
            return s * s + h.detach() * x
        x = torch.tensor([0.1, 0.7, 3.3], dtype=torch.{dtype})
        u = torch.tensor([1.0, -2.0, 0.5], dtype=torch.{dtype})
        print(torch.autograd.functional.vjp(g, x, u))
        print(torch.autograd.functional.jvp(g, x, u))
        print(torch.autograd.functional.jacobian(g, x))
        """)

    def test_helper_still_runs_at_the_top(self, tmp_path):
        """The same helper called at the top of the example and given to vjp: both as torch does them."""
        agrees(tmp_path, DOUBLING.format(call="vjp(do_some_doubling, inputs, v=my_gradients)", dtype="")
               + "x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\nz = do_some_doubling(x)\n"
                 "z.sum().backward()\nprint(z, x.grad)\n")


    def test_helpers_inside_and_a_tensor_made_there(self, tmp_path):
        """f calling another helper of several statements, and making a constant tensor, as torch runs it."""
        agrees(tmp_path, """\
        import torch
        w = torch.tensor([0.5, -1.5])
        def inner(a):
            b = a * w
            for i in range(2):
                b = b + a.exp()
            return b
        def outer(x, y):
            c = torch.tensor([2.0, 3.0])
            z0 = inner(x)
            z = z0 * c
            if z.norm() > 5:
                z = z * y
            return z.sum()
        x = torch.tensor([0.25, 0.75])
        y = torch.tensor([1.0, -1.0])
        print(torch.autograd.functional.vjp(outer, (x, y)))
        print(torch.autograd.functional.jacobian(outer, (x, y)))
        """)


class TestSeveralStatementsRefused:
    def test_return_refused_at_its_line(self, tmp_path):
        """A return torch cannot compute is refused at the return's line, once, however often f is given."""
        path = write(tmp_path, "import torch\ndef f(x):\n    y = x * 2\n    return y * q\n"
                               "x = torch.tensor([1.0, 2.0])\nprint(torch.autograd.functional.jacobian(f, x))\n"
                               "print(torch.autograd.functional.vjp(f, x, x))\n")
        assert_one_problem(path, 4, "unknown name 'q'")

    @pytest.mark.parametrize("body, line, message", [
        ("    y.sum().backward()\n", 5, "'y.sum().backward()' inside 'f', the function given to vjp"),
        ("    w.data *= 2\n", 5, "an in-place update of 'w.data' inside a function of several statements"),
        ("    k = torch.ones(2, requires_grad=True)\n", 7, "'f' makes 'k', a tensor that requires grad, inside it"),
        ("    print(torch.autograd.functional.vjp(lambda a: a, y, y))\n", 5, "inside 'f', the function given to vjp"),
        ("    y = x\n", 7, "'f' returns its parameter 'x' unchanged (allowed: not supported yet"),
    ])
    def test_refused_at_the_line_inside_f(self, tmp_path, body, line, message):
        """What f does besides computing from its inputs is refused, at its line, naming what is allowed."""
        path = write(tmp_path, "import torch\nw = torch.tensor([1.0, 2.0])\ndef f(x):\n    y = x * 2\n" + body
                     + "    return y\nprint(torch.autograd.functional.vjp(f, torch.tensor([1.0, 2.0]), w))\n")
        assert_one_problem(path, line, message)

    def test_print_inside_f_is_refused_where_torch_prints_once(self, tmp_path):
        """torch calls f once per vjp, jacobian and jvp, so a print inside f shows once: refused, saying so."""
        code = ("import torch\ndef f(x):\n    y = x * 2\n    print(y)\n    return y\nx = torch.tensor([1.0, 2.0])\n"
                "print(torch.autograd.functional.{}(f, x, x))\n")
        for kind in ("vjp", "jvp"):
            printed, _ = torch_run(code.format(kind))
            assert printed.count("tensor([2., 4.], grad_fn=<MulBackward0>)") == 1  # f's print, once
            assert_one_problem(write(tmp_path, code.format(kind)), 4, "'print(y)', which torch runs once when it calls"
                               f" the function, inside 'f', the function given to {kind}")

    def test_script_runs_a_def_of_steps_but_nothing_else(self):
        """The document's code may define f as steps and a return for jacobian, but not with other statements."""
        from generator.pipeline.script import Refused, vet

        head = "import torch\nx = torch.tensor([1.])\n"
        vet(head + "def f(a):\n    b = a * 2\n    return b.exp()\nprint(torch.autograd.functional.jacobian(f, x))\n")
        with pytest.raises(Refused):
            vet(head + "def f(a):\n    b = a * 2\n    return __import__('os')\n"
                "print(torch.autograd.functional.jacobian(f, x))\n")
        with pytest.raises(Refused):
            vet(head + "def f(a):\n    b = a * 2\n    print(b)\n    return b\nprint(torch.autograd.functional.jacobian(f, x))\n")
        with pytest.raises(Refused):
            vet(head + "print(torch.autograd.functional.jacobian(g, x))\n")
