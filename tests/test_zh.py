"""Chinese documents: the seed examples in Chinese, every sentence from the Chinese catalog, and the same
things said in the same order in Markdown and PDF, in both languages."""

from __future__ import annotations

import itertools
import re

import pytest

from generator.pipeline.build import derive_spec
from generator.pipeline.check import run
from generator.document.small import build_document
from generator.render.messages import Messages, _catalog
from generator.ops import REGISTRY
from generator.render.pdf import build_tex
from generator.render.formats import RENDERERS

from .helpers import invoke, GALLERY, pdf_text, squeeze

CHINESE_SEEDS = ["01_scalar_mean_zh", "02_vector_jacobian_zh"]
# Words that stay as they are in a Chinese document: names of software, functions and torch's own words.
UNTRANSLATED = {"PyTorch", "torch", "sympy", "relu", "clamp", "tanh", "sigmoid", "softmax", "log", "max", "min",
                "AccumulateGrad", "flowchart", "TD"}


def spec_of(stem: str):
    return next(p for p in GALLERY if p.stem == stem)


class TestChineseSeeds:
    @pytest.mark.parametrize("stem", CHINESE_SEEDS)
    def test_markdown_and_pdf_are_chinese(self, stem, gallery_build):
        """The Chinese seed examples' Markdown and PDF use the glossary's terms: 梯度, 雅可比矩阵, 链式法则."""
        md = (gallery_build / f"{stem}.md").read_text()
        text = pdf_text(gallery_build / f"{stem}.pdf")
        for term in ("梯度", "雅可比矩阵", "链式法则", "叶子节点", "计算图", "反向传播", "前向传播"):
            assert term in md
            assert term in text

    @pytest.mark.parametrize("stem", CHINESE_SEEDS)
    def test_pdf_has_torchs_numbers(self, stem, gallery_build):
        """The Chinese PDF shows x.grad as torch prints it (float32, computed here in torch)."""
        import torch

        graph = derive_spec(spec_of(stem)).graph
        grad = run(graph, dtype="float32").grads["x"]
        printed = str(torch.tensor(grad).reshape(graph.spec.inputs[0].value.shape))
        assert squeeze(printed) in squeeze(pdf_text(gallery_build / f"{stem}.pdf"))

    @pytest.mark.parametrize("stem", CHINESE_SEEDS)
    def test_no_english_sentence_is_left(self, stem, gallery_build):
        """Outside code, math and the picture's code block, a Chinese document has no English words."""
        md = (gallery_build / f"{stem}.md").read_text()
        prose = re.sub(r"```.*?```|\$\$.*?\$\$|\$[^$\n]+\$|`[^`\n]+`", " ", md, flags=re.S)
        prose = prose.split("\n", 3)[3]  # after the title and summary, which are the spec's own text
        assert set(re.findall(r"[A-Za-z]{2,}", prose)) <= UNTRANSLATED


class TestLanguageChoice:
    def test_lang_option_overrides_the_spec(self, tmp_path):
        """derive build --lang zh writes an English spec's document in Chinese."""
        result = invoke("build", str(spec_of("01_scalar_mean")), "--out", str(tmp_path), "--lang", "zh")
        assert result.exit_code == 0, result.output
        assert "## 反向传播" in (tmp_path / "01_scalar_mean.md").read_text()

    def test_unknown_lang_is_a_usage_error(self, tmp_path):
        """--lang names only languages with a catalog."""
        result = invoke("build", str(spec_of("01_scalar_mean")), "--out", str(tmp_path), "--lang", "fr")
        assert result.exit_code == 2
        assert "unknown language fr (allowed: en, zh)" in result.stderr


class TestCatalogs:
    def test_every_language_has_every_sentence(self):
        """The Chinese catalog has exactly the English catalog's keys."""
        assert Messages("zh").keys() == Messages("en").keys()

    def test_every_rule_name_is_translated(self):
        """Every differentiation rule an op can name has a Chinese name."""
        names = {op.rule_for(consts, same) for op in REGISTRY.values()
                 for consts in itertools.product((False, True), repeat=2) for same in (False, True)}
        assert names - set(_catalog("zh").get("rules") or {}) == set()

    @pytest.mark.parametrize(("spec", "lang"), [(p, lang) for p in GALLERY for lang in ("en", "zh")],
                             ids=[f"{p.stem}-{lang}" for p in GALLERY for lang in ("en", "zh")])
    def test_markdown_and_pdf_say_the_same_things_in_the_same_order(self, spec, lang, monkeypatch):
        """The Markdown template and the LaTeX builder ask the catalog for the same sentences, in the same order."""
        derivation = derive_spec(spec)
        document = build_document(derivation, stem=spec.stem, lang=lang)
        asked: list[str] = []
        real = Messages.__call__

        def traced(self, key, **params):
            asked.append(key)
            return real(self, key, **params)

        monkeypatch.setattr(Messages, "__call__", traced)
        RENDERERS["md"].render(document=document, derivation=derivation)
        markdown, asked[:] = list(asked), []
        build_tex(document)
        sentences = [k for k in markdown if not k.startswith("picture_") or k == "picture_intro"]
        assert sentences == [k for k in asked if not k.startswith("picture_") or k == "picture_intro"]
        assert len(sentences) > 20
