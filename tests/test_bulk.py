"""Large examples: the derivation on whole arrays agrees with torch, op by op and as a whole, and stays sparse."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.engines import sparse as bulk
from generator import ops
from generator.ops.elementwise import Elementwise
from generator.pipeline.build import derive_spec, render_spec
from generator.engines.sparse import Sparse, derive_bulk, is_large
from generator.pipeline.check import compare, run
from generator.engines.exact import Derivation
from generator.graph.walk import build_graph
from tests.helpers import GALLERY, invoke, make_spec

LARGE = Path(__file__).resolve().parent / "large"

X = [[0.5, -1.0, 0.0], [2.0, 0.5, -0.25]]  # a zero, a tie and a negative: the kinks
W = [[1.5, 0.5, 2.0], [0.25, -0.5, 1.0]]
POS = [[0.5, 1.0, 2.0], [4.0, 0.25, 1.5]]
CLASSES = [1, 0]  # an int64 input: a class per row of x, or rows of x to pick

# One expression per op (and per form of an op), each over small tensors, including the kinks.
CASES = {
    "add": ("x + w", "add"), "add_broadcast": ("x + b", "add"), "sub": ("2 - x", "sub"), "mul": ("x * w", "mul"),
    "mul_same": ("x * x", "mul"), "div": ("x / p", "div"), "pow": ("x ** 3", "pow"), "pow_base": ("2 ** x", "pow"),
    "pow_both": ("p ** w", "pow"), "pow_root": ("x.relu() ** 0.5", "pow"), "neg": ("-x", "neg"),
    "reciprocal": ("1 / x", "reciprocal"), "exp": ("x.exp()", "exp"), "log": ("p.log()", "log"),
    "sqrt": ("x.relu().sqrt()", "sqrt"), "sin": ("x.sin()", "sin"), "cos": ("x.cos()", "cos"),
    "tanh": ("x.tanh()", "tanh"), "sigmoid": ("x.sigmoid()", "sigmoid"), "relu": ("x.relu()", "relu"),
    "abs": ("x.abs()", "abs"), "clamp": ("x.clamp(min=-0.25, max=0.5)", "clamp"), "sum": ("x.sum()", "sum"),
    "sum_dim": ("x.sum(dim=1, keepdim=True)", "sum"), "mean": ("x.mean(dim=0)", "mean"), "norm": ("x.norm()", "norm"),
    "max": ("w.max()", "max"), "max_tie": ("x.relu().max()", "max"), "min": ("x.min()", "min"),
    "softmax": ("x.softmax(dim=1)", "softmax"), "log_softmax": ("x.log_softmax(dim=0)", "log_softmax"),
    "matmul": ("x @ w.T", "matmul"), "matvec": ("x @ b", "matmul"), "vecmat": ("b @ x.T", "matmul"),
    "dot": ("b @ b", "matmul"), "transpose": ("x.T", "transpose"), "select": ("x[1]", "select"),
    "torch_dot": ("torch.dot(b, b * 2)", "dot"), "mm": ("x.mm(w.t())", "mm"), "view": ("(x * w).view(-1)", "view"),
    "detach": ("x.detach() * x + w.detach()", "detach"),
    "mse_loss": ("torch.nn.functional.mse_loss(x, w, reduction='none')", "mse_loss"),
    "bce": ("torch.nn.functional.binary_cross_entropy(x.sigmoid(), w.sigmoid())", "binary_cross_entropy"),
    "bce_logits": ("torch.nn.functional.binary_cross_entropy_with_logits(x, w.sigmoid(), reduction='sum')",
                   "binary_cross_entropy_with_logits"),
    "log1p": ("x.log1p()", "log1p"), "expm1": ("x.expm1()", "expm1"), "exp2": ("torch.exp2(x)", "exp2"),
    "rsqrt": ("p.rsqrt()", "rsqrt"), "rsqrt_zero": ("x.relu().rsqrt()", "rsqrt"), "atan": ("x.atan()", "atan"),
    "asin": ("(x * 0.5).asin()", "asin"), "sinh": ("x.sinh()", "sinh"), "cosh": ("torch.cosh(x)", "cosh"),
    "silu": ("torch.nn.functional.silu(x)", "silu"), "sign": ("x.sign() * x", "sign"), "floor": ("(x * 2).floor() * x", "floor"),
    "ceil": ("x.ceil() * x", "ceil"), "round": ("(x * 3).round() * x", "round"), "trunc": ("x.trunc() * x", "trunc"),
    "maximum": ("torch.maximum(x, x.relu() * w)", "maximum"), "max_pair": ("torch.max(x, w * 2)", "maximum"),
    "minimum": ("x.minimum(w)", "minimum"), "mul_method": ("torch.mul(x, w).div(p)", "mul"),
    "sub_method": ("x.sub(w).neg()", "sub"), "slice": ("x[:, 1:] * w[1:, ::2]", "slice"),
    "select_dim": ("x[:, 0] * x[1, 1:].sum()", "select"), "mv": ("torch.mv(x, b) * x.mv(b)", "mv"),
    "transpose_dims": ("x.transpose(0, 1) * w.permute(1, 0)", "transpose"), "unsqueeze": ("x.unsqueeze(1) * b", "unsqueeze"),
    "squeeze": ("x.unsqueeze(0).squeeze(0) * w.unsqueeze(2).squeeze()", "squeeze"), "flatten": ("(x * w).flatten()", "flatten"),
    "leaky_relu": ("torch.nn.functional.leaky_relu(x, 0.2)", "leaky_relu"), "elu": ("torch.nn.functional.elu(x, 0.5)", "elu"),
    "hardtanh": ("torch.nn.functional.hardtanh(x, -0.25, 0.5)", "hardtanh"),
    "softplus": ("torch.nn.functional.softplus(x * 20, beta=2, threshold=15)", "softplus"),
    "gelu": ("torch.nn.functional.gelu(x)", "gelu"), "gelu_tanh": ("torch.nn.functional.gelu(x, approximate='tanh')", "gelu"),
    "prod": ("x.prod(1) * w.prod()", "prod"), "prod_zero": ("torch.prod(x, 0, keepdim=True)", "prod"),
    "prod_nonzero": ("w.prod(dim=1)", "prod"), "logsumexp": ("x.logsumexp(1) * torch.logsumexp(w, 0).sum()", "logsumexp"),
    "var": ("x.var() * w.var(1, unbiased=False)", "var"), "std": ("torch.std(x, 0, keepdim=True) * w.std(correction=0)", "std"),
    "std_zero": ("(x * 0).std(1)", "std"), "cumsum": ("x.cumsum(1) * torch.cumsum(w, dim=0)", "cumsum"),
    "cat": ("torch.cat([x, w, p], dim=1) * torch.cat((x, w)).sum()", "cat"),
    "stack": ("torch.stack([x, w.exp()], 1) * torch.stack((b, b * 2))[0]", "stack"),
    "expand": ("x[:, :1].expand(2, 3) * b.expand(2, -1)", "expand"),
    "l1_loss": ("torch.nn.functional.l1_loss(x, w.relu() * 0 + x.relu(), reduction='none')", "l1_loss"),
    "smooth_l1_loss": ("torch.nn.functional.smooth_l1_loss(x * 3, w, beta=0.5)", "smooth_l1_loss"),
    "reciprocal_method": ("p.reciprocal() * torch.reciprocal(x)", "reciprocal"),
    "max_dim": ("x.max(1, keepdim=True).values * x.relu().max(dim=0, keepdim=True)[0]", "max_dim"),
    "min_dim": ("torch.min(w, 1)[0] * (x * 0).min(dim=0).values[:2]", "min_dim"),
    "bmm": ("torch.bmm(torch.stack([x, w]), torch.stack([p.T, x.T])) * torch.bmm(x.unsqueeze(0), w.T.unsqueeze(0))", "bmm"),
    "addmm": ("torch.addmm(b[:2], x, w.T) * torch.addmm(b[:1], x.T, w)[0, 0]", "addmm"),
    "linear": ("torch.nn.functional.linear(x, w, b[:2]) * torch.nn.functional.linear(b, x)", "linear"),
    "huber_loss": ("torch.nn.functional.huber_loss(x * 3, w, reduction='sum', delta=2)", "huber_loss"),
    "norm_dim": ("x.norm(dim=1) * torch.norm(w, 2, 0, True)[:, :2] + (x * 0).norm(dim=0, keepdim=True)[:, 1:]", "norm"),
    "clamp_min": ("x.clamp_min(0)", "clamp_min"), "clamp_max": ("torch.clamp_max(x, 0.5)", "clamp_max"),
    "normalize": ("torch.nn.functional.normalize(x) + torch.nn.functional.normalize(x * 0, dim=0)", "normalize"),
    "dropout": ("torch.nn.functional.dropout(x * w, 0.25, training=False)", "dropout"),
    "split": ("x.chunk(2, 1)[1] * torch.split(w, [2, 1], dim=-1)[0] + x.split(1)[-1][:, :2]", "split"),
    "index": ("x[Y] * w[range(2), Y].unsqueeze(1) + x[:, [2, 2, 0]] + p[[1, 0, 1]][:2]", "index"),
    "nll_loss": ("torch.nn.functional.nll_loss(x, Y) + torch.nn.functional.nll_loss(w, Y, reduction='none')", "nll_loss"),
    "nll_loss_ignored": ("torch.nn.functional.nll_loss(x, Y, ignore_index=0, reduction='sum')", "nll_loss"),
    "cross_entropy": ("torch.nn.functional.cross_entropy(x, Y) * torch.nn.functional.cross_entropy(w[0], c)",
                      "cross_entropy"),
    "gt": ("torch.where(x > 0, x, w * 2)", "gt"), "ge": ("torch.where(x >= w, x * w, 0.5)", "ge"),
    "lt": ("x.masked_fill(x < 0, 0.25)", "lt"), "le": ("torch.where(x <= 0.5, p, x)", "le"),
    "eq": ("x.masked_fill(x == 0.5, 3.0) * w", "eq"), "ne": ("torch.where(x != 0, 1 / x, x)", "ne"),
    "where": ("torch.where(p > x, x, p) + x.where(w < 1, 0.0)", "where"),
    "masked_fill": ("x.masked_fill(w > 0, -1.0) + torch.masked_fill(p, 0 < x, 2)", "masked_fill"),
    "layer_norm": ("torch.nn.functional.layer_norm(x, (3,), w[0], b) * torch.nn.functional.layer_norm(p, [2, 3], bias=w)",
                   "layer_norm"),
    "convolution": ("torch.nn.functional.conv2d(x.reshape(1, 1, 2, 3), w.reshape(2, 1, 1, 3)[:, :, :, 1:], b[:2],"
                    " padding=1) + torch.nn.functional.conv1d(p, w.reshape(1, 2, 3)[:, :, :2], stride=2).sum()",
                    "convolution"),
    "div_scalar": ("torch.nn.functional.cross_entropy(x, p * 0.25, label_smoothing=0.1) + "
                   "torch.nn.functional.cross_entropy(w[0], x[1].softmax(0))", "div_scalar"),
    "mul_scalar": ("torch.nn.functional.cross_entropy(x, Y, label_smoothing=0.1) * "
                   "torch.nn.functional.cross_entropy(w[0], c, label_smoothing=0.7)", "mul_scalar"),
    "ignored_fill": ("torch.nn.functional.cross_entropy(x, Y, label_smoothing=0.2, ignore_index=0, reduction='none')",
                     "ignored_fill"),
    "add_scaled": ("torch.add(x, w, alpha=-0.3)", "add_scaled"), "add_scaled_broadcast": ("torch.add(x, b, alpha=2.5)", "add_scaled"),
}


# Ops only torch code spells (a custom Function's apply): each case a Python example, read as a spec.
PY_CASES = {
    "custom_function": ("""\
