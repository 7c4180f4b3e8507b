"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def specs_dir(tmp_path: Path) -> Path:
    """Return an empty folder for spec files."""
    d = tmp_path / "specs"
    d.mkdir()
    return d
