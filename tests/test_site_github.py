"""The gallery as GitHub shows it: GitHub's parser (cmark-gfm), then its MathJax and Mermaid, in Chromium.

github.com's page pipeline cannot run offline; its parser can. Each document is parsed by cmarkgfm with
GitHub's extensions, and tests/js/github_page.js does what github.com does with the result in the browser
(see its header): the counts below come from that page, read by tests/js/site_check.js.
"""

from __future__ import annotations

import html
import shutil

import cmarkgfm
import pytest

from .helpers import ROOT
from .sites import (build_gallery, check, expected_formulas, expected_mermaid, expected_tables, plain_title, serve,
                    table_faults, vendor)

FLAVORS = ("github", "portable")
GLUE = ROOT / "tests" / "js" / "github_page.js"
# A page that must fail every check: a formula KaTeX and MathJax reject, a | splitting a table's math,
# a Mermaid graph that does not parse, a second h1.
BROKEN = """# broken

$`\\frac{1}{`$ and $`\\undefinedmacro`$

| a | b |
|---|---|
| $`\\left|x\\right|`$ | 1 |

```mermaid
flowchart LR
  a -->
```

# again
"""


def page(markdown: str, title: str) -> str:
    """Return the HTML page github.com would show for a Markdown file (its parser's output + the glue)."""
    body = cmarkgfm.github_flavored_markdown_to_html(markdown)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<script src="/github_page.js"></script>
<script defer src="/vendor/mathjax/tex-svg-full.js"></script>
<script defer src="/vendor/mermaid/mermaid.min.js"></script>
</head><body><article class="markdown-body">
{body}
</article></body></html>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    """Build the gallery in both flavors, render each file as GitHub would, read every page in one browser."""
    root = tmp_path_factory.mktemp("github")
    site = root / "site"
    vendor(site / "vendor", "mathjax", "mermaid")
    shutil.copy2(GLUE, site / "github_page.js")
    docs = {}
    for flavor in FLAVORS:
        (site / flavor).mkdir()
        for md in build_gallery(root / flavor, flavor):
            text = md.read_text()
            (site / flavor / f"{md.stem}.html").write_text(page(text, md.name))
            docs[f"{flavor}/{md.stem}"] = (flavor, text)
    (site / "broken.html").write_text(page(BROKEN, "broken.md"))
    with serve(site) as url:
        pages = [{"name": name, "url": f"{url}{name}.html", "root": ".markdown-body"} for name in [*docs, "broken"]]
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
    """Each page shows as many typeset formulas as its Markdown holds, none of them an error."""
    wrong = [f"{name}: {r['formulas']} rendered, {expected_formulas(text, flavor)} expected"
             for name, text, r in pages(site, flavor) if r["formulas"] != expected_formulas(text, flavor)]
    errors = [f"{name}: {e}" for name, _, r in pages(site, flavor) for e in r["errors"]]
    assert not wrong and not errors, "\n".join(wrong[:20] + errors[:20])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_no_math_left_as_text(site, flavor):
    """No page shows a math delimiter as text outside code."""
    left = [f"{name}: {text!r}" for name, _, r in pages(site, flavor) for text in r["leftover"]]
    assert not left, "\n".join(left[:30])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_tables_keep_their_columns(site, flavor):
    """Every table row has as many cells as the document's table has columns."""
    faults = [f"{name}: {fault}" for name, text, r in pages(site, flavor) for fault in table_faults(r, text)]
    assert not faults, "\n".join(faults[:30])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_graph_draws(site, flavor):
    """Every ```mermaid fence becomes an SVG, with no Mermaid error."""
    wrong = [f"{name}: {r['mermaid']} drawn of {expected_mermaid(text)}, {r['mermaid_errors']}"
             for name, text, r in pages(site, flavor) if r["mermaid"] != expected_mermaid(text) or r["mermaid_errors"]]
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_title_once(site, flavor):
    """Each page has one h1, its document's title as plain text."""
    wrong = [f"{name}: {r['h1']}, not {plain_title(text)!r}" for name, text, r in pages(site, flavor)
             if r["h1"] != [plain_title(text)]]
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_no_console_errors(site, flavor):
    """No page logs an error, fails a request or reaches for the network."""
    logged = [f"{name}: {line}" for name, _, r in pages(site, flavor) for line in r["console"]]
    assert not logged, "\n".join(logged[:20])


def test_broken_page_is_caught(site):
    """A bad formula, a split table, a bad graph and a second h1 are all reported, so passes mean something."""
    r = site["reports"]["broken"]
    assert r["errors"] and r["formulas"] < expected_formulas(BROKEN, "github")
    assert r["leftover"]
    assert r["mermaid_errors"] or r["mermaid"] == 0
    assert len(r["h1"]) == 2


def test_expected_counts_read_each_flavors_delimiters():
    """The oracle counts formulas by each flavor's delimiters, not in code, and tables by their delimiter rows."""
    portable = "# t\n\n$a$ and `$b$` and $$c$$? no\n\n$$\nd\n$$\n\n```python\n$e$\n```\n\n| x | y |\n|---|:-:|\n| $f$ | 1 |\n"
    assert expected_formulas(portable, "portable") == 3
    assert expected_formulas(portable, "mkdocs") == 3
    github = "$`a`$ and `b` and $c$\n\n```math\nd\n```\n\n```mermaid\nflowchart LR\n```\n"
    assert expected_formulas(github, "github") == 2
    assert expected_mermaid(github) == 1
    assert expected_formulas("---\ntitle: \"$x$\"\n---\n\n\\(a\\) \\[b\\]\n\n\\[\nc\n\\]\n", "hugo") == 2
    assert expected_formulas("$$a$$ and $b$\n\n$$\nc\n$$\n", "jekyll") == 2
    assert expected_tables(portable) == [2]
