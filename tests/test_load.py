"""Tests for generator.spec.load: valid specs load exactly, invalid ones report every problem."""

from __future__ import annotations

import sys
import textwrap
import warnings
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.errors import SpecError
from generator.spec.load import LANGS, MAX_BYTES, MAX_DIMS, MAX_ELEMENTS, MAX_INT_DIGITS, RESERVED, load
from generator.spec.model import Array, Call, Input, Spec, Step

F = Fraction


def spec_of(source: str, path: str = "spec.yaml") -> Spec:
    """Load dedented YAML source."""
    return load(path, text=textwrap.dedent(source).encode())


def problems(source: str | bytes, path: str = "spec.yaml") -> list[str]:
    """Return the problem lines that loading source reports."""
    data = source if isinstance(source, bytes) else textwrap.dedent(source).encode()
    with pytest.raises(SpecError) as caught:
        load(path, text=data)
    return caught.value.lines()


def with_input(value: str) -> str:
    """Return a minimal spec whose input x is written as value (on line 4)."""
    return f"title: t\ninputs:\n  x:\n    {value}\nsteps:\n  y: x * 2\nbackward: y\n"


def values_of(value: str) -> Array:
    """Return the Array that a minimal spec gives input x."""
    return load("spec.yaml", text=with_input(value).encode()).inputs[0].value


FULL = """\
title: Scalar output — out = mean(3(x+2)²)
summary: A 2×2 tensor of ones through three steps.
inputs:
  x:
    value: [[1, 1], [1, 1]]
    requires_grad: true
  w:
    fill: 0.5
    shape: [2]
steps:
  y: x + 2
  z: y * y * 3
  out: z.mean()
backward:
  - out
  - output: y
    gradient: [[0.1, 1.0], [1e-4, -2]]
dtype: float64
lang: en
flavor: hugo
"""

ONES = Array((2, 2), (F(1),) * 4)


# -- valid specs -------------------------------------------------------------


class TestValid:
    def test_full_spec_loads_to_exact_spec(self):
        """A spec using every key loads to the hand-built Spec."""
        expected = Spec(
            path="full.yaml",
            title="Scalar output — out = mean(3(x+2)²)",
            summary="A 2×2 tensor of ones through three steps.",
            inputs=(
                Input("x", ONES, True, 4),
                Input("w", Array((2,), (F(1, 2), F(1, 2))), False, 7),
            ),
            steps=(Step("y", "x + 2", 11), Step("z", "y * y * 3", 12), Step("out", "z.mean()", 13)),
            backward=(
                Call("out", None, 15),
                Call("y", Array((2, 2), (F(1, 10), F(1), F(1, 10000), F(-2))), 16),
            ),
            dtype="float64",
            lang="en",
            flavor="hugo",
        )
        assert load("full.yaml", text=FULL.encode()) == expected

    def test_defaults(self):
        """summary, requires_grad, dtype, lang and flavor default to '', false, float32, en, portable."""
        spec = spec_of(with_input("value: 1"))
        assert spec == Spec("spec.yaml", "t", "", (Input("x", Array((), (F(1),)), False, 3),), (Step("y", "x * 2", 6),), (Call("y", None, 7),))
        assert (spec.dtype, spec.lang, spec.flavor) == ("float32", LANGS[0], "portable")

    def test_reads_file_and_names_it(self, tmp_path: Path):
        """Without text, the file is read; Spec.path is the path as given."""
        file = tmp_path / "a.yaml"
        file.write_text(FULL, encoding="utf-8")
        assert load(file).path == str(file)
        assert load(str(file)).title.startswith("Scalar output")

    def test_byte_order_mark_is_ignored(self):
        """A UTF-8 byte order mark before the YAML is accepted."""
        assert load("s.yaml", text=b"\xef\xbb\xbf" + with_input("value: 1").encode()).title == "t"

    def test_expression_and_texts_are_stripped(self):
        """Block scalars keep their text, stripped of surrounding blank space."""
        spec = spec_of(
            """\
            title: |
              Two lines
              of title
            inputs: {x: {value: 1}}
            steps:
              y: >
                x * 2
            backward: y
            """
        )
        assert (spec.title, spec.steps[0].expr) == ("Two lines\nof title", "x * 2")

    def test_yaml_1_1_words_are_text(self):
        """Under YAML 1.2 `yes`, `on` and `no` are strings, so they are fine as text."""
        assert spec_of("title: yes\ninputs: {x: {value: 1}}\nsteps: {on: x}\nbackward: on\n").title == "yes"


