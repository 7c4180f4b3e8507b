"""The gallery through each platform's own Markdown parser: every formula arrives whole, every table keeps its columns.

The parsers are the platforms' real ones: cmark-gfm (GitHub's C parser), Python-Markdown with
pymdownx.arithmatex (MkDocs), kramdown with its GFM input (Jekyll's default). What a formula should be is read
from the Markdown's own delimiters; what it became is read from the parser's HTML.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm
import markdown
import pytest
from cmarkgfm.cmark import Options

from generator.pipeline.build import build_specs

from .helpers import ROOT

GALLERY = sorted((ROOT / "derivations").glob("*.y*ml")) + sorted((ROOT / "derivations").glob("*.py"))
# Code blocks and spans, where no delimiter counts (github's $`…`$ needs none taken out: its backticks touch a $).
FENCES = re.compile(r"^(```[^\n]*)\n[\s\S]*?\n```$", re.M)  # each fence from its opening line, in turn
SPANS = re.compile(r"`` [^`]* ``|`[^`\n]+`")
# A flavor's formulas in the order they appear: display blocks and inline formulas, by their delimiters.
FORMULAS = {
    "portable": r"^\$\$\n(?P<d>[\s\S]*?)\n\$\$$|(?<![\\$])\$(?P<i>[^$\n]+?)\$",
    "mkdocs": r"^\$\$\n(?P<d>[\s\S]*?)\n\$\$$|(?<![\\$])\$(?P<i>[^$\n]+?)\$",
    "github": r"^```math\n(?P<d>[\s\S]*?)\n```$|\$`(?P<i>[^`\n]+?)`\$",
    "jekyll": r"^\$\$\n(?P<d>[\s\S]*?)\n\$\$$|(?<![\\$])\$\$(?P<i>[^$\n]+?)\$\$",
}
KRAMDOWN = """
require "json"
require "kramdown"
require "kramdown-parser-gfm"
# Jekyll 4's defaults for kramdown (jekyll/configuration.rb): GFM input, MathJax's math engine.
options = { input: "GFM", hard_wrap: false, auto_ids: true, math_engine: "mathjax", syntax_highlighter: nil }
puts JSON.generate(ARGV.map { |f| Kramdown::Document.new(File.read(f, encoding: "utf-8"), options).to_html })
"""


def formulas(text: str, flavor: str) -> list[str]:
    """Return the document's formulas as its own delimiters mark them, code taken out first."""
    body = text.split("\n---\n\n", 1)[1] if text.startswith("---\n") else text
    body = FENCES.sub(lambda m: m.group(0) if m.group(1) == "```math" else "", body)
    if flavor != "github":
        body = SPANS.sub("CODE", body)
    return [m.group("d") or m.group("i") for m in re.finditer(FORMULAS[flavor], body, re.M)]


class Tables(HTMLParser):
    """Collect each table's cells, row by row, and count the tables that sit inside a list item."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.items = 0  # list items open around the current position
        self.cell: list[str] | None = None
        self.tables_in_items = 0

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
            self.tables_in_items += self.items > 0
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "li":
            self.items += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self.cell))
            self.cell = None
        elif tag == "li":
            self.items -= 1

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables(page: str) -> Tables:
    """Return what a page's tables look like."""
    parser = Tables()
    parser.feed(page)
    return parser


def build(tmp: Path, flavor: str) -> dict[str, str]:
    """Build the gallery's Markdown in one flavor; return each document's text by name."""
    outcomes = build_specs(GALLERY, out=tmp, formats=("md",), flavor=flavor, jobs=2, force=True, cache=False)
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(tmp.glob("*.md"))}


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> dict[str, dict[str, str]]:
    """The whole gallery in each flavor these parsers read."""
    return {f: build(tmp_path_factory.mktemp(f), f) for f in FORMULAS}


def gfm(text: str) -> str:
    """Render Markdown as GitHub's parser does (its extensions: tables, strikethrough, autolinks, tasklists)."""
    return cmarkgfm.github_flavored_markdown_to_html(text, options=Options.CMARK_OPT_UNSAFE)


def arithmatex(text: str) -> str:
    """Render Markdown as MkDocs does with the README's extensions."""
    return markdown.markdown(text, extensions=["tables", "pymdownx.arithmatex", "pymdownx.superfences"],
                             extension_configs={"pymdownx.arithmatex": {"generic": True}})


