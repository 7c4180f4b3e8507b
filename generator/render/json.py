"""The JSON renderer: the derivation's numbers, a public contract for other tools."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np

from ..document.model import Document
from ..engines.exact import Derivation
from ..floats.ieee import to_float
from ..document.glance import glance
from ..document.parts import retained_parts
from ..ops.base import numel, unravel
from ..spec.model import apply_resets, shared
from ..spec.model import active_hooks
from ..document.code import hook_order
from .base import Finished


def _number(x: float) -> float | str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _nest(values: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return values[0]
    if len(shape) == 1:
        return list(values)
    size = numel(shape[1:])
    return [_nest(values[i * size:(i + 1) * size], shape[1:]) for i in range(shape[0])]


PACKED = 10_000  # elements from which an array is written as its bytes in base64, not as a list of numbers


def packed(values: np.ndarray, shape: tuple[int, ...], kind: str = "float64") -> dict[str, Any]:
    """Return a large array as {"shape", "dtype", "base64"}: its little-endian bytes, row-major (10.7 bytes each)."""
    data = np.ascontiguousarray(values, dtype="<f8" if kind == "float64" else "<i8").tobytes()
    return {"shape": list(shape), "dtype": kind, "base64": base64.b64encode(data).decode("ascii")}


def _floats(values, shape: tuple[int, ...]) -> Any:
    if isinstance(values, np.ndarray):  # a large example's array: converted at once
        if values.size >= PACKED:
            return packed(values, shape)
        flat = values.tolist() if np.isfinite(values).all() else [_number(v) for v in values.tolist()]
        return _nest(flat, shape)
    return _nest([_number(to_float(v)) for v in values], shape)


def dumps(value: Any, pad: str = "") -> str:
    """Return JSON indented by structure, with each innermost list of numbers on one line."""
    inner = pad + "  "
    if isinstance(value, dict) and value:
        items = (f"{inner}{json.dumps(k, ensure_ascii=False)}: {dumps(v, inner)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(x, (list, dict)) for x in value):
        return "[\n" + ",\n".join(inner + dumps(x, inner) for x in value) + "\n" + pad + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _exact(values, shape: tuple[int, ...]) -> Any:
    return _nest([str(v) for v in values], shape)


class Json(Finished):
    """The derivation's numbers: a public contract for other tools."""

    ext = "json"

    def render(self, *, document: Document, derivation: Derivation) -> bytes:
        graph = derivation.graph
        large = derivation.large  # generator/engines/sparse.py: float64 arrays, sparse Jacobians
        shapes = {n.name: n.shape for n in graph.nodes}
        final = apply_resets(derivation.grads, graph.spec.resets_before(len(derivation.passes)),
                             lambda leaf, g: np.zeros(numel(shapes[leaf])))  # resets after the last call too
        final = shared(final, graph.spec)
        grads = {name: None if final[leaf] is None else _floats(final[leaf], shapes[leaf])
                 for name, leaf in graph.spec.leaf_names()}
        calls = []
        for p in derivation.passes:
            out = p.call.output
            calls.append({
                "output": out,
                "gradient": _floats(p.gradient, shapes[out]),
                "implicit": p.implicit,
                "jacobians": {
                    leaf: _sparse(rows, p.vjp[leaf], p.implicit) if large
                    else [[_number(to_float(x)) for x in row] for row in rows]
                    for leaf, rows in p.jacobians.items()
                },
                "vjp": {leaf: _floats(v, shapes[leaf]) for leaf, v in p.vjp.items()},
            })
            if p.hooked:
                calls[-1]["hooks"] = _hooks(graph, p, shapes)
        data = {
            "title": document.title,
            "dtype": document.dtype,
            "values": {n.name: _floats(derivation.values[n.name], n.shape) for n in graph.nodes},
            "grads": grads,
            "retained": {g.leaf: _retained(derivation, g.leaf, shapes[g.leaf]) for g in document.grads if g.retained},
            "printed": document.printed,  # what the example's code prints, as torch writes it
            **({"printed_bounds": {b.label: float(b.bound) for b in document.order.bounds}} if document.order else {}),
            "backward": calls,
            "exact": None if large else {
                "values": {n.name: _exact(derivation.values[n.name], n.shape) for n in graph.nodes},
                "grads": {leaf: None if g is None else _exact(g, shapes[leaf]) for leaf, g in derivation.grads.items()},
            },
        }
        if large:  # what the document shows of each tensor (small examples show every entry)
            data["highlights"] = _highlights(derivation, shapes)
        if document.functionals:
            data["functionals"] = _functionals(graph.spec)
        if graph.spec.applied:
            data["functions"] = _functions(derivation, shapes)
        if document.derivatives:
            data["grad_calls"] = [{
                "result": n.name, "output": n.output, "input": n.input, "create_graph": n.create, "order": n.order,
                "value": _floats(derivation.values[n.name], shapes[n.name]),
            } for n in document.derivatives]
        return (dumps(data) + "\n").encode("utf-8")


