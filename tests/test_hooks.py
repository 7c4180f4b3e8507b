"""Tensor hooks (t.register_hook) in torch code: read, applied by every engine, printed and explained as torch does.

torch 2.13 is the oracle: each snippet runs in torch, and derive's grads, .grad of retained tensors, printed
text and the gradients each hook received and returned must be torch's.
"""

from __future__ import annotations

import contextlib
import io
import json
import textwrap

import pytest
import torch

from tests.test_python import assert_one_problem, checked_json, run, torch_run, write


def torch_hooks(code: str, names: list[str]) -> list[tuple[str, list, list | None]]:
    """Run the code in torch with each tensor's register_hook spied on: (tensor, received, returned) in torch's order."""
    seen: list[tuple[str, list, list | None]] = []
    original = torch.Tensor.register_hook

    def spy(self, fn):
        name = next((n for n in names if scope.get(n) is self), "?")

        def wrapped(grad):
            received = grad.tolist()
            out = fn(grad)
            seen.append((name, received, None if out is None else out.tolist()))
            return out

        return original(self, wrapped)

    scope: dict = {}
    torch.Tensor.register_hook = spy
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # torch_run compares what it prints
            exec(compile(textwrap.dedent(code), "<oracle>", "exec"), scope)  # noqa: S102 - the test's own code
    finally:
        torch.Tensor.register_hook = original
    return seen


DOCS = """\
import torch
v = torch.tensor([0., 0., 0.], requires_grad=True)
h = v.register_hook(lambda grad: grad * 2)
v.backward(torch.tensor([1., 2., 3.]))
print(v.grad)
h.remove()
v.backward(torch.tensor([1., 2., 3.]))
print(v.grad)
"""

TUTORIAL = """\
import torch
a = torch.tensor(2.0, requires_grad=True)
b = torch.tensor(3.0, requires_grad=True)
c = a * b
def c_hook(grad):
    print(grad)
    return grad + 2
c.register_hook(c_hook)
c.register_hook(lambda grad: print(grad))
c.retain_grad()
d = torch.tensor(4.0, requires_grad=True)
d.register_hook(lambda grad: grad + 100)
e = c * d
e.retain_grad()
e.register_hook(lambda grad: grad * 2)
e.backward()
print(f'a.grad {a.grad}')
print(f'c.grad {c.grad}')
print(f'd.grad {d.grad}')
print(f'e.grad {e.grad}')
"""

ORDER = """\
import torch
x = torch.tensor([1., 2.], requires_grad=True)
w = torch.tensor([0.5, -1.5], requires_grad=True)
a = x * w
b = a.exp()
c = a * 3
d = b + c
y = d.sum()
x.register_hook(lambda g: print("x", g))
w.register_hook(lambda g: print("w", g))
a.register_hook(lambda g: print("a", g))
b.register_hook(lambda g: print("b", g))
c.register_hook(lambda g: print("c", g))
h = d.register_hook(lambda g: g * 0.1)
d.register_hook(lambda g: print("d", g))
y.register_hook(lambda g: print("y", g))
y.backward(retain_graph=True)
print(x.grad, w.grad)
h.remove()
y.backward()
print(x.grad, w.grad)
"""

LEAVES = """\
import torch
a = torch.tensor(1.5, requires_grad=True)
b = torch.tensor(2.0, requires_grad=True)
c = torch.tensor(-1.0, requires_grad=True)
d = torch.tensor(0.5, requires_grad=True)
e = torch.tensor(3.0, requires_grad=True)
f = torch.tensor(0.25, requires_grad=True)
a.register_hook(lambda g: print("a", g))
b.register_hook(lambda g: print("b", g))
c.register_hook(lambda g: print("c", g))
d.register_hook(lambda g: print("d", g))
e.register_hook(lambda g: print("e", g))
f.register_hook(lambda g: print("f", g))
s = a * b + c * d * a + e * f * b + torch.sin(e) * c
t = s * s
u = t + a
u.backward()
print(a.grad, b.grad)
"""


