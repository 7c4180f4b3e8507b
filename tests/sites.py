"""Shared by the site tests: build the gallery, serve a built site, read it in Chromium, count what to expect.

The expected counts come from the Markdown's own delimiters; what a reader sees comes from the platform's own
parser or generator and a real browser (tests/js/site_check.js). Renderers are vendored from node_modules.
"""

from __future__ import annotations

import contextlib
import functools
import html
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from .helpers import ROOT

NODE_MODULES = ROOT / "node_modules"
SITE_CHECK = ROOT / "tests" / "js" / "site_check.js"
# What each renderer needs on a page, copied from node_modules (never a CDN: the tests have no network).
VENDOR = {
    "katex": NODE_MODULES / "katex" / "dist",  # katex.min.js, katex.min.css, contrib/auto-render.min.js, fonts/
    "mathjax": NODE_MODULES / "mathjax-full" / "es5",  # tex-svg-full.js, tex-chtml.js (+ output/chtml/fonts), ...
    "mermaid": NODE_MODULES / "mermaid" / "dist" / "mermaid.min.js",
}


def build_gallery(out: Path, flavor: str, *, front_matter: bool = False, jobs: int = 2) -> list[Path]:
    """Build every gallery spec's Markdown in one flavor with the command line; return the .md files."""
    cmd = [sys.executable, "-m", "generator", "build", str(ROOT / "derivations"), "--out", str(out),
           "--format", "md", "--flavor", flavor, "--force", "-j", str(jobs)]
    if front_matter:
        cmd.append("--front-matter")
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    files = sorted(out.glob("*.md"))
    assert files, f"no Markdown in {out}"
    return files


def vendor(static: Path, *names: str) -> None:
    """Copy the named renderers (katex, mathjax, mermaid) from node_modules into static/NAME/."""
    for name in names:
        source = VENDOR[name]
        assert source.exists(), f"{source} is missing: make test installs node_modules (npm ci)"
        if source.is_dir():
            shutil.copytree(source, static / name, dirs_exist_ok=True)
        else:
            (static / name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, static / name / source.name)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    """A static file handler that does not log each request."""

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(root: Path):
    """Serve a folder on 127.0.0.1 at a free port from a thread; yield its base URL (ending in /)."""
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def check(pages: list[dict], *, timeout: int = 600) -> list[dict]:
    """Open the pages ({"name", "url"[, "root"]}) in one headless Chromium; return site_check.js's reports."""
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "pages.json"
        listing.write_text(json.dumps(pages), encoding="utf-8")
        result = subprocess.run(["node", str(SITE_CHECK), str(listing)], capture_output=True, text=True,
                                cwd=ROOT, timeout=timeout)
    assert result.returncode == 0, f"site_check.js failed: {result.stderr[-3000:]}"
    reports = json.loads(result.stdout)
    assert [r["name"] for r in reports] == [p["name"] for p in pages]
    return reports


FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
FENCE = re.compile(r"^(`{3,}|~{3,})([^\n]*)\n.*?^\1[ \t]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
DISPLAY = {  # a display formula: its delimiters on their own lines
    "dollars": re.compile(r"^\$\$\n.*?\n\$\$$", re.S | re.M),
    "brackets": re.compile(r"^\\\[\n.*?\n\\\]$", re.S | re.M),
}
INLINE = {
    "dollar": re.compile(r"(?<![\\$])\$(?!\$)[^$\n]+?(?<!\\)\$"),
    "dollars": re.compile(r"(?<![\\$])\$\$[^$\n]+?\$\$"),
    "parens": re.compile(r"\\\(.+?\\\)"),
}
SYNTAX = {  # flavor -> (display, inline), as generator/render/flavor.py writes them; github is counted apart
    "portable": ("dollars", "dollar"),
    "mkdocs": ("dollars", "dollar"),
    "jekyll": ("dollars", "dollars"),
    "hugo": ("brackets", "parens"),
}
GITHUB_INLINE = re.compile(r"\$(`+)(?!`).+?(?<!`)\1\$", re.S)  # $`…`$


def body(markdown: str) -> str:
    """Return the document without its front matter."""
    return FRONT_MATTER.sub("", markdown, count=1)


def expected_formulas(markdown: str, flavor: str) -> int:
    """Count the formulas a built document holds, from its flavor's own delimiters (code is not math).

    GitHub's ```math fence and $`…`$ code span are formulas; every other fence and code span is code.
    """
    text = body(markdown)
    if flavor == "github":
        fences = sum(1 for m in FENCE.finditer(text) if m.group(2).strip() == "math")
        return fences + len(GITHUB_INLINE.findall(FENCE.sub("", text)))
    display, inline = (DISPLAY[s] if k == 0 else INLINE[s] for k, s in enumerate(SYNTAX[flavor]))
    text = FENCE.sub("", text)
    count = len(display.findall(text))
    return count + len(inline.findall(CODE_SPAN.sub("", display.sub("", text))))


def expected_mermaid(markdown: str) -> int:
    """Count the document's ```mermaid fences."""
    return len(re.findall(r"^```mermaid$", body(markdown), flags=re.M))


def expected_tables(markdown: str) -> list[int]:
    """Return the column count of each pipe table, read from its delimiter row (|---|---|, which holds no math)."""
    lines = FENCE.sub("", body(markdown)).splitlines()
    delimiter = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
    return [line.strip().strip("|").count("|") + 1 for k, line in enumerate(lines)
            if k and "|" in line and delimiter.match(line) and lines[k - 1].strip()]


def title(markdown: str) -> str:
    """Return the document's title: its first H1's Markdown, else the front matter's title."""
    found = re.search(r"^# (.+)$", FENCE.sub("", body(markdown)), flags=re.M)
    if found:
        return found.group(1).strip()
    front = re.search(r'^title: (".*")$', markdown[:2000], flags=re.M)
    return json.loads(front.group(1)) if front else ""


def plain_title(markdown: str) -> str:
    """Return the document's title as a reader should see it: its H1 through CommonMark (cmark-gfm), as text."""
    import cmarkgfm

    rendered = cmarkgfm.github_flavored_markdown_to_html(f"# {title(markdown)}\n")
    return html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip()


def table_faults(report: dict, markdown: str) -> list[str]:
    """Say where a page's tables differ from the document's: a table missing, or a row whose cells != columns."""
    want = expected_tables(markdown)
    got = report["tables"]
    if len(got) != len(want):
        return [f"{len(got)} tables, the document has {len(want)}"]
    return [f"table {t}, row {r}: {cells} cells, not {columns}"
            for t, (rows, columns) in enumerate(zip(got, want)) for r, cells in enumerate(rows) if cells != columns]


def problems(report: dict, markdown: str, flavor: str, *, h1: int = 1) -> list[str]:
    """Return everything wrong with one page's report against its document (empty when all is well)."""
    out = []
    formulas = expected_formulas(markdown, flavor)
    if report["formulas"] != formulas:
        out.append(f"{report['formulas']} formulas rendered, {formulas} expected")
    out += [f"math error: {e}" for e in report["errors"][:3]]
    out += [f"math left as text: {t!r}" for t in report["leftover"][:3]]
    out += table_faults(report, markdown)[:3]
    mermaid = expected_mermaid(markdown)
    if report["mermaid"] != mermaid or report["mermaid_errors"]:
        out.append(f"{report['mermaid']} Mermaid graphs drawn of {mermaid}, errors {report['mermaid_errors'][:1]}")
    if len(report["h1"]) != h1:
        out.append(f"h1 {report['h1']}, {h1} expected")
    out += [f"console: {line}" for line in report["console"][:3]]
    return out
