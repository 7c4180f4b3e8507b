"""Random valid specs from the grammar: derive never fails unexpectedly, and agrees with torch in both dtypes.

The work runs in-process (the functions the build and check children run), so any
unexpected exception fails the test with its traceback; a refusal must be a SpecError
whose every problem has a line.

`make test` tries a few hundred specs; `pytest -m long` (DERIVE_PROPERTY_EXAMPLES sets how
many, default 5000) runs the long version: it draws the specs first, then runs each in a child
under the build's budget, DERIVE_PROPERTY_JOBS (default: the CPU count) at once, and reports every
failing spec (a spec such as `x0 ** x0` at 1e308 can take minutes to derive exactly; a build
refuses it at its --timeout, and so does the long run, counting it apart). Both print how many
specs were tried.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from generator.engines import sparse as bulk
from generator.errors import DeriveError, SpecError
from generator.pipeline import check, isolate
from generator.pipeline.build import compare_spec, render_spec

SHAPES = [(), (1,), (2,), (3,), (2, 2), (2, 3), (3, 2)]
NUMBERS = ["1", "-1", "0.5", "2", "-0.25", "3", "1.5", "0.1", "-2", "0.75"]
# float64's and float32's edges: the largest and least numbers, subnormals, values that overflow exp
# and square, and negative zero; inf and nan are not allowed in YAML values (tests/bad/25_non_finite.yaml)
EXTREME = ["1e308", "-1e308", "1.7976931348623157e308", "1e-308", "5e-324", "-5e-324", "1e-310", "3e-324",
           "3.4e38", "-3.4e38", "1e-45", "1.4e-45", "1e20", "-1e20", "1e-40", "1e154", "1e-160", "710", "-750",
           "-0.0", "0", "1e100"]
# in expressions a literal is refused when Python would make it inf or 0.0 (1e400, 1e-400), so keep some
LITERALS = NUMBERS + ["1e308", "1e-308", "5e-324", "1e-310", "3.4e38", "1e-45", "1e20", "1e-20", "-0.0", "1e400"]
UNARY = ["exp()", "log()", "sqrt()", "sin()", "cos()", "tanh()", "sigmoid()", "relu()", "abs()", "sum()",
         "mean()", "norm()", "max()", "min()", "pow(2)", "clamp(min=-0.5, max=1)", "clamp(max=0.5)", "log1p()",
         "expm1()", "exp2()", "rsqrt()", "atan()", "asin()", "sinh()", "cosh()", "sign()", "floor()", "ceil()",
         "round()", "trunc()", "prod()", "var()", "std(unbiased=False)", "clamp_min(0.5)", "clamp_max(-0.25)"]
ALONG_DIM = ["sum(dim=0)", "mean(dim=-1)", "softmax(dim=0)", "log_softmax(dim=-1)", "sum(0, keepdim=True)", "unsqueeze(0)",
             "unsqueeze(-1)", "squeeze()", "flatten()", "prod(dim=0)", "logsumexp(-1)", "var(0, unbiased=False)",
             "std(dim=-1, correction=0)", "logsumexp(0, keepdim=True)", "max(0).values", "min(-1, keepdim=True)[0]",
             "norm(dim=0)", "norm(2, -1, True)", "chunk(2)[0]", "split(1, dim=-1)[-1]"]
TORCH_FORM = ["torch.exp({a})", "torch.relu({a})", "torch.sigmoid({a})", "torch.sum({a})", "torch.abs({a})",
              "torch.nn.functional.silu({a})", "torch.atan({a})", "torch.floor({a})",
              "torch.nn.functional.leaky_relu({a}, 0.2)", "torch.nn.functional.elu({a})",
              "torch.nn.functional.hardtanh({a})", "torch.nn.functional.softplus({a})", "torch.nn.functional.gelu({a})",
              "torch.nn.functional.gelu({a}, approximate='tanh')", "torch.mul({a}, 2)", "{a}.neg()", "{a}.div(4)",
              "torch.cat([{a}, {a} * 2], dim=0)", "torch.stack([{a}, {a}.exp()], -1)", "torch.stack(({a}, {a}))",
              "{a}.cumsum(0)", "torch.cumsum({a}, dim=-1)", "torch.nn.functional.l1_loss({a}, {a} * 2)",
              "torch.nn.functional.smooth_l1_loss({a}, {a} * 0.5, beta=0.5)",
              "torch.nn.functional.huber_loss({a} * 3, {a}, reduction='none')",
              "torch.nn.functional.linear({a}, {a}.reshape(1, -1))", "{a}.reciprocal()",
              "torch.bmm({a}.reshape(1, 1, -1), {a}.reshape(1, -1, 1))",
              "torch.nn.functional.normalize({a}.reshape(1, -1))", "torch.nn.functional.normalize({a}, dim=0, eps=0.5)",
              "torch.nn.functional.dropout({a} * 2, 0.5, training=False)", "torch.split({a}.reshape(-1), [1, 1])[1]",
              "{a}.reshape(-1)[k]", "{a}.reshape(1, -1)[:, [0, -1, 0]]", "{a}.reshape(1, -1)[range(1), c]",
              "torch.nn.functional.cross_entropy({a}.reshape(1, -1), c)",
              "torch.nn.functional.nll_loss({a}.reshape(1, -1), c, reduction='none')",
              "torch.where({a} > 0, {a}, {a} * 0.1)", "{a}.masked_fill({a} < 0, 0.5)", "torch.where({a} != 0, 1 / {a}, {a})",
              "torch.where({a} >= 1, 2.0, {a}.exp())", "{a}.masked_fill({a} == 0, 1)", "{a}.where({a} <= 2, {a} * {a})",
              "torch.nn.functional.layer_norm(torch.stack([{a}, {a} * 2, {a}.exp()], -1), (3,))",
              "torch.nn.functional.layer_norm({a}.reshape(-1, 1) * 2, [1], eps=0.5)",
              "torch.nn.functional.cross_entropy({a}.reshape(1, -1), {a}.reshape(1, -1).softmax(1), label_smoothing=0.1)",
              "torch.nn.functional.cross_entropy({a}.reshape(1, -1), c, label_smoothing=0.2)",
              "torch.nn.functional.cross_entropy({a}.reshape(1, -1), c, label_smoothing=0.7, reduction='none')",
              "torch.nn.functional.cross_entropy({a}.reshape(1, -1), c, label_smoothing=0.3, ignore_index=0, reduction='sum')",
              "torch.nn.functional.conv1d({a}.reshape(1, 1, -1), torch.stack([{a}.reshape(-1)[:1], {a}.reshape(-1)[-1:]"
              " * 2], -1).reshape(1, 1, 2), padding=1)",
              "torch.nn.functional.conv2d({a}.reshape(1, 1, 1, -1), {a}.reshape(-1)[:1].reshape(1, 1, 1, 1), stride=2)"]
INDEX = ["argmax()", "argmin(0)", "argmax(dim=-1, keepdim=True)", "argmin()"]  # int64 results: side steps, read by no other
INTEGERS = ["  k:", "    value: [0, -1, 0]", "    dtype: int64", "  c:", "    value: [0]", "    dtype: int64"]
BINARY = ["+", "-", "*", "/", "**"]
BUDGET = 2 * isolate.DEFAULT_TIMEOUT  # seconds for a build and a check together, as a CI would allow them


@st.composite
def specs(draw) -> str:
    """Draw a spec's YAML text: inputs, steps built from the grammar, and backward calls."""
    lines = ["title: generated", "inputs:"]
    if draw(st.integers(0, 3)) == 0:  # a quarter in float64; the rest in float32, torch's default
        lines.insert(1, "dtype: float64")
    names = []
    extreme = draw(st.integers(0, 2)) == 0  # a third of the specs live at the edges of the range
    pool = NUMBERS + EXTREME if extreme else NUMBERS
    for i in range(draw(st.integers(1, 3))):
        shape = draw(st.sampled_from(SHAPES))
        values = [draw(st.sampled_from(pool)) for _ in range(max(1, _numel(shape)))]
        grad = draw(st.booleans()) or i == 0
        lines += [f"  x{i}:", f"    value: {_nest(values, shape)}", f"    requires_grad: {'true' if grad else 'false'}"]
        names.append(f"x{i}")
    lines += INTEGERS  # int64 inputs: indices valid for any size (0 and -1) and a class for a row of any width
    lines.append("steps:")
    for j in range(draw(st.integers(1, 4))):
        a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        kind = draw(st.integers(0, 6))
        if kind == 6:
            lines.append(f"  i{j}: {a}.{draw(st.sampled_from(INDEX))}")  # an index: shown and checked, not computed with
            continue
        if kind == 0:
            expr = f"{a}.{draw(st.sampled_from(UNARY))}"
        elif kind == 1:
            expr = f"{a}.{draw(st.sampled_from(ALONG_DIM))}"
        elif kind == 2:
            expr = draw(st.sampled_from(TORCH_FORM)).format(a=a)
        elif kind == 3:
            other = draw(st.sampled_from([b, draw(st.sampled_from(LITERALS if extreme else NUMBERS))]))
            expr = f"{a} {draw(st.sampled_from(BINARY))} {other}"
        elif kind == 4:
            expr = draw(st.sampled_from([f"{a} @ {b}", f"{a}.T", f"-{a}[0]", f"{a}[-1] * 2", f"torch.maximum({a}, {b})",
                                         f"{a}.minimum({b})", f"torch.max({a}, {b})", f"{a}[1:]", f"{a}[:, ::2]",
                                         f"{a}[-1, :1]", f"{a}.transpose(0, 1)", f"torch.mv({a}, {b})"]))
        else:
            expr = f"({a} * {draw(st.sampled_from(LITERALS if extreme else NUMBERS))}).{draw(st.sampled_from(UNARY))}"
        lines.append(f"  s{j}: {expr}")
        names.append(f"s{j}")
    lines.append(f"  out: {names[-1]}.{draw(st.sampled_from(['sum()', 'mean()']))}")
    calls = draw(st.integers(1, 2))
    lines.append(f"backward: [{', '.join(['out'] * calls)}]")
    return "\n".join(lines) + "\n"


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _nest(values: list[str], shape: tuple[int, ...]) -> str:
    if not shape:
        return values[0]
    size = _numel(shape[1:])
    return "[" + ", ".join(_nest(values[i * size:(i + 1) * size], shape[1:]) for i in range(shape[0])) + "]"


