"""Run the CLI: python -m generator."""

from .cli import main

main(prog_name="derive")
