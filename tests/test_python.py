"""A Python file of torch code is read, never run, into the same explanation as a YAML spec (issue 12)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import textwrap
from pathlib import Path

import pytest
import torch

from generator.cli import main
from generator.errors import SpecError
from generator.pipeline.build import compare_spec, derive_spec, graph_of
from generator.spec.load import load

ROOT = Path(__file__).resolve().parent.parent
SEED_1 = (ROOT / "derivations/01_scalar_mean_torch.py").read_text(encoding="utf-8")


def write(tmp_path: Path, code: str, name: str = "example.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(code), encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def torch_run(code: str, *, float64: bool = False) -> tuple[str, dict]:
    """Run trusted test code in torch: what it prints, and its leaves' final grads (computed in float64 if asked)."""
    out = io.StringIO()
    scope: dict = {}
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if float64 else default)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(textwrap.dedent(code), "<oracle>", "exec"), scope)  # noqa: S102 - the test's own code, the oracle
    finally:
        torch.set_default_dtype(default)
    grads = {k: None if v.grad is None else v.grad.tolist() for k, v in scope.items()
             if isinstance(v, torch.Tensor) and v.is_leaf and v.requires_grad}
    return out.getvalue(), grads


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        graph_of(path)
    return caught.value.lines()


def checked_json(tmp_path: Path, code: str) -> dict:
    """Write the code, assert that derive check agrees with torch on it, and return its JSON document."""
    path = write(tmp_path, code)
    assert run("check", str(path)) == (0, "1 agree with torch, 0 failed\n", "")
    assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "json")[0] == 0
    return json.loads((tmp_path / "o/example.json").read_text())


def assert_one_problem(path: Path, line: int, message: str) -> None:
    """Assert that reading the file finds exactly one problem, at that line, whose text holds message."""
    found = problems(path)
    assert len(found) == 1 and found[0].startswith(f"{path}:{line}: ") and message in found[0], found


class TestSeed:
    def test_pasted_seed_gives_the_yaml_document(self, tmp_path):
        """The seed's first example pasted as a .py file builds the same Markdown and JSON as its YAML spec."""
        py = write(tmp_path, SEED_1, "01_scalar_mean.py")
        yaml_dir = tmp_path / "yaml"
        yaml_dir.mkdir()
        (yaml_dir / "01_scalar_mean.yaml").write_bytes((ROOT / "derivations/01_scalar_mean.yaml").read_bytes())
        assert run("build", str(py), "--out", str(tmp_path / "a"), "--format", "md,json")[0] == 0
        assert run("build", str(yaml_dir), "--out", str(tmp_path / "b"), "--format", "md,json")[0] == 0
        for ext in ("md", "json"):
            assert (tmp_path / "a" / f"01_scalar_mean.{ext}").read_text() == (tmp_path / "b" / f"01_scalar_mean.{ext}").read_text()

    def test_pasted_seed_agrees_with_torch(self, tmp_path):
        """derive check passes on the pasted seed, and its JSON's grads and printed text are torch's."""
        py = write(tmp_path, SEED_1)
        assert run("check", str(py)) == (0, "1 agree with torch, 0 failed\n", "")
        run("build", str(py), "--out", str(tmp_path / "o"), "--format", "json")
        data = json.loads((tmp_path / "o/example.json").read_text())
        printed, grads = torch_run(SEED_1)
        assert data["printed"] == printed
        assert data["grads"] == grads


