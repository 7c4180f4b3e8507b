"""The PDF and LaTeX outputs: every gallery spec compiles, shows torch's numbers, builds byte for byte
the same, shows hostile text literally, and fails cleanly."""

from __future__ import annotations

import re
import subprocess
import unicodedata

import pytest

from generator.render import pdf
from generator.pipeline.build import build_spec, derive_spec
from generator.pipeline.check import run

from .helpers import GALLERY, pdf_pages, pdf_text, squeeze

IDS = [p.stem for p in GALLERY]


def torch_printed_grads(spec) -> list[tuple[str, bool]]:
    """Return each leaf's .grad as torch itself prints it (the oracle), for the leaves that get one.

    With it, whether the example's code prints that grad (then its document shows torch's print of it; else
    only the numbers, in its formulas: 36 for torch's 36.).
    """
    import torch

    graph = derive_spec(spec).graph
    grads = run(graph, dtype=graph.spec.dtype).grads
    dtype = getattr(torch, graph.spec.dtype)
    prints = graph.spec.prints
    shown = None if prints is None else {part.name for p in prints for part in p.parts
                                         if getattr(part, "what", "") == "grad"}
    return [(str(torch.tensor(grads[i.name], dtype=dtype).reshape(i.value.shape)), shown is None or i.name in shown)
            for i in graph.spec.inputs if grads[i.name] is not None]


class TestGallery:
    @pytest.mark.parametrize("stem", IDS)
    def test_compiles(self, stem, gallery_build):
        """Every gallery spec compiles to a PDF (latexmk halts on any LaTeX error) beside its .tex."""
        assert (gallery_build / f"{stem}.pdf").read_bytes().startswith(b"%PDF-")
        assert (gallery_build / f"{stem}.tex").read_text().startswith("% !TEX program = ")

    @pytest.mark.parametrize("spec", GALLERY, ids=IDS)
    def test_shows_each_leafs_grad_as_torch_prints_it(self, spec, gallery_build):
        """pdftotext finds every number of every leaf's .grad, as torch prints it, in the PDF."""
        text = squeeze(pdf_text(gallery_build / f"{spec.stem}.pdf"))
        printed = torch_printed_grads(spec)
        assert printed
        for grad, as_printed in printed:
            for number in re.findall(r"-?\d+\.\d*(?:e[+-]\d+)?|-?inf|nan", grad):
                if not as_printed:  # a formula's number: 36 for 36., with math's minus sign
                    number = (number if "e" in number else number.rstrip("0").rstrip(".") or "0").replace("-", "−")
                assert number in text, f"{number} of {grad} is not in the PDF"

    @pytest.mark.parametrize("stem", IDS)
    def test_fonts_are_outlines(self, stem, gallery_build):
        """Every font is embedded as outlines (no bitmap Type 3 font, which reads badly and copies as junk)."""
        fonts = subprocess.run(["pdffonts", str(gallery_build / f"{stem}.pdf")], capture_output=True, text=True)
        assert fonts.returncode == 0 and "Type 3" not in fonts.stdout

    def test_large_matrices_show_corners_and_size(self, gallery_build):
        """A 12×12 tensor shows its corners with dots and its full size, in the PDF as in the Markdown."""
        tex = (gallery_build / "18_large_matrix.tex").read_text()
        md = (gallery_build / "18_large_matrix.md").read_text()
        for source in (tex, md):
            assert r"\underset{12 \times 12}" in source
            assert all(dots in source for dots in (r"\cdots", r"\vdots", r"\ddots"))
        assert "12×12" in pdf_text(gallery_build / "18_large_matrix.pdf")


@pytest.fixture(scope="session")
def gallery_typeset(gallery_build) -> dict:
    """Typeset each gallery document's LaTeX again, keeping TeX's log: stem -> pdf.Typeset."""
    return {stem: pdf.typeset((gallery_build / f"{stem}.tex").read_text(), label=stem) for stem in IDS}


OVERFULL = re.compile(r"^Overfull \\([hv])box \((\d+(?:\.\d+)?)pt too (?:wide|high)\) (.*)$", re.M)
SCALED = re.compile(r"^derive: scaled ([\d.]+)pt type from ([\d.]+)pt to ([\d.]+)pt at line (\d+)$", re.M)
STARTS = (r"\derivemath{", r"\begin{derivedisplay}", r"\derivecell{", r"\begin{derivefit}", r"\begin{tikzpicture}")
FOOTNOTESIZE = 9.0  # pt, in an 11pt article: the least a matrix or a picture's text may be set at
CM = 72 / 2.54  # pt
MARGIN = 2 * CM  # the page's margins (geometry: margin=2cm)


