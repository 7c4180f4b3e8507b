"""Rebuilds: skipped when nothing changed, parallel builds independent of -j, a progress bar on terminals only,
and a start that loads none of the heavy libraries when there is nothing to do."""

from __future__ import annotations

import io
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generator.pipeline import build as build_module
from generator.render import pdf as pdf_module
from generator.pipeline.build import CACHE, build_specs
from generator.cli import Progress
from tests.helpers import GALLERY, ROOT, invoke, outputs

SEED = ROOT / "derivations" / "01_scalar_mean.yaml"


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """Count derivations and TeX runs; the build's children append to a file the test reads."""
    log = tmp_path / "calls.log"
    render, compile_pdf = build_module.render_spec, pdf_module.compile_pdf

    def counting_render(*args, **kw):
        with log.open("a") as f:
            f.write("derive\n")
        return render(*args, **kw)

    def counting_compile(*args, **kw):
        with log.open("a") as f:
            f.write("latex\n")
        return compile_pdf(*args, **kw)

    monkeypatch.setattr(build_module, "render_spec", counting_render)
    monkeypatch.setattr(pdf_module, "compile_pdf", counting_compile)

    def calls() -> list[str]:
        found = log.read_text().split() if log.exists() else []
        log.unlink(missing_ok=True)
        return sorted(found)

    return calls


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "specs" / "seed.yaml"
    path.parent.mkdir()
    path.write_bytes(SEED.read_bytes())
    return path


def _build(spec: Path, out: Path, *extra: str):
    return invoke("build", str(spec), "--out", str(out), "--format", "md,pdf", *extra)


class TestSkipping:
    def test_rebuild_with_nothing_changed_derives_nothing_and_runs_no_tex(self, counted, spec, tmp_path):
        """The second build of an unchanged spec does no derivation and no LaTeX run, and says so."""
        out = tmp_path / "out"
        assert _build(spec, out).exit_code == 0
        assert counted() == ["derive", "latex"]
        before = {p.name: p.read_bytes() for p in outputs(out)}
        result = _build(spec, out)
        assert result.exit_code == 0 and result.stdout == "0 built, 1 up to date, 0 failed\n"
        assert counted() == []
        assert {p.name: p.read_bytes() for p in outputs(out)} == before

    def test_force_rebuilds(self, counted, spec, tmp_path):
        """--force derives and compiles again."""
        out = tmp_path / "out"
        _build(spec, out)
        counted()
        assert _build(spec, out, "--force").stdout == "1 built, 0 failed\n"
        assert counted() == ["derive", "latex"]

    def test_changed_spec_is_rebuilt(self, counted, spec, tmp_path):
        """A change to the spec's content (not its time stamp) rebuilds it."""
        out = tmp_path / "out"
        _build(spec, out)
        counted()
        os.utime(spec, (0, 0))  # an old time stamp, and the same content: still fresh
        _build(spec, out)
        assert counted() == []
        spec.write_text(spec.read_text().replace("fill: 1", "fill: 2"))
        _build(spec, out)
        assert counted() == ["derive", "latex"]

    def test_changed_template_is_rebuilt(self, counted, spec, tmp_path, monkeypatch):
        """A change to the templates or the code (their hash) rebuilds everything."""
        out = tmp_path / "out"
        _build(spec, out)
        counted()
        files = build_module.package_files()
        changed = [(name, data + b"\n") if name.endswith("document.md.j2") else (name, data) for name, data in files]
        monkeypatch.setattr(build_module, "package_files", lambda: changed)
        monkeypatch.setattr(build_module, "package_signature", lambda: "a file's size or time changed")
        monkeypatch.setattr(build_module, "_TOOL", [])
        _build(spec, out)
        assert counted() == ["derive", "latex"]

    def test_the_package_hash_is_recorded_and_trusted_while_no_file_changes(self, counted, spec, tmp_path,
                                                                            monkeypatch):
        """The record keeps the package's content hash beside its files' sizes and times, and reuses it while they
        stay; a rewritten output (new inode and time) is hashed again before it is trusted."""
        out = tmp_path / "out"
        monkeypatch.setattr(build_module, "_TOOL", [])
        _build(spec, out)
        record = json.loads((out / CACHE).read_text())
        assert record["/tool"]["hash"] == build_module._tool_hash()
        monkeypatch.setattr(build_module, "_TOOL", [])
        monkeypatch.setattr(build_module, "package_files", lambda: [("generator/x.py", b"other code")])
        _build(spec, out)  # sizes and times as recorded: the recorded hash stands, nothing is rebuilt
        (out / "seed.md").write_bytes((out / "seed.md").read_bytes())  # the same bytes, written anew
        _build(spec, out)
        assert counted() == ["derive", "latex"]

    def test_other_options_or_missing_outputs_rebuild(self, counted, spec, tmp_path):
        """Other options, or a deleted or altered output, rebuild the spec."""
        out = tmp_path / "out"
        _build(spec, out)
        counted()
        _build(spec, out, "--lang", "zh")
        assert counted() == ["derive", "latex"]
        (out / "seed.pdf").unlink()
        _build(spec, out, "--lang", "zh")
        assert counted() == ["derive", "latex"]
        (out / "seed.md").write_text("edited by hand")
        _build(spec, out, "--lang", "zh")
        assert counted() == ["derive", "latex"]

    def test_failed_spec_is_tried_again(self, counted, tmp_path):
        """A spec that fails is not recorded, so the next build tries it again."""
        bad = tmp_path / "bad.yaml"
        bad.write_text("title: bad\ninputs:\n  x:\n    value: 1\nsteps:\n  y: x.foo()\nbackward: y\n")
        out = tmp_path / "out"
        assert _build(bad, out).exit_code == 1
        assert _build(bad, out).exit_code == 1
        assert counted() == ["derive", "derive"]

    def test_record_is_json_in_the_output_folder(self, spec, tmp_path):
        """The record names each spec's hash and the sha256 of each output's bytes."""
        out = tmp_path / "out"
        _build(spec, out)
        record = json.loads((out / CACHE).read_text())
        assert set(record) - {"/tool"} == {"seed"}
        assert record["seed"]["files"] == {"seed.md": hashlib.sha256((out / "seed.md").read_bytes()).hexdigest(),
                                           "seed.pdf": hashlib.sha256((out / "seed.pdf").read_bytes()).hexdigest()}