import torch

class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a ** 3

    @staticmethod
    def backward(ctx, g):
        a, = ctx.saved_tensors
        return g * (3 * a ** 2)  # g * 3 * a ** 2 would round g * 3 first, which derive refuses

x = torch.tensor([[0.5, -1.0, 0.0], [2.0, 0.5, -0.25]], dtype=torch.float64, requires_grad=True)
out = (Cube.apply(x) * Cube.apply(x * 2)).sum()
out.backward()
""", "custom_function"),
    # argmax and argmin: int64 indices, no gradient; their values are compared (ties to the first), then unused
    **{kind: (f"""\
import torch

x = torch.tensor([[0.5, -1.0, 0.5], [2.0, 0.5, -1.0]], dtype=torch.float64, requires_grad=True)
i = x.{kind}(1)
j = torch.{kind}(x * x, dim=0, keepdim=True)
k = x.{kind}()
print(i, j, k)
out = (x * x).sum()
out.backward()
""", kind) for kind in ("argmax", "argmin")},
}


def _py_graph(code: str):
    from generator.spec.python import code as read_code

    return build_graph(read_code("case.py", code, stem="case"))


def _graph(expr: str):
    spec = make_spec(
        {"x": (X, True), "w": (W, True), "p": (POS, True), "b": ([0.5, -2.0, 1.0], True), "Y": (CLASSES, "int64"),
         "c": (2, "int64")},
        {"y": expr, "out": "(y * y).sum()"},
        "out",
        dtype="float64",
    )
    return build_graph(spec)


def _numbers(graph) -> list[str]:
    return compare(derive_bulk(graph), run(graph, dtype="float64"))


class TestOps:
    def test_every_op_has_a_case(self):
        """Adding an op to the registry without a case here fails."""
        assert {op for _, op in (*CASES.values(), *PY_CASES.values())} == set(ops.REGISTRY)

    @pytest.mark.parametrize("case", sorted(CASES))
    def test_op_agrees_with_torch(self, case):
        """Values, grads and Jacobians of each op on whole arrays, kinks included, equal torch's."""
        assert _numbers(_graph(CASES[case][0])) == []

    @pytest.mark.parametrize("case", sorted(PY_CASES))
    def test_python_op_agrees_with_torch(self, case):
        """The same for the ops only torch code spells, read from a Python example."""
        assert _numbers(_py_graph(PY_CASES[case][0])) == []

    @pytest.mark.parametrize("expr", ["x.relu()", "x.abs()", "x.clamp(min=-0.25, max=0.5)", "x.relu().max()",
                                      "(x * 0).norm()", "x.relu().sqrt()", "1 / x", "x.relu().log()", "x ** 0.5",
                                      "x.log1p()", "(x * 0.5).asin()", "x.relu().rsqrt()", "x.floor()",
                                      "(x * 3).round()", "torch.maximum(x, x.relu())", "x.minimum(x.relu())",
                                      "torch.nn.functional.leaky_relu(x)", "torch.nn.functional.elu(x, 2)",
                                      "torch.nn.functional.hardtanh(x, -0.25, 0.5)",
                                      "torch.nn.functional.softplus(x * 40)", "(x * 0).std(1) + x.std()",
                                      "torch.nn.functional.l1_loss(x, x.relu(), reduction='none')",
                                      "x.relu().max(1).values + (x * 0).min(0)[0].sum()"])
    def test_kinks_are_found(self, expr):
        """The elements at a kink are the ones the exact derivation names."""
        graph = _graph(expr)
        from generator.engines.exact import derive

        exact = {(k.node, k.key, k.index) for p in derive(graph).passes for k in p.kinks}
        found = {(n, key, int(i)) for p in derive_bulk(graph).passes for n, key, where in p.kinks for i in where}
        assert found == exact and found

    def test_a_wrong_local_derivative_is_caught(self, monkeypatch):
        """With tanh's derivative wrong, torch disagrees: the comparison can fail."""
        wrong = dataclasses.replace(ops.REGISTRY["tanh"], df=(lambda a, o: 1 - o,))
        monkeypatch.setitem(ops.REGISTRY, "tanh", wrong)
        assert _numbers(_graph("x.tanh()"))


