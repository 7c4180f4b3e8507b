"""Leaves changed in place (training steps such as w -= lr * w.grad under no_grad): read, derived, and proven in torch."""

from __future__ import annotations

import math
import re

import pytest
import torch

from tests.test_python import checked_json, problems, run, torch_run, write

# Each is run in real torch (the oracle) and through derive: printed lines byte for byte, final grads.
LOOPS = {
    "zeroed": """
        import torch
        w = torch.tensor(2.0, requires_grad=True)
        for step in range(1, 4):
            loss = (w * 3 - 10) ** 2
            loss.backward()
            with torch.no_grad():
                w -= 0.1 * w.grad
            print(f"step={step} w={w.item():.4f} loss={loss.item():.4f} grad={w.grad.item():.4f}")
            w.grad.zero_()
        print(w, w.grad)
    """,
    "accumulating": """
        import torch
        w = torch.tensor([1.0, -2.0], requires_grad=True)
        for _ in range(3):
            loss = (w * w).sum()
            loss.backward()
            with torch.no_grad():
                w -= 0.25 * w.grad
            print(w.grad)
        print(w)
    """,
    "through .data": """
        import torch
        w = torch.tensor([0.5, 1.5], requires_grad=True)
        x = torch.tensor([2.0, -1.0])
        for i in range(2):
            y = (w * x).sum()
            y.backward()
            w.data -= 0.5 * w.grad
            w.grad = None
        print(w, w.grad)
    """,
    "assigned .data": """
        import torch
        w = torch.tensor(3.0, requires_grad=True)
        for i in range(2):
            l = (w - 1) ** 2
            l.backward()
            w.data = w.data - 0.1 * w.grad.data
            w.grad.data.zero_()
        print(w)
    """,
    "two weights, float64": """
        import torch
        x = torch.tensor([[1.0, -0.5], [0.5, 1.5]], dtype=torch.float64)
        y = torch.tensor([[0.5], [-1.0]], dtype=torch.float64)
        w1 = torch.tensor([[0.5, -0.25], [0.75, 0.5]], dtype=torch.float64, requires_grad=True)
        w2 = torch.tensor([[1.0], [-0.5]], dtype=torch.float64, requires_grad=True)
        for t in range(3):
            y_pred = x.mm(w1).clamp(min=0).mm(w2)
            loss = (y_pred - y).pow(2).sum()
            print(t, loss.item())
            loss.backward()
            with torch.no_grad():
                w1 -= 0.1 * w1.grad
                w2 -= 0.1 * w2.grad
                w1.grad.zero_()
                w2.grad.zero_()
        print(w1, w2)
    """,
    "a change backward does not read": """
        import torch
        x = torch.ones(1, requires_grad=True)
        print(x.data, x.data.requires_grad)
        y = 2 * x
        x.data *= 100
        y.backward()
        print(x, x.grad)
        w = torch.tensor([3.0, -1.0])
        v = torch.tensor([0.5, 2.0], requires_grad=True)
        z = (w * v).sum()
        with torch.no_grad():
            v *= 4
        z.backward()
        print(v, v.grad)
    """,
    "other operators": """
        import torch
        w = torch.tensor([4.0, -3.0], requires_grad=True)
        l = (w ** 2).sum()
        l.backward()
        with torch.no_grad():
            w /= 2
            w += 0.5 * w.grad
            w *= 3
        print(w)
        l2 = w.sum()
        l2.backward()
        print(w.grad)
    """,
    "if on the counter": """
        import torch
        w = torch.tensor(0.0, requires_grad=True)
        X = torch.tensor([1.0, 2.0, 3.0])
        Y = torch.tensor([2.0, 4.0, 6.0])
        def forward(x):
            return w * x
        print(f'before: f(5) = {forward(5).item():.3f}')
        for epoch in range(6):
            l = ((forward(X) - Y) ** 2).mean()
            l.backward()
            with torch.no_grad():
                w -= 0.01 * w.grad
            w.grad.zero_()
            if epoch % 2 == 0:
                print(f'epoch {epoch + 1}: w = {w.item():.3f}, loss = {l.item():.8f}')
        print(f'after: f(5) = {forward(5).item():.3f}')
    """,
}