class TestAgainstTorch:
    def test_a_leaf_hook_doubles_grad_until_removed(self, tmp_path):
        """The docstring's lambda grad: grad * 2 doubles v.grad; after h.remove() the next call adds the plain gradient."""
        data = checked_json(tmp_path, DOCS)
        printed, grads = torch_run(DOCS)
        assert data["printed"] == printed
        assert list(data["grads"].values()) == list(grads.values())

    def test_hooks_on_leaves_and_non_leaves_with_retain_grad(self, tmp_path):
        """Hooks that print and add, on a non-leaf, a leaf and the output: every .grad and printed line is torch's."""
        data = checked_json(tmp_path, TUTORIAL)
        printed, grads = torch_run(TUTORIAL)
        assert data["printed"] == printed
        assert data["grads"] == grads
        assert printed.startswith("tensor(8.)\ntensor(10.)\n")  # the hooks print during backward, before the prints

    def test_each_hook_gets_and_returns_what_torch_s_does(self, tmp_path):
        """JSON lists every hook a call ran, in torch's order, with the gradient it received and what it returned."""
        data = checked_json(tmp_path, TUTORIAL)
        seen = torch_hooks(TUTORIAL, ["a", "b", "c", "d", "e"])
        ours = [(h["tensor"], h["received"], h["returned"]) for h in data["backward"][0]["hooks"]]
        assert ours == seen

    def test_hook_prints_come_in_torch_s_engine_order(self, tmp_path):
        """Print hooks on every tensor of a branching graph print in the order torch's engine completes them."""
        for code in (ORDER, LEAVES):
            data = checked_json(tmp_path, code)
            assert data["printed"] == torch_run(code)[0]

    @pytest.mark.parametrize("first", [True, False])
    def test_retain_grad_keeps_the_gradient_after_hooks(self, tmp_path, first):
        """c.grad holds what c's hook returned, whether retain_grad() came before or after register_hook (torch >= 2.0)."""
        order = ["c.retain_grad()", "c.register_hook(lambda g: g * 10)"]
        code = ("import torch\na = torch.tensor([2., -1.], requires_grad=True)\nc = a * 3\n"
                + "\n".join(order if first else order[::-1])
                + "\nc.sum().backward()\nprint(c.grad)\nprint(a.grad)\n")
        data = checked_json(tmp_path, code)
        printed, _ = torch_run(code)
        assert data["printed"] == printed
        assert data["retained"]["c"] == [10.0, 10.0]

    def test_several_hooks_on_one_tensor_run_in_registration_order(self, tmp_path):
        """g + 1 then g * 3 is not g * 3 then g + 1: the grads are torch's for both orders."""
        for hooks in (("g + 1", "g * 3"), ("g * 3", "g + 1")):
            code = ("import torch\nx = torch.tensor([1., 2.], requires_grad=True)\ny = x * x\n"
                    + "".join(f"y.register_hook(lambda g: {h})\n" for h in hooks)
                    + "y.sum().backward()\nprint(x.grad)\n")
            data = checked_json(tmp_path, code)
            assert data["printed"] == torch_run(code)[0]

    def test_whitelisted_expressions_round_as_float32_does(self, tmp_path):
        """A hook's g * 0.1 and g.clamp(-1, 1) are computed in float32 as torch does: printed byte for byte."""
        code = """\
        import torch
        p = torch.tensor([0.1, 0.7, -3.3], requires_grad=True)
        q = p * p * p
        q.register_hook(lambda g: g.clamp(-1, 1))
        p.register_hook(lambda g: g * 0.1)
        q.sum().backward()
        print(p.grad)
        """
        data = checked_json(tmp_path, code)
        printed, grads = torch_run(code)
        assert data["printed"] == printed
        assert data["grads"]["p"] == pytest.approx(grads["p"], rel=1e-6)  # JSON's are exact, torch's float32

    def test_a_hook_registered_between_calls_and_an_f_string(self, tmp_path):
        """A def hook printing an f-string runs only in the calls after it was registered."""
        code = """\
        import torch
        a = torch.tensor(0.5, requires_grad=True)
        q = a * a + a
        q.backward(retain_graph=True)
        def hk(grad):
            print(f"a sees {grad} and", grad)
            return grad / 3
        a.register_hook(hk)
        q.backward()
        print(a.grad)
        """
        data = checked_json(tmp_path, code)
        printed, grads = torch_run(code)
        assert data["printed"] == printed
        assert data["grads"]["a"] == pytest.approx(grads["a"], rel=1e-6)  # JSON's are exact, torch's float32


