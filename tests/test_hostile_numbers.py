"""Numbers at float64's edges: small valid specs derive what torch computes, or are refused with a located line.

The oracle is torch itself, run here on the same inputs in float64, and Python's own float parsing
and formatting; never the tool's output.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch

from generator.document.latex import decimal
from tests.helpers import invoke

RANGE = "(allowed: 0, or magnitudes from about 5e-324 to 1.8e308)"


def _spec(tmp_path: Path, steps: str, **inputs: str) -> Path:
    lines = ["title: edge", "inputs:"]
    for name, value in inputs.items():
        lines += [f"  {name}:", f"    value: {value}", "    requires_grad: true"]
    lines += ["steps:", *(f"  {line}" for line in steps.splitlines()), "  out: y.sum()", "backward: out"]
    path = tmp_path / "edge.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _same(ours: object, theirs: float) -> bool:
    """Compare a JSON number (inf and nan as strings) with torch's float: nan with nan, inf exactly, else 1e-9 relative."""
    value = float(ours)
    if math.isnan(theirs) or math.isinf(theirs):
        return value == theirs or (math.isnan(value) and math.isnan(theirs))
    return abs(value - theirs) <= 1e-300 + 1e-9 * abs(theirs)


def _torch_grads(fn, **inputs: list[float]) -> tuple[list[float], dict[str, list[float]]]:
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in inputs.items()}
    y = fn(**leaves)
    y.sum().backward()
    return y.detach().reshape(-1).tolist(), {k: t.grad.reshape(-1).tolist() for k, t in leaves.items()}


CASES = {
    # name: (steps, inputs as YAML, the same in torch)
    "pow64_of_1e100": ("y: x ** 64", {"x": "[1e100, 2]"}, lambda x: x**64),
    "tanh_of_minus_exp_1e20": ("y: (-x.exp()).tanh()", {"x": "[1e20, 1]"}, lambda x: (-x.exp()).tanh()),
    "log_softmax_pow": ("y: x.log_softmax(-1) ** w", {"x": "[1e308, 1e-40]", "w": "[2, 3]"},
                        lambda x, w: x.log_softmax(-1) ** w),
    "sqrt_sqrt_log_softmax_relu": ("y: x.sqrt().sqrt().log_softmax(-1).relu()", {"x": "[1e308, 1e-40]"},
                                   lambda x: x.sqrt().sqrt().log_softmax(-1).relu()),
    "exp_cos_at_1e308": ("y: x.exp().cos()", {"x": "[1e308, 1]"}, lambda x: x.exp().cos()),
    "softmax_of_huge_pow": ("y: x.softmax(0) ** w", {"x": "[1e-300, 1e300]", "w": "[2, 3]"},
                            lambda x, w: x.softmax(0) ** w),
    "sigmoid_of_2e308": ("y: (x * 1e308).sigmoid()", {"x": "[2, -2]"}, lambda x: (x * 1e308).sigmoid()),
    "subnormal_product": ("y: (x * 0.75 * 3.4e38).log()", {"x": "[5e-324, 1e-310]"},
                          lambda x: (x * 0.75 * 3.4e38).log()),
    "half_pow_1e308": ("y: x.softmax(0) ** w", {"x": "[3, 3]", "w": "[1e308, 1e-40]"},
                       lambda x, w: x.softmax(0) ** w),
    # d(a/b)/db where b² leaves float64's range: torch's -(a / b) / b cancels 1 / b; -a / b² would not
    "quotient_past_the_range": ("y: (x / 1e-308 / (x / 1e-308)).sigmoid()", {"x": "[0.1, 2]"},
                                lambda x: (x / 1e-308 / (x / 1e-308)).sigmoid()),
    # a step function takes the float64 torch holds: expm1(-1e308) is -1.0 there, not -1 + e^(-1e308)
    "steps_of_expm1_at_the_edges": ("y: x.expm1().ceil() * 3 + x.expm1().floor()", {"x": "[-1e308, -5e-324, 1e-300]"},
                                    lambda x: x.expm1().ceil() * 3 + x.expm1().floor()),
}


