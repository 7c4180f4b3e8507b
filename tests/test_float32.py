"""Issue 10, group 6: what torch computes in the spec's dtype, predicted, printed and checked.

The oracle everywhere is real torch: the generated script run by Python, or the graph run
in torch in float32 and float64.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generator.pipeline.build import compare_spec, derive_spec, render_spec
from generator.pipeline.check import run
from generator.document.code import printed, torch_code
from generator.floats.ieee import to_float
from generator.document.small import build_document
from generator.graph.walk import build_graph
from generator.spec.load import load

try:  # the new parts; imported apart so that the cases also run (and fail) on the base commit
    from generator.engines import shadow as shadow_module
    from generator.pipeline.check import compare_shadow, loose
    from generator.engines.shadow import Shadow, shadow
except ImportError:
    pass

from .helpers import GALLERY, invoke

ROOT = Path(__file__).resolve().parent.parent


def spec_file(tmp_path: Path, value: str, expr: str, *, dtype: str = "float32", name: str = "s") -> Path:
    """Write a spec: x (requires grad) through one step y, backward with ones."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"title: t\ndtype: {dtype}\ninputs:\n  x: {{value: {value}, requires_grad: true}}\n"
        f"steps:\n  y: {expr}\nbackward: {{output: y, gradient: {{fill: 1, shape: [{value.count(',') + 1}]}}}}\n"
    )
    return path


def torch_prints(*scripts: str) -> list[str]:
    """Run each generated script with real torch, in one fresh Python, and return what each prints."""
    marker = "\n--8<-- derive test --8<--\n"
    driver = "import sys\n" + "".join(
        f"exec(compile({s!r}, 'example{i}.py', 'exec'), {{}})\nsys.stdout.write({marker!r})\n"
        for i, s in enumerate(scripts)
    )
    result = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.split(marker)[:-1]


def document_printed(path: Path) -> str:
    return build_document(derive_spec(path), stem=path.stem).printed


def old_shadow(graph, *, dtype=None):
    """derive's prediction before the shadow: the exact values, rounded once to the dtype at the end."""
    derivation = derive_spec_of(graph)
    dtype = dtype or graph.spec.dtype
    cast = shadow_module.DtypeCast(dtype)
    values = {n: cast(np.array([to_float(v) for v in vs])) for n, vs in derivation.values.items()}
    grads = {n: None if g is None else cast(np.array([to_float(v) for v in g])) for n, g in derivation.grads.items()}
    return Shadow(dtype=dtype, values=values, grads=grads,
                  value_scale={n: np.zeros(v.size) for n, v in values.items()},
                  grad_scale={n: None if g is None else np.zeros(g.size) for n, g in grads.items()})


def derive_spec_of(graph):
    from generator.engines.exact import derive

    return derive(graph)


class TestOverflowInTheSpecsDtype:
    """The issue's cases: float32 overflow that exact arithmetic (and float64 torch) never sees."""

    @pytest.mark.parametrize("value", ["[1e20, 1]", "[-1e20, 1]"])
    def test_printed_block_is_what_float32_torch_prints(self, tmp_path, value):
        """x * x / x at x = ±1e20: the document prints torch's -inf, not the exact 1."""
        path = spec_file(tmp_path, value, "x * x / x")
        (out,) = torch_prints(torch_code(derive_spec(path).graph))
        assert "inf" in out
        assert document_printed(path) == out

    def test_document_says_where_float32_overflows(self, tmp_path):
        """One sentence names the op that overflows, its element and what torch prints instead."""
        path = spec_file(tmp_path, "[1e20, 1]", "x * x / x")
        md = render_spec(path, ("md",), None)["s.md"].decode()
        note = next(par for par in md.split("\n\n") if par.startswith("In float32"))
        assert "`inf` at `t[0]`" in note and "prints `-inf` for `x.grad[0]`" in note and "gives `1`" in note
        zh = render_spec(path, ("md",), "zh")["s.md"].decode()
        assert "在 float32 下" in zh and "`x.grad[0]` 输出 `-inf`" in zh

    def test_check_agrees_when_the_prediction_is_right(self, tmp_path):
        """derive's float32 prediction has the inf that torch shows, so check finds nothing to report."""
        assert compare_spec(spec_file(tmp_path, "[1e20, 1]", "x * x / x")) == []

    def test_check_catches_a_prediction_without_the_overflow(self, tmp_path, monkeypatch):
        """With the old prediction (exact values, rounded once), check reports torch's float32 inf."""
        monkeypatch.setattr(shadow_module, "shadow", old_shadow)
        lines = compare_spec(spec_file(tmp_path, "[1e20, 1]", "x * x / x"))
        assert any("y[0] in float32: predicted 1.0000000200408773e+20, torch inf" in line for line in lines)
        assert any("x.grad[0] in float32" in line and "torch -inf" in line for line in lines)

    def test_float64_overflow_prints_what_float64_torch_prints(self, tmp_path):
        """The float64 form of the same problem: x * x / x at 1e300 prints torch's -inf."""
        path = spec_file(tmp_path, "[1e300, 1]", "x * x / x", dtype="float64")
        (out,) = torch_prints(torch_code(derive_spec(path).graph))
        assert "-inf" in out
        assert document_printed(path) == out

    def test_float64_overflow_of_constants_is_derived_as_torch(self, tmp_path):
        """x * 1e300 * 1e300 * 1e-300 is inf in float64 torch (exactly 1e300 x): derived so, and check agrees."""
        import torch

        path = spec_file(tmp_path, "[1, 2]", "x * 1e300 * 1e300 * 1e-300", dtype="float64")
        x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
        y = x * 1e300 * 1e300 * 1e-300
        y.backward(torch.ones(2, dtype=torch.float64))
        derivation = derive_spec(path)
        assert [float(v) for v in derivation.values["y"]] == y.tolist()
        assert [float(v) for v in derivation.grads["x"]] == pytest.approx(x.grad.tolist(), rel=1e-12)
        assert compare_spec(path) == []


