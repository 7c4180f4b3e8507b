"""What TeX must set from a hostile spec: the worst title, summary, graph and tensor the limits allow
compile to a PDF (never a TeX crash), and the PDF still shows the gradient torch computes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from generator.pipeline.build import build_specs

from .helpers import pdf_text, squeeze

BODY = """inputs:
  x:
    value: 1.5
    requires_grad: true
steps:
  y: x * 1.75
backward: y
"""


def write_spec(folder: Path, stem: str, *, title: str = "t", summary: str = "", lang: str = "en",
               body: str = BODY) -> Path:
    """Write a spec file (title and summary in single quotes, where YAML reads a backslash as it is)."""
    path = folder / f"{stem}.yaml"
    quote = "'{}'".format
    path.write_text(f"title: {quote(title.replace(chr(39), chr(39) * 2))}\n"
                    f"summary: {quote(summary.replace(chr(39), chr(39) * 2))}\nlang: {lang}\n{body}", encoding="utf-8")
    return path


def build_pdfs(paths: list[Path], out: Path, *, timeout: float = 60) -> dict[str, str]:
    """Build PDFs (two at a time); assert each built, and return each one's text by stem."""
    outcomes = build_specs(paths, out=out, formats=("pdf",), jobs=2, cache=False, timeout=timeout)
    for outcome in outcomes:
        assert outcome.ok, outcome.errors
    return {p.stem: pdf_text(out / f"{p.stem}.pdf") for p in paths}


def torch_grad(build) -> str:
    """Return x.grad as torch prints it, for the graph build(x) makes from x (the oracle)."""
    import torch

    x, out = build(torch)
    out.backward()
    return str(x.grad)


def scalar_grad(torch):
    x = torch.tensor(1.5, requires_grad=True)
    return x, x * 1.75


RUNS = ["\\" * 200, "{" * 200, "}" * 200, "%" * 200, "~" * 200, "中" * 200, "Ａ" * 200, "a" * 2000, "_^$#&" * 40]


class TestLongText:
    @pytest.mark.parametrize(("lang", "title"), [("en", "\\" * 30_000), ("zh", "\\" * 200 + "中" * 200)],
                             ids=["en-30000-backslashes", "zh-200-backslashes-200-cjk"])
    def test_longest_unbroken_title_and_summary_compile(self, lang, title, specs_dir, tmp_path):
        """A long unbroken title and a summary of long unbroken runs (\\ { } % ~ CJK, 2,000 letters) compile."""
        spec = write_spec(specs_dir, f"runs_{lang}", title=title, summary=" ".join(RUNS), lang=lang)
        text = build_pdfs([spec], tmp_path / "out")[spec.stem]
        assert torch_grad(scalar_grad) in text  # the document is all there: tensor(1.7500)
        pages = [line for line in text.splitlines() if not line.strip().isdigit()]  # a run may cross a page number
        letters = squeeze("".join(pages))
        wide = "中" if lang == "zh" else "[U+4E2D]"  # pdflatex's fonts have no Chinese: it shows the code point
        assert letters.count("\\") >= title.count("\\") + 200
        assert letters.count("%") >= 200 and letters.count("~") >= 200 and letters.count(wide) >= 200
        assert "a" * 2000 in letters  # every letter, in order, broken only across lines

    def test_long_runs_break_into_short_source_lines(self, specs_dir, tmp_path):
        """A title of 30,000 backslashes becomes LaTeX source lines far below TeX's line buffer."""
        from generator.render.pdf import escape_text

        for unicode in (False, True):
            tex = escape_text("\\" * 30_000, unicode=unicode)
            assert max(map(len, tex.splitlines())) < 5_000
            assert tex.count(r"\textbackslash{}") == 30_000


def wide_spec(count: int) -> str:
    steps = "\n".join(f"  s{i}: x * {i + 1}" for i in range(count))
    total = " + ".join(f"s{i}" for i in range(count))
    return f"inputs:\n  x:\n    value: [1.0, 2.0]\n    requires_grad: true\nsteps:\n{steps}\n  loss: ({total}).sum()\nbackward: loss\n"


def wide_grad(count: int):
    def build(torch):
        x = torch.tensor([1.0, 2.0], requires_grad=True)
        return x, sum(x * (i + 1) for i in range(count)).sum()

    return build


def chain_spec(count: int) -> str:
    """y1 = x * 2, then each step halves or doubles the one before, and out = y_count * 1.75."""
    steps = ["  y1: x * 2"] + [f"  y{i}: y{i - 1} * {0.5 if i % 2 == 0 else 2}" for i in range(2, count + 1)]
    return ("inputs:\n  x:\n    value: 3.0\n    requires_grad: true\nsteps:\n" + "\n".join(steps)
            + f"\n  out: y{count} * 1.75\nbackward: out\n")


def chain_grad(count: int):
    def build(torch):
        x = torch.tensor(3.0, requires_grad=True)
        y = x * 2
        for i in range(2, count + 1):
            y = y * (0.5 if i % 2 == 0 else 2)
        return x, y * 1.75

    return build


class TestLargeGraphs:
    def test_sixteen_parallel_steps_compile(self, specs_dir, tmp_path):
        """16 steps from x summed into one loss (a wide graph) compile, and x.grad is torch's."""
        spec = write_spec(specs_dir, "wide", body=wide_spec(16))
        text = build_pdfs([spec], tmp_path / "out")[spec.stem]
        assert torch_grad(wide_grad(16)) in text  # tensor([136., 136.])

    def test_deep_chain_compiles_in_parts(self, specs_dir, tmp_path):
        """A 181-step chain (deeper than one TikZ picture can be) compiles, drawn in parts, and x.grad is torch's."""
        spec = write_spec(specs_dir, "chain", body=chain_spec(181))
        text = build_pdfs([spec], tmp_path / "out")[spec.stem]
        assert torch_grad(chain_grad(181)) in text
        assert re.search(r"drawn in \d+ parts", text)


