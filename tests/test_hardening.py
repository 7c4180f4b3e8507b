"""Runaway, broken and hostile specs: budgets, atomic writes, escaping, reproducible bytes."""

from __future__ import annotations

import os
import subprocess
import sys


from generator.pipeline import build as build_module
from generator.pipeline import isolate

from .helpers import GALLERY, ROOT, invoke, outputs

SEED = ROOT / "derivations" / "01_scalar_mean.yaml"

# Small enough (64 elements) to be derived exactly, element by element, which takes seconds here.
SLOW = """title: slow
inputs:
  x:
    fill: 0.5
    shape: [8, 8]
    requires_grad: true
steps:
  y: x @ x @ x @ x @ x @ x @ x @ x
  out: y.sum()
backward: out
"""




class TestBudget:
    def test_runaway_spec_times_out_and_the_others_build(self, specs_dir, tmp_path):
        """A spec over its time budget fails with one line; the next spec still builds."""
        slow = specs_dir / "a_slow.yaml"
        slow.write_text(SLOW)
        (specs_dir / "b_good.yaml").write_bytes(SEED.read_bytes())
        out = tmp_path / "out"
        result = invoke("build", str(specs_dir), "--out", str(out), "--timeout", "0.5")
        assert result.exit_code == 1
        assert result.stderr == (
            f"{slow}: took longer than 0.5 s to derive (allowed: --timeout SECONDS to give it more)\n1 built, 1 failed\n"
        )
        assert [p.name for p in outputs(out)] == ["b_good.md"]

    def test_memory_hog_fails_with_a_message(self, monkeypatch, tmp_path):
        """Work that allocates past the memory limit fails with one line, not a crash."""
        monkeypatch.setattr(isolate, "MEMORY_LIMIT", 512 * 1024**2)
        monkeypatch.setattr(build_module, "render_spec", lambda *a: bytearray(8 * 1024**3))
        outcome = build_module.build_spec(SEED, out=tmp_path, formats=("md",))
        assert outcome.errors == (
            f"{SEED}: needs more than 0.5 GiB of memory to derive (allowed: smaller tensors or fewer steps)",
        )

    def test_internal_errors_are_one_line(self, monkeypatch, tmp_path):
        """A bug of ours surfaces as one line naming the spec, never a traceback."""

        def broken(*args):
            raise KeyError("boom")

        monkeypatch.setattr(build_module, "render_spec", broken)
        outcome = build_module.build_spec(SEED, out=tmp_path, formats=("md",))
        (line,) = outcome.errors
        assert line.startswith(f"{SEED}: internal error (KeyError: 'boom' at broken:")
        assert line.endswith("); please report it")

    def test_a_parent_that_ran_torch_threads_still_checks(self):
        """derive check called from a process whose torch already used its thread pool agrees, within the budget."""
        import torch

        assert torch.get_num_threads() > 1 or os.cpu_count() == 1
        assert float(torch.ones(10**6).exp().sum()) > 0  # OpenMP's workers start here, in the parent
        assert build_module.check_spec(ROOT / "derivations" / "47_tutorial_randn_weights.py").errors == ()


class TestNothingIsLost:
    def test_failed_rebuild_leaves_the_earlier_output(self, specs_dir, tmp_path):
        """When a spec breaks, its earlier output stays byte-identical."""
        spec = specs_dir / "example.yaml"
        spec.write_bytes(SEED.read_bytes())
        out = tmp_path / "out"
        assert invoke("build", str(spec), "--out", str(out), "--format", "md,json").exit_code == 0
        before = {p.name: p.read_bytes() for p in outputs(out)}
        spec.write_text(SEED.read_text().replace("z.mean()", "z.mean(("))
        assert invoke("build", str(spec), "--out", str(out), "--format", "md,json").exit_code == 1
        assert {p.name: p.read_bytes() for p in outputs(out)} == before

    def test_interrupted_write_leaves_no_partial_file(self, tmp_path, monkeypatch):
        """A write that fails midway leaves the old file and no temporary file."""
        target = tmp_path / "doc.md"
        target.write_bytes(b"old")

        def fail(*args):
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", fail)
        try:
            build_module.write_atomic(target, b"new contents")
        except OSError:
            pass
        assert target.read_bytes() == b"old"
        assert [p.name for p in tmp_path.iterdir()] == ["doc.md"]

    def test_outputs_stay_inside_out(self, tmp_path):
        """A spec reached through ../ still writes only <out>/<stem>.<ext>."""
        nested = tmp_path / "a" / "b"
        nested.mkdir(parents=True)
        (tmp_path / "a" / "spec.yaml").write_bytes(SEED.read_bytes())
        out = tmp_path / "out"
        result = invoke("build", str(nested / ".." / "spec.yaml"), "--out", str(out))
        assert result.exit_code == 0
        assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
            "a/spec.yaml", "out/.derive-cache.json", "out/spec.md",
        ]


class TestEscaping:
    def test_markup_in_text_shows_literally(self, specs_dir, tmp_path):
        """HTML, Markdown, math and fences in a title or summary come out as text."""
        text = SEED.read_text()
        text = text.replace(
            'title: "Scalar output: out = mean(3(x + 2)²)"',
            "title: \"<script>alert(1)</script> *bold* $x$ ``` [a](http://x) # h\"",
        )
        spec = specs_dir / "markup.yaml"
        spec.write_text(text)
        out = tmp_path / "out"
        assert invoke("build", str(spec), "--out", str(out)).exit_code == 0
        first = (out / "markup.md").read_text().splitlines()[0]
        assert first == (
            r"# &lt;script&gt;alert&#40;1&#41;&lt;/script&gt; \*bold\* `` $ ``x`` $ `` &#96;&#96;&#96; &#91;a&#93;&#40;http://x&#41; \# h"
        )


class TestReproducible:
    def test_same_spec_same_bytes_across_processes(self, tmp_path):
        """Two builds in fresh processes with different hash seeds give identical files."""
        built = []
        for seed in ("1", "2"):
            out = tmp_path / seed
            env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
            subprocess.run(
                [sys.executable, "-m", "generator", "build", str(ROOT / "derivations"), "--out", str(out),
                 "--format", "md,json"],
                check=True, env=env, capture_output=True, timeout=600,
            )
            built.append({p.name: p.read_bytes() for p in outputs(out)})
        assert built[0] == built[1]
        assert len(built[0]) == 2 * len(GALLERY)
