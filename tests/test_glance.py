"""Large examples show the entries that carry the meaning, and evaluate each generic equation once, as torch computes."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from generator.document.parts import brief_text
from generator.document.small import build_document
from generator.pipeline.build import derive_spec, render_spec
from generator.pipeline.check import run
from generator.render.flavor import inert
from tests.helpers import ROOT, pdf_text, squeeze

IMAGE = ROOT / "derivations" / "19_image_linear_layer.yaml"
LARGE = [IMAGE, ROOT / "derivations" / "18_large_matrix.yaml", ROOT / "tests" / "large" / "linear_100.yaml",
         ROOT / "tests" / "large" / "elementwise_10k.yaml"]
B = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


@pytest.fixture(scope="module")
def oracle() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Run 19's code in torch (float64), each step its own tensor with its grad kept: name -> (value, grad)."""
    x = torch.full((784,), 0.5, dtype=torch.float64)
    W = torch.full((10, 784), 0.001, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(B, dtype=torch.float64, requires_grad=True)
    t = W @ x
    logits = t + b
    logp = logits.log_softmax(dim=0)
    u = logp[3]
    loss = -u
    steps = {"t": t, "logits": logits, "logp": logp, "u": u, "loss": loss}
    for tensor in steps.values():
        tensor.retain_grad()
    loss.backward()
    out = {name: (s.detach().numpy().copy(), s.grad.numpy().copy()) for name, s in steps.items()}
    out.update(W=(W.detach().numpy(), W.grad.numpy()), b=(b.detach().numpy(), b.grad.numpy()))
    return out


@pytest.fixture(scope="module")
def image_md() -> str:
    return render_spec(IMAGE, ("md",), None)["19_image_linear_layer.md"].decode()


def _last_number(tex: str) -> float:
    """Return the number an equation chain ends with."""
    return float(tex.rsplit(" = ", 1)[1])


def _index(element: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Return the index of an element written x_{3} or W_{30} (digits run together below 10)."""
    sub = re.search(r"_\{([\d,]+)\}$", element).group(1)
    return tuple(map(int, sub.split(","))) if "," in sub else tuple(int(c) for c in sub)


def _close(ours: float, theirs: float) -> bool:
    """Six significant digits, as the document writes numbers."""
    return math.isclose(ours, theirs, rel_tol=5e-6, abs_tol=1e-12)


def glance(values, shape):
    """Return the rule's choice (imported here, so that the other tests run where the rule is missing)."""
    from generator.document.glance import glance as rule

    return rule(values, shape)


class TestRule:
    def test_sparse_tensor_names_its_non_zeros(self):
        """A gradient that is 0 but for the target's -1 is 'except', with the -1's index picked."""
        g = glance(np.array([0, 0, 0, -1.0, 0, 0, 0, 0, 0, 0]), (10,))
        assert (g.kind, g.baseline, g.entries, g.pick, g.why, g.nonzero) == ("except", 0.0, (3,), 3, "nonzero", 1)

    def test_all_equal_marks_nothing(self):
        """A constant tensor keeps only its corners, and its first element is the example."""
        g = glance(np.full(144, 0.25), (12, 12))
        assert (g.kind, g.marks, g.pick, g.why, g.baseline) == ("equal", (), 0, "equal", 0.25)

    def test_one_outlier_is_named(self):
        """All 2.0 but one 7.0: that one is the exception, the baseline 2.0."""
        x = np.full(50, 2.0)
        x[17] = 7.0
        g = glance(x, (5, 10))
        assert (g.kind, g.baseline, g.entries, g.pick, g.why) == ("except", 2.0, (17,), 17, "outlier")

    def test_negative_row_is_named(self):
        """A matrix positive everywhere but one negative row (of varying entries): that row, and its first entry."""
        x = np.linspace(0.01, 0.5, 40).reshape(4, 10)
        x[2] = -np.linspace(1, 2, 10)
        g = glance(x.reshape(-1), (4, 10))
        assert (g.kind, g.rows, g.entries, g.pick, g.why) == ("spread", (2,), (20,), 20, "sign")

    def test_few_entries_of_the_other_sign(self):
        """Two negative entries among many positive ones (not whole rows) are named one by one."""
        x = np.linspace(1, 2, 30)
        x[[4, 22]] = [-3.0, -0.5]
        g = glance(x, (30,))
        assert (g.rows, g.entries, g.pick, g.why) == ((), (4, 22), 4, "sign")

    def test_spread_picks_the_largest_in_size(self):
        """Without exceptions or a sign minority, the example is the entry largest in size."""
        x = np.random.default_rng(3).uniform(-1, 1, 40)
        g = glance(x, (40,))
        assert (g.entries, g.pick, g.why) == ((), int(np.argmax(np.abs(x))), "largest")

    def test_sizes_and_extremes_agree_with_numpy(self):
        """Non-zeros, the first smallest and largest entries, and the L2 norm are numpy's."""
        x = np.random.default_rng(4).standard_normal(300)
        x[::7] = 0
        g = glance(x, (300,))
        assert (g.nonzero, g.low, g.high) == (np.count_nonzero(x), np.argmin(x), np.argmax(x))
        assert math.isclose(g.norm, float(np.linalg.norm(x)), rel_tol=1e-14)

    def test_norm_neither_overflows_nor_vanishes(self):
        """The norm of huge and of tiny entries is hypot's, not inf or 0."""
        assert glance(np.array([1e200, 1e200, 1e200]), (3,)).norm == pytest.approx(math.hypot(1e200, 1e200, 1e200))
        assert glance(np.array([3e-200, 4e-200]), (2,)).norm == pytest.approx(5e-200)


class TestDisplay:
    def test_shortened_display_keeps_marked_entries(self):
        """A 20-element row shows its ends and the marked index, with dots only over real gaps."""
        from generator.document.latex import picks

        assert picks(20, marks=(9,)) == [0, 1, 2, None, 9, None, 19]
        assert picks(20) == [0, 1, 2, None, 19]

    def test_picture_box_shows_the_one_non_zero(self):
        """A box of a 10-element gradient, 0 but for -1, keeps the -1 within four cells, and the first when it fits."""
        assert brief_text([0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], (10,)) == "[…, -1, …, 0]"
        assert brief_text([0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], (10,)) == "[0, -1, …, 0]"


class TestImageLayer:
    def test_highlighted_entries_are_torchs(self, oracle):
        """Every entry the JSON's highlights name (extremes, exceptions, the example) is torch's, and so are the sizes."""
        data = json.loads(render_spec(IMAGE, ("json",), None)["19_image_linear_layer.json"])
        graph = derive_spec(IMAGE).graph
        values = run(graph, jacobians=False).values
        shown = data["highlights"]
        tensors = [(h, values[name], name) for name, h in shown["values"].items()]
        tensors += [(h, oracle[name][1], name) for name, h in shown["backward"][0].items() if name in oracle]
        tensors += [(h, oracle[name][1], name) for name, h in shown["grads"].items()]
        assert len(tensors) == 6 + 5 + 2
        for h, theirs, name in tensors:
            full = np.asarray(theirs, dtype=np.float64).reshape(graph.node(name).shape)
            assert h["smallest"]["value"] == full[tuple(h["smallest"]["at"])] == full.min()
            assert h["largest"]["value"] == full[tuple(h["largest"]["at"])] == full.max()
            assert h["nonzero"] == np.count_nonzero(full)
            assert math.isclose(h["l2_norm"], float(np.linalg.norm(full)), rel_tol=1e-12)
            for at in h["entries"]:
                assert h["baseline"] is None or full[tuple(at)] != h["baseline"]

    def test_target_minus_one_is_shown(self, oracle, image_md):
        """logp's gradient is torch's -1 at [3] and 0 elsewhere, and the picture and an equation show that -1."""
        grad = oracle["logp"][1]
        assert grad[3] == -1 and np.count_nonzero(grad) == 1
        assert "grad: […, -1, …, 0]" in image_md
        assert inert(r"\frac{\partial \mathrm{loss}}{\partial \mathrm{logp}_{3}} = \left(-1\right) \cdot 1 = -1") in image_md
        assert "the only non-zero element" in image_md

    def test_negative_row_is_shown(self, oracle, image_md):
        """W.grad is negative in row 3 only (torch); the picture keeps that row and a sentence names it with its value."""
        grad = oracle["W"][1]
        assert (grad[3] < 0).all() and (np.delete(grad, 3, axis=0) > 0).all()
        row = f"{grad[3, 0]:.6g}"
        assert f"only row 3 (${row}$ throughout) is negative" in image_md
        assert f"…, [{grad[3, 0]:.4g}, …, {grad[3, 0]:.4g}], …" in image_md
        assert rf"\frac{{\partial \mathrm{{loss}}}}{{\partial W_{{30}}}} = \left({oracle['t'][1][3]:.6g}\right) \cdot 0.5 = {row}" in image_md

    def test_generic_sum_is_evaluated(self, oracle, image_md):
        """t_i = Σ_k W_ik x_k is evaluated at t_0 from the spec's numbers, 784 · 0.001 · 0.5, giving torch's t[0]."""
        assert f"t_{{0}} = 784 \\cdot 0.001 \\cdot 0.5 = {oracle['t'][0][0]:.6g}" in image_md

    def test_evaluated_equations_equal_torch(self, oracle):
        """Each evaluated equation ends in torch's value (forward) or gradient (backward) at its element."""
        doc = build_document(derive_spec(IMAGE), stem="19")
        checked = 0
        for items, which in ((doc.forward, 0), (doc.calls[0].backward[1:], 1)):  # values, then gradients
            for item in items:
                expected = oracle[item.name][which]
                if item.example:
                    index = _index(item.example.element, expected.shape)
                    assert _close(_last_number(item.example.tex), float(expected[index])), item.example.tex
                    checked += 1
                else:
                    assert _close(_last_number(item.equations[-1]), float(expected)), item.equations
        assert checked == 8

    def test_pdf_shows_the_same(self, tmp_path):
        """The PDF has the evaluated sum, the sentence on the -1 and the one on the negative row."""
        from generator.render.pdf import compile_pdf

        tex = render_spec(IMAGE, ("pdf",), None)["19_image_linear_layer.pdf"].decode()
        (tmp_path / "19.pdf").write_bytes(compile_pdf(tex, label="19"))
        text = squeeze(pdf_text(tmp_path / "19.pdf"))
        assert squeeze("784 · 0.001 · 0.5 = 0.392") in text
        assert squeeze("the only non-zero element") in text
        assert squeeze("only row 3 (−0.45869 throughout) is negative") in text


class TestEveryEquation:
    @pytest.mark.parametrize("spec", LARGE, ids=lambda p: p.stem)
    def test_every_generic_equation_is_evaluated(self, spec):
        """In a large document, every step's generic equation is followed by one element's numbers."""
        doc = build_document(derive_spec(spec), stem=spec.stem)
        items = list(doc.forward) + [i for c in doc.calls for i in c.backward if not i.is_output]
        for item in items:
            if item.shape == "scalar":
                assert item.equations[-1].count(" = ") >= 2, item.equations
            else:
                assert item.example is not None and re.search(r"\d", item.example.tex.split(" = ", 1)[1]), item.name