def _close(ours, theirs, tol: float) -> bool:
    if ours is None or theirs is None:
        return ours is theirs
    a, b = torch.tensor(ours, dtype=torch.float64).reshape(-1), torch.tensor(theirs, dtype=torch.float64).reshape(-1)
    return a.shape == b.shape and all(math.isclose(x, y, rel_tol=tol, abs_tol=tol) for x, y in zip(a.tolist(), b.tolist()))


def assert_agrees(tmp_path, code: str, tol: float = 1e-6) -> dict:
    """Assert that derive check agrees with torch on code, prints what torch prints and gives its grads; return the JSON."""
    printed, grads = torch_run(code)
    document = checked_json(tmp_path, code)
    assert document["printed"] == re.sub(r"0x[0-9a-f]+", "0x...", printed)  # an address changes every run
    assert set(document["grads"]) == set(grads)
    for name, grad in grads.items():
        assert _close(document["grads"][name], grad, tol), (name, document["grads"][name], grad)
    return document


class TestTrainingSteps:
    @pytest.mark.parametrize("code", LOOPS.values(), ids=LOOPS.keys())
    def test_prints_and_grads_are_torch_s(self, tmp_path, code):
        """A loop of updates prints what torch prints, and every leaf's final .grad is torch's."""
        assert_agrees(tmp_path, code, 1e-12 if "float64" in code else 1e-6)

    def test_each_call_s_gradient_is_the_iteration_s(self, tmp_path):
        """Each backward call of a loop gives the gradient torch gives in that iteration, from the updated values."""
        code = LOOPS["zeroed"]
        seen = []
        w = torch.tensor(2.0, requires_grad=True)
        for _ in range(3):
            loss = (w * 3 - 10) ** 2
            loss.backward()
            seen.append((loss.item(), w.grad.item()))
            with torch.no_grad():
                w -= 0.1 * w.grad
            w.grad.zero_()
        document = checked_json(tmp_path, code)
        calls = document["backward"]
        assert len(calls) == 3
        for call, (value, grad) in zip(calls, seen):
            assert math.isclose(document["values"][call["output"]], value, rel_tol=1e-6)
            (leaf, vjp), = call["vjp"].items()
            assert math.isclose(vjp, grad, rel_tol=1e-6)

    def test_the_same_tensor_keeps_one_grad(self, tmp_path):
        """Without zero_(), the grads of the iterations add up in the one .grad, as torch's do."""
        document = checked_json(tmp_path, LOOPS["accumulating"])
        _, grads = torch_run(LOOPS["accumulating"])
        assert list(document["grads"]) == ["w"] and _close(document["grads"]["w"], grads["w"], 1e-6)