class TestGallery:
    @pytest.mark.parametrize("path", GALLERY, ids=[p.stem for p in GALLERY])
    def test_gallery_on_whole_arrays_agrees_with_torch(self, path):
        """Every gallery spec, derived on whole arrays rather than exactly, agrees with torch."""
        from generator.spec.load import load

        graph = build_graph(load(path))
        assert _numbers(graph) == []


def _unpacked(packed) -> np.ndarray:
    """Decode the JSON's packed array: little-endian IEEE bytes in base64, reshaped (read with plain numpy)."""
    if isinstance(packed, list):
        return np.array(packed, dtype=np.float64)
    kind = {"float64": "<f8", "int64": "<i8"}[packed["dtype"]]
    return np.frombuffer(base64.b64decode(packed["base64"]), dtype=kind).reshape(packed["shape"])


class TestLarge:
    def test_large_specs_agree_with_torch_in_derive_check(self):
        """derive check on a 100×100 linear layer and on 10,000 elements with a vector output: all agree."""
        result = invoke("check", *sorted(str(p) for p in LARGE.glob("*.yaml")))
        assert result.exit_code == 0, result.output
        assert result.stdout == "2 agree with torch, 0 failed\n"

    def test_large_specs_take_the_array_path(self):
        """Both large specs are large; the gallery's small ones are derived exactly."""
        assert all(isinstance(derive_spec(p), bulk.Bulk) for p in LARGE.glob("*.yaml"))
        assert isinstance(derive_spec(GALLERY[0]), Derivation)

    def test_a_wrong_derivative_in_a_large_spec_is_reported(self, monkeypatch):
        """With mean's local derivative doubled, derive check on the large linear layer fails, naming numbers."""
        mean = ops.REGISTRY["mean"]
        wrong = dataclasses.replace(mean, array_d=lambda m, o, p: np.full_like(m, 2 / m.shape[1]))
        monkeypatch.setitem(ops.REGISTRY, "mean", wrong)
        result = invoke("check", str(LARGE / "linear_100.yaml"))
        assert result.exit_code == 1
        assert "W.grad[0,0]: derived" in result.stderr

    def test_large_arrays_in_json_are_packed_bytes(self):
        """A tensor of 10,000 or more elements is its float64 bytes in base64, a smaller one a list of numbers."""
        data = json.loads(render_spec(LARGE / "elementwise_10k.yaml", ("json",), None)["elementwise_10k.json"])
        (sparse,) = data["backward"][0]["jacobians"].values()
        assert set(sparse) == {"rows", "cols", "row", "col", "value"} and sparse["row"]["dtype"] == "int64"
        rows, cols, values = (_unpacked(sparse[k]) for k in ("row", "col", "value"))
        assert np.array_equal(rows, np.arange(10_000)) and np.array_equal(cols, np.arange(10_000))
        (vjp,) = data["backward"][0]["vjp"].values()
        (grad,) = (g for g in data["grads"].values() if g is not None)
        assert vjp["shape"] == grad["shape"] and np.array_equal(_unpacked(vjp), _unpacked(grad))
        assert np.array_equal(_unpacked(data["backward"][0]["gradient"]), np.full((100, 100), 0.5))
        assert data["backward"][0]["gradient"]["shape"] == [100, 100]

    def test_diagonal_jacobian_is_stored_sparse(self):
        """The 10,000 × 10,000 Jacobian of an elementwise chain keeps its 10,000 diagonal entries only."""
        derivation = derive_spec(LARGE / "elementwise_10k.yaml")
        (jacobian,) = derivation.passes[0].jacobians.values()
        assert (jacobian.rows, jacobian.cols) == (10_000, 10_000)
        assert jacobian.diagonal and jacobian.row.size == 10_000

    def test_jacobian_entries_in_json_equal_torch(self, tmp_path):
        """The JSON's Jacobian of the linear layer (one row, 10,000 entries: written once, as vjp) is torch's."""
        spec = LARGE / "linear_100.yaml"
        data = json.loads(render_spec(spec, ("json",), None)["linear_100.json"])
        assert data["exact"] is None
        call = data["backward"][0]
        assert call["jacobians"]["W"] == {"rows": 1, "cols": 10_000, "row": "vjp"}
        ours = _unpacked(call["vjp"]["W"])
        W = torch.full((100, 100), 0.01, dtype=torch.float64, requires_grad=True)
        x = torch.full((100,), 0.5, dtype=torch.float64, requires_grad=True)
        b = torch.full((100,), 0.1, dtype=torch.float64, requires_grad=True)
        loss = (((W @ x + b).tanh() - 0.75) ** 2).mean()
        (expected,) = torch.autograd.grad(loss, W)
        assert np.allclose(ours.reshape(100, 100), expected.numpy(), rtol=1e-12, atol=0)

    def test_each_op_is_asked_once_per_node(self, monkeypatch):
        """The derivation asks each op for its local Jacobian once per node, never once per element."""
        calls = []
        original = Elementwise.array_local

        def counted(self, *args, **kw):
            calls.append(self.key)
            return original(self, *args, **kw)

        monkeypatch.setattr(Elementwise, "array_local", counted)
        derive_spec(LARGE / "elementwise_10k.yaml")
        assert sorted(calls) == ["add", "mul", "mul", "relu", "sigmoid"]


