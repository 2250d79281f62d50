"""Fixed-point solvers, classical and learned, and the discrete PDE problems they solve."""

__all__: list[str] = []