def kramdown(files: list[Path]) -> list[str]:
    """Render Markdown files as Jekyll's kramdown does, in one Ruby process."""
    result = subprocess.run(["ruby", "-e", KRAMDOWN, *map(str, files)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def split_cells(page: str) -> list[list[str]]:
    """Return the table rows that a formula was cut across.

    GFM pads or cuts each row to its header's cell count, so a split row keeps its count: what shows it is a
    cell whose dollars do not pair up (a formula's start in one cell, its end in the next), or a row whose
    cells differ in number from its header's (Python-Markdown, kramdown).
    """
    return [row for rows in tables(page).tables for row in rows
            if len(row) != len(rows[0]) or any(cell.count("$") % 2 for cell in row)]


class TestGitHub:
    @pytest.mark.parametrize("flavor", ["github", "portable"])
    def test_tables_keep_their_columns(self, gallery, flavor):
        """cmark-gfm cuts no formula across table cells, on any gallery page."""
        split = {name: split_cells(gfm(text)) for name, text in gallery[flavor].items()}
        assert {k: v for k, v in split.items() if v} == {}
        assert sum(len(tables(gfm(t)).tables) for t in gallery[flavor].values()) >= len(gallery[flavor])  # read

    def test_every_formula_arrives_whole(self, gallery):
        """Each $`…`$ becomes $<code>…</code>$ and each ```math a <pre lang="math">, holding the formula as written."""
        for name, text in gallery["github"].items():
            page = gfm(text)
            found = [html.unescape(m.group(1) or m.group(2)) for m in re.finditer(
                r'<pre lang="math"><code>([\s\S]*?)\n</code></pre>|\$<code>([^<]*)</code>\$', page)]
            assert found == formulas(text, "github"), name


    def test_portable_formulas_arrive_whole(self, gallery):
        """The portable flavor's $…$ and $$ blocks reach MathJax on GitHub as written: no escape, emphasis or tag eaten."""
        lost = {}
        for name, text in gallery["portable"].items():
            shown = html.unescape(re.sub(r"<[^>]+>", "", gfm(text)))
            at, missing = 0, []
            for formula in formulas(text, "portable"):
                found = shown.find(formula, at)
                if found < 0:
                    missing.append(formula)
                else:
                    at = found + len(formula)
            if missing:
                lost[name] = missing[:3]
        assert lost == {}
        assert sum(len(formulas(t, "portable")) for t in gallery["portable"].values()) > 2000  # read them all


class TestMkDocs:
    @pytest.mark.parametrize("flavor", ["mkdocs", "portable"])
    def test_arithmatex_finds_exactly_the_formulas(self, gallery, flavor):
        """arithmatex makes one formula of each the document writes, in order, and none of its text."""
        wrong = {}
        for name, text in gallery[flavor].items():
            page = arithmatex(text)
            found = [html.unescape(m.group(1) or m.group(2)).strip() for m in re.finditer(
                r'<div class="arithmatex">\\\[\n?([\s\S]*?)\n?\\\]</div>|<span class="arithmatex">\\\(([\s\S]*?)\\\)</span>', page)]
            if found != [f.strip() for f in formulas(text, flavor)]:
                wrong[name] = (len(found), len(formulas(text, flavor)))
        assert wrong == {}

    def test_headings_hold_no_math(self, gallery):
        """No heading of a gallery page becomes a formula in the mkdocs flavor (titles, nav and <title> come from them)."""
        for name, text in gallery["mkdocs"].items():
            headings = re.findall(r"<h[1-6][^>]*>([\s\S]*?)</h[1-6]>", arithmatex(text))
            assert not [h for h in headings if "arithmatex" in h], name

    def test_tables_keep_their_columns(self, gallery):
        """Python-Markdown's tables keep every row's cells in the mkdocs flavor."""
        split = {name: split_cells(arithmatex(text)) for name, text in gallery["mkdocs"].items()}
        assert {k: v for k, v in split.items() if v} == {}


class TestJekyll:
    @pytest.fixture(scope="class")
    @classmethod
    def pages(cls, gallery, tmp_path_factory) -> dict[str, str]:
        """Every gallery page in the jekyll flavor, rendered by kramdown."""
        tmp = tmp_path_factory.mktemp("kramdown")
        files = []
        for name, text in gallery["jekyll"].items():
            files.append(tmp / f"{name}.md")
            files[-1].write_text(text, encoding="utf-8")
        return dict(zip(gallery["jekyll"], kramdown(files)))

    def test_every_formula_arrives_whole(self, gallery, pages):
        """kramdown hands MathJax each formula as written: \\(…\\) inline, \\[…\\] for a display block."""
        for name, text in gallery["jekyll"].items():
            found = [html.unescape(m.group(1) or m.group(2)).strip() for m in re.finditer(
                r"\\\[([\s\S]*?)\\\]|\\\(([\s\S]*?)\\\)", re.sub(r"<code[\s\S]*?</code>", "", pages[name]))]
            assert found == [f.strip() for f in formulas(text, "jekyll")], name

    def test_tables_keep_their_columns_and_lists_stay_lists(self, pages):
        """No table row is split and no list item becomes a table."""
        assert {n: split_cells(p) for n, p in pages.items() if split_cells(p)} == {}
        assert {n: tables(p).tables_in_items for n, p in pages.items() if tables(p).tables_in_items} == {}
