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


@pytest.fixture(scope="session")
def gallery_build(tmp_path_factory) -> Path:
    """Build every gallery spec into every format once per session (a PDF takes a few seconds)."""
    from generator.pipeline.build import FORMATS, build_spec

    from .helpers import GALLERY

    out = tmp_path_factory.mktemp("gallery")
    failures = [line for spec in GALLERY for line in build_spec(spec, out=out, formats=FORMATS).errors]
    assert not failures, "\n".join(failures)
    return out
