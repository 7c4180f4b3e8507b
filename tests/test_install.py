"""A plain, non-editable `pip install .` carries the templates and builds the same documents."""

from __future__ import annotations

import os
import subprocess
import sys

from .helpers import ROOT


def test_plain_install_builds_the_seed_example(tmp_path):
    """Installed into a bare folder, the package finds its templates and reproduces output/."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(ROOT)],
        check=True, capture_output=True, timeout=600,
    )
    assert (target / "generator" / "templates" / "document.md.j2").is_file()
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-m", "generator", "build", str(ROOT / "derivations" / "01_scalar_mean.yaml"),
         "--out", str(out), "--format", "md,json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for name in ("01_scalar_mean.md", "01_scalar_mean.json"):
        assert (out / name).read_bytes() == (ROOT / "output" / name).read_bytes()