def construct(tex: str, line: int) -> str:
    """Return the display, cell or picture of the LaTeX source that ends at this line (1-based)."""
    lines = tex.splitlines()
    start = line - 1
    while start > 0 and not any(mark in lines[start] for mark in STARTS):
        start -= 1
    return "\n".join(lines[start:line])


def overlap(a, b) -> tuple[float, float]:
    """Return how far two word boxes overlap across and down (negative: apart)."""
    return min(a.x1, b.x1) - max(a.x0, b.x0), min(a.y1, b.y1) - max(a.y0, b.y0)


def squeezed(a, b) -> bool:
    """Return whether two words on one line touch only through CJK punctuation, which xeCJK sets half width."""
    left, right = (a, b) if a.x0 < b.x0 else (b, a)
    wide = left.text[-1:] + right.text[:1]
    return (abs(a.y0 - b.y0) < 1 and overlap(a, b)[0] < 0.6 * (a.y1 - a.y0)
            and any(unicodedata.category(c).startswith("P") and unicodedata.east_asian_width(c) in "WF" for c in wide))


class TestLayout:
    @pytest.mark.parametrize("stem", IDS)
    def test_no_line_runs_over(self, stem, gallery_typeset, gallery_build):
        """TeX's log of each gallery PDF reports no line or page overfull by more than 2pt."""
        typeset = gallery_typeset[stem]
        assert typeset.pdf == (gallery_build / f"{stem}.pdf").read_bytes()  # the log is the built PDF's
        over = [f"{stem}: {kind}box {points}pt too wide {where}" for kind, points, where in OVERFULL.findall(typeset.log)
                if float(points) > 2]
        assert not over, "\n".join(over)

    @pytest.mark.parametrize("stem", IDS)
    def test_matrices_and_pictures_are_never_set_below_footnotesize(self, stem, gallery_typeset, gallery_build):
        """A display or cell holding a matrix, or a picture, is never scaled below \\footnotesize to fit."""
        tex = (gallery_build / f"{stem}.tex").read_text()
        small = []
        for size, natural, room, line in SCALED.findall(gallery_typeset[stem].log):
            source = construct(tex, int(line))
            shown = float(size) * float(room) / float(natural)
            if re.search(r"matrix\}|tikzpicture", source) and shown < FOOTNOTESIZE:
                small.append(f"{stem}:{line}: set at {shown:.1f}pt: {source[-200:]}")
        assert not small, "\n".join(small)

    @pytest.mark.parametrize("stem", IDS)
    def test_no_two_boxes_or_labels_of_the_graph_overlap(self, stem, gallery_typeset):
        """In each picture of the graph, no box, AccumulateGrad node or arrow label lies over another (TeX's places)."""
        pictures = [re.findall(r"^derive: node (\w+) (\S+)pt (\S+)pt (\S+)pt (\S+)pt$", part, re.M)
                    for part in gallery_typeset[stem].log.split("derive: picture")[1:]]
        assert pictures and all(pictures)
        clashes = []
        for number, nodes in enumerate(pictures, 1):
            boxes = [(name, *map(float, corners)) for name, *corners in nodes]
            for i, (a, ax0, ay0, ax1, ay1) in enumerate(boxes):
                for b, bx0, by0, bx1, by1 in boxes[i + 1:]:
                    across, down = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
                    if across > 0.5 and down > 0.5:
                        clashes.append(f"{stem} picture {number}: {a} over {b} ({across:.1f}×{down:.1f}pt)")
        assert not clashes, "\n".join(clashes)

    @pytest.mark.parametrize("stem", IDS)
    def test_no_two_words_overlap(self, stem, gallery_build):
        """No two words of a page (in the text, the table or the graph's boxes and labels) are set over each other."""
        clashes = []
        for number, page in enumerate(pdf_pages(gallery_build / f"{stem}.pdf"), 1):
            words = [w for w in page.words if any(c.isalnum() for c in w.text)]  # not a bracket's or a root's pieces
            for i, a in enumerate(words):
                for b in words[i + 1:]:
                    across, down = overlap(a, b)
                    if across > 1 and down > 2 and not squeezed(a, b):
                        clashes.append(f"{stem} p{number}: {a.text!r} over {b.text!r} ({across:.1f}×{down:.1f}pt)")
        assert not clashes, "\n".join(clashes)

    @pytest.mark.parametrize("stem", IDS)
    def test_every_page_but_the_last_is_a_third_full(self, stem, gallery_build):
        """Each page but the last has text at least a third of the way down its text area."""
        pages = pdf_pages(gallery_build / f"{stem}.pdf")
        empty = []
        for number, page in enumerate(pages[:-1], 1):
            bottom = page.height - MARGIN
            lowest = max((w.y1 for w in page.words if w.y1 <= bottom + 2), default=MARGIN)  # not the page number
            filled = (lowest - MARGIN) / (bottom - MARGIN)
            if filled < 1 / 3:
                empty.append(f"{stem} p{number}: {filled:.0%} full")
        assert not empty, "\n".join(empty)