class TestStatements:
    def test_rebinding_makes_new_nodes(self, tmp_path):
        """c = c + 1 binds a new node c2, and the grads and prints are torch's (micrograd style)."""
        code = """\
        import torch
        a = torch.tensor(2.0, requires_grad=True)
        b = torch.tensor(-3.0, requires_grad=True)
        c = a * b
        c = c + a
        c = c * c
        c.backward()
        print(a.grad, b.grad)
        """
        spec = load(write(tmp_path, code))
        assert [s.name for s in spec.steps] == ["c", "c2", "c3"]
        run("build", str(write(tmp_path, code)), "--out", str(tmp_path / "o"))
        assert ("The code binds `c` 3 times; each binding is a new tensor of the graph, so this page names them"
                " `c`, `c2` and `c3`.") in (tmp_path / "o/example.md").read_text()
        printed, grads = torch_run(code)
        result = derive_spec(write(tmp_path, code))
        assert {k: float(v[0]) for k, v in result.grads.items()} == grads
        assert compare_spec(write(tmp_path, code)) == []

    def test_loop_and_helpers_are_unrolled(self, tmp_path):
        """A for loop over range(k) and helper functions and lambdas become plain steps, as torch computes them."""
        code = """\
        import torch
        def f(u, w):
            return u * w + 1
        g = lambda t: t.tanh()
        x = torch.tensor([0.5, -1.0], requires_grad=True)
        h = x
        for i in range(3):
            h = g(f(h, i + 1))
        out = h.sum()
        out.backward()
        print(x.grad)
        """
        path = write(tmp_path, code)
        assert [s.expr for s in load(path).steps] == [
            "(x * (0 + 1) + 1).tanh()", "(h * (1 + 1) + 1).tanh()", "(h2 * (2 + 1) + 1).tanh()", "h3.sum()"]
        run("build", str(path), "--out", str(tmp_path / "o"), "--format", "json")
        data = json.loads((tmp_path / "o/example.json").read_text())
        assert data["printed"] == torch_run(code)[0]  # float32, as written
        assert data["grads"]["x"] == pytest.approx(torch_run(code, float64=True)[1]["x"], rel=1e-12)  # the exact grads
        assert compare_spec(path) == []

    def test_prints_are_torch_s_byte_for_byte(self, tmp_path):
        """Values, grads, is_leaf, requires_grad, text and f-strings print as torch prints them, in order."""
        code = """\
        import torch
        x = torch.tensor([[1., 2.], [3., 4.]], requires_grad=True)
        w = torch.tensor([0.5, -0.25])
        print(x)
        y = (x * w).sum(dim=1)
        print("y =", y)
        print(x.is_leaf, y.is_leaf, w.requires_grad)
        print(f"before: {x.grad}")
        y.backward(torch.tensor([1.0, 0.1]), retain_graph=True)
        print(f"after one call: {x.grad}")
        y.backward(torch.tensor([1.0, 0.1]))
        print("after two:", x.grad, sep="\\n")
        print(y.grad)
        """
        path = write(tmp_path, code)
        run("build", str(path), "--out", str(tmp_path / "o"), "--format", "json")
        data = json.loads((tmp_path / "o/example.json").read_text())
        assert data["printed"] == torch_run(code)[0]
        flat = lambda rows: [v for row in rows for v in row]  # noqa: E731
        assert flat(data["grads"]["x"]) == pytest.approx(flat(torch_run(code, float64=True)[1]["x"]), rel=1e-12)
        assert run("check", str(path))[0] == 0

    def test_grads_reset_between_calls(self, tmp_path):
        """zero_(), = None and a loop over [w, b] reset grads where torch does; prints and final grads are torch's."""
        code = """\
        import torch
        w = torch.tensor([1.0, -2.0], requires_grad=True)
        b = torch.tensor(0.5, requires_grad=True)
        x = torch.tensor([3.0, 4.0])
        for step in range(3):
            loss = ((w * x).sum() + b) ** 2 * (step + 1)
            loss.backward()
            print(f"step {step}: {w.grad} {b.grad}")
            for p in [w, b]:
                p.grad.zero_()
        w.grad = None
        loss = (w * b).sum()
        loss.backward()
        print(w.grad, b.grad)
        """
        path = write(tmp_path, code)
        run("build", str(path), "--out", str(tmp_path / "o"), "--format", "json,md")
        data = json.loads((tmp_path / "o/example.json").read_text())
        printed, grads = torch_run(code, float64=True)
        assert data["printed"] == torch_run(code)[0]
        assert data["grads"]["w"] == pytest.approx(grads["w"], rel=1e-12)
        assert data["grads"]["b"] == pytest.approx(grads["b"], rel=1e-12)
        assert run("check", str(path))[0] == 0
        assert "`b.grad.zero_()` just before call 4 threw away" in (tmp_path / "o/example.md").read_text()

    def test_zeroing_a_grad_that_is_none_is_refused_as_torch_raises(self, tmp_path):
        """x.grad.zero_() before any backward reaches x: torch raises AttributeError, derive refuses at that line."""
        code = "import torch\nx = torch.ones(2, requires_grad=True)\nx.grad.zero_()\n(x * 2).sum().backward()\n"
        with pytest.raises(AttributeError):
            torch_run(code)
        path = write(tmp_path, code)
        assert problems(path) == [f"{path}:3: x.grad is None here, so torch raises AttributeError: 'NoneType' object"
                                  " has no attribute 'zero_' (allowed: x.grad.zero_() after a backward call that"
                                  " reaches x, or x.grad = None)"]

    def test_no_grad_and_detach_stop_the_gradient(self, tmp_path):
        """torch.no_grad() blocks and .detach() give tensors without grad_fn; grads, prints and the text are torch's."""
        code = """\
        import torch
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * x
        with torch.no_grad():
            z = y * 2
            print(z.requires_grad, z.is_leaf)
        u = y.detach()
        out = (y * u + z).sum()
        out.backward()
        print(x.grad, u.requires_grad)
        """
        path = write(tmp_path, code)
        run("build", str(path), "--out", str(tmp_path / "o"), "--format", "json,md")
        data = json.loads((tmp_path / "o/example.json").read_text())
        assert data["printed"] == torch_run(code)[0]
        assert data["grads"]["x"] == torch_run(code, float64=True)[1]["x"]
        assert run("check", str(path))[0] == 0
        text = (tmp_path / "o/example.md").read_text()
        assert "`z` is computed from tensors that require grad, but inside `with torch.no_grad():`" in text
        assert "`u` holds a `.detach()`ed copy" in text

    def test_retain_grad_keeps_a_computed_tensor_s_grad(self, tmp_path):
        """retain_grad() keeps y.grad (accumulating over calls); without it a non-leaf's .grad prints None, as torch."""
        code = """\
        import torch
        x = torch.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3
        w = y + 1
        y.retain_grad()
        z = (y ** 2 * w).sum()
        print(y.grad)
        z.backward(retain_graph=True)
        print(y.grad, x.grad)
        z.backward()
        print(f"{y.grad} {w.grad}")
        """
        path = write(tmp_path, code)
        run("build", str(path), "--out", str(tmp_path / "o"), "--format", "json,md")
        data = json.loads((tmp_path / "o/example.json").read_text())
        assert data["printed"] == torch_run(code)[0]
        scope: dict = {}
        exec(compile(textwrap.dedent(code).replace("print(", "(lambda *a: a)("), "<oracle>", "exec"), scope)  # noqa: S102
        assert data["retained"] == {"y": scope["y"].grad.tolist()}
        assert run("check", str(path))[0] == 0
        assert "`y.retain_grad()` keeps it, and it accumulates like a leaf's over the 2 calls" in (
            tmp_path / "o/example.md").read_text()

    def test_old_constructor_and_casts_round_as_torch(self, tmp_path):
        """torch.Tensor(...).double() holds the float32 value, widened; .item(), .data and a, b = x, y print as torch."""
        code = """\
        import torch
        b = torch.Tensor([6.8813735870195432]).double()  ; b.requires_grad = True
        w = torch.tensor([0.1]).double()
        w.requires_grad = True
        o = torch.tanh(b * w)
        o.backward()
        bt, wt = b, w
        print(o.data.item(), o.data)
        print('b', bt.grad.item(), 'w', wt.grad.item())
        """
        path = write(tmp_path, code)
        run("build", str(path), "--out", str(tmp_path / "o"), "--format", "json")
        data = json.loads((tmp_path / "o/example.json").read_text())
        scope: dict = {}
        exec(compile(textwrap.dedent(code).replace("print(", "(lambda *a: a)("), "<oracle>", "exec"), scope)  # noqa: S102
        assert data["values"]["b"] == scope["b"].tolist() and data["values"]["w"] == scope["w"].tolist()
        assert data["printed"] == torch_run(code)[0]
        assert run("check", str(path))[0] == 0

    def test_grad_fn_prints_with_its_address_left_out(self, tmp_path):
        """print(t.grad_fn) writes torch's line with the address as 0x..., and check compares everything else."""
        code = "import torch\nx = torch.ones(2, requires_grad=True)\ny = x * 2\nprint(y.grad_fn, x.grad_fn)\ny.sum().backward()\n"
        path = write(tmp_path, code)
        run("build", str(path), "--out", str(tmp_path / "o"), "--format", "json,md")
        printed = json.loads((tmp_path / "o/example.json").read_text())["printed"]
        theirs = torch_run(code)[0]
        assert re.sub(r"0x[0-9a-f]+", "0x...", theirs) == printed == "<MulBackward0 object at 0x...> None\n"
        assert run("check", str(path))[0] == 0
        assert "which changes every run; the block writes it as `0x...`" in (tmp_path / "o/example.md").read_text()

    def test_an_example_without_backward(self, tmp_path):
        """Code that only builds a graph (the tutorials' requires_grad and detach cells) is explained and checked."""
        code = "import torch\nx = torch.tensor([0.5, 1.5], requires_grad=True)\ny = x.detach()\nz = x * 2\nprint(y, z.requires_grad, x.grad)\n"
        path = write(tmp_path, code)
        run("build", str(path), "--out", str(tmp_path / "o"), "--format", "json,md")
        data = json.loads((tmp_path / "o/example.json").read_text())
        assert data["printed"] == torch_run(code)[0] and data["backward"] == []
        assert run("check", str(path))[0] == 0
        assert "no `backward()` call runs here" in (tmp_path / "o/example.md").read_text()

    def test_yaml_code_block(self, tmp_path):
        """A YAML spec's code: block stands in for steps and backward, with its inputs bound first; lines are the file's."""
        spec = tmp_path / "c.yaml"
        spec.write_text("title: t\ninputs:\n  x:\n    value: [1, 2]\n    requires_grad: true\ncode: |\n"
                        "  y = x ** 2\n  y.sum().backward()\n  print(z.grad)\n")
        assert problems(spec) == [f"{spec}:9: 'z' is not a tensor of the example (allowed: x, y)"]
        spec.write_text("title: t\ninputs:\n  x:\n    value: [1, 2]\n    requires_grad: true\ncode: |\n"
                        "  y = x ** 2\n  out = y.sum()\n  out.backward()\n  print(x.grad)\n")
        assert [float(v) for v in derive_spec(spec).grads["x"]] == torch_run(
            "import torch\nx = torch.tensor([1., 2.], requires_grad=True)\n(x ** 2).sum().backward()\n")[1]["x"]


