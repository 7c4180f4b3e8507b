"""Issue 12's measure of done: real tutorials' autograd snippets, read by derive, agree with torch run for real.

Each tests/corpus/NN_name.py is run twice. The oracle runs it in a fresh isolated Python with real torch
(trusted test code may run it; derive itself never does) and records its stdout and, afterwards, the final
.grad of every module-level name bound to a leaf tensor that requires grad. derive reads the same file with
`build --format json` and `check`. A snippet is EXPLAINED when both commands succeed and derive's "printed"
and "grads" are torch's; REFUSED when build exits 1 with only located `path:line: what (allowed: ...)` lines;
anything else is a FAILURE. At least 90 % must be explained and none may fail.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
SNIPPETS = sorted(CORPUS.glob("[0-9][0-9]_*.py"))
BAR = 0.9
TIMEOUT = 900  # seconds for one subprocess; derive's own --timeout stops a runaway derivation first

# Runs one snippet as __main__ and writes, to the file named by argv[2], each leaf's final grad and dtype.
ORACLE = r"""
import json, runpy, sys
import torch
names = runpy.run_path(sys.argv[1], run_name="__main__")
leaves = {
    name: {"grad": None if value.grad is None else value.grad.tolist(), "dtype": str(value.dtype)}
    for name, value in names.items()
    if isinstance(value, torch.Tensor) and value.is_leaf and value.requires_grad
}
with open(sys.argv[2], "w") as f:
    json.dump(leaves, f)
"""

# A repr such as <AddBackward0 object at 0x7f...> carries a memory address that changes on every run and
# that no reader of the code can know: both sides are compared with addresses blanked.
ADDRESS = re.compile(r"0x(?:[0-9a-fA-F]+|\.\.\.)")  # derive writes an address as 0x...

# Relative tolerance per leaf dtype: derive predicts torch's float32 rounding, and the JSON floats it writes
# may differ from torch's in the last bit of a float32 (2^-24 ~ 6e-8) or float64 (2^-53 ~ 1e-16); the
# tolerances leave a decade of room and nothing more. Elements are compared relative to the largest
# magnitude in the same grad, so a cancellation residue (torch's 1e-8 where exact math gives 0) counts as
# the rounding it is.
TOLERANCE = {"torch.float64": 1e-12, "torch.float32": 1e-6}


@dataclass(frozen=True)
class Run:
    """What one process did."""

    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Torch:
    """What real torch printed and left in each leaf's .grad."""

    run: Run
    leaves: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How one snippet fared: explained, refused or failed, and why."""

    name: str
    kind: str
    why: str = ""
    messages: tuple[str, ...] = ()


def _run(args: list[str], **kw) -> Run:
    """Run a command from the repository root; a timeout becomes exit code -1."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT, **kw)
    except subprocess.TimeoutExpired:
        return Run(-1, "", f"timed out after {TIMEOUT} s")
    return Run(done.returncode, done.stdout, done.stderr)


def _rel(snippet: Path) -> str:
    """Return the snippet's path as given on the command line (relative to the root)."""
    return snippet.relative_to(ROOT).as_posix()


@cache
def oracle(snippet: Path) -> Torch:
    """Run the snippet in real torch in a fresh isolated Python; return its stdout and leaves' grads."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "leaves.json"
        run = _run([sys.executable, "-I", "-c", ORACLE, str(snippet), str(out)])
        leaves = json.loads(out.read_text()) if run.code == 0 else {}
    return Torch(run, leaves)


@cache
def derive(snippet: Path) -> tuple[Run, Run, dict | None]:
    """Run `derive build --format json` and `derive check` on the snippet; return both runs and the JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        cli = [sys.executable, "-m", "generator"]
        build = _run([*cli, "build", _rel(snippet), "--format", "json", "--out", tmp, "--force", "-j", "1"], env=env)
        path = Path(tmp) / f"{snippet.stem}.json"
        document = json.loads(path.read_text()) if build.code == 0 and path.is_file() else None
    check = _run([*cli, "check", _rel(snippet)], env=env) if build.code == 0 else Run(-1, "", "not run")
    return build, check, document


