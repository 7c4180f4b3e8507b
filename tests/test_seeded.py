"""Seeded inputs: torch.manual_seed then torch.randn and torch.rand, drawn without torch, equal torch's numbers."""

from __future__ import annotations

import pytest
import torch

from generator.spec.seeded import Generator, SeededError

from .helpers import ROOT, invoke

SEEDS = [0, 1, 42, 2**31 + 5, 123456789]
# float32 normals for 16 or more elements come from CPU-chosen vector code: those are refused, so its shapes stay small
SHAPES = {"float32": [(), (3,), (3, 5)], "float64": [(), (3, 7), (4, 8)]}
CASES = [(seed, dtype, shape) for seed in SEEDS for dtype, shapes in SHAPES.items() for shape in shapes]


def _count(shape: tuple[int, ...]) -> int:
    n = 1
    for size in shape:
        n *= size
    return n


class TestDraws:
    @pytest.mark.parametrize(("seed", "dtype", "shape"), CASES, ids=[f"{s}-{d}-{'x'.join(map(str, sh)) or 'scalar'}"
                                                                      for s, d, sh in CASES])
    def test_numbers_equal_torch(self, seed, dtype, shape):
        """randn, rand, randn again after one seed: every number equals torch's bit for bit (the cached normal too)."""
        torch.manual_seed(seed)
        kind = getattr(torch, dtype)
        expected = [torch.randn(shape, dtype=kind), torch.rand(shape, dtype=kind), torch.randn(shape, dtype=kind)]
        generator, n = Generator(seed), _count(shape)
        drawn = [generator.randn(n, dtype), generator.rand(n, dtype), generator.randn(n, dtype)]
        assert drawn == [t.reshape(-1).tolist() for t in expected]

    def test_a_different_seed_gives_other_numbers(self):
        """The comparison above can fail: seed 1's numbers are not seed 0's."""
        torch.manual_seed(0)
        assert Generator(1).randn(3, "float64") != torch.randn(3, dtype=torch.float64).tolist()

    def test_float32_blocks_are_refused(self):
        """16 or more float32 normals: torch's numbers depend on the CPU, so derive says so instead of guessing."""
        with pytest.raises(SeededError, match="here 16.*differ between machines"):
            Generator(0).randn(16, "float32")


SPEC = """\
title: seeded inputs
seed: 7
inputs:
  x:
    randn: [3]
    requires_grad: true
  w:
    rand: [2, 3]
steps:
  y: (w @ x).tanh()
  out: y.sum()
backward: out
"""

# PyTorch's autograd tutorial's first example, with torch.manual_seed(0) in front (a gallery page)
TUTORIAL = (ROOT / "derivations" / "47_tutorial_randn_weights.py").read_text(encoding="utf-8")


class TestSpecs:
    def test_yaml_inputs_drawn_agree_with_torch(self, tmp_path):
        """A YAML spec's randn and rand inputs: derive check runs the document's code (manual_seed, randn) and agrees."""
        path = tmp_path / "seeded.yaml"
        path.write_text(SPEC)
        result = invoke("check", str(path))
        assert (result.exit_code, result.stdout) == (0, "1 agree with torch, 0 failed\n"), result.stderr
        assert invoke("build", str(path), "--out", str(tmp_path / "o")).exit_code == 0
        code = (tmp_path / "o" / "seeded.md").read_text()
        assert "torch.manual_seed(7)\nx = torch.randn(3, requires_grad=True)\nw = torch.rand(2, 3)\n" in code

    def test_tutorial_code_with_a_seed_agrees_with_torch(self, tmp_path):
        """PyTorch's autograd tutorial, with torch.manual_seed(0) added, is read and checked."""
        path = tmp_path / "tutorial.py"
        path.write_text(TUTORIAL)
        result = invoke("check", str(path))
        assert (result.exit_code, result.stdout) == (0, "1 agree with torch, 0 failed\n"), result.stderr

    def test_randn_without_a_seed_is_refused(self, tmp_path):
        """Without torch.manual_seed the numbers are unknown: the message says what to add."""
        path = tmp_path / "unseeded.py"
        text = TUTORIAL.replace("torch.manual_seed(0)\n", "")
        path.write_text(text)
        line = text.splitlines().index("w = torch.randn(5, 3, requires_grad=True)") + 1
        result = invoke("check", str(path))
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == (
            f"{path}:{line}: torch.randn without torch.manual_seed before it, so its numbers are not known"
            " (allowed: torch.manual_seed(0) first, as tutorials do)")

    def test_a_second_seed_is_refused(self, tmp_path):
        """One seed before the draws: a second would need the generator's state between them."""
        path = tmp_path / "twice.py"
        path.write_text(TUTORIAL.replace("b = torch.randn", "torch.manual_seed(1)\nb = torch.randn"))
        result = invoke("check", str(path))
        assert result.exit_code == 1
        assert "a second torch.manual_seed, or one after random tensors" in result.stderr.splitlines()[0]

    def test_yaml_randn_needs_the_seed(self, tmp_path):
        """A YAML randn input without the spec's seed is a spec error at the input."""
        path = tmp_path / "noseed.yaml"
        path.write_text(SPEC.replace("seed: 7\n", ""))
        result = invoke("check", str(path))
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == (
            f"{path}:3: inputs.x: randn needs the spec's seed (allowed: seed: an integer at the top of the spec,"
            " as torch.manual_seed(seed) before the inputs)")