def _build_and_compare(spec: Path) -> tuple[str, list[str]]:
    """Build a spec and compare it with torch: ("refused", the error's lines) or ("built", disagreements)."""
    try:
        files = render_spec(spec, ("md", "json"), None)
    except SpecError as e:
        return "refused", [p.line and str(p) for p in e.problems]
    assert set(files) == {spec.stem + ".md", spec.stem + ".json"}, files
    # the numbers only: each document's own script is run by test_printed.py and the gallery's tests (a fresh
    # Python per spec would cost hundreds of torch imports here, and float32 kernels the prediction does not
    # model, such as vectorised exp or BLAS sums, can change a printed last digit; README, What a document contains)
    return "built", compare_spec(spec, script=False)


def _run(examples: int, tmp_path: Path) -> Counter:
    """Try `examples` generated specs in-process, so a failure shows its traceback and hypothesis shrinks it."""
    tally: Counter = Counter()

    @settings(max_examples=examples, deadline=None, derandomize=examples <= 500,
              suppress_health_check=list(HealthCheck), database=None)
    @given(specs())
    def prop(text: str) -> None:
        spec = tmp_path / "generated.yaml"
        spec.write_text(text)
        tally["tried"] += 1
        tally["extreme"] += _extreme(text)
        outcome, lines = _build_and_compare(spec)
        if outcome == "refused":
            assert all(lines), (text, lines)  # every problem has its line
            tally["refused"] += 1
            return
        assert lines == [], text
        tally["agreed"] += 1

    prop()
    return tally