TENSOR_4D = """inputs:
  x:
    fill: 1
    shape: [10, 10, 10, 10]
    requires_grad: true
steps:
  y: x * 3
  loss: y.sum()
backward: loss
"""


class TestLargeTensors:
    def test_largest_4d_tensor_compiles(self, specs_dir, tmp_path):
        """A 10×10×10×10 input (every dimension within the ten shown in full) compiles, and x.grad is torch's."""
        import torch

        spec = write_spec(specs_dir, "t4d", body=TENSOR_4D)
        text = build_pdfs([spec], tmp_path / "out")[spec.stem]
        x = torch.ones(10, 10, 10, 10, requires_grad=True)
        (x * 3).sum().backward()
        start = str(x.grad).split("...")[0]  # tensor([[[[3., 3., 3., (the listing breaks the line after it)
        assert squeeze(start) in squeeze(text)
        assert "10×10×10×10" in text

    def test_4d_tensor_shows_ends_of_leading_dimensions(self):
        """A 4-D tensor is written as 2 × 2 matrices (first and last of each leading dimension), not 100."""
        import sympy as sp

        from generator.document.latex import tensor_tex

        tex = tensor_tex([sp.Integer(1)] * 10_000, (10, 10, 10, 10))
        assert tex.count(r"\begin{bmatrix}") == 4
        assert tex.startswith(r"\underset{10 \times 10 \times 10 \times 10}")


def spec_lines(inputs: dict[str, str], steps: dict[str, str], backward: str) -> str:
    body = "inputs:\n" + "".join(f"  {n}:\n    value: {v}\n    requires_grad: true\n" for n, v in inputs.items())
    return body + "steps:\n" + "".join(f"  {n}: {e}\n" for n, e in steps.items()) + backward


@pytest.mark.long
class TestLimitsWorstCase:
    def test_sixteen_parallel_steps_compile_in_chinese(self, specs_dir, tmp_path):
        """16 steps from x summed into one loss compile with xelatex too, and x.grad is torch's."""
        spec = write_spec(specs_dir, "wide_zh", lang="zh", body=wide_spec(16))
        text = build_pdfs([spec], tmp_path / "out")[spec.stem]
        assert torch_grad(wide_grad(16)) in text

    def test_three_hundred_step_chain_compiles_in_both_languages(self, specs_dir, tmp_path):
        """A 300-step chain (the graph limit allows 400 tensors) compiles in en and zh; x.grad is torch's."""
        specs = [write_spec(specs_dir, f"chain_{lang}", lang=lang, body=chain_spec(300)) for lang in ("en", "zh")]
        texts = build_pdfs(specs, tmp_path / "out", timeout=120)
        for text in texts.values():
            assert torch_grad(chain_grad(300)) in text

    def test_widest_graph_of_four_hundred_tensors_compiles(self, specs_dir, tmp_path):
        """x, 196 steps from it and the adds that sum them (393 tensors) compile; x.grad is torch's."""
        count = 196
        groups = [" + ".join(f"s{i}" for i in range(g, min(g + 30, count))) for g in range(0, count, 30)]
        steps = {f"s{i}": f"x * {i + 1}" for i in range(count)}
        steps |= {f"p{k}": g for k, g in enumerate(groups)}
        steps["loss"] = "(" + " + ".join(f"p{k}" for k in range(len(groups))) + ").sum()"
        spec = write_spec(specs_dir, "wide400", body=spec_lines({"x": "[1.0, 2.0]"}, steps, "backward: loss\n"))
        text = build_pdfs([spec], tmp_path / "out", timeout=120)["wide400"]
        assert torch_grad(wide_grad(count)) in text

    def test_two_hundred_inputs_compile(self, specs_dir, tmp_path):
        """200 scalar inputs, summed in groups, compile; the last input's grad is torch's."""
        import torch

        inputs = {f"x{i}": f"{i + 1}.0" for i in range(200)}
        groups = [" + ".join(f"x{i}" for i in range(g, min(g + 30, 200))) for g in range(0, 200, 30)]
        steps = {f"p{k}": g for k, g in enumerate(groups)}
        steps["loss"] = "(" + " + ".join(f"p{k}" for k in range(len(groups))) + ") * 1.75"
        spec = write_spec(specs_dir, "inputs200", body=spec_lines(inputs, steps, "backward: loss\n"))
        text = build_pdfs([spec], tmp_path / "out", timeout=120)["inputs200"]
        xs = [torch.tensor(float(i + 1), requires_grad=True) for i in range(200)]
        (sum(sum(xs[g:g + 30]) for g in range(0, 200, 30)) * 1.75).backward()
        assert str(xs[-1].grad) in text

    def test_three_hundred_backward_calls_compile(self, specs_dir, tmp_path):
        """300 backward calls (each a gradient in the picture's boxes, a part of x.grad) compile; x.grad is torch's."""
        body = ("inputs:\n  x:\n    value: [1.0, 2.0]\n    requires_grad: true\nsteps:\n  y: x * 2\n  loss: y.sum()\n"
                "backward:\n" + "  - loss\n" * 300)
        spec = write_spec(specs_dir, "calls", body=body)
        text = build_pdfs([spec], tmp_path / "out", timeout=120)["calls"]

        def build(torch):
            x = torch.tensor([1.0, 2.0], requires_grad=True)
            loss = (x * 2).sum()
            for _ in range(299):
                loss.backward(retain_graph=True)
            return x, loss

        assert torch_grad(build) in text  # tensor([600., 600.])
