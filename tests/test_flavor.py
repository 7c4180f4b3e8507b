"""Markdown flavors: only the math delimiters change (and optional front matter), chosen by spec or option."""

from __future__ import annotations

import re

import pytest
from ruamel.yaml import YAML

from generator.pipeline.build import build_spec
from generator.render.flavor import flavor, inert
from generator.spec.load import FLAVORS
from generator.spec.schema import spec_schema

from .helpers import invoke, ROOT

SEED = ROOT / "derivations" / "01_scalar_mean.yaml"
SPEC = """title: 'Costs $5 \\$ (or [more]) `x` "quoted" \\ back'
summary: 'A $literal$ dollar, (parentheses) and [brackets].'
inputs:
  x:
    value: [1, 2]
    requires_grad: true
steps:
  y: (x * x).sum()
backward: y
"""
# Each flavor's math, as tests/js/katex_check.js finds it: display blocks, then inline formulas.
MATH = {
    "portable": (r"^\$\$\n[\s\S]*?\n\$\$$", r"(?<![\\$])\$[^$\n]+?\$"),
    "mkdocs": (r"^\$\$\n[\s\S]*?\n\$\$$", r"(?<![\\$])\$[^$\n]+?\$"),
    "github": (r"^```math\n[\s\S]*?\n```$", r"\$`[^`\n]+?`\$"),
    "hugo": (r"^\\\[\n[\s\S]*?\n\\\]$", r"\\\([^\n]+?\\\)"),
    "jekyll": (r"^\$\$\n[\s\S]*?\n\$\$$", r"(?<![\\$])\$\$[^$\n]+?\$\$"),
}


def build(tmp_path, spec=SEED, **options) -> str:
    """Build one spec's Markdown with these options and return its text."""
    out = tmp_path / "-".join(f"{k}-{v}" for k, v in options.items())
    assert build_spec(spec, out=out, formats=("md",), **options).ok
    return (out / f"{spec.stem}.md").read_text(encoding="utf-8")


def without_math(text: str, name: str) -> str:
    """Return text with every formula of flavor name replaced by a mark, and spec-text entities undone."""
    display, inline = MATH[name]
    text = re.sub(inline, "MATH", re.sub(display, "MATH", text, flags=re.M))
    for c in flavor(name).entities:
        text = text.replace(f"&#{ord(c)};", "\\" + c)
    return text


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> dict[str, str]:
    """The seed spec's Markdown in every flavor."""
    tmp = tmp_path_factory.mktemp("flavors")
    return {name: build(tmp, flavor=name) for name in FLAVORS}


@pytest.fixture
def odd_spec(tmp_path):
    """A spec whose title and summary hold dollars, backslashes, brackets, parentheses and backticks."""
    path = tmp_path / "odd.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


class TestWhatChanges:
    def test_portable_is_the_committed_output(self, texts):
        """--flavor portable writes exactly the committed output/ document."""
        committed = (ROOT / "output" / f"{SEED.stem}.md").read_text(encoding="utf-8")
        assert texts["portable"] == committed

    def test_portable_is_mkdocs_with_inert_math(self, texts):
        """portable writes mkdocs's document with each formula made inert for parsers that read inside $…$."""
        display, inline = MATH["portable"]
        pattern = f"(?m){display}|{inline}"
        mkdocs, portable = (re.findall(pattern, texts[n]) for n in ("mkdocs", "portable"))
        assert [inert(f) for f in mkdocs] == portable and mkdocs != portable
        assert re.sub(pattern, "MATH", texts["mkdocs"]) == re.sub(pattern, "MATH", texts["portable"])

    @pytest.mark.parametrize("name", FLAVORS)
    def test_only_the_math_differs(self, texts, name):
        """With every formula taken out, each flavor's document is the portable one, byte for byte."""
        assert texts[name].count("MATH") == 0
        assert without_math(texts[name], name) == without_math(texts["portable"], "portable")

    @pytest.mark.parametrize("name", FLAVORS)
    def test_same_number_of_formulas(self, texts, name):
        """Each flavor has as many display and inline formulas as the portable document."""
        display, inline = MATH[name]
        p_display, p_inline = MATH["portable"]
        count = len(re.findall(display, texts[name], flags=re.M))
        assert count == len(re.findall(p_display, texts["portable"], flags=re.M)) > 0
        rest = re.sub(display, "", texts[name], flags=re.M)
        p_rest = re.sub(p_display, "", texts["portable"], flags=re.M)
        assert len(re.findall(inline, rest)) == len(re.findall(p_inline, p_rest)) > 0

    def test_each_flavors_delimiters(self, texts):
        """Display and inline formulas use the delimiters each platform reads."""
        assert "\n\n```math\n" in texts["github"] and "$`" in texts["github"]
        assert "\n\n\\[\n" in texts["hugo"] and "\n\\]\n\n" in texts["hugo"] and "\\(" in texts["hugo"]
        assert "\n\n$$\n" in texts["jekyll"] and re.search(r"[^\n]\$\$[^$\n]+\$\$", texts["jekyll"])