class TestRunawayExactValues:
    """Exact values far outside float64's range end as torch's inf, 0 or nan, not as an internal error."""

    @pytest.mark.parametrize("name", sorted(CASES))
    def test_builds_every_format_and_matches_torch(self, name, tmp_path):
        """md, json and tex build (exit 0), and the JSON's values and grads are torch float64's."""
        steps, inputs, fn = CASES[name]
        spec = _spec(tmp_path, steps, **inputs)
        result = invoke("build", str(spec), "--out", str(tmp_path / "o"), "--format", "md,json,tex")
        assert result.exit_code == 0, result.output
        doc = json.loads((tmp_path / "o" / "edge.json").read_text())
        values, grads = _torch_grads(fn, **{k: json.loads(v) for k, v in inputs.items()})
        assert all(_same(a, b) for a, b in zip(doc["values"]["y"], values, strict=True)), (doc["values"]["y"], values)
        for leaf, theirs in grads.items():
            assert all(_same(a, b) for a, b in zip(doc["grads"][leaf], theirs, strict=True)), (leaf, doc["grads"], grads)

    def test_check_agrees(self, tmp_path):
        """derive check on tanh(-exp(1e20)): exit 0, one spec agrees."""
        spec = _spec(tmp_path, "y: (-x.exp()).tanh()", x="[1e20, 1]")
        result = invoke("check", str(spec))
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1] == "1 agree with torch, 0 failed"

    def test_check_agrees_on_gelu_of_inf_in_float32(self, tmp_path):
        """gelu at 1e100 (inf in float32): torch's vectorized float32 kernel gives nan there, and derive says so."""
        spec = _spec(tmp_path, "y: torch.nn.functional.gelu(x)", x="[1, 1e100]")
        result = invoke("check", str(spec))
        assert (result.exit_code, result.stderr) == (0, "")
        assert result.output.splitlines()[-1] == "1 agree with torch, 0 failed"

    def test_check_agrees_on_a_quotient_at_a_tiny_divisor(self, tmp_path):
        """x / x at x = 1e-160: b² is subnormal, so the quotient rule is taken as torch takes it; check agrees."""
        spec = _spec(tmp_path, "y: x / x", x="[1e-160, 1e-45]")
        result = invoke("check", str(spec))
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1] == "1 agree with torch, 0 failed"

    def test_softmax_pow_is_fast(self, tmp_path):
        """A 2-element softmax ** w with values at 1e±300 builds in well under the 10 s budget."""
        spec = _spec(tmp_path, "y: x.softmax(0) ** w", x="[1e-300, 1e300]", w="[0.5, 3]")
        started = time.monotonic()
        result = invoke("build", str(spec), "--out", str(tmp_path / "o"), "--format", "md,json")
        assert result.exit_code == 0, result.output
        assert time.monotonic() - started < 5


class TestSubnormals:
    """A value that float64 holds as a subnormal is shown and derived as the float torch has."""

    def test_decimal_of_the_least_subnormal(self):
        """5e-324 and 1e-310 format like Python's own %e rounding, in LaTeX form."""
        assert decimal(5e-324) == r"4.94066 \times 10^{-324}"
        assert decimal(1e-310) == r"1 \times 10^{-310}"
        assert decimal(9.9999999e9) == rf"{float(f'{9.9999999e9:.5e}'.split('e')[0]):g} \times 10^{{10}}"

    def test_value_rounding_to_5e_324_builds_and_matches_torch(self, tmp_path):
        """x = [3e-324, 1e-310] times 1e300: every format builds, and y is what torch computes from the rounded x."""
        spec = _spec(tmp_path, "y: x * 1e300", x="[3e-324, 1e-310]")
        result = invoke("build", str(spec), "--out", str(tmp_path / "o"), "--format", "md,json,tex")
        assert result.exit_code == 0, result.output
        doc = json.loads((tmp_path / "o" / "edge.json").read_text())
        values, _ = _torch_grads(lambda x: x * 1e300, x=[3e-324, 1e-310])
        assert all(_same(a, b) for a, b in zip(doc["values"]["y"], values, strict=True)), (doc["values"]["y"], values)


