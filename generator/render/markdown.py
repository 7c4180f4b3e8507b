"""The Markdown renderer: the document through its jinja template, math in the document's flavor."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jinja2

from ..engines.exact import Derivation
from ..document.model import Document, Picture, PictureNode
from .base import Finished
from .flavor import Flavor, flavor
from .messages import Messages, plain
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


def box_lines(picture: Picture, n: PictureNode, t: Messages) -> list[str]:
    """Return a graph box's plain-text lines: name, shape, grad_fn (or requires_grad), value, gradients."""
    lines = [n.name, t.shape(n.shape), n.grad_fn or f"requires_grad={n.requires_grad}"]
    if picture.values:
        lines.append(plain(t("picture_line", label=t("picture_value"), value=n.value)))
    for g in n.grads:
        lines.append(plain(t("picture_line", label=t.picture_grad(n.grad_of, g.call, picture.calls), value=g.value)))
    return lines


def mermaid(picture: Picture, t: Messages) -> str:
    """Return the computation graph as a Mermaid flowchart: arrows go the way the data flows.

    Each box is a tensor: name and shape, grad_fn (or requires_grad for a leaf), value and
    gradients. An arrow along which backward() sends a gradient back carries a red label
    pointing back; each leaf that requires grad ends in its AccumulateGrad node.
    """
    ids = {n.name: f"n{i}" for i, n in enumerate(picture.nodes)}
    lines = ["flowchart TD"]
    for n in picture.nodes:
        name, *rest = box_lines(picture, n, t)
        rows = [f"<b>{_mermaid_text(name)}</b> · {_mermaid_text(rest[0])}", *map(_mermaid_text, rest[1:])]
        lines.append(f'  {ids[n.name]}["{"<br/>".join(rows)}"]')
    accumulate = [n for n in picture.nodes if n.is_leaf and n.requires_grad]
    for k, n in enumerate(accumulate):
        lines.append(f'  a{k}(["AccumulateGrad"])')
    for e in picture.edges:
        arrow = f'-->|"{_mermaid_text(plain(t("picture_back")))}"|' if e.backward else "-->"
        lines.append(f"  {ids[e.source]} {arrow} {ids[e.target]}")
    for k, n in enumerate(accumulate):
        lines.append(f'  {ids[n.name]} -.->|"{_mermaid_text(plain(t("picture_leaf_grad", name=n.grad_of)))}"| a{k}')
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


class FlavoredMessages:
    """A language's sentences for the Markdown template, their inline math in one flavor's syntax."""

    def __init__(self, messages: Messages, flavor: Flavor):
        self.raw = messages  # unconverted, for labels that take no markup (the Mermaid graph)
        self._flavor = flavor

    def __call__(self, key: str, **params: Any) -> str:
        return self._flavor.markup(self.raw(key, **params))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class Markdown(Finished):
    """Markdown in the document's flavor (generator/render/flavor.py); portable $$ blocks by default."""

    ext = "md"

    def render(self, *, document: Document, derivation: Derivation) -> bytes:
        template = environment().get_template("document.md.j2")
        style = flavor(document.flavor)
        t = FlavoredMessages(Messages(document.lang), style)
        front = style.front(document.title) if document.front_matter else ""
        text = template.render(doc=document, t=t, flavor=style, front=front)
        text = front + re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
        return text.encode("utf-8")
