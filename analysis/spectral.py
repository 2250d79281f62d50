"""Radially binned error spectra and per-band error ratios (the IRNO paper's spectral analysis).

For an error ``e = pred - target`` of shape ``(B, C, *space)``, the power at
frequency ``w`` is ``P(w) = sum_c |E_c(w)|^2`` with the orthonormal DFT
``E = fftn(e, norm="ortho")`` over the spatial axes, so that
``sum_w P(w) = ||e||_2^2`` (Parseval). Frequencies are in cycles per sample
(``fftfreq`` with ``d = 1``, Nyquist ``0.5`` on every axis) and
``|w| = sqrt(sum_i w_i^2)``.

* ``spectrum``: ``P`` summed over radial shells of width ``1 / n_min``
  (``n_min`` the shortest spatial side): shell ``j`` holds the frequencies
  with ``round(|w| n_min) = j``.
* ``bands``: ``P`` summed over radial bands ``edges[i] <= |w| < edges[i+1]``;
  the default splits ``[0, 0.5]`` in thirds (low / mid / high), and the last
  band also takes the corner frequencies beyond Nyquist (``|w| > 0.5``), so
  the bands add up to ``||e||^2``.
* band ratio of step ``k``: band energy of step ``k``'s error divided by the
  base operator's, per sample; the paper reports its median and 25-75 %
  range over samples.

Torch tensors go through :mod:`torch.fft` and stay torch; NumPy arrays go
through :mod:`scipy.fft` with the pyFFTW backend.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence

import numpy as np
import pyfftw.interfaces.scipy_fft as fftw_backend
import scipy.fft
import torch
from torch import Tensor

from irsolve._validate import check_int

__all__ = [
    "BAND_NAMES",
    "BandSummary",
    "SpectralError",
    "band_edges",
    "band_ratios",
    "spectral_error",
    "summarize_ratios",
]

Array = Tensor | np.ndarray

#: Default band names for three bands.
BAND_NAMES = ("low", "mid", "high")


@dataclasses.dataclass(frozen=True)
class SpectralError:
    """Error power per radial shell and per band, per sample.

    Attributes
    ----------
    spectrum : Tensor or ndarray
        ``(B, n_shells)`` error power per radial shell.
    bands : Tensor or ndarray
        ``(B, n_bands)`` error energy per band; rows sum to ``||e_b||^2``.
    edges : Tensor or ndarray
        ``(n_bands + 1,)`` band edges in cycles per sample; the last edge is
        the largest radial frequency on the grid.
    radii : Tensor or ndarray
        ``(n_shells,)`` radial frequency of each shell, ``j / n_min``.
    """

    spectrum: Array
    bands: Array
    edges: Array
    radii: Array

    def ratio_to(self, base: SpectralError) -> Array:
        """``(B, n_bands)`` band energy of this error over ``base``'s (NaN where both are 0)."""
        return band_ratios(self.bands, base.bands)


@dataclasses.dataclass(frozen=True)
class BandSummary:
    """Median and 25-75 % quantiles of band ratios over samples, each ``(..., n_bands)``."""

    median: Array
    q25: Array
    q75: Array

    def to_dict(self) -> dict[str, list]:
        return {f.name: getattr(self, f.name).tolist() for f in dataclasses.fields(self)}


def band_edges(bands: int | Sequence[float] = 3) -> np.ndarray:
    """Band edges in cycles per sample: ``bands`` equal bands on ``[0, 0.5]``, or given edges.

    A sequence must start at 0, increase strictly and end at or above 0.5
    (Nyquist); the last band is extended to the grid corners when used.
    """
    if isinstance(bands, numbers.Real) and not isinstance(bands, bool):
        count = check_int("band_edges", "bands", bands, minimum=1)
        return np.linspace(0.0, 0.5, count + 1)
    if isinstance(bands, (str, bytes)) or not isinstance(bands, (Sequence, np.ndarray)):
        raise TypeError(
            f"band_edges: expected bands to be an int >= 1 or a sequence of edges, "
            f"got {type(bands).__name__}"
        )
    edges = np.asarray(bands, dtype=np.float64)
    if (
        edges.ndim != 1
        or edges.size < 2
        or edges[0] != 0.0
        or np.any(np.diff(edges) <= 0)
        or edges[-1] < 0.5
    ):
        raise ValueError(
            "band_edges: expected bands as edges starting at 0, strictly increasing and ending "
            "at >= 0.5 "
            f"(Nyquist, in cycles per sample), got {list(edges)}"
        )
    return edges