class TestNumbers:
    def test_decimals_are_exact_fractions(self):
        """0.1 and 1e-4 load as exactly 1/10 and 1/10000, not as binary floats."""
        assert values_of("value: [0.1, 1e-4, 1E-4, 1.5e3]").values == (F(1, 10), F(1, 10000), F(1, 10000), F(1500))

    def test_every_core_schema_number_form(self):
        """Signs, bare points, exponents, hex and octal follow YAML 1.2 core."""
        written = "[+3, -0.5e+2, .5, 1., -0, 007, 0x1F, 0o17, 0e999999999999]"
        assert values_of(f"value: {written}").values == (F(3), F(-50), F(1, 2), F(1), F(0), F(7), F(31), F(15), F(0))

    def test_longest_integer(self):
        """An integer of MAX_INT_DIGITS digits is accepted exactly."""
        assert values_of(f"value: {'9' * MAX_INT_DIGITS}").values == (F(10**MAX_INT_DIGITS - 1),)

    def test_bool_is_not_a_number(self):
        """true is a bool, never 1."""
        assert problems(with_input("value: [1, true]")) == [
            "spec.yaml:4: inputs.x.value[1]: expected a number, got true (allowed: an integer or decimal, like 3, -0.5 or 1e-4)"
        ]

    def test_quoted_number_is_text(self):
        """A quoted number is a string."""
        assert problems(with_input("value: ['1']")) == [
            "spec.yaml:4: inputs.x.value[0]: expected a number, got '1' (allowed: an integer or decimal, like 3, -0.5 or 1e-4)"
        ]

    def test_non_finite(self):
        """.inf, -.inf and .nan are refused."""
        assert problems(with_input("value: [.inf, -.Inf, .NaN]")) == [
            f"spec.yaml:4: inputs.x.value[{i}]: expected a finite number, got {text} (allowed: an integer or decimal, like 3, -0.5 or 1e-4)"
            for i, text in enumerate([".inf", "-.Inf", ".NaN"])
        ]

    def test_out_of_float64_range(self):
        """Decimals that overflow or underflow float64 are refused."""
        allowed = "(allowed: 0, or magnitudes from about 5e-324 to 1.8e308)"
        assert problems(with_input("value: [1e999, -1e-999]")) == [
            f"spec.yaml:4: inputs.x.value[0]: number out of range: 1e999 {allowed}",
            f"spec.yaml:4: inputs.x.value[1]: number out of range: -1e-999 {allowed}",
        ]

    def test_too_many_digits(self):
        """Integers and decimals of more than 50 digits are refused."""
        assert problems(with_input(f"value: [{'1' * 51}, 0.{'1' * 50}]")) == [
            "spec.yaml:4: inputs.x.value[0]: integer too long: 51 digits (allowed: at most 50 digits)",
            "spec.yaml:4: inputs.x.value[1]: number too long: 51 digits (allowed: at most 50 digits before the exponent)",
        ]


# -- tensors -----------------------------------------------------------------


