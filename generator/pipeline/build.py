"""Build and check specs: the plain functions behind the CLI.

Only what a build with nothing to do needs is imported at the top: deciding that
costs a few file reads and hashes, never torch, sympy or pylatex.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from collections import namedtuple
from pathlib import Path
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up

from .. import __version__
from ..errors import DeriveError, SpecError, shown
from .isolate import DEFAULT_TIMEOUT
from ..resources import package_files, package_signature

if TYPE_CHECKING:
    from typing import Callable

FORMATS = ("md", "json", "tex", "pdf", "html", "ipynb")
SPEC_SUFFIXES = (".yaml", ".yml", ".py")  # a folder's .py files named _*.py (helpers, __init__.py) are skipped
CACHE = ".derive-cache.json"  # in the output folder: what each spec's outputs were built from
TOOL_ENTRY = "/tool"  # its entry for the package's own hash (no spec's stem has a slash)


class Outcome(namedtuple("Outcome", "path written errors fresh seconds peak", defaults=((), (), False, None, None))):
    """What happened to one spec: the files written, the error lines, whether it was skipped as fresh, and for one
    built, the seconds and the peak memory (bytes) of the process that built it."""

    __slots__ = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def find_specs(paths: list[Path]) -> list[Path]:
    """Return the spec files named, or found in the folders named, sorted; raise if a path is missing.

    A folder's symbolic links with a spec's suffix are listed too, so that reading them
    (files.read_spec, which never follows one) reports each as refused rather than skipping it.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES and (p.is_file() or p.is_symlink())
                                and not (p.suffix == ".py" and p.name.startswith("_"))))
        elif path.is_file() or path.is_symlink():
            found.append(path)
        else:
            raise DeriveError(f"{shown(path)}: no such file or folder")
    return found


def clashes(paths: list[Path]) -> dict[Path, str]:
    """Return the error of each spec whose name is reserved or whose outputs another spec also writes.

    Names are compared without case, as a case-blind file system (macOS, Windows) would.
    """
    errors: dict[Path, str] = {}
    first: dict[str, Path] = {}
    for path in paths:
        if path.stem.startswith("."):
            errors[path] = (f"{shown(path)}: a spec's name may not start with a dot, kept for derive's own files such as"
                            f" {CACHE} (allowed: a name starting with a letter or digit)")
            continue
        other = first.setdefault(path.stem.casefold(), path)
        if other != path:
            allowed = "allowed: one spec per name in a build; rename one"
            errors.setdefault(other, f"{shown(other)}: writes the same files as {shown(path)} ({allowed})")
            errors[path] = f"{shown(path)}: writes the same files as {shown(other)} ({allowed})"
    return errors


def derive_spec(path: Path, text: bytes | None = None):
    """Load, parse and derive one spec (from text, its bytes, if given); raise a DeriveError on any problem.

    Small examples are derived exactly, element by element; large ones on whole
    arrays (generator/engines/sparse.py), so that their cost grows with their size, not its square.
    """
    return derive_graph(graph_of(path, text))


def graph_of(path: Path, text: bytes | None = None):
    """Load and parse one spec into its graph; raise a DeriveError on any problem."""
    from ..engines.updates import decide, resolve
    from ..graph.walk import build_graph
    from ..spec.load import load

    return resolve(build_graph(load(path, text=text, evaluate=decide)))


def derive_graph(graph):
    """Derive a graph: exactly when small, on whole arrays when large."""
    from ..engines.sparse import derive_bulk, is_large
    from ..engines.exact import derive

    if is_large(graph):
        _refuse_large_grads(graph)
        return derive_bulk(graph)
    return derive(graph)


