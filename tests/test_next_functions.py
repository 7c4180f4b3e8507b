"""grad_fn.next_functions, math.pi and linspace as torch computes it: printed exactly as torch prints them."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
import torch

from generator.floats.ieee import linspace, nearest
from tests.test_python import assert_one_problem, write
from tests.test_updates import assert_agrees

CHAINS = {
    "the intro series' chain": """
        import torch
        import math
        a = torch.linspace(0., 2. * math.pi, steps=7, requires_grad=True)
        b = torch.sin(a)
        c = 2 * b
        d = c + 1
        out = d.sum()
        print(d.grad_fn)
        print(d.grad_fn.next_functions)
        print(d.grad_fn.next_functions[0][0].next_functions)
        print(d.grad_fn.next_functions[0][0].next_functions[0][0].next_functions)
        print(d.grad_fn.next_functions[0][0].next_functions[0][0].next_functions[0][0].next_functions)
        out.backward()
        print(a.grad)
    """,
    "two leaves, a constant tensor, numbers on either side": """
        import torch
        x = torch.tensor([1.0, 2.0], requires_grad=True)
        w = torch.tensor([0.5, -1.5], requires_grad=True)
        k = torch.tensor([3.0, 4.0])
        y = (1 + x * w) * k - (2 - w) / 4
        z = (2 / y).sum()
        print(z.grad_fn.next_functions)
        print(z.grad_fn.next_functions[0][0].next_functions)
        print(z.grad_fn.next_functions[0][0].next_functions[0][0].next_functions)
        print(y.grad_fn.next_functions[0][0].next_functions[0][0].next_functions)
        print(y.grad_fn.next_functions[1][0].next_functions[0][0].next_functions)
        print(y.grad_fn.next_functions[0][0].next_functions[0][0].next_functions[1][0])
        z.backward()
    """,
    "pow, matmul, reductions and a detached operand": """
        import torch
        w = torch.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
        v = torch.tensor([0.5, 0.25], requires_grad=True)
        h = (w @ v) ** 2 + v.detach() * v
        loss = h.mean() + w.sum(0).pow(3).sum()
        print(loss.grad_fn.next_functions)
        print(loss.grad_fn.next_functions[0][0].next_functions[0][0].next_functions)
        print(h.grad_fn.next_functions[0][0].next_functions[0][0].next_functions)
        print(h.grad_fn.next_functions[1][0].next_functions)
        print(loss.grad_fn.next_functions[1][0].next_functions[0][0].next_functions[0][0])
        loss.backward()
    """,
}


class TestNextFunctions:
    @pytest.mark.parametrize("code", CHAINS.values(), ids=CHAINS.keys())
    def test_printed_as_torch_prints_them(self, tmp_path, code):
        """Each printed next_functions tuple and grad_fn down a chain is torch's, addresses aside."""
        document = assert_agrees(tmp_path, code)
        assert "next_functions" not in document["printed"] and "AccumulateGrad" in document["printed"]

    def test_document_says_what_the_pairs_are(self, tmp_path):
        """The Markdown explains next_functions: a grad_fn, AccumulateGrad or None per input, and the 0."""
        from tests.test_python import run

        path = write(tmp_path, CHAINS["the intro series' chain"])
        assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md")[0] == 0
        text = (tmp_path / "o/example.md").read_text()
        assert "`grad_fn.next_functions` lists where `backward()` goes next" in text

    def test_past_the_end_is_torch_s_index_error(self, tmp_path):
        """An index past a function's links is refused with torch's IndexError, at its line."""
        path = write(tmp_path, """
            import torch
            x = torch.tensor([1.0, 2.0], requires_grad=True)
            y = x.sin().sum()
            print(y.grad_fn.next_functions[1][0])
        """)
        assert torch.tensor([1.0], requires_grad=True).sin().sum().grad_fn.next_functions.__len__() == 1
        assert_one_problem(path, 5, "IndexError: tuple index out of range")

    def test_none_has_no_next_functions(self, tmp_path):
        """Following a None link is refused as torch's AttributeError on None."""
        path = write(tmp_path, """
            import torch
            x = torch.tensor([1.0, 2.0], requires_grad=True)
            y = (x * 2).sum()
            print(y.grad_fn.next_functions[0][0].next_functions[1][0].next_functions)
        """)
        assert_one_problem(path, 5, "'NoneType' object has no attribute 'next_functions'")

    def test_nodes_torch_adds_are_refused(self, tmp_path):
        """A vector times a matrix, which torch records as squeeze of mm, is refused, not guessed."""
        x = torch.tensor([1.0, 2.0], requires_grad=True)
        assert (x @ torch.eye(2)).grad_fn.name() == "SqueezeBackward4"
        path = write(tmp_path, """
            import torch
            x = torch.tensor([1.0, 2.0], requires_grad=True)
            w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
            y = x @ w
            print(y.grad_fn.next_functions)
        """)
        assert_one_problem(path, 6, "links to nodes of its own")


class TestNumbers:
    def test_math_constants_and_arithmetic_are_python_s(self, tmp_path):
        """math.pi, math.e and arithmetic of numbers give torch the doubles Python computes."""
        assert_agrees(tmp_path, """
            import torch
            import math
            scale = 2. * math.pi / 3
            x = torch.full((2,), math.e - 1 / 3, dtype=torch.float64, requires_grad=True)
            y = torch.linspace(-math.pi, math.pi / 2 ** 3, 5, dtype=torch.float64)
            out = (x * scale + y.sum() * 0.1).sum()
            print(out)
            out.backward()
            print(x.grad)
        """, 1e-12)

    def test_no_finite_result_is_refused(self, tmp_path):
        """A division by zero among numbers is refused where it is written."""
        path = write(tmp_path, """
            import torch
            x = torch.full((2,), 1 / 0, requires_grad=True)
        """)
        assert_one_problem(path, 3, "cannot compute it to a finite number")


class TestLinspace:
    def test_points_are_torch_s(self):
        """linspace's points equal torch's bit for bit, both dtypes, many ranges and counts."""
        rng = random.Random(12)
        for _ in range(400):
            dtype = rng.choice(["float32", "float64"])
            start, end = rng.uniform(-50, 50), rng.choice([rng.uniform(-50, 50), 1e-3, 7.0])
            steps = rng.randint(1, 120)
            theirs = torch.linspace(start, end, steps, dtype=getattr(torch, dtype)).tolist()
            ours = [float(p) for p in linspace(Fraction(start), Fraction(end), steps, dtype)]
            assert ours == theirs, (dtype, start, end, steps)

    def test_nearest_rounds_as_ieee(self):
        """nearest() rounds exact numbers as numpy's float32 and Python's float do, subnormals and ties included."""
        import numpy as np

        for value in [Fraction(1, 3), Fraction(-7, 10), Fraction(1, 2**149), Fraction(3, 2**150),
                      Fraction(2**24 + 1), Fraction(2**24 + 3), Fraction(10**30 + 1, 7)]:
            assert float(nearest(value, "float32")) == float(np.float32(float(value))) or value.denominator > 2**60
            assert float(nearest(value, "float64")) == float(value)

    def test_float32_sine_of_pi_prints_as_torch(self, tmp_path):
        """sin of the float32 points of linspace(-pi, pi) prints torch's tiny residues (-8.7423e-08)."""
        assert_agrees(tmp_path, """
            import torch
            import math
            x = torch.linspace(-math.pi, math.pi, 9, requires_grad=True)
            y = torch.sin(x)
            print(y)
            y.sum().backward()
            print(x.grad)
        """)
