"""Markdown flavors: how each blog platform wants its math written.

A flavor changes only the math delimiters (and, for Hugo and Jekyll, adds optional
front matter); every other byte of the Markdown document is the same. The Markdown
renderer is the only user: the template's math macro calls `display`, its inline
formulas call `inline`, and every message goes through `markup`, which rewrites
the message's $math$ marks and leaves its text, code and bold as they are. Text
from a spec is escaped by `text`; code spans and fences never pass through here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


# A theme prints the front matter's title as plain text (Hugo's {{ .Title }}, Jekyll's {{ page.title }}),
# where a page's MathJax or KaTeX would scan it: its dollars and backslashes become their fullwidth forms
# (the same characters under NFKC), which no renderer takes for a delimiter.
FRONT_MATTER_TEXT = str.maketrans({"$": "\uff04", "\\": "\uff3c"})


MD_SPECIAL = re.compile(r"([`*_{}\[\]()#+\-.!|~<>&])")
# Dollars and backslashes start every math delimiter a page's renderer scans for ($, $$, \(, \[, \begin):
# spec text shows each run of them in a code span, which MathJax and KaTeX skip, so the text they scan
# never holds one. The spaces inside keep a dollar from touching a backtick (GitHub's $`…`$); the
# double backticks keep kramdown from reading a single one between spaces as a literal backtick.
MATH_STARTS = re.compile(r"([\\$]+)")
# Written as entities: braces (Liquid's {{ and {%, Hugo's {{< and {{%, kramdown's {: and {::), and
# backticks (so a spec's backtick never touches a code span's); each is a literal character on the page.
MD_ENTITIES = "{}`"
SPACES = re.compile(r"[ \t\n\r]+")  # only these collapse: a no-break or ideographic space stays as it is

# GitHub's parser (cmark-gfm) reads Markdown inside $…$ before MathJax sees it: a backslash before ASCII
# punctuation is an escape (\\ becomes \, \_ becomes _), an _ after punctuation opens emphasis, a < may
# open an HTML tag, &name; is an entity. An inert formula holds none of these, in TeX that KaTeX and
# MathJax both draw the same: rows end in \cr, \_ is a rule of its width and depth, and an _ after
# anything but a letter or digit is followed by a space (an _ before a space never opens emphasis).
INERT_SPELLINGS = {
    "\\\\": "\\cr", "\\_": "\\rule[-0.12em]{0.5em}{0.04em}", "\\,": "\\thinspace",
    "\\!": "\\negthinspace", "\\:": "\\mskip4mu", "\\>": "\\mskip4mu", "\\;": "\\mskip5mu",
    "\\{": "\\lbrace", "\\}": "\\rbrace", "\\|": "\\Vert", "<": "\\lt", ">": "\\gt", "*": "\\ast",
    "~": "\\nobreakspace", "_": "_ ", "&": "& ", "]": "]{}",
}
INERT = re.compile(r"\\[!-/:-@\[-`{-~]|(?<![^\W_])_|[<>*~`]|&(?=[A-Za-z0-9#])|\](?=[(\[])")
LINE_STARTS = re.compile(r"[-+=#]|\d+[.)]")  # a display line starting so is a list, heading or underline


def inert(tex: str) -> str:
    """Return TeX that a Markdown parser reading inside $…$ leaves as it is, drawn the same by KaTeX and MathJax."""

    def swap(m: re.Match) -> str:
        found = INERT_SPELLINGS.get(m.group(0))
        if found is None:  # no spelling both renderers know (\#): left as it is; the platforms' tests show none is made
            return m.group(0)
        follows = tex[m.end():m.end() + 1]
        return found + " " if found[-1].isalpha() and follows.isalpha() else found  # \cr x, not \crx

    return INERT.sub(swap, tex)


def md_text(text: str, entities: str = "") -> str:
    """Escape plain text for Markdown and HTML: it shows literally, never as markup, math or a template.

    The characters in entities also become numeric HTML entities rather than backslash escapes
    (for a flavor where a backslash before them starts math, such as Hugo's \\( and \\[).
    """
    html = {"<": "&lt;", ">": "&gt;", "&": "&amp;"} | {c: f"&#{ord(c)};" for c in MD_ENTITIES + entities}
    out = []
    for k, part in enumerate(MATH_STARTS.split(SPACES.sub(" ", text).strip(" "))):
        if k % 2:
            out.append(f"`` {part} ``")
        else:
            out.append(MD_SPECIAL.sub(lambda m: html.get(m.group(1), "\\" + m.group(1)), part))
    return "".join(out)


@dataclass(frozen=True)
class Flavor:
    """One platform's math syntax."""

    name: str
    display_open: str  # on its own line before a display formula
    display_close: str  # on its own line after it
    inline_open: str
    inline_close: str
    entities: str = ""  # characters spec text shows as HTML entities, not backslash escapes
    front_matter: bool = False  # whether --front-matter writes YAML front matter
    inert: bool = False  # whether formulas must survive a Markdown parser that reads inside them (see inert)

    def _tex(self, tex: str) -> str:
        return inert(tex) if self.inert else tex

    def display(self, tex: str) -> str:
        """Return a display formula, delimiters on their own lines (the template adds blank lines around)."""
        tex = self._tex(tex)
        if self.inert and LINE_STARTS.match(tex):
            tex = "{}" + tex
        return f"{self.display_open}\n{tex}\n{self.display_close}"

    def inline(self, tex: str) -> str:
        """Return an inline formula."""
        return f"{self.inline_open}{self._tex(tex)}{self.inline_close}"

    def markup(self, message: str) -> str:
        """Return a rendered message with its $math$ marks in this flavor's inline syntax."""
        from .messages import segments

        if (self.inline_open, self.inline_close) == ("$", "$") and not self.inert:
            return message  # the catalog's own syntax
        out = []
        for kind, text in segments(message):
            if kind == "math":
                out.append(self.inline(text))
            elif kind == "code":
                out.append(f"`{text}`")
            elif kind == "bold":
                out.append(f"**{self.markup(text)}**")
            else:
                out.append(text)
        return "".join(out)

    def text(self, text: str) -> str:
        """Escape plain text from a spec so it shows literally (never as markup or as math)."""
        return md_text(text, entities=self.entities)

    def front(self, title: str) -> str:
        """Return YAML front matter (empty when this flavor takes none): no date, so builds stay reproducible."""
        if not self.front_matter:
            return ""
        shown = re.sub(r"[ \t\n\r]+", " ", title).strip(" ").translate(FRONT_MATTER_TEXT)
        quoted = json.dumps(shown, ensure_ascii=False)  # JSON strings are YAML double-quoted strings
        return f"---\ntitle: {quoted}\nmath: true\n---\n\n"


_TABLE = {
    # $$ blocks and inline $…$, inert, with brackets in spec text as entities: GitHub (whose parser reads
    # inside $…$), MkDocs's arithmatex and Jupyter all read it whole (the default).
    "portable": Flavor("portable", "$$", "$$", "$", "$", entities="()[]", inert=True),
    # GitHub's own syntax: a ```math fence, and $`…`$, which no Markdown rule can break.
    "github": Flavor("github", "```math", "```", "$`", "`$"),
    # pymdownx.arithmatex (generic mode) reads the portable syntax, but also \( and \[ as math, which is how
    # Markdown escapes brackets in spec text: there they are written as entities, as for Hugo.
    "mkdocs": Flavor("mkdocs", "$$", "$$", "$", "$", entities="()[]"),
    # goldmark's passthrough extension; \( and \[ in spec text would start math there, so
    # brackets and parentheses in spec text are written as entities.
    "hugo": Flavor("hugo", "\\[", "\\]", "\\(", "\\)", entities="()[]", front_matter=True),
    # kramdown: $$ on its own is a display block, $$…$$ inside a paragraph is inline.
    "jekyll": Flavor("jekyll", "$$", "$$", "$$", "$$", front_matter=True),
}


def flavor(name: str) -> Flavor:
    """Return a flavor by name (one of FLAVORS)."""
    return _TABLE[name]
