"""Random coefficient fields for Darcy problems (FNO-style piecewise-constant permeability).

The Fourier Neural Operator benchmark (Li et al., 2021, "Fourier Neural
Operator for Parametric Partial Differential Equations", ICLR, Sec. 5.2)
draws the Darcy coefficient as ``a = psi(g)`` with ``g ~ N(0, (-Δ + 9 I)^-2)``
and ``psi`` mapping positive values to 12 and the rest to 3. This module
provides both pieces as pure torch functions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from irsolve._validate import check_dim, check_float_dtype, check_int, check_memory, check_real

__all__ = ["darcy_coefficient", "gaussian_random_field"]


def gaussian_random_field(
    batch: int,
    n: int,
    alpha: float = 2.0,
    tau: float = 3.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    dim: int = 2,
) -> Tensor:
    """Samples of the Gaussian random field ``N(0, (-Δ + tau^2 I)^-alpha)``.

    The field lives on the periodic unit square ``[0, 1)^2`` (cube ``[0, 1)^3``
    with ``dim=3``) and is sampled at the ``n^dim`` nodes ``x_i = i / n``. With the Fourier basis
    ``e_k(x) = exp(2 pi i k.x)``, ``-Δ e_k = 4 pi^2 |k|^2 e_k``, so

    ``g(x) = sum_k (4 pi^2 |k|^2 + tau^2)^(-alpha/2) xi_k e_k(x)``,

    with ``xi_k`` standard complex normal (Hermitian, so ``g`` is real), truncated
    to the ``n^dim`` frequencies the grid resolves. It is computed as
    ``n^(dim/2) * ifftn(s * fftn(w))`` for real white noise ``w`` of unit variance, which
    gives pointwise variance ``sum_k s_k^2`` with ``s_k = (4 pi^2 |k|^2 + tau^2)^(-alpha/2)``.
    The ``k = 0`` mode is kept (its variance is ``tau^(-2 alpha)``), as the
    covariance operator prescribes.

    Parameters
    ----------
    batch, n
        Number of samples and grid points per side (``n >= 1``).
    alpha, tau
        Smoothness exponent (``> 0``) and inverse length scale (``> 0``).
    generator
        Optional ``torch.Generator`` for reproducible draws (a NumPy
        ``Generator`` is refused: torch draws the noise).
    dtype, device
        Of the returned tensor; the noise is drawn on ``device``.
    dim
        Grid dimensions, 2 or 3.

    Returns
    -------
    Tensor
        Shape ``(batch, 1, n, n)`` (``(batch, 1, n, n, n)``).
    """
    owner = "gaussian_random_field"
    batch = check_int(owner, "batch", batch, minimum=1)
    n = check_int(owner, "n", n, minimum=1)
    alpha = check_real(owner, "alpha", alpha, minimum=0.0, open_min=True)
    tau = check_real(owner, "tau", tau, minimum=0.0, open_min=True)
    check_float_dtype(owner, "dtype", dtype)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{owner}: expected generator to be a torch.Generator or None, "
            f"got {type(generator).__module__}.{type(generator).__name__}"
        )
    dim = check_dim(owner, dim)
    itemsize = torch.finfo(dtype).bits // 8
    check_memory(
        owner,
        f"{batch} field(s) of {' x '.join([str(n)] * dim)} ({dtype}) with their Fourier transforms",
        # the noise, its complex transforms and the result: a peak of 9 fields (measured)
        9 * batch * n**dim * itemsize,
    )
    noise = torch.randn(batch, 1, *[n] * dim, generator=generator, dtype=dtype, device=device)
    k = torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype, device=device)
    k2 = sum(axis**2 for axis in torch.meshgrid(*[k] * dim, indexing="ij"))
    scale = (4.0 * math.pi**2 * k2 + tau**2) ** (-alpha / 2.0)
    axes = tuple(range(-dim, 0))
    spectrum = scale * torch.fft.fftn(noise, dim=axes)
    return n ** (dim / 2) * torch.fft.ifftn(spectrum, dim=axes).real


def darcy_coefficient(grf: Tensor, high: float = 12.0, low: float = 3.0) -> Tensor:
    """Piecewise-constant permeability ``a = high`` where ``grf > 0``, else ``low``.

    This is the push-forward ``psi(g)`` of the FNO Darcy benchmark (Li et al.,
    2021), with ``high = 12`` and ``low = 3`` there. A sample whose field keeps
    one sign is a single phase: that belongs to the benchmark's distribution and
    is kept (``darcy_coefficient(gaussian_random_field(64, 64))``: 16, 19 and 21
    of 64 samples uniform for generator seeds 0, 1, 2).

    Parameters
    ----------
    grf
        Real field of any shape, e.g. from :func:`gaussian_random_field`;
        NaN is refused (it is neither positive nor not).
    high, low
        Positive, finite values of the two phases.

    Returns
    -------
    Tensor
        Same shape, dtype and device as ``grf``.
    """
    if not isinstance(grf, Tensor) or grf.is_complex():
        got = f"complex {grf.dtype}" if isinstance(grf, Tensor) else type(grf).__name__
        raise TypeError(f"darcy_coefficient: expected grf to be a real torch.Tensor, got {got}")
    if bool(grf.isnan().any()):
        raise ValueError(
            f"darcy_coefficient: expected grf without NaN, got {int(grf.isnan().sum())} NaN "
            f"value(s) of {grf.numel()}"
        )
    high = check_real("darcy_coefficient", "high", high, minimum=0.0, open_min=True)
    low = check_real("darcy_coefficient", "low", low, minimum=0.0, open_min=True)
    return torch.where(grf > 0, torch.full_like(grf, high), torch.full_like(grf, low))