class TestReproducible:
    @pytest.mark.parametrize("stem", ["02_vector_jacobian", "02_vector_jacobian_zh"])
    def test_two_builds_are_byte_identical(self, stem, gallery_build, tmp_path):
        """Building a spec again, into another folder, gives the same .tex and .pdf bytes."""
        spec = next(p for p in GALLERY if p.stem == stem)
        assert build_spec(spec, out=tmp_path, formats=("tex", "pdf")).ok
        for fmt in ("tex", "pdf"):
            assert (tmp_path / f"{stem}.{fmt}").read_bytes() == (gallery_build / f"{stem}.{fmt}").read_bytes()


HOSTILE = r"""title: '\input{/etc/passwd} \immediate\write18{touch {pwned}} $ % & \ { } ^ _ ~ #'
summary: '\csname @@end\endcsname \def\x{1} $$ % \openin5=/etc/passwd'
lang: {lang}
inputs:
  x:
    value: [1, 2]
    requires_grad: true
steps:
  y: (x * x).sum()
backward: y
"""


class TestHostileText:
    @pytest.mark.parametrize("lang", ["en", "zh"])
    def test_title_shows_literally_and_runs_nothing(self, lang, specs_dir, tmp_path):
        """TeX commands in a title or summary are printed as text: nothing is read, written or run."""
        pwned = tmp_path / "pwned"
        spec = specs_dir / "hostile.yaml"
        source = HOSTILE.replace("{pwned}", str(pwned)).replace("{lang}", lang)
        spec.write_text(source)
        out = tmp_path / "out"
        outcome = build_spec(spec, out=out, formats=("md", "tex", "pdf"))
        assert outcome.ok, outcome.errors
        text = squeeze(pdf_text(out / "hostile.pdf")).replace("-", "")  # pdftotext joins words hyphenated at a line end
        title = source.split("'")[1]
        summary = source.split("'")[3]
        assert squeeze(title).replace("-", "") in text
        assert squeeze(summary).replace("-", "") in text
        assert not pwned.exists()
        passwd = open("/etc/passwd").readline().split(":")[0] + ":x:"
        assert passwd not in text
        assert r"\input{/etc/passwd}" not in (out / "hostile.tex").read_text()


class TestFailures:
    def test_latex_error_names_the_spec_and_the_first_error(self, monkeypatch, tmp_path):
        """A LaTeX failure reports the spec and the first error line; no PDF and no .aux/.log are left."""
        spec = GALLERY[0]
        real = pdf.build_tex
        monkeypatch.setattr(pdf, "build_tex", lambda d: real(d).replace(r"\begin{document}", r"\begin{document}\nosuchcommand", 1))
        outcome = build_spec(spec, out=tmp_path, formats=("md", "pdf"))
        assert len(outcome.errors) == 1
        assert outcome.errors[0].startswith(f"{spec}: LaTeX failed: ")
        assert "Undefined control sequence" in outcome.errors[0]
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"{spec.stem}.md"]

    def test_without_tex_pdf_fails_in_one_line_and_the_rest_builds(self, monkeypatch, tmp_path):
        """With no TeX on PATH, pdf says what to install in one line; md, json and tex are still written."""
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        spec = GALLERY[0]
        out = tmp_path / "out"
        outcome = build_spec(spec, out=out, formats=("md", "json", "tex", "pdf"))
        assert len(outcome.errors) == 1
        line = outcome.errors[0]
        assert "\n" not in line and line.startswith(f"{spec}: pdf needs TeX (latexmk is missing)")
        assert "apt-get install --no-install-recommends texlive-latex-base" in line
        assert sorted(p.suffix for p in out.iterdir()) == [".json", ".md", ".tex"]

    def test_chinese_names_its_packages(self, monkeypatch, tmp_path):
        """The install line for a Chinese document names the xelatex and Chinese packages too."""
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        outcome = build_spec(GALLERY[0], out=tmp_path, formats=("pdf",), lang="zh")
        assert outcome.errors[0].endswith("texlive-xetex texlive-lang-chinese")