class TestShadowMatchesTorch:
    """The float32 (and float64) prediction equals torch in that dtype, within rounding, inf and nan exactly."""

    @pytest.mark.parametrize("path", GALLERY, ids=[p.stem for p in GALLERY])
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_gallery(self, path, dtype):
        """Every value and leaf grad of every gallery spec, run in torch in each dtype."""
        graph = build_graph(load(path))
        assert compare_shadow(shadow(graph, dtype=dtype), run(graph, dtype=dtype, jacobians=False), graph) == []

    X, P = "[0.3, -1.7, 2.5, 0.9]", "[0.3, 1.7, 2.5, 0.01]"
    CASES = [
        (X, "x * 0.1 + 0.7"), (X, "x / 3"), (X, "3 / x"), (X, "x - x * x"), (X, "2 - x"), (X, "x ** 2"),
        (X, "x ** 3"), (X, "x ** -2"), (P, "x ** 0.5"), (P, "x ** 1.5"), (X, "2 ** x"), (P, "x ** x"),
        (X, "x.exp()"), (P, "x.log()"), (P, "x.sqrt()"), (X, "x.sin()"), (X, "x.cos()"), (X, "x.tanh()"),
        (X, "x.sigmoid()"), (X, "x.relu()"), (X, "x.abs()"), (X, "x.clamp(min=-0.5, max=0.7)"),
        (X, "x.sum() * x"), (X, "x.mean() * x"), (X, "x.norm() * x"), (X, "x.max() * x"), (X, "x.min() * x"),
        (X, "x.softmax(0)"), (X, "x.log_softmax(0)"), (X, "(x @ x) * x"), (X, "(x * 1.1).tanh() * x.sigmoid()"),
        ("[1e20, 1]", "x * x / x"), ("[1, 2]", "x * 1e30 * 1e30 * 1e-30"), ("[100, 1]", "x.exp()"),
        ("[100, -100]", "x.exp() / x.exp()"), ("[20, 9]", "x.tanh()"), ("[90, -90]", "x.sigmoid()"),
        ("[1e-30, 1e-20]", "x * x"), ("[1e-40, 3]", "x.log()"), ("[0, 4]", "x.sqrt()"), ("[1e-45, 1e-38]", "x * 0.5"),
        ("[3e38, 1]", "x + x"), ("[3e38, 3e38]", "x.sum() * x"), ("[1e20, 1e20]", "x.norm() * x"),
        ("[1e-30, 2e-30]", "x.norm() * x"), ("[1e13, 1]", "x ** 3"), ("[1e-20, 1]", "x ** -2"),
        ("[1e30, -1e30, 1]", "x.softmax(0)"), ("[1e30, -1e30, 1]", "x.log_softmax(0)"), ("[1, 1e-8, -1]", "(x + 1) - 1"),
    ]

    @pytest.mark.parametrize("value, expr", CASES, ids=[f"{e} at {v}" for v, e in CASES])
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_op(self, tmp_path, value, expr, dtype):
        """One op (or two) on ordinary and extreme values: values and grads as torch computes them."""
        graph = build_graph(load(spec_file(tmp_path, value, expr, dtype=dtype)))
        assert compare_shadow(shadow(graph), run(graph, dtype=dtype, jacobians=False), graph) == []

    def test_tolerance_catches_a_digit(self, tmp_path):
        """A prediction off by one part in 10⁴ (a printed digit) is reported; torch's own number is not."""
        graph = build_graph(load(spec_file(tmp_path, self.X, "(x * 1.1).tanh() * x.sigmoid()")))
        shade = shadow(graph)
        theirs = run(graph, dtype="float32", jacobians=False)
        assert loose(theirs.values["y"], theirs.values["y"], shade.value_scale["y"], dtype="float32").size == 0
        off = np.asarray(theirs.values["y"]) * (1 + 1e-4)
        assert loose(off, theirs.values["y"], shade.value_scale["y"], dtype="float32").size == 4

    def test_inf_and_nan_match_exactly(self):
        """inf against -inf, nan against a number and a number against inf are each a disagreement."""
        ours = [math.inf, math.nan, 1.0, math.nan, -math.inf]
        theirs = [-math.inf, 1.0, math.inf, math.nan, -math.inf]
        assert loose(ours, theirs, [math.inf] * 5, dtype="float32").tolist() == [0, 1, 2]