class TestRequiresGradLater:
    CODE = """
        import torch
        x = torch.arange(4.0)
        print(x)
        print(x.requires_grad, x.is_leaf)
        x.requires_grad_(True)
        print(x.grad)
        print(x, x.requires_grad)
        y = 2 * (x * x).sum()
        print(y)
        y.backward()
        print(x.grad)
        """

    def test_prints_before_requires_grad_show_the_tensor_as_it_was(self, tmp_path):
        """d2l's x = arange(4.); print(x); x.requires_grad_(True): each print is torch's, and so is x.grad."""
        path = write(tmp_path, self.CODE)
        assert run("check", str(path)) == (0, "1 agree with torch, 0 failed\n", "")
        run("build", str(path), "--out", str(tmp_path / "o"), "--format", "json,md")
        data = json.loads((tmp_path / "o/example.json").read_text())
        printed, grads = torch_run(self.CODE)
        assert (data["printed"], data["grads"]) == (printed, grads)

    def test_the_document_code_keeps_the_author_s_order(self, tmp_path):
        """The document's code prints x before x.requires_grad_(True) and computes y after, as the author wrote."""
        path = write(tmp_path, self.CODE)
        run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md")
        text = (tmp_path / "o/example.md").read_text()
        code = text[text.index("```python"):]
        order = [code.index(s) for s in ("x = torch.tensor([0., 1., 2., 3.])", "print(x)\n",
                                         "x.requires_grad_(True)", "y = 2 * ", "y.backward()")]
        assert order == sorted(order)

    def test_requires_grad_after_a_computation_keeps_the_earlier_step_without_grad(self, tmp_path):
        """Turning requires_grad on after x was computed with: the earlier step keeps no graph, later ones do, as in torch."""
        code = """
            import torch
            x = torch.ones(2)
            y = x * 2
            x.requires_grad_(True)
            z = (x * y).sum()
            z.backward()
            print(y.requires_grad, z.requires_grad, x.grad)
            """
        printed, grads = torch_run(code)
        document = checked_json(tmp_path, code)
        assert document["printed"] == printed and document["grads"] == grads


