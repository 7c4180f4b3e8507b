"""The gallery as an MkDocs site: `mkdocs build --strict` with Material, arithmatex, KaTeX and Mermaid, in Chromium.

tests/mkdocs/ is the project the README's Embedding recipe shows (mkdocs.yml, docs/javascripts/katex.js);
the test adds KaTeX and Mermaid from node_modules under docs/ (a site would use them from a CDN or copy them
the same way) and the gallery's Markdown in the flavors that claim MkDocs reads them, builds, serves the
site on 127.0.0.1 and reads every page with tests/js/site_check.js.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from .helpers import ROOT
from .sites import (build_gallery, check, expected_formulas, expected_mermaid, plain_title, serve, table_faults,
                    vendor)

FLAVORS = ("mkdocs", "portable")
PROJECT = ROOT / "tests" / "mkdocs"
SITE_NAME = "derive gallery"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    """Build the gallery in each flavor into its own MkDocs project, build each strictly, read every page."""
    root = tmp_path_factory.mktemp("mkdocs")
    docs = {}
    for flavor in FLAVORS:
        project = root / flavor
        shutil.copytree(PROJECT, project)
        vendor(project / "docs", "katex", "mermaid")
        for md in build_gallery(project / "docs", flavor):
            docs[f"{flavor}/{md.stem}"] = (flavor, md.read_text())
        result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"], cwd=project,
                                capture_output=True, text=True, timeout=300,
                                env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with serve(root) as url:
        pages = []
        for name in docs:
            flavor, stem = name.split("/")
            pages.append({"name": name, "url": f"{url}{flavor}/site/{stem}/", "root": ".md-content"})
        reports = {r["name"]: r for r in check(pages)}
    return {"docs": docs, "reports": reports}


def pages(site: dict, flavor: str):
    """Yield (name, markdown, report) for each gallery page of a flavor."""
    for name, (f, text) in site["docs"].items():
        if f == flavor:
            yield name, text, site["reports"][name]


def test_gallery_has_every_spec(site):
    """Every gallery spec is a page in each flavor."""
    specs = [*ROOT.glob("derivations/*.yaml"), *ROOT.glob("derivations/*.py")]
    for flavor in FLAVORS:
        assert len(list(pages(site, flavor))) == len(specs)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_every_formula_renders(site, flavor):
    """Each page's content shows as many KaTeX formulas as its Markdown holds, none of them an error."""
    wrong = [f"{name}: {r['formulas']} rendered, {expected_formulas(text, flavor)} expected"
             for name, text, r in pages(site, flavor) if r["formulas"] != expected_formulas(text, flavor)]
    errors = [f"{name}: {e}" for name, _, r in pages(site, flavor) for e in r["errors"]]
    assert not wrong and not errors, "\n".join(wrong[:20] + errors[:20])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_no_math_left_as_text(site, flavor):
    """No page (content, navigation, table of contents) shows a math delimiter as text outside code."""
    left = [f"{name}: {text!r}" for name, _, r in pages(site, flavor) for text in r["leftover"]]
    assert not left, "\n".join(left[:30])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_tables_keep_their_columns(site, flavor):
    """Every table row has as many cells as the document's table has columns."""
    faults = [f"{name}: {fault}" for name, text, r in pages(site, flavor) for fault in table_faults(r, text)]
    assert not faults, "\n".join(faults[:30])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_graph_draws(site, flavor):
    """Material draws every ```mermaid fence as an SVG, with no Mermaid error."""
    wrong = [f"{name}: {r['mermaid']} drawn of {expected_mermaid(text)}, {r['mermaid_errors']}"
             for name, text, r in pages(site, flavor) if r["mermaid"] != expected_mermaid(text) or r["mermaid_errors"]]
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_title_once(site, flavor):
    """Each page has one h1 and a <title>, both the document's title as plain text (no math in them)."""
    wrong = [f"{name}: h1 {r['h1']}, title {r['title']!r}, not {plain_title(text)!r}"
             for name, text, r in pages(site, flavor)
             if r["h1"] != [plain_title(text)] or r["title"] != f"{plain_title(text)} - {SITE_NAME}"]
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_no_console_errors(site, flavor):
    """No page logs an error, fails a request or reaches for the network (fonts, CDN)."""
    logged = [f"{name}: {line[:300]}" for name, _, r in pages(site, flavor) for line in r["console"]]
    assert not logged, "\n".join(logged[:20])


def test_readme_shows_the_tested_project():
    """The README's MkDocs recipe is this test's mkdocs.yml and katex.js, verbatim."""
    readme = (ROOT / "README.md").read_text()
    for path in ("mkdocs.yml", "docs/javascripts/katex.js"):
        assert (PROJECT / path).read_text().strip() in readme, f"README lacks tests/mkdocs/{path} as tested"
