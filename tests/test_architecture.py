"""The package's layout keeps its promises: no import cycles, and every op named in ops/ only."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import sympy as sp

PACKAGE = Path(__file__).resolve().parent.parent / "generator"


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Return every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Return each module's imports of the package's modules, at every level (module, function, class)."""
    known = modules(root)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                # `from . import x` and `from .pkg import mod` name modules; other names live in the stem
                targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem for a in node.names]
            for target in targets:
                if target in known and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a list of modules (first repeated last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def op_names() -> set[str]:
    """Return every registered op's key and every name it is spelled with in an expression."""
    from generator.ops import REGISTRY

    names = set(REGISTRY)
    for op in REGISTRY.values():
        spelling = getattr(op, "spelling", None)  # None in the layout before ops/ had spellings
        names.update(spelling.names if spelling else ())
        if spelling and spelling.attribute and spelling.attribute not in WORDS:
            names.add(spelling.attribute)
    return names


# attributes that are ordinary words elsewhere: x.max(dim).values is torch's, "values" also the JSON's key and a dict's method
WORDS = ("values",)


def op_operators() -> set[str]:
    """Return the names of the Python operators (ast classes) that spell an op: Add, USub, MatMult..."""
    from generator.ops import REGISTRY

    spellings = [getattr(op, "spelling", None) for op in REGISTRY.values()]
    return {s.operator.__name__ for s in spellings if s and s.operator}


# Words that happen to equal an op's name but mean something else where they stand.
NOT_OPS = {
    ("generator/document/glance.py", "sign"): "a reason a glance picks an element (its sign differs)",
    ("generator/spec/schema.py", "minimum"): "JSON Schema's keyword",
    ("generator/spec/schema.py", "maximum"): "JSON Schema's keyword",
    ("generator/spec/python.py", "linear"): "the kind of module nn.Linear is (its forward is written with @ and +)",
    ("generator/document/parts.py", "linear"): "the kind of module nn.Linear is",
    ("generator/spec/python.py", "mean"): "a keyword of tensor.normal_(mean, std), which draws numbers",
    ("generator/spec/python.py", "std"): "a keyword of tensor.normal_(mean, std), which draws numbers",
}


def op_names_outside_ops(root: Path = PACKAGE) -> list[str]:
    """Return path:line: 'name' for every string constant outside ops/ equal to an op's key or spelling."""
    names = op_names()
    operators = op_operators()
    hits = []
    for name, path in modules(root).items():
        if name == "generator.ops" or name.startswith("generator.ops."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # f-strings' literal parts are Constant nodes too
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names \
                    and (str(path.relative_to(root.parent)), node.value) not in NOT_OPS:
                hits.append(f"{path.relative_to(root.parent)}:{node.lineno}: {node.value!r}")
            # an operator an op is spelled by, named as ast.Add (its symbol, + or *, is ordinary text elsewhere)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ast" \
                    and node.attr in operators:
                hits.append(f"{path.relative_to(root.parent)}:{node.lineno}: ast.{node.attr}")
    return sorted(hits)


class TestImports:
    def test_no_cycle(self):
        """No module imports itself through others, counting imports inside functions."""
        cycle = find_cycle(import_graph())
        assert cycle is None, "import cycle: " + " -> ".join(cycle)

    def test_finds_a_cycle(self, tmp_path):
        """The cycle finder sees a cycle made by relative imports inside a function."""
        pkg = tmp_path / "generator"
        (pkg / "sub").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "sub" / "__init__.py").write_text("")
        (pkg / "a.py").write_text("from .sub import b\n")
        (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
        assert find_cycle(import_graph(pkg)) == ["generator.a", "generator.sub.b", "generator.a"]


class TestOpNames:
    def test_no_op_name_outside_ops(self):
        """No module outside generator/ops/ spells an op's key or spelling (a string, or an ast operator class)."""
        assert op_names_outside_ops() == []

    def test_finds_an_op_name(self, tmp_path):
        """The search sees an op's name in an f-string part outside ops/."""
        pkg = tmp_path / "generator"
        pkg.mkdir()
        (pkg / "x.py").write_text('def f(n):\n    return f"{n}clamp"\n\n\ng = "clamp"\nh = ast.MatMult\n')
        assert op_names_outside_ops(pkg) == [
            "generator/x.py:2: 'clamp'", "generator/x.py:5: 'clamp'", "generator/x.py:6: ast.MatMult",
        ]


# A toy op, added as a newcomer would: one definition, here, registered at test time; nothing else changes.
# Rule and note sentences: "power rule" is already in both catalogs, and cube has no kink, so no catalog needs editing.
def cube_op():
    from generator.ops.base import Spelling
    from generator.ops.elementwise import Elementwise

    return Elementwise(
        "cube", "power rule", "PowBackward0", Spelling(names=("cube",)),
        f=lambda a: a**3, df=(lambda a, o: 3 * a**2,), tex=lambda a: f"{{{a}}}^{{3}}",
        torch_fn=lambda torch, a: a**3,  # torch has no cube: the op says how torch computes it
    )


CUBE_SPEC = """\
title: "A toy op: the cube"
inputs:
  x:
    value: [1.5, -2, 0.5]
    requires_grad: true
steps:
  y: x.cube()
  z: torch.cube(y * 2).sum()
backward:
  output: z
"""


@pytest.fixture(params=["exact", "arrays"])
def cube(request, monkeypatch, tmp_path):
    """Register the cube op for one test; return a spec that uses both its spellings (derived exactly, or as large)."""
    from generator.engines import sparse
    from generator.ops import REGISTRY

    monkeypatch.setitem(REGISTRY, "cube", cube_op())
    if request.param == "arrays":
        monkeypatch.setattr(sparse, "SMALL", 0)
    path = tmp_path / "cube.yaml"
    path.write_text(CUBE_SPEC)
    return path


def torch_cube_grads():
    """Return x.grad and z for z = sum((2 x³)³), computed by torch's autograd alone."""
    import torch

    x = torch.tensor([1.5, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    z = ((x**3) * 2).pow(3).sum()
    z.backward()
    return x.grad.tolist(), z.item()


class TestToyOp:
    def test_spellings_and_grad_fn(self, cube):
        """Both spellings read as the new op, and its grad_fn is the one torch records."""
        import torch

        from generator.graph.walk import build_graph
        from generator.pipeline.check import forward
        from generator.spec.load import load

        graph = build_graph(load(cube))
        cubes = [n for n in graph.nodes if n.op == "cube"]
        assert len(cubes) == 2
        leaves = {"x": torch.tensor([1.5, -2.0, 0.5], dtype=torch.float64, requires_grad=True)}
        tensors = forward(torch, graph, leaves)
        assert [graph.grad_fn(n) for n in cubes] == [tensors[n.name].grad_fn.name() for n in cubes]

    def test_document_agrees_with_torch(self, cube, request):
        """The document (JSON and Markdown) built with the new op shows torch's numbers and its formula."""
        from generator.pipeline.build import render_spec

        made = render_spec(cube, ("md", "json"), None)
        data = json.loads(made["cube.json"])
        grad, z = torch_cube_grads()
        assert data["grads"]["x"] == pytest.approx(grad, rel=1e-12)
        assert data["values"]["z"] == pytest.approx(z, rel=1e-12)
        md = made["cube.md"].decode()
        assert "| `y` | $y = {x}^{3}$ | 3 | `PowBackward0` | yes |" in md
        if request.node.callspec.params["cube"] == "exact":
            assert "y_{1} = {x_{1}}^{3} = {\\left(-2\\right)}^{3} = -8" in md
        else:
            assert "y_{i} &= {x_{i}}^{3}" in md  # the large document's generic element, aligned with the next steps

    def test_check_agrees_with_torch(self, cube):
        """check finds no number that differs (torch runs it as t ** 3), and says torch has no x.cube() to run."""
        from generator.pipeline.build import compare_spec

        assert compare_spec(cube) == [f"{cube}: the document's code, run in torch, exited with code 1:"
                                      " AttributeError: 'Tensor' object has no attribute 'cube'"]

    def test_derivative_is_sympys(self):
        """The op's local derivative is sympy's derivative of its forward."""
        a = sp.Symbol("a", real=True)
        op = cube_op()
        assert sp.simplify(op.df[0](a, op.f(a)) - sp.diff(op.f(a), a)) == 0