def _extreme(text: str) -> bool:
    return any(n in text for n in EXTREME if "e" in n)


def _generate(examples: int) -> list[str]:
    """Draw `examples` spec texts from the grammar (hypothesis's generation phase only)."""
    texts: list[str] = []

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              phases=[Phase.generate])
    @given(specs())
    def gather(text: str) -> None:
        texts.append(text)

    gather()
    return texts


def _run_budgeted(examples: int, tmp_path: Path, *, jobs: int) -> tuple[Counter, list[str]]:
    """Try `examples` generated specs, each in a child under the build's budget, `jobs` at once: tally and failures."""
    check.import_torch()  # once, before the children fork, rather than once in each of them
    texts = _generate(examples)
    paths = []
    for i, text in enumerate(texts):
        folder = tmp_path / f"{i:05d}"
        folder.mkdir()
        (folder / "generated.yaml").write_text(text)
        paths.append(folder / "generated.yaml")
    results = isolate.run_many([(_build_and_compare, (p,), str(p)) for p in paths], jobs=jobs, timeout=BUDGET)
    tally: Counter = Counter(tried=len(texts), extreme=sum(map(_extreme, texts)))
    failures = []
    for text, result in zip(texts, results):
        if isinstance(result, isolate.BudgetError):  # the build's limit refusal, located at the spec
            tally["over budget"] += 1
        elif isinstance(result, DeriveError):  # the child's own failure: an internal error or an assertion
            failures.append(text + "\n".join(result.lines()))
        elif result[0] == "refused" and all(result[1]):
            tally["refused"] += 1
        elif result[0] == "built" and result[1] == []:
            tally["agreed"] += 1
        else:
            failures.append(text + "\n".join(map(str, result[1])))
    return tally, failures


