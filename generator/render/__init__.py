"""Renderers: Markdown per blog flavor, JSON, LaTeX and PDF, and the message catalogs."""
