"""The corpus of bad specs in tests/bad/: each fails fast with its exact, one-line messages.

Each message was read and judged by a person when the spec was added: it names the file
and the line, says what is wrong and what is allowed. A change of wording must be deliberate.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import FUNCS, invoke

BAD = Path(__file__).resolve().parent / "bad"
SENTINEL = Path("/tmp/derive-pwned")

EXPECTED = {
    '01_malformed_yaml.yaml': [
        "{path}:3: invalid YAML: expected ',' or ']', but got ':'",
    ],
    '02_title_not_text.yaml': [
        '{path}:1: title: expected text, got a list (allowed: a non-empty string)',
    ],
    '03_missing_keys.yaml': [
        "{path}:1: missing required keys 'inputs', 'steps', 'backward' (required: title, inputs, steps, backward)",
    ],
    '04_ragged_values.yaml': [
        '{path}:4: inputs.x.value[1]: ragged list, expected 2 items, got 1 (allowed: rectangular nested lists)',
    ],
    '05_unknown_name.yaml': [
        "{path}:7: step 'y': unknown name 'q' (allowed: inputs and earlier steps: x)",
        "{path}:8: step 'z': uses 'y', which has a problem of its own (allowed: fix 'y' first)",
    ],
    '06_unknown_function.yaml': [
        "{path}:7: step 'y': unknown function 'frobnicate' (allowed: {FUNCS})",
    ],
    '07_shape_mismatch.yaml': [
        "{path}:9: step 'y': shapes [2] and [3] do not broadcast (allowed: sizes equal or 1, compared from the right)",
    ],
    '08_step_uses_itself.yaml': [
        "{path}:7: step 'y': step 'y' uses itself (allowed: inputs and earlier steps: x)",
    ],
    '09_missing_gradient.yaml': [
        "{path}:8: backward 'y': the output has shape [3], so torch needs a gradient (grad can be implicitly created only for scalar outputs) (allowed: {output: y, gradient: <values of shape [3]>})",
    ],
    '10_wrong_gradient_shape.yaml': [
        "{path}:9: backward 'y': gradient has shape [1, 3] but the output has shape [3] (allowed: a gradient of the output's shape)",
    ],
    '11_nothing_requires_grad.yaml': [
        "{path}:7: backward 'y': it does not require grad, so torch cannot backpropagate from it (allowed: a tensor computed from an input with requires_grad: true)",
    ],
    '12_import.yaml': [
        "{path}:7: step 'y': unknown function 'system' (allowed: {FUNCS})",
    ],
    '13_dunder.yaml': [
        "{path}:7: step 'y': unknown function '__subclasses__' (allowed: {FUNCS})",
    ],
    '14_lambda.yaml': [
        "{path}:7: step 'y': calling a lambda is not allowed (allowed: torch.f(x) or x.f() for f in {FUNCS})",
    ],
    '15_huge_exponent.yaml': [
        "{path}:7: step 'y': the exponent 387420489 is too large (allowed: at most 64 in size)",
    ],
    '16_huge_shape.yaml': [
        '{path}:5: inputs.x.shape: too many elements: 1000000000 (allowed: at most 1000000)',
    ],
    '17_alias_bomb.yaml': [
        "{path}:2: anchor '&a' is not supported (allowed: plain YAML without anchors or aliases)",
    ],
    '18_python_tag.yaml': [
        "{path}:1: tag '!!python/object/apply:os.system' is not supported (allowed: untagged values)",
        '{path}:1: title: expected text, got a list (allowed: a non-empty string)',
    ],
    '19_invalid_utf8.yaml': [
        '{path}:1: invalid UTF-8: byte 0xff at offset 17 (allowed: UTF-8 text)',
    ],
    '20_empty.yaml': [
        '{path}: file is empty (allowed: a mapping with title, inputs, steps, backward)',
    ],
    '21_duplicate_key.yaml': [
        '{path}:8: steps.y: duplicate key, first on line 7 (allowed: each key once)',
    ],
    '22_bool_value.yaml': [
        '{path}:4: inputs.x.value[0]: expected a number, got true (allowed: an integer or decimal, like 3, -0.5 or 1e-4)',
    ],
    '23_bad_name.yaml': [
        "{path}:3: inputs: invalid name '2x' (allowed: a letter, then up to 31 letters, digits or underscores)",
    ],
    '24_unknown_key.yaml': [
        '{path}:6: inputs.x.grad: unknown key (allowed: value, fill, shape, randn, rand, file, requires_grad, dtype)',
        '{path}:10: retain_graph: unknown key (allowed: title, summary, inputs, steps, backward, code, dtype, lang, flavor, seed)',
    ],
    '25_non_finite.yaml': [
        '{path}:4: inputs.x.value[0]: expected a finite number, got .inf (allowed: an integer or decimal, like 3, -0.5 or 1e-4)',
    ],
    '26_backward_unknown.yaml': [
        "{path}:8: backward: unknown name 'z' (allowed: x, y)",
    ],
    '27_long_expression.yaml': [
        "{path}:7: step 'y': the expression has 1201 characters (allowed: at most 1000)",
    ],
    '28_deep_nesting.yaml': [
        "{path}:7: step 'y': the expression is nested too deeply (allowed: at most 40 levels)",
    ],
    '29_open_file.yaml': [
        "{path}:7: step 'y': unknown function 'read' (allowed: {FUNCS})",
    ],
    '30_bad_dtype.yaml': [
        "{path}:2: dtype: expected a dtype, got 'float16' (allowed: float32, float64)",
    ],
    '31_dim_out_of_range.yaml': [
        "{path}:7: step 'y': dim 2 is out of range for a 2-d tensor (allowed: -2 to 1)",
        "{path}:8: step 'z': uses 'y', which has a problem of its own (allowed: fix 'y' first)",
    ],
    '32_index_out_of_range.yaml': [
        "{path}:7: step 'y': index 5 is out of range for size 2 (allowed: -2 to 1)",
    ],
    '33_too_many_elements.yaml': [
        '{path}:5: inputs.x.shape: too many elements: 1001000 (allowed: at most 1000000)',
    ],
    'num_literal_out_of_range.yaml': [
        "{path}:7: step 'y': the number 1e400 is out of float64's range (allowed: 0, or magnitudes from about 5e-324 to 1.8e308)",
        "{path}:8: step 'out': uses 'y', which has a problem of its own (allowed: fix 'y' first)",
    ],
    'num_exponent_digits.yaml': [
        '{path}:4: inputs.x.value[0]: exponent too long: 1e-999999999 (allowed: at most 3 digits after the e)',
    ],
}


def test_corpus_is_complete():
    """Every file in tests/bad/ has its expected messages here, and there are at least 25."""
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 25


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_spec_fails_with_its_message(name, tmp_path):
    """Non-zero exit, the exact lines naming file and line, no traceback, nothing written, in seconds."""
    path = BAD / name
    out = tmp_path / "out"
    started = time.monotonic()
    result = invoke("build", str(path), "--out", str(out), "--format", "md,json")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    expected = [line.replace("{path}", str(path)).replace("{FUNCS}", FUNCS) for line in EXPECTED[name]]
    assert result.stderr.splitlines() == expected + ["0 built, 1 failed"]
    assert "Traceback" not in result.output
    assert not out.exists()
    assert not SENTINEL.exists()
    assert elapsed < 10, f"{name} took {elapsed:.1f} s"
