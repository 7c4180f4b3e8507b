"""The derive command: parses options and calls the plain functions in build."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .errors import DeriveError
from .isolate import DEFAULT_TIMEOUT

DEFAULT_SPECS = Path("derivations")
DEFAULT_OUT = Path("output")


def _formats(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    from .build import FORMATS

    chosen = tuple(dict.fromkeys(f.strip() for f in value.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise click.BadParameter(f"unknown format {', '.join(unknown) or 'none'} (allowed: {', '.join(FORMATS)})")
    return chosen


def _lang(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from .load import LANGS

    if value is not None and value not in LANGS:
        raise click.BadParameter(f"unknown language {value} (allowed: {', '.join(LANGS)})")
    return value


def _flavor(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from .load import FLAVORS

    if value is not None and value not in FLAVORS:
        raise click.BadParameter(f"unknown flavor {value} (allowed: {', '.join(FLAVORS)})")
    return value


def _specs(paths: tuple[Path, ...]) -> list[Path]:
    from .build import find_specs

    specs = find_specs(list(paths) or [DEFAULT_SPECS])
    if not specs:
        raise DeriveError("no spec files found (allowed: .yaml or .yml files)")
    return specs


def _report(outcomes: list, verb: str) -> None:
    """Print every error line, then the closing summary; exit 1 if any spec failed."""
    for outcome in outcomes:
        for line in outcome.errors:
            click.echo(line, err=True)
    failed = sum(not o.ok for o in outcomes)
    click.echo(f"{len(outcomes) - failed} {verb}, {failed} failed", err=failed > 0)
    if failed:
        sys.exit(1)


class _Group(click.Group):
    """A click group that turns every DeriveError into its lines and exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except DeriveError as e:
            for line in e.lines():
                click.echo(line, err=True)
            ctx.exit(e.exit_code)
        except Exception as e:  # a bug of ours: one line, and a code that says so
            click.echo(f"derive: internal error ({type(e).__name__}: {e}); please report it", err=True)
            ctx.exit(70)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="derive")
def main() -> None:
    """Explain PyTorch autograd examples step by step, checked against torch."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Folder for the outputs.")
@click.option("--format", "formats", default="md", show_default=True, callback=_formats,
              help="Comma-separated: md, json, tex, pdf.")
@click.option("--lang", default=None, callback=_lang,
              help="Language of the documents: en, zh (default: each spec's lang).")
@click.option("--flavor", default=None, callback=_flavor,
              help="Markdown math syntax: portable, github, mkdocs, hugo, jekyll (default: each spec's flavor).")
@click.option("--front-matter", is_flag=True,
              help="Start the Markdown with YAML front matter (title, math: true); hugo and jekyll only.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds one spec may take to derive.")
def build(paths: tuple[Path, ...], out: Path, formats: tuple[str, ...], lang: str | None, flavor: str | None,
          front_matter: bool, timeout: float) -> None:
    """Build each spec (files or folders; default derivations/) into OUT/<stem>.<format>."""
    from .build import build_spec

    outcomes = [
        build_spec(p, out=out, formats=formats, lang=lang, flavor=flavor, front_matter=front_matter, timeout=timeout)
        for p in _specs(paths)
    ]
    _report(outcomes, "built")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds one spec may take to derive and run.")
def check(paths: tuple[Path, ...], timeout: float) -> None:
    """Run each spec in real torch (float64) and compare values, grads and Jacobians."""
    from .build import check_spec
    from .check import import_torch

    specs = _specs(paths)
    import_torch()
    _report([check_spec(p, timeout=timeout) for p in specs], "agree with torch")


@main.command()
def schema() -> None:
    """Print the JSON Schema of the spec format (for editors such as VS Code's YAML extension)."""
    import json

    from .schema import spec_schema

    click.echo(json.dumps(spec_schema(), indent=2))


@main.command()
@click.argument("name")
@click.option("--dir", "folder", type=click.Path(path_type=Path), default=DEFAULT_SPECS, show_default=True,
              help="Folder for the new spec.")
def new(name: str, folder: Path) -> None:
    """Write a commented starter spec, FOLDER/NAME.yaml, that builds as it is."""
    from .build import new_spec

    path = new_spec(name, folder=folder)
    click.echo(f"wrote {path}: build it with derive build {path}")