class TestComparisons:
    CODE = """
        import torch
        a = torch.tensor([2., 3.], requires_grad=True)
        b = torch.tensor([6., 4.], requires_grad=True)
        x = torch.tensor([[0.1, 0.2, 0.3], [0.7, 1.1, 1e-3]], requires_grad=True)
        print(x.grad == 2 * x)
        Q = 3*a**3 - b**2
        Q.backward(gradient=torch.tensor([1., 1.]))
        print(9*a**2 == a.grad)
        print(-2*b == b.grad, a.grad == 36)
        y = (x * x * 3).sum()
        y.backward()
        print(x.grad == 6 * x)
        print(x.grad == x * 6, x * 3 == x + x + x)
        print(x.grad == x.grad[0])
        print(x.grad == torch.exp(x - x) * 6 * x)
        """

    def test_prints_of_a_equals_b_are_torch_s(self, tmp_path):
        """print(a == b) shows torch's bool tensor: float32 products and sums rounded as torch rounds them, grads, None."""
        code = self.CODE
        data = checked_json(tmp_path, code)
        printed, _ = torch_run(code)
        assert "False" in printed and "True" in printed  # the example tells rounding apart
        assert data["printed"] == printed

    @pytest.mark.parametrize("line, message", [
        ("print(x < x.grad)", "printing the comparison 'x < x.grad' (allowed: a == b, such as x.grad == 4 * x)"),
        ("print(x.grad == torch.ones(3))", "in the printed comparison: "),
        ("print(x.grad == q)", "unknown name 'q'"),
    ])
    def test_comparisons_outside_the_whitelist_are_refused(self, tmp_path, line, message):
        """Another comparison, sides that do not broadcast, or an unknown name: a located refusal."""
        path = write(tmp_path, f"import torch\nx = torch.ones(2, requires_grad=True)\n(x * x).sum().backward()\n{line}\n")
        assert_one_problem(path, 4, message)