class TestPrintedBlock:
    """The block under the code is what the code prints in torch, byte for byte."""

    def test_gallery(self):
        """Every gallery spec: the document's block equals its script's real output (one Python for all)."""
        derivations = [derive_spec(p) for p in GALLERY]
        outs = torch_prints(*(torch_code(d.graph) for d in derivations))
        for path, d, out in zip(GALLERY, derivations, outs):
            out = re.sub(r"0x[0-9a-f]+", "0x...", out)  # a grad_fn's address changes every run
            assert build_document(d, stem=path.stem).printed == out, path.stem

    POLY = (
        "title: t\ninputs:\n  x: {{value: {x}}}\n  y: {{value: {y}}}\n  w: {{value: {w}, requires_grad: true}}\n"
        "steps:\n  p: {p}\n  loss: ((p - y) ** 2).mean()\nbackward: loss\n"
    )

    def test_per_op_rounding_changes_a_digit(self, tmp_path):
        """A polynomial fit: torch prints -0.8532 where the exact gradient, rounded once, prints -0.8533."""
        path = tmp_path / "poly.yaml"
        path.write_text(self.POLY.format(x=[-0.4, -2.7, 2.2, 0.4], y=[-0.9, -0.9, 0.2, 0.7], w=[-1.8, 0.0, -0.1],
                                         p="w[0] + w[1] * x + w[2] * x * x"))
        d = derive_spec(path)
        (out,) = torch_prints(torch_code(d.graph))
        doc = build_document(d, stem="poly")
        assert doc.printed == out
        assert printed(d) != out  # the exact values print another digit
        assert "-0.8532" in out
        assert doc.rounding is not None and doc.rounding.shown == "-0.8532" and doc.rounding.grad == "w.grad[1]"

    def test_cancellation_prints_torch_noise(self, tmp_path):
        """An exact fit: the exact gradient is 0, torch prints rounding noise, and so does the document."""
        path = tmp_path / "fit.yaml"
        path.write_text(self.POLY.format(x=[0.1, 0.2, 0.3, 0.7], y=[0.12, 0.14, 0.16, 0.24], w=[0.1, 0.2],
                                         p="w[0] + w[1] * x"))
        d = derive_spec(path)
        (out,) = torch_prints(torch_code(d.graph))
        assert printed(d) == "tensor([0., 0.])\n" != out
        assert build_document(d, stem="fit").printed == out

    def test_json_keeps_the_exact_numbers(self, tmp_path):
        """The JSON's numbers stay the derivation's; only the printed block shows torch's rounding."""
        path = spec_file(tmp_path, "[1e20, 1]", "x * x / x")
        data = json.loads(render_spec(path, ("json",), None)["s.json"])
        assert data["grads"]["x"] == [1.0, 1.0]


class TestToleranceStaysTight:
    """The float32 comparison still sees a wrong gradient where the prediction is piecewise constant."""

    @pytest.mark.parametrize("expr", ["x.max() * x", "x.relu() * 3", "x.abs() * 3"])
    def test_wrong_grad_is_reported(self, tmp_path, expr):
        """Each leaf grad off by 0.5 (a wrong share or slope) is a disagreement with torch."""
        graph = build_graph(load(spec_file(tmp_path, "[0.3, -1.7, 2.5, 0.9]", expr)))
        shade = shadow(graph)
        theirs = run(graph, dtype="float32", jacobians=False)
        wrong = Shadow(dtype="float32", values=shade.values, grads={"x": shade.grads["x"] + 0.5},
                       value_scale=shade.value_scale, grad_scale=shade.grad_scale)
        assert len(compare_shadow(wrong, theirs, graph)) == 4