class TestLiteralsOutOfRange:
    """A literal that Python would turn into inf or 0.0, or one with a runaway exponent, is refused with its line."""

    @pytest.mark.parametrize("literal, python, message", [
        ("1e400", 1e400, f"the number 1e400 is out of float64's range {RANGE}"),
        ("1e-400", 1e-400, f"the number 1e-400 is out of float64's range {RANGE}"),
        ("(1e200 * 1e200)", 1e200 * 1e200, f"1e+200 * 1e+200 is out of float64's range {RANGE}"),
        ("1e99999999", float("1e99999999"),
         "the number 1e99999999 has too many exponent digits (allowed: at most 3 after the e)"),
    ])
    def test_expression_literal(self, literal, python, message, tmp_path):
        """Exit 1 fast, the step's line and the reason; Python itself would hand torch inf or 0.0 for it."""
        spec = _spec(tmp_path, f"y: x * {literal}", x="[1, 2]")
        assert python in (math.inf, 0.0)
        started = time.monotonic()
        result = invoke("build", str(spec), "--out", str(tmp_path / "o"))
        assert time.monotonic() - started < 5
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == f"{spec}:7: step 'y': {message}"

    def test_yaml_exponent_digits(self, tmp_path):
        """A YAML value with a 9-digit exponent is refused on its line, by its exponent's length."""
        spec = _spec(tmp_path, "y: x * 2", x="[1e-999999999, 1]")
        result = invoke("build", str(spec), "--out", str(tmp_path / "o"))
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == (
            f"{spec}:4: inputs.x.value[0]: exponent too long: 1e-999999999 (allowed: at most 3 digits after the e)")


def test_max_at_the_largest_double_keeps_its_gradient(tmp_path):
    """max of a tensor holding 1.7976931348623157e308 sends the gradient there, as torch does (found by the long fuzz)."""
    from generator.pipeline.build import compare_spec, derive_spec

    spec = tmp_path / "m.yaml"
    spec.write_text("title: t\ndtype: float64\ninputs:\n  x:\n    value: [1.7976931348623157e308, -1, 1e308]\n"
                    "    requires_grad: true\nsteps:\n  out: x.max()\nbackward: out\n")
    x = torch.tensor([1.7976931348623157e308, -1, 1e308], dtype=torch.float64, requires_grad=True)
    x.max().backward()
    assert [float(v) for v in derive_spec(spec).grads["x"]] == x.grad.tolist() == [1.0, 0.0, 0.0]
    assert compare_spec(spec, script=False) == []


@pytest.mark.parametrize(("dtype", "step", "torch_fn"), [
    ("float64", "s0.max(0).values", lambda s: s.max(0).values),
    ("float32", "s0.max(0).values", lambda s: s.max(0).values),
    ("float64", "s0[:, 0].max()", lambda s: s[:, 0].max()),
    ("float64", "torch.where(s0 > 3.4e38, s0, s0 * 2)", lambda s: torch.where(s > 3.4e38, s, s * 2)),
])
def test_a_tie_made_by_rounding_is_decided_as_torch_decides_it(dtype, step, torch_fn, tmp_path):
    """3.4e38 + 2 and 3.4e38 - 1 differ exactly but tie in float64: the gradient goes where torch sends it, as it
    decides a tie, a kink or a comparison on the numbers it holds (found by the long property run)."""
    from generator.pipeline.build import compare_spec, derive_spec

    spec = tmp_path / "t.yaml"
    spec.write_text(f"title: t\ndtype: {dtype}\ninputs:\n  x0:\n    value: [3.4e38]\n    requires_grad: true\n"
                    "  x1:\n    value: [[-1, 1.4e-45], [2, 3e-324], [1e-308, -2]]\n    requires_grad: true\n"
                    f"steps:\n  s0: x0 + x1\n  s2: {step}\n  out: s2.mean()\nbackward: out\n")
    x0 = torch.tensor([3.4e38], dtype=torch.float64, requires_grad=True)
    x1 = torch.tensor([[-1, 1.4e-45], [2, 3e-324], [1e-308, -2]], dtype=torch.float64, requires_grad=True)
    torch_fn(x0 + x1).mean().backward()
    if dtype == "float64":
        assert [float(v) for v in derive_spec(spec).grads["x1"]] == x1.grad.reshape(-1).tolist()
    assert compare_spec(spec, script=False) == []