class TestDocuments:
    def test_large_markdown_shows_generic_elements(self):
        """The linear layer's document writes W_{ij} once, states full sizes, and has no per-element lines."""
        text = render_spec(LARGE / "linear_100.yaml", ("md",), None)["linear_100.md"].decode()
        assert r"t_{i} &= \sum_{k} W_{ik} x_{k}" in text  # aligned with the elementwise steps after it
        assert r"\frac{\partial \mathrm{loss}}{\partial W_{ij}} = \frac{\partial \mathrm{loss}}{\partial t_{i}} \cdot x_{j}" in text
        assert r"\underset{1 \times 10000}" in text
        assert "W_{12}" not in text and "computed in float64" in text

    def test_diagonal_jacobian_is_written_as_diag(self):
        """A diagonal Jacobian is shown as diag(...) with its size."""
        text = render_spec(LARGE / "elementwise_10k.yaml", ("md",), None)["elementwise_10k.md"].decode()
        assert r"J = \underset{10000 \times 10000}{\operatorname{diag}" in text

    def test_threshold(self):
        """A graph is large when one of its tensors has more than SMALL elements."""
        small = make_spec({"x": ([1.0] * bulk.SMALL, True)}, {"out": "x.sum()"}, "out")
        large = make_spec({"x": ([1.0] * (bulk.SMALL + 1), True)}, {"out": "x.sum()"}, "out")
        assert not is_large(build_graph(small)) and is_large(build_graph(large))