class TestRoundingExplained:
    """derive check tells a difference that float64 rounding explains from a wrong number."""

    CANCEL = "title: t\ndtype: float64\ninputs:\n  x: {value: [-0.25, 3.4e38, -3.4e38], requires_grad: true}\n" \
             "steps:\n  out: x.sum()\nbackward: out\n"

    def test_cancellation_agrees(self, tmp_path):
        """Σ [-0.25, 3.4e38, -3.4e38] is -0.25 exactly and 0 in float64 torch: rounding explains it, check agrees."""
        import torch

        path = tmp_path / "cancel.yaml"
        path.write_text(self.CANCEL)
        x = torch.tensor([-0.25, 3.4e38, -3.4e38], dtype=torch.float64)
        assert float(x.sum()) == 0.0  # the oracle: float64 loses the -0.25
        assert [float(v) for v in derive_spec(path).values["out"]] == [-0.25]
        assert compare_spec(path) == []

    def test_a_wrong_exact_number_is_still_reported(self, tmp_path):
        """An exact value off by more than float64's rounding bound is reported even where the prediction is right."""
        from generator.pipeline import check

        path = tmp_path / "cancel.yaml"
        path.write_text(self.CANCEL.replace("3.4e38", "3.0"))
        derivation = derive_spec(path)
        wrong = type(derivation.values)(derivation.values)
        wrong["out"] = tuple(v + 1 for v in derivation.values["out"])
        from dataclasses import replace

        from generator.engines.shadow import shadow

        graph = derivation.graph
        lines = check.compare(replace(derivation, values=wrong), run(graph, dtype="float64"), shadow(graph, dtype="float64"))
        assert lines == ["out: derived 0.75, torch -0.25"]


class TestTorchsOwnFormulas:
    """Where torch's kernel divides or rounds each product, the prediction does too (torch in float32 as oracle)."""

    @pytest.mark.parametrize("value, expr", [
        ("[1.4e-45, 2.0]", "x.log() * 0"),  # grad / x: 0, where 0 · (1/x = inf) would be nan
        ("[1e-45, 4.0]", "x.sqrt() * 0"),
        ("[1.4e-45, 2.0]", "3 / x * 0"),
        ("[1e20, 1e100]", "x * 2 / x"),
        ("[1e-40, 0.5]", "x ** x"),  # x ** (x - 1) overflows float32 before the factor x meets it: inf, as torch
        ("[1e20]", "x.norm() / x"),  # one element's norm is its abs: x² would overflow, torch never squares it
        ("[-1.0, 2.0]", "x ** 1e-308"),  # a number exponent stays a double: (-1) ** 1e-308 is nan, not (-1) ** 0
        ("[1e-308, 2.0]", "x ** 1e-308"),  # ... but torch multiplies by it in float32: 0 · (0 ** -1 = inf) is nan
        ("[1.0, -1.0, -1.0]", "(x * 7.389056).log_softmax(-1)"),  # 0 - log(1 + 7e-7): the kernel's sum rounds at 1
    ])
    def test_division_in_backward(self, tmp_path, value, expr):
        """Values and grads of a division-form backward at float32's edges agree with float32 torch."""
        graph = build_graph(load(spec_file(tmp_path, value, expr)))
        assert compare_shadow(shadow(graph), run(graph, dtype="float32", jacobians=False), graph) == []

    def test_an_underflowed_power_derivative_is_no_mask(self, tmp_path):
        """(-1e308) ** 1e-308's derivative underflows to 0; torch masks only at b = 0, so nan upstream stays nan."""
        path = spec_file(tmp_path, "[-1e308, 2.0]", "(x ** 1e-308).exp()", dtype="float64")
        assert compare_spec(path) == []

    def test_matmul_rounds_each_product(self, tmp_path):
        """1e20 · -3.4e38 overflows in float32 before the sum meets +inf: torch gets nan, and so does the prediction."""
        path = tmp_path / "mm.yaml"
        path.write_text("title: t\ninputs:\n  x: {value: [[-3.4e38, 1e30], [1e20, 1e30]], requires_grad: true}\n"
                        "steps:\n  y: x @ x\n  out: y.mean()\nbackward: out\n")
        graph = build_graph(load(path))
        torch_run = run(graph, dtype="float32", jacobians=False)
        assert math.isnan(torch_run.values["y"][2])
        assert compare_shadow(shadow(graph), torch_run, graph) == []