def _shape_and_values(value) -> tuple[tuple, list[float]]:
    """Return a nested list's shape and its elements in order."""
    if not isinstance(value, list):
        return (), [value]
    parts = [_shape_and_values(v) for v in value]
    shapes = {p[0] for p in parts}
    shape = (len(value),) + (parts[0][0] if len(shapes) == 1 else ("ragged",))
    return shape, [x for p in parts for x in p[1]]


def grad_mismatch(name: str, ours, theirs, dtype: str) -> str:
    """Return why derive's grad for one leaf is not torch's, or "" when it is (within dtype rounding)."""
    if theirs is None or ours is None:
        return "" if theirs is ours else f"{name}.grad: torch {theirs!r}, derive {ours!r}"
    (shape, expected), (got_shape, got) = _shape_and_values(theirs), _shape_and_values(ours)
    if shape != got_shape:
        return f"{name}.grad: torch shape {shape}, derive {got_shape}"
    tol = TOLERANCE.get(dtype, 1e-6)
    scale = max((abs(x) for x in expected), default=0.0)
    for i, (e, g) in enumerate(zip(expected, got)):
        if not isinstance(g, (int, float)) or not math.isclose(g, e, rel_tol=tol, abs_tol=tol * scale):
            return f"{name}.grad element {i}: torch {e!r}, derive {g!r}"
    return ""


def classify(snippet: str, torch_run: Torch, build: Run, check: Run, document: dict | None) -> Outcome:
    """Sort one snippet into explained, refused (well) or failed, from torch's run and derive's."""
    name = Path(snippet).name
    if torch_run.run.code != 0:
        return Outcome(name, "failed", f"the snippet itself fails in torch: {torch_run.run.stderr.strip()[-300:]}")
    lines = tuple(line for line in build.stderr.splitlines() if line.strip())
    if build.code == 1 and lines and lines[-1] == "0 built, 1 failed":  # the CLI's count after a refused spec
        located = re.compile(rf"^{re.escape(snippet)}:\d+: .+ \(allowed: .+\)$")
        if len(lines) > 1 and all(located.match(line) for line in lines[:-1]):
            return Outcome(name, "refused", messages=lines[:-1])
        return Outcome(name, "failed", f"refused without a located message: {build.stderr.strip()[:300]!r}")
    if build.code != 0:
        return Outcome(name, "failed", f"build exit {build.code}: {build.stderr.strip()[:300]!r}")
    if check.code != 0:
        return Outcome(name, "failed", f"check exit {check.code}: {check.stderr.strip()[:300]!r}")
    if not isinstance(document, dict) or not isinstance(document.get("grads"), dict):
        return Outcome(name, "failed", "the JSON document has no \"grads\" object")
    printed = document.get("printed")
    if not isinstance(printed, str) or ADDRESS.sub("0x", printed) != ADDRESS.sub("0x", torch_run.run.stdout):
        return Outcome(name, "failed", f"printed differs: torch {torch_run.run.stdout[:200]!r}, derive {str(printed)[:200]!r}")
    grads = document["grads"]
    if set(grads) != set(torch_run.leaves):
        return Outcome(name, "failed", f"leaves differ: torch {sorted(torch_run.leaves)}, derive {sorted(grads)}")
    for leaf, seen in torch_run.leaves.items():
        why = grad_mismatch(leaf, grads[leaf], seen["grad"], seen["dtype"])
        if why:
            return Outcome(name, "failed", why)
    return Outcome(name, "explained")


def outcome(snippet: Path) -> Outcome:
    """Run torch and derive on one snippet and classify the result."""
    return classify(_rel(snippet), oracle(snippet), *derive(snippet))


def _each(work) -> list:
    """Apply work to every snippet, two at a time (the machine's cores are shared)."""
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        return list(pool.map(work, SNIPPETS))


@pytest.fixture(scope="module")
def torch_runs() -> dict[str, Torch]:
    """Every snippet's torch run, computed once for the module."""
    return {p.name: t for p, t in zip(SNIPPETS, _each(oracle))}


@pytest.fixture(scope="module")
def outcomes(torch_runs) -> dict[str, Outcome]:
    """Every snippet's outcome, computed once for the module."""
    return {o.name: o for o in _each(outcome)}


