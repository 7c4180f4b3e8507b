"""The package's layout keeps its promises: no import cycles, and every op named in ops/ only."""

from __future__ import annotations

import ast
from pathlib import Path

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
        if spelling and spelling.attribute:
            names.add(spelling.attribute)
    return names


def op_names_outside_ops(root: Path = PACKAGE) -> list[str]:
    """Return path:line: 'name' for every string constant outside ops/ equal to an op's key or spelling."""
    names = op_names()
    hits = []
    for name, path in modules(root).items():
        if name == "generator.ops" or name.startswith("generator.ops."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # f-strings' literal parts are Constant nodes too
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                hits.append(f"{path.relative_to(root.parent)}:{node.lineno}: {node.value!r}")
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
        """No module outside generator/ops/ spells an op's key or spelling as a string."""
        assert op_names_outside_ops() == []

    def test_finds_an_op_name(self, tmp_path):
        """The search sees an op's name in an f-string part outside ops/."""
        pkg = tmp_path / "generator"
        pkg.mkdir()
        (pkg / "x.py").write_text('def f(n):\n    return f"{n}clamp"\n\n\ng = "clamp"\n')
        assert op_names_outside_ops(pkg) == ["generator/x.py:2: 'clamp'", "generator/x.py:5: 'clamp'"]