class TestOrderDependentSums:
    """A sum that overflows the dtype in some orders of its terms is refused with its line, not guessed."""

    SPEC = ("title: t\ninputs:\n  x: {value: [[1, 1, 1], [1e308, -3.4e38, -3.4e38]], requires_grad: true}\n"
            "steps:\n  s: torch.sum(x)\nbackward: s\n")

    def test_refused_by_build_and_check(self, tmp_path):
        """inf + (-3.4e38 - 3.4e38) is nan where the negatives meet first, inf otherwise: one located line."""
        import torch

        x = torch.tensor([[1, 1, 1], [1e308, -3.4e38, -3.4e38]], dtype=torch.float32)
        ordered = x.reshape(-1)[0] + x.reshape(-1)[1] + x.reshape(-1)[2] + x.reshape(-1)[3]
        assert math.isinf(float(ordered + x.reshape(-1)[4] + x.reshape(-1)[5]))  # this order: inf
        assert math.isnan(float(x.reshape(-1)[3] + (x.reshape(-1)[4] + x.reshape(-1)[5])))  # this one: nan
        path = tmp_path / "sum.yaml"
        path.write_text(self.SPEC)
        message = (f"{path}:5: s: a sum here overflows float32 in some orders of its terms and not in others, so what"
                   " torch prints depends on its kernel (allowed: sums whose positive and negative terms each stay"
                   " within float32's range)")
        for command in (["build", str(path), "--out", str(tmp_path / "o")], ["check", str(path)]):
            result = invoke(*command)
            assert result.exit_code == 1
            assert result.stderr.splitlines()[0] == message

    def test_a_sum_that_overflows_in_every_order_is_derived(self, tmp_path):
        """[3e38, 3e38, 1] overflows float32 whatever the order: inf, as torch, and check agrees."""
        path = spec_file(tmp_path, "[3e38, 3e38, 1]", "x.sum() * x")
        assert compare_spec(path) == []


class TestOrderSpread:
    """How far the order of a matrix product's sums moves a float32 example (engines/shadow.py, order_spread)."""

    def _graph(self, tmp_path, steps: str, inner: int):
        rng = np.random.default_rng(3)
        a = rng.standard_normal((3, inner)).round(3).tolist()
        b = rng.standard_normal((inner, 2)).round(3).tolist()
        path = tmp_path / "m.yaml"
        path.write_text(f"title: m\ninputs:\n  a:\n    value: {a}\n    requires_grad: true\n  b:\n    value: {b}\n"
                        f"    requires_grad: true\nsteps:\n{steps}backward: out\n")
        return build_graph(load(path))

    def test_a_long_product_is_moved_within_float32_rounding(self, tmp_path):
        """Products of 40 terms: the orders move values and grads, by no more than float32 rounding of those sums."""
        from generator.engines.shadow import order_spread

        graph = self._graph(tmp_path, "  p: a @ b\n  out: (p * p).sum()\n", 40)
        shade = shadow(graph)
        assert dict(shade.unordered) == {"p": 40}
        spread = order_spread(graph, shade)
        from generator.spec.model import floats

        a, b = (floats(i.value).reshape(i.value.shape) for i in graph.spec.inputs)
        terms = np.abs(a) @ np.abs(b)  # each order is within 40 · 2**-24 of the float64 sum of |terms|
        assert 0 < spread.values["p"].max()
        assert np.all(spread.values["p"] <= 2 * 40 * 2.0**-24 * terms.reshape(-1))
        assert spread.grads["a"].max() > 0 and spread.bound("a", "grad") >= 8 * spread.grads["a"].max()

    def test_a_short_product_and_elementwise_steps_are_not(self, tmp_path):
        """Products of 8 terms or fewer are added in torch's order: nothing moves, and no document note."""
        from generator.engines.shadow import order_spread

        graph = self._graph(tmp_path, "  p: a @ b\n  out: (p * p).sum()\n", 8)
        shade = shadow(graph)
        assert shade.unordered == ()
        assert all(not v.any() for v in order_spread(graph, shade).values.values())

    def test_the_same_on_every_run(self, tmp_path):
        """The orders are seeded: two spreads of the same graph are equal, bit for bit."""
        from generator.engines.shadow import order_spread

        graph = self._graph(tmp_path, "  p: a @ b\n  out: (p * p).sum()\n", 40)
        first, second = order_spread(graph, shadow(graph)), order_spread(graph, shadow(graph))
        assert all(np.array_equal(first.values[n], second.values[n]) for n in first.values)