class TestSpecText:
    @pytest.mark.parametrize("name", FLAVORS)
    def test_spec_text_never_becomes_math(self, tmp_path, odd_spec, name):
        """Dollars and backslashes of a title go in code spans, backticks are entities, in every flavor."""
        title = build(tmp_path, odd_spec, flavor=name).split("\n", 1)[0]
        assert title.startswith("# Costs `` $ ``5 `` \\$ `` ")
        assert "&#96;x&#96; \"quoted\" `` \\ `` back" in title
        display, inline = MATH[name]
        assert not re.search(inline, re.sub(r"`` [^`]* ``", "CODE", title))  # no platform reads math in code

    @pytest.mark.parametrize("name", ["hugo", "mkdocs", "portable"])
    def test_brackets_and_parentheses_are_entities(self, tmp_path, odd_spec, name):
        """Hugo's passthrough and arithmatex read \\( and \\[ as math, so spec text shows them as HTML entities."""
        text = build(tmp_path, odd_spec, flavor=name)
        title, _, summary = text.split("\n", 3)[:3]
        assert title == '# Costs `` $ ``5 `` \\$ `` &#40;or &#91;more&#93;&#41; &#96;x&#96; "quoted" `` \\ `` back'
        assert summary == "A `` $ ``literal`` $ `` dollar, &#40;parentheses&#41; and &#91;brackets&#93;\\."


class TestFrontMatter:
    @pytest.mark.parametrize("name", ["hugo", "jekyll"])
    def test_hugo_and_jekyll_get_front_matter(self, tmp_path, odd_spec, name):
        """--front-matter starts with YAML (title with $ and \\ fullwidth, math: true, no date) and drops the H1."""
        text = build(tmp_path, odd_spec, flavor=name, front_matter=True)
        head, body = text.split("\n---\n\n", 1)
        assert head == '---\ntitle: "Costs \uff045 \uff3c\uff04 (or [more]) `x` \\"quoted\\" \uff3c back"\nmath: true'
        assert YAML(typ="safe", pure=True).load(head[4:]) == {
            "title": 'Costs \uff045 \uff3c\uff04 (or [more]) `x` "quoted" \uff3c back', "math": True}
        heading, rest = build(tmp_path, odd_spec, flavor=name).split("\n\n", 1)
        assert heading.startswith("# Costs ") and body == rest  # the theme prints the title: not twice

    @pytest.mark.parametrize("name", ["portable", "github", "mkdocs"])
    def test_other_flavors_ignore_it(self, tmp_path, name):
        """For flavors whose platforms take no front matter, --front-matter adds nothing."""
        assert build(tmp_path, flavor=name, front_matter=True) == build(tmp_path, flavor=name)


class TestChoosing:
    def test_every_flavor_is_defined(self):
        """The loader's FLAVORS, the schema's enum and generator/render/flavor.py agree."""
        assert spec_schema()["properties"]["flavor"]["enum"] == list(FLAVORS)
        assert [flavor(name).name for name in FLAVORS] == list(FLAVORS)

    def test_spec_flavor_and_option_override(self, tmp_path, odd_spec):
        """A spec's flavor: key chooses its flavor; --flavor overrides it."""
        odd_spec.write_text(SPEC + "flavor: github\n", encoding="utf-8")
        out = tmp_path / "out"
        result = invoke("build", str(odd_spec), "--out", str(out))
        assert result.exit_code == 0, result.output
        assert "```math\n" in (out / "odd.md").read_text(encoding="utf-8")
        result = invoke("build", str(odd_spec), "--out", str(out), "--flavor", "hugo",
                                           "--front-matter")
        assert result.exit_code == 0, result.output
        text = (out / "odd.md").read_text(encoding="utf-8")
        assert text.startswith("---\ntitle: ") and "\\[\n" in text and "```math" not in text

    def test_unknown_flavor_is_a_usage_error(self, tmp_path):
        """--flavor names only known flavors."""
        result = invoke("build", str(SEED), "--out", str(tmp_path), "--flavor", "gitlab")
        assert result.exit_code == 2
        assert result.stderr == (
            "derive build: argument --flavor: unknown flavor gitlab (allowed: portable, github, mkdocs, hugo, jekyll)"
            " (see derive build --help)\n"
        )
        assert not list(tmp_path.iterdir())
