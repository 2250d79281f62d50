"""Tests of irsolve.analysis.plots and the report: files written, numbers consistent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from irsolve.analysis.plots import (
    plot_convergence,
    plot_fields,
)
from irsolve.analysis.report import analyze
from irsolve.interface import FixedPointSolver
from irsolve.metrics import rfne


def _written(paths: list[Path]) -> None:
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    png, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG") and pdf.startswith(b"%PDF")


def test_convergence_plot_with_residual_panel_writes_png_and_pdf(tmp_path: Path) -> None:
    errors = torch.rand(7, 5).double()
    _written(plot_convergence(errors, tmp_path / "conv", residuals=errors, K=3))


def test_fields_plot_rejects_non_2d_fields(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        plot_fields(*[torch.zeros(2, 1, 8) for _ in range(3)], tmp_path / "f")


class _SmoothingStep(FixedPointSolver):
    """``G(h) = h + (0.25 + 0.5 S)(x - h)``, ``S`` the periodic [1 2 1]/4 x [1 2 1]/4 filter.

    The context ``x`` is the target itself, so ``G(y) = y``. ``S`` has the
    transfer ``cos^2(w1/2) cos^2(w2/2)`` in [0, 1], so error mode ``w`` is
    multiplied by ``0.75 - 0.5 cos^2 cos^2`` in [0.25, 0.75]: low frequencies
    fall fastest and ``||J_G||_2 = 0.75``.
    """

    default_dtype = torch.float32

    def __init__(self) -> None:
        self.smooth = nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular", bias=False)
        taps = torch.tensor([1.0, 2.0, 1.0]) / 4
        self.smooth.weight.data.copy_(torch.outer(taps, taps).view(1, 1, 3, 3))

    def step(self, ctx: Tensor, h: Tensor, k: int) -> Tensor:
        return h + 0.25 * (ctx - h) + 0.5 * self.smooth(ctx - h)


def test_report_writes_json_markdown_and_figures_with_consistent_numbers(tmp_path: Path) -> None:
    y = torch.randn(3, 1, 12, 12)
    h0 = y + 0.3 * torch.randn_like(y)
    report = analyze(h0, _SmoothingStep(), y, y, tmp_path, K=2, steps=3, n_probe=1)

    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["steps"] == 3 and on_disk["samples"] == 3
    # Row 0 is the base prediction: its RFNE is the base's, its band ratios are 1.
    expected = float(rfne(h0.double(), y.double()).median())
    assert on_disk["metrics"]["rfne"]["median"][0] == pytest.approx(expected, rel=1e-6)
    assert on_disk["spectral"]["ratio_to_base"]["median"][0] == [1.0, 1.0, 1.0]
    # A smoothing step removes low-frequency error first: the low band falls fastest.
    low, _, high = on_disk["spectral"]["ratio_to_base"]["median"][-1]
    assert low < high < 1.0
    # G(y) = y exactly: zero bias, q = 0.75 (float32 power iteration), certificate holds.
    assert on_disk["certificate"]["holds"] == 3
    q = np.array(on_disk["certificate"]["per_sample"]["q"])
    np.testing.assert_allclose(q, 0.75, rtol=1e-2)
    assert max(on_disk["certificate"]["per_sample"]["bias"]) == 0.0
    for name in ("convergence", "band_ratios", "spectra", "fields", "certificate"):
        for suffix in (".png", ".pdf"):
            assert (tmp_path / f"{name}{suffix}").stat().st_size > 0
    text = (tmp_path / "report.md").read_text()
    assert "holds for 3 of 3 samples" in text
    assert "It holds for every sample" in text and "Why it fails" not in text
    assert report["figures"]["fields"] == ["fields.png", "fields.pdf"]


class _Push(FixedPointSolver):
    """``G(h) = h + 0.05``: an open-loop step, ``J_G = I`` (q = 1) and bias ``0.05 sqrt(N)``."""

    default_dtype = torch.float32

    def step(self, ctx: Tensor, h: Tensor, k: int) -> Tensor:
        return h + 0.05


def test_report_explains_a_failed_certificate_and_every_figure(tmp_path: Path) -> None:
    y = torch.randn(3, 1, 8, 8)
    report = analyze(y + 0.1, _Push(), y, y, tmp_path, K=1, steps=2, n_probe=1)
    assert report["certificate"]["holds"] == 0
    text = (tmp_path / "report.md").read_text()
    assert "Why it fails for 3 of 3: for 3 the step does not contract at `y` (q >= 1)." in text
    assert "open-loop correction" in text
    for name in report["figures"]:
        assert f"- `{name}.png`: " in text, name
    assert (tmp_path / "certificate.png").stat().st_size > 0