def _functionals(spec) -> list[dict[str, Any]]:
    """Return each printed functional call: f's output, J (and H) per input (exact, row-major), and what it returns."""
    from ..document.functional import functionals_of
    from ..engines.functional import solve

    found = []
    for f in functionals_of(spec):
        solved = solve(spec, f)
        graph = solved.graph
        out = graph.node(solved.output).shape
        shapes = [graph.node(p).shape for p in f.params]
        if f.kind == "jacobian":
            returned = [_floats(r, out + s) for r, s in zip(solved.results, shapes)]
        elif f.kind in ("vjp", "hvp"):
            returned = [_floats(r, s) for r, s in zip(solved.results, shapes)]
        elif f.kind == "hessian":
            returned = [_floats(r, a + b) for r, (a, b) in zip(solved.results, [(a, b) for a in shapes for b in shapes])]
        else:
            returned = [_floats(solved.results[0], out)]
        hessians = {"hessians": {p: {q: [[_number(to_float(x)) for x in row] for row in block]
                                     for q, block in zip(f.params, blocks)}
                                 for p, blocks in zip(f.params, solved.hessians)}} if solved.hessians else {}
        found.append({
            "kind": f.kind,
            "function": f.function,
            "inputs": {p: t for p, t in zip(f.params, f.inputs)},
            "output": _floats(solved.derivation.values[solved.output], out),
            "jacobians": {p: [[_number(to_float(x)) for x in row] for row in rows]
                          for p, rows in zip(f.params, solved.jacobians)},
            "v": [_floats(v, s) for v, s in zip(solved.v, [graph.node(solved.output).shape] if f.kind == "vjp" else shapes)],
            "returned": returned,
            "create_graph": f.create_graph,
            **hessians,
        })
    return found


def _functions(derivation, shapes: dict[str, tuple[int, ...]]) -> list[dict[str, Any]]:
    """Return each F.apply(x) of a custom Function: the author's backward beside the derivative of forward."""
    from ..engines.verdict import verdicts

    found = []
    for v in verdicts(derivation):
        shape = shapes[v.input]
        found.append({
            "function": v.function, "output": v.node, "input": v.input, "line": v.line,
            "backward": _floats(v.ours, shape), "derivative": _floats(v.theirs, shape), "agree": v.agree,
            "disagree_at": [list(unravel(k, shape)) for k in v.differs],
        })
    return found


def _hooks(graph, p, shapes: dict[str, tuple[int, ...]]) -> list[dict[str, Any]]:
    """Return each hook torch ran in one call, in order: its tensor, its code, the gradient it got and what it returned."""
    found = []
    active = active_hooks(graph.spec, p.call)
    for name in hook_order(graph, p.call.output):
        chain = p.hooked.get(name)
        for k, hook in enumerate(active.get(name, ()) if chain else ()):
            found.append({"tensor": name, "hook": "\n".join(hook.code), "received": _floats(chain[k], shapes[name]),
                          "returned": _floats(chain[k + 1], shapes[name]) if hook.expr else None})
    return found