class TestRefusals:
    def test_a_hook_mutating_its_gradient_in_place(self, tmp_path):
        """grad *= 100 inside a hook changes what other tensors receive: refused at its line, naming the hook."""
        code = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ndef d_hook(grad):\n    grad *= 100\n" \
               "x.register_hook(d_hook)\n(x * x).backward()\n"
        path = write(tmp_path, code)
        from tests.test_python import problems

        found = problems(path)
        assert found[0].startswith(f"{path}:3: ") and "'d_hook' changes its argument 'grad' in place" in found[0], found
        assert "as a hook" in found[0] and "(allowed: return a new gradient" in found[0], found

    def test_a_hook_on_a_tensor_without_grad(self, tmp_path):
        """torch raises on register_hook of a tensor that does not require grad: refused at that line."""
        code = "import torch\nx = torch.tensor(2.0)\nx.register_hook(lambda g: g)\n"
        with pytest.raises(RuntimeError, match="doesn't require gradient"):
            torch_run(code)
        assert_one_problem(write(tmp_path, code), 3, "cannot register a hook on a tensor that doesn't require gradient")

    def test_a_hook_changing_the_gradient_s_size(self, tmp_path):
        """torch raises when a hook returns another size (g.sum() of a vector): refused at the register line."""
        code = "import torch\nx = torch.tensor([1., 2.], requires_grad=True)\nx.register_hook(lambda g: g.sum())\n" \
               "(x * x).sum().backward()\n"
        with pytest.raises(RuntimeError, match="has changed the size of value"):
            torch_run(code)
        assert_one_problem(write(tmp_path, code), 3, "hook has changed the size of value")

    def test_a_hook_returning_a_number(self, tmp_path):
        """torch raises when a hook returns a Python number: refused, saying what a hook may return."""
        code = "import torch\nx = torch.tensor(1., requires_grad=True)\nx.register_hook(lambda g: 5.0)\n(x * x).backward()\n"
        with pytest.raises(TypeError, match="hook returned 'float'"):
            torch_run(code)
        assert_one_problem(write(tmp_path, code), 3, "a hook returning '5.0'")

    def test_a_hook_printing_anything_but_its_gradient(self, tmp_path):
        """print(g * 3) inside a hook is outside the whitelist: refused at the register line, nothing runs."""
        code = "import torch\nx = torch.tensor(1., requires_grad=True)\nx.register_hook(lambda g: print(g * 3))\n"
        assert_one_problem(write(tmp_path, code), 3, "printing 'g * 3' inside a hook")


class TestDocument:
    def test_the_document_says_where_hooks_change_gradients(self, tmp_path):
        """The Markdown shows each hook where torch runs it, with the gradient torch gave it and what it returned."""
        path = write(tmp_path, TUTORIAL)
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md")[0] == 0
        md = (tmp_path / "o/example.md").read_text()
        for name, received, returned in torch_hooks(TUTORIAL, ["a", "b", "c", "d", "e"]):
            number = lambda v: f"{v:g}"  # noqa: E731 - the document writes 8.0 as 8
            assert f"`grad` = ${number(received)}$" in md
            if returned is not None:
                assert f"It returns ${number(returned)}$, and that **replaces**" in md
        assert "`d.grad` gets $112$, not $12$" in md
        assert "`d.grad` is **not** the $J^{\\mathsf T} v$ above" in md
        assert "**Check it yourself:**" not in md  # "v = 2 doubles every gradient" does not hold for g + 100

    def test_the_true_jacobian_product_is_still_shown(self, tmp_path):
        """J^T v in the document is torch's Jacobian times v (without hooks), not the hooked .grad."""
        path = write(tmp_path, DOCS.replace("h.remove()\n", "").rsplit("v.backward", 1)[0])
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md,json")[0] == 0
        md = (tmp_path / "o/example.md").read_text()
        data = json.loads((tmp_path / "o/example.json").read_text())
        jacobian = torch.autograd.functional.jacobian(lambda t: t, torch.zeros(3))
        jtv = (jacobian.T @ torch.tensor([1., 2., 3.])).tolist()
        assert data["backward"][0]["jacobians"]["v_"] == jacobian.tolist()
        assert "= \\begin{bmatrix} " + " & ".join(f"{x:g}" for x in jtv) + " \\end{bmatrix}^{\\mathsf T}" in md
        assert data["grads"]["v"] == torch_run(DOCS.split("h.remove()")[0])[1]["v"]

    def test_chinese_document_explains_hooks(self, tmp_path):
        """A zh document explains the hook in Chinese, with the same numbers."""
        path = write(tmp_path, "# derive: lang=zh\n" + DOCS)
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md")[0] == 0
        md = (tmp_path / "o/example.md").read_text()
        assert "上的钩子 `lambda grad: grad * 2` 在这里运行" in md
        assert "\\begin{bmatrix} 2 & 4 & 6 \\end{bmatrix}" in md