def _good_run(stdout: str, leaves: dict) -> Torch:
    """Return a successful torch run with this stdout and these leaves."""
    return Torch(Run(0, stdout, ""), leaves)


F32 = "torch.float32"


class TestCorpusItself:
    def test_there_are_at_least_32_snippets(self):
        """The corpus holds at least 32 snippets, numbered NN_name.py."""
        assert len(SNIPPETS) >= 32, [p.name for p in SNIPPETS]

    @pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda p: p.stem)
    def test_cites_its_source_and_uses_no_random_numbers(self, snippet):
        """Each snippet has a title, cites its source, imports torch, and draws no random tensor."""
        tree = ast.parse(snippet.read_text(encoding="utf-8"))
        doc = ast.get_docstring(tree) or ""
        assert doc.splitlines() and doc.splitlines()[0].strip(), "no title line"
        assert "Source: " in doc, "no Source: line"
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "torch" in imported
        calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        assert not calls & {"rand", "randn", "randint", "rand_like", "randn_like", "manual_seed"}

    @pytest.mark.long
    @pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda p: p.stem)
    def test_runs_in_torch_and_prints(self, torch_runs, snippet):
        """Each snippet runs as it is in plain torch and prints something."""
        ran = torch_runs[snippet.name]
        assert ran.run.code == 0, ran.run.stderr
        assert ran.run.stdout.strip()


class TestOracle:
    def test_seed_example_prints_and_records_the_grad(self):
        """The seed's first example prints torch's 4.5 matrix and the oracle records x.grad as a nested list."""
        ran = oracle(CORPUS / "01_seed_mean_backward.py")
        assert ran.run.stdout == "tensor([[4.5000, 4.5000],\n        [4.5000, 4.5000]])\n"
        assert ran.leaves == {"x": {"grad": [[4.5, 4.5], [4.5, 4.5]], "dtype": F32}}

    def test_records_none_for_a_leaf_without_grad_and_skips_non_leaves(self):
        """A leaf never reached by backward is recorded as None; sums of leaves are not leaves."""
        ran = oracle(CORPUS / "07_blitz_gentle_exclusion.py")
        assert ran.leaves == {"z": {"grad": None, "dtype": F32}}

    def test_records_float64_leaves_after_rebinding(self):
        """micrograd's float64 leaves a and b keep their grads though c, d and g are rebound."""
        ran = oracle(CORPUS / "29_micrograd_more_ops.py")
        assert ran.leaves["a"]["dtype"] == "torch.float64"
        assert ran.leaves["a"]["grad"] == pytest.approx([138.83381924198252], rel=1e-12)
        assert ran.leaves["b"]["grad"] == pytest.approx([645.5772594752186], rel=1e-12)


