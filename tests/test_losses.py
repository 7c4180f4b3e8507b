"""The losses of torch.nn.functional, mirrored in torch: values, grads and grad_fns in every engine and dtype."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

from generator.engines.exact import derive, evaluate, full_expression
from generator.engines.shadow import shadow
from generator.engines.sparse import derive_bulk
from generator.errors import SpecError
from generator.floats.ieee import to_float
from generator.graph.walk import build_graph
from generator.pipeline.script import Refused, vet
from generator.spec.load import load

from .helpers import FUNCS, ROOT, make_spec, outputs
from .test_katex import katex
from .test_schema import document_validator

INPUTS = {
    "z": ([[0.5, -1.5, 2.0], [0.0, 0.25, -3.0]], True),  # logits
    "t": ([[1.0, 0.0, 0.5], [0.25, 1.0, 0.0]], True),  # targets
    "p": ([[0.2, 0.7, 0.5], [0.9, 0.35, 0.05]], True),  # probabilities
    "w": ([1.5, 0.5, 2.0], False),  # a weight, broadcast over rows
    "q": ([2.0, 0.5, 3.0], False),  # a pos_weight
}
NN = "torch.nn.functional."
# (the call as a spec writes it, without reduction=; the same call in torch on the namespace of tensors)
CALLS = [
    ("mse_loss(z, t", lambda v, r: F.mse_loss(v["z"], v["t"], reduction=r)),
    ("mse_loss(p, target=t", lambda v, r: F.mse_loss(v["p"], target=v["t"], reduction=r)),
    ("binary_cross_entropy(p, t", lambda v, r: F.binary_cross_entropy(v["p"], v["t"], reduction=r)),
    ("binary_cross_entropy(p, t, w", lambda v, r: F.binary_cross_entropy(v["p"], v["t"], v["w"], reduction=r)),
    ("binary_cross_entropy_with_logits(z, t",
     lambda v, r: F.binary_cross_entropy_with_logits(v["z"], v["t"], reduction=r)),
    ("binary_cross_entropy_with_logits(z, t, weight=w, pos_weight=q",
     lambda v, r: F.binary_cross_entropy_with_logits(v["z"], v["t"], weight=v["w"], pos_weight=v["q"], reduction=r)),
]
REDUCTIONS = ["mean", "sum", "none"]
CASES = [(call, fn, r) for call, fn in CALLS for r in REDUCTIONS]
IDS = [f"{call.split('(')[0]}[{call.split('(')[1]}]-{r}" for call, _, r in CASES]
GRADIENT = [[0.5, -1.0, 1.5], [2.0, -0.25, 1.0]]  # for reduction='none'


def _graph(call: str, reduction: str, dtype: str, inputs: dict = INPUTS):
    expr = f"{NN}{call}, reduction='{reduction}')"
    backward = ("y", GRADIENT) if reduction == "none" else "y"
    return build_graph(make_spec(inputs, {"y": expr}, backward, dtype=dtype))


def _torch(fn, reduction: str, dtype: str, inputs: dict = INPUTS):
    """Run the call in torch; return the result and the leaves."""
    kind = getattr(torch, dtype)
    leaves = {n: torch.tensor(v, dtype=kind, requires_grad=rg) for n, (v, rg) in inputs.items()}
    y = fn(leaves, reduction)
    y.backward(torch.tensor(GRADIENT, dtype=kind) if reduction == "none" else None)
    return y, leaves


def _close(ours, theirs, rel: float, label: str) -> None:
    ours, theirs = np.asarray(ours, dtype=np.float64).reshape(-1), theirs.detach().double().reshape(-1).numpy()
    assert ours == pytest.approx(theirs, rel=rel, abs=rel * 1e-3), label


def _check(values, grads, fn, reduction, dtype, rel, inputs=INPUTS):
    y, leaves = _torch(fn, reduction, dtype, inputs)
    _close(values["y"], y, rel, "value")
    for name, t in leaves.items():
        if t.grad is not None:
            _close(grads[name], t.grad, rel, f"{name}.grad")
        else:
            assert grads.get(name) is None, f"{name}.grad"


class TestTorch:
    @pytest.mark.parametrize(("call", "fn", "reduction"), CASES, ids=IDS)
    def test_exact_engine_matches_torch(self, call, fn, reduction):
        """The exact derivation's value and grads (input and target) equal torch's in float64, and its grad_fn."""
        d = derive(_graph(call, reduction, "float64"))
        values = {"y": [to_float(v) for v in d.values["y"]]}
        grads = {n: None if g is None else [to_float(v) for v in g] for n, g in d.grads.items()}
        _check(values, grads, fn, reduction, "float64", 1e-12)
        y, _ = _torch(fn, reduction, "float64")
        assert d.graph.grad_fn(d.graph.node("y")) == type(y.grad_fn).__name__

    @pytest.mark.parametrize(("call", "fn", "reduction"), CASES, ids=IDS)
    def test_array_engine_matches_torch(self, call, fn, reduction):
        """The float64 array derivation (large examples) gives torch's value and grads."""
        bulk = derive_bulk(_graph(call, reduction, "float64"))
        _check(bulk.values, bulk.grads, fn, reduction, "float64", 1e-12)

    @pytest.mark.parametrize(("call", "fn", "reduction"), CASES, ids=IDS)
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_dtype_shadow_matches_torch(self, call, fn, reduction, dtype):
        """What torch computes in float32 (and float64), op by op, agrees with torch in that dtype."""
        shade = shadow(_graph(call, reduction, dtype))
        _check(shade.values, shade.grads, fn, reduction, dtype, 1e-6 if dtype == "float32" else 1e-12)

    @pytest.mark.parametrize(("call", "reduction"), [(c, r) for c, _ in CALLS for r in ("mean", "none")])
    def test_local_derivatives_are_sympy_diff_of_the_forward(self, call, reduction):
        """torch's backward formulas equal sympy.diff of the exact forward (the probabilities are inside (0, 1))."""
        d = derive(_graph(call, reduction, "float64"))
        env = {s: v for n in ("z", "t", "p", "w", "q") for s, v in zip(d.symbols[n], d.values[n])}
        (p,) = d.passes
        for leaf, rows in p.jacobians.items():
            for r, out in enumerate(full_expression(d, "y")):
                for c, sym in enumerate(d.symbols[leaf]):
                    expected = evaluate(sp.diff(out, sym), env)
                    assert to_float(rows[r][c]) == pytest.approx(to_float(expected), rel=1e-12, abs=1e-14)


