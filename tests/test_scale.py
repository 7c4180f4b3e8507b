"""Real network sizes: a tutorial's two-layer net and a million-element chain, derived and checked against torch."""

from __future__ import annotations

import base64
import json
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.document.glance import l2
from generator.ops.base import sum_tex, sum_tex_of
from generator.pipeline.build import compare_spec, render_spec
from generator.spec.load import load
from generator.spec.model import Array, Floats, floats

from benchmarks.bench import write_chain, write_net

from .helpers import invoke

def _unpacked(packed) -> np.ndarray:
    """Decode the JSON's packed array with plain numpy."""
    kind = {"float64": "<f8", "int64": "<i8"}[packed["dtype"]]
    return np.frombuffer(base64.b64decode(packed["base64"]), dtype=kind).reshape(packed["shape"])


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Path:
    """PyTorch's two-layer net at the tutorial's size (N=64, D_in=1000, H=100, D_out=10), inputs in .npy files."""
    return write_net(tmp_path_factory.mktemp("net"), "float64")


class TestTwoLayerNet:
    def test_check_agrees_with_torch(self, net):
        """derive check's comparisons all hold at full size: values, grads, J through products, the printed block."""
        assert compare_spec(net) == []

    def test_json_grads_equal_torch(self, net):
        """The JSON's packed w1.grad and w2.grad equal torch's, computed here from the same .npy files."""
        data = json.loads(render_spec(net, ("json",), None)["net.json"])
        x, y, w1, w2 = (torch.tensor(np.load(net.parent / f"{n}.npy")) for n in ("x", "y", "w1", "w2"))
        w1.requires_grad_()
        w2.requires_grad_()
        ((x.mm(w1).clamp(min=0).mm(w2) - y) ** 2).sum().backward()
        assert np.allclose(_unpacked(data["grads"]["w1"]), w1.grad.numpy(), rtol=1e-12, atol=1e-9)
        assert np.allclose(np.array(data["grads"]["w2"]), w2.grad.numpy(), rtol=1e-12, atol=1e-9)
        assert data["backward"][0]["jacobians"]["w1"] == {"rows": 1, "cols": 100_000, "row": "vjp"}

    def test_verbose_says_time_and_peak_memory(self, net, tmp_path):
        """build --verbose gives each spec's seconds and the peak memory of the process that built it."""
        result = invoke("build", net, "--out", tmp_path, "--format", "md", "--verbose")
        assert result.exit_code == 0, result.stderr
        line = result.stdout.splitlines()[0]
        found = re.fullmatch(r".*net\.yaml: built in (\d+\.\d\d) s, peak memory (\d+) MiB", line)
        assert found, line
        assert 0 < float(found[1]) and 50 < int(found[2]) < 4096


@pytest.fixture(scope="module")
def net32(tmp_path_factory) -> Path:
    """The same net in float32, as the tutorial runs it."""
    return write_net(tmp_path_factory.mktemp("net32"), "float32")


def _torch_net(folder: Path, dtype) -> dict[str, np.ndarray]:
    """Run the net in torch from the .npy files: loss, w1.grad and w2.grad."""
    x, y, w1, w2 = (torch.from_numpy(np.load(folder / f"{n}.npy")) for n in ("x", "y", "w1", "w2"))
    w1.requires_grad_()
    w2.requires_grad_()
    loss = ((x.mm(w1).clamp(min=0).mm(w2) - y) ** 2).sum()
    loss.backward()
    return {"loss": loss.detach().numpy(), "w1": w1.grad.numpy(), "w2": w2.grad.numpy()}


