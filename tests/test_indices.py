"""int64 tensors as indices and class targets: x[idx], x[range(n), y], nll_loss and cross_entropy, mirrored in torch."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from generator.engines import sparse as bulk
from generator.engines.exact import derive
from generator.engines.shadow import DtypeCast
from generator.errors import SpecError
from generator.floats.ieee import to_float
from generator.graph.walk import build_graph
from generator.ops import REGISTRY
from generator.ops.base import numel
from generator.pipeline.check import compare, run
from generator.engines.sparse import derive_bulk

from .helpers import invoke, make_spec

X = [[0.5, -1.5, 2.0, 1.0], [1.0, 0.25, -0.5, 3.0], [2.0, 1.0, 0.0, -1.0]]
M = [[1.0, -0.5, 0.25], [2.0, 0.5, -1.0]]
Q = [[0.25, 0.25, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0], [0.125, 0.375, 0.25, 0.25]]  # probabilities: a target of x's shape
INTEGERS = {"Y": [1, 0, 2], "C": [3, 0, 3], "I": [[0, 2], [2, 2]], "k": 1, "G": [-100, 2, 0], "P": [2, 0]}

# (expression, the same computation in torch): duplicates and negative indices included
CASES = [
    ("x[Y]", lambda t: t.x[t.Y]),
    ("x[range(3), C]", lambda t: t.x[range(3), t.C]),
    ("x[:, C] * 2", lambda t: t.x[:, t.C] * 2),
    ("x[I]", lambda t: t.x[t.I]),
    ("x[[0, 2, 2], [-1, 0, 3]]", lambda t: t.x[[0, 2, 2], [-1, 0, 3]]),
    ("x[1, C] + x[:, 0][Y]", lambda t: t.x[1, t.C] + t.x[:, 0][t.Y]),
    ("x[1:, Y] * x[torch.arange(2)][:, :3]", lambda t: t.x[1:, t.Y] * t.x[torch.arange(2)][:, :3]),
    ("x[k]", lambda t: t.x[t.k]),
    ("torch.nn.functional.nll_loss(x, C)", lambda t: torch.nn.functional.nll_loss(t.x, t.C)),
    ("torch.nn.functional.nll_loss(x, C, reduction='none')",
     lambda t: torch.nn.functional.nll_loss(t.x, t.C, reduction="none")),
    ("torch.nn.functional.nll_loss(x[:, :3], G, reduction='sum') + torch.nn.functional.nll_loss(x[:, :3], G)",
     lambda t: torch.nn.functional.nll_loss(t.x[:, :3], t.G, reduction="sum") + torch.nn.functional.nll_loss(t.x[:, :3], t.G)),
    ("torch.nn.functional.nll_loss(x, Y, ignore_index=2, reduction='none')",
     lambda t: torch.nn.functional.nll_loss(t.x, t.Y, ignore_index=2, reduction="none")),
    ("torch.nn.functional.cross_entropy(x, C)", lambda t: torch.nn.functional.cross_entropy(t.x, t.C)),
    ("torch.nn.functional.cross_entropy(m, P, reduction='sum')",
     lambda t: torch.nn.functional.cross_entropy(t.m, t.P, reduction="sum")),
    ("torch.nn.functional.cross_entropy(x[0], k) * torch.nn.functional.cross_entropy(x, G, reduction='none')",
     lambda t: torch.nn.functional.cross_entropy(t.x[0], t.k) * torch.nn.functional.cross_entropy(t.x, t.G, reduction="none")),
    # probabilities as the target (which gets a gradient too), with label smoothing in every reduction
    ("torch.nn.functional.cross_entropy(x, q)", lambda t: torch.nn.functional.cross_entropy(t.x, t.q)),
    ("torch.nn.functional.cross_entropy(x, q, reduction='none', label_smoothing=0.2)",
     lambda t: torch.nn.functional.cross_entropy(t.x, t.q, reduction="none", label_smoothing=0.2)),
    ("torch.nn.functional.cross_entropy(x[1], q[0], reduction='sum') + torch.nn.functional.cross_entropy(m, m.softmax(1), label_smoothing=1)",
     lambda t: torch.nn.functional.cross_entropy(t.x[1], t.q[0], reduction="sum")
     + torch.nn.functional.cross_entropy(t.m, t.m.softmax(1), label_smoothing=1.0)),
    # class indices with label smoothing: (1 - ε) · nll_loss + ε/C · the mean of -Σ log_softmax, ignored rows left out
    ("torch.nn.functional.cross_entropy(x, C, label_smoothing=0.1)",
     lambda t: torch.nn.functional.cross_entropy(t.x, t.C, label_smoothing=0.1)),
    ("torch.nn.functional.cross_entropy(x[:, :3], G, label_smoothing=0.7, reduction='none')",
     lambda t: torch.nn.functional.cross_entropy(t.x[:, :3], t.G, label_smoothing=0.7, reduction="none")),
    ("torch.nn.functional.cross_entropy(x[:, :3], G, label_smoothing=0.7) + torch.nn.functional.cross_entropy(x[0], k,"
     " label_smoothing=0.25) * torch.nn.functional.cross_entropy(x, Y, reduction='sum', label_smoothing=0.3, ignore_index=0)",
     lambda t: torch.nn.functional.cross_entropy(t.x[:, :3], t.G, label_smoothing=0.7)
     + torch.nn.functional.cross_entropy(t.x[0], t.k, label_smoothing=0.25)
     * torch.nn.functional.cross_entropy(t.x, t.Y, reduction="sum", label_smoothing=0.3, ignore_index=0)),
]


def _spec(expr: str, dtype: str = "float64"):
    floats = {"x": X, "m": M, "q": Q}
    used = {n: v for n, v in floats.items() if re.search(rf"\b{n}\b", expr)}
    integers = {n: v for n, v in INTEGERS.items() if re.search(rf"\b{n}\b", expr)}
    inputs = {**{n: (v, True) for n, v in used.items()}, **{n: (v, "int64") for n, v in integers.items()}}
    return make_spec(inputs, {"y": expr, "out": "(y * y).sum() + y.sum()"}, "out", dtype=dtype), used, integers


def _refusal(expr: str) -> str:
    """Return the first line of the error that reading a case's spec raises."""
    with pytest.raises(SpecError) as e:
        build_graph(_spec(expr)[0])
    return str(e.value).splitlines()[0]