EDGES = {
    "z": ([-1000.0, 1000.0, 0.0], True),
    "t": ([0.5, 0.5, 1.0], True),
    "p": ([0.0, 1.0, 0.5], True),
    "w": ([1.0, 2.0, 0.5], False),
    "q": ([2.0, 2.0, 2.0], False),
}


class TestEdges:
    @pytest.mark.parametrize("call", ["binary_cross_entropy(p, t", "binary_cross_entropy(p, t, weight=w",
                                      "binary_cross_entropy_with_logits(z, t",
                                      "binary_cross_entropy_with_logits(z, t, pos_weight=q"])
    @pytest.mark.parametrize("engine", ["exact", "arrays"])
    def test_extremes_are_torchs(self, call, engine):
        """Probabilities 0 and 1 (torch clamps each log at -100, divides by max(x(1-x), 1e-12)) and logits ±1000."""
        fn = dict(CALLS)[call] if call in dict(CALLS) else (
            lambda v, r: F.binary_cross_entropy_with_logits(v["z"], v["t"], pos_weight=v["q"], reduction=r))
        if call == "binary_cross_entropy(p, t, weight=w":
            fn = lambda v, r: F.binary_cross_entropy(v["p"], v["t"], weight=v["w"], reduction=r)  # noqa: E731
        graph = build_graph(make_spec(EDGES, {"y": f"{NN}{call}, reduction='sum')"}, "y", dtype="float64"))
        if engine == "exact":
            d = derive(graph)
            values = {"y": [to_float(v) for v in d.values["y"]]}
            grads = {n: None if g is None else [to_float(v) for v in g] for n, g in d.grads.items()}
        else:
            d = derive_bulk(graph)
            values, grads = d.values, d.grads
        y, leaves = _torch(fn, "sum", "float64", EDGES)
        _close(values["y"], y, 1e-12, "value")
        for name, t in leaves.items():
            if t.grad is not None:
                theirs = t.grad.reshape(-1).tolist()
                for k, (a, b) in enumerate(zip(np.ravel(grads[name]), theirs)):
                    assert a == b if math.isinf(b) else a == pytest.approx(b, rel=1e-12), f"{name}.grad[{k}]"

    def test_clamped_probabilities_are_named_kinks_in_both_engines(self):
        """p = 0 and p = 1, where torch's clamp and ε stand for a derivative, are noted by both engines."""
        graph = build_graph(make_spec(EDGES, {"y": f"{NN}binary_cross_entropy(p, t, reduction='none')"},
                                      ("y", [1, 1, 1]), dtype="float64"))
        exact = {(k.key, k.index) for pass_ in derive(graph).passes for k in pass_.kinks}
        arrays = {(key, int(i)) for pass_ in derive_bulk(graph).passes for _, key, where in pass_.kinks for i in where}
        assert exact == arrays == {("bce_clamp", 0), ("bce_clamp", 1)}