class TestEscaping:
    @pytest.mark.parametrize("unicode", [False, True])
    def test_special_characters_become_commands(self, unicode):
        """No character of plain text keeps its TeX meaning: every special is replaced."""
        escaped = pdf.escape_text(r"\x{y}$%&#_^~", unicode=unicode)
        bare = re.sub(r"\\char`\\.|\\[a-zA-Z]+|\\[{}$%&#_]|[{}]", "", escaped)
        assert not set(bare) & set("\\{}$%&#_^~")

    def test_relations_split_outside_braces(self):
        """A chain splits at its top-level = and ≈, never inside a fraction or a matrix."""
        tex = r"a = \frac{1}{b = c} = \begin{bmatrix} x = 1 \end{bmatrix} \approx 2"
        assert pdf.split_relations(tex) == ["a", "=", r"\frac{1}{b = c}", "=", r"\begin{bmatrix} x = 1 \end{bmatrix}",
                                            r"\approx", "2"]


class TestLoopTable:
    def test_two_leaves_table_fits_the_line(self, tmp_path):
        """A loop's table of later calls with two leaves' columns stays inside the line (its gaps counted too)."""
        from generator.document.small import build_document

        path = tmp_path / "loop.py"
        path.write_text("import torch\nx = torch.tensor([1.0, 2.0, 3.0])\ny = torch.tensor([2.0, 4.0, 6.0])\n"
                        "w = torch.tensor([0.5], requires_grad=True)\nb = torch.tensor([-0.25], requires_grad=True)\n"
                        "for epoch in range(4):\n    l = ((w * x + b - y) ** 2).mean()\n    l.backward()\n"
                        "    with torch.no_grad():\n        w -= 0.01 * w.grad\n        b -= 0.01 * b.grad\n"
                        "    w.grad.zero_()\n    b.grad.zero_()\nprint(w, b)\n")
        tex = pdf.build_tex(build_document(derive_spec(path), stem="loop"))
        assert "added to" in tex and tex.count(r"\dimexpr") >= 3  # the table of calls 2 to 4, w's and b's columns
        log = pdf.typeset(tex, label="loop").log
        over = [m for m in OVERFULL.findall(log) if float(m[1]) > 2]
        assert not over, over

    def test_a_training_run_s_page_fits_and_nothing_overlaps(self):
        """The 100-epoch nn.Linear run (corpus 44): no line over the margin, no label over a box in its pictures."""
        from pathlib import Path

        from generator.document.small import build_document

        spec = Path(__file__).parent / "corpus" / "44_loeber_optimizer_zero_grad.py"
        log = pdf.typeset(pdf.build_tex(build_document(derive_spec(spec), stem=spec.stem)), label=spec.stem).log
        assert not [m for m in OVERFULL.findall(log) if float(m[1]) > 2]
        pictures = [re.findall(r"^derive: node (\w+) (\S+)pt (\S+)pt (\S+)pt (\S+)pt$", part, re.M)
                    for part in log.split("derive: picture")[1:]]
        assert len(pictures) == 2 and all(pictures)
        for nodes in pictures:
            boxes = [(name, *map(float, corners)) for name, *corners in nodes]
            for i, (a, ax0, ay0, ax1, ay1) in enumerate(boxes):
                for b, bx0, by0, bx1, by1 in boxes[i + 1:]:
                    assert min(ax1, bx1) - max(ax0, bx0) <= 0.5 or min(ay1, by1) - max(ay0, by0) <= 0.5, (a, b)