class TestOnesLikeGradient:
    @pytest.mark.parametrize("gradient", ["torch.ones_like(y)", "torch.ones(len(y))", "torch.ones(y.shape)",
                                          "torch.ones(y.size())", "gradient=torch.ones_like(y)"])
    def test_a_gradient_of_ones_shaped_after_a_computed_tensor(self, tmp_path, gradient):
        """y.backward(torch.ones_like(y)) and its spellings (d2l, the basics tutorial): torch's grads and prints."""
        code = f"""
            import torch
            x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
            y = x * x * 3
            y.backward({gradient}, retain_graph=True)
            print(x.grad)
            y.backward({gradient})
            print(x.grad)
            """
        data = checked_json(tmp_path, code)
        assert (data["printed"], data["grads"]) == torch_run(code)

    def test_len_of_a_0_d_tensor_is_refused(self, tmp_path):
        """torch.ones(len(y)) of a 0-d y raises TypeError in torch: a located refusal here."""
        path = write(tmp_path, "import torch\nx = torch.ones(2, requires_grad=True)\ny = x.sum()\ny.backward(torch.ones(len(y)))\n")
        assert problems(path) == [f"{path}:4: len(y) of a 0-d tensor: torch raises TypeError (allowed: torch.ones_like(y))"]


class TestPrintedText:
    def test_newlines_in_printed_text_print_as_in_torch(self, tmp_path):
        """The basics tutorial's print(f"\\nSecond call\\n{inp.grad}"): the same lines, and a PDF that compiles."""
        code = """
            import torch
            inp = torch.eye(2, 3, requires_grad=True)
            out = (inp + 1).pow(2).t()
            out.backward(torch.ones_like(out), retain_graph=True)
            print(f"First call\\n{inp.grad}")
            out.backward(torch.ones_like(out))
            print("\\nSecond call", inp.grad, sep="\\n")
            """
        path = write(tmp_path, code)
        assert run("check", str(path)) == (0, "1 agree with torch, 0 failed\n", "")
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "json,pdf")[0] == 0
        assert json.loads((tmp_path / "o/example.json").read_text())["printed"] == torch_run(code)[0]


class TestLegacyApi:
    @pytest.mark.parametrize("code", [
        """
        import torch
        from torch.autograd import Variable
        tensor = torch.FloatTensor([[1, 2], [3, 4]])
        variable = Variable(tensor, requires_grad=True)
        print(tensor, variable)
        out = torch.mean(variable * variable)
        out.backward()
        print(variable.grad, variable.data)
        """,
        """
        import torch
        from torch.autograd import Variable as V
        w = V(torch.DoubleTensor([0.5, -1]), requires_grad=True)
        x = V(torch.DoubleTensor([3, 1]))
        y = (w * x).sum()
        y.backward()
        print(w.grad, x.grad, y)
        """,
    ], ids=["morvan", "double"])
    def test_variable_and_typed_constructors_as_torch_makes_them(self, tmp_path, code):
        """Variable(t, requires_grad=True), FloatTensor and DoubleTensor (pre-0.4 tutorials): torch's prints and grads."""
        data = checked_json(tmp_path, code)
        assert (data["printed"], data["grads"]) == torch_run(code)


class TestNames:
    def test_a_name_ending_in_a_digit_is_numbered_after_an_underscore(self, tmp_path):
        """The second c1 is c1_2 (c12 would read as c-twelve); the second c is still c2."""
        path = write(tmp_path, """
            import torch
            x = torch.ones(2, requires_grad=True)
            c1 = x * 2
            c1 = c1 + 1
            c = x * 3
            c = c + 1
            (c1 + c).sum().backward()
            """)
        names = [n.name for n in graph_of(path).nodes]
        assert {"c1", "c1_2", "c", "c2"} <= set(names) and "c12" not in names


