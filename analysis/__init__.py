"""Contraction certificates, Lipschitz estimates and spectral error analysis.

``lipschitz`` estimates the local Lipschitz constant of any solver's step,
``contraction_certificate`` checks Theorem 3.1 / Corollary 3.3 of the IRNO
paper on a real input and trajectory, and ``spectral_error`` measures the
error per radial frequency band.
"""

from .certificate import Certificate, contraction_certificate
from .lipschitz import lipschitz
from .spectral import SpectralError, spectral_error

__all__ = [
    "Certificate",
    "SpectralError",
    "contraction_certificate",
    "lipschitz",
    "spectral_error",
]