class TestParallel:
    def test_output_is_independent_of_jobs(self, tmp_path):
        """-j 1 and -j 3 write the same bytes and report in the same order."""
        results = {}
        for jobs in ("1", "3"):
            out = tmp_path / jobs
            result = invoke("build", str(ROOT / "derivations"), "--out", str(out), "--format", "md,json", "-j", jobs)
            results[jobs] = (result.exit_code, result.stdout, {p.name: p.read_bytes() for p in outputs(out)})
        assert results["1"] == results["3"]
        assert len(results["1"][2]) == 2 * len(GALLERY)

    def test_output_is_independent_of_the_other_specs(self, tmp_path):
        """A spec built alone and built after others (with the warm-up that comes with them) has the same bytes."""
        spec = ROOT / "derivations" / "14_reductions_along_dims.yaml"
        alone = build_specs([spec], out=tmp_path / "alone", formats=("md", "json"))
        together = build_specs([*GALLERY[:3], spec], out=tmp_path / "together", formats=("md", "json"))
        assert all(o.ok for o in alone + together)
        for name in ("14_reductions_along_dims.md", "14_reductions_along_dims.json"):
            assert (tmp_path / "alone" / name).read_bytes() == (tmp_path / "together" / name).read_bytes()

    def test_outcomes_keep_the_order_given(self, tmp_path):
        """build_specs returns outcomes in the order of its paths, whatever order they finish in."""
        specs = list(reversed(GALLERY[:5]))
        outcomes = build_specs(specs, out=tmp_path, formats=("md",), jobs=2)
        assert [o.path for o in outcomes] == specs and all(o.ok for o in outcomes)

    def test_bad_jobs_is_a_usage_error(self, tmp_path):
        """-j takes a positive number."""
        result = invoke("build", str(SEED), "--out", str(tmp_path), "-j", "0")
        assert result.exit_code == 2
        assert result.stderr == "derive build: argument -j/--jobs: 0 is not a number of jobs (allowed: 1 or more)" \
                                " (see derive build --help)\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestProgress:
    def test_bar_on_a_terminal(self):
        """On a terminal, each finished spec redraws one line; closing clears it."""
        stream = _Terminal()
        bar = Progress(4, stream=stream)
        for path in GALLERY[:4]:
            bar(build_module.Outcome(path))
        bar.close()
        text = stream.getvalue()
        assert text.count("\r[") == 4 and "[" + "#" * Progress.WIDTH + "] 4/4" in text
        assert text.endswith("\r")

    def test_silent_otherwise(self):
        """Not a terminal, or a single spec: nothing at all."""
        for stream, total in ((io.StringIO(), 4), (_Terminal(), 1)):
            bar = Progress(total, stream=stream)
            bar(build_module.Outcome(SEED))
            bar.close()
            assert stream.getvalue() == ""


HEAVY = ("torch", "sympy", "pylatex", "numpy", "jinja2", "ruamel")


def _loaded(args: list[str], cwd: Path) -> list[str]:
    """Run the CLI in a fresh interpreter; return the heavy libraries it loaded."""
    code = (
        "import sys\nfrom generator.cli import main\ncode = 0\n"
        f"try:\n    code = main({args!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\nsys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1].replace("'", '"'))


class TestFastStart:
    def test_help_loads_no_heavy_library(self, tmp_path):
        """derive --help imports none of torch, sympy, pylatex, numpy, jinja2, ruamel."""
        assert _loaded(["--help"], tmp_path) == []

    def test_noop_build_loads_no_heavy_library(self, spec, tmp_path):
        """A build with nothing to do imports none of them either (the first build does)."""
        args = ["build", str(spec), "--out", str(tmp_path / "out"), "--format", "md,json"]
        assert "sympy" in _loaded(args, tmp_path)
        assert _loaded(args, tmp_path) == []
