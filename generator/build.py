"""Build and check specs: the plain functions behind the CLI.

Only what a build with nothing to do needs is imported at the top: deciding that
costs a few file reads and hashes, never torch, sympy or pylatex.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import namedtuple
from pathlib import Path
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up

from . import __version__
from .errors import DeriveError
from .isolate import DEFAULT_TIMEOUT
from .resources import package_files

if TYPE_CHECKING:
    from typing import Callable

FORMATS = ("md", "json", "tex", "pdf")
SPEC_SUFFIXES = (".yaml", ".yml")
CACHE = ".derive-cache.json"  # in the output folder: what each spec's outputs were built from


class Outcome(namedtuple("Outcome", "path written errors fresh", defaults=((), (), False))):
    """What happened to one spec: the files written, the error lines, and whether it was skipped as fresh."""

    __slots__ = ()

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
    """Load, parse and derive one spec; raise a DeriveError on any problem.

    Small examples are derived exactly, element by element; large ones on whole
    arrays (generator/bulk.py), so that their cost grows with their size, not its square.
    """
    from .bulk import derive_bulk, is_large
    from .derive import derive
    from .graph import build_graph
    from .load import load

    graph = build_graph(load(path))
    return derive_bulk(graph) if is_large(graph) else derive(graph)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file through a temporary file and a rename, so it is never half-written."""
    import tempfile

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
    made: dict[str, bytes] = {}
    for fmt in formats:
        source = "tex" if fmt == "pdf" else fmt  # the PDF is rendered as its LaTeX source: made once for both
        if source not in made:
            made[source] = RENDERERS[fmt].render(document=document, derivation=derivation)
        made[fmt] = made[source]
    return {f"{path.stem}.{fmt}": made[fmt] for fmt in formats}


def make_files(
    path: Path, out: Path, formats: tuple[str, ...], lang: str | None, flavor: str | None, front_matter: bool
) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """Derive, render, finish and write one spec's files (runs in the child; see build_specs).

    Nothing is written unless every format rendered. A format's finishing step (the PDF's
    TeX run, outside the derivation's budget) that fails costs only that file.
    """
    from .isolate import budget_spent
    from .render import RENDERERS

    files = render_spec(path, formats, lang, flavor, front_matter)
    budget_spent()
    written, errors = [], []
    for fmt, (name, data) in zip(formats, files.items()):
        try:
            data = RENDERERS[fmt].finish(data, label=str(path))
        except DeriveError as e:
            errors.extend(e.lines())
            continue
        write_atomic(out / name, data)
        written.append(out / name)
    return tuple(written), tuple(errors)


