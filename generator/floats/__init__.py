"""The number layer every stage may use: float64 semantics, float math, numeric evaluation, torch's printing."""
