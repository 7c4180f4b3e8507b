"""The standalone page: the Markdown document as one HTML file that works offline.

The page is the portable Markdown document (the same template, so the same things in the same order) parsed
with markdown-it, raw HTML off. Formulas become elements that the inlined KaTeX typesets when the page opens;
the graph is an SVG drawn here from the document's picture. Nothing is fetched: a Content-Security-Policy
forbids every request, KaTeX's fonts are data: URLs.
"""

from __future__ import annotations

import base64
import html
import re
import unicodedata
from dataclasses import replace
from functools import lru_cache

from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from ..document.model import Document, Picture
from ..engines.exact import Derivation
from ..resources import HERE
from .base import Finished
from .markdown import Markdown, box_lines, environment
from .messages import Messages, plain

KATEX = HERE / "render" / "katex"
FONT = re.compile(r'src:url\(fonts/([\w-]+)\.woff2\) format\("woff2"\)[^;}]*')

# The graph's drawing, in px: boxes of monospace text (so widths can be measured here), rows of boxes.
CHAR, WIDE, LINE, PAD, GAP_X, GAP_Y, MAX_ROW = 7.3, 13.0, 17, 8, 28, 56, 1100
BACK = "#c0392b"


@lru_cache(maxsize=None)
def katex_assets() -> tuple[str, str]:
    """Return KaTeX's script and its stylesheet with every font inlined as a woff2 data: URL."""
    def font(m: re.Match) -> str:
        data = base64.b64encode((KATEX / "fonts" / f"{m.group(1)}.woff2").read_bytes()).decode("ascii")
        return f'src:url(data:font/woff2;base64,{data}) format("woff2")'

    return (KATEX / "katex.min.js").read_text(encoding="utf-8"), FONT.sub(font, (KATEX / "katex.min.css").read_text(encoding="utf-8"))


def text_width(text: str) -> float:
    """Return the width of a line of monospace text: wide (CJK) characters take two columns' room."""
    return sum(WIDE if unicodedata.east_asian_width(c) in "WF" else CHAR for c in text)


def graph_svg(picture: Picture, t: Messages) -> str:
    """Return the computation graph as an SVG: rows of boxes, data flowing down, gradients' arrows in red.

    Rows come from the picture (as in the PDF); a leaf that requires grad has its AccumulateGrad box beside
    it. A row wider than MAX_ROW wraps onto more lines.
    """
    nodes = {n.name: n for n in picture.nodes}
    boxes: dict[str, list[str]] = {n.name: box_lines(picture, n, t) for n in picture.nodes}
    boxes = {k: [f"{v[0]} · {v[1]}", *v[2:]] for k, v in boxes.items()}
    accumulate = {n.name: f"acc:{n.name}" for n in picture.nodes if n.is_leaf and n.requires_grad}
    for leaf, acc in accumulate.items():
        boxes[acc] = ["AccumulateGrad"]
    size = {k: (max(map(text_width, v)) + 2 * PAD, len(v) * LINE + PAD) for k, v in boxes.items()}
    lines: list[list[str]] = []
    for row in picture.rows():
        line: list[str] = []
        for name in [x for name in row for x in (name, accumulate.get(name)) if x]:
            if line and sum(size[x][0] + GAP_X for x in line) + size[name][0] > MAX_ROW and not name.startswith("acc:"):
                lines.append(line)
                line = []
            line.append(name)
        lines.append(line)
    widths = [sum(size[x][0] for x in line) + GAP_X * (len(line) - 1) for line in lines]
    width = max(widths, default=0) + 2 * PAD
    place: dict[str, tuple[float, float]] = {}
    y = PAD + LINE  # room above for a leaf's .grad label
    for line, w in zip(lines, widths):
        x = (width - w) / 2
        for name in line:
            place[name] = (x, y)
            x += size[name][0] + GAP_X
        y += max(size[x][1] for x in line) + GAP_Y
    height = y - GAP_Y + PAD
    out = [f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{html.escape(plain(t("h_graph")))}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="context-stroke"/></marker></defs>']
    for e in picture.edges:
        (sx, sy), (tx, ty) = place[e.source], place[e.target]
        x1, y1 = sx + size[e.source][0] / 2, sy + size[e.source][1]
        x2, y2 = tx + size[e.target][0] / 2, ty
        colour = BACK if e.backward else "#555"
        out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
                   f'stroke-width="1.3" marker-end="url(#arrow)"/>')
        if e.backward:
            out.append(f'<text x="{(x1 + x2) / 2 + 4:.1f}" y="{(y1 + y2) / 2:.1f}" class="back">'
                       f'{html.escape(plain(t("picture_back")))}</text>')
    for leaf, acc in accumulate.items():
        (lx, ly), (ax, ay) = place[leaf], place[acc]
        x1, x2, mid = lx + size[leaf][0], ax, ly + size[acc][1] / 2
        out.append(f'<line x1="{x1:.1f}" y1="{mid:.1f}" x2="{x2:.1f}" y2="{mid:.1f}" stroke="{BACK}" '
                   f'stroke-dasharray="4 3" stroke-width="1.3" marker-end="url(#arrow)"/>')
        label = plain(t("picture_leaf_grad", name=nodes[leaf].grad_of))
        out.append(f'<text x="{x1 + 2:.1f}" y="{ly - 4:.1f}" class="back">{html.escape(label)}</text>')
    for name, text in boxes.items():
        x, y = place[name]
        w, h = size[name]
        kind = "acc" if name.startswith("acc:") else "leaf" if nodes[name].is_leaf else "op"
        out.append(f'<g class="box {kind}"><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="5"/>')
        for k, row in enumerate(text):
            bold = ' class="name"' if k == 0 and kind != "acc" else ""
            out.append(f'<text x="{x + PAD:.1f}" y="{y + PAD / 2 + LINE * (k + 0.75):.1f}"{bold}>{html.escape(row)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def parser(picture: Picture, t: Messages) -> MarkdownIt:
    """Return a CommonMark parser with tables and $ math, raw HTML off, and the graph's fence drawn as SVG."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table").use(dollarmath_plugin, double_inline=True)

    def math(display: bool):
        start, end = ('<div class="math display">', "</div>\n") if display else ('<span class="math">', "</span>")
        return lambda self, tokens, idx, options, env: f"{start}{html.escape(tokens[idx].content.strip())}{end}"

    fence = md.renderer.rules["fence"]

    def graph(self, tokens, idx, options, env):
        if tokens[idx].info.strip() == "mermaid":
            return f'<figure class="graph">{graph_svg(picture, t)}</figure>\n'
        return fence(tokens, idx, options, env)

    md.add_render_rule("math_inline", math(False))
    md.add_render_rule("math_inline_double", math(True))
    md.add_render_rule("math_block", math(True))
    md.add_render_rule("fence", graph)
    return md


class Html(Finished):
    """One self-contained page: the portable document in HTML, KaTeX inlined, the graph as SVG."""

    ext = "html"

    def render(self, *, document: Document, derivation: Derivation) -> bytes:
        portable = replace(document, flavor="portable", front_matter=False)
        markdown = Markdown().render(document=portable, derivation=derivation).decode("utf-8")
        t = Messages(document.lang)
        body = parser(document.picture, t).render(markdown)
        script, style = katex_assets()
        page = environment().get_template("page.html.j2").render(
            lang=document.lang, title=document.title, body=body, katex_js=script, katex_css=style)
        return page.encode("utf-8")
