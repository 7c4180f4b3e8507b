"""The beginner's path: 01 and 02 short enough to finish and still answering the eight questions, each idea
said once, the old template artefacts gone from the gallery, and a "check it yourself" that torch confirms."""

from __future__ import annotations

import re
import subprocess
from fractions import Fraction

import pytest

from generator.document.small import build_document
from generator.pipeline.build import derive_spec
from generator.render.flavor import inert

from .helpers import GALLERY, ROOT, prose_words

OUTPUT = ROOT / "output"
SEEDS = ["01_scalar_mean", "02_vector_jacobian"]
MAX_WORDS = 550
MAX_PAGES = 3


def markdown(stem: str) -> str:
    """Return a committed document's Markdown."""
    return (OUTPUT / f"{stem}.md").read_text(encoding="utf-8")


def prose(stem: str) -> str:
    """Return a committed document's Markdown with every run of white space as one space (as a reader sees it)."""
    return " ".join(markdown(stem).split())


def gallery_markdown() -> dict[str, str]:
    """Every committed Markdown document, by stem."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(OUTPUT.glob("*.md"))}


def spec_of(stem: str):
    return next(p for p in GALLERY if p.stem == stem)


def torch_error(code: str) -> str:
    """Run code in torch and return the message of the RuntimeError it raises."""
    import torch

    try:
        exec(code, {"torch": torch})
    except RuntimeError as error:
        return str(error)
    raise AssertionError("torch raised nothing")


def latex_numbers(tex: str) -> list[Fraction | float]:
    """Read the numbers of a LaTeX number or matrix the document printed: 6, -0.9, \\frac{3}{4}, \\infty, bmatrix cells."""
    found = re.findall(r"(-?)\\frac\{(\d+)\}\{(\d+)\}|(-?\d+(?:\.\d+)?)|(-?)\\infty",
                       tex.replace(r"\left(", "").replace(r"\right)", ""))
    return [Fraction(int(p), int(q)) * (-1 if sign else 1) if p else Fraction(plain) if plain else
            float("-inf" if minus else "inf") for sign, p, q, plain, minus in found]


class TestWordCounter:
    def test_counts_by_the_rule(self):
        """Code, Mermaid and display math are left out; an inline formula and a code span are one word each."""
        text = ("# A title\n\nTwo words $x_{ij} = 3$ and `code span`.\n\n```python\nx = 1\n```\n\n"
                "$$\nJ = \\begin{bmatrix} 1 \\end{bmatrix}\n$$\n\n| tensor | gradient |\n|---|---|\n| `x` | $4.5$ |\n")
        # A title (2) + Two words, formula, and, code (5) + tensor gradient (2) + two cells (2)
        assert prose_words(text) == 11


class TestSeedLength:
    @pytest.mark.parametrize("stem", SEEDS)
    def test_prose_within_550_words(self, stem):
        """01 and 02 (English) hold at most 550 words of prose (the old 01 had 696 by the same count)."""
        assert prose_words(markdown(stem)) <= MAX_WORDS

    @pytest.mark.parametrize("stem", SEEDS)
    def test_pdf_within_three_pages(self, stem):
        """01 and 02 (English) typeset on at most three pages (the old 01 took five)."""
        info = subprocess.run(["pdfinfo", str(OUTPUT / f"{stem}.pdf")], capture_output=True, text=True, timeout=60)
        pages = int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))
        assert pages <= MAX_PAGES


class TestEightAnswers:
    @pytest.mark.parametrize("stem", SEEDS)
    def test_what_v_is(self, stem):
        """v is named: 1 for a scalar output, the upstream gradient of some scalar L otherwise."""
        text = markdown(stem)
        if stem == "01_scalar_mean":
            assert r"$v = \frac{\partial \mathrm{out}}{\partial \mathrm{out}} = 1$" in text
        else:
            assert "**upstream gradient**" in text and inert(r"L = \sum_{i} v_{i} \, y_{i}") in text

    @pytest.mark.parametrize("stem", SEEDS)
    def test_why_a_non_scalar_output_needs_v(self, stem):
        """Both say why, and quote torch's own error for backward() on a non-scalar output."""
        message = torch_error("x = torch.ones(3, requires_grad=True)\n(x * 2).backward()")
        text = prose(stem)
        assert f"`RuntimeError: {message}`" in text
        assert ("holds $n$ numbers" in text) or ("one number per input" in text)

    @pytest.mark.parametrize("stem", SEEDS)
    def test_jacobian_vjp_and_jvp(self, stem):
        """J, its transpose in J^T v (reverse mode, VJP) and J u (forward mode, JVP), with torch's J u."""
        import torch
        from torch.autograd.functional import jvp

        text = markdown(stem)
        for words in ("**vector-Jacobian product** (VJP)", "**Jacobian-vector product** (JVP)", "**reverse mode**",
                      "**Forward mode**", "never builds $J$"):
            assert words in text
        if stem == "01_scalar_mean":
            x = torch.ones(2, 2, dtype=torch.float64)
            u = torch.zeros(2, 2, dtype=torch.float64)
            u[0, 0] = 1
            _, column = jvp(lambda a: ((a + 2) * (a + 2) * 3).mean(), x, u)
        else:
            x = torch.ones(3, dtype=torch.float64)
            u = torch.tensor([1.0, 0, 0], dtype=torch.float64)
            _, column = jvp(lambda a: a * 2, x, u)
        line = next(line for line in text.splitlines() if line.startswith("J u = "))
        assert latex_numbers(line.rsplit(" = ", 1)[1]) == [Fraction(float(c)) for c in column.reshape(-1)]

    @pytest.mark.parametrize("stem", SEEDS)
    def test_the_chain_rule_per_element(self, stem):
        """The leaf's step is upstream times local derivative, element by element, ending at torch's gradient."""
        import torch

        text = markdown(stem)
        if stem == "01_scalar_mean":
            x = torch.ones(2, 2, requires_grad=True)
            ((x + 2) * (x + 2) * 3).mean().backward()
            lhs = r"\frac{\partial \mathrm{out}}{\partial x_{ij}} = \frac{\partial \mathrm{out}}{\partial y_{ij}} \cdot \frac{\partial y_{ij}}{\partial x_{ij}}"
        else:
            x = torch.ones(3, requires_grad=True)
            (x * 2).backward(torch.tensor([0.1, 1.0, 0.0001]))
            lhs = r"\frac{\partial L}{\partial x_{0}} = \frac{\partial L}{\partial y_{0}} \cdot \frac{\partial y_{0}}{\partial x_{0}}"
        line = next(line for line in text.splitlines() if line.startswith(lhs))
        assert float(latex_numbers(line.rsplit(" = ", 1)[1])[0]) == pytest.approx(float(x.grad.reshape(-1)[0]))

    @pytest.mark.parametrize("stem", SEEDS)
    def test_accumulation_and_zeroing(self, stem):
        """Gradients accumulate, and zero_() resets them: said once."""
        text = markdown(stem)
        assert text.count("Gradients **accumulate**") == 1 and "`x.grad.zero_()`" in text

    @pytest.mark.parametrize("stem", SEEDS)
    def test_leaves_and_requires_grad_spreading(self, stem):
        """is_leaf as torch reports it for the input and a computed tensor, and how requires_grad spreads."""
        import torch

        x = torch.ones(3, requires_grad=True)
        y = x * 2
        text = prose(stem)
        assert f"`x.is_leaf` is `{x.is_leaf}`" in text and f"`y.is_leaf` is `{y.is_leaf}`" in text
        assert y.requires_grad and "`requires_grad` spreads" in text
        assert "`y.retain_grad()`" in text

    @pytest.mark.parametrize("stem", SEEDS)
    def test_torchs_value_at_a_kink(self, stem):
        """Neither example has a kink, so one sentence gives torch's convention, relu'(0) = 0 as torch computes it."""
        import torch

        a = torch.zeros((), requires_grad=True)
        torch.relu(a).backward()
        assert float(a.grad) == 0
        assert r"$\operatorname{relu}'(0) = 0$" in markdown(stem)

    def test_row_major_flattening(self):
        """01 flattens x in torch's storage order, and says that x_{01} is x[0][1]."""
        import torch

        order = torch.arange(4).reshape(2, 2).flatten().tolist()
        cells = "$, $".join(f"x_{{{k // 2}{k % 2}}}" for k in order)  # a formula per element, so a long tuple breaks
        text = prose("01_scalar_mean")
        assert f"row by row, as torch stores it ($x_{{01}}$ is `x[0][1]`): $({cells})$" in text


