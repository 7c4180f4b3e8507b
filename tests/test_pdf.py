"""The PDF and LaTeX outputs: every gallery spec compiles, shows torch's numbers, builds byte for byte
the same, shows hostile text literally, and fails cleanly."""

from __future__ import annotations

import re
import subprocess

import pytest

from generator.render import pdf
from generator.pipeline.build import build_spec, derive_spec
from generator.pipeline.check import run

from .helpers import GALLERY, pdf_text, squeeze

IDS = [p.stem for p in GALLERY]


def torch_printed_grads(spec) -> list[str]:
    """Return each leaf's .grad as torch itself prints it (the oracle), for the leaves that get one."""
    import torch

    graph = derive_spec(spec).graph
    grads = run(graph, dtype=graph.spec.dtype).grads
    dtype = getattr(torch, graph.spec.dtype)
    return [str(torch.tensor(grads[i.name], dtype=dtype).reshape(i.value.shape))
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
        for grad in printed:
            for number in re.findall(r"-?\d+\.\d*(?:e[+-]\d+)?|-?inf|nan", grad):
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
