"""torch's kernels as they round: pow by products, a Function's backward factor by factor, and what derive cannot know."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from tests.test_python import assert_one_problem, write
from tests.test_updates import assert_agrees

LEGENDRE = """
    import torch

    class P3(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            return {ret}

    a = torch.tensor(-1.6833575963974, requires_grad=True)
    b = torch.tensor(1.3, requires_grad=True)
    c = torch.tensor(-2.9, requires_grad=True)
    y = P3.apply(a) * -1.1408323049545288 + P3.apply(b) * -2.2 + P3.apply(c) * 1.7
    y.backward()
    print(y.item())
    print(a.grad.item(), b.grad.item(), c.grad.item())
"""


class TestBackwardFactorByFactor:
    @pytest.mark.parametrize("ret", ["grad_output * 1.5 * (5 * input ** 2 - 1)",
                                     "1.5 * (grad_output * (5 * input ** 2 - 1))",
                                     "grad_output * (1.5 * (5 * input ** 2 - 1))"])
    def test_each_grouping_prints_torch_s_digits(self, tmp_path, ret):
        """grad_output * 1.5 * h rounds (g * 1.5) * h in torch, and derive rounds it so: every digit of .item() agrees."""
        g, h = torch.tensor([-1.6833575963974]), torch.tensor([-1.1408323049545288])
        assert ((g * 1.5) * h).item() != (g * (1.5 * h)).item()  # the premise: the groupings round apart
        assert_agrees(tmp_path, LEGENDRE.format(ret=ret))


class TestPowByProducts:
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_cube_and_inverse_square_print_torch_s_digits(self, tmp_path, dtype):
        """x ** 3 is (x * x) * x and x ** -2 is 1 / (x * x) in torch's kernel, not the correctly rounded power."""
        x, w = torch.tensor(0.99, dtype=getattr(torch, dtype)), torch.tensor(1.55, dtype=getattr(torch, dtype))
        single = (lambda q: float(np.float32(float(q)))) if dtype == "float32" else float
        assert (x ** 3).item() != single(Fraction(x.item()) ** 3)  # the premise: not the correctly rounded cube
        assert (w ** -2).item() != single(1 / Fraction(w.item()) ** 2)
        assert_agrees(tmp_path, f"""
            import torch
            x = torch.tensor(0.99, dtype=torch.{dtype}, requires_grad=True)
            w = torch.tensor(1.55, dtype=torch.{dtype}, requires_grad=True)
            y = x ** 3
            z = w ** -2
            print(y.item(), z.item())
            (y * z).backward()
            print(x.grad.item(), w.grad.item())
        """, 1e-12 if dtype == "float64" else 1e-6)


class TestUnpredictableDigits:
    def test_seventeen_digits_through_float32_sin_are_refused(self, tmp_path):
        """print(loss.item()) of a float32 number computed through sin is refused: torch's sin misses by an ulp."""
        path = write(tmp_path, """
            import torch
            x = torch.tensor([0.5, 1.25, 2.0], requires_grad=True)
            loss = torch.sin(x).sum()
            print(loss.item())
        """)
        assert_one_problem(path, 5, "torch's float32 sin is not correctly rounded")

    def test_updated_values_through_sin_are_refused_by_their_name(self, tmp_path):
        """A leaf updated by a grad through sin prints unpredictable digits too, named as the code names it."""
        path = write(tmp_path, """
            import torch
            w = torch.tensor(0.5, requires_grad=True)
            loss = torch.sin(w * 3)
            loss.backward()
            with torch.no_grad():
                w -= 0.1 * w.grad
            print(w.item())
        """)
        assert_one_problem(path, 8, "the 17 digits Python prints of w's float32 number")

    def test_a_format_or_float64_is_explained(self, tmp_path):
        """The same numbers with {loss.item():.6f}, or in float64, agree with torch."""
        assert_agrees(tmp_path, """
            import torch
            x = torch.tensor([0.5, 1.25, 2.0], requires_grad=True)
            loss = torch.sin(x).sum()
            print(f"{loss.item():.6f}")
        """)
        assert_agrees(tmp_path, """
            import torch
            x = torch.tensor([0.5, 1.25, 2.0], dtype=torch.float64, requires_grad=True)
            loss = torch.sin(x).sum()
            print(loss.item())
            loss.backward()
            print(x.grad)
        """, 1e-12)


def _sum_spec(tmp_path, shape: tuple[int, ...], expr: str, dtype: str, seed: int):
    """Write a spec: x of that shape, w of its last dim and b (0-d), each of random 4-decimal numbers; y = expr."""
    import random

    rng = random.Random(seed)

    def values(n: int) -> list[float]:
        return [round(rng.uniform(-3, 3) * 10 ** rng.randint(-2, 2), 4) for _ in range(n)]

    def nested(flat: list[float], dims: tuple[int, ...]):
        if len(dims) == 1:
            return flat
        size = len(flat) // dims[0]
        return [nested(flat[i * size:(i + 1) * size], dims[1:]) for i in range(dims[0])]

    x = nested(values(int(np.prod(shape))), shape)
    path = tmp_path / f"s{seed}.yaml"
    path.write_text(f"title: t\ndtype: {dtype}\ninputs:\n  x: {{value: {x}, requires_grad: true}}\n"
                    f"  w: {{value: {values(shape[-1])}, requires_grad: true}}\n"
                    f"  b: {{value: {values(1)[0]}, requires_grad: true}}\n"
                    f"steps:\n  y: {expr}\nbackward: y\n")
    return path


SUMS = [((n,), "(x * w + b).sum()") for n in (5, 6, 7, 9, 12, 17, 33, 100, 257)] + [
    ((n, m), e) for n, m in ((5, 3), (20, 3), (9, 8), (17, 12), (40, 33), (3, 40))
    for e in ("((x * w).sum(0) + b).pow(2).sum()", "((x * w).sum(1) - b).pow(2).mean()", "(x * w + b).mean(0).sum()")
] + [((2, 17, 3), "((x * w).sum(1) + b).sum()"), ((3, 5, 20), "(x.mean(1) * w).sum()")]


class TestSumsAsTorchSums:
    @pytest.mark.parametrize("shape, expr", SUMS, ids=[f"{e} {s}" for s, e in SUMS])
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_every_value_and_grad_is_torch_s_to_the_bit(self, tmp_path, shape, expr, dtype):
        """Sums along every dim and broadcast gradients are added in torch's order: values and grads bit for bit."""
        from generator.engines.shadow import shadow
        from generator.graph.walk import build_graph
        from generator.pipeline.check import run
        from generator.spec.load import load

        graph = build_graph(load(_sum_spec(tmp_path, shape, expr, dtype, seed=len(expr) + sum(shape))))
        ours, theirs = shadow(graph), run(graph, dtype=dtype, jacobians=False)
        for name, value in theirs.values.items():
            assert np.array_equal(np.ravel(ours.values[name]), np.ravel(np.asarray(value, dtype=np.float64))), name
        for name in ("x", "w", "b"):
            if theirs.grads[name] is None:  # b unused: no grad in torch, none here
                assert ours.grads[name] is None, name
                continue
            assert np.array_equal(np.ravel(ours.grads[name]), np.ravel(np.asarray(theirs.grads[name], dtype=np.float64))), name