class TestTensors:
    def test_zero_dimensional_value(self):
        """A bare number is a 0-d tensor."""
        assert values_of("value: -2.5") == Array((), (F(-5, 2),))

    def test_nested_lists_flatten_row_major(self):
        """Nested lists give their shape and row-major values."""
        assert values_of("value: [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]") == Array((2, 2, 2), tuple(map(F, range(1, 9))))

    def test_fill_with_shape(self):
        """fill with shape repeats the number over the shape."""
        assert values_of("{fill: 0.1, shape: [2, 3]}") == Array((2, 3), (F(1, 10),) * 6)

    def test_fill_with_empty_shape(self):
        """shape [] makes a 0-d tensor."""
        assert values_of("{fill: 7, shape: []}") == Array((), (F(7),))

    def test_limits_are_inclusive(self):
        """MAX_DIMS dimensions and MAX_ELEMENTS elements are allowed."""
        assert values_of(f"{{fill: 1, shape: [{MAX_ELEMENTS}]}}").shape == (MAX_ELEMENTS,)
        assert values_of("value: [[[[1]]]]").shape == (1,) * MAX_DIMS

    def test_ragged_list(self):
        """Rows of another length, or a number or list out of place, name their path."""
        assert problems(with_input("value: [[1, 2], [3], 4, [[5], 6]]")) == [
            "spec.yaml:4: inputs.x.value[1]: ragged list, expected 2 items, got 1 (allowed: rectangular nested lists)",
            "spec.yaml:4: inputs.x.value[2]: ragged list, expected a list of 2 items, got 4 (allowed: rectangular nested lists)",
            "spec.yaml:4: inputs.x.value[3][0]: ragged list, expected a number, got a list (allowed: rectangular nested lists)",
        ]

    def test_ragged_rows_on_their_own_lines(self):
        """In block style each row reports its own line."""
        assert problems(with_input("value:\n      - [1, 2]\n      - [3]\n")) == [
            "spec.yaml:6: inputs.x.value[1]: ragged list, expected 2 items, got 1 (allowed: rectangular nested lists)"
        ]

    def test_empty_list(self):
        """Lists must be non-empty at every level."""
        assert problems(with_input("value: [[]]")) == [
            "spec.yaml:4: inputs.x.value[0]: expected a non-empty list, got an empty list"
            " (allowed: a number, or non-empty nested lists of numbers like [[1, 2], [3, 4]])"
        ]

    def test_too_many_dimensions(self):
        """More than MAX_DIMS levels of lists are refused."""
        assert problems(with_input("value: [[[[[1]]]]]")) == [
            "spec.yaml:4: inputs.x.value: too many dimensions: more than 4 (allowed: at most 4)"
        ]

    def test_too_many_elements(self, monkeypatch):
        """More than MAX_ELEMENTS elements are refused, from a shape or from lists (a list that long needs a lower
        limit: a million numbers do not fit in a spec's 64 KiB)."""
        assert problems(with_input("{fill: 1, shape: [1000, 1001]}")) == [
            "spec.yaml:4: inputs.x.shape: too many elements: 1001000 (allowed: at most 1000000)"
        ]
        monkeypatch.setattr(sys.modules["generator.spec.load"], "MAX_ELEMENTS", 10_000)
        assert problems(with_input(f"value: [{', '.join(['0'] * 10001)}]")) == [
            "spec.yaml:4: inputs.x.value: too many elements: 10001 (allowed: at most 10000)"
        ]

    def test_value_with_fill_or_shape(self):
        """value excludes fill and shape."""
        assert problems(with_input("{value: 1, fill: 1, shape: [1]}")) == [
            "spec.yaml:4: inputs.x.fill: not allowed together with value (allowed: value, fill with shape, randn, rand or file)",
            "spec.yaml:4: inputs.x.shape: not allowed together with value (allowed: value, fill with shape, randn, rand or file)",
        ]

    def test_no_value(self):
        """An input needs value, or fill with shape."""
        assert problems(with_input("{requires_grad: true}")) == [
            "spec.yaml:3: inputs.x: missing value (allowed: value, fill with shape, randn, rand or file)"
        ]

    def test_fill_and_shape_need_each_other(self):
        """fill without shape, and shape without fill, are refused."""
        source = "title: t\ninputs:\n  a: {fill: 1}\n  b: {shape: [2]}\nsteps: {y: a}\nbackward: y\n"
        assert problems(source) == [
            "spec.yaml:3: inputs.a: missing shape, needed with fill (allowed: value, fill with shape, randn, rand or file)",
            "spec.yaml:4: inputs.b: missing fill, needed with shape (allowed: value, fill with shape, randn, rand or file)",
        ]

    def test_bad_shape(self):
        """A shape is a list of positive integers."""
        allowed = "(allowed: a list of positive integers like [2, 3], or [] for a single number)"
        assert problems(with_input("{fill: 1, shape: [0, 2.0, -1]}")) == [
            f"spec.yaml:4: inputs.x.shape[0]: expected a positive integer, got 0 {allowed}",
            f"spec.yaml:4: inputs.x.shape[1]: expected a positive integer, got 2.0 {allowed}",
            f"spec.yaml:4: inputs.x.shape[2]: expected a positive integer, got -1 {allowed}",
        ]
        assert problems(with_input("{fill: 1, shape: 2}")) == [f"spec.yaml:4: inputs.x.shape: expected a list, got 2 {allowed}"]

    def test_value_of_wrong_type(self):
        """value is a number or a list, not text or a mapping."""
        assert problems(with_input("value: ones")) == [
            "spec.yaml:4: inputs.x.value: expected a number or a list, got 'ones'"
            " (allowed: a number, or non-empty nested lists of numbers like [[1, 2], [3, 4]])"
        ]

    def test_requires_grad_must_be_bool(self):
        """requires_grad is true or false; YAML 1.1's yes is text."""
        assert problems(with_input("{value: 1, requires_grad: yes}")) == [
            "spec.yaml:4: inputs.x.requires_grad: expected true or false, got 'yes' (allowed: true, false)"
        ]


