"""What a document says torch prints and records: its block is its code's real output, its grad_fns torch's own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from generator.document.code import torch_code
from generator.document.small import build_document
from generator.pipeline.build import derive_spec
from generator.pipeline.check import forward, import_torch
from generator.pipeline.script import Refused, Started, vet

from .helpers import GALLERY, run_spec

# Small examples with a part of the graph that does not require grad (the sin(x) and 1 - y among them),
# and float32 layers whose gradients torch prints only as its kernels round: tanh's 1 - y*y with one rounding,
# softmax's sum of exps one after another, times its reciprocal.
NO_GRAD = {
    "sin_of_constant": ({"x": ([0.5, 1.5, -2], False), "w": ([0.3, -1.2, 2.5], True)},
                        {"y": "x.sin()", "z": "1 - y", "out": "(w * z).sum()"}, "out"),
    "reciprocal_of_constant": ({"x": ([1, 2, 4], False), "w": ([0.5, -1, 3], True)},
                               {"r": "2 / x", "out": "(w * r * r).mean()"}, "out"),
    "constant_matrix": ({"A": ([[1, 2], [0.5, -1]], False), "x": ([1, -1], True)},
                        {"B": "A @ A.T", "y": "B @ x", "out": "y.norm()"}, "out"),
    "constant_scalar": ({"x": ([0.1, 0.2, 0.3], False), "w": ([2, 3, 4], True)},
                        {"k": "x.exp().sum()", "h": "w * k + 1", "out": "h.sum()"}, "out"),
    "tanh_layer": ({"x": ([-1.1, -1.9], False), "W": ([[0.56, -1.5], [0.19, 1.95], [-0.78, -1.78]], True),
                    "b": ([-0.66, -1.63, 0.1], True)},
                   {"h": "(W @ x + b).tanh()", "out": "(h * h).sum()"}, "out"),
    "softmax_layer": ({"x": ([-1.91, 0.5, 0.3, 0.63], False),
                       "W": ([[1.06, -1.4, -1.82, 0.9], [1.6, 1.3, -1.7, -1.47], [1.84, 1.3, 0.5, -0.0],
                              [-0.2, 1.0, 0.6, 0.98], [-1.0, 1.4, 0.9, -1.08]], True),
                       "b": ([-0.02, -1.69, 1.1, -1.7, -0.67], True),
                       "V": ([[0.5, -2.0, -0.1, 0.77, -0.84], [-0.14, 1.1, -0.8, 1.7, -0.8]], True)},
                      {"h": "torch.softmax(W @ x + b, dim=0)", "out": "(V @ h).sum()"}, "out"),
}
SMALL = {f"{name}_{dtype}": (spec, dtype) for name, spec in NO_GRAD.items() for dtype in ("float32", "float64")}

# Runs each script in one fresh Python with torch, printing to a buffer, and reports what it printed and,
# per variable, type(t.grad_fn).__name__ (or None), t.requires_grad and t.is_leaf.
RUNNER = """
import contextlib, io, json, runpy, sys
import torch
found = {}
for stem, path in json.loads(sys.argv[1]).items():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        scope = runpy.run_path(path, run_name="__main__")
    labels = {k: [None if v.grad_fn is None else type(v.grad_fn).__name__, v.requires_grad, v.is_leaf]
              for k, v in scope.items() if isinstance(v, torch.Tensor)}
    found[stem] = {"stdout": out.getvalue(), "labels": labels}
with open(sys.argv[2], "w") as f:
    json.dump(found, f)
"""


@pytest.fixture(scope="module")
def derivations():
    """Derive every gallery spec and every small example once."""
    found = {p.stem: derive_spec(p) for p in GALLERY}
    for stem, ((inputs, steps, backward), dtype) in SMALL.items():
        found[stem] = run_spec(inputs, steps, backward, dtype=dtype)
    return found


@pytest.fixture(scope="module")
def documents(derivations):
    """Build each document model once."""
    return {stem: build_document(d, stem=stem) for stem, d in derivations.items()}


@pytest.fixture(scope="module")
def ran(derivations, tmp_path_factory):
    """Run every example's code with real torch: what it printed and its tensors' labels, by stem."""
    folder = tmp_path_factory.mktemp("scripts")
    paths = {}
    for stem, d in derivations.items():
        paths[stem] = str(folder / f"{stem}.py")
        (folder / f"{stem}.py").write_text(torch_code(d.graph))
    result = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(paths), str(folder / "found.json")],
                            capture_output=True, text=True, timeout=600, cwd=folder)
    assert result.returncode == 0, result.stderr
    return json.loads((folder / "found.json").read_text())


def _torch_labels(derivation, named):
    """Return torch's (grad_fn, requires_grad, is_leaf) per node: named tensors from the script, the rest in-process."""
    torch = import_torch()
    graph = derivation.graph
    tdtype = getattr(torch, graph.spec.dtype)
    leaves = {i.name: torch.tensor([float(v) for v in i.value.values], dtype=tdtype).reshape(i.value.shape)
              .requires_grad_(i.requires_grad) for i in graph.spec.inputs}
    tensors = forward(torch, graph, leaves)
    labels = {n: (None if t.grad_fn is None else type(t.grad_fn).__name__, t.requires_grad, t.is_leaf)
              for n, t in tensors.items()}
    labels.update({n: tuple(v) for n, v in named.items() if n in labels})
    return labels