def _torch(fn, used, integers):
    leaves = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in used.items()}
    ints = {n: torch.tensor(v) for n, v in integers.items()}
    y = fn(SimpleNamespace(**leaves, **ints))
    out = (y * y).sum() + y.sum()
    out.backward()
    return y, leaves


class TestMirrored:
    @pytest.mark.parametrize(("expr", "fn"), CASES, ids=[c[0] for c in CASES])
    def test_exact_values_grads_and_grad_fn_equal_torch(self, expr, fn):
        """The exact derivation: values, every leaf's grad and y's grad_fn, as torch computes them."""
        spec, used, integers = _spec(expr)
        d = derive(build_graph(spec))
        y, leaves = _torch(fn, used, integers)
        assert [to_float(v) for v in d.values["y"]] == pytest.approx(y.detach().reshape(-1).tolist(), rel=1e-12)
        for name, leaf in leaves.items():
            assert [to_float(v) for v in d.grads[name]] == pytest.approx(leaf.grad.reshape(-1).tolist(), rel=1e-12)
        assert d.graph.grad_fn(d.graph.node("y")) == y.grad_fn.name()

    @pytest.mark.parametrize(("expr", "fn"), CASES, ids=[c[0] for c in CASES])
    def test_arrays_agree_with_torch(self, expr, fn, monkeypatch):
        """The derivation on whole arrays (a large example's path) agrees with torch run on the document's code."""
        monkeypatch.setattr(bulk, "SMALL", 0)
        graph = build_graph(_spec(expr)[0])
        assert compare(derive_bulk(graph), run(graph, dtype="float64")) == []