class TestDocument:
    def test_explains_the_first_iteration_and_tabulates_the_rest(self, tmp_path):
        """The document says what the update does, once, and gives the other calls' numbers in one table."""
        path = write(tmp_path, LOOPS["zeroed"])
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md")[0] == 0
        text = (tmp_path / "o/example.md").read_text()
        assert text.count("`w -= 0.1 * w.grad` (line 8) changes the values of `w` in place") == 1
        assert "stays the same\nleaf with the same `.grad`" in text or "stays the same leaf with the same `.grad`" in text
        assert "2 more updates follow" in text
        assert text.count("## Backward call") == 1
        assert "The loop runs `loss.backward()` 2 more times (calls 2 to 3)" in text
        rows = [line for line in text.splitlines() if line.startswith("| 2 |") or line.startswith("| 3 |")]
        w = torch.tensor(2.0, requires_grad=True)
        expected = []
        for _ in range(3):
            loss = (w * 3 - 10) ** 2
            loss.backward()
            expected.append((loss.item(), w.grad.item()))
            with torch.no_grad():
                w -= 0.1 * w.grad
            w.grad.zero_()
        assert len(rows) == 2
        for row, (value, grad) in zip(rows, expected[1:]):
            numbers = [float(x) for x in __import__("re").findall(r"\$(-?[0-9.]+)\$", row)]
            assert math.isclose(numbers[0], value, rel_tol=1e-6) and math.isclose(numbers[1], grad, rel_tol=1e-6), row

    def test_the_picture_shows_what_a_later_step_reads_of_the_loop(self, tmp_path):
        """A prediction after training, from the loop's last values, is drawn with its input (a loop's later tensor)."""
        code = __import__("textwrap").dedent(LOOPS["zeroed"]) + "f = w * 5\nprint(f)\n"
        assert_agrees(tmp_path, code)
        assert run("build", str(write(tmp_path, code)), "--out", str(tmp_path / "o"), "--format", "md")[0] == 0
        text = (tmp_path / "o/example.md").read_text()
        picture = text[text.index("flowchart TD"):]
        assert "<b>w4</b>" in picture and "<b>f</b>" in picture and "<b>w3</b>" not in picture

    def test_json_lists_every_call(self, tmp_path):
        """JSON keeps every iteration's call, though the document tabulates them."""
        document = checked_json(tmp_path, LOOPS["two weights, float64"])
        assert len(document["backward"]) == 3 and sorted(document["grads"]) == ["w1", "w2"]


class TestRefusals:
    @pytest.mark.parametrize("code, line, message", [
        ("w = torch.tensor([1.0], requires_grad=True)\nl = (w * 2).sum()\nl.backward()\nw -= 0.1 * w.grad\n", 4,
         "torch raises 'a leaf Variable that requires grad is being used in an in-place operation'"),
        ("w = torch.tensor([1.0], requires_grad=True)\nwith torch.no_grad():\n    w -= 0.1 * w.grad\n", 3,
         "w.grad is None here, so torch raises TypeError"),
        ("w = torch.tensor([1.0, 2.0], requires_grad=True)\ny = (w * w).sum()\nwith torch.no_grad():\n    w -= 1\n"
         "y.backward()\n", 5, "one of the variables needed for gradient computation has been modified by an inplace"),
        ("w = torch.tensor([1.0, 2.0], requires_grad=True)\nl = w.sum()\nl.backward()\nwith torch.no_grad():\n"
         "    w -= torch.ones(2, 2)\n", 5, "the update gives shape [2, 2] to 'w' of shape [2]"),
    ])
    def test_what_torch_refuses_is_refused_where_it_happens(self, tmp_path, code, line, message):
        """An update torch cannot do (or a backward it refuses after one) is refused at its line, and torch agrees."""
        with pytest.raises((RuntimeError, TypeError)):
            torch_run("import torch\n" + code)
        path = write(tmp_path, "import torch\n" + code)
        found = problems(path)
        assert len(found) == 1 and found[0].startswith(f"{path}:{line + 1}: ") and message in found[0], found
        assert "(allowed: " in found[0]

    def test_an_update_of_a_computed_tensor_is_refused(self, tmp_path):
        """Changing a computed tensor in place (torch allows it under no_grad) is not read yet: refused at its line."""
        code = "import torch\nw = torch.tensor([1.0], requires_grad=True)\ny = w * 2\nwith torch.no_grad():\n    y -= 1\n"
        torch_run(code)
        found = problems(write(tmp_path, code))
        assert found == [f"{tmp_path / 'example.py'}:5: an in-place update of 'y', which is not a leaf of the example"
                         " (allowed: w -= expression on a leaf made by torch.tensor, ones, ..., inside with"
                         " torch.no_grad():, or w.data -= ..., w.data = ...)"]

    def test_a_data_change_under_a_saved_value_is_refused(self, tmp_path):
        """Through .data torch would silently use the new values in backward: derive refuses instead of guessing."""
        code = "import torch\nx = torch.ones(1, requires_grad=True)\ny = x * x\nx.data *= 100\ny.backward()\n"
        printed, grads = torch_run(code)
        assert grads["x"] == [200.0]  # torch used the changed values, which a reader of the code would not expect
        found = problems(write(tmp_path, code))
        assert len(found) == 1 and ":5: backward 'y' needs the values of 'x'" in found[0], found


