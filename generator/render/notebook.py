"""The notebook: the Markdown document as Jupyter cells, its torch code a code cell with torch's output.

The cells are the document itself (the same template, so the same things in the same order), cut where
the example's code and its printed block are: those become one code cell whose stored output is the printed
block, so the notebook shows it unopened and reproduces it when run. Math is the portable flavor: $ and $$,
which Jupyter reads, spelled so that a renderer that parses Markdown first (GitHub's) leaves it whole; spec
text writes ( ) [ ] as entities, since Jupyter takes \\( and \\[ for math.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from ..document.model import Document
from ..engines.exact import Derivation
from .base import Finished
from .markdown import Markdown
from .messages import Messages

FLAVOR = "portable"  # inert math, brackets in spec text as entities


def lines(text: str) -> list[str]:
    """Return text as nbformat stores it: a list of lines, each keeping its newline."""
    return text.splitlines(keepends=True)


def markdown_cell(k: int, text: str) -> dict:
    """Return a Markdown cell."""
    return {"cell_type": "markdown", "id": f"cell-{k}", "metadata": {}, "source": lines(text.strip("\n"))}


def code_cell(k: int, code: str, printed: str) -> dict:
    """Return a code cell with what running it prints as its stored output."""
    outputs = [{"output_type": "stream", "name": "stdout", "text": lines(printed)}] if printed else []
    return {"cell_type": "code", "id": f"cell-{k}", "metadata": {}, "execution_count": 1 if outputs else None,
            "source": lines(code.rstrip("\n")), "outputs": outputs}


class Notebook(Finished):
    """A Jupyter notebook (nbformat 4.5) of the document, its example a code cell with torch's output."""

    ext = "ipynb"

    def render(self, *, document: Document, derivation: Derivation) -> bytes:
        styled = replace(document, flavor=FLAVOR, front_matter=False)
        text = Markdown().render(document=styled, derivation=derivation).decode("utf-8")
        example = f"```python\n{document.code}```\n\n{Messages(document.lang)('prints')}\n\n```text\n{document.printed}```\n"
        # the Markdown renderer closes up runs of blank lines, in code too
        before, found, after = text.partition(re.sub(r"\n{3,}", "\n\n", example))
        if not found:
            raise ValueError("the document's example is not where the notebook cuts it")
        cells = [markdown_cell(0, before), code_cell(1, document.code, document.printed)]
        if after.strip():
            cells.append(markdown_cell(2, after))
        notebook = {
            "cells": cells,
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        return (json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