class TestFloat32:
    def test_nll_loss_sums_in_torch_s_cascade(self):
        """nll_loss's mean and sum in float32 equal torch's bit for bit: rows carried up a level every 16 (LossNLL.cpp)."""
        op = REGISTRY["nll_loss"]
        rng = np.random.default_rng(7)
        for _ in range(120):
            n, c = int(rng.integers(1, 600)), int(rng.integers(1, 6))
            x = (rng.standard_normal((n, c)) * 10).astype(np.float32)
            target = rng.integers(0, c, n)
            target[rng.random(n) < 0.1] = -100
            for reduction in ("mean", "sum"):
                params = {"target": tuple(int(v) for v in target), "ignore_index": -100, "reduction": reduction,
                          "label": ""}
                ours = float(op.dtype_forward(DtypeCast("float32"), [x.astype(np.float64)], [(n, c)], params))
                theirs = torch.nn.functional.nll_loss(torch.tensor(x), torch.tensor(target), reduction=reduction).item()
                assert ours == theirs or (math.isnan(ours) and math.isnan(theirs)), (n, c, reduction)

    def test_derive_check_agrees_in_float32(self, tmp_path):
        """derive check runs the document's code, int64 target included, and agrees in float32."""
        rng = np.random.default_rng(1)
        rows = [[round(float(v), 4) for v in r] for r in rng.standard_normal((40, 5))]
        classes = [int(v) for v in rng.integers(0, 5, 40)]
        spec = tmp_path / "ce.yaml"
        spec.write_text(f"""\
title: forty rows
inputs:
  x:
    value: {rows}
    requires_grad: true
  Y:
    value: {classes}
    dtype: int64
steps:
  loss: torch.nn.functional.cross_entropy(x, Y) + x[range(40), Y].sum() * 0.5
backward: loss
""")
        result = invoke("check", spec)
        assert (result.exit_code, result.stdout) == (0, "1 agree with torch, 0 failed\n")


class TestRefused:
    @pytest.mark.parametrize(("expr", "message"), [
        ("Y * 2", "'Y' is an int64 tensor, which derive reads only as indices or class targets (allowed: an index such"
                  " as x[Y], or a loss's target)"),
        ("x[m]", "an index must be an integer, a slice of integers or an int64 tensor (allowed: x[1], x[1:3], x[:, 0],"
                 " x[::2], x[idx], x[[0, 2]], x[range(3), idx])"),
        ("x[C]", "index 3 is out of bounds for dimension 0 with size 3 (allowed: -3 to 2)"),
        ("x[range(4)]", "index 3 is out of bounds for dimension 0 with size 3 (allowed: -3 to 2)"),
        ("x[Y, [0, 1]]", "shape mismatch: indexing tensors could not be broadcast together with shapes [3], [2]"
                         " (allowed: index tensors whose shapes broadcast)"),
        ("torch.nn.functional.nll_loss(x[:, :2], C)", "Target 3 is out of bounds (allowed: 0 to 1, or ignore_index=-100)"),
        ("torch.nn.functional.cross_entropy(x, m)", "cross_entropy() takes class indices (an int64 target) or"
                                                    " probabilities of the input's shape, got [3, 4] and a float target of"
                                                    " [2, 3] (allowed: one probability per class, or an input with dtype:"
                                                    " int64)"),
        ("torch.nn.functional.cross_entropy(x[0], k, label_smoothing=0.1, ignore_index=1)",
         "cross_entropy()'s targets are all ignore_index=1, so the mean divides 0 by 0 (allowed: at least one target"
         " that is a class)"),
        ("torch.nn.functional.cross_entropy(x, q, label_smoothing=1.5)",
         "cross_entropy()'s label_smoothing must be a number between 0.0 and 1.0 (allowed: 0.1)"),
        ("torch.nn.functional.nll_loss(x, P)", "nll_loss() takes an input [N, C] and a target [N], or [C] and a"
                                                   " 0-d target; got [3, 4] and [2] (allowed: one class index per row)"),
    ])
    def test_refused(self, expr, message):
        """Each misuse gets one line that says what is allowed, as torch would refuse it or derive cannot read it."""
        assert _refusal(expr) == f"test.yaml:2: step 'y': {message}"

    def test_yaml_int64_input_is_checked(self, tmp_path):
        """dtype: int64 takes whole numbers and no requires_grad, as torch requires; every problem is reported."""
        spec = tmp_path / "s.yaml"
        spec.write_text("""\
title: bad
inputs:
  x:
    value: [1.0, 2.0]
    requires_grad: true
  Y:
    value: [0.5, 1]
    dtype: int64
    requires_grad: true
  Z:
    value: [1]
    dtype: int32
steps:
  y: x[Y]
backward: y
""")
        result = invoke("check", spec)
        assert result.exit_code != 0
        lines = result.stderr.splitlines()
        assert any("inputs.Y.requires_grad: an int64 tensor cannot require grad" in line for line in lines), lines
        assert any("inputs.Y.value: an int64 tensor holds integers" in line for line in lines), lines
        assert any("inputs.Z.dtype: expected a dtype, got" in line and "(allowed: int64)" in line for line in lines), lines