class TestReshape:
    @pytest.mark.parametrize("line", ["y = x.T.view(-1)", "y = (x.t() * 2).reshape(3, 2)"])
    def test_view_or_reshape_through_a_transpose_is_refused(self, tmp_path, line):
        """Behind a transpose torch's strides decide (view raises, reshape copies): a located refusal, not a guess."""
        path = write(tmp_path, f"import torch\nx = torch.ones(2, 3, requires_grad=True)\n{line}\n")
        assert_one_problem(path, 3, "step 'y': reshape() of a tensor computed through a transpose"
                           if "reshape" in line else "step 'y': view() of a tensor computed through a transpose")


class TestShapes:
    def test_shapes_print_as_torch_size(self, tmp_path):
        """print(y.shape), y.size() and f-strings of them (loeber's tutorial prints y.shape): torch.Size([...])."""
        code = """
            import torch
            x = torch.ones(2, 3, requires_grad=True)
            y = x.sum()
            print(x.shape, y.shape, x.size())
            print(f"{x.shape} and {y.size()}")
            """
        assert checked_json(tmp_path, code)["printed"] == torch_run(code)[0]


class TestNumberFormats:
    CODE = """
        import torch
        dtype = torch.float
        device = torch.device("cpu")
        w = torch.tensor(1.0, device=device, dtype=dtype, requires_grad=True)
        x = torch.tensor([1.0, 2.0, 3.0], device="cpu")
        loss = ((w * x - 2 * x) ** 2).mean()
        print(f"loss = {loss.item():.8f}, {loss:.3e} {loss:10.2f}|{loss:<10.2f}|{loss:+.1%}")
        loss.backward()
        print(f"w.grad = {w.grad:.3f} {w.grad.item():.4f} {w.grad.item()}")
        """

    def test_f_string_number_formats_and_cpu_device_as_in_torch(self, tmp_path):
        """{loss.item():.4f} and kin (Loeber's, airoads' training logs), device='cpu' and dtype=dtype: torch's text."""
        assert checked_json(tmp_path, self.CODE)["printed"] == torch_run(self.CODE)[0]

    @pytest.mark.parametrize("line, message", [
        ('print(f"{x:.2f}")', "the format '.2f' of 'x', which has 2 elements: torch raises TypeError"),
        ('print(f"{x.grad.item():.2f}")', "x.grad is None here, so torch raises AttributeError or TypeError"),
        ("print(x.grad.item())", "x.grad is None here, so torch raises AttributeError or TypeError"),
        ('print(f"{x.sum():{x}}")', "an f-string field with a conversion or a format other than a number's"),
        ('print(f"{x.is_leaf:.2f}")', "a format '.2f' for 'x.is_leaf', which is not a number"),
        ("y = torch.ones(2, device='cuda')", "the device 'cuda' (allowed: 'cpu', torch.device('cpu'))"),
    ])
    def test_what_torch_would_raise_on_is_refused(self, tmp_path, line, message):
        """A format of a tensor with elements, .item() of a grad that is None, another device: located refusals."""
        path = write(tmp_path, f"import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\n{line}\n")
        assert_one_problem(path, 3, message)


class TestGradModes:
    CODE = """
        import torch
        x = torch.tensor([1.5, -2.0], requires_grad=True)
        is_train = False
        with torch.no_grad():
            with torch.enable_grad():
                y = x * 2
            y0 = x * 5
        with torch.set_grad_enabled(is_train):
            y1 = x * 3
        print(y.requires_grad, y0.requires_grad, y1.requires_grad)

        @torch.no_grad()
        def doubler(t):
            return t * 2

        @torch.enable_grad()
        def tripler(t):
            return t * 3

        z = doubler(x)
        with torch.no_grad():
            w = tripler(x)
        print(z.requires_grad, w.requires_grad)
        _ = torch.set_grad_enabled(False)
        q = x * 4
        torch.set_grad_enabled(True)
        r = x * x + torch.ones(2, requires_grad=True) * 2
        print(q.requires_grad, r)
        (y + w + r).sum().backward()
        print(x.grad)
        """

    def test_no_grad_enable_grad_and_set_grad_enabled_as_torch_has_them(self, tmp_path):
        """Blocks, decorators and the global switch: requires_grad, prints and grads are torch's."""
        data = checked_json(tmp_path, self.CODE)
        assert (data["printed"], data["grads"]) == torch_run(self.CODE)

    def test_a_decorated_helper_inside_a_computation_is_refused(self, tmp_path):
        """f(x) + 1 with f under @torch.no_grad() cannot be one step: a located refusal that says how to write it."""
        path = write(tmp_path, """
            import torch
            x = torch.ones(2, requires_grad=True)
            @torch.no_grad()
            def f(t):
                return t * 2
            y = f(x) + 1
            """)
        assert problems(path) == [f"{path}:7: calling 'f', a helper under a grad-mode decorator, inside a computation"
                                  " (allowed: name = f(...), a step of its own)"]