def problem(expr: str, inputs: dict = INPUTS) -> str:
    """Return the one problem reported for step y = expr."""
    with pytest.raises(SpecError) as e:
        build_graph(make_spec(inputs, {"y": expr}, "y"))
    (found,) = e.value.problems
    return found.message


class TestRefusals:
    @pytest.mark.parametrize(("expr", "message"), [
        (f"{NN}mse_loss(z, w)", "step 'y': mse_loss: target size [3] must be the same as input size [2, 3], as torch"
                                " requires (allowed: a target of the input's shape)"),
        (f"{NN}binary_cross_entropy(p, t, reduction='avg')",
         "step 'y': reduction='avg' is not a valid value for reduction (allowed: 'mean', 'sum', 'none')"),
        (f"{NN}binary_cross_entropy(p, t, weight=z)", "step 'y': binary_cross_entropy() is not differentiable with"
         " respect to weight=, as torch says: 'z' requires grad (allowed: a weight= that does not require grad)"),
        (f"{NN}binary_cross_entropy_with_logits(z, t, pos_weight=[1, 2])",
         f"step 'y': a list is not allowed (allowed: + - * / ** @, numbers, names, calls of {FUNCS}, x[i], x[a:b], x.max(dim).values, x.T)"),
        (f"{NN}binary_cross_entropy_with_logits(z, t, weight=q.view(3, 1))",
         "step 'y': binary_cross_entropy_with_logits: weight= of size [3, 1] does not broadcast to the input's size"
         " [2, 3] (allowed: sizes equal or 1, compared from the right)"),
        (f"{NN}mse_loss(z, t, size_average=True)",
         "step 'y': mse_loss()'s size_average= is deprecated in torch (allowed: reduction='mean', 'sum' or 'none')"),
        (f"{NN}mse_loss(z, t, weight=w)", "step 'y': mse_loss() got an unknown argument 'weight' (allowed: target=,"
                                          " size_average=, reduce=, reduction=)"),
        ("z.mse_loss(t)", "step 'y': mse_loss is a function of torch.nn.functional (allowed:"
                          " torch.nn.functional.mse_loss(...), or F.mse_loss(...) after import torch.nn.functional as F)"),
        (f"{NN}conv2d(z.reshape(1, 1, 2, 3), z.reshape(1, 1, 2, 3)[:, :, :, :2], padding='same')",
         "step 'y': conv2d(padding='same') with an even kernel size: torch pads one side more, in a node of its own"
         " (ConstantPadNdBackward0) that derive does not read yet (allowed: odd kernel sizes, or padding as integers)"),
        (f"{NN}conv1d(z.reshape(1, 2, 3), z.reshape(1, 2, 3)[:, :, :1], stride=2, padding='same')",
         "step 'y': padding='same' is not supported for strided convolutions (allowed: stride=1, or padding as"
         " integers)"),
        (f"{NN}conv1d(z.reshape(1, 2, 3), z.reshape(1, 2, 3), padding='full')",
         "step 'y': Invalid padding string: 'full' (allowed: padding='same', 'valid', or integers)"),
        ("torch.binary_cross_entropy_with_logits(z, t)", "step 'y': binary_cross_entropy_with_logits is a function of"
         " torch.nn.functional (allowed: torch.nn.functional.binary_cross_entropy_with_logits(...), or"
         " F.binary_cross_entropy_with_logits(...) after import torch.nn.functional as F)"),
    ])
    def test_refused_with_a_located_reason(self, expr, message):
        """What torch refuses, or derive does not read, is a problem of the step with the allowed forms."""
        assert problem(expr) == message


PY = """\
import torch
import torch.nn.functional as F

z = torch.tensor([[0.5, -1.5, 2.0], [0.0, 0.25, -3.0]], requires_grad=True)
t = torch.tensor([[1.0, 0.0, 0.5], [0.25, 1.0, 0.0]])
w = torch.tensor([1.5, 0.5, 2.0])
p = torch.sigmoid(z)
bce = F.binary_cross_entropy(p, t, weight=w, reduction='sum')
mse = F.mse_loss(z, t)
logits = torch.nn.functional.binary_cross_entropy_with_logits(z, t, pos_weight=w, reduction='none')
loss = bce + mse + logits.mean()
print(loss)
print(bce.grad_fn)
print(mse.grad_fn)
print(logits)
loss.backward()
print(z.grad)
"""

YAML = """\
title: "Logits and a target"
dtype: float64
inputs:
  z: {value: [[0.5, -1.5], [2.0, 0.0]], requires_grad: true}
  t: {value: [[1.0, 0.0], [0.5, 0.25]], requires_grad: true}
  q: {value: [2.0, 0.5]}
steps:
  loss: torch.nn.functional.binary_cross_entropy_with_logits(z, t, pos_weight=q, reduction='sum')
backward: loss
"""