@pytest.mark.parametrize("stem", [p.stem for p in GALLERY] + list(SMALL))
def test_every_grad_fn_is_torchs(stem, derivations, documents, ran):
    """The table, the picture, the forward pass and the backward sentences name the grad_fn torch records."""
    labels = _torch_labels(derivations[stem], ran[stem]["labels"])
    doc = documents[stem]
    for row in doc.graph:
        assert (None if row.is_leaf else row.grad_fn, row.requires_grad, row.is_leaf) == labels[row.name], row.name
    for box in doc.picture.nodes:
        assert (box.grad_fn or None) == labels[box.name][0], box.name
    for item in doc.forward:
        assert (item.grad_fn or None) == labels[item.name][0], item.name
    graph = derivations[stem].graph
    for call in doc.calls:
        for item in call.backward:
            consumers = {labels[n.name][0] for n in graph.nodes if item.name in n.parents}
            assert set(item.grad_fns) <= consumers - {None}, item.name


def test_no_grad_examples_name_no_backward_node(documents):
    """sin(x) and 1 - y of tensors that do not require grad are leaves without grad_fn, as the issue says torch has."""
    rows = {r.name: r for r in documents["sin_of_constant_float32"].graph}
    assert [(rows[n].grad_fn, rows[n].requires_grad, rows[n].is_leaf) for n in ("y", "z")] == [("", False, True)] * 2
    assert (rows["out"].grad_fn, rows["out"].is_leaf) == ("SumBackward0", False)


@pytest.mark.parametrize("stem", list(SMALL))
def test_printed_block_is_what_its_code_prints(stem, documents, ran):
    """The document's "Running it prints" block is its code's real output, byte for byte, in either dtype."""
    assert documents[stem].printed == ran[stem]["stdout"]


@pytest.mark.parametrize("stem", [p.stem for p in GALLERY] + list(SMALL))
def test_generated_code_passes_the_whitelist(stem, derivations):
    """Every script the generator writes is one the check agrees to run."""
    vet(torch_code(derivations[stem].graph))


FORGED = [
    "import os",
    "import torch as t",
    "x = torch.load('f')",
    "x = torch.ones(2).__class__",
    "print(open('/etc/passwd').read())",
    "exec('1')",
    "x = torch.tensor('a')",
    "x = torch.ones(2)\ny = x[x]",
    "x = torch.ones(2)\nx.numpy()",
    "x = [c for c in (1, 2)]",
    "torch = 1",
    "x = lambda: 0",
    "x = torch.ones(2)\nx.backward(gradient=x)",
    "y = x",
    "x = torch.ones(2)\nx.requires_grad_(1)",
    "x = torch.ones(2)\nx.requires_grad = x",
    "x = torch.ones(2)\nx.requires_grad_(True, 1)",
    "x = torch.ones(2)\nx.requires_grad_(requires_grad=True)",
    "y.requires_grad_(True)",
]


@pytest.mark.parametrize("code", FORGED)
def test_check_refuses_code_the_generator_never_writes(code):
    """An import, a call, an attribute, a constant or a name outside the generator's own is refused."""
    with pytest.raises(Refused):
        vet(code)


def test_forged_name_cannot_inject_code(tmp_path):
    """A graph whose input name holds code (a spec the loader would refuse) is refused before anything runs."""
    marker = tmp_path / "ran"
    forged = f"x = 0\nopen({str(marker)!r}, 'w').write('ran')\nx"
    derivation = run_spec({forged: ([1, 2], False), "w": ([1, 2], True)}, {"out": "(w * w).sum()"}, "out")
    code = torch_code(derivation.graph)
    assert f"open({str(marker)!r}" in code
    with pytest.raises(Refused):
        Started(code)
    assert not marker.exists()
