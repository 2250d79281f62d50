"""Contraction certificates, Lipschitz estimates and spectral error analysis."""

__all__: list[str] = []