def _refuse_large_grads(graph) -> None:
    """Refuse torch.autograd.grad in a large example: its explanation differentiates whole formulas with sympy."""
    from ..engines.sparse import SMALL
    from ..errors import Problem, SpecError
    from ..ops.autograd import request

    problems = [Problem(graph.spec.path, s.line, f"torch.autograd.grad in an example with a tensor of more than {SMALL}"
                        " elements: derive explains what it returns element by element, with sympy (allowed: tensors of"
                        f" at most {SMALL} elements)") for s in graph.spec.steps if request(s.expr)]
    if problems:
        raise SpecError(problems)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file through a temporary file and a rename, so it is never half-written.

    A new file gets the permissions the umask gives (mkstemp's 0600 would hide a site from its
    web server); a file replaced keeps its own.
    """
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """Return the process's umask (reading it means setting it: set it back at once)."""
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def render_spec(
    path: Path, formats: tuple[str, ...], lang: str | None, flavor: str | None = None, front_matter: bool = False,
    text: bytes | None = None,
) -> dict[str, bytes]:
    """Derive one spec (from text, its bytes, if given) and render it: file name -> bytes (runs inside the budgeted child)."""
    from ..document.small import build_document
    from ..render.formats import RENDERERS

    derivation = derive_spec(path, text)
    document = build_document(derivation, stem=path.stem, lang=lang, flavor=flavor, front_matter=front_matter)
    made: dict[str, bytes] = {}
    for fmt in formats:
        source = "tex" if fmt == "pdf" else fmt  # the PDF is rendered as its LaTeX source: made once for both
        if source not in made:
            made[source] = RENDERERS[fmt].render(document=document, derivation=derivation)
        made[fmt] = made[source]
    return {f"{path.stem}.{fmt}": made[fmt] for fmt in formats}


def make_files(
    path: Path, text: bytes, out: Path, formats: tuple[str, ...], lang: str | None, flavor: str | None,
    front_matter: bool,
) -> tuple[tuple[tuple[Path, str], ...], tuple[str, ...]]:
    """Derive, render, finish and write one spec's files (runs in the child; see build_specs).

    Returns each file written with the sha256 of its bytes, and the error lines. Nothing is
    written unless every format rendered, and nothing once the parent is gone. A format's
    finishing step (the PDF's TeX run, outside the derivation's budget) that fails costs only that file.
    """
    from .isolate import budget_spent, orphaned

    from ..render.formats import RENDERERS

    started = time.monotonic()
    files = render_spec(path, formats, lang, flavor, front_matter, text)
    budget_spent()
    written, errors = [], []
    for fmt, (name, data) in zip(formats, files.items()):
        try:
            data = RENDERERS[fmt].finish(data, label=shown(path))
        except DeriveError as e:
            errors.extend(e.lines())
            continue
        if orphaned():
            raise DeriveError(f"{shown(path)}: the build was stopped; nothing written")
        write_output(out / name, data)
        written.append((out / name, hashlib.sha256(data).hexdigest()))
    return tuple(written), tuple(errors), (time.monotonic() - started, peak_memory())