class TestTorchCode:
    def test_python_integers_make_an_int64_input(self, tmp_path):
        """torch.tensor([0, 1, 2, 2]) is int64, as in torch; logp[range(n), y] and F.cross_entropy agree with torch."""
        code = tmp_path / "ce.py"
        code.write_text("""\
import torch
import torch.nn.functional as F

logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.2, 0.2, 3.0], [0.0, -1.0, 1.0]], requires_grad=True)
Yb = torch.tensor([0, 1, 2, 2])
n = 4
loss = -logits.log_softmax(1)[range(n), Yb].mean() + F.cross_entropy(logits, Yb)
loss.backward()
print(logits.grad)
""")
        result = invoke("check", code)
        assert (result.exit_code, result.stdout) == (0, "1 agree with torch, 0 failed\n")

    @pytest.mark.parametrize(("line", "message"), [
        ("Yb = torch.tensor([0, 1], requires_grad=True)", "an int64 tensor that requires grad, which torch refuses"),
        ("Yb = torch.tensor([0.5, 1.0], dtype=torch.long)", "of numbers that are not whole as int64"),
    ])
    def test_python_int64_misuse_is_refused(self, tmp_path, line, message):
        """What torch refuses of an int64 tensor, derive refuses with the line."""
        code = tmp_path / "bad.py"
        code.write_text(f"import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\n{line}\n"
                        "y = x[Yb].sum()\ny.backward()\n")
        result = invoke("check", code)
        assert result.exit_code != 0 and f"bad.py:3: " in result.stderr and message in result.stderr, result.stderr

    @pytest.mark.parametrize(("code", "shown"), [
        ("Yb = torch.tensor([[1, 0, 12], [-3, 0, 100]])\ny = (x * 3).sum()", "Yb"),
        ("Yb = torch.tensor([1, 0, 1])\ny = x[Yb].sum()", "Yb"),
        ("m = x > 0\ny = torch.where(m, x, 0.0).sum()", "m.data, m"),
        ("torch.manual_seed(0)\nYb = torch.randint(-50, 50, (2, 3))\ny = (x * 2).sum()", "Yb, Yb.shape"),
    ], ids=["int64", "index", "bool", "randint"])
    def test_int64_and_bool_tensors_print_as_torch_prints_them(self, tmp_path, code, shown):
        """print(Yb) and print(x > 0) write what torch writes (1 and True, not 1.0), as running the file shows."""
        path = tmp_path / "p.py"
        path.write_text(f"import torch\nx = torch.tensor([1.0, 0.0], requires_grad=True)\n{code}\ny.backward()\n"
                        f"print({shown})\nprint(x.grad)\n")
        ran = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=True).stdout
        assert invoke("build", path, "--out", tmp_path / "o").exit_code == 0
        document = (tmp_path / "o" / "p.md").read_text()
        assert f"Running it prints:\n\n```text\n{ran}```" in document

class TestConditions:
    @pytest.mark.parametrize(("expr", "message"), [
        ("(x > 0) * x", "'t' is a bool tensor (a comparison), which derive reads only as a condition (allowed:"
                        " torch.where(x > 0, a, b), a.masked_fill(x < 0, 0.0))"),
        ("torch.where(x, x, m.sum())", "where()'s condition must be a bool tensor, such as x > 0 (allowed: a comparison,"
                                       " written in place or as an earlier step)"),
        ("x.masked_fill(x < 0, m.sum())", "masked_fill()'s value must be a number here (allowed: a number, such as 0.0)"),
        ("torch.where(1 > 0, x, x)", "a comparison of two numbers is a Python bool, not a tensor (allowed: a tensor on"
                                     " one side, such as x > 0)"),
        ("torch.where(0 < x < 1, x, 0.0)", "a chained comparison (allowed: one comparison, such as x > 0)"),
        ("torch.where(x > 0, 1.0, 0.0)", "where() of two numbers (allowed: a tensor as input or other, such as"
                                         " torch.where(x > 0, x, 0.0))"),
    ])
    def test_refused(self, expr, message):
        """A comparison is a condition only; each misuse is one line saying what is allowed."""
        assert _refusal(expr) == f"test.yaml:2: step 'y': {message}"

    def test_a_comparison_passes_no_gradient(self):
        """torch.where(x > 0, x, 0.1 * x) at x = 0 takes the 0.1 side, and nothing flows through the comparison."""
        d = derive(build_graph(make_spec({"x": ([-1.0, 0.0, 2.0], True)}, {"y": "torch.where(x > 0, x, 0.1 * x)",
                                                                             "out": "y.sum()"}, "out", dtype="float64")))
        x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
        torch.where(x > 0, x, 0.1 * x).sum().backward()
        assert [to_float(v) for v in d.grads["x"]] == pytest.approx(x.grad.tolist(), rel=1e-15)
        assert [n.requires_grad for n in d.graph.nodes if n.op == "gt"] == [False]


