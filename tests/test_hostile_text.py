"""Spec text (title, summary) on a reader's page: never math, a template or markup; any space survives.

The pages are made as a site makes them: the built Markdown through a CommonMark parser
(markdown-it), then the page's math renderers scan the HTML as they do in a browser: KaTeX
auto-render and MathJax 3 (tests/js/delimiters_check.js), with their default delimiters plus $…$.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import unicodedata

import pytest
from markdown_it import MarkdownIt
from ruamel.yaml import YAML

from generator.pipeline.build import build_spec
from generator.spec.load import FLAVORS

from .helpers import ROOT, invoke, pdf_text

CHECK = ROOT / "tests" / "js" / "delimiters_check.js"
SPEC = """title: {title}
summary: {summary}
inputs:
  x:
    value: [1, 2]
    requires_grad: true
steps:
  y: (x * x).sum()
backward: y
"""
# Math a renderer would run, written without the macros the loader refuses: \bbox takes any CSS.
OVERLAY = r"\bbox[position:fixed;top:0;left:0;width:100%;height:100%;background:red]{click}"
PAYLOADS = {
    "inline": (rf"Gradients \({OVERLAY}\) explained", r"Also $x^2$ and $$\color{red}{y}$$ here."),
    "display": (r"Costs $5 \$ or $$\frac{1}{2}$$", rf"See \[ {OVERLAY} \] and \begin{{equation}} z \end{{equation}}."),
    "dollars": (r"a $b$ c $$d$$ e", r"\$x\$ then $\textstyle{}y$ and \(w\)"),
    "templates": (r"Liquid {% raise %} {{ site.x }} {%- if -%}", r"Hugo {{< shortcode >}} {{% md %}} {: #id} {::nomarkdown}"),
}


def quoted(text: str) -> str:
    """Return text as a YAML double-quoted scalar (JSON strings are that)."""
    return json.dumps(text, ensure_ascii=False)


def write_spec(tmp_path, title: str, summary: str = "", name: str = "hostile"):
    """Write a small valid spec with this title and summary; return its path."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.format(title=quoted(title), summary=quoted(summary)), encoding="utf-8")
    return path


def build_md(tmp_path, spec, **options) -> str:
    """Build one spec's Markdown with these options and return its text."""
    out = tmp_path / "-".join(f"{k}-{v}" for k, v in options.items())
    result = build_spec(spec, out=out, formats=("md",), **options)
    assert result.ok, result
    return (out / f"{spec.stem}.md").read_text(encoding="utf-8")


def page(body: str) -> str:
    """Return a whole HTML page around body."""
    return f"<!doctype html><html><head><meta charset='utf-8'></head><body>{body}</body></html>"


