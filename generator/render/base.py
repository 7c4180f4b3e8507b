"""What a renderer is: one document model in, the bytes of one output format out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..document.model import Document
    from ..engines.exact import Derivation


class Renderer(Protocol):
    """An output format."""

    ext: str

    def render(self, *, document: Document, derivation: Derivation) -> bytes:
        """Return what the file is made from (runs with the derivation, within its time budget)."""
        ...

    def finish(self, data: bytes, *, label: str) -> bytes:
        """Return the file's bytes from what render returned (runs after, with its own time limit)."""
        ...


class Finished:
    """A format whose rendered bytes are the file: nothing to do after rendering."""

    def finish(self, data: bytes, *, label: str) -> bytes:
        """Return the file's bytes from what render returned (the PDF compiles its LaTeX here)."""
        return data
