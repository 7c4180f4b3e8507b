"""The derivations: exact (sympy), sparse float64 arrays for large examples, and the dtype shadow of torch's rounding."""
