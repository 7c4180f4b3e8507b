"""Where the package's files are: its templates, and everything a build's outputs depend on."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def template_root() -> Path:
    """Return the templates folder: inside the installed package, or beside it in a checkout."""
    for candidate in (HERE / "templates", HERE.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the templates folder is missing from the installation")


def _package_paths() -> list[tuple[str, Path]]:
    root = template_root()
    files = [(f"generator/{p.relative_to(HERE).as_posix()}", p) for p in HERE.rglob("*.py")]
    files += [(f"templates/{p.relative_to(root).as_posix()}", p) for p in root.rglob("*") if p.is_file()]
    files += [(f"generator/{p.relative_to(HERE).as_posix()}", p) for p in (HERE / "render" / "katex").rglob("*") if p.is_file()]
    return sorted(files)


def package_files() -> list[tuple[str, bytes]]:
    """Return (name, bytes) of the package's code and templates, in a fixed order."""
    return [(name, path.read_bytes()) for name, path in _package_paths()]


def package_signature() -> str:
    """Return the package files' names, sizes and modification times, which change when any file does."""
    found = []
    for name, path in _package_paths():
        info = path.stat()
        found.append(f"{name}\0{info.st_size}\0{info.st_mtime_ns}")
    return "\n".join(found)