def build_specs(
    paths: list[Path], *, out: Path, formats: tuple[str, ...], lang: str | None = None, flavor: str | None = None,
    front_matter: bool = False, timeout: float = DEFAULT_TIMEOUT, jobs: int = 1, force: bool = False,
    cache: bool = True, done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Build specs into every format, `jobs` at a time; return their outcomes in the order given.

    lang and flavor (the Markdown's math syntax) override the spec's; front_matter adds YAML
    front matter to the Markdown of the flavors that take it (hugo, jekyll), and nothing to others.
    A spec whose outputs were built from the same spec file, templates, code and options is
    skipped (force: never), so a rebuild with nothing changed derives nothing and runs no TeX.
    Each spec is derived in its own child process, within `timeout` seconds; done(outcome) is
    called as each one finishes.
    """
    options = json.dumps([list(formats), lang, flavor, front_matter])
    record = _Cache(out) if cache else None
    outcomes: dict[int, Outcome] = {}
    todo: list[int] = []
    keys = {}
    for i, path in enumerate(paths):
        keys[i] = stamp(path, options)
        names = [f"{path.stem}.{fmt}" for fmt in formats]
        if record is not None and not force and record.fresh(path.stem, keys[i], names):
            outcomes[i] = Outcome(path, fresh=True)
            if done:
                done(outcomes[i])
        else:
            todo.append(i)
    if todo:
        from .isolate import run_many

        _warm(formats, example=len(todo) > 1)

        def finished(n: int, result) -> None:
            i = todo[n]
            if isinstance(result, DeriveError):
                outcomes[i] = Outcome(paths[i], errors=tuple(result.lines()))
            else:
                outcomes[i] = Outcome(paths[i], written=result[0], errors=result[1])
            if record is not None:
                record.update(paths[i].stem, keys[i] if outcomes[i].ok else None, outcomes[i].written)
            if done:
                done(outcomes[i])

        calls = [(make_files, (paths[i], out, formats, lang, flavor, front_matter), str(paths[i])) for i in todo]
        run_many(calls, jobs=jobs, timeout=timeout, done=finished)
        if record is not None:
            record.save()
    return [outcomes[i] for i in range(len(paths))]


def _warm(formats: tuple[str, ...], *, example: bool) -> None:
    """Load and compile, once in the parent, what every child needs, so that each child starts with it.

    With example, also render the starter spec in memory: sympy's and the printers' caches fill on
    first use, which otherwise costs each child a second or so of a build's time.
    """
    from . import bulk, derive, document, graph, load, render  # noqa: F401
    from .messages import Messages
    from .resources import template_root

    for language in load.LANGS:
        Messages(language).warm()
    if {"tex", "pdf"} & set(formats):
        from .pdf import _classes

        _classes()  # pylatex
    if example:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="derive-warm-") as tmp:
            path = Path(tmp) / "warm.yaml"
            path.write_text((template_root() / "starter.yaml").read_text(encoding="utf-8").replace("{{NAME}}", "warm"),
                            encoding="utf-8")
            try:
                files = render_spec(path, formats, None)
            except DeriveError:
                return  # only a warm-up: the starter always builds, and a test says so
        if "pdf" in formats:
            from .pdf import PROGRAM, missing_tex

            tex = files["warm.pdf"].decode("utf-8")
            missing_tex(tex, PROGRAM.match(tex).group(1))  # found once here, remembered by every child


def build_spec(
    path: Path, *, out: Path, formats: tuple[str, ...], lang: str | None = None, flavor: str | None = None,
    front_matter: bool = False, timeout: float = DEFAULT_TIMEOUT
) -> Outcome:
    """Build one spec into every format, whatever was built before (see build_specs)."""
    (outcome,) = build_specs([path], out=out, formats=formats, lang=lang, flavor=flavor, front_matter=front_matter,
                             timeout=timeout, cache=False)
    return outcome


def stamp(path: Path, options: str) -> str:
    """Return the content hash of what a spec's outputs are made from: the spec, the options and the tool."""
    digest = hashlib.sha256(_tool_hash().encode())
    digest.update(options.encode())
    digest.update(path.read_bytes())
    return digest.hexdigest()


_TOOL: list[str] = []


def _tool_hash() -> str:
    """Hash the version, the package's code and its templates (once per run)."""
    if not _TOOL:
        digest = hashlib.sha256(__version__.encode())
        for name, data in package_files():
            digest.update(name.encode() + b"\0" + data + b"\0")
        _TOOL.append(digest.hexdigest())
    return _TOOL[0]


class _Cache:
    """The output folder's record: per spec stem, the hash its outputs were built from and their sizes."""

    def __init__(self, out: Path):
        self.path = out / CACHE
        try:
            self.entries = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(self.entries, dict):
                self.entries = {}
        except (OSError, ValueError):
            self.entries = {}
        self.out = out
        self.changed = False

    def fresh(self, stem: str, key: str, names: list[str]) -> bool:
        """Tell whether every named output exists as it was written from this key."""
        entry = self.entries.get(stem)
        if not isinstance(entry, dict) or entry.get("key") != key:
            return False
        sizes = entry.get("files", {})
        for name in names:
            try:
                if sizes.get(name) != (self.out / name).stat().st_size:
                    return False
            except OSError:
                return False
        return True

    def update(self, stem: str, key: str | None, written: tuple[Path, ...]) -> None:
        """Record a successful build (key), or forget a failed one so that it is tried again."""
        if key is None:
            self.changed |= self.entries.pop(stem, None) is not None
            return
        self.entries[stem] = {"key": key, "files": {p.name: p.stat().st_size for p in written}}
        self.changed = True

    def save(self) -> None:
        if self.changed:
            write_atomic(self.path, (json.dumps(self.entries, indent=1, sort_keys=True) + "\n").encode())


def compare_spec(path: Path) -> list[str]:
    """Derive one spec and run it in torch; return the lines where they differ."""
    from .check import compare, compare_shadow, run
    from .shadow import shadow

    derivation = derive_spec(path)
    graph = derivation.graph
    exact = run(graph, dtype="float64")
    own = exact if graph.spec.dtype == "float64" else run(graph, dtype=graph.spec.dtype, jacobians=False)
    # the exact derivation against float64 torch; what the document prints (torch in the spec's dtype, op by op)
    # against torch in that dtype
    diffs = compare(derivation, exact) + compare_shadow(shadow(graph), own, graph)
    return [f"{path}: {d}" for d in diffs]


def check_spec(path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """Compare one spec's derivation with real torch; errors list every mismatch."""
    from . import check, derive  # noqa: F401  (imported here, once, so each child starts warm)
    from .isolate import isolated

    try:
        diffs = isolated(compare_spec, path, timeout=timeout, label=str(path))
    except DeriveError as e:
        return Outcome(path, errors=tuple(e.lines()))
    return Outcome(path, errors=tuple(diffs))


STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def new_spec(name: str, *, folder: Path) -> Path:
    """Write the starter spec as folder/name.yaml; refuse a bad name or an existing file."""
    from .resources import template_root

    if not STEM.fullmatch(name):
        raise DeriveError(f"{name!r} is not a usable spec name (allowed: letters, digits, _ and -, up to 64)")
    path = folder / f"{name}.yaml"
    if path.exists():
        raise DeriveError(f"{path} already exists (allowed: a new name)")
    text = (template_root() / "starter.yaml").read_text(encoding="utf-8").replace("{{NAME}}", name)
    write_atomic(path, text.encode("utf-8"))
    return path