LARGE = """\
title: "Many logits"
inputs:
  z: {fill: 0.25, shape: [8, 10], requires_grad: true}
  t: {fill: 0.5, shape: [8, 10]}
  p: {fill: 0.75, shape: [8, 10], requires_grad: true}
steps:
  a: torch.nn.functional.binary_cross_entropy_with_logits(z, t, reduction='none')
  b: torch.nn.functional.binary_cross_entropy(p, t) + torch.nn.functional.mse_loss(z, p, reduction='sum')
  loss: a.mean() + b
backward: loss
"""


def cli(*args) -> subprocess.CompletedProcess:
    """Run derive in a fresh Python (this one has torch's threads running, which a fork would inherit)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "generator", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT, env=env)


class TestExamples:
    @pytest.mark.parametrize(("name", "text"), [("losses.py", PY), ("logits.yaml", YAML), ("large.yaml", LARGE)])
    def test_check_agrees_with_torch(self, tmp_path, name, text):
        """derive check runs the example's own code in torch: prints, grad_fns and grads agree."""
        path = tmp_path / name
        path.write_text(text)
        result = cli("check", path)
        assert result.returncode == 0, result.stderr

    @pytest.mark.parametrize(("name", "text"), [("losses.py", PY), ("logits.yaml", YAML), ("large.yaml", LARGE)])
    def test_built_documents_name_the_loss_and_render_in_katex(self, tmp_path, name, text):
        """Markdown and schema-valid JSON are built; the loss's grad_fn is named and KaTeX strict renders every formula."""
        path = tmp_path / name
        path.write_text(text)
        out = tmp_path / "out"
        result = cli("build", path, "--format", "md,json", "--out", out)
        assert result.returncode == 0, result.stderr
        md = out / f"{path.stem}.md"
        assert "BinaryCrossEntropyWithLogitsBackward0" in md.read_text()
        assert {p.suffix for p in outputs(out)} == {".md", ".json"}
        document_validator().validate(json.loads((out / f"{path.stem}.json").read_text()))
        report = katex([md])
        assert report["errors"] == [] and report["blocks"] > 5

    def test_a_clamped_probability_is_explained(self, tmp_path):
        """A probability of exactly 0 gets a note on torch's clamp at -100 and its ε, and check agrees with torch."""
        path = tmp_path / "clamp.py"
        path.write_text("import torch\nimport torch.nn.functional as F\n"
                        "p = torch.tensor([0.0, 0.5, 1.0], requires_grad=True)\nt = torch.tensor([0.25, 1.0, 1.0])\n"
                        "loss = F.binary_cross_entropy(p, t)\nprint(loss)\nloss.backward()\nprint(p.grad)\n")
        assert cli("check", path).returncode == 0
        out = tmp_path / "out"
        assert cli("build", path, "--format", "md", "--out", out).returncode == 0
        assert "torch clamps each log at $-100$" in (out / "clamp.md").read_text()

    def test_f_is_written_as_torch_nn_functional(self, tmp_path):
        """F.mse_loss(z, t) reads as torch.nn.functional.mse_loss, which is what the document's code runs."""
        path = tmp_path / "losses.py"
        path.write_text(PY)
        graph = build_graph(load(path))
        assert dict(graph.code)["mse"] == "torch.nn.functional.mse_loss(z, t)"


class TestVet:
    CODE = "import torch\nz = torch.tensor([0.5], requires_grad=True)\nt = torch.tensor([1.0])\n"
    REFUSED = ["y = torch.nn.functional.pad(z, (1, 1))\n",
               "y = torch.nn.functional.mse_loss(z, t, reduction='sum; import os')\n",
               "y = torch.nn.functional.mse_loss(z, t, weight='mean')\n"]

    @pytest.mark.parametrize("line", REFUSED)
    def test_only_the_losses_as_written_pass_the_whitelist(self, line):
        """A loss with reduction= as the document writes it runs; another function or another string never does."""
        vet(self.CODE + "y = torch.nn.functional.binary_cross_entropy_with_logits(z, t, pos_weight=t, reduction='sum')\n")
        with pytest.raises(Refused):
            vet(self.CODE + line)


class TestLatex:
    def test_softplus_writes_its_exponent_once_parenthesized(self):
        """ln(1 + e^-x) writes e^{-z_0}, e^{a} for x = -a, and e^{-(a + b)}: no doubled or bare parentheses."""
        import sympy as sp

        from generator.ops.losses import Softplus

        a, b = sp.symbols("a b")
        assert sp.latex(Softplus(sp.Symbol("z_0"))) == r"\ln\left(1 + e^{-z_{0}}\right)"
        assert sp.latex(Softplus(-a)) == r"\ln\left(1 + e^{a}\right)"
        assert sp.latex(Softplus(a + b)) == r"\ln\left(1 + e^{-\left(a + b\right)}\right)"
