"""Seeded inputs: torch.manual_seed then randn, rand, randint, randperm, normal_ and uniform_, drawn without torch, equal torch's numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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


# (mean, std) of normal_ and (from, to) of uniform_: both as tutorials write them, and bounds whose x * scale + shift
# rounds alike fused (FMA) or not, so the numbers are the same on every CPU
FILLS = [("normal_", 0.0, 0.02), ("normal_", 0.0, 1.0), ("uniform_", -1.0, 1.0), ("uniform_", 0.0, 1.0)]
INTS = [(0, 10), (-3, 4), (5, 5 + 2**33)]  # randint's bounds: the last range needs 64 random bits
INT_SHAPES = [(1,), (7,), (3, 5)]


def _torch_fills(seed: int, dtype: str, shape: tuple[int, ...], capability: str | None = None) -> list[list]:
    """Return torch's normal_ and uniform_ numbers, in a child process when the CPU capability is forced."""
    code = ("import json, sys, torch\n"
            "seed, dtype, shape, fills = json.loads(sys.argv[1])\n"
            "torch.manual_seed(seed)\n"
            "print(json.dumps([getattr(torch.empty(shape, dtype=getattr(torch, dtype)), k)(a, b).reshape(-1).tolist()"
            " for k, a, b in fills]))\n")
    env = {**os.environ, **({"ATEN_CPU_CAPABILITY": capability} if capability else {})}
    out = subprocess.run([sys.executable, "-c", code, json.dumps([seed, dtype, list(shape), FILLS])], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _torch_uniform(seed: int, count: int, low: float, high: float, capability: str) -> list[float]:
    """Return torch's float32 uniform_(low, high) numbers with its kernels for this CPU capability."""
    code = ("import json, sys, torch\nseed, count, low, high = json.loads(sys.argv[1])\ntorch.manual_seed(seed)\n"
            "print(json.dumps(torch.empty(count).uniform_(low, high).tolist()))\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps([seed, count, low, high])], capture_output=True,
                         text=True, check=True, env={**os.environ, "ATEN_CPU_CAPABILITY": capability})
    return json.loads(out.stdout)


class TestFillsAndIntegers:
    @pytest.mark.parametrize(("seed", "dtype", "shape"), CASES, ids=[f"{s}-{d}-{'x'.join(map(str, sh)) or 'scalar'}"
                                                                      for s, d, sh in CASES])
    def test_normal_and_uniform_equal_torch(self, seed, dtype, shape):
        """normal_(mean, std) and uniform_(a, b) in a row: every number equals torch's bit for bit."""
        torch.manual_seed(seed)
        expected = [getattr(torch.empty(shape, dtype=getattr(torch, dtype)), kind)(a, b).reshape(-1).tolist()
                    for kind, a, b in FILLS]
        generator, n = Generator(seed), _count(shape)
        drawn = [(generator.normal_fill if kind == "normal_" else generator.uniform_fill)(n, a, b, dtype)
                 for kind, a, b in FILLS]
        assert drawn == expected

    @pytest.mark.parametrize("seed", SEEDS)
    def test_the_same_numbers_on_a_cpu_without_avx2(self, seed):
        """torch forced to its baseline kernels (no FMA) draws the numbers derive gives, as it does with this CPU's."""
        generator = Generator(seed)
        ours = [(generator.normal_fill if kind == "normal_" else generator.uniform_fill)(12, a, b, "float32")
                for kind, a, b in FILLS]
        assert _torch_fills(seed, "float32", (12,), "default") == ours == _torch_fills(seed, "float32", (12,))

    def test_bounds_that_round_apart_are_refused(self):
        """uniform_(-0.1, 0.3): torch's baseline and AVX2 kernels give different numbers, so derive refuses them."""
        assert _torch_uniform(3, 40, -0.1, 0.3, "default") != _torch_uniform(3, 40, -0.1, 0.3, "avx2")
        with pytest.raises(SeededError, match="fuse into one rounding .FMA. for some CPUs"):
            Generator(3).uniform_fill(40, -0.1, 0.3, "float32")

    @pytest.mark.parametrize("seed", SEEDS)
    @pytest.mark.parametrize("shape", INT_SHAPES, ids=lambda s: "x".join(map(str, s)))
    def test_randint_and_randperm_equal_torch(self, seed, shape):
        """randint over small, negative and 2**33-wide ranges, then randperm: torch's integers, in torch's order."""
        torch.manual_seed(seed)
        expected = [torch.randint(low, high, shape).reshape(-1).tolist() for low, high in INTS]
        expected.append(torch.randperm(_count(shape)).tolist())
        generator, n = Generator(seed), _count(shape)
        assert [generator.randint(n, low, high) for low, high in INTS] + [generator.randperm(n)] == expected


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


DRAWN = (ROOT / "derivations" / "59_minibatch_drawn_after_a_seed.py").read_text(encoding="utf-8")


class TestDrawnInTorchCode:
    def test_the_document_writes_the_draws_and_torch_agrees(self, tmp_path):
        """randint, randperm, normal_ and uniform_ are written back as drawn, and the run of that code agrees."""
        path = tmp_path / "drawn.py"
        path.write_text(DRAWN)
        assert invoke("check", str(path)).exit_code == 0
        assert invoke("build", str(path), "--out", str(tmp_path / "o")).exit_code == 0
        code = (tmp_path / "o" / "drawn.md").read_text()
        assert ("Y = torch.randint(0, 3, (4,))\nW = torch.empty(3, 3, dtype=torch.float64).normal_(0., 0.5)"
                ".requires_grad_()\nb = torch.empty(3, dtype=torch.float64).uniform_(-1., 1.).requires_grad_()\n"
                "ix = torch.randint(0, 6, (4,))\nperm = torch.randperm(4)\n") in code

    def test_the_values_are_torchs(self, tmp_path):
        """The leaves' values in the JSON equal the tensors torch makes from the same statements."""
        path = tmp_path / "drawn.py"
        path.write_text(DRAWN)
        assert invoke("build", str(path), "--out", str(tmp_path / "o"), "--format", "json").exit_code == 0
        values = json.loads((tmp_path / "o" / "drawn.json").read_text())["values"]
        torch.manual_seed(42)
        made = {"X": torch.randn(6, 3, dtype=torch.float64), "Y": torch.randint(0, 3, (4,)),
                "W": torch.empty(3, 3, dtype=torch.float64).normal_(0, 0.5),
                "b": torch.empty(3, dtype=torch.float64).uniform_(-1, 1), "ix": torch.randint(0, 6, (4,)),
                "perm": torch.randperm(4)}
        for name, tensor in made.items():
            assert [float(v) for v in _flat(values[name])] == tensor.reshape(-1).tolist(), name

    @pytest.mark.parametrize(("line", "message"), [
        ("w = torch.empty(3)", "torch.empty(...) whose values are whatever the memory held (allowed: torch.empty(...)"
                               ".normal_() or .uniform_(), or torch.zeros)"),
        ("w = torch.empty(3, requires_grad=True).normal_()",
         "normal_() on a tensor made with requires_grad=True, which torch refuses: a leaf that requires grad cannot"
         " change in place (allowed: torch.empty(3).normal_().requires_grad_())"),
        ("w = torch.empty(40).uniform_(-0.1, 0.3)",
         "uniform_'s number {first} is x * scale + shift, which compilers fuse into one rounding (FMA) for some CPUs and not"
         " for others, and here the two differ in the last bit (allowed: numbers that round alike either way, such as"
         " uniform_(-1, 1) or normal_(0, 0.02))"),
        ("w = torch.randint(0, 3, (2,), dtype=torch.float32)",
         "torch.randint(..., dtype=torch.float32) (allowed: int64, its default)"),
        ("w = torch.randn(3).normal_()", "normal_() on torch.randn(...) (allowed: on a new torch.empty, zeros or ones)"),
        ("w = torch.empty(3).normal_(0, 1).double()",
         ".double() after .normal_() (allowed: the dtype on torch.empty, such as torch.empty(3, dtype=torch.float64).normal_())"),
    ], ids=["empty", "requires-grad", "fma", "randint-float", "randn-filled", "cast-after"])
    def test_draws_torch_would_not_repeat_are_refused(self, tmp_path, line, message):
        """Each draw derive cannot give as torch gives it everywhere is refused at its line, saying what works."""
        path = tmp_path / "bad.py"
        path.write_text(f"import torch\n\ntorch.manual_seed(3)\n{line}\nx = torch.ones(3, requires_grad=True)\n"
                        "(x * 2).sum().backward()\n")
        if "{first}" in message:  # the first number torch's baseline and AVX2 kernels give differently
            default, avx2 = (_torch_uniform(3, 40, -0.1, 0.3, capability) for capability in ("default", "avx2"))
            message = message.format(first=next(i for i, (a, b) in enumerate(zip(default, avx2)) if a != b))
        result = invoke("check", str(path))
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == f"{path}:4: {message}"


def _flat(value):
    return [v for item in value for v in _flat(item)] if isinstance(value, list) else [value]


MINIBATCH = """\
import torch
import torch.nn.functional as F

torch.manual_seed(2147483647)
Xtr = torch.randn(10, 3, dtype=torch.float64)
Ytr = torch.randint(0, 3, (10,))
W = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
ix = torch.randint(0, Xtr.shape[0], (len(Xtr) - 5,))
Xb, Yb = Xtr[ix], Ytr[ix]
b = torch.zeros(Xtr.size(1), dtype=torch.float64, requires_grad=True)
loss = F.cross_entropy(Xb @ W + b, Yb)
loss.backward()
print(Yb)
print(W.grad)
"""


class TestMinibatchAsMakemoreDrawsIt:
    def test_targets_picked_by_the_same_indices_agree_with_torch(self, tmp_path):
        """Yb = Ytr[ix] (int64 by int64) and randint(0, Xtr.shape[0], ...) read as torch runs them; check agrees."""
        path = tmp_path / "minibatch.py"
        path.write_text(MINIBATCH)
        result = invoke("check", str(path))
        assert result.exit_code == 0, result.stderr
        assert invoke("build", str(path), "--out", str(tmp_path / "o"), "--format", "md,json").exit_code == 0
        assert "ix = torch.randint(0, 10, (5,))\nYb = Ytr[ix]\n" in (tmp_path / "o" / "minibatch.md").read_text()
        values = json.loads((tmp_path / "o" / "minibatch.json").read_text())["values"]
        torch.manual_seed(2147483647)
        Xtr, Ytr = torch.randn(10, 3, dtype=torch.float64), torch.randint(0, 3, (10,))
        torch.randn(3, 3, dtype=torch.float64)
        ix = torch.randint(0, 10, (5,))
        assert values["Yb"] == Ytr[ix].tolist() and values["ix"] == ix.tolist()

    @pytest.mark.parametrize(("line", "message"), [
        ("Yb = Ytr[ix2]", "index 12 is out of bounds for dimension 0 with size 10 (allowed: -10 to 9)"),
        ("ix = torch.randint(0, Xtr.shape[2], (2,))", "'Xtr.shape[2]': a dimension out of range (allowed: -2 to 1)"),
    ], ids=["out-of-bounds", "no-such-dim"])
    def test_what_torch_refuses_is_refused(self, tmp_path, line, message):
        """An index past the rows, or a size of a dimension the tensor lacks, is refused at its line as torch would."""
        path = tmp_path / "bad.py"
        path.write_text("import torch\n\ntorch.manual_seed(0)\nXtr = torch.randn(10, 3, dtype=torch.float64)\n"
                        "Ytr = torch.randint(0, 3, (10,))\nix2 = torch.tensor([1, 12])\n"
                        f"{line}\nx = torch.ones(3, dtype=torch.float64, requires_grad=True)\n(x * 2).sum().backward()\n")
        result = invoke("check", str(path))
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == f"{path}:7: {message}"
