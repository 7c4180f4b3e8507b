"""A page of built Markdown, rendered as a reader's site would, in a real headless browser."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from generator.pipeline.build import build_spec

from .helpers import ROOT

PAGE = ROOT / "tests" / "js" / "page.html"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--allow-file-access-from-files", "--virtual-time-budget=20000", "--dump-dom",
]


def chromium() -> str:
    """Return the browser make test installs (Debian's chromium)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is missing: make test installs it (apt-get install chromium)"
    return path


def page(markdown: str) -> str:
    """Turn Markdown into the test page: math left as TeX for KaTeX, mermaid fences as code."""
    md = MarkdownIt("commonmark").enable("table").use(dollarmath_plugin, double_inline=True)
    md.add_render_rule("math_block", lambda self, tokens, idx, options, env: f'<div class="math block">{html.escape(tokens[idx].content)}</div>\n')
    md.add_render_rule("math_inline", lambda self, tokens, idx, options, env: f'<span class="math inline">{html.escape(tokens[idx].content)}</span>')
    body = md.render(markdown)
    return PAGE.read_text().replace("{{ROOT}}", ROOT.as_uri()).replace("{{BODY}}", body)


def render(markdown: str) -> dict:
    """Open the page in headless Chromium and return what it reports after rendering."""
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "page.html"
        file.write_text(page(markdown))
        profile = Path(tmp) / "profile"
        result = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", file.as_uri()],
                                capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="result">(.*?)</pre>', result.stdout, re.S)
    assert found and found.group(1), f"the page did not finish rendering: {result.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def seed_page(tmp_path_factory) -> dict:
    """Render the first seed example's Markdown in the browser once."""
    out = tmp_path_factory.mktemp("md")
    assert build_spec(ROOT / "derivations" / "01_scalar_mean.yaml", out=out, formats=("md",)).ok
    return render((out / "01_scalar_mean.md").read_text())


def test_math_renders_without_errors(seed_page):
    """Every formula becomes KaTeX output and none is a KaTeX error element."""
    assert seed_page["katexErrors"] == []
    assert seed_page["katex"] > 20


def test_graph_draws(seed_page):
    """The Mermaid graph becomes an SVG."""
    assert seed_page["mermaidError"] == ""
    assert seed_page["mermaid"] >= 1
    assert seed_page["mermaidSvgs"] == seed_page["mermaid"]


def test_broken_page_is_caught():
    """The harness sees a KaTeX error and a Mermaid failure, so its passes mean something."""
    report = render("$$\n\\frac{1}{\n$$\n\n```mermaid\nflowchart LR\n  a -->\n```\n")
    assert report["katexErrors"]
    assert report["mermaidError"] or report["mermaidSvgs"] == 0
