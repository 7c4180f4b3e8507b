"""Sentences and equations that must be true of their derivation: products, kinks, ties, v, all at once."""

from __future__ import annotations

import math
import re

import pytest

from generator.document.small import build_document
from generator.pipeline.build import derive_spec
from generator.render.messages import Messages

from .helpers import ROOT, run_spec

NEGATIVE_FACTOR = re.compile(r"\\cdot\s*-|·\s*[−-]")


def _equations(doc) -> list[str]:
    """Return every backward equation of a document."""
    return [eq for call in doc.calls for item in call.backward for eq in item.equations]


class TestProducts:
    def test_a_negative_local_derivative_is_parenthesised(self):
        """d(x / y)/dy = -x / y² stands after the dot in parentheses, in symbols and in numbers."""
        d = run_spec({"x": ([1, 2], True), "y": ([4, 0.5], True)}, {"q": "x / y", "out": "q.sum()"}, "out")
        eqs = _equations(build_document(d, stem="t"))
        assert eqs and not [e for e in eqs if NEGATIVE_FACTOR.search(e)]
        assert any(r"\cdot \left(- \frac{x_{0}}{y_{0}^{2}}\right)" in e for e in eqs)

    def test_no_product_in_the_gallery_has_a_bare_negative_factor(self):
        """No display equation of the built gallery writes "· −" (a dot followed by a minus)."""
        bad = []
        for path in sorted((ROOT / "output").glob("*.md")) + sorted((ROOT / "output").glob("*.tex")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if NEGATIVE_FACTOR.search(line):
                    bad.append(f"{path.name}: {NEGATIVE_FACTOR.search(line).group()}")
        assert bad == []


# One op at its kink: (expression of x, x's value, the note's key). Element 0 of x sits on the kink.
KINKS = [
    ("x.relu()", [0.0, 2.0], "relu0"),
    ("torch.abs(x)", [0.0, 2.0], "abs0"),
    ("x.clamp(min=0, max=1)", [0.0, 0.5], "clamp_edge"),
    ("x.clamp(min=-1, max=0)", [0.0, -0.5], "clamp_edge"),
    ("x.sqrt()", [0.0, 4.0], "sqrt0"),
    ("x.log()", [0.0, 2.0], "log0"),
    ("1 / x", [0.0, 2.0], "div0"),
    ("x ** 0.5", [0.0, 4.0], "pow0"),
    ("x ** -1", [0.0, 4.0], "pow0"),
    ("x.norm()", [0.0, 0.0], "norm0"),
    ("x.max()", [3.0, 1.0, 3.0, 3.0], "tie"),
    ("torch.min(x)", [0.0, 0.0, 1.0], "tie"),
]


def _torch_grad(expr: str, x: list[float], upstream: list[float] | None = None) -> list[float]:
    """Return torch's x.grad for sum(upstream * expr(x)) in float64."""
    import torch

    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = eval(expr, {"torch": torch, "x": t})  # the test's own expressions, not spec text
    w = torch.ones_like(y) if upstream is None else torch.tensor(upstream, dtype=torch.float64)
    (y * w).sum().backward()
    return t.grad.tolist()


def _tex_number(tex: str) -> float:
    """Read a number as number_tex writes it: 0.5, -1, \\infty, -\\infty, \\frac{1}{3}."""
    frac = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", tex)
    if frac:
        return (-1 if frac.group(1) else 1) * int(frac.group(2)) / int(frac.group(3))
    return float(tex.replace(r"\infty", "inf").replace(r"\mathrm{nan}", "nan"))


def _notes(expr: str, x: list[float], key: str):
    """Derive sum(expr(x)) and return the document's notes with the key."""
    d = run_spec({"x": (x, True)}, {"y": expr, "out": "y.sum()"}, "out", dtype="float64")
    notes = [n for call in build_document(d, stem="t").calls for n in call.notes if n.key == key]
    assert notes, f"no {key} note for {expr}"
    return notes


class TestKinkNotes:
    @pytest.mark.parametrize("expr, x, key", KINKS, ids=[f"{k}:{e}" for e, _, k in KINKS])
    def test_the_derivative_a_note_states_is_torchs(self, expr, x, key):
        """The note's derivative at the kink is what torch's backward gives that element."""
        grad = _torch_grad(expr, x)
        for note in _notes(expr, x, key):
            j = 0 if key in ("tie", "norm0") else int(re.search(r"\d+", note.input).group())
            assert _tex_number(note.local) == grad[j], (note, grad)

    @pytest.mark.parametrize("lang", ["en", "zh"])
    @pytest.mark.parametrize("expr, x, key", KINKS, ids=[f"{k}:{e}" for e, _, k in KINKS])
    def test_a_note_says_its_derivative_and_names_the_input(self, expr, x, key, lang):
        """Each language's sentence shows the derivative and the input element, never a stand-in letter."""
        for note in _notes(expr, x, key):
            text = Messages(lang)(Messages(lang).note_key(note.key), **note.params)
            assert note.local in text and note.input in text
            assert "|a|" not in text and r"\sqrt{a}" not in text and "{a}" not in text and "{a^2}" not in text

    @pytest.mark.parametrize("expr", ["x.sqrt()", "x.log()", "1 / x", "x ** 0.5"])
    def test_an_incoming_zero_gives_nan_at_an_infinite_slope(self, expr):
        """As the notes say: torch's gradient there is nan when the incoming gradient is 0, and so is ours."""
        theirs = _torch_grad(expr, [0.0, 4.0], upstream=[0.0, 1.0])
        d = run_spec({"x": ([0.0, 4.0], True), "w": ([0.0, 1.0], False)}, {"out": f"(({expr}) * w).sum()"}, "out",
                     dtype="float64")
        assert math.isnan(theirs[0]) and math.isnan(float(d.grads["x"][0]))
        (note,) = _notes(expr, [0.0, 4.0], KEYS[expr])
        for lang in ("en", "zh"):
            assert "`nan`" in Messages(lang)(f"note_{note.key}", **note.params)

    def test_max_along_a_dim_sends_the_gradient_to_one_index(self):
        """The tie note's claim: max(dim) and min(dim) give a tie's whole gradient to the index they return."""
        import torch

        for method in ("max", "min"):
            x = torch.tensor([[3.0, 0.0, 3.0], [0.0, 3.0, 0.0]], dtype=torch.float64, requires_grad=True)
            values, index = getattr(x, method)(dim=1)
            values.sum().backward()
            expected = torch.zeros_like(x)
            expected[torch.arange(2), index] = 1
            assert torch.equal(x.grad, expected) and (x.grad.sum(dim=1) == 1).all()
        (note,) = _notes("x.max()", [3.0, 1.0, 3.0], "tie")
        assert "`max(dim)` and `min(dim)`" in Messages("en")("note_tie", **note.params)
        assert "`max(dim)` 和 `min(dim)`" in Messages("zh")("note_tie", **note.params)


KEYS = {"x.sqrt()": "sqrt0", "x.log()": "log0", "1 / x": "div0", "x ** 0.5": "pow0"}


class TestTies:
    def test_a_tie_share_is_divided_by_the_number_of_ties(self):
        """max over [1, 3, 3, 0] splits by 2, as torch does; min's single extreme is not divided: no '#ties' left."""
        x = [1.0, 3.0, 3.0, 0.0]
        d = run_spec({"x": (x, True)}, {"spread": "x.max() - torch.min(x)"}, "spread")
        doc = build_document(d, stem="t")
        eqs = _equations(doc)
        assert not [e for e in eqs if "#" in e]
        shares = re.findall(r"\\frac\{\\left\[x_\{(\d)\} = t\\right\]\}\{(\d+)\}", " ".join(eqs))
        assert shares
        torch_max = _torch_grad("x.max()", x)
        for j, ties in shares:
            assert torch_max[int(j)] in (0.0, 1 / int(ties)) and 1 / int(ties) in torch_max
        assert r"\left[x_{3} = u\right]" in " ".join(eqs)  # min: one extreme, no fraction
        (note,) = [n for call in doc.calls for n in call.notes]
        assert note.count == 2 == round(1 / max(torch_max))


class TestUpstream:
    def test_v_is_indexed_as_the_output(self):
        """For a 2×2 output, L = Σ v_ij C_ij, as the node-by-node equations index v (v_00, not v_i)."""
        d = run_spec({"A": ([[1, 2], [3, 4]], True)}, {"C": "A * 2"}, ("C", [[1, 0], [0.5, -1]]))
        (call,) = build_document(d, stem="t").calls
        assert call.weighted == r"L = \sum_{i,j} v_{ij} \, C_{ij}"
        assert r"v_{00}" in " ".join(_equations(build_document(d, stem="t")))
        for lang in ("en", "zh"):
            text = Messages(lang)("what_v", v="v", out="C", out_tex="C", weighted=call.weighted)
            assert call.weighted in text and "v_i " not in text and "C_i" not in text

    def test_the_matrix_example_calls_its_gradient_v_throughout(self):
        """09's summary names the gradient as its code and body do (v), not G."""
        d = derive_spec(ROOT / "derivations" / "09_matrix_output.yaml")
        doc = build_document(d, stem="09")
        assert {c.gradient_name for c in doc.calls} == {"v"}
        assert re.search(r"\bv\b", doc.summary) and not re.search(r"\bG\b", doc.summary)


def _last_number(eq: str) -> float:
    """Return the value an equation ends with: '... = -\\frac{19}{10} = -1.9' or '... \\approx -0.340999'."""
    return float(re.split(r"=|\\approx", eq)[-1].strip())


class TestAllAtOnce:
    def test_every_partial_of_the_linear_layer_is_shown_with_torchs_value(self):
        """03 has 6 + 2 leaf elements needing grad: all 8 partials appear, each equal to torch's grad."""
        import torch

        d = derive_spec(ROOT / "derivations" / "03_linear_layer_mse.yaml")
        (call,) = build_document(d, stem="03").calls
        W = torch.tensor([[0.5, -0.25, 1], [0.2, 0.1, -0.3]], dtype=torch.float64, requires_grad=True)
        b = torch.tensor([0.1, -0.2], dtype=torch.float64, requires_grad=True)
        x, target = torch.tensor([1.0, 2, -1], dtype=torch.float64), torch.tensor([1.0, 0], dtype=torch.float64)
        ((W @ x + b - target) ** 2).mean().backward()
        expected = {f"W_{{{i}{j}}}": W.grad[i, j].item() for i in range(2) for j in range(3)}
        expected |= {f"b_{{{i}}}": b.grad[i].item() for i in range(2)}
        shown = {re.search(r"\\partial ([Wb]_\{\d+\})\}", eq).group(1): _last_number(eq) for eq in call.all_at_once[1:]}
        assert len(call.all_at_once) - 1 == len(shown) == W.numel() + b.numel() and call.all_at_once_hidden == 0
        assert shown == pytest.approx(expected, abs=1e-12)

    def test_partials_left_out_are_counted_and_said(self):
        """With 16 leaf elements, 12 partials are shown and the sentence says 4 more, in each language."""
        d = run_spec({"x": ([float(i) for i in range(16)], True)}, {"out": "(x * x).sum()"}, "out")
        (call,) = build_document(d, stem="t").calls
        assert len(call.all_at_once) - 1 + call.all_at_once_hidden == 16 and call.all_at_once_hidden == 4
        for lang in ("en", "zh"):
            assert " 4 " in Messages(lang)("all_at_once_hidden", count=call.all_at_once_hidden)


def _matrices(tex: str) -> list[list[list[float]]]:
    """Return every bmatrix of an equation as rows of numbers."""
    bodies = re.findall(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", tex)
    return [[[_tex_number(c.strip()) for c in row.split("&")] for row in body.split(r"\\")] for body in bodies]


def _item(doc, name: str):
    return next(item for call in doc.calls for item in call.backward if item.name == name)


class TestProductForm:
    def test_the_linear_layers_weight_gradient_is_shown_as_an_outer_product(self):
        """03: ∂loss/∂W = (∂loss/∂t) xᵀ, with torch's t.grad as the column, x as the row, and torch's W.grad."""
        import numpy as np
        import torch

        W = torch.tensor([[0.5, -0.25, 1], [0.2, 0.1, -0.3]], dtype=torch.float64, requires_grad=True)
        b = torch.tensor([0.1, -0.2], dtype=torch.float64, requires_grad=True)
        x, target = torch.tensor([1.0, 2, -1], dtype=torch.float64), torch.tensor([1.0, 0], dtype=torch.float64)
        t = W @ x
        t.retain_grad()
        ((t + b - target) ** 2).mean().backward()
        doc = build_document(derive_spec(ROOT / "derivations" / "03_linear_layer_mse.yaml"), stem="03")
        item = _item(doc, "W")
        assert item.outer and r"\frac{\partial \mathrm{loss}}{\partial t} \, x^{\mathsf T}" in item.matrix
        column, row, result = (np.array(m) for m in _matrices(item.matrix))
        assert np.allclose(column[:, 0], t.grad.numpy()) and np.allclose(row[0], x.numpy())
        assert np.allclose(column @ row, result) and np.allclose(result, W.grad.numpy())
        assert "outer product" in Messages("en")("matrix_form", outer=True)

    def test_a_matrix_products_gradients_are_v_bt_and_at_v(self):
        """09: A.grad = v Bᵀ and B.grad = Aᵀ v, the summary's claim, with torch's grads."""
        import numpy as np
        import torch

        A = torch.tensor([[1.0, 2], [3, 4]], dtype=torch.float64, requires_grad=True)
        B = torch.tensor([[0.0, 1], [1, -1]], dtype=torch.float64, requires_grad=True)
        v = torch.tensor([[1, 0], [0.5, -1]], dtype=torch.float64)
        (A @ B).backward(v)
        doc = build_document(derive_spec(ROOT / "derivations" / "09_matrix_output.yaml"), stem="09")
        left, right, result = (np.array(m) for m in _matrices(_item(doc, "A").matrix))
        assert np.allclose(left, v.numpy()) and np.allclose(right, B.detach().numpy().T)
        assert np.allclose(left @ right, result) and np.allclose(result, A.grad.numpy())
        left, right, result = (np.array(m) for m in _matrices(_item(doc, "B").matrix))
        assert np.allclose(left, A.detach().numpy().T) and np.allclose(right, v.numpy())
        assert np.allclose(left @ right, result) and np.allclose(result, B.grad.numpy())

    def test_no_product_form_where_a_tensor_feeds_two_ops(self):
        """A gradient that sums two paths is not one consumer's product: no matrix form is claimed."""
        d = run_spec({"W": ([[1, 2], [3, 4]], True), "x": ([1, -1], False)}, {"y": "W @ x + W.sum()"}, ("y", [1, 1]))
        assert _item(build_document(d, stem="t"), "W").matrix == ""


class TestSummaries:
    def test_cross_entropy_shows_softmax_minus_one_hot(self):
        """04's summary: each partial is the logit's softmax, less 1 for class 0; the equations show it, as torch."""
        import torch

        logits = torch.tensor([2, 1, 0.1], dtype=torch.float64, requires_grad=True)
        (-torch.log_softmax(logits, dim=0)[0]).backward()
        softmax = torch.softmax(logits.detach(), dim=0)
        assert torch.allclose(logits.grad, softmax - torch.tensor([1.0, 0, 0], dtype=torch.float64))
        doc = build_document(derive_spec(ROOT / "derivations" / "04_cross_entropy.yaml"), stem="04")
        (call,) = doc.calls
        total = r"e^{\mathrm{logits}_{0}} + e^{\mathrm{logits}_{1}} + e^{\mathrm{logits}_{2}}"
        for i in (1, 2):  # softmax_i itself
            (eq,) = [e for e in call.all_at_once if rf"\partial \mathrm{{logits}}_{{{i}}}}} =" in e]
            assert rf"\frac{{e^{{\mathrm{{logits}}_{{{i}}}}}}}{{{total}}}" in eq
            assert _last_number(eq) == pytest.approx(softmax[i].item(), abs=1e-6)
        (eq,) = [e for e in call.all_at_once if r"\partial \mathrm{logits}_{0}} =" in e]
        assert _last_number(eq) == pytest.approx(softmax[0].item() - 1, abs=1e-6)
        assert "softmax" in doc.summary and "less 1 for the true" in doc.summary