def peak_memory() -> int:
    """Return this process's peak resident memory in bytes (Linux counts ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def write_output(path: Path, data: bytes) -> None:
    """Write one output; raise a one-line DeriveError naming the folder if that fails (full disk, read-only)."""
    try:
        write_atomic(path, data)
    except OSError as error:
        raise DeriveError(f"{shown(path.parent)}: cannot write {shown(path.name)}: {error.strerror or error}"
                          " (allowed: --out DIR, a folder with room that you can write to)") from None


def check_folder(folder: Path, *, option: str = "--out") -> None:
    """Raise a one-line DeriveError naming the folder (given by option) if files cannot be written there.

    The folder is created only when a file is written, so only the nearest part of it that
    exists is checked here: a folder that may be written to (what can still fail, such as a
    full disk, fails each spec with one line naming the folder).
    """
    allowed = f"allowed: {option} DIR, a folder you can write to"
    place = folder
    while not os.path.lexists(place) and place.parent != place:
        place = place.parent
    if not place.is_dir():
        raise DeriveError(f"{shown(folder)}: cannot write files there: {shown(place)} is not a folder ({allowed})")
    if not os.access(place, os.W_OK | os.X_OK):
        raise DeriveError(f"{shown(folder)}: cannot write files there: {shown(place)} is read-only ({allowed})")


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
    from ..spec.files import read_spec

    options = json.dumps([list(formats), lang, flavor, front_matter])
    record = _Cache(out) if cache else None
    if record is not None and not _TOOL:
        _TOOL.append(record.tool_hash())
    refused = clashes(paths)
    outcomes: dict[int, Outcome] = {}
    todo: list[int] = []
    keys, texts = {}, {}
    for i, path in enumerate(paths):
        try:
            if path in refused:
                raise DeriveError(refused[path])
            texts[i] = read_spec(path)  # by stat and at most one byte past the limit, before any hashing
        except DeriveError as e:
            outcomes[i] = Outcome(path, errors=tuple(e.lines()))
            if done:
                done(outcomes[i])
            continue
        keys[i] = stamp(texts[i] + _files_beside(path, texts[i]), options)
        names = [f"{path.stem}.{fmt}" for fmt in formats]
        if record is not None and not force and record.fresh(path.stem, keys[i], names):
            outcomes[i] = Outcome(path, fresh=True)
            if done:
                done(outcomes[i])
        else:
            todo.append(i)
    if todo:
        from .isolate import run_many

        check_folder(out)
        _warm(formats, example=len(todo) > 1)

        def finished(n: int, result) -> None:
            i = todo[n]
            hashes: tuple[tuple[Path, str], ...] = ()
            if isinstance(result, DeriveError):
                outcomes[i] = Outcome(paths[i], errors=tuple(result.lines()))
            else:
                hashes, errors, (seconds, peak) = result
                outcomes[i] = Outcome(paths[i], written=tuple(p for p, _ in hashes), errors=errors, seconds=seconds,
                                      peak=peak)
            if record is not None:  # saved now, not at the end: a killed build keeps what it finished
                record.update(paths[i].stem, keys[i] if outcomes[i].ok else None, hashes)
            if done:
                done(outcomes[i])

        calls = [(make_files, (paths[i], texts[i], out, formats, lang, flavor, front_matter), shown(paths[i]))
                 for i in todo]
        run_many(calls, jobs=jobs, timeout=timeout, done=finished)
    return [outcomes[i] for i in range(len(paths))]


def _warm(formats: tuple[str, ...], *, example: bool) -> None:
    """Load and compile, once in the parent, what every child needs, so that each child starts with it.

    With example, also render the starter spec in memory: sympy's and the printers' caches fill on
    first use, which otherwise costs each child a second or so of a build's time.
    """
    from ..document import small  # noqa: F401
    from ..engines import exact, sparse  # noqa: F401
    from ..graph import walk  # noqa: F401
    from ..render.formats import RENDERERS  # noqa: F401
    from ..spec import load  # noqa: F401
    from ..render.messages import Messages
    from ..resources import template_root

    for language in load.LANGS:
        Messages(language).warm()
    if {"tex", "pdf"} & set(formats):
        from ..render.pdf import _classes

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
            from ..render.pdf import PROGRAM, missing_tex

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


FILE_ENTRY = re.compile(rb"""file:\s*["']?([A-Za-z0-9][A-Za-z0-9_-]{0,63}\.npy)""")  # an input's .npy, as a spec names it


def _files_beside(path: Path, text: bytes) -> bytes:
    """Return what the .npy files a spec names hold (their hash; '-' for one missing), so a changed file rebuilds."""
    digest = hashlib.sha256()
    for name in sorted(set(FILE_ENTRY.findall(text))):
        beside = path.parent / name.decode()
        try:
            info = os.lstat(beside)  # a link or a huge file is refused when read: hash what stat says, never follow it
            held = beside.read_bytes() if stat.S_ISREG(info.st_mode) and info.st_size <= 2**20 else repr(info).encode()
        except OSError:
            held = b"-"
        digest.update(name + b"\0" + hashlib.sha256(held).digest())
    return digest.hexdigest().encode() if FILE_ENTRY.search(text) else b""


def stamp(text: bytes, options: str) -> str:
    """Return the content hash of what a spec's outputs are made from: the spec's bytes, the options and the tool."""
    digest = hashlib.sha256(_tool_hash().encode())
    digest.update(options.encode())
    digest.update(text)
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


def _stat(path: Path) -> list[int]:
    """Return a file's size, modification time (ns) and inode: what any rewrite of it changes."""
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ino]