class TestFloat32Net:
    def test_check_agrees_within_the_stated_bounds(self, net32):
        """derive check of the float32 net agrees: the printed block is torch's but for digits the note bounds."""
        assert compare_spec(net32) == []

    def test_bounds_hold_torch_and_are_tight(self, net32):
        """Each stated bound holds torch's float32 grads (run here), and is under 1e-5 of the grad's largest number."""
        from generator.document.small import build_document
        from generator.engines.shadow import shadow
        from generator.pipeline.build import derive_graph, graph_of

        graph = graph_of(net32)
        document = build_document(derive_graph(graph), stem="net")
        bounds = {b.label: float(b.bound) for b in document.order.bounds}
        assert set(bounds) == {"w1.grad", "w2.grad"}
        ours, theirs = shadow(graph).grads, _torch_net(net32.parent, torch.float32)
        for leaf in ("w1", "w2"):
            largest = np.abs(theirs[leaf]).max()
            assert np.abs(ours[leaf] - theirs[leaf].reshape(-1)).max() <= bounds[f"{leaf}.grad"] < 1e-5 * largest
        markdown = render_spec(net32, ("md",), None)["net.md"].decode()
        assert "`w1.grad` within ±" in markdown

    def test_a_bound_too_small_is_caught(self, net32, monkeypatch):
        """With bounds a thousand times too small, check names torch's numbers beyond them."""
        from generator.engines import shadow

        monkeypatch.setattr(shadow, "SPREAD_FACTOR", 0.008)
        found = compare_spec(net32)
        assert any("beyond the ±" in line and "w1.grad[" in line for line in found), found


class TestMillionElements:
    def test_chain_grad_equals_torch(self, tmp_path):
        """A 1000×1000 chain builds within the default budget, and its packed x.grad is torch's."""
        spec = write_chain(tmp_path, 1000)
        x = np.load(tmp_path / "x.npy")
        result = invoke("build", spec, "--out", tmp_path / "out", "--format", "md,json")
        assert result.exit_code == 0, result.stderr
        data = json.loads((tmp_path / "out" / "chain.json").read_text())
        t = torch.tensor(x, requires_grad=True)
        ((((t * 0.5 + 1) ** 2).tanh()) * t.sigmoid()).mean().backward()
        assert np.allclose(_unpacked(data["grads"]["x"]), t.grad.numpy(), rtol=1e-12, atol=1e-18)
        assert (tmp_path / "out" / "chain.md").stat().st_size < 40_000  # the document does not grow with the tensors

    def test_npy_values_stay_floats(self, tmp_path):
        """A million-element .npy input is held as one float64 array, its Fractions made only when asked."""
        value = load(write_chain(tmp_path, 1000)).inputs[0].value
        x = np.load(tmp_path / "x.npy")
        assert isinstance(value.values, Floats) and value.shape == (1000, 1000)
        assert np.array_equal(floats(value), x.reshape(-1))
        assert value.values[12345] == Fraction(float(x.reshape(-1)[12345]))
        assert len(value.values) == 1_000_000


class TestHelpers:
    def test_floats_behave_as_the_tuple_they_stand_for(self):
        """Floats compare, index, slice and iterate as the tuple of Fractions would, and fill keeps exact 1/10."""
        numbers = [0.5, -1.25, 3.0, 1e-300]
        held = Floats(np.array(numbers))
        assert tuple(held) == tuple(Fraction(v) for v in numbers) and held == tuple(Fraction(v) for v in numbers)
        assert held[1] == Fraction(-5, 4) and held[-1] == Fraction(1e-300) and held[1:3] == (Fraction(-5, 4), Fraction(3))
        filled = Floats(np.full(5000, 0.1), Fraction(1, 10))
        assert set(filled) == {Fraction(1, 10)} and filled[4999] == Fraction(1, 10)
        assert Array((2, 2), held) == Array((2, 2), Floats(np.array(numbers)))
        assert hash(held) == hash(Floats(np.array(numbers)))

    def test_sum_of_many_terms_writes_what_sum_tex_writes(self):
        """sum_tex_of, which formats only the terms it shows, writes what sum_tex writes from every term."""
        rng = np.random.default_rng(0)
        term = lambda v: f"{v:.2g}"  # noqa: E731
        for _ in range(2000):
            n = int(rng.integers(257, 400))
            values = rng.choice([0.1, 0.2, 0.3, 1.0, 2.0], size=n)
            cut = int(rng.integers(0, n))
            kind = int(rng.integers(0, 4))
            if kind == 0:
                values[:] = 0.5
            elif kind == 1:
                values[:cut] = 0.5
            elif kind == 2:
                values[cut:] = 0.7
            assert sum_tex_of(values, term) == sum_tex([term(v) for v in values])

    def test_l2_norm_is_math_s(self):
        """The L2 norm of a million numbers, summed in columns, is math.hypot's to 1e-14."""
        x = np.random.default_rng(3).standard_normal(1_000_003) * 1e150
        assert l2(x) == pytest.approx(math.hypot(*x.tolist()), rel=1e-14)
        assert l2(np.array([3.0, 4.0])) == 5.0
