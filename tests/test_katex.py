"""Every math block of every built document renders in KaTeX's strict mode, as readers' sites render it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from generator.pipeline.build import derive_spec, render_spec
from generator.document.small import build_document
from generator.spec.load import FLAVORS
from generator.render.formats import RENDERERS

from .helpers import GALLERY, ROOT

CHECK = ROOT / "tests" / "js" / "katex_check.js"


def katex(files: list, flavor: str = "portable") -> dict:
    """Run the KaTeX checker (node, with the katex package that make test installs) with a flavor's delimiters."""
    result = subprocess.run(["node", str(CHECK), "--flavor", flavor, *map(str, files)], capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> dict[str, list]:
    """Build every gallery spec's Markdown with the current code, in every flavor: flavor -> files."""
    out = tmp_path_factory.mktemp("md")
    files: dict[str, list] = {flavor: [] for flavor in FLAVORS}
    for spec in GALLERY:
        derivation = derive_spec(spec)  # derive once, render in each flavor
        for flavor in FLAVORS:
            document = build_document(derivation, stem=spec.stem, flavor=flavor)
            path = out / flavor / f"{spec.stem}.md"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(RENDERERS["md"].render(document=document, derivation=derivation))
            files[flavor].append(path)
    return files


@pytest.fixture(scope="module")
def reports(documents) -> dict[str, dict]:
    """Run the checker once per flavor over that flavor's documents: flavor -> report."""
    return {flavor: katex(files, flavor) for flavor, files in documents.items()}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_every_math_block_renders(documents, reports, flavor):
    """KaTeX strict mode accepts every display and inline formula of every gallery document, in each flavor."""
    assert reports[flavor]["errors"] == []
    assert reports[flavor]["blocks"] > 50 * len(documents[flavor]) // 2


def test_checker_finds_the_same_math_in_every_flavor(reports):
    """Each flavor's delimiters find exactly as many formulas in each document as the portable ones do."""
    counts = {flavor: {Path(f).name: n for f, n in report["files"].items()} for flavor, report in reports.items()}
    assert all(counts[flavor] == counts["portable"] for flavor in FLAVORS), counts


def test_checker_catches_bad_math(tmp_path):
    """The checker itself fails on math KaTeX rejects, so a pass means something."""
    bad = tmp_path / "bad.md"
    bad.write_text("$$\n\\frac{1}{\n$$\n\nand $\\undefinedmacro$ inline\n")
    report = katex([bad])
    assert report["blocks"] == 2
    assert len(report["errors"]) == 2


def test_checker_reads_each_flavors_delimiters(tmp_path):
    """With --flavor, the checker finds display and inline math in that flavor's syntax, and fails bad math."""
    samples = {
        "github": "```math\n\\frac{1}{\n```\n\nand $`\\undefinedmacro`$ inline\n",
        "hugo": "\\[\n\\frac{1}{\n\\]\n\nand \\(\\undefinedmacro\\) inline\n",
        "jekyll": "$$\n\\frac{1}{\n$$\n\nand $$\\undefinedmacro$$ inline\n",
    }
    for flavor, text in samples.items():
        bad = tmp_path / f"{flavor}.md"
        bad.write_text(text)
        report = katex([bad], flavor)
        assert (report["blocks"], len(report["errors"])) == (2, 2), flavor


def test_every_op_s_generic_formulas_render(tmp_path):
    """Each op's generic element formulas (a large document's forward and backward), one case per op, render in KaTeX."""
    import yaml

    from .test_bulk import CASES, CLASSES, POS, W, X

    values = {"x": X, "w": W, "p": POS, "b": [0.5, -2.0, 1.0]}
    files = []
    for case, (expr, _) in sorted(CASES.items()):
        inputs = {name: {"value": value, "requires_grad": True} for name, value in values.items()}
        inputs["Y"], inputs["c"] = {"value": CLASSES, "dtype": "int64"}, {"value": 2, "dtype": "int64"}
        inputs["big"] = {"fill": 1.0, "shape": [65], "requires_grad": True}  # over SMALL: the generic path
        spec = {"title": case, "dtype": "float64", "inputs": inputs,
                "steps": {"y": expr, "out": "(y * y).sum() + big.sum()"}, "backward": "out"}
        path = tmp_path / f"{case}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        text = render_spec(path, ("md",), None)[f"{case}.md"]
        assert b"computed in float64" in text  # the array path's document
        files.append(tmp_path / f"{case}.md")
        files[-1].write_bytes(text)
    report = katex(files)
    assert report["errors"] == []
    assert report["blocks"] > 10 * len(files)
