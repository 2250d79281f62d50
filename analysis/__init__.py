"""Contraction certificates, Lipschitz estimates, spectral error analysis and plots.

``lipschitz`` estimates the local Lipschitz constant of any solver's step,
``contraction_certificate`` checks Theorem 3.1 / Corollary 3.3 of the IRNO
paper on a real input and trajectory, and ``spectral_error`` measures the
error per radial frequency band; ``reference_solve`` is the sparse direct
solve every comparison against the exact discrete solution uses. The ``plot_*`` functions (module
:mod:`irsolve.analysis.plots`) draw each of these as PNG and PDF figures.
"""

from . import plots
from .certificate import Certificate, contraction_certificate
from .lipschitz_estimates import lipschitz
from .plots import (
    certificate_figure,
    plot_band_ratios,
    plot_certificate,
    plot_convergence,
    plot_error_spectra,
    plot_fields,
)
from .reference import reference_solve
from .spectral import SpectralError, spectral_error

__all__ = [
    "Certificate",
    "SpectralError",
    "certificate_figure",
    "contraction_certificate",
    "lipschitz",
    "plot_band_ratios",
    "plot_certificate",
    "plot_convergence",
    "plot_error_spectra",
    "plot_fields",
    "plots",
    "reference_solve",
    "spectral_error",
]
