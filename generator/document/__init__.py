"""One document model, filled from a derivation and shared by every renderer: small and large builders, code, LaTeX."""