# -- backward ----------------------------------------------------------------


class TestBackward:
    BASE = "title: t\ninputs:\n  x: {value: [1, 2]}\nsteps:\n  y: x * 2\n  s: y.sum()\n"

    def calls(self, backward: str) -> tuple[Call, ...]:
        """Return the calls a backward section (from line 7) gives."""
        return spec_of(self.BASE + backward).backward

    def test_name(self):
        """A name is one call with the implicit gradient, on the name's line."""
        assert self.calls("backward: s\n") == (Call("s", None, 7),)

    def test_mapping_without_gradient(self):
        """A mapping with only output is like a name."""
        assert self.calls("backward: {output: s}\n") == (Call("s", None, 7),)

    def test_mapping_with_gradient(self):
        """A mapping's gradient is a tensor; the call is on the output's line."""
        assert self.calls("backward:\n  gradient: [0.1, 1.0]\n  output: y\n") == (Call("y", Array((2,), (F(1, 10), F(1))), 9),)

    def test_gradient_by_fill_and_shape(self):
        """A large output's gradient can be given as fill and shape, like an input."""
        calls = self.calls("backward:\n  output: y\n  gradient: {fill: 0.5, shape: [2]}\n")
        assert calls == (Call("y", Array((2,), (F(1, 2), F(1, 2))), 8),)

    def test_gradient_mapping_needs_fill_and_shape(self):
        """A gradient mapping has exactly fill and shape."""
        assert problems(self.BASE + "backward:\n  output: y\n  gradient: {fill: 1, value: [1, 1]}\n") == [
            "spec.yaml:9: backward.gradient.value: unknown key (allowed: fill, shape)",
            "spec.yaml:9: backward.gradient: missing required key 'shape' (required: fill, shape)",
        ]

    def test_list_of_both_forms(self):
        """A list gives several calls in order."""
        calls = self.calls("backward:\n  - s\n  - {output: y, gradient: [1, 1]}\n  - x\n")
        assert calls == (Call("s", None, 8), Call("y", Array((2,), (F(1), F(1))), 9), Call("x", None, 10))

    def test_unknown_name(self):
        """Each call names an existing input or step."""
        assert problems(self.BASE + "backward: [out, {output: z}]\n") == [
            "spec.yaml:7: backward[0]: unknown name 'out' (allowed: x, y, s)",
            "spec.yaml:7: backward[1].output: unknown name 'z' (allowed: x, y, s)",
        ]

    def test_bad_forms(self):
        """Empty lists, nested lists, numbers and mappings without output are refused."""
        assert problems(self.BASE + "backward: []\n") == [
            "spec.yaml:7: backward: expected a non-empty list, got an empty list (allowed: a step or input name,"
            " or a mapping with output and optional gradient, or a non-empty list of these)"
        ]
        assert problems(self.BASE + "backward: [[s], 3, {gradient: 1, retain: true}]\n") == [
            "spec.yaml:7: backward[0]: expected a name or a mapping, got a list"
            " (allowed: a step or input name, or a mapping with output and optional gradient)",
            "spec.yaml:7: backward[1]: expected a step or input name, got 3 (allowed: x, y, s)",
            "spec.yaml:7: backward[2].retain: unknown key (allowed: output, gradient)",
            "spec.yaml:7: backward[2]: missing required key 'output' (required: output)",
        ]


