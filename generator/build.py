"""Build and check specs: the plain functions behind the CLI."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import DeriveError
from .isolate import DEFAULT_TIMEOUT, isolated

FORMATS = ("md", "json", "tex", "pdf")
SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Outcome:
    """What happened to one spec."""

    path: Path
    written: tuple[Path, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def find_specs(paths: list[Path]) -> list[Path]:
    """Return the spec files named, or found in the folders named, sorted; raise if a path is missing."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise DeriveError(f"{path}: no such file or folder")
    return found


def derive_spec(path: Path):
    """Load, parse and derive one spec; raise a DeriveError on any problem."""
    from .derive import derive
    from .graph import build_graph
    from .load import load

    return derive(build_graph(load(path)))


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file through a temporary file and a rename, so it is never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_spec(
    path: Path, formats: tuple[str, ...], lang: str | None, flavor: str | None = None, front_matter: bool = False
) -> dict[str, bytes]:
    """Derive one spec and render it: file name -> bytes (runs inside the budgeted child)."""
    from .document import build_document
    from .render import RENDERERS

    derivation = derive_spec(path)
    document = build_document(derivation, stem=path.stem, lang=lang, flavor=flavor, front_matter=front_matter)
    return {f"{path.stem}.{fmt}": RENDERERS[fmt].render(document=document, derivation=derivation) for fmt in formats}


def build_spec(
    path: Path, *, out: Path, formats: tuple[str, ...], lang: str | None = None, flavor: str | None = None,
    front_matter: bool = False, timeout: float = DEFAULT_TIMEOUT
) -> Outcome:
    """Build one spec into every format; nothing is written unless every format rendered.

    lang and flavor (the Markdown's math syntax) override the spec's; front_matter adds YAML
    front matter to the Markdown of the flavors that take it (hugo, jekyll), and nothing to others.

    A format's finishing step (the PDF's TeX run, outside the derivation's budget) that fails
    costs only that file: the others are written, and the error is reported.
    """
    from . import document, render  # noqa: F401  (imported here, once, so each child starts warm)

    try:
        files = isolated(render_spec, path, formats, lang, flavor, front_matter, timeout=timeout, label=str(path))
    except DeriveError as e:
        return Outcome(path, errors=tuple(e.lines()))
    written, errors = [], []
    for fmt, (name, data) in zip(formats, files.items()):
        try:
            data = render.RENDERERS[fmt].finish(data, label=str(path))
        except DeriveError as e:
            errors.extend(e.lines())
            continue
        write_atomic(out / name, data)
        written.append(out / name)
    return Outcome(path, written=tuple(written), errors=tuple(errors))


def compare_spec(path: Path) -> list[str]:
    """Derive one spec and run it in torch; return the lines where they differ."""
    from .check import compare, run

    derivation = derive_spec(path)
    return [f"{path}: {d}" for d in compare(derivation, run(derivation.graph, dtype="float64"))]


def check_spec(path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """Compare one spec's derivation with real torch; errors list every mismatch."""
    from . import check, derive  # noqa: F401  (imported here, once, so each child starts warm)

    try:
        diffs = isolated(compare_spec, path, timeout=timeout, label=str(path))
    except DeriveError as e:
        return Outcome(path, errors=tuple(e.lines()))
    return Outcome(path, errors=tuple(diffs))


STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def new_spec(name: str, *, folder: Path) -> Path:
    """Write the starter spec as folder/name.yaml; refuse a bad name or an existing file."""
    from .render import template_root

    if not STEM.fullmatch(name):
        raise DeriveError(f"{name!r} is not a usable spec name (allowed: letters, digits, _ and -, up to 64)")
    path = folder / f"{name}.yaml"
    if path.exists():
        raise DeriveError(f"{path} already exists (allowed: a new name)")
    text = (template_root() / "starter.yaml").read_text(encoding="utf-8").replace("{{NAME}}", name)
    write_atomic(path, text.encode("utf-8"))
    return path

