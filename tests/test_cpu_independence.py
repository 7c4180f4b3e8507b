"""Outputs do not depend on the CPU: numpy's SIMD kernels and OpenBLAS's cores pick other last bits."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from generator.floats import fmath

from .helpers import ROOT

# Each entry makes numpy or OpenBLAS take another kernel than this CPU's best, as an older CPU would.
KERNELS = {
    "best": {},
    "no AVX-512": {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"},
    "no AVX2, no AVX-512": {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"},
    "OpenBLAS Haswell": {"OPENBLAS_CORETYPE": "Haswell"},
    "OpenBLAS Prescott": {"OPENBLAS_CORETYPE": "Prescott"},
}
LARGE = [ROOT / "derivations" / "19_image_linear_layer.yaml", ROOT / "tests" / "large" / "linear_100.yaml"]


def build(spec, out, env) -> bytes:
    """Build a spec's JSON in a fresh interpreter with env's kernel choice; return its bytes."""
    full = {k: v for k, v in os.environ.items() if k not in ("NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE")}
    full.update(env)
    subprocess.run(
        [sys.executable, "-m", "generator", "build", str(spec), "--out", str(out), "--format", "json,md", "--force"],
        env=full, check=True, capture_output=True, timeout=300,
    )
    return (out / f"{spec.stem}.json").read_bytes() + (out / f"{spec.stem}.md").read_bytes()


class TestKernels:
    @pytest.mark.parametrize("spec", LARGE, ids=lambda p: p.stem)
    def test_large_examples_are_the_same_bytes_with_every_kernel(self, spec, tmp_path):
        """A large example's JSON and Markdown are byte-identical whichever SIMD or BLAS kernels run."""
        outputs = {name: build(spec, tmp_path / str(i), env) for i, (name, env) in enumerate(KERNELS.items())}
        assert len(set(outputs.values())) == 1, [name for name in outputs if outputs[name] != outputs["best"]]

    def test_functions_agree_with_correctly_rounded_values(self):
        """exp, log, sin, cos, tanh and pow are within one float64 ulp of mpmath's 50-digit values."""
        import mpmath

        mpmath.mp.dps = 50
        xs = np.random.default_rng(0).uniform(-20, 20, 300)
        for name, exact in [("exp", mpmath.exp), ("sin", mpmath.sin), ("cos", mpmath.cos), ("tanh", mpmath.tanh)]:
            got = getattr(fmath, name)(xs)
            want = np.array([float(exact(mpmath.mpf(float(x)))) for x in xs])
            assert np.all(np.abs(got - want) <= np.spacing(np.abs(want))), name
        pos = np.abs(xs) + 1e-3
        want = np.array([float(mpmath.log(mpmath.mpf(float(x)))) for x in pos])
        assert np.all(np.abs(fmath.log(pos) - want) <= np.spacing(np.abs(want)))
        want = np.array([float(mpmath.mpf(float(x)) ** mpmath.mpf(1.7)) for x in pos])
        assert np.all(np.abs(fmath.power(pos, 1.7) - want) <= np.spacing(np.abs(want)))

    def test_matmul_agrees_with_exact_sums(self):
        """matmul of every 1-d/2-d pairing is within a few ulps of exact fractions' sums."""
        from fractions import Fraction

        rng = np.random.default_rng(1)
        a, b, v = rng.standard_normal((3, 5)), rng.standard_normal((5, 2)), rng.standard_normal(5)
        for x, y in [(a, b), (a, v), (v, b), (v, v)]:
            got = fmath.matmul(x, y)
            x2, y2 = np.atleast_2d(x), y if y.ndim == 2 else y[:, None]
            exact = [[float(sum(Fraction(float(x2[i, k])) * Fraction(float(y2[k, j])) for k in range(5)))
                      for j in range(y2.shape[1])] for i in range(x2.shape[0])]
            assert got.shape == np.matmul(x, y).shape
            assert np.allclose(got.reshape(-1), np.array(exact).reshape(-1), rtol=1e-14, atol=1e-15)