# -- keys and names ----------------------------------------------------------


class TestKeys:
    def test_unknown_top_level_key(self):
        """Keys outside the format are refused, listing the allowed ones."""
        assert problems("title: t\ninputs: {x: {value: 1}}\nsteps: {y: x}\nbackward: y\noutput: y\n") == [
            "spec.yaml:5: output: unknown key (allowed: title, summary, inputs, steps, backward, code, dtype, lang, flavor, seed)"
        ]

    def test_unknown_nested_key(self):
        """Unknown keys inside an input are refused with their path."""
        assert problems(with_input("{value: 1, grad: true}")) == [
            "spec.yaml:4: inputs.x.grad: unknown key (allowed: value, fill, shape, randn, rand, file, requires_grad, dtype)"
        ]

    def test_odd_key_is_quoted_in_path(self):
        """A key that is not an identifier is shown quoted in the path."""
        assert problems(with_input("{value: 1, 'a b': 2}")) == [
            "spec.yaml:4: inputs.x['a b']: unknown key (allowed: value, fill, shape, randn, rand, file, requires_grad, dtype)"
        ]

    def test_missing_required_keys(self):
        """title, inputs, steps and backward are required."""
        assert problems("summary: s\nsteps: {y: 1 + 1}\n") == [
            "spec.yaml:1: missing required keys 'title', 'inputs', 'backward' (required: title, inputs, steps, backward)"
        ]

    def test_wrong_types_at_top(self):
        """title is non-empty text, inputs and steps are non-empty mappings, dtype, lang and flavor come from sets."""
        source = "title: 3\nsummary: ~\ninputs: []\nsteps: {}\nbackward: y\ndtype: float16\nlang: fr\nflavor: gitlab\n"
        assert problems(source) == [
            "spec.yaml:1: title: expected text, got 3 (allowed: a non-empty string)",
            "spec.yaml:2: summary: expected text, got ~ (allowed: a string)",
            "spec.yaml:3: inputs: expected a non-empty mapping, got an empty list (allowed: input names, each with value, or fill and shape)",
            "spec.yaml:4: steps: expected a non-empty mapping, got an empty mapping (allowed: step names, each with an expression)",
            "spec.yaml:5: backward: unknown name 'y' (allowed: a step or input name)",
            "spec.yaml:6: dtype: expected a dtype, got 'float16' (allowed: float32, float64)",
            "spec.yaml:7: lang: expected a language code, got 'fr' (allowed: en, zh)",
            "spec.yaml:8: flavor: expected a Markdown flavor, got 'gitlab' (allowed: portable, github, mkdocs, hugo, jekyll)",
        ]

    def test_hidden_characters_in_text(self):
        """Escapes may not smuggle control, format or surrogate characters into text."""
        source = 'title: "a\\ud800"\nsummary: "\\e[31m"\ninputs: {x: {value: 1}}\nsteps: {y: "x\\u202e", z: "\\tx\\n"}\nbackward: z\n'
        allowed = "(allowed: printable characters, spaces, tabs and newlines)"
        prose = "(allowed: printable characters, spaces (also no-break, thin, ideographic), tabs and newlines)"
        assert problems(source) == [
            f"spec.yaml:1: title: invalid character U+D800 {prose}",
            f"spec.yaml:2: summary: invalid character U+001B {prose}",
            f"spec.yaml:4: steps.y: invalid character U+202E {allowed}",
        ]

    def test_step_needs_text(self):
        """A step's expression is non-empty text."""
        assert problems("title: t\ninputs: {x: {value: 1}}\nsteps:\n  y: 2\n  z: ''\nbackward: x\n") == [
            "spec.yaml:4: steps.y: expected an expression, got 2 (allowed: a non-empty string of torch code, like x * 2)",
            "spec.yaml:5: steps.z: expected an expression, got '' (allowed: a non-empty string of torch code, like x * 2)",
        ]


