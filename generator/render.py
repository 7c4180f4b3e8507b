"""Renderers: one document model in, the bytes of one output format out."""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import jinja2

from .derive import Derivation, to_float
from .document import Document
from .ops import numel

MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$<>&])")
TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "#": r"\#", "$": r"\$", "%": r"\%",
    "&": r"\&", "_": r"\_", "^": r"\^{}", "~": r"\~{}",
}


def md_text(text: str) -> str:
    """Escape plain text for Markdown and HTML: it shows literally, never as markup or math."""
    text = " ".join(text.split())
    html = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
    return MD_SPECIAL.sub(lambda m: html.get(m.group(1), "\\" + m.group(1)), text)


def tex_text(text: str) -> str:
    """Escape plain text for LaTeX."""
    return "".join(TEX_SPECIAL.get(c, c) for c in text)


def template_root() -> Path:
    """Return the templates folder: inside the installed package, or beside it in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the templates folder is missing from the installation")


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
    env.filters["md"] = md_text
    env.filters["tex_text"] = tex_text
    return env


class Renderer(Protocol):
    """An output format."""

    ext: str

    def render(self, *, document: Document, derivation: Derivation) -> bytes:
        """Return the file's bytes."""
        ...


class Markdown:
    """Markdown with $$ math blocks, portable across GitHub, MkDocs, Jekyll and Jupyter."""

    ext = "md"

    def render(self, *, document: Document, derivation: Derivation) -> bytes:
        template = environment().get_template(f"{document.lang}/document.md.j2")
        text = template.render(doc=document)
        text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
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
    size = numel(shape[1:])
    return [_nest(values[i * size:(i + 1) * size], shape[1:]) for i in range(shape[0])]


def _floats(values, shape: tuple[int, ...]) -> Any:
    return _nest([_number(to_float(v)) for v in values], shape)


def _exact(values, shape: tuple[int, ...]) -> Any:
    return _nest([str(v) for v in values], shape)


class Json:
    """The derivation's numbers: a public contract for other tools."""

    ext = "json"

    def render(self, *, document: Document, derivation: Derivation) -> bytes:
        graph = derivation.graph
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
                "jacobians": {leaf: [[_number(to_float(x)) for x in row] for row in rows] for leaf, rows in p.jacobians.items()},
                "vjp": {leaf: _floats(v, shapes[leaf]) for leaf, v in p.vjp.items()},
            })
        data = {
            "title": document.title,
            "dtype": document.dtype,
            "values": {n.name: _floats(derivation.values[n.name], n.shape) for n in graph.nodes},
            "grads": grads,
            "backward": calls,
            "exact": {
                "values": {n.name: _exact(derivation.values[n.name], n.shape) for n in graph.nodes},
                "grads": {leaf: None if g is None else _exact(g, shapes[leaf]) for leaf, g in derivation.grads.items()},
            },
        }
        return (json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


RENDERERS: dict[str, Renderer] = {"md": Markdown(), "json": Json()}