FLAGS = {
    "on, for a tensor computed without grad": """
        import torch
        a = torch.tensor([[0.5, -1.5], [2.0, 0.25]])
        a = ((a * 3) / (a - 1))
        print(a.requires_grad)
        a.requires_grad_(True)
        print(a.requires_grad, a.is_leaf)
        b = (a * a).sum()
        print(b.grad_fn)
        b.backward()
        print(a.grad)
    """,
    "off, after a step used it": """
        import torch
        a = torch.ones(2, 3, requires_grad=True)
        b1 = 2 * a
        print(b1)
        a.requires_grad = False
        b2 = 2 * a
        print(b2)
        b1.sum().backward()
        print(a.grad)
    """,
    "on, for a leaf already used": """
        import torch
        a = torch.tensor([1.0, -2.0])
        b = a * 3
        a.requires_grad_()
        c = (a * b).sum()
        c.backward()
        print(a.grad, b.requires_grad)
    """,
    "printed expression": """
        import torch
        x = torch.tensor([0.5, -1.0], requires_grad=True)
        with torch.no_grad():
            print((x ** 2).requires_grad)
        print((x * 2).requires_grad, f"{(x * x).sum().item():.3f}")
    """,
}


class TestRequiresGradChanges:
    @pytest.mark.parametrize("code", FLAGS.values(), ids=FLAGS.keys())
    def test_prints_and_grads_are_torch_s(self, tmp_path, code):
        """requires_grad turned on or off after the tensor was computed with: what torch prints, and its grads."""
        assert_agrees(tmp_path, code)

    def test_a_computed_tensor_with_a_grad_fn_is_refused(self, tmp_path):
        """torch changes requires_grad of leaves only: on a tensor with a grad_fn derive refuses, where torch raises."""
        code = "import torch\nx = torch.ones(2, requires_grad=True)\ny = x * 2\ny.requires_grad_(False)\n"
        with pytest.raises(RuntimeError):
            torch_run(code)
        found = problems(write(tmp_path, code))
        assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'example.py'}:4: requires_grad of 'y', which torch"
                                                       " computed with MulBackward0"), found

    def test_the_document_says_the_tensor_is_the_same(self, tmp_path):
        """The document says what turning requires_grad on does, where it happens."""
        path = write(tmp_path, FLAGS["on, for a tensor computed without grad"])
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md")[0] == 0
        text = " ".join((tmp_path / "o/example.md").read_text().split())
        assert ("`a2.requires_grad_(True)` (line 6) turns on `requires_grad` of `a2`: to torch it is the same tensor"
                " with the same values, a leaf") in text


class TestParameter:
    def test_prints_and_grads_are_torch_s(self, tmp_path):
        """torch.nn.Parameter is a leaf that requires grad by default, printed as 'Parameter containing:'."""
        code = """
            import torch
            with torch.no_grad():
                a = torch.nn.Parameter(torch.tensor([0.5, 0.25]))
            print(a)
            b = (a * 2).sum()
            b.backward()
            print(a.grad, a.is_leaf, a.requires_grad)
            c = torch.nn.Parameter(torch.tensor(1.5), requires_grad=False)
            print(c, c.requires_grad)
        """
        printed, grads = torch_run(code)
        document = checked_json(tmp_path, code)
        assert document["printed"] == printed and document["grads"] == grads