class TestNames:
    @staticmethod
    def named(name: str) -> list[str]:
        """Return the problems of a spec with one step called name (line 5)."""
        return problems(f"title: t\ninputs:\n  x: {{value: 1}}\nsteps:\n  {name}: x * 2\nbackward: x\n")

    def test_malformed_name(self):
        """A name is a letter then up to 31 letters, digits or underscores."""
        allowed = "(allowed: a letter, then up to 31 letters, digits or underscores)"
        assert self.named("2x") == [f"spec.yaml:5: steps: invalid name '2x' {allowed}"]
        assert self.named("_x") == [f"spec.yaml:5: steps: invalid name '_x' {allowed}"]
        assert self.named("a" * 33) == [f"spec.yaml:5: steps: invalid name '{'a' * 33}' {allowed}"]
        assert self.named("é") == [f"spec.yaml:5: steps: invalid name 'é' {allowed}"]

    def test_longest_name(self):
        """A 32-character name is fine."""
        assert spec_of(f"title: t\ninputs: {{x: {{value: 1}}}}\nsteps: {{{'a' * 32}: x}}\nbackward: x\n").steps[0].name == "a" * 32

    def test_keyword_name(self):
        """Python keywords are refused."""
        assert self.named("lambda") == [
            "spec.yaml:5: steps: invalid name 'lambda', a Python keyword (allowed: any name but a Python keyword)"
        ]

    def test_reserved_name(self):
        """Names the generated code uses are refused."""
        assert RESERVED == {"torch", "math", "print", "v", "grad"}
        assert self.named("torch") == [
            "spec.yaml:5: steps: invalid name 'torch', reserved (allowed: any name but grad, math, print, torch, v)"
        ]

    def test_duplicate_across_inputs_and_steps(self):
        """Inputs and steps share one namespace."""
        assert self.named("x") == [
            "spec.yaml:5: steps: duplicate name 'x', first on line 3 (allowed: each name once across inputs and steps)"
        ]


# -- YAML itself -------------------------------------------------------------


