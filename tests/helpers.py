"""Helpers for the tests: build specs in memory and run them through the pipeline."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from generator.engines.exact import Derivation, derive
from generator.graph.walk import build_graph
from generator.spec.model import Array, Call, Input, Spec, Step

ROOT = Path(__file__).resolve().parent.parent
GALLERY = sorted([*(ROOT / "derivations").glob("*.yaml"), *(ROOT / "derivations").glob("*.py")])
# The functions an expression may call, as messages list them (pinned: a new op changes what users read).
FUNCS = ("exp, log, sqrt, sin, cos, tanh, sigmoid, relu, abs, sum, mean, norm, max, min, pow, softmax, "
         "log_softmax, clamp, matmul, sub, subtract, mul, multiply, div, divide, true_divide, neg, negative, "
         "reciprocal, log1p, expm1, exp2, rsqrt, atan, asin, sinh, cosh, silu, sign, floor, ceil, round, "
         "trunc, maximum, minimum, leaky_relu, elu, hardtanh, softplus, gelu, detach, add, clamp_min, "
         "clamp_max, prod, logsumexp, var, std, cumsum, argmax, argmin, dot, mm, mv, t, transpose, permute, addmm, "
         "bmm, "
         "linear, split, chunk, view, reshape, unsqueeze, squeeze, flatten, cat, concat, concatenate, stack, "
         "expand, mse_loss, binary_cross_entropy, binary_cross_entropy_with_logits, l1_loss, smooth_l1_loss, "
         "huber_loss, nll_loss, cross_entropy, normalize, dropout, layer_norm, where, masked_fill, conv1d, conv2d")
# the formats `make build` commits to output/ (html and ipynb are built on demand, not committed)
COMMITTED = tuple(re.search(r"derive build derivations --out output --format (\S+)",
                            (ROOT / "Makefile").read_text()).group(1).split(","))


def array(value) -> Array:
    """Return an Array from a number or nested lists (exact decimals from str)."""
    if isinstance(value, list):
        parts = [array(v) for v in value]
        return Array((len(parts),) + parts[0].shape, tuple(x for p in parts for x in p.values))
    return Array((), (Fraction(str(value)),))


def make_spec(inputs: dict, steps: dict, backward, *, dtype: str = "float32") -> Spec:
    """Build a Spec: inputs map name -> (value, requires_grad), or (value, "int64") for an int64 input;
    backward is a name or (name, gradient)."""
    calls = backward if isinstance(backward, list) else [backward]
    return Spec(
        path="test.yaml",
        title="test",
        summary="",
        inputs=tuple(Input(n, array(v), rg is True, 1, integer=rg == "int64") for n, (v, rg) in inputs.items()),
        steps=tuple(Step(n, e, 2) for n, e in steps.items()),
        backward=tuple(
            Call(c, None, 3) if isinstance(c, str) else Call(c[0], array(c[1]), 3) for c in calls
        ),
        dtype=dtype,
    )


def run_spec(inputs: dict, steps: dict, backward, **kw) -> Derivation:
    """Derive a spec built with make_spec."""
    return derive(build_graph(make_spec(inputs, steps, backward, **kw)))


def pdf_text(path: Path) -> str:
    """Return the text of a PDF as pdftotext reads it (poppler-utils, installed with TeX by make test)."""
    result = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode("utf-8")


def pdf_producer(path: Path) -> str:
    """Return the PDF's Producer (the TeX engine and version that made it)."""
    result = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, timeout=60)
    return next((line.split(":", 1)[1].strip() for line in result.stdout.splitlines() if line.startswith("Producer:")), "")


def squeeze(text: str) -> str:
    """Drop all whitespace (a PDF's text breaks lines where the typesetting did)."""
    return "".join(text.split())


@dataclass(frozen=True)
class Result:
    """What a run of the command line did: its exit code and what it printed."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(*args: str) -> Result:
    """Run derive in-process with these arguments, as the console script would."""
    from generator.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # --help and --version end argparse's way
            code = e.code or 0
    return Result(code, out.getvalue(), err.getvalue())


def outputs(folder: Path) -> list[Path]:
    """Return a build folder's outputs, sorted, without the build's own record (generator.pipeline.build.CACHE)."""
    from generator.pipeline.build import CACHE

    return sorted(p for p in folder.iterdir() if p.name != CACHE)


def prose_words(markdown: str) -> int:
    """Count a Markdown document's words of prose: code blocks (Mermaid too) and display math left out;
    each inline formula and each code span counts as one word, and table cells count by their words."""
    text = re.sub(r"^```.*?^```", " ", markdown, flags=re.S | re.M)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"^\|(?:---\|)+$", " ", text, flags=re.M)  # a table's rule
    text = re.sub(r"\$[^$\n]+\$|`[^`\n]+`", " W ", text)
    text = re.sub(r"\\(.)", r"\1", text)  # Markdown escapes of the spec's text
    return sum(1 for token in text.split() if re.search(r"\w", token))


@dataclass(frozen=True)
class Word:
    """A word pdftotext found on a page: its box in points (y grows down) and its text."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str


@dataclass(frozen=True)
class Page:
    """A page of a PDF: its size in points and its words."""

    width: float
    height: float
    words: tuple[Word, ...]


PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', re.S)
WORD = re.compile(r'<word xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">(.*?)</word>', re.S)


def pdf_pages(path: Path) -> list[Page]:
    """Return each page's size and word boxes, as poppler's pdftotext -bbox reads them (an independent parser)."""
    import html

    result = subprocess.run(["pdftotext", "-bbox", "-enc", "UTF-8", str(path), "-"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [Page(float(width), float(height),
                 tuple(Word(*map(float, w[:4]), html.unescape(w[4])) for w in WORD.findall(body)))
            for width, height, body in PAGE.findall(result.stdout.decode("utf-8", errors="replace"))]