def _retained(derivation, name: str, shape: tuple[int, ...]) -> Any:
    """Return a computed tensor's final .grad, kept by retain_grad(): its gradients summed over the calls since."""
    _, total = retained_parts(derivation.graph.spec, derivation.passes, name)
    return None if total is None else _floats(total, shape)


def _highlights(derivation, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Return, for a large example's tensors, the entries its document shows (generator/document/glance.py)."""
    def of(values: np.ndarray, shape: tuple[int, ...]) -> dict[str, Any]:
        seen = glance(values, shape)
        at = lambda k: list(unravel(int(k), shape))  # noqa: E731
        return {
            "kind": seen.kind, "size": seen.size, "nonzero": seen.nonzero,
            "baseline": None if seen.kind == "spread" else _number(seen.baseline),
            "entries": [at(k) for k in seen.entries], "rows": list(seen.rows),
            "smallest": {"at": at(seen.low), "value": _number(float(values[seen.low]))},
            "largest": {"at": at(seen.high), "value": _number(float(values[seen.high]))},
            "l2_norm": _number(seen.norm), "example_at": at(seen.pick), "why": seen.why,
        }

    return {
        "values": {name: of(v, shapes[name]) for name, v in derivation.values.items() if shapes[name]},
        "backward": [{name: of(a, shapes[name]) for name, a in p.adjoints.items() if shapes[name]}
                     for p in derivation.passes],
        "grads": {leaf: of(g, shapes[leaf]) for leaf, g in derivation.grads.items() if g is not None and shapes[leaf]},
    }


def _sparse(jacobian, vjp: np.ndarray, implicit: bool) -> dict[str, Any] | None:
    """Write a large example's J by its non-zero entries, row-major: J[row[k], col[k]] = value[k].

    J of a one-element output called with v = 1 is its one row, which is vjp: written once, there.
    """
    if jacobian is None:
        return None
    if implicit and jacobian.rows == 1 and jacobian.value.size >= PACKED and np.array_equal(
            jacobian.dense()[0], vjp, equal_nan=True):
        return {"rows": 1, "cols": jacobian.cols, "row": "vjp"}
    count = (jacobian.value.size,)
    index = (lambda a: packed(a, count, "int64")) if jacobian.value.size >= PACKED else (lambda a: a.tolist())
    return {"rows": jacobian.rows, "cols": jacobian.cols, "row": index(jacobian.row), "col": index(jacobian.col),
            "value": _floats(jacobian.value, count)}


def document_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of what `--format json` writes: the contract other tools read."""
    number = {"oneOf": [{"type": "number"}, {"enum": ["inf", "-inf", "nan"]}]}
    packed_array = {
        "type": "object", "additionalProperties": False, "required": ["shape", "dtype", "base64"],
        "description": f"An array of {PACKED:,} or more elements: its IEEE bytes, little-endian, row-major, in base64.",
        "properties": {"shape": {"type": "array", "items": {"type": "integer"}},
                       "dtype": {"enum": ["float64", "int64"]}, "base64": {"type": "string"}},
    }
    tensor = {"oneOf": [number, {"type": "array", "items": {"$ref": "#/$defs/tensor"}}, packed_array]}
    exact = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/$defs/exact"}}]}
    maybe = {"oneOf": [{"$ref": "#/$defs/tensor"}, {"type": "null"}]}
    indices = {"oneOf": [{"type": "array", "items": {"type": "integer"}}, packed_array]}
    sparse = {
        "type": "object", "additionalProperties": False,
        "required": ["rows", "cols", "row", "col", "value"],
        "properties": {"rows": {"type": "integer"}, "cols": {"type": "integer"}, "row": indices, "col": indices,
                       "value": {"oneOf": [{"type": "array", "items": number}, packed_array]}},
    }
    same_as_vjp = {
        "type": "object", "additionalProperties": False, "required": ["rows", "cols", "row"],
        "description": "J of a one-element output with v = 1 in a large example: its one row is this call's vjp.",
        "properties": {"rows": {"const": 1}, "cols": {"type": "integer"}, "row": {"const": "vjp"}},
    }
    dense = {"type": "array", "items": {"type": "array", "items": number}}
    call = {
        "type": "object", "additionalProperties": False,
        "required": ["output", "gradient", "implicit", "jacobians", "vjp"],
        "properties": {
            "output": {"type": "string", "description": "The tensor backward was called on."},
            "gradient": {"$ref": "#/$defs/tensor", "description": "v: the gradient argument (1 when implicit)."},
            "implicit": {"type": "boolean", "description": "backward() without a gradient, on a scalar."},
            "jacobians": {"type": "object", "description": "Per leaf, J: numel(output) x numel(leaf), row-major;"
                          " sparse or null in a large example.",
                          "additionalProperties": {"oneOf": [dense, sparse, same_as_vjp, {"type": "null"}]}},
            "vjp": {"type": "object", "description": "Per leaf, this call's J^T v (with hooks: what the leaf's .grad"
                    " received, after them).",
                    "additionalProperties": {"$ref": "#/$defs/tensor"}},
            "hooks": {"type": "array", "description": "Only where the call ran tensor hooks (t.register_hook): each,"
                      " in the order torch ran it (a tensor's hooks in the order registered).", "items": {
                          "type": "object", "additionalProperties": False,
                          "required": ["tensor", "hook", "received", "returned"],
                          "properties": {
                              "tensor": {"type": "string", "description": "The tensor the hook is registered on."},
                              "hook": {"type": "string", "description": "Its code, as the document's script writes it."},
                              "received": {"$ref": "#/$defs/tensor", "description": "The gradient it was called with."},
                              "returned": {"$ref": "#/$defs/maybe", "description": "What it returned, the gradient"
                                           " from then on; null: it returned None, leaving the gradient unchanged."}}}},
        },
    }
    functional = {
        "type": "object", "additionalProperties": False,
        "required": ["kind", "function", "inputs", "output", "jacobians", "v", "returned", "create_graph"],
        "properties": {
            "kind": {"enum": ["jacobian", "vjp", "jvp", "hessian", "hvp"]},
            "function": {"type": "string", "description": "The helper (or lambda's name) differentiated."},
            "inputs": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "Per parameter of the function, the example's tensor torch copies into it."},
            "output": {"$ref": "#/$defs/tensor", "description": "The function's value at the inputs."},
            "jacobians": {"type": "object", "additionalProperties": dense,
                          "description": "Per parameter, J: numel(output) x numel(input), row-major (hessian, hvp:"
                                         " the gradient, one row)."},
            "hessians": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": dense},
                         "description": "hessian, hvp only: per parameter i, per parameter j, H_ij, the gradient by i"
                                        " differentiated by j: numel(i) x numel(j), row-major."},
            "v": {"type": "array", "items": {"$ref": "#/$defs/tensor"},
                  "description": "vjp: [v]; jvp, hvp: v per input; [] for jacobian, hessian or when torch takes ones."},
            "returned": {"type": "array", "items": {"$ref": "#/$defs/tensor"},
                         "description": "After the output: J per input (jacobian), J^T v per input (vjp), [J u] (jvp),"
                                        " H_ij for each i, then each j (hessian), H v per input (hvp)."},
            "create_graph": {"type": "boolean"},
        },
    }
    spot = {"type": "object", "additionalProperties": False, "required": ["at", "value"],
            "properties": {"at": {"type": "array", "items": {"type": "integer"}}, "value": number}}
    glimpse = {
        "type": "object", "additionalProperties": False,
        "required": ["kind", "size", "nonzero", "baseline", "entries", "rows", "smallest", "largest", "l2_norm",
                     "example_at", "why"],
        "properties": {
            "kind": {"enum": ["equal", "except", "spread"]}, "size": {"type": "integer"},
            "nonzero": {"type": "integer"}, "baseline": {"oneOf": [number, {"type": "null"}]},
            "entries": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
            "rows": {"type": "array", "items": {"type": "integer"}},
            "smallest": spot, "largest": spot, "l2_norm": number,
            "example_at": {"type": "array", "items": {"type": "integer"}}, "why": {"type": "string"},
        },
    }
    glimpses = {"type": "object", "additionalProperties": glimpse}
    function = {
        "type": "object", "additionalProperties": False,
        "required": ["function", "output", "input", "line", "backward", "derivative", "agree", "disagree_at"],
        "properties": {
            "function": {"type": "string", "description": "The class name."},
            "output": {"type": "string", "description": "The tensor F.apply(x) makes."},
            "input": {"type": "string", "description": "x."},
            "line": {"type": "integer", "description": "The line of backward's return (or of the call)."},
            "backward": {"$ref": "#/$defs/tensor", "description": "d output / d x per element, as the author's"
                         " backward gives it (what it multiplies grad_output by): what torch and the grads use."},
            "derivative": {"$ref": "#/$defs/tensor", "description": "The derivative of forward per element, by the"
                           " rules (sympy)."},
            "agree": {"type": "boolean"},
            "disagree_at": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}},
                            "description": "The elements of x where the two differ."},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "derive document",
        "description": "What `derive build --format json` writes for one example.",
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "dtype", "values", "grads", "retained", "printed", "backward", "exact"],
        "properties": {
            "title": {"type": "string"},
            "dtype": {"enum": ["float32", "float64"]},
            "values": {"type": "object", "description": "Every tensor of the graph, by node name.",
                       "additionalProperties": {"$ref": "#/$defs/tensor"}},
            "grads": {"type": "object", "additionalProperties": {"$ref": "#/$defs/maybe"},
                      "description": "For each name bound at the end to a leaf that requires grad (every such"
                                     " input of a YAML spec; aliases too in torch code), that leaf's final"
                                     " .grad, after resets that follow the last call; null if it has none."},
            "retained": {"type": "object", "additionalProperties": {"$ref": "#/$defs/maybe"},
                         "description": "The final .grad of each computed tensor kept by retain_grad()."},
            "printed": {"type": "string", "description": "Exactly what the example's code prints in torch."},
            "backward": {"type": "array", "items": call, "description": "Every backward call, in order."},
            "exact": {"oneOf": [{"type": "null"}, {
                "type": "object", "additionalProperties": False, "required": ["values", "grads"],
                "properties": {"values": {"type": "object", "additionalProperties": {"$ref": "#/$defs/exact"}},
                               "grads": {"type": "object", "additionalProperties":
                                         {"oneOf": [{"$ref": "#/$defs/exact"}, {"type": "null"}]}}},
                "description": "The same values and each leaf's grad as exact sympy strings (null when large)."}]},
            "functions": {"type": "array", "items": function, "description": "Each F.apply(x) of a custom"
                          " torch.autograd.Function (only when the example has one)."},
            "grad_calls": {"type": "array", "description": "Every torch.autograd.grad(output, ...)[k], in order"
                           " (absent when the code has none).", "items": {
                               "type": "object", "additionalProperties": False,
                               "required": ["result", "output", "input", "create_graph", "order", "value"],
                               "properties": {
                                   "result": {"type": "string", "description": "The tensor the gradient is bound to."},
                                   "output": {"type": "string"}, "input": {"type": "string"},
                                   "create_graph": {"type": "boolean", "description": "Recorded: it can be"
                                                    " differentiated again."},
                                   "order": {"type": "integer", "description": "1: a first derivative; 2: the"
                                             " derivative of one; ..."},
                                   "value": {"$ref": "#/$defs/tensor", "description": "The gradient's values."}}}},
            "highlights": {"type": "object", "additionalProperties": False,
                           "description": "A large example's telling entries, as its document shows them.",
                           "properties": {"values": glimpses, "grads": glimpses,
                                          "backward": {"type": "array", "items": glimpses}}},
            "printed_bounds": {"type": "object", "additionalProperties": {"type": "number"},
                               "description": "Where the order BLAS adds a matrix product's terms in can change printed"
                                              " digits: per printed tensor (w1.grad), how far torch's numbers may be"
                                              " from those in printed (absent if nowhere)."},
            "functionals": {"type": "array", "items": functional,
                            "description": "Every printed torch.autograd.functional call, in order (absent if none)."},
        },
        "$defs": {"tensor": tensor, "exact": exact, "maybe": maybe},
    }