class TestYaml:
    def test_duplicate_key(self):
        """A repeated key is refused by name, at the repeat's line."""
        assert problems("title: a\ninputs:\n  x: {value: 1}\n  x: {value: 2}\nsteps: {y: x}\nbackward: y\ntitle: b\n") == [
            "spec.yaml:4: inputs.x: duplicate key, first on line 3 (allowed: each key once)",
            "spec.yaml:7: title: duplicate key, first on line 1 (allowed: each key once)",
        ]

    def test_alias_bomb_fails_at_first_anchor(self):
        """A billion-laughs file stops at its first anchor, quickly."""
        rows = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        rows += [f"{b}: &{b} [{', '.join(['*' + a] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
        assert problems("\n".join(rows) + "\n") == [
            "spec.yaml:1: anchor '&a' is not supported (allowed: plain YAML without anchors or aliases)"
        ]

    def test_alias(self):
        """An alias is refused even without an anchor."""
        assert problems("title: *t\n") == ["spec.yaml:1: alias '*t' is not supported (allowed: plain YAML without anchors or aliases)"]

    def test_tags(self):
        """Any explicit tag is refused, even !!str; every one is reported."""
        source = "title: !!str t\ninputs: !!python/object:os.system {x: {value: 1}}\nsteps: !foo {y: x}\nbackward: ! y\n"
        assert problems(source) == [
            "spec.yaml:1: tag '!!str' is not supported (allowed: untagged values)",
            "spec.yaml:2: tag '!!python/object:os.system' is not supported (allowed: untagged values)",
            "spec.yaml:3: tag '!foo' is not supported (allowed: untagged values)",
            "spec.yaml:4: tag '!' is not supported (allowed: untagged values)",
        ]

    def test_directive(self):
        """%YAML and %TAG directives are refused."""
        assert problems("%YAML 1.1\n---\n" + with_input("value: 1")) == [
            "spec.yaml:2: YAML directive (%YAML or %TAG) is not supported (allowed: none)"
        ]

    def test_second_document(self):
        """Only one YAML document is read."""
        assert problems(with_input("value: 1") + "---\ntitle: u\n") == [
            "spec.yaml:8: more than one YAML document (allowed: exactly one document)"
        ]

    def test_syntax_error(self):
        """A syntax error is one line with its location."""
        assert problems("title: a\ninputs: b: c\n") == ["spec.yaml:2: invalid YAML: mapping values are not allowed here"]
        assert problems("title: [a\n") == ["spec.yaml:2: invalid YAML: expected ',' or ']', but got '<stream end>'"]

    def test_parser_assertion_becomes_spec_error(self):
        """ruamel's bare AssertionError on %YAML 1.3 is still a SpecError."""
        assert problems("%YAML 1.3\n---\ntitle: a\n") == [
            "spec.yaml: invalid YAML: version minor part can only be 2 or 1, got (1, 3)"
        ]

    def test_deep_nesting(self):
        """Runaway nesting stops at once."""
        assert problems(b"[" * 60000) == ["spec.yaml:1: lists and mappings nested too deeply (allowed: at most 16 levels)"]


class TestFile:
    def test_empty_file(self):
        """An empty file, or one with only comments, is refused."""
        expected = ["spec.yaml: file is empty (allowed: a mapping with title, inputs, steps, backward)"]
        assert problems(b"") == expected
        assert problems(b"# nothing\n\n") == expected

    def test_top_level_not_a_mapping(self):
        """The top level is a mapping; what it is instead is named by kind, never quoted (it may be any file)."""
        allowed = "(allowed keys: title, summary, inputs, steps, backward, code, dtype, lang, flavor, seed)"
        assert problems("- title\n") == [f"spec.yaml:1: expected a mapping, got a list {allowed}"]
        assert problems("just text\n") == [f"spec.yaml:1: expected a mapping, got text {allowed}"]
        assert problems("---\n") == [f"spec.yaml:2: expected a mapping, got null {allowed}"]

    def test_invalid_utf8(self):
        """Invalid UTF-8 is refused at its line."""
        assert problems(b"title: ok\nsummary: \xff\n") == ["spec.yaml:2: invalid UTF-8: byte 0xff at offset 19 (allowed: UTF-8 text)"]

    def test_control_character(self):
        """Characters YAML forbids, like NUL, are refused at their line."""
        assert problems(b"title: ok\nsummary: a\x00\n") == ["spec.yaml:2: invalid character U+0000 (allowed: printable Unicode text)"]

    def test_too_big(self, tmp_path: Path):
        """Files over MAX_BYTES are refused, from text or from disk."""
        expected = ["{}: file too large: more than 65536 bytes (allowed: at most 65536 bytes)"]
        assert problems(b"#" * (MAX_BYTES + 1)) == [expected[0].format("spec.yaml")]
        file = tmp_path / "big.yaml"
        file.write_bytes(b"#" * (MAX_BYTES * 4))
        with pytest.raises(SpecError) as caught:
            load(file)
        assert caught.value.lines() == [expected[0].format(file)]

    def test_largest_allowed_file(self):
        """A file of exactly MAX_BYTES loads."""
        source = with_input("value: 1").encode()
        assert load("s.yaml", text=source + b"#" * (MAX_BYTES - len(source))).title == "t"

    def test_missing_file(self, tmp_path: Path):
        """An unreadable file is a SpecError too."""
        with pytest.raises(SpecError) as caught:
            load(tmp_path / "none.yaml")
        assert caught.value.lines() == [f"{tmp_path / 'none.yaml'}: cannot read file: No such file or directory"]

    def test_error_carries_problems(self):
        """SpecError exposes the problems with path and line, and exits with code 2."""
        with pytest.raises(SpecError) as caught:
            load("p.yaml", text=b"- a\n")
        (problem,) = caught.value.problems
        assert (problem.path, problem.line, caught.value.exit_code) == ("p.yaml", 1, 2)


# -- reporting everything at once ---------------------------------------------


class TestReportAll:
    def test_several_problems_in_line_order(self):
        """Every problem is reported together, each with its own line."""
        source = """\
            title: ''
            colour: red
            inputs:
              x:
                value: [[1, 2], [3]]
                requires_grad: maybe
              class: {fill: true, shape: [2]}
            steps:
              y: x * 2
              x: y + 1
            backward: {output: z, gradient: [.nan]}
            dtype: float16
            """
        assert problems(source) == [
            "spec.yaml:1: title: expected text, got '' (allowed: a non-empty string)",
            "spec.yaml:2: colour: unknown key (allowed: title, summary, inputs, steps, backward, code, dtype, lang, flavor, seed)",
            "spec.yaml:5: inputs.x.value[1]: ragged list, expected 2 items, got 1 (allowed: rectangular nested lists)",
            "spec.yaml:6: inputs.x.requires_grad: expected true or false, got 'maybe' (allowed: true, false)",
            "spec.yaml:7: inputs: invalid name 'class', a Python keyword (allowed: any name but a Python keyword)",
            "spec.yaml:7: inputs.class.fill: expected a number, got true (allowed: an integer or decimal, like 3, -0.5 or 1e-4)",
            "spec.yaml:10: steps: duplicate name 'x', first on line 4 (allowed: each name once across inputs and steps)",
            "spec.yaml:11: backward.output: unknown name 'z' (allowed: x, class, y)",
            "spec.yaml:11: backward.gradient[0]: expected a finite number, got .nan (allowed: an integer or decimal, like 3, -0.5 or 1e-4)",
            "spec.yaml:12: dtype: expected a dtype, got 'float16' (allowed: float32, float64)",
        ]


# -- robustness ----------------------------------------------------------------

YAMLISH = "[]{}:,-?!&*|>'\"#%@` \n\t\\ax1.e0+~_"


class TestRobustness:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(st.binary(max_size=80), st.text(alphabet=YAMLISH, max_size=120).map(str.encode)))
    def test_only_spec_errors_escape(self, data: bytes):
        """Arbitrary bytes load or raise SpecError, with no warnings."""
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                load("f.yaml", text=data)
            except SpecError as error:
                assert all("\n" not in problem.message for problem in error.problems)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.integers(0, len(FULL)), st.integers(0, 3), st.text(alphabet=YAMLISH, max_size=4)), max_size=4))
    def test_mangled_spec_only_raises_spec_error(self, edits: list[tuple[int, int, str]]):
        """A valid spec with random edits loads or raises SpecError with in-file lines."""
        text = FULL
        for at, cut, insert in edits:
            text = text[:at] + insert + text[at + cut :]
        try:
            load("f.yaml", text=text.encode())
        except SpecError as error:
            assert all(p.line is None or 1 <= p.line <= text.count("\n") + 2 for p in error.problems)
