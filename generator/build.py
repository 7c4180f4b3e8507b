"""Build and check specs: the plain functions behind the CLI."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import DeriveError, Problem, SpecError

FORMATS = ("md", "json")
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


def build_spec(path: Path, *, out: Path, formats: tuple[str, ...], lang: str | None = None) -> Outcome:
    """Build one spec into every format; nothing is written unless every format rendered."""
    from .document import build_document
    from .render import RENDERERS

    try:
        derivation = derive_spec(path)
        document = build_document(derivation, stem=path.stem, lang=lang)
        files = {out / f"{path.stem}.{fmt}": RENDERERS[fmt].render(document=document, derivation=derivation) for fmt in formats}
    except DeriveError as e:
        return Outcome(path, errors=tuple(e.lines()))
    except RecursionError:
        return Outcome(path, errors=(f"{path}: the spec is too deeply nested to derive",))
    except Exception as e:  # a bug of ours: say so in one line, never a traceback
        return Outcome(path, errors=(f"{path}: internal error ({type(e).__name__}: {e}); please report it",))
    for target, data in files.items():
        write_atomic(target, data)
    return Outcome(path, written=tuple(files))


def check_spec(path: Path) -> Outcome:
    """Compare one spec's derivation with real torch; errors list every mismatch."""
    from .check import compare, run

    try:
        derivation = derive_spec(path)
        diffs = compare(derivation, run(derivation.graph, dtype="float64"))
    except SpecError as e:
        return Outcome(path, errors=tuple(e.lines()))
    except DeriveError:
        raise
    except Exception as e:
        return Outcome(path, errors=(f"{path}: internal error ({type(e).__name__}: {e}); please report it",))
    return Outcome(path, errors=tuple(f"{path}: {d}" for d in diffs))


__all__ = ["FORMATS", "Outcome", "Problem", "build_spec", "check_spec", "find_specs", "write_atomic"]