# argmax and argmin: ties (the first wins), ties made by float64's rounding (3.4e38 + 2 equals 3.4e38 - 1 there),
# dims, keepdim and over all elements (an index into the flattened tensor)
EXTREMES = [[1.0, 5.0, 5.0, -2.0], [7.0, 0.0, 7.5, 7.5], [340000000000000000000000000000000000002.0, -3.0,
                                                          339999999999999999999999999999999999999.0, 0.0]]
INDEX_CASES = [
    ("x.argmax(1)", lambda x: x.argmax(1)),
    ("torch.argmin(x, dim=0, keepdim=True)", lambda x: torch.argmin(x, dim=0, keepdim=True)),
    ("x.argmax()", lambda x: x.argmax()),
    ("x.argmin(-1)", lambda x: x.argmin(-1)),
    ("torch.argmax(x[0] * x[1], 0)", lambda x: torch.argmax(x[0] * x[1], 0)),
]


class TestArgmax:
    def _spec(self, expr):
        return make_spec({"x": (EXTREMES, True)}, {"i": expr, "out": "(x * x).sum()"}, "out")

    @pytest.mark.parametrize(("expr", "fn"), INDEX_CASES, ids=[c[0] for c in INDEX_CASES])
    def test_indices_equal_torch_in_both_engines(self, expr, fn, monkeypatch):
        """The exact and the array derivation give torch's indices, ties to the first, and record no grad_fn."""
        x = torch.tensor(EXTREMES, dtype=torch.float64, requires_grad=True)
        expected = fn(x)
        graph = build_graph(self._spec(expr))
        assert [int(v) for v in derive(graph).values["i"]] == expected.reshape(-1).tolist()
        monkeypatch.setattr(bulk, "SMALL", 0)
        assert [int(v) for v in np.ravel(derive_bulk(graph).values["i"])] == expected.reshape(-1).tolist()
        node = graph.node("i")
        assert (node.shape, node.requires_grad, graph.grad_fn(node) or None) == (
            tuple(expected.shape), expected.requires_grad, expected.grad_fn)

    def test_printed_as_torch_prints_it(self, tmp_path):
        """print(x.argmax(1)) in torch code writes torch's int64 tensor, as running the file shows."""
        path = tmp_path / "a.py"
        path.write_text(f"import torch\nx = torch.tensor({EXTREMES}, dtype=torch.float64, requires_grad=True)\n"
                        "i = x.argmax(1)\nprint(i, x.argmin())\nloss = (x * x).sum()\nloss.backward()\n")
        ran = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=True).stdout
        assert invoke("build", path, "--out", tmp_path / "o").exit_code == 0
        assert f"Running it prints:\n\n```text\n{ran}```" in (tmp_path / "o" / "a.md").read_text()

    @pytest.mark.parametrize(("expr", "message"), [
        ("x[i]", "'i' holds indices computed by argmax, which derive reads only to show and print (allowed: an int64"
                 " input as an index or a target)"),
        ("x[0] * i", "'i' is an int64 tensor, which derive reads only as indices or class targets (allowed: an index"
                     " such as x[i], or a loss's target)"),
    ])
    def test_an_index_is_not_computed_with(self, expr, message):
        """A computed index cannot index or be multiplied: the message says what derive reads it for."""
        with pytest.raises(SpecError) as e:
            build_graph(make_spec({"x": (EXTREMES, True)}, {"i": "x.argmax(1)", "y": expr, "out": "y.sum()"}, "out"))
        assert str(e.value).splitlines()[0].endswith(message)
