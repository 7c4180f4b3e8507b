"""The derive command: parses options and calls the plain functions in build.

It uses argparse rather than click: a rebuild with nothing to do should cost
little more than starting Python, and importing click alone takes three times as
long as Python with this whole package (see benchmarks/). Every DeriveError
becomes its lines on stderr and its exit code; a bug of ours becomes one line and
exit code 70; bad usage is one line and exit code 2. No traceback reaches a user.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up

from . import __version__
from .pipeline.build import FORMATS
from .errors import DeriveError, printable, shown
from .pipeline.isolate import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from typing import Any

DEFAULT_SPECS = Path("derivations")
DEFAULT_OUT = Path("output")
# the loader's own lists, repeated so that parsing options does not load the YAML library (a test keeps them equal)
LANGS = ("en", "zh")
FLAVORS = ("portable", "github", "mkdocs", "hugo", "jekyll")


class UsageError(DeriveError):
    """The command line itself is wrong."""

    exit_code = 2


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors raised as one-line UsageErrors instead of printed with the usage."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _choices(kind: str, allowed: tuple[str, ...]):
    def check(value: str) -> str:
        if value not in allowed:
            raise argparse.ArgumentTypeError(f"unknown {kind} {value} (allowed: {', '.join(allowed)})")
        return value

    return check


def _formats(value: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.strip() for f in value.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown format {', '.join(unknown) or 'none'} (allowed: {', '.join(FORMATS)})")
    return chosen


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{value} is not a number of seconds (allowed: a number above 0)")
    return seconds


def _jobs(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a number of jobs (allowed: 1 or more)")
    return int(value)


def parser() -> argparse.ArgumentParser:
    """Return the parser of the whole command line."""
    top = _Parser(prog="derive", description="Explain PyTorch autograd examples step by step, checked against torch.")
    top.add_argument("--version", action="version", version=f"derive, version {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    build = commands.add_parser("build", help="Build specs into Markdown, JSON, LaTeX, PDF, HTML and notebooks.",
                                description="Build each spec (files or folders; default derivations/) into "
                                            "OUT/<stem>.<format>. A spec is a .yaml file, or a .py file of torch "
                                            "code, which is read, never run; a folder's .py files whose names "
                                            "start with _ are skipped. A spec whose outputs are up to date is skipped.")
    build.add_argument("paths", nargs="*", type=Path, metavar="PATHS")
    build.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="Folder for the outputs (default: output).")
    build.add_argument("--format", dest="formats", type=_formats, default=("md",), metavar="LIST",
                       help=f"Comma-separated: {', '.join(FORMATS)} (default: md).")
    build.add_argument("--lang", type=_choices("language", LANGS), default=None, metavar="LANG",
                       help="Language of the documents: en, zh (default: each spec's lang).")
    build.add_argument("--flavor", type=_choices("flavor", FLAVORS), default=None, metavar="NAME",
                       help="Markdown math syntax: portable, github, mkdocs, hugo, jekyll (default: each spec's flavor).")
    build.add_argument("--front-matter", action="store_true",
                       help="Start the Markdown with YAML front matter (title, math: true); hugo and jekyll only.")
    build.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                       help=f"Seconds one spec may take to derive (default: {DEFAULT_TIMEOUT:g}).")
    build.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N",
                       help="Specs built at once (default: the number of cores).")
    build.add_argument("--force", action="store_true", help="Rebuild every spec, even those up to date.")
    build.add_argument("--verbose", action="store_true",
                       help="Say for each spec built how long it took and its peak memory.")

    check = commands.add_parser("check", help="Compare each spec's derivation with real torch.",
                                description="Run each spec in real torch (float64) and compare values, grads and "
                                            "Jacobians; for a float32 spec, also run it in float32 and compare "
                                            "values and grads with what derive predicts torch computes there. "
                                            "Then run each document's own code in a fresh Python: it must print "
                                            "the document's block byte for byte, and every tensor's grad_fn, "
                                            "requires_grad and is_leaf must be what the document says.")
    check.add_argument("paths", nargs="*", type=Path, metavar="PATHS")
    check.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                       help=f"Seconds one spec may take to derive and run (default: {DEFAULT_TIMEOUT:g}).")

    schema = commands.add_parser("schema", help="Print the JSON Schema of the spec format (or of the JSON output).",
                                 description="Print the JSON Schema of the spec format (for editors such as VS "
                                             "Code's YAML extension), or with --document that of the JSON "
                                             "documents `build --format json` writes.")
    schema.add_argument("--document", action="store_true", help="The schema of the JSON output instead.")

    new = commands.add_parser("new", help="Write a commented starter spec.",
                              description="Write a commented starter spec, DIR/NAME.yaml, that builds as it is.")
    new.add_argument("name", metavar="NAME")
    new.add_argument("--dir", dest="folder", type=Path, default=DEFAULT_SPECS, metavar="DIR",
                     help="Folder for the new spec (default: derivations).")
    return top


def _specs(paths: list[Path]) -> list[Path]:
    from .pipeline.build import find_specs

    specs = find_specs(list(paths) or [DEFAULT_SPECS])
    if not specs:
        raise DeriveError("no spec files found (allowed: .yaml, .yml or .py files)")
    return specs


def _report(outcomes: list, verb: str) -> int:
    """Print every error line, then the closing summary; return 1 if any spec failed."""
    for outcome in outcomes:
        for line in outcome.errors:
            print(printable(line), file=sys.stderr)
    failed = sum(not o.ok for o in outcomes)
    fresh = sum(o.fresh for o in outcomes)
    done = len(outcomes) - failed - fresh
    summary = f"{done} {verb}, " + (f"{fresh} up to date, " if fresh else "") + f"{failed} failed"
    print(summary, file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


class Progress:
    """A one-line progress bar on a terminal's stderr; nothing anywhere else."""

    WIDTH = 24

    def __init__(self, total: int, *, stream: Any = None):
        self.stream = stream or sys.stderr
        self.total = total
        self.count = 0
        self.on = total > 1 and self.stream.isatty()

    def __call__(self, outcome: Any) -> None:
        self.count += 1
        if not self.on:
            return
        filled = self.WIDTH * self.count // self.total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        name = shown(outcome.path.name)[:40]
        self.stream.write(f"\r[{bar}] {self.count}/{self.total} {name:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.on:
            self.stream.write("\r" + " " * (self.WIDTH + 52) + "\r")
            self.stream.flush()


def _build(args: argparse.Namespace) -> int:
    from .pipeline.build import build_specs

    specs = _specs(args.paths)
    progress = Progress(len(specs))
    try:
        outcomes = build_specs(
            specs, out=args.out, formats=args.formats, lang=args.lang, flavor=args.flavor,
            front_matter=args.front_matter, timeout=args.timeout, jobs=args.jobs or os.cpu_count() or 1,
            force=args.force, done=progress,
        )
    finally:
        progress.close()
    if args.verbose:
        for o in outcomes:
            if o.seconds is not None:
                print(f"{shown(o.path)}: built in {o.seconds:.2f} s, peak memory {o.peak / 2**20:.0f} MiB")
    return _report(outcomes, "built")


def _check(args: argparse.Namespace) -> int:
    from .pipeline.build import check_spec
    from .pipeline.check import import_torch

    specs = _specs(args.paths)
    import_torch()
    return _report([check_spec(p, timeout=args.timeout) for p in specs], "agree with torch")


def _schema(args: argparse.Namespace) -> int:
    import json

    from .render.json import document_schema
    from .spec.schema import spec_schema

    print(json.dumps(document_schema() if args.document else spec_schema(), indent=2))
    return 0


def _new(args: argparse.Namespace) -> int:
    from .pipeline.build import new_spec

    path = new_spec(args.name, folder=args.folder)
    print(f"wrote {shown(path)}: build it with derive build {shown(path)}")
    return 0


COMMANDS = {"build": _build, "check": _check, "schema": _schema, "new": _new}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return its exit code."""
    top = parser()
    try:
        args = top.parse_args(argv)
        if args.command is None:
            top.print_help()
            return 0
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # here, so that a closed pipe (derive schema | head) is caught below
        return code
    except BrokenPipeError:  # the reader stopped reading: nothing more to say, and no one to say it to
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a program ended by SIGPIPE
    except DeriveError as e:
        for line in e.lines():
            print(printable(line), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("derive: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug of ours: one line, and a code that says so
        print(printable(f"derive: internal error ({type(e).__name__}: {e}); please report it"), file=sys.stderr)
        return 70