def _report(tally: Counter, capsys) -> None:
    with capsys.disabled():
        print(f"\nproperty test: {tally['tried']} specs tried, {tally['agreed']} built and agreed with torch,"
              f" {tally['refused']} refused with a spec error, {tally['over budget']} over the build's budget"
              f" ({tally['extreme']} with extreme magnitudes)")


def test_random_specs_build_and_agree_with_torch(tmp_path, capsys):
    """A few hundred generated specs: no unexpected failure, and torch agrees whenever one builds."""
    tally = _run(300, tmp_path)
    _report(tally, capsys)
    assert tally["agreed"] > 150


def test_random_specs_on_whole_arrays_agree_with_torch(tmp_path, capsys, monkeypatch):
    """The same, with every spec derived as a large one is (generator/engines/sparse.py): torch agrees with that path too."""
    monkeypatch.setattr(bulk, "SMALL", 0)
    tally = _run(300, tmp_path)
    _report(tally, capsys)
    assert tally["agreed"] > 150


@pytest.mark.long
@pytest.mark.parametrize("small", [bulk.SMALL, 0], ids=["exact", "arrays"])
def test_long_run(tmp_path, capsys, monkeypatch, small):
    """The long run: DERIVE_PROPERTY_EXAMPLES generated specs (default 5000), on each derivation path."""
    monkeypatch.setattr(bulk, "SMALL", small)
    examples = int(os.environ.get("DERIVE_PROPERTY_EXAMPLES", "5000"))
    tally, failures = _run_budgeted(examples, tmp_path, jobs=int(os.environ.get("DERIVE_PROPERTY_JOBS", os.cpu_count() or 1)))
    _report(tally, capsys)
    assert failures == [], f"{len(failures)} of {tally['tried']} specs failed; the first:\n" + "\n\n".join(failures[:5])
    assert tally["tried"] >= examples
