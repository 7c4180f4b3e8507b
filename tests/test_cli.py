"""The derive command: exit codes, exact messages, and what it writes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import sympy as sp

from generator import ops
from tests.helpers import FUNCS, invoke, outputs

SEED = Path(__file__).resolve().parent.parent / "derivations" / "01_scalar_mean.yaml"

BAD = """title: bad
inputs:
  x:
    value: [1, 2]
    requires_grad: true
steps:
  y: x.foo()
  z: x * 2
backward: z
"""

HOSTILE = """title: hostile
inputs:
  x:
    value: [1, 2]
    requires_grad: true
steps:
  y: __import__('pathlib').Path('{sentinel}').write_text('ran')
backward: y
"""


NO_GRAD = """title: no grad
inputs:
  x:
    value: [0.5, 1.5]
  w:
    value: [2, -1]
    requires_grad: true
steps:
  y: x.sin()
  out: (w * y).sum()
backward: out
"""


class TestBuild:
    def test_builds_markdown_and_json(self, tmp_path):
        """A good spec gives <out>/<stem>.md and .json and a closing summary."""
        result = invoke("build", str(SEED), "--out", str(tmp_path), "--format", "md,json")
        assert result.exit_code == 0, result.output
        assert result.stdout == "1 built, 0 failed\n"
        assert [p.name for p in outputs(tmp_path)] == ["01_scalar_mean.json", "01_scalar_mean.md"]

    def test_folder_builds_every_spec_in_it(self, specs_dir, tmp_path):
        """A folder argument builds each .yaml/.yml file in it."""
        (specs_dir / "a.yaml").write_bytes(SEED.read_bytes())
        (specs_dir / "b.yml").write_bytes(SEED.read_bytes())
        (specs_dir / "notes.txt").write_text("not a spec")
        out = tmp_path / "out"
        result = invoke("build", str(specs_dir), "--out", str(out))
        assert result.exit_code == 0
        assert [p.name for p in outputs(out)] == ["a.md", "b.md"]

    def test_invalid_spec_reports_every_problem_and_others_still_build(self, specs_dir, tmp_path):
        """One line per problem with file:line, exit 1, nothing written for it, the good spec built."""
        bad = specs_dir / "bad.yaml"
        bad.write_text(BAD)
        (specs_dir / "good.yaml").write_bytes(SEED.read_bytes())
        out = tmp_path / "out"
        result = invoke("build", str(specs_dir), "--out", str(out))
        assert result.exit_code == 1
        assert result.stderr == (
            f"{bad}:7: step 'y': unknown function 'foo' (allowed: {FUNCS})\n"
            f"{bad}:9: backward 'z': the output has shape [2], so torch needs a gradient (grad can be implicitly"
            " created only for scalar outputs) (allowed: {output: z, gradient: <values of shape [2]>})\n"
            "1 built, 1 failed\n"
        )
        assert "Traceback" not in result.output
        assert [p.name for p in outputs(out)] == ["good.md"]

    def test_code_in_a_spec_never_runs(self, specs_dir, tmp_path):
        """An expression that tries to import and write a file is refused, and the file never appears."""
        sentinel = tmp_path / "pwned"
        spec = specs_dir / "hostile.yaml"
        spec.write_text(HOSTILE.format(sentinel=sentinel))
        out = tmp_path / "out"
        result = invoke("build", str(spec), "--out", str(out))
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == (
            f"{spec}:7: step 'y': unknown function 'write_text' (allowed: {FUNCS})"
        )
        assert not sentinel.exists()
        assert not out.exists()

    def test_unknown_format_is_a_usage_error(self, tmp_path):
        """--format names only known formats."""
        result = invoke("build", str(SEED), "--out", str(tmp_path), "--format", "md,docx")
        assert result.exit_code == 2
        assert result.stderr == (
            "derive build: argument --format: unknown format docx (allowed: md, json, tex, pdf, html, ipynb) (see derive build --help)\n"
        )

    def test_missing_path(self, tmp_path):
        """A path that does not exist is one line and exit 1."""
        result = invoke("build", str(tmp_path / "nope.yaml"))
        assert result.exit_code == 1
        assert result.stderr == f"{tmp_path / 'nope.yaml'}: no such file or folder\n"

    def test_folder_without_specs(self, specs_dir):
        """An empty folder says there is nothing to build."""
        result = invoke("build", str(specs_dir))
        assert result.exit_code == 1
        assert result.stderr == "no spec files found (allowed: .yaml, .yml or .py files)\n"


class TestCheck:
    def test_agreement(self):
        """A correct spec agrees with torch."""
        result = invoke("check", str(SEED))
        assert result.exit_code == 0
        assert result.stdout == "1 agree with torch, 0 failed\n"

    def test_disagreement_is_a_readable_diff(self, monkeypatch):
        """With a wrong local derivative, check names every number that differs and exits 1."""
        wrong = dataclasses.replace(ops.REGISTRY["add"], df=(lambda a, b, o: sp.Integer(2), lambda a, b, o: sp.Integer(1)))
        monkeypatch.setitem(ops.REGISTRY, "add", wrong)
        result = invoke("check", str(SEED))
        assert result.exit_code == 1
        lines = result.stderr.splitlines()
        assert f"{SEED}: x.grad[0,0]: derived 9.0, torch 4.5" in lines
        assert lines[-1] == "0 agree with torch, 1 failed"

    def test_printed_block_torch_does_not_print(self, monkeypatch, specs_dir):
        """A block other than what its code prints in torch is one line naming the first differing line, exit 1."""
        from generator.document import small

        spec = specs_dir / "seed.yaml"
        spec.write_bytes(SEED.read_bytes())
        honest = small.printed
        monkeypatch.setattr(small, "printed", lambda *a, **kw: honest(*a, **kw).replace("4.5000,", "4.5001,"))
        result = invoke("check", str(spec))
        assert result.exit_code == 1
        assert result.stderr == (
            f"{spec}: printed line 1 (print(x.grad)): predicted 'tensor([[4.5001, 4.5000],',"
            " torch 'tensor([[4.5000, 4.5000],'\n"
            "0 agree with torch, 1 failed\n"
        )

    def test_grad_fn_torch_does_not_record(self, monkeypatch, specs_dir):
        """A grad_fn the document names where torch records none is one line per tensor, exit 1."""
        from generator.graph.model import Node

        spec = specs_dir / "nograd.yaml"
        spec.write_text(NO_GRAD)
        monkeypatch.setattr(Node, "tracked", property(lambda node: node.op is not None))  # as before the fix
        result = invoke("check", str(spec))
        assert result.exit_code == 1
        assert result.stderr == (
            f"{spec}: y: the document says grad_fn=SinBackward0, requires_grad=False, is_leaf=False;"
            " torch grad_fn=None, requires_grad=False, is_leaf=True\n"
            "0 agree with torch, 1 failed\n"
        )

    def test_without_torch(self, monkeypatch):
        """Without torch installed, one line says how to install it."""
        monkeypatch.setitem(sys.modules, "torch", None)
        result = invoke("check", str(SEED))
        assert result.exit_code == 3
        assert result.stderr == "derive check needs PyTorch, which is not installed: pip install torch==2.13.0\n"


def test_help_lists_the_commands():
    """derive --help names build and check."""
    result = invoke("--help")
    assert result.exit_code == 0
    assert "build" in result.stdout and "check" in result.stdout


def test_option_lists_match_the_loader():
    """The CLI's own lists of languages and flavors (kept so --help loads no YAML library) are the loader's."""
    from generator import cli
    from generator.spec import load

    assert cli.LANGS == load.LANGS and cli.FLAVORS == load.FLAVORS


def test_version():
    """derive --version prints the version."""
    from generator import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout == f"derive, version {__version__}\n"


def test_bug_is_one_line_and_exit_70(monkeypatch, tmp_path):
    """An unexpected exception of ours is one line and exit code 70, never a traceback."""
    from generator.pipeline import build

    def broken(*args, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(build, "find_specs", broken)
    result = invoke("build", str(SEED), "--out", str(tmp_path))
    assert result.exit_code == 70
    assert result.stderr == "derive: internal error (RuntimeError: boom); please report it\n"


def test_a_reader_that_stops_reading_ends_derive_quietly():
    """`derive schema | head`: a closed pipe is exit 141 with nothing on stderr, not an internal error."""
    proc = subprocess.Popen([sys.executable, "-m", "generator", "schema"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    proc.stdout.close()  # before derive writes a byte
    err = proc.stderr.read()
    proc.stderr.close()
    assert (proc.wait(), err) == (141, b"")