def scan_all(tmp_path, pages: dict) -> dict:
    """Let KaTeX auto-render and MathJax scan each page; return what each made, by key (delimiters_check.js)."""
    files = []
    for k, (key, html_page) in enumerate(pages.items()):
        files.append(tmp_path / f"page{k}.html")
        files[-1].write_text(html_page, encoding="utf-8")
    result = subprocess.run(["node", str(CHECK), *map(str, files)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return dict(zip(pages, json.loads(result.stdout)))


def scan(tmp_path, html_page: str) -> dict:
    """Let KaTeX auto-render and MathJax scan one page; return what each made."""
    return scan_all(tmp_path, {"page": html_page})["page"]


def front_title(markdown: str) -> str:
    """Return the title of a document's YAML front matter."""
    return YAML(typ="safe", pure=True).load(markdown.split("\n---\n", 1)[0].removeprefix("---\n"))["title"]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> dict:
    """Each payload built in each flavor: the body's page, and a theme's <h1> of its front matter's title, scanned."""
    tmp = tmp_path_factory.mktemp("scanned")
    pages = {}
    for payload, (title, summary) in PAYLOADS.items():
        spec = write_spec(tmp, title, summary, name=payload)
        for flavor in FLAVORS:
            pages[payload, flavor, "body"] = page(body(build_md(tmp, spec, flavor=flavor)))
            markdown = build_md(tmp, spec, flavor=flavor, front_matter=True)  # its body has no H1: the theme's
            if markdown.startswith("---\n"):
                pages[payload, flavor, "front"] = page(f"<h1>{html.escape(front_title(markdown))}</h1>")
    return scan_all(tmp, pages)


def shown(text: str) -> str:
    """Return text as a reader sees it: runs of ASCII white space as one space."""
    return re.sub(r"[ \t\n\r]+", " ", text).strip(" ")


def body(markdown: str) -> str:
    """Return Markdown without its front matter, as CommonMark HTML (raw HTML allowed, as most sites do)."""
    markdown = markdown.split("\n---\n\n", 1)[1] if markdown.startswith("---\n") else markdown
    return MarkdownIt("commonmark").enable("table").render(markdown)


class TestMathRenderers:
    @pytest.mark.parametrize("flavor", FLAVORS)
    @pytest.mark.parametrize("payload", sorted(PAYLOADS))
    def test_spec_text_is_never_typeset(self, scanned, flavor, payload):
        """KaTeX and MathJax make no formula, link or style from a title or summary, which show literally."""
        title, summary = PAYLOADS[payload]
        made = scanned[payload, flavor, "body"]
        for renderer in ("katex", "mathjax"):
            assert made[renderer]["spec"] == 0, (renderer, made[renderer])
            assert made[renderer]["links"] == made[renderer]["styles"] == []
            assert made[renderer]["text"] == [shown(title), shown(summary)]

    @pytest.mark.parametrize("flavor", ["portable", "mkdocs", "jekyll"])
    def test_the_page_math_still_renders(self, scanned, flavor):
        """The same scan typesets the document's own formulas, so its zero for spec text means something."""
        made = scanned["inline", flavor, "body"]
        assert made["katex"]["page"] > 20 and made["mathjax"]["page"] > 20

    def test_the_scan_sees_live_math(self, tmp_path):
        """Raw delimiters in a heading become formulas with the overlay's style: the harness can fail."""
        made = scan(tmp_path, page(f"<h1>a \\({OVERLAY}\\) b</h1><p>$x$ and \\(\\href{{javascript:alert(1)}}{{y}}\\)</p>"))
        assert made["katex"]["spec"] == 3 and made["mathjax"]["spec"] == 3
        assert made["mathjax"]["styles"] and "javascript:alert(1)" in made["mathjax"]["links"]

    @pytest.mark.parametrize("payload", sorted(PAYLOADS))
    def test_no_dollar_touches_a_backtick(self, tmp_path, payload):
        """GitHub's inline math opens with $` and closes with `$: spec text's Markdown holds neither."""
        title, summary = PAYLOADS[payload]
        head = build_md(tmp_path, write_spec(tmp_path, title, summary), flavor="github").split("\n\n", 2)[:2]
        assert not any("$`" in line or "`$" in line for line in head), head

    @pytest.mark.parametrize("flavor", ["hugo", "jekyll"])
    @pytest.mark.parametrize("payload", sorted(PAYLOADS))
    def test_front_matter_title_is_never_typeset(self, scanned, flavor, payload):
        """A theme's <h1>{{ title }}</h1> of the front matter makes no formula; it reads as the title (NFKC)."""
        title, _ = PAYLOADS[payload]
        made = scanned[payload, flavor, "front"]
        for renderer in ("katex", "mathjax"):
            assert made[renderer]["page"] == 0, (renderer, made[renderer])
        assert unicodedata.normalize("NFKC", made["katex"]["text"][0]) == unicodedata.normalize("NFKC", shown(title))


class TestActiveMacros:
    @pytest.mark.parametrize("macro", [
        r"\href{javascript:alert(1)}{click}", r"\style{position:fixed}{x}", r"\class{x}{y}", r"\cssId{x}{y}",
        r"\unicode{x41}", r"\require{html}", r"\htmlStyle{color:red}{x}", r"\url{javascript:x}",
        r"\includegraphics{x.png}", r"\href {javascript:alert(1)}{click}",
    ])
    def test_refused_with_a_located_line(self, tmp_path, macro):
        """Macros that make links, styles, classes, ids or HTML are refused in the summary, at its line."""
        spec = write_spec(tmp_path, "fine", f"Gradients \\({macro}\\) explained")
        result = invoke("build", str(spec), "--out", str(tmp_path / "out"))
        name = re.match(r"\\[A-Za-z]+", macro).group()
        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            f"{spec}:2: summary: TeX macro {name} in text (allowed: plain text; no macro that makes links,"
            " styles, classes, ids or HTML, or loads code)",
            "0 built, 1 failed",
        ]

    def test_issue_title_refused(self, tmp_path):
        """The issue's title is refused at line 1, naming \\href."""
        spec = write_spec(tmp_path, r"Gradients \(\href{javascript:alert(1)}{click}\) explained")
        result = invoke("check", str(spec))
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0].startswith(f"{spec}:1: title: TeX macro \\href in text (allowed: ")

    def test_harmless_backslashes_build(self, tmp_path):
        """Backslashes that make no link or style (\\$, \\alpha, \\hrefs, a lone one) still build."""
        spec = write_spec(tmp_path, r"Costs \$5, \alpha, \hrefs and \ alone")
        assert invoke("build", str(spec), "--out", str(tmp_path / "out")).exit_code == 0