class TestClassify:
    SNIPPET = "tests/corpus/99_x.py"
    TORCH = _good_run("tensor([2.])\n", {"x": {"grad": [2.0], "dtype": F32}})
    OK = Run(0, "", "")

    def test_agreement_is_explained(self):
        """Exit 0 twice, the same printed text and the same grads: explained."""
        doc = {"printed": "tensor([2.])\n", "grads": {"x": [2.0000001]}}
        assert classify(self.SNIPPET, self.TORCH, self.OK, self.OK, doc).kind == "explained"

    def test_a_wrong_number_fails(self):
        """A grad off by more than float32 rounding is a failure naming the leaf."""
        doc = {"printed": "tensor([2.])\n", "grads": {"x": [2.001]}}
        got = classify(self.SNIPPET, self.TORCH, self.OK, self.OK, doc)
        assert (got.kind, got.why.split(" ")[0]) == ("failed", "x.grad")

    def test_a_wrong_printed_line_fails(self):
        """A printed text that differs from torch's stdout is a failure."""
        doc = {"printed": "tensor([2.0000])\n", "grads": {"x": [2.0]}}
        assert classify(self.SNIPPET, self.TORCH, self.OK, self.OK, doc).kind == "failed"

    def test_memory_addresses_are_not_compared(self):
        """A grad_fn repr's address may differ; the rest of the line may not."""
        run = _good_run("<AddBackward0 object at 0x7f00aa>\n", {})
        same = {"printed": "<AddBackward0 object at 0x55bb01>\n", "grads": {}}
        other = {"printed": "<MulBackward0 object at 0x55bb01>\n", "grads": {}}
        assert classify(self.SNIPPET, run, self.OK, self.OK, same).kind == "explained"
        assert classify(self.SNIPPET, run, self.OK, self.OK, other).kind == "failed"

    def test_missing_or_extra_leaves_fail(self):
        """derive must name exactly the leaves torch has."""
        doc = {"printed": "tensor([2.])\n", "grads": {"x": [2.0], "y": None}}
        assert classify(self.SNIPPET, self.TORCH, self.OK, self.OK, doc).kind == "failed"

    def test_none_against_a_value_fails(self):
        """A leaf torch left without grad must be null in derive's JSON, and the other way round."""
        doc = {"printed": "tensor([2.])\n", "grads": {"x": None}}
        assert classify(self.SNIPPET, self.TORCH, self.OK, self.OK, doc).kind == "failed"

    def test_check_failing_fails(self):
        """A build that passes but a check that does not is a failure."""
        doc = {"printed": "tensor([2.])\n", "grads": {"x": [2.0]}}
        assert classify(self.SNIPPET, self.TORCH, self.OK, Run(1, "", "disagree"), doc).kind == "failed"

    def test_located_refusal_is_refused(self):
        """Exit 1 with only `path:line: what (allowed: ...)` lines, then the CLI's count, is a refusal."""
        err = f"{self.SNIPPET}:7: register_hook is not supported (allowed: backward, grad.zero_())\n"
        got = classify(self.SNIPPET, self.TORCH, Run(1, "", err + "0 built, 1 failed\n"), Run(-1, "", ""), None)
        assert (got.kind, got.messages) == ("refused", (err.strip(),))

    def test_unlocated_or_crashing_refusal_fails(self):
        """A refusal with a line lacking the location or the allowed list, or a traceback, is a failure."""
        for err in ("register_hook is not supported (allowed: backward)\n",
                    f"{self.SNIPPET}:7: register_hook is not supported\n",
                    "Traceback (most recent call last):\n", ""):
            got = classify(self.SNIPPET, self.TORCH, Run(1, "", err + "0 built, 1 failed\n"), Run(-1, "", ""), None)
            assert got.kind == "failed", err

    def test_other_exit_codes_fail(self):
        """Exit 1 without the CLI's count, 2 or 70 (a bug) is a failure, not a refusal."""
        for code in (1, 2, 70):
            assert classify(self.SNIPPET, self.TORCH, Run(code, "", "x"), Run(-1, "", ""), None).kind == "failed"


# About 10 s per snippet once derive reads them (torch is imported three times: the oracle, derive check's
# torch run and its run of the document's code), so minutes for the corpus: `pytest -m long tests/test_corpus.py`.
@pytest.mark.long
class TestCorpusThroughDerive:
    def test_at_least_90_percent_explained_and_none_failed(self, outcomes, capsys):
        """At least 90 % of the corpus is explained, the rest refused well, none failed; the counts are printed."""
        by = {kind: [o for o in outcomes.values() if o.kind == kind] for kind in ("explained", "refused", "failed")}
        total = len(outcomes)
        lines = [f"corpus: explained {len(by['explained'])}/{total}, refused {len(by['refused'])}, "
                 f"failed {len(by['failed'])}"]
        lines += [f"  refused {o.name}: {m}" for o in by["refused"] for m in o.messages]
        lines += [f"  failed {o.name}: {o.why}" for o in by["failed"]]
        with capsys.disabled():
            print("\n" + "\n".join(lines))
        assert not by["failed"], "failed: " + ", ".join(o.name for o in by["failed"])
        assert len(by["explained"]) >= BAR * total, lines[0]

    @pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda p: p.stem)
    def test_snippet_is_explained_or_refused_well(self, outcomes, snippet):
        """Each snippet is explained in agreement with torch or refused with located messages."""
        got = outcomes[snippet.name]
        assert got.kind != "failed", f"{got.name}: {got.why}"