class TestGradsContract:
    """JSON `grads`: each name bound at the end to a leaf that requires grad, with that leaf's final .grad."""

    @pytest.mark.parametrize("code", [
        """
        import torch
        x = torch.Tensor([-4.0]).double()
        x.requires_grad = True
        y = (x * x).relu() + x
        y.backward()
        xpt, ypt = x, y
        print(xpt.grad)
        """,
        """
        import torch
        c = torch.tensor([1.0, 2.0])
        w = torch.tensor([0.5, -1.0], requires_grad=True)
        b = torch.tensor([0.25, 0.75], requires_grad=True)
        loss = (c * w + b).sum()
        loss.backward()
        for p in [w, b]:
            print(p.grad)
        """,
        """
        import torch
        x = torch.tensor([2.0, 3.0], requires_grad=True)
        y = (x * x).sum()
        x = torch.tensor([5.0], requires_grad=True)
        y.backward()
        print(y)
        """,
    ], ids=["aliases", "loop-variable-and-inputs-without-grad", "leaf-no-longer-named"])
    def test_grads_name_the_leaves_torch_leaves_named(self, tmp_path, code):
        """Aliases and a loop's last tensor are listed, tensors without requires_grad and unnamed leaves are not."""
        path = write(tmp_path, code)
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "json")[0] == 0
        data = json.loads((tmp_path / "o/example.json").read_text())
        printed, grads = torch_run(code)
        assert data["printed"] == printed
        assert data["grads"] == grads  # small integers and halves: exact in float32


class TestRetainGraph:
    @pytest.mark.parametrize("expr", ["x * 2", "x + 2", "x - 1", "-x", "x.exp()", "x.sum()", "x.mean()", "x.T",
                                      "x[0]", "x.relu()", "x.max()", "x.norm()", "x / 3", "x ** 2", "x @ x.T",
                                      "x.softmax(dim=1)", "x.clamp(min=0)"])
    def test_second_backward_refused_exactly_when_torch_raises(self, tmp_path, expr):
        """A second backward without retain_graph is refused where torch raises, and explained where torch does not."""
        code = f"""\
        import torch
        x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
        y = {expr}
        out = y.sum()
        out.backward()
        out.backward()
        print(x.grad)
        """
        try:
            torch_run(code)
            raises = False
        except RuntimeError as e:
            assert "backward through the graph a second time" in str(e)
            raises = True
        path = write(tmp_path, code)
        if raises:
            assert problems(path) == [f"{path}:6: backward 'out': torch raises 'Trying to backward through the graph"
                                      " a second time': the call on line 5 freed what y's backward keeps"
                                      " (allowed: retain_graph=True on that call)"]
        else:
            assert compare_spec(path) == []