FOUND_BY_THE_LONG_RUN = {
    # float32's -inf through trunc, then times -0.0 is nan: torch's trunc backward writes zeros, so no nan comes back
    "step_gradient_stops_nan": ("inputs:\n  x1:\n    value: [[1e-40, -2, 1e-160], [3e-324, 1, -1e308]]\n"
                                "    requires_grad: true\nsteps:\n  s0: x1.trunc()\n  s2: (s0 * -0.0).exp()\n"
                                "  out: s2.sum()\nbackward: out\n"),
    # x - x is +0.0, times -1 is -0.0, and torch's rsqrt(-0.0) is 1 / sqrt(-0.0) = -inf (IEEE's pow says +inf)
    "rsqrt_at_negative_zero": ("dtype: float64\ninputs:\n  x0:\n    value: 0.5\n    requires_grad: true\nsteps:\n"
                               "  s0: x0 - x0\n  s1: (s0 * -1).rsqrt()\n  out: s1 * x0\n"
                               "backward: out\n"),
    # sqrt(-2) is nan, and softplus' threshold test on nan made sympy raise (an internal error)
    "kink_test_on_nan": ("dtype: float64\ninputs:\n  x0:\n    value: [0.5, -2]\n    requires_grad: true\nsteps:\n"
                         "  s1: torch.nn.functional.softplus(x0.sqrt())\n  out: s1.sum()\nbackward: out\n"),
    # normalize of a 0-d tensor expands its norm to the size (), which torch takes as a tuple only
    "normalize_a_scalar": ("inputs:\n  x1:\n    value: -0.25\n    requires_grad: true\nsteps:\n"
                           "  s1: torch.nn.functional.normalize(x1.trunc() + x1, dim=0, eps=0.5)\n  out: s1 * x1\n"
                           "backward: out\n"),
    # e^x - 1 at 1e-160 and 5e-324 cancels beyond sympy's default 100 digits: 1/(2 sqrt(expm1 x)) was 18% off
    "expm1_cancels_at_tiny_x": ("dtype: float64\ninputs:\n  x0:\n    value: [1e-160, 5e-324, 0.75]\n"
                                "    requires_grad: true\nsteps:\n  s2: x0.expm1().sqrt()\n  out: s2.sum()\n"
                                "backward: out\n"),
    # a 0-d prod passes its gradient on (float32's inf / inf is never taken), and a prod over all elements with two
    # zeros gives zeros (a nan among the others is never multiplied in)
    "prod_of_a_scalar_at_inf": ("inputs:\n  x0:\n    value: 1e308\n    requires_grad: true\nsteps:\n"
                                "  s0: x0.prod(dim=0)\n  out: s0.sum()\nbackward: out\n"),
    "prod_with_two_zeros_and_nan": ("inputs:\n  x2:\n    value: [[1.7976931348623157e308, 1e20], [1e308, -3.4e38]]\n"
                                    "    requires_grad: true\nsteps:\n  s0: (x2 * 1e-310).prod()\n  out: s0.mean()\n"
                                    "backward: out\n"),
    # float32's mean of [3.4e38, 3.4e38] is inf in var's backward: std's 0 mask, then 0 · inf, is nan as in torch
    "std_backward_mean_overflows": ("inputs:\n  x0:\n    value: [[1, 3], [3.4e38, 3.4e38]]\n    requires_grad: true\n"
                                    "steps:\n  s0: x0.std(dim=-1, correction=0)\n  out: s0.sum()\nbackward: out\n"),
    # reciprocal's backward is -(out · out): -1e-20 squared is a float32 subnormal, where 1/(x · x) overflowed to -0.0
    "reciprocal_backward_squares_the_result": ("inputs:\n  x0:\n    value: [-1e20, 710]\n    requires_grad: true\n"
                                               "steps:\n  s0: x0.reciprocal()\n  out: s0.sum()\nbackward: out\n"),
    # float32's 3.4e38 · 2 is inf before · 0.1 could bring it back: torch's prod multiplies in the dtype
    "prod_overflows_on_the_way": ("inputs:\n  x0:\n    value: [[3.4e38, 1.5], [2, 2], [0.1, 0.75]]\n"
                                  "    requires_grad: true\nsteps:\n  s0: x0.prod(dim=0)\n  out: s0.sum()\n"
                                  "backward: out\n"),
    # logsumexp of [-1e20, 710]: e^710 is past float64, so the exact form is shifted by the maximum as torch's is
    "logsumexp_beyond_e_709": ("dtype: float64\ninputs:\n  x0:\n    value: [[-750, 1.4e-45], [-1e20, 710]]\n"
                               "    requires_grad: true\nsteps:\n  s1: x0.logsumexp(-1)\n  out: s1.sum()\n"
                               "backward: out\n"),
    # a 0-d tensor's norm along dim 0 is sqrt(x · x) in torch: 0 for 1e-308 (and 1e-45 in float32), inf for 1e200
    "norm_of_a_scalar_squares_it": ("dtype: float64\ninputs:\n  x0:\n    value: [1e-308, 1e200, -3]\n"
                                    "    requires_grad: true\nsteps:\n  s2: x0[0].norm(dim=0) + x0[1].norm(dim=0) +"
                                    " x0[2].norm(dim=-1) + x0[0].norm()\n  out: s2 * 2\nbackward: out\n"),
    "norm_of_a_float32_scalar_squares_it": ("inputs:\n  x0:\n    value: [1e-45, 3.4e38]\n    requires_grad: true\n"
                                            "steps:\n  s2: x0[0].norm(dim=0) + x0[1].norm(dim=0)\n  out: s2 * 2\n"
                                            "backward: out\n"),
    # float32's -inf, -inf, inf, 3: in float64 the same mean sums -1e308 twice and 1e308, past the range in some
    # orders only; build refuses no float32 example for that, and check compares it in float32 alone
    "float64_order_dependent_sum_of_a_float32_example": ("inputs:\n  x0:\n    value: [[-1e308, -1e308], [1e308, 3]]\n"
                                                         "    requires_grad: true\nsteps:\n  s0: x0.minimum(x0)\n"
                                                         "  out: s0.mean()\nbackward: [out, out]\n"),
    # relu after masked_fill(x == 0, 1): relu' decides on the float64 torch holds, where sympy 1.14's Float(0.0) != 0
    # made where's choice take the filled 1 and relu'(-0.25) 1
    "kink_decided_after_masked_fill": ("dtype: float64\ninputs:\n  x0:\n    value: [1e-45, -0.25]\n"
                                       "    requires_grad: true\nsteps:\n  s1: x0.masked_fill(x0 == 0, 1)\n"
                                       "  s3: s1.relu()\n  out: s3.sum()\nbackward: out\n"),
    # layer_norm over groups of one: torch's kernel takes the variance as x·x - x·x, nan where x·x overflows
    # (float32 from 1.9e19 on, float64 from 1.3e154), where the centred form gives 0
    "layer_norm_of_one_element_overflows": ("inputs:\n  x0:\n    value: [[3.4e38, -0.25], [1e308, 1e20], [1e-160, 2e19]]\n"
                                            "    requires_grad: true\nsteps:\n"
                                            "  s2: torch.nn.functional.layer_norm(x0.reshape(-1, 1) * 2, [1], eps=0.5)\n"
                                            "  out: s2.mean()\nbackward: out\n"),
    "layer_norm_of_one_float64_element_overflows": ("dtype: float64\ninputs:\n  x0:\n    value: [[1e155, -0.25], [1e20, 3]]\n"
                                                    "    requires_grad: true\nsteps:\n"
                                                    "  s2: torch.nn.functional.layer_norm(x0.reshape(-1, 1), [1])\n"
                                                    "  out: (s2 * x0.reshape(-1, 1)).sum()\nbackward: out\n"),
    # std of four 3.4e38 in float32: torch's mean sums in the dtype, inf, so each x - mean is infinite and std inf,
    # where float64's mean is 3.4e38 and the std 0
    "spread_whose_mean_overflows": ("inputs:\n  x0:\n    value: [[-3.4e38, 3], [0.1, 1e-40]]\n    requires_grad: true\n"
                                    "steps:\n  s0: x0 / x0\n  s2: (s0.unsqueeze(-1) * 3.4e38).std(unbiased=False) +"
                                    " (s0 * 3.4e38).var(dim=1)[0]\n  out: s2.mean()\nbackward: [out, out]\n"),
    # prod with one zero: torch's gradient there is the running products from the left and from the right, each
    # rounded in float32, where 3e-20 · -1e-20 · 2e-20 vanishes to -0.0 and meets inf: nan
    "prod_running_products_round_in_the_dtype": ("inputs:\n  x0:\n    value: [[1e308, -1, -5e-324], [2, -1, 3]]\n"
                                                 "    requires_grad: true\nsteps:\n  s0: (x0 * 1e-20).prod()\n"
                                                 "  out: s0.mean()\nbackward: [out, out]\n"),
    # prod of -0.25, -1 and 5e-324 underflows to 0 in float64: torch's gradient is out / x, 0, not the product of the
    # others
    "prod_that_underflows": ("dtype: float64\ninputs:\n  x0:\n    value: [[-0.25, 3e-324], [-1, -1], [3e-324, 3e-324]]\n"
                             "    requires_grad: true\nsteps:\n  s0: x0.prod(dim=0)\n  out: s0.mean()\nbackward: [out]\n"),
    # var() of all six: torch's var_backward takes x - self.mean(), the mean summed as its kernel adds a contiguous
    # row; summed one by one it is 0.1 + 1.4e-17, and x.grad of 0.1 gets the other sign
    "var_backward_mean_as_torch_sums": ("dtype: float64\ninputs:\n  x0:\n    value: [[0.5, -2], [1, 3], [-2, 0.1]]\n"
                                        "    requires_grad: true\nsteps:\n  s0: x0.var()\n  out: s0.sum()\n"
                                        "backward: [out]\n"),
    # float32 gelu at x = -4: 1 + erf(x/√2) cancels to 6e-5, so the kernel's rounding of erf moves the result by 2e-7 of
    # 1.3e-4, which the prediction's bound must allow for
    "gelu_cancels_far_below_zero": ("inputs:\n  x0:\n    value: [[1.5, -2], [-0.25, 1.5]]\n    requires_grad: true\n"
                                    "steps:\n  s0: x0 + x0\n  s1: torch.nn.functional.gelu(s0)\n  out: (s1 * x0).sum()\n"
                                    "backward: [out, out]\n"),
    # float32 gelu's vector kernel (two or more elements) forms x·(1 + erf(x/√2)) before halving: inf from 2**127
    "gelu_vector_kernel_overflows": ("inputs:\n  x0:\n    value: [[1, 1.7014118e38], [1.7e38, 3.4e38]]\n"
                                     "    requires_grad: true\nsteps:\n  s0: torch.nn.functional.gelu(x0)\n"
                                     "  out: s0.mean()\nbackward: out\n"),
    # x / x is 1 everywhere, so argmax is 0: the float64 the exact engine decides on divided as 1.4e-45 · (1/1.4e-45),
    # 0.9999999999999999, and 5e-324 · (1/5e-324), inf, where torch divides
    "argmax_of_quotients_decided_as_torch_divides": (
        "dtype: float64\ninputs:\n  x0:\n    value: [[1.4e-45, 3, 1e100], [3e-324, 0.1, 1e-40]]\n"
        "    requires_grad: true\nsteps:\n  s0: x0 / x0\n  i1: s0.argmax()\n  out: s0.sum()\nbackward: [out, out]\n"),
    # float32 1e-308 and 1e-310 are both 0: prod's backward over all elements with two zeros writes zeros without
    # taking the gradient, nan here (0 · inf)
    "prod_two_zeros_ignores_a_nan_gradient": (
        "inputs:\n  x0:\n    value: [1e-308, 1e-310]\n    requires_grad: true\nsteps:\n  s1: x0.prod()\n"
        "  s2: (s1 * 1e308).pow(2)\n  out: s2.mean()\nbackward: [out]\n"),
    # float32 std of [1e-40, 0, 0] is 4.7e-41 (Welford in double): torch's std_backward divides the gradient by
    # 2 · std first, which overflows float32, so x.grad is ±inf where the exact local derivative is ±0.47
    "std_backward_divides_the_gradient_first": (
        "inputs:\n  x0:\n    value: [[-2, 1e20, 0.1], [1e-40, 5e-324, 5e-324]]\n    requires_grad: true\n"
        "steps:\n  s0: x0.std(dim=-1, correction=0)\n  out: s0.sum()\nbackward: [out]\n"),
    # log1p(1e-310) ** -0.5: sympy's log of a number that close to 1 is 0 at its working precision, and the power
    # divided by it (an internal error)
    "log_near_one_to_a_negative_power": (
        "dtype: float64\ninputs:\n  x1:\n    value: [1e-310, 0.5]\n    requires_grad: true\nsteps:\n"
        "  s0: x1.log1p()\n  s2: s0.rsqrt()\n  out: s2.sum()\nbackward: [out]\n"),
    # torch takes the norm of a 0-d tensor along dim 0 as sqrt(x · x): (-2e-160)² is a subnormal that keeps 4 digits,
    # so the norm is 2.0000111e-160 and its gradient 1.0000056, which the exact 1 must be allowed to differ from
    "norm_of_a_scalar_squares_into_subnormals": (
        "dtype: float64\ninputs:\n  x0:\n    value: [[1e-160, 2], [2, 1e-160]]\n    requires_grad: true\nsteps:\n"
        "  s1: (x0 * -2).max()\n  s2: s1.norm(dim=0)\n  out: s2.mean()\nbackward: [out]\n"),
    # float32 1e-324 is -0.0: torch's pow kernel takes x ** 0.5 as sqrt and its backward's x ** -0.5 as 1 / sqrt(x),
    # -inf at -0.0 where IEEE's pow gives +inf
    "half_power_at_negative_zero": ("inputs:\n  x0:\n    value: [-5e-324, 0]\n    requires_grad: true\nsteps:\n"
                                    "  s0: x0 ** 0.5\n  out: s0.mean()\nbackward: [out, out]\n"),
    # var along a dim goes by Welford in double, whose running mean stays within range: var of [-1e308, -1e308] is 0,
    # where the arrays' mean had overflowed to -inf (and the variance to inf)
    "var_along_a_dim_never_sums_past_the_range": (
        "inputs:\n  x0:\n    value: [[-1e308, 1e-45], [-1e308, -1e308]]\n    requires_grad: true\nsteps:\n"
        "  s0: x0.var(0, unbiased=False)\n  s1: x0.sigmoid()\n  out: s1.mean()\nbackward: [out]\n"),
    # torch's log1p of the smallest subnormal is 0 (its kernel halves, rounds and doubles a number that small), so
    # relu's kink after it takes 0 there, not the exact 1.4e-45 (float32) or 5e-324 (float64)
    "log1p_of_the_smallest_subnormal_is_zero": (
        "inputs:\n  x0:\n    value: [1e-160, 1.4e-45, 0.1, -1.4e-45, 4.2e-45]\n    requires_grad: true\nsteps:\n"
        "  s0: x0.log1p()\n  s1: torch.relu(s0)\n  out: s1.sum()\nbackward: [out]\n"),
    "log1p_of_the_smallest_subnormal_is_zero_float64": (
        "dtype: float64\ninputs:\n  x0:\n    value: [5e-324, 1.5e-323, -5e-324, 0.1]\n    requires_grad: true\n"
        "steps:\n  s0: x0.log1p()\n  s1: torch.relu(s0)\n  out: s1.sum()\nbackward: [out]\n"),
}