class TestSentencesGone:
    def test_no_false_elementwise_claim(self):
        """No document claims every operation works element by element; 01 names its mean as the exception."""
        docs = gallery_markdown()
        assert not [s for s, t in docs.items() if "every operation here works element by element" in t]
        assert "Every step but `out` works element by element, and `out` treats all elements alike" in prose("01_scalar_mean")

    def test_no_circular_first_step(self):
        """No equation writes d out/d z as d out/d out times d out/d z."""
        circular = re.compile(r"\\frac\{\\partial (\S+)\}\{\\partial \1\} \\cdot \\frac\{\\partial \1\}")
        assert not [s for s, t in gallery_markdown().items() if circular.search(t)]

    def test_second_call_needs_retain_graph(self):
        """07 says why the first call keeps the graph, with torch's own error for a second call without it."""
        message = torch_error("x = torch.tensor([1., 2.], requires_grad=True)\nout = (x ** 2).sum()\n"
                              "out.backward()\nout.backward()")
        first = "Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed)"
        assert message.startswith(first)
        assert f"`RuntimeError: {first}`" in prose("07_accumulation")

    def test_second_call_is_not_derived_again(self):
        """07's second call points back at the first instead of repeating every node."""
        second = markdown("07_accumulation").split("## Backward call 2", 1)[1].split("\n## ", 1)[0]
        assert "Same output, same starting gradient as call 1" in second
        assert "through `" not in second and "$$" not in second

    def test_index_example_only_for_tensors_of_two_dimensions(self):
        """'x_{01} is x[0][1]' names a tensor of the document that has two dimensions (not 02's, 04's, 05's x)."""
        example = re.compile(r"\$([A-Za-z]\w*)_\{01\}\$ is `\1\[0\]\[1\]`")
        for stem, text in gallery_markdown().items():
            shapes = {i.name: i.value.shape for i in derive_spec(spec_of(stem)).graph.spec.inputs}
            for name in example.findall(text):
                assert len(shapes[name]) == 2, (stem, name)

    def test_no_empty_partial(self):
        """No '∂L/∂ of every tensor' (English) nor '偏导数 ∂L/∂。' (Chinese)."""
        assert not [s for s, t in gallery_markdown().items() if r"\partial L / \partial$" in t]

    def test_jacobian_shown_once(self):
        """02 shows its Jacobian once (it was printed twice, as formulas and at the values, the same matrix)."""
        text = markdown("02_vector_jacobian")
        assert len(re.findall(r"(?m)^J = ", text)) == 1

    def test_no_flattening_of_a_scalar(self):
        """'Flatten b row by row' is said only of tensors with elements to flatten (06's b is a scalar)."""
        for stem, text in gallery_markdown().items():
            shapes = {i.name: i.value.shape for i in derive_spec(spec_of(stem)).graph.spec.inputs}
            for name in re.findall(r"Flatten `(\w+)` row by row", text):
                assert shapes[name], (stem, name)

    def test_each_idea_once_per_document(self):
        """'is not a leaf', 'never builds J', the graph's intro and 'Node by node' at most once per document."""
        for stem, text in gallery_markdown().items():
            if stem.endswith("_zh"):
                continue
            assert "is not a leaf" not in text and "Node by node" not in text
            assert text.count("`backward()` never builds $J$") <= 1, stem
            assert text.count("torch records each operation as a node") == 1, stem
            assert text.count("is_leaf` is `False`") <= 1, stem

    def test_accumulation_in_every_document(self):
        """Every English document says briefly that gradients accumulate and how to zero them."""
        for stem, text in gallery_markdown().items():
            if not stem.endswith("_zh"):
                assert "**accumulate**" in text and ".grad.zero_()" in text, stem

    @pytest.mark.parametrize("stem", ["01_scalar_mean_zh", "02_vector_jacobian_zh"])
    def test_chinese_reads_natively(self, stem):
        """The translated-sounding phrases the issue quotes are gone from the Chinese seeds."""
        text = markdown(stem)
        for phrase in ("只有输出只有一个元素时", "用过就丢掉", "的形状（", "形状 3", "一次算完", r"偏导数 $\partial L / \partial$"):
            assert phrase not in text


