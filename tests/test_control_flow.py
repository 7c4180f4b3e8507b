"""while and if on tensor values, and functions of several statements: decided as torch decides, and proven in torch."""

from __future__ import annotations

import pytest

from tests.test_python import checked_json, problems, torch_run, write
from tests.test_updates import assert_agrees

CASES = {
    "while on a norm": """
        import torch
        x = torch.tensor([0.5, -1.25, 2.0], requires_grad=True)
        y = x * 2
        while y.data.norm() < 1000:
            y = y * 2
        print(y)
        y.backward(torch.tensor([0.1, 1.0, 0.0001]))
        print(x.grad)
    """,
    "d2l control flow, positive": """
        import torch
        def f(a):
            b = a * 2
            while b.norm() < 1000:
                b = b * 2
            if b.sum() > 0:
                c = b
            else:
                c = 100 * b
            return c
        a = torch.tensor(0.3, requires_grad=True)
        d = f(a)
        d.backward()
        print(a.grad == d / a, a.grad)
    """,
    "d2l control flow, negative": """
        import torch
        def f(a):
            b = a * 2
            while b.norm() < 1000:
                b = b * 2
            if b.sum() > 0:
                c = b
            else:
                c = 100 * b
            return c
        a = torch.tensor(-0.8, requires_grad=True)
        d = f(a)
        d.backward()
        print(a.grad == d / a, a.grad)
    """,
    "if on a grad, and a function's names are its own": """
        import torch
        x = torch.tensor([1.5, -0.5], requires_grad=True)
        b = x * 3
        def g(t):
            b = t.exp()
            return b.sum()
        s = g(x)
        s.backward()
        if x.grad.sum() > 4:
            print("large", x.grad)
        else:
            print("small", x.grad)
        print(b)
    """,
}


class TestDecided:
    @pytest.mark.parametrize("code", CASES.values(), ids=CASES.keys())
    def test_prints_and_grads_are_torch_s(self, tmp_path, code):
        """Loops and branches on tensor values take the path torch takes: what it prints, and its grads."""
        assert_agrees(tmp_path, code)

    def test_the_loop_runs_as_often_as_in_torch(self, tmp_path):
        """The while loop is unrolled exactly as many times as torch runs it (counted in torch)."""
        import torch

        y, runs = torch.tensor([0.5, -1.25, 2.0]) * 2, 0
        while y.norm() < 1000:
            y, runs = y * 2, runs + 1
        document = checked_json(tmp_path, CASES["while on a norm"])
        assert sum(1 for name in document["values"] if name == "y" or name.startswith("y") and name[1:].isdigit()) == runs + 1


class TestRefused:
    def test_an_endless_loop_stops_at_the_bound(self, tmp_path):
        """A while loop still running after 100 iterations is refused at its line."""
        code = "import torch\nx = torch.ones(1, requires_grad=True)\ny = x * 1\nwhile y.sum() > 0:\n    y = y * 1\n"
        found = problems(write(tmp_path, code))
        assert found == [f"{tmp_path / 'example.py'}:4: a while loop still running after 100 iterations"
                         " (allowed: at most 100)"]

    def test_a_condition_of_several_elements_is_refused_as_torch_raises(self, tmp_path):
        """bool() of a tensor of several elements raises in torch; derive refuses it at the condition's line."""
        code = "import torch\nx = torch.ones(2, requires_grad=True)\nif x * 2 > 1:\n    y = x * 3\n"
        with pytest.raises(RuntimeError, match="more than one value is ambiguous"):
            torch_run(code)
        found = problems(write(tmp_path, code))
        assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'example.py'}:3: the condition 'x * 2 > 1': a condition on a tensor of more than one element")
        assert "'Boolean value of Tensor with more than one value is ambiguous'" in found[0]