@pytest.mark.parametrize("small", [None, 0], ids=["exact", "arrays"])
@pytest.mark.parametrize("name", FOUND_BY_THE_LONG_RUN)
def test_what_the_long_run_found_agrees_with_torch(name, small, tmp_path, monkeypatch):
    """Specs the long property run found disagreeing, now agreeing with torch in their dtype and in float64."""
    from generator.engines import sparse
    from generator.pipeline.build import compare_spec

    if small is not None:
        monkeypatch.setattr(sparse, "SMALL", small)
    spec = tmp_path / "s.yaml"
    spec.write_text("title: t\n" + FOUND_BY_THE_LONG_RUN[name])
    assert compare_spec(spec, script=False) == []


SIGNED_ZERO_CASES = {
    # relu(-1) * -1 is -0.0 to torch; (-0.0) ** -1 is -inf and its ln is -inf, so d/db is +inf, not +0.0's -inf
    "exponent_at_negative_zero": ("y: (x.relu() * x) ** w", {"x": "[-1, 2, -3]", "w": "[-1, -2, 0.5]"},
                                  lambda x, w: (x.relu() * x) ** w),
    # b (-0.0)**(b - 1) for an even b < 0: (-0.0)**-3 is -inf, so -2 times it is +inf
    "base_at_negative_zero": ("y: (x * -1) ** -2", {"x": "[0, 1]"}, lambda x: (x * -1) ** -2),
    # d(x/x)/dx at 1e-160: torch's 1 / x - (x / x) / x is 0; 1 / x - x / x² is not, x² being subnormal
    "quotient_by_itself_at_1e_160": ("y: x / x", {"x": "[1e-160, 0.5]"}, lambda x: x / x),
}