class TestSparse:
    def test_sparse_operations_match_numpy(self):
        """entry, dense and Jᵀ·u of a Sparse agree with the same matrix in numpy."""
        rng = np.random.default_rng(1)
        dense = np.where(rng.random((6, 5)) < 0.4, rng.standard_normal((6, 5)), 0.0)
        r, c = np.nonzero(dense)
        sparse = Sparse(6, 5, r, c, dense[r, c])
        u = rng.standard_normal(6)
        assert np.array_equal(sparse.dense(), dense)
        assert all(sparse.entry(i, j) == dense[i, j] for i in range(6) for j in range(5))
        assert np.allclose(sparse.transpose_times(u), dense.T @ u)

    def test_product_of_local_jacobians_matches_numpy(self):
        """The sparse product and its coalescing give numpy's matrix product."""
        rng = np.random.default_rng(2)
        a = np.where(rng.random((4, 7)) < 0.5, rng.standard_normal((4, 7)), 0.0)
        b = np.where(rng.random((7, 3)) < 0.5, rng.standard_normal((7, 3)), 0.0)
        ar, ac = np.nonzero(a)
        br, bc = np.nonzero(b)
        entries = bulk._product((ar, ac, a[ar, ac]), (br, bc, b[br, bc]))
        assert np.allclose(bulk._coalesce(entries, 4, 3).dense(), a @ b)