class TestCheckItYourself:
    @pytest.mark.parametrize("spec", GALLERY, ids=[p.stem for p in GALLERY])
    def test_torch_confirms_the_prediction(self, spec):
        """Running the document's code with the suggested change gives, in torch, the gradient the check predicts."""
        import torch

        derivation = derive_spec(spec)
        document = build_document(derivation, stem=spec.stem)
        check = document.check
        if check is None:  # a large tensor's gradients do not fit a sentence; another v would change later calls
            assert derivation.large or len(derivation.passes) > 1
            return
        lines = document.code.splitlines()
        if check.kind == "input":
            k = next(i for i, line in enumerate(lines) if line.startswith(f"{check.leaf} = "))
            new = latex_numbers(check.new)[0]
            lines.insert(k + 1, f"with torch.no_grad(): {check.leaf}.view(-1)[0] = {float(new)!r}")
        else:
            k = next(i for i, line in enumerate(lines) if ".backward(" in line)
            lines[k] = check.call
        scope = {"torch": torch}
        exec("\n".join(line for line in lines if not line.startswith("print(")), scope)
        got = scope[check.leaf].grad.reshape(-1).tolist()
        want = [float(v) for v in latex_numbers(check.result)]
        if check.kind == "input":  # what each call adds: the calls of the code add it that many times
            got, want = got[:1], [w * len(derivation.passes) for w in want]
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6)
