"""Tests of irsolve.analysis.spectral: single-band fields, Parseval, torch vs NumPy/pyFFTW."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from irsolve.analysis import spectral_error
from irsolve.analysis.spectral import band_edges, summarize_ratios


def _plane_wave(n: int, kx: int, ky: int, batch: int = 2) -> torch.Tensor:
    """``cos(2 pi (kx i + ky j) / n)`` on an ``n x n`` grid, shape ``(batch, 1, n, n)``."""
    i = torch.arange(n, dtype=torch.float64)
    phase = 2 * math.pi * (kx * i[:, None] + ky * i[None, :]) / n
    return torch.cos(phase).expand(batch, 1, n, n).clone()


@pytest.mark.parametrize(("wavenumber", "band"), [(2, 0), (6, 1), (10, 2)])
def test_field_with_energy_in_one_band_shows_error_in_that_band_only(
    wavenumber: int, band: int
) -> None:
    # n = 24: |w| = k / 24 is 0.083 (low, < 1/6), 0.25 (mid) and 0.417 (high, > 1/3).
    n = 24
    target = torch.randn(2, 1, n, n, dtype=torch.float64)
    error = _plane_wave(n, wavenumber, 0)
    result = spectral_error(target + error, target)
    energy = float(error[0].square().sum())
    others = [b for b in range(3) if b != band]
    np.testing.assert_allclose(result.bands[:, band].numpy(), energy, rtol=1e-12)
    assert float(result.bands[:, others].abs().max()) <= 1e-20 * energy


def test_plane_wave_lands_in_its_radial_shell() -> None:
    # (kx, ky) = (3, 4) on a 32 x 32 grid: |w| n = 5 exactly.
    result = spectral_error(_plane_wave(32, 3, 4), torch.zeros(2, 1, 32, 32, dtype=torch.float64))
    shells = result.spectrum[0] / result.spectrum[0].sum()
    assert float(shells[5]) == pytest.approx(1.0, abs=1e-14)
    assert float(result.radii[5]) == pytest.approx(5 / 32)


def test_bands_and_shells_sum_to_squared_error_norm() -> None:
    pred = torch.randn(3, 2, 16, 12, dtype=torch.float64)
    target = torch.randn(3, 2, 16, 12, dtype=torch.float64)
    result = spectral_error(pred, target, bands=(0.0, 0.1, 0.2, 0.3, 0.5))
    norm2 = (pred - target).square().sum(dim=(1, 2, 3))  # Parseval
    torch.testing.assert_close(result.bands.sum(dim=1), norm2, rtol=1e-12, atol=0)
    torch.testing.assert_close(result.spectrum.sum(dim=1), norm2, rtol=1e-12, atol=0)
    assert result.bands.shape == (3, 4)
    # The last edge is moved out to the grid corner so that no frequency is lost.
    assert float(result.edges[-1]) == pytest.approx(math.hypot(0.5, 0.5))


def test_numpy_path_through_scipy_pyfftw_equals_torch_path() -> None:
    pred = np.random.default_rng(0).standard_normal((2, 1, 10, 14, 6))
    target = np.zeros_like(pred)
    from_numpy = spectral_error(pred, target)
    from_torch = spectral_error(torch.from_numpy(pred), torch.from_numpy(target))
    assert isinstance(from_numpy.bands, np.ndarray)
    np.testing.assert_allclose(from_numpy.bands, from_torch.bands.numpy(), rtol=1e-12)
    np.testing.assert_allclose(from_numpy.spectrum, from_torch.spectrum.numpy(), rtol=1e-12)


def test_halved_error_gives_band_ratio_one_quarter_in_every_band() -> None:
    target = torch.randn(4, 1, 16, 16, dtype=torch.float64)
    base = target + torch.randn_like(target)
    refined = target + 0.5 * (base - target)
    ratio = spectral_error(refined, target).ratio_to(spectral_error(base, target))
    torch.testing.assert_close(ratio, torch.full_like(ratio, 0.25), rtol=1e-12, atol=0)


def test_summary_quantiles_match_numpy_and_ignore_nan() -> None:
    ratios = torch.rand(3, 7, 3, dtype=torch.float64)
    ratios[0, 2, 1] = torch.nan  # a band where the base error vanished
    summary = summarize_ratios(ratios)
    reference = np.nanquantile(ratios.numpy(), [0.5, 0.25, 0.75], axis=1)
    np.testing.assert_allclose(summary.median.numpy(), reference[0])
    np.testing.assert_allclose(summary.q25.numpy(), reference[1])
    np.testing.assert_allclose(summary.q75.numpy(), reference[2])
    assert summary.to_dict()["median"] == reference[0].tolist()


def test_invalid_inputs_name_what_was_expected() -> None:
    with pytest.raises(ValueError, match="ending at >= 0.5"):
        band_edges((0.0, 0.2))
    with pytest.raises(ValueError, match=r"same shape \(B, C, \*space\)"):
        spectral_error(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5))
    with pytest.raises(TypeError, match="both torch tensors or both NumPy"):
        spectral_error(torch.zeros(2, 1, 4), np.zeros((2, 1, 4)))
