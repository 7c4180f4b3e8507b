"""Sentences and equations that must be true of their derivation: products, kinks, ties, v, all at once."""

from __future__ import annotations

import re

from generator.document.small import build_document

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
