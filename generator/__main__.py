"""Run the CLI: python -m generator."""

from .cli import run

run()