class _Cache:
    """The output folder's record: per spec stem, the hash its outputs were built from and the sha256 of each.

    An output is fresh only if its bytes still hash to what was recorded, so a file that a killed
    build's child wrote is never taken for the one recorded. Each update is merged into the file
    as it is on disk, under a lock on the folder, so builds into one folder keep each other's entries.
    An entry of the wrong shape (a hand-edited file) counts as absent.
    """

    def __init__(self, out: Path):
        self.path = out / CACHE
        self.out = out
        self.entries = self.read()
        self.tool: dict | None = None

    def read(self) -> dict:
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def tool_hash(self) -> str:
        """Return the hash of the package's files: as recorded while no file's size or time has changed, else anew."""
        signature = hashlib.sha256(package_signature().encode()).hexdigest()
        entry = self.entries.get(TOOL_ENTRY)
        if isinstance(entry, dict) and entry.get("signature") == signature and isinstance(entry.get("hash"), str):
            return entry["hash"]
        found = _tool_hash()
        self.tool = {"signature": signature, "hash": found}  # saved with the next entry, or now if the folder is there
        try:
            if self.out.is_dir():
                self._save(TOOL_ENTRY, self.tool)
        except DeriveError:
            pass  # a folder that takes no record: the hash is worked out again next time, as before
        return found

    def fresh(self, stem: str, key: str, names: list[str]) -> bool:
        """Tell whether every named output exists with the bytes written from this key."""
        entry = self.entries.get(stem)
        if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("files"), dict):
            return False
        stats = entry.get("stat") if isinstance(entry.get("stat"), dict) else {}
        for name in names:
            try:
                recorded = entry["files"].get(name)
                if isinstance(recorded, str) and stats.get(name) == _stat(self.out / name):  # not written since
                    continue
                data = (self.out / name).read_bytes()
            except OSError:
                return False
            if entry["files"].get(name) != hashlib.sha256(data).hexdigest():
                return False
        return True

    def update(self, stem: str, key: str | None, written: tuple[tuple[Path, str], ...]) -> None:
        """Record a successful build (key, and each file written with its sha256), or forget a failed one; save at once."""
        if key is None and stem not in self.read():
            return  # nothing to forget (and perhaps no folder yet: a failed spec creates none)
        if key is None:
            return self._save(stem, None)
        stats = {}
        for path, _ in written:
            try:
                stats[path.name] = _stat(path)
            except OSError:
                pass
        self._save(stem, {"key": key, "files": {path.name: digest for path, digest in written}, "stat": stats})

    def _save(self, stem: str, entry: dict | None) -> None:
        """Merge one entry (None: its removal) into the file as it is on disk, under the folder's lock."""
        with self._locked():
            entries = self.read()
            if self.tool is not None:
                entries[TOOL_ENTRY] = self.tool
            if entry is not None:
                entries[stem] = entry
            elif entries.pop(stem, None) is None:
                return
            self.entries = entries
            try:
                write_atomic(self.path, (json.dumps(entries, indent=1, sort_keys=True) + "\n").encode())
            except OSError as error:
                raise DeriveError(f"{shown(self.out)}: cannot write {CACHE}: {error.strerror or error}"
                                  " (allowed: --out DIR, a folder with room that you can write to)") from None

    def _locked(self):
        """Return a context that holds an exclusive lock on the output folder (where fcntl exists)."""
        import contextlib

        try:
            import fcntl
        except ImportError:  # Windows: no lock, the merge alone still keeps most entries
            return contextlib.nullcontext()

        @contextlib.contextmanager
        def hold():
            fd = os.open(self.out, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

        return hold()


RUN_TIMEOUT = 120.0  # seconds the document's code may take in a fresh Python (importing torch takes most of it)


def compare_spec(path: Path, text: bytes | None = None, *, script: bool = True) -> list[str]:
    """Derive one spec (from text, its bytes, if given) and run it in torch; return the lines where they differ.

    Besides the numbers, the document's own code runs in a fresh Python once the budgeted work is done (so
    that torch loading there takes no time from the derivation's budget; like TeX in a build, it has its own
    limit, RUN_TIMEOUT): what it prints must be the document's block byte for byte, and each tensor's grad_fn,
    requires_grad and is_leaf what the document's graph says (script=False: the numbers alone).
    """
    from .check import compare, compare_functionals, compare_labels, compare_printed, compare_shadow, run, within_order
    from .isolate import budget_spent
    from .script import Failed, Refused, Started, vet
    from ..document.code import printed, printed_blocks, torch_code
    from ..document.small import build_document
    from ..engines.shadow import shadow
    from ..engines.verdict import disagreements

    graph = graph_of(path, text)
    code = torch_code(graph)
    try:
        vet(code)
    except Refused as e:
        return [f"{shown(path)}: the document's code holds {e}, which derive never writes; it was not run"]
    derivation = derive_graph(graph)
    own = [f"{shown(path)}:{line}: {what}" for line, what in disagreements(derivation)]  # a Function's backward
    exact = run(graph, dtype="float64")
    try:
        rounding = shadow(graph, dtype="float64")
    except SpecError:
        if graph.spec.dtype == "float64":
            raise
        # a float32 example whose float64 run sums past float64's range in some orders: float64 torch itself
        # prints one of several results there, so only the example's own dtype, what the document claims, is compared
        rounding = None
    # derive's float64 prediction against float64 torch; the exact derivation against float64 torch, where
    # only what that prediction explains as rounding may differ; and in the spec's own dtype, what the
    # document prints (torch in that dtype, op by op) against torch in that dtype
    diffs = [] if rounding is None else compare_shadow(rounding, exact, graph) + compare(derivation, exact, rounding)
    diffs += compare_functionals(graph.spec)
    shade, in_dtype = rounding, exact
    if graph.spec.dtype != "float64":
        shade, in_dtype = shadow(graph), run(graph, dtype=graph.spec.dtype, jacobians=False)
        diffs += compare_shadow(shade, in_dtype, graph)
    if not script:
        return own + [f"{shown(path)}: {d}" for d in diffs]
    document = build_document(derivation, stem=path.stem)
    budget_spent()
    started = Started(code, tuple(str(Path(path).parent / i.file) for i in graph.spec.inputs if i.file))
    try:
        ran = started.result(RUN_TIMEOUT)
    except Failed as e:
        return own + [f"{shown(path)}: {d}" for d in diffs] + [f"{shown(path)}: the document's code, run in torch, {e}"]
    finally:
        started.stop()
    found = compare_printed(document.printed, ran.stdout, printed_blocks(derivation, shade))
    if found and document.order is not None:
        # digits the order of BLAS's sums moves: the block with torch's numbers there must be torch's output, and
        # each of those numbers within the bound the document states
        mixed, beyond = within_order(graph, shade, in_dtype, document.order)
        found = beyond + compare_printed(printed(derivation, mixed), ran.stdout, printed_blocks(derivation, mixed))
    diffs += found
    last = {u.of: u.node for u in graph.spec.updates}  # the code's name of a tensor changed in place: its last values
    diffs += compare_labels(document.graph, {**exact.labels, **{last.get(k, k): v for k, v in ran.labels.items()}})
    return own + [f"{shown(path)}: {d}" for d in diffs]


def check_spec(path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """Compare one spec's derivation with real torch; errors list every mismatch."""
    from . import check, script  # noqa: F401  (imported here, once, so each child starts warm)
    from ..document import small  # noqa: F401
    from ..engines import exact, shadow  # noqa: F401
    from ..spec.files import read_spec
    from .isolate import isolated

    try:
        diffs = isolated(compare_spec, path, read_spec(path), timeout=timeout, label=shown(path))
    except DeriveError as e:
        return Outcome(path, errors=tuple(e.lines()))
    return Outcome(path, errors=tuple(diffs))


STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def new_spec(name: str, *, folder: Path) -> Path:
    """Write the starter spec as folder/name.yaml; refuse a bad name or an existing file."""
    from ..resources import template_root

    if not STEM.fullmatch(name):
        raise DeriveError(f"{name!r} is not a usable spec name (allowed: letters, digits, _ and -, up to 64)")
    path = folder / f"{name}.yaml"
    if path.exists() or path.is_symlink():
        raise DeriveError(f"{shown(path)} already exists (allowed: a new name)")
    text = (template_root() / "starter.yaml").read_text(encoding="utf-8").replace("{{NAME}}", name)
    check_folder(folder, option="--dir")
    try:
        write_atomic(path, text.encode("utf-8"))
    except OSError as error:
        raise DeriveError(f"{shown(folder)}: cannot write {shown(path.name)}: {error.strerror or error}"
                          " (allowed: --dir DIR, a folder you can write to)") from None
    return path

