"""Every math block of every built document renders in KaTeX's strict mode, as readers' sites render it."""

from __future__ import annotations

import json
import subprocess

import pytest

from generator.build import build_spec

from .helpers import GALLERY, ROOT

CHECK = ROOT / "tests" / "js" / "katex_check.js"


def katex(files: list) -> dict:
    """Run the KaTeX checker (node, with the katex package that make test installs)."""
    result = subprocess.run(["node", str(CHECK), *map(str, files)], capture_output=True, text=True, timeout=300,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """Build every gallery spec's Markdown with the current code."""
    out = tmp_path_factory.mktemp("md")
    for spec in GALLERY:
        assert build_spec(spec, out=out, formats=("md",)).ok
    return sorted(out.glob("*.md"))


def test_every_math_block_renders(documents):
    """KaTeX strict mode accepts every $$ block and inline $…$ of every gallery document."""
    report = katex(documents)
    assert report["errors"] == []
    assert report["blocks"] > 50 * len(documents) // 2


def test_checker_catches_bad_math(tmp_path):
    """The checker itself fails on math KaTeX rejects, so a pass means something."""
    bad = tmp_path / "bad.md"
    bad.write_text("$$\n\\frac{1}{\n$$\n\nand $\\undefinedmacro$ inline\n")
    report = katex([bad])
    assert report["blocks"] == 2
    assert len(report["errors"]) == 2
