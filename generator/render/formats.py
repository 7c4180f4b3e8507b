"""Every output format by its name: Markdown, JSON, LaTeX, PDF, a standalone HTML page and a Jupyter notebook."""

from __future__ import annotations

from .base import Renderer
from .html import Html
from .json import Json
from .markdown import Markdown
from .notebook import Notebook
from .pdf import Pdf, Tex  # pylatex itself loads only when a LaTeX or PDF file is made

RENDERERS: dict[str, Renderer] = {"md": Markdown(), "json": Json(), "tex": Tex(), "pdf": Pdf(), "html": Html(), "ipynb": Notebook()}