@pytest.mark.parametrize("small", [None, 0], ids=["exact", "arrays"])
@pytest.mark.parametrize("name", SIGNED_ZERO_CASES)
def test_signed_zeros_and_tiny_divisors_as_torch(name, small, tmp_path, monkeypatch):
    """Found by the long fuzz on the arrays path: -0.0 in a power and x / x at 1e-160 give torch's grads on both paths."""
    from generator.engines import sparse
    from generator.pipeline.build import compare_spec, derive_spec

    if small is not None:
        monkeypatch.setattr(sparse, "SMALL", small)
    steps, inputs, fn = SIGNED_ZERO_CASES[name]
    path = _spec(tmp_path, steps, **inputs)
    _, grads = _torch_grads(fn, **{k: json.loads(v) for k, v in inputs.items()})
    derived = derive_spec(path).grads
    for leaf, theirs in grads.items():
        assert all(_same(float(ours), t) for ours, t in zip(derived[leaf], theirs)), (leaf, derived[leaf], theirs)
    assert compare_spec(path, script=False) == []


def test_document_of_a_root_of_a_negative_number_renders(tmp_path):
    """rsqrt of a negative number (torch: nan) is written as nan; the all-at-once derivative, complex in sympy, is
    left out rather than crash the document (found by the long property run)."""
    from generator.pipeline.build import render_spec

    spec = tmp_path / "s.yaml"
    spec.write_text("title: t\ninputs:\n  x2:\n    value: [[-2, 0.1], [0.5, 2]]\n    requires_grad: true\nsteps:\n"
                    "  s0: (x2 * 1.5).sigmoid()\n  s3: (s0 * -0.25).rsqrt()\n  out: s3.mean()\nbackward: out\n")
    text = render_spec(spec, ("md",), None)["s.md"].decode()
    x = torch.tensor([[-2, 0.1], [0.5, 2]], requires_grad=True)
    ((x * 1.5).sigmoid() * -0.25).rsqrt().mean().backward()
    assert torch.isnan(x.grad).all()
    assert "tensor([[nan, nan],\n        [nan, nan]])" in text


def test_layer_norm_of_numbers_whose_squares_overflow_is_refused(tmp_path):
    """layer_norm of groups holding numbers whose squares overflow the dtype is refused at its line: torch's moments
    then give 0 or nan by the order its kernel adds (found by the long property run: [-1e20, -2e20, 0] in float32)."""
    from .helpers import invoke

    spec = tmp_path / "s.yaml"
    spec.write_text("title: t\ninputs:\n  x0:\n    value: [[1.5, 1], [-1e20, 3]]\n    requires_grad: true\nsteps:\n"
                    "  s0: torch.nn.functional.layer_norm(torch.stack([x0, x0 * 2, x0.exp()], -1), (3,))\n"
                    "  out: s0.sum()\nbackward: out\n")
    result = invoke("check", spec)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"{spec}:7: s0: layer_norm of numbers as large as 2e+20: torch's float32 moments square them and overflow in an"
        " order its kernel picks (allowed: numbers below 5.33e+18 in size in groups of 3)")
    x = torch.tensor([[-1e20, -2e20, 0.0]])
    assert torch.isnan(torch.nn.functional.layer_norm(x, (3,))).all()  # what torch gives here, which derive did not
