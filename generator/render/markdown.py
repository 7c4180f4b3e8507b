"""Renderers: one document model in, the bytes of one output format out."""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any, Protocol

import jinja2
import numpy as np

from ..engines.exact import Derivation
from ..floats.ieee import to_float
from ..document.model import Document, Picture
from .flavor import Flavor, flavor
from .messages import Messages, plain
from ..ops.base import numel
from .pdf import Pdf, Tex  # pylatex itself loads only when a LaTeX or PDF file is made
from ..resources import template_root

@lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
    """Return the one jinja environment, loading the templates shipped with the package."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_root())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["zip"] = zip
    env.globals["mermaid"] = mermaid
    return env


def _mermaid_text(text: str) -> str:
    """Escape text for a quoted Mermaid label (the label's own <b> and <br/> are added after)."""
    return "".join({'"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "#": "#35;"}.get(c, c) for c in text)


def mermaid(picture: Picture, t: Messages) -> str:
    """Return the computation graph as a Mermaid flowchart: arrows go the way the data flows.

    Each box is a tensor: name and shape, grad_fn (or requires_grad for a leaf), value and
    gradients. An arrow along which backward() sends a gradient back carries a red label
    pointing back; each leaf that requires grad ends in its AccumulateGrad node.
    """
    ids = {n.name: f"n{i}" for i, n in enumerate(picture.nodes)}
    lines = ["flowchart TD"]
    for n in picture.nodes:
        rows = [f"<b>{_mermaid_text(n.name)}</b> · {_mermaid_text(t.shape(n.shape))}"]
        rows.append(_mermaid_text(n.grad_fn or f"requires_grad={n.requires_grad}"))
        rows.append(_mermaid_text(plain(t("picture_line", label=t("picture_value"), value=n.value))))
        for g in n.grads:
            label = t.picture_grad(n.name, g.call, picture.calls)
            rows.append(_mermaid_text(plain(t("picture_line", label=label, value=g.value))))
        lines.append(f'  {ids[n.name]}["{"<br/>".join(rows)}"]')
    accumulate = [n for n in picture.nodes if n.is_leaf and n.requires_grad]
    for k, n in enumerate(accumulate):
        lines.append(f'  a{k}(["AccumulateGrad"])')
    for e in picture.edges:
        arrow = f'-->|"{_mermaid_text(plain(t("picture_back")))}"|' if e.backward else "-->"
        lines.append(f"  {ids[e.source]} {arrow} {ids[e.target]}")
    for k, n in enumerate(accumulate):
        lines.append(f'  {ids[n.name]} -.->|"{_mermaid_text(plain(t("picture_leaf_grad", name=n.name)))}"| a{k}')
    back = [i for i, e in enumerate(picture.edges) if e.backward]
    to_accumulate = [len(picture.edges) + k for k in range(len(accumulate))]
    lines.append("  classDef leaf fill:#eef4ff,stroke:#4a6fa5")
    lines.append("  classDef acc fill:#fdf0ee,stroke:#c0392b,stroke-dasharray:4 3")
    leaves = [ids[n.name] for n in picture.nodes if n.is_leaf]
    if leaves:
        lines.append(f"  class {','.join(leaves)} leaf")
    if accumulate:
        lines.append(f"  class {','.join(f'a{k}' for k in range(len(accumulate)))} acc")
    if back:
        lines.append(f"  linkStyle {','.join(map(str, back))} color:#c0392b")
    if to_accumulate:
        lines.append(f"  linkStyle {','.join(map(str, to_accumulate))} stroke:#c0392b,color:#c0392b")
    return "\n".join(lines)


class Renderer(Protocol):
    """An output format."""

    ext: str

    def render(self, *, document: Document, derivation: Derivation) -> bytes:
        """Return what the file is made from (runs with the derivation, within its time budget)."""
        ...

    def finish(self, data: bytes, *, label: str) -> bytes:
        """Return the file's bytes from what render returned (runs after, with its own time limit)."""
        ...


class _Finished:
    """A format whose rendered bytes are the file: nothing to do after rendering."""

    def finish(self, data: bytes, *, label: str) -> bytes:
        """Return the file's bytes from what render returned (the PDF compiles its LaTeX here)."""
        return data


class FlavoredMessages:
    """A language's sentences for the Markdown template, their inline math in one flavor's syntax."""

    def __init__(self, messages: Messages, flavor: Flavor):
        self.raw = messages  # unconverted, for labels that take no markup (the Mermaid graph)
        self._flavor = flavor

    def __call__(self, key: str, **params: Any) -> str:
        return self._flavor.markup(self.raw(key, **params))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class Markdown(_Finished):
    """Markdown in the document's flavor (generator/render/flavor.py); portable $$ blocks by default."""

    ext = "md"

    def render(self, *, document: Document, derivation: Derivation) -> bytes:
        template = environment().get_template("document.md.j2")
        style = flavor(document.flavor)
        t = FlavoredMessages(Messages(document.lang), style)
        text = template.render(doc=document, t=t, flavor=style)
        text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
        if document.front_matter:
            text = style.front(document.title) + text
        return text.encode("utf-8")


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


def _floats(values, shape: tuple[int, ...]) -> Any:
    if isinstance(values, np.ndarray):  # a large example's array: converted at once
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


class Json(_Finished):
    """The derivation's numbers: a public contract for other tools."""

    ext = "json"

    def render(self, *, document: Document, derivation: Derivation) -> bytes:
        graph = derivation.graph
        large = derivation.large  # generator/engines/sparse.py: float64 arrays, sparse Jacobians
        shapes = {n.name: n.shape for n in graph.nodes}
        grads = {
            leaf: None if g is None else _floats(g, shapes[leaf]) for leaf, g in derivation.grads.items()
        }
        calls = []
        for p in derivation.passes:
            out = p.call.output
            calls.append({
                "output": out,
                "gradient": _floats(p.gradient, shapes[out]),
                "implicit": p.implicit,
                "jacobians": {
                    leaf: _sparse(rows) if large else [[_number(to_float(x)) for x in row] for row in rows]
                    for leaf, rows in p.jacobians.items()
                },
                "vjp": {leaf: _floats(v, shapes[leaf]) for leaf, v in p.vjp.items()},
            })
        data = {
            "title": document.title,
            "dtype": document.dtype,
            "values": {n.name: _floats(derivation.values[n.name], n.shape) for n in graph.nodes},
            "grads": grads,
            "backward": calls,
            "exact": None if large else {
                "values": {n.name: _exact(derivation.values[n.name], n.shape) for n in graph.nodes},
                "grads": {leaf: None if g is None else _exact(g, shapes[leaf]) for leaf, g in derivation.grads.items()},
            },
        }
        return (dumps(data) + "\n").encode("utf-8")


def _sparse(jacobian) -> dict[str, Any] | None:
    """Write a large example's J by its non-zero entries, row-major: J[row[k], col[k]] = value[k]."""
    if jacobian is None:
        return None
    return {"rows": jacobian.rows, "cols": jacobian.cols, "row": jacobian.row.tolist(), "col": jacobian.col.tolist(),
            "value": _floats(jacobian.value, (jacobian.value.size,))}


RENDERERS: dict[str, Renderer] = {"md": Markdown(), "json": Json(), "tex": Tex(), "pdf": Pdf()}
