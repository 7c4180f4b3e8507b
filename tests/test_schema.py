"""derive schema and derive new: the editor schema matches the loader, and the starter builds."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from generator.spec import load
from generator.spec.schema import spec_schema

from .helpers import invoke, GALLERY

BAD = Path(__file__).resolve().parent / "bad"
# The bad specs whose fault is in the structure (types, keys, names), which a schema can see;
# the others are wrong in YAML syntax, bytes, values or meaning, which only derive can judge.
STRUCTURAL = [
    "02_title_not_text.yaml", "03_missing_keys.yaml", "22_bool_value.yaml", "23_bad_name.yaml",
    "24_unknown_key.yaml", "30_bad_dtype.yaml",
]


def data(path: Path):
    """Read YAML as plain data (YAML 1.2, safe)."""
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def validator():
    """Return a validator for the printed schema."""
    result = invoke("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_has_the_loaders_keys():
    """The schema lists exactly the keys the loader accepts, at every level."""
    schema = spec_schema()
    assert set(schema["properties"]) == set(load.TOP_KEYS)
    assert set(schema["oneOf"][0]["required"]) == set(load.TOP_REQUIRED)
    assert set(schema["$defs"]["input"]["properties"]) == set(load.INPUT_KEYS)
    assert set(schema["$defs"]["call"]["oneOf"][1]["properties"]) == set(load.CALL_KEYS)


YAML_GALLERY = [p for p in GALLERY if p.suffix == ".yaml"]


@pytest.mark.parametrize("path", YAML_GALLERY, ids=[p.stem for p in YAML_GALLERY])
def test_gallery_specs_are_valid(path):
    """Every YAML gallery spec validates (a .py file is torch code, which no JSON Schema describes)."""
    validator().validate(data(path))


def test_a_code_block_spec_validates_and_builds(tmp_path):
    """A spec with code: instead of steps and backward validates, and one with both is rejected by both checks."""
    text = "title: t\ninputs:\n  x:\n    value: [1, 2]\n    requires_grad: true\ncode: |\n  y = (x * x).sum()\n  y.backward()\n"
    spec = tmp_path / "c.yaml"
    spec.write_text(text)
    validator().validate(data(spec))
    assert invoke("build", str(spec), "--out", str(tmp_path / "o")).exit_code == 0
    spec.write_text(text + "steps:\n  z: x * 2\n")
    assert list(validator().iter_errors(data(spec)))
    result = invoke("build", str(spec), "--out", str(tmp_path / "o"))
    assert result.stderr.splitlines()[0] == f"{spec}:9: steps: not allowed together with code (allowed: code, or steps and backward)"


@pytest.mark.parametrize("name", STRUCTURAL)
def test_structural_bad_specs_are_rejected(name):
    """The structurally bad specs of the security corpus fail validation."""
    assert list(validator().iter_errors(data(BAD / name)))


def test_reserved_and_keyword_names_are_rejected():
    """A reserved name or a Python keyword is not a valid tensor name."""
    v = validator()
    spec = {"title": "t", "inputs": {"torch": {"value": 1}}, "steps": {"y": "torch * 2"}, "backward": "y"}
    assert list(v.iter_errors(spec))
    spec["inputs"] = {"lambda": {"value": 1}}
    assert list(v.iter_errors(spec))


class TestNew:
    def test_starter_validates_builds_and_agrees_with_torch(self, tmp_path):
        """derive new writes a spec that validates, builds and passes derive check as it is."""
        result = invoke("new", "first", "--dir", str(tmp_path))
        spec = tmp_path / "first.yaml"
        assert result.exit_code == 0
        assert result.stdout == f"wrote {spec}: build it with derive build {spec}\n"
        validator().validate(data(spec))
        assert invoke("build", str(spec), "--out", str(tmp_path / "out")).exit_code == 0
        assert invoke("check", str(spec)).exit_code == 0

    def test_never_overwrites(self, tmp_path):
        """An existing spec is left alone."""
        (tmp_path / "first.yaml").write_text("mine")
        result = invoke("new", "first", "--dir", str(tmp_path))
        assert result.exit_code == 1
        assert result.stderr == f"{tmp_path / 'first.yaml'} already exists (allowed: a new name)\n"
        assert (tmp_path / "first.yaml").read_text() == "mine"

    def test_name_must_be_a_plain_file_name(self, tmp_path):
        """A name with a path in it is refused."""
        result = invoke("new", "../escape", "--dir", str(tmp_path))
        assert result.exit_code == 1
        assert result.stderr == "'../escape' is not a usable spec name (allowed: letters, digits, _ and -, up to 64)\n"


def document_validator():
    """Return a validator for the printed schema of the JSON output."""
    result = invoke("schema", "--document")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


COMMITTED_JSON = sorted(p for p in (Path(__file__).resolve().parent.parent / "output").glob("*.json") if p.stem[0].isdigit())


@pytest.mark.parametrize("path", COMMITTED_JSON, ids=[p.stem for p in COMMITTED_JSON])
def test_committed_json_documents_follow_the_document_schema(path):
    """Every JSON document of the gallery, small and large, validates against `derive schema --document`."""
    document_validator().validate(json.loads(path.read_text(encoding="utf-8")))


def test_document_schema_rejects_a_key_it_does_not_describe():
    """The document schema is closed: a key the renderer stopped or started writing fails validation."""
    path = Path(__file__).resolve().parent.parent / "output" / "01_scalar_mean.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["gradz"] = data.pop("grads")
    assert not document_validator().is_valid(data)