class TestRefusals:
    @pytest.mark.parametrize("code, line, message", [
        ("import os\n", 1, "import os is not supported (allowed: import torch, import torch.nn.functional as F,"
         " import torch.nn as nn, import torch.optim as optim, import math, from torch.autograd import Variable, grad)"),
        ("x = __import__('os')\n", 1, "calling '__import__' is not supported"),
        ("f = open('/tmp/derive-pwned', 'w')\n", 1, "calling 'open' is not supported"),
        ("x = torch.ones(2).__class__.__bases__\n", 1, "the attribute '.__bases__'"),
        ("@print\ndef f(a):\n    return a\n", 1, "function 'f' has decorators, defaults or special parameters"),
        ("def f(a):\n    print(a)\n    return a\ny = f(torch.ones(2))\n", 4, "calling 'f', a function that prints"),
        ("@torch.no_grad\nclass F:\n    pass\n", 1, "a decorator on a class is not supported yet"),
        ("exec('import os')\n", 1, "calling 'exec' on its own"),
        ("y = torch.ones(2)\ny.register_hook(lambda g: g * 2)\n", 2, "register_hook on 'y', which does not require grad"),
        ("from torch.autograd import grad, backward\n", 1, "from torch.autograd import ... is not supported"),
        ("print('\\\\end{lstlisting}')\n", 1, "in print(...) (allowed: printable ASCII and newlines, without backslashes)"),
        ("print('a', 'b', sep='\\\\end{lstlisting}')\n", 1, "in print(...) (allowed: printable ASCII and newlines"),
        ("print('a', 'b', sep='\\x1b[31m')\n", 1, "in print(...) (allowed: printable ASCII and newlines"),
        ("print('梯度')\n", 1, "the text '梯度' in print(...) (allowed: printable ASCII and newlines, without backslashes)"),
        ("class F(torch.autograd.Function):\n    pass\n", 1, "the class F without both forward and backward"),
        ("class F(torch.autograd.Function):\n    x = 1\n", 2, "in the class F (allowed: class F(torch.autograd.Function)"),
        ("class F(object):\n    pass\n", 1, "the class 'F', which is not a custom torch.autograd.Function"),
        ("y = [exec(c) for c in ['1']]\n", 1, "inside a computation"),
        ("with open('/tmp/derive-pwned', 'w') as f:\n    pass\n", 1,
         "a with block other than torch.no_grad(), enable_grad() or set_grad_enabled(flag) is not supported"),
        ("while True:\n    pass\n", 1, "a while loop still running after 100 iterations"),
        ("x = torch.ones(2, requires_grad=True)\nx += 1\n", 2, "updating 'x' in place while torch records: torch raises 'a leaf Variable that requires grad is being used in an in-place operation'"),
        ("x = torch.ones(2, requires_grad=True)\nopt.zero_grad()\n", 2, "'opt' is not an optimizer of the example"),
        ("x = torch.tensor([1, 2], requires_grad=True)\n", 1, "an int64 tensor that requires grad, which torch refuses"),
        ("for i in range(1000):\n    pass\n", 1, "a loop of 1000 iterations (allowed: at most 100)"),
    ])
    def test_refused_with_location_and_nothing_runs(self, tmp_path, code, line, message):
        """Code outside the whitelist is refused at its line, names the feature, and never runs."""
        path = write(tmp_path, "import torch\n" + code)
        found = problems(path)
        assert found[0].startswith(f"{path}:{line + 1}: ") and message in found[0], found
        assert all(p.endswith(")") and "(allowed: " in p or "(allowed:" in p for p in found), found
        assert not Path("/tmp/derive-pwned").exists()

    def test_active_tex_in_the_docstring_is_refused(self, tmp_path):
        """A docstring is the title and summary: a TeX macro that makes links or HTML is refused, as in YAML."""
        path = write(tmp_path, '"""Title \\href{https://evil}{x}"""\nimport torch\n')
        assert problems(path) == [f"{path}:1: TeX macro \\href in the docstring (allowed: plain text; no macro that"
                                  " makes links, styles, classes, ids or HTML, or loads code)"]

    def test_unrolling_is_bounded(self, tmp_path):
        """Nested loops that would unroll past the statement limit are refused at a line, not run for long."""
        code = "import torch\nx = torch.ones(1, requires_grad=True)\nfor i in range(100):\n    for j in range(100):\n        y = x * 2\n"
        path = write(tmp_path, code)
        limit = "more than 2000 statements once loops are unrolled (allowed: at most 2000)"
        assert problems(path) == [f"{path}:3: {limit}", f"{path}:4: {limit}"]  # the loop that ran out, in the loop
        path = write(tmp_path, "import torch\n" + "x = 1\n" * 2001)
        assert problems(path) == [f"{path}:2001: {limit}"]  # the 2001st statement

    def test_every_problem_is_reported(self, tmp_path):
        """Several problems are all reported, each at its own line, then the read stops once."""
        path = write(tmp_path, "import torch\nimport os\nx = torch.ones(2, requires_grad=True)\nwhile x:\n    pass\n"
                               "y = x * 2\ny.sum().backward(create_graph=True)\n")
        lines = [p.split(": ")[0] for p in problems(path)]
        assert lines == [f"{path}:2", f"{path}:4", f"{path}:7"]

    def test_the_file_is_never_imported(self, tmp_path, monkeypatch):
        """Building a file whose import would leave a mark leaves none: it is parsed, not run."""
        mark = tmp_path / "ran"
        path = write(tmp_path, f"import torch\nopen({str(mark)!r}, 'w')\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        assert run("build", str(path), "--out", str(tmp_path / "o"))[0] == 1
        assert not mark.exists()


class TestFolders:
    def test_a_folder_takes_py_files_but_not_underscored(self, tmp_path):
        """build on a folder builds its .py files and skips _*.py (helpers, __init__.py)."""
        write(tmp_path, SEED_1, "seed.py")
        write(tmp_path, "raise SystemExit\n", "_helper.py")
        code, out, err = run("build", str(tmp_path), "--out", str(tmp_path / "o"))
        assert (code, err) == (0, "")
        assert sorted(p.name for p in (tmp_path / "o").glob("*.md")) == ["seed.md"]
