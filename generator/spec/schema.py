"""A JSON Schema of the spec format, built from the loader's own rules so the two cannot drift."""

from __future__ import annotations

import keyword
from typing import Any

from .files import NPY_NAME
from .load import DTYPES, FLAVORS, LANGS, MAX_DIMS, MAX_ELEMENTS, MAX_SEED, NAME, RESERVED, TOP_REQUIRED


SOURCES = ("value", "fill", "shape", "randn", "rand", "file")  # where an input's numbers come from: one of these


def spec_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) that editors use to validate and complete specs."""
    name = {
        "type": "string",
        "pattern": f"^{NAME.pattern}$",
        "not": {"enum": sorted(RESERVED | set(keyword.kwlist))},
    }
    tensor = {"$ref": "#/$defs/tensor"}
    shape = {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": MAX_DIMS}
    drawn = {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": MAX_DIMS,
             "description": "The sizes (torch.randn(2, 3) is [2, 3]; [] for a scalar), drawn after the spec's seed."}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "derive spec",
        "description": "A PyTorch autograd example that derive explains step by step.",
        "type": "object",
        "required": ["title"],
        "oneOf": [
            {"required": list(TOP_REQUIRED), "not": {"required": ["code"]}},
            {"required": ["title", "code"], "not": {"anyOf": [{"required": ["steps"]}, {"required": ["backward"]}]}},
        ],
        "additionalProperties": False,
        "properties": {
            "title": {"type": "string", "minLength": 1, "description": "Plain text."},
            "summary": {"type": "string", "description": "Plain text, optional."},
            "dtype": {"enum": list(DTYPES), "default": "float32"},
            "lang": {"enum": list(LANGS), "default": "en"},
            "flavor": {"enum": list(FLAVORS), "default": "portable", "description": "Markdown math syntax."},
            "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED,
                     "description": "torch.manual_seed(seed) before the inputs; randn and rand inputs draw from it."},
            "inputs": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"$ref": "#/$defs/name"},
                "additionalProperties": {"$ref": "#/$defs/input"},
                "description": "The leaf tensors, in order.",
            },
            "steps": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"$ref": "#/$defs/name"},
                "additionalProperties": {"type": "string", "minLength": 1, "description": "A torch-like expression."},
                "description": "name: expression, in order, like the torch code.",
            },
            "code": {
                "type": "string",
                "minLength": 1,
                "description": "Torch code (read, never run) instead of steps and backward; inputs, if any, are bound first.",
            },
            "backward": {
                "oneOf": [
                    {"$ref": "#/$defs/call"},
                    {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/call"}},
                ],
                "description": "The output to call backward() on, or several calls in order.",
            },
        },
        "$defs": {
            "name": name,
            "tensor": {
                "oneOf": [
                    {"type": "number"},
                    {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/tensor"}},
                ],
                "description": "A number or nested lists of numbers (rectangular).",
            },
            "input": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "value": tensor,
                    "fill": {"type": "number"},
                    "shape": shape,
                    "randn": drawn,
                    "rand": drawn,
                    "file": {"type": "string", "pattern": f"^{NPY_NAME}$",
                             "description": "A .npy file beside the spec (numpy.save of a float32 or float64 array, at most"
                                            f" {MAX_ELEMENTS} elements, finite): read without pickle, its header"
                                            " checked before its data."},
                    "requires_grad": {"type": "boolean", "default": False},
                    "dtype": {"enum": ["int64"],
                              "description": "An int64 tensor of whole numbers (class indices, an index), with value or"
                                             " fill and shape; it cannot require grad. Without it, an input has the"
                                             " spec's dtype."},
                },
                "oneOf": [
                    {"required": [one], "not": {"anyOf": [{"required": [k]} for k in SOURCES if k != one]}}
                    for one in ("value", "randn", "rand", "file")
                ] + [{"required": ["fill", "shape"], "not": {"anyOf": [{"required": [k]} for k in ("value", "randn", "rand", "file")]}}],
            },
            "call": {
                "oneOf": [
                    {"$ref": "#/$defs/name"},
                    {
                        "type": "object",
                        "required": ["output"],
                        "additionalProperties": False,
                        "properties": {
                            "output": {"$ref": "#/$defs/name"},
                            "gradient": {"oneOf": [tensor, {
                                "type": "object",
                                "required": ["fill", "shape"],
                                "additionalProperties": False,
                                "properties": {"fill": {"type": "number"}, "shape": shape},
                            }]},
                        },
                    },
                ]
            },
        },
    }