class TestTemplateEngines:
    @pytest.mark.parametrize("flavor", FLAVORS)
    def test_no_liquid_or_shortcode_sequence(self, tmp_path, flavor):
        """Liquid ({{, {%) and Hugo ({{<, {{%) see no tag in the document, front matter aside."""
        title, summary = PAYLOADS["templates"]
        markdown = build_md(tmp_path, write_spec(tmp_path, title, summary), flavor=flavor, front_matter=True)
        text = markdown.split("\n---\n\n", 1)[1] if markdown.startswith("---\n") else markdown
        assert not re.search(r"\{\s*[{%]", text)
        assert "{:" not in text  # kramdown's attribute lists and extensions

    def test_front_matter_is_data(self, tmp_path):
        """The front matter holds the braces as YAML text: Jekyll and Hugo do not render it as a template."""
        title, _ = PAYLOADS["templates"]
        markdown = build_md(tmp_path, write_spec(tmp_path, title), flavor="jekyll", front_matter=True)
        front = YAML(typ="safe", pure=True).load(markdown.split("\n---\n", 1)[0].removeprefix("---\n"))
        assert front == {"title": title, "math": True}


SPACED = "a\u00a0b\u2009c\u3000d\u202fe"


class TestSpaces:
    def test_wide_and_thin_spaces_survive_markdown_and_json(self, tmp_path):
        """No-break, thin, ideographic and narrow no-break spaces reach the Markdown, its HTML and the JSON."""
        spec = write_spec(tmp_path, f"Title {SPACED}", f"Summary {SPACED}")
        out = tmp_path / "out"
        assert build_spec(spec, out=out, formats=("md", "json")).ok
        markdown = (out / "hostile.md").read_text(encoding="utf-8")
        assert markdown.startswith(f"# Title {SPACED}\n\nSummary {SPACED}\n")
        assert re.findall(r"<h1>(.*?)</h1>", body(markdown)) == [f"Title {SPACED}"]
        assert json.loads((out / "hostile.json").read_text(encoding="utf-8"))["title"] == f"Title {SPACED}"

    def test_front_matter_keeps_them(self, tmp_path):
        """The YAML front matter's title loads back with the same spaces."""
        markdown = build_md(tmp_path, write_spec(tmp_path, f"Title {SPACED}"), flavor="hugo", front_matter=True)
        front = YAML(typ="safe", pure=True).load(markdown.split("\n---\n", 1)[0].removeprefix("---\n"))
        assert front["title"] == f"Title {SPACED}"

    @pytest.mark.parametrize("lang", ["en", "zh"])
    def test_pdf_builds_and_shows_the_words(self, tmp_path, lang):
        """pdflatex (en) and xelatex (zh) set every space as spacing, never as a missing-glyph mark."""
        words = "甲乙丙丁戊" if lang == "zh" else "Alpha Beta Gamma Delta Eps".split()
        text = "\u00a0".join(words[:2]) + "\u2009" + words[2] + "\u3000" + words[3] + "\u202f" + words[4]
        spec = write_spec(tmp_path, f"T {text}", f"S {text}")
        out = tmp_path / "out"
        result = build_spec(spec, out=out, formats=("tex", "pdf"), lang=lang)
        assert result.ok, result
        seen = pdf_text(out / "hostile.pdf")
        assert "U+" not in (out / "hostile.tex").read_text(encoding="utf-8") and "U+" not in seen
        assert all(seen.count(word) >= 2 for word in words), seen[:400]  # in the title and in the summary

    @pytest.mark.parametrize("char", ["\u0007", "\u202e", "\u202a", "\u2066", "\u2069", "\u2028", "\u200b", "\ufeff"])
    def test_control_and_bidi_still_refused(self, tmp_path, char):
        """Control, bidi override and isolate, line separator and zero-width characters are refused, located."""
        spec = tmp_path / "odd.yaml"
        spec.write_text(SPEC.format(title=json.dumps(f"a{char}b"), summary='""'), encoding="utf-8")
        result = invoke("check", str(spec))
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == (
            f"{spec}:1: title: invalid character U+{ord(char):04X} (allowed: printable characters,"
            " spaces (also no-break, thin, ideographic), tabs and newlines)"
        )