def spectral_error(pred: Array, target: Array, bands: int | Sequence[float] = 3) -> SpectralError:
    """Radially binned error power spectrum and band energies of ``pred - target`` per sample.

    Parameters
    ----------
    pred, target
        Same shape ``(B, C, *space)`` with at least one spatial axis; both
        torch tensors or both NumPy arrays.
    bands
        Number of equal radial bands on ``[0, Nyquist]`` or the band edges
        (see :func:`band_edges`).

    Returns
    -------
    SpectralError
        In the array type of the inputs (see the module docstring for the
        definitions).
    """
    if type(pred) is not type(target) or not isinstance(pred, (Tensor, np.ndarray)):
        raise TypeError(
            f"spectral_error: expected pred and target both torch tensors or both NumPy arrays, "
            f"got {type(pred).__name__} and {type(target).__name__}"
        )
    if pred.shape != target.shape or pred.ndim < 3:
        raise ValueError(
            f"spectral_error: expected pred and target of the same shape (B, C, *space), "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    space = tuple(pred.shape[2:])
    edges = band_edges(bands)
    radius = _radial_frequency(space)
    n_min = min(space)
    shell = np.rint(radius * n_min).astype(np.int64).ravel()
    band = np.clip(np.searchsorted(edges, radius, side="right") - 1, 0, len(edges) - 2).ravel()
    edges = edges.copy()
    edges[-1] = max(edges[-1], float(radius.max()))
    radii = np.arange(shell.max() + 1) / n_min
    if isinstance(pred, Tensor):
        return _torch_spectrum(pred - target, shell, band, edges, radii)
    return _numpy_spectrum(pred - target, shell, band, edges, radii)


def band_ratios(bands: Array, base_bands: Array) -> Array:
    """Band energy ratio ``bands / base_bands`` elementwise (step ``k`` over the base)."""
    return bands / base_bands


def summarize_ratios(ratios: Array, dim: int = -2) -> BandSummary:
    """Median and 25-75 % quantiles over the sample axis ``dim`` (default: second to last).

    ``ratios`` is ``(..., B, n_bands)``, e.g. ``(steps, B, n_bands)``; NaN
    ratios (bands where the base error is zero) are ignored.
    """
    if isinstance(ratios, Tensor):
        q = torch.tensor([0.5, 0.25, 0.75], dtype=ratios.dtype, device=ratios.device)
        median, q25, q75 = torch.nanquantile(ratios, q, dim=dim)
    else:
        median, q25, q75 = np.nanquantile(ratios, [0.5, 0.25, 0.75], axis=dim)
    return BandSummary(median=median, q25=q25, q75=q75)


def _radial_frequency(space: tuple[int, ...]) -> np.ndarray:
    """``|w|`` on the DFT grid of ``space``, in cycles per sample."""
    grids = np.meshgrid(*[np.fft.fftfreq(n) for n in space], indexing="ij")
    return np.sqrt(sum(g**2 for g in grids))


def _torch_spectrum(
    error: Tensor, shell: np.ndarray, band: np.ndarray, edges: np.ndarray, radii: np.ndarray
) -> SpectralError:
    space = tuple(range(2, error.dim()))
    power = torch.fft.fftn(error, dim=space, norm="ortho").abs().square().sum(dim=1).flatten(1)
    device, dtype = power.device, power.dtype
    shell_t = torch.as_tensor(shell, device=device)
    band_t = torch.as_tensor(band, device=device)
    spectrum = power.new_zeros(power.shape[0], len(radii)).index_add_(1, shell_t, power)
    energy = power.new_zeros(power.shape[0], len(edges) - 1).index_add_(1, band_t, power)
    return SpectralError(
        spectrum=spectrum,
        bands=energy,
        edges=torch.as_tensor(edges, dtype=dtype, device=device),
        radii=torch.as_tensor(radii, dtype=dtype, device=device),
    )


def _numpy_spectrum(
    error: np.ndarray, shell: np.ndarray, band: np.ndarray, edges: np.ndarray, radii: np.ndarray
) -> SpectralError:
    axes = tuple(range(2, error.ndim))
    with scipy.fft.set_backend(fftw_backend):
        transform = scipy.fft.fftn(error, axes=axes, norm="ortho")
    power = (np.abs(transform) ** 2).sum(axis=1).reshape(error.shape[0], -1)
    spectrum = np.stack([np.bincount(shell, weights=p, minlength=len(radii)) for p in power])
    energy = np.stack([np.bincount(band, weights=p, minlength=len(edges) - 1) for p in power])
    return SpectralError(spectrum=spectrum, bands=energy, edges=edges, radii=radii)
