"""The gallery: every spec agrees with torch, prints what torch prints, and output/ is fresh."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from generator.pipeline.build import derive_spec
from generator.pipeline.check import compare, run
from generator.document.code import printed, torch_code
from generator.document.small import build_document
from generator.ops import REGISTRY

from .helpers import COMMITTED, GALLERY, ROOT, outputs, pdf_producer, pdf_text

IDS = [p.stem for p in GALLERY]


@pytest.fixture(scope="module")
def derivations():
    """Derive every gallery spec once."""
    return {p.stem: derive_spec(p) for p in GALLERY}


def test_gallery_is_big_enough():
    """The seed post's two examples and at least ten more."""
    assert len(GALLERY) >= 12
    assert {"01_scalar_mean", "02_vector_jacobian"} <= set(IDS)


@pytest.mark.parametrize("stem", IDS)
def test_agrees_with_torch(stem, derivations):
    """Values, grads and Jacobians equal torch's in float64."""
    d = derivations[stem]
    assert compare(d, run(d.graph, dtype="float64")) == []


@pytest.mark.parametrize("stem", IDS)
def test_code_prints_what_the_document_says(stem, derivations, tmp_path):
    """The generated script, run by Python with real torch, prints the document's block byte for byte."""
    d = derivations[stem]
    script = tmp_path / "example.py"
    script.write_text(torch_code(d.graph))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    printed = re.sub(r"0x[0-9a-f]+", "0x...", result.stdout)  # a grad_fn's address changes every run
    assert printed == build_document(d, stem=stem).printed


def test_seed_examples_print_the_posts_numbers(derivations):
    """The blog post's results: 4.5 everywhere, and Jᵀ·v printed in scientific notation."""
    assert printed(derivations["01_scalar_mean"]) == "tensor([[4.5000, 4.5000],\n        [4.5000, 4.5000]])\n"
    assert printed(derivations["02_vector_jacobian"]) == "tensor([2.0000e-01, 2.0000e+00, 2.0000e-04])\n"


def test_gallery_uses_every_operation(derivations):
    """Together the specs use every op in the registry (one that torch composes of others, by its spelling)."""
    used = {n.op for d in derivations.values() for n in d.graph.nodes if not n.is_leaf}
    sources = "".join(path.read_text(encoding="utf-8") for path in GALLERY)
    spelled = {key for key, op in REGISTRY.items() if op.composite
               and any(re.search(rf"\b{name}\(", sources) for name in op.spelling.names + op.spelling.functional)}
    assert used | spelled == set(REGISTRY)
    assert not used & spelled  # a composite op is never a node of its own


def test_gallery_shows_the_situations_readers_ask_about(derivations):
    """Broadcasting, two calls, a matrix gradient, relu at 0, and ties are all in the gallery."""
    graphs = [d.graph for d in derivations.values()]
    shapes = lambda g, n: [g.node(a).shape for a in n.parents]  # noqa: E731
    assert any(len({s for s in shapes(g, n)}) > 1 for g in graphs for n in g.nodes if n.op in ("add", "mul"))
    assert any(len(g.spec.backward) > 1 for g in graphs)
    assert any(c.gradient and len(c.gradient.shape) == 2 for g in graphs for c in g.spec.backward)
    kinks = {k.key for d in derivations.values() for p in d.passes for k in p.kinks}
    assert {"relu0", "tie"} <= kinks


@pytest.mark.parametrize("stem", IDS)
@pytest.mark.parametrize("fmt", COMMITTED)
def test_output_is_fresh(stem, fmt, gallery_build):
    """output/ holds exactly what the current code builds, in every committed format (run `make build` to refresh it)."""
    built = gallery_build / f"{stem}.{fmt}"
    committed = ROOT / "output" / built.name
    assert committed.exists(), f"{committed} is missing: run make build"
    if fmt == "pdf" and committed.read_bytes() != built.read_bytes() and pdf_producer(committed) != pdf_producer(built):
        # another TeX version lays out the same bytes differently: then the text must agree
        assert pdf_text(committed) == pdf_text(built), f"{committed} is stale: run make build"
        return
    assert committed.read_bytes() == built.read_bytes(), f"{committed} is stale: run make build"


def test_output_has_nothing_else():
    """Every file in output/ is a gallery spec's, in a format `make build` commits."""
    expected = {f"{stem}.{fmt}" for stem in IDS for fmt in COMMITTED}
    assert {p.name for p in outputs(ROOT / "output")} == expected
