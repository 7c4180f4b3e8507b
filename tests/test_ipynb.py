"""--format ipynb: every gallery notebook is valid, runs on a real kernel and prints what the document says.

The oracle is torch itself: each notebook is executed with nbclient on an ipykernel kernel, and the output
its code cell prints must equal the output stored in it, which is the document's printed block.
"""

from __future__ import annotations

import copy
import json
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from generator.pipeline.build import build_specs
from generator.render.notebook import FLAVOR

from .helpers import GALLERY
from .test_katex import katex


def execute(path: str) -> dict:
    """Run a notebook on a fresh python3 kernel (ipykernel, this Python); return the executed notebook."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    return notebook


def printed(cell: dict, stream: str = "stdout") -> str:
    """Return what a code cell's outputs hold on one stream, memory addresses as the document writes them (0x...)."""
    texts = [o["text"] for o in cell["outputs"] if o["output_type"] == "stream" and o["name"] == stream]
    text = "".join(t if isinstance(t, str) else "".join(t) for t in texts)  # nbformat stores text as lines
    return re.sub(r" at 0x[0-9a-f]+>", " at 0x...>", text)


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory) -> dict[str, Path]:
    """Build the whole gallery as notebooks, with each spec's Markdown in the notebook's flavor beside it."""
    out = tmp_path_factory.mktemp("ipynb")
    outcomes = build_specs(list(GALLERY), out=out, formats=("ipynb",), jobs=2, force=True, cache=False)
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]
    return {p.stem: p for p in sorted(out.glob("*.ipynb"))}


@pytest.fixture(scope="module")
def executed(notebooks) -> dict[str, dict]:
    """Every notebook, run on a real kernel, two at a time."""
    with ProcessPoolExecutor(2) as pool:
        return dict(zip(notebooks, pool.map(execute, map(str, notebooks.values()))))


def test_every_notebook_is_valid(notebooks):
    """Each notebook validates against nbformat 4's schema, cell ids included."""
    assert len(notebooks) == len(GALLERY)
    for name, path in notebooks.items():
        nbformat.validate(nbformat.read(str(path), as_version=4))


def test_running_prints_the_documents_output(notebooks, executed):
    """Run on a kernel, each notebook's code prints exactly its stored output, the document's printed block."""
    wrong = {}
    for name, path in notebooks.items():
        stored = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
        ran = [c for c in executed[name]["cells"] if c["cell_type"] == "code"]
        assert len(stored) == len(ran) == 1, name
        errors = [o for o in ran[0]["outputs"] if o["output_type"] == "error"]
        if errors or printed(ran[0]) != printed(stored[0]) or not printed(stored[0]):
            wrong[name] = (errors, printed(ran[0])[:300], printed(stored[0])[:300])
    assert wrong == {}


def test_a_wrong_stored_output_is_caught(notebooks, tmp_path):
    """The comparison fails when the stored output is not what torch prints (one number changed)."""
    name = "01_scalar_mean"
    notebook = json.loads(notebooks[name].read_text(encoding="utf-8"))
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    wrong = copy.deepcopy(cell)
    wrong["outputs"][0]["text"] = [line.replace("4.5000", "4.5001", 1) for line in wrong["outputs"][0]["text"]]
    path = tmp_path / f"{name}.ipynb"
    notebook["cells"] = [wrong if c is cell else c for c in notebook["cells"]]
    path.write_text(json.dumps(notebook), encoding="utf-8")
    ran = next(c for c in execute(str(path))["cells"] if c["cell_type"] == "code")
    assert printed(ran) == printed(cell) != printed(wrong)


def test_markdown_cells_math_renders(notebooks, tmp_path):
    """KaTeX's strict mode accepts every formula of the Markdown cells, and finds as many as the Markdown has."""
    files = []
    for name, path in notebooks.items():
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        files.append(tmp_path / f"{name}.md")
        files[-1].write_text("\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"), encoding="utf-8")
    report = katex(files, FLAVOR)
    assert report["errors"] == [] and report["blocks"] > 25 * len(files)
