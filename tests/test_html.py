"""--format html: one page per spec that works offline, opened in headless Chromium.

The page must need nothing but itself: KaTeX and its fonts are inlined, the graph is an SVG, and a
Content-Security-Policy forbids every request. tests/js/site_check.js reads each page as a reader sees it
(every request but the page's own is blocked and reported); the expected counts come from the same spec's
Markdown, whose formulas and Mermaid boxes the page must show.
"""

from __future__ import annotations

import re

import pytest

from generator.pipeline.build import build_specs

from .helpers import ROOT
from .sites import check, expected_formulas, problems, serve

SPECS = ["01_scalar_mean.yaml", "01_scalar_mean_zh.yaml", "01_scalar_mean_torch.py", "02_vector_jacobian.yaml",
         "02_vector_jacobian_zh.yaml", "02_vector_jacobian_torch.py", "08_relu_abs_clamp_kinks.yaml",
         "18_large_matrix.yaml", "35_airoads_training_steps.py", "39_docs_functional_hessian.py"]
HOSTILE = """title: '</title><script>alert(1)</script> $x$ \\(y\\) </style> & <b>bold</b>'
summary: 'A summary with $$\\frac{1}{2}$$, \\[z\\], <img src=x onerror=alert(1)> and `code`.'
inputs:
  x:
    value: [1, 2]
    requires_grad: true
steps:
  y: (x * x).sum()
backward: y
"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict:
    """Build the pages (and the same specs' Markdown) and read each page in Chromium."""
    out = tmp_path_factory.mktemp("html")
    hostile = out / "hostile.yaml"
    hostile.write_text(HOSTILE, encoding="utf-8")
    specs = [ROOT / "derivations" / s for s in SPECS] + [hostile]
    outcomes = build_specs(specs, out=out, formats=("md", "html"), jobs=2, force=True, cache=False)
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]
    names = [s.name.rsplit(".", 1)[0] for s in specs]
    with serve(out) as url:
        reports = check([{"name": n, "url": f"{url}{n}.html"} for n in names])
    return {n: {"md": (out / f"{n}.md").read_text(encoding="utf-8"), "html": (out / f"{n}.html").read_text(encoding="utf-8"),
                "report": r} for n, r in zip(names, reports)}


def markup(page: str) -> str:
    """Return a page without its inline scripts and styles (KaTeX's own code holds tags as strings)."""
    return re.sub(r"<(script|style)>.*?</\1>", "", page, flags=re.S)


def test_every_page_renders_whole(pages):
    """Every formula renders with the inlined KaTeX, none fails, no math is left as text, tables keep columns."""
    wrong = {n: [p for p in problems(page["report"], page["md"], "portable") if "Mermaid" not in p]
             for n, page in pages.items()}
    assert {k: v for k, v in wrong.items() if v} == {}
    assert all(page["report"]["formulas"] > 10 for page in pages.values())


def test_nothing_is_fetched(pages):
    """No page makes a request or logs an error: it works offline, as one file."""
    assert {n: page["report"]["console"] for n, page in pages.items() if page["report"]["console"]} == {}
    for page in pages.values():
        assert not re.search(r"<[a-z]+\s[^>]*src=|<link|<iframe|<object", markup(page["html"]))
        assert "default-src 'none'" in page["html"]


def test_graph_is_an_svg_with_every_box(pages):
    """The graph is drawn inline: one box per tensor and AccumulateGrad node of the Markdown's Mermaid graph."""
    for name, page in pages.items():
        mermaid = re.search(r"^```mermaid\n(.*?)^```$", page["md"], re.S | re.M).group(1)
        boxes = len(re.findall(r"^  (n|a)\d+[\[(]", mermaid, re.M))
        assert page["html"].count('<g class="box ') == boxes > 0, name
        assert "```mermaid" not in page["html"] and 'class="mermaid"' not in page["html"]


def test_language_and_title(pages):
    """The page's lang is the document's, its <title> and one h1 the spec's title as plain text."""
    assert re.search(r'<html lang="zh">', pages["01_scalar_mean_zh"]["html"])
    assert re.search(r'<html lang="en">', pages["01_scalar_mean"]["html"])
    report = pages["01_scalar_mean"]["report"]
    assert report["h1"] == [report["title"]] == ["Scalar output: out = mean(3(x + 2)²)"]


def test_spec_text_stays_text(pages):
    """A title and summary full of markup, script and math delimiters show literally: no element, no formula."""
    page, report = pages["hostile"]["html"], pages["hostile"]["report"]
    title = "</title><script>alert(1)</script> $x$ \\(y\\) </style> & <b>bold</b>"
    assert report["title"] == title and report["h1"] == [title]
    assert report["formulas"] == expected_formulas(pages["hostile"]["md"], "portable")  # the document's own only
    assert "<script" not in markup(page) and "<img" not in markup(page) and "<b>" not in markup(page)
    assert page.count("<script>") == 2  # KaTeX, and the loop that typesets the formulas
