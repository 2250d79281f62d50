"""Tests of irsolve.analysis.plots and the report: files written, numbers consistent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from torch import Tensor, nn

from irsolve.analysis import Certificate
from irsolve.analysis.certificate import error_bound, invariant_radii
from irsolve.analysis.plots import (
    certificate_figure,
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


def _certificate(q: list[float], steps: int = 6) -> Certificate:
    """Two-sample certificate with the given ``q``, ``c = 0.01``, ``beta = 0.05``, and a ball
    so small that the certificate's own ``bound`` is cut off after step 1."""
    q_t = torch.tensor(q, dtype=torch.float64)
    c, bias = torch.full_like(q_t, 0.01), torch.full_like(q_t, 0.05)
    observed = torch.stack([torch.full_like(q_t, 1.0 / (k + 1)) for k in range(steps + 1)])
    delta = torch.full_like(q_t, 0.9)
    bound = error_bound(observed[0], q_t, c, bias, steps, delta=delta)
    floor = torch.where(q_t < 1, bias / (1 - q_t), torch.inf)
    r_minus, r_plus = invariant_radii(q_t, c, bias)
    return Certificate(
        q=q_t,
        c=c,
        lipschitz=q_t,
        bias=bias,
        r_minus=r_minus,
        r_plus=r_plus,
        floor=floor,
        holds=r_minus <= delta,
        delta=delta,
        observed=observed,
        bound=bound,
        within=torch.ones_like(q_t, dtype=torch.bool),
    )


def _legend_texts(ax) -> list[str]:
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    for artist in ax.artists:  # a legend kept beside the axes' own one
        texts += [t.get_text() for t in artist.get_texts()]
    return texts


def test_certificate_figure_draws_the_bound_over_every_step_and_the_floor_where_q_below_1():
    cert = _certificate([0.5, 1.02], steps=6)
    assert torch.isinf(cert.bound[2:]).all()  # the ball cut-off the figure must not copy
    left, right = certificate_figure(cert).axes[:2]
    dotted = [line for line in left.get_lines() if line.get_linestyle() == ":"]
    dotted = [line for line in dotted if len(line.get_xdata())]  # not the legend's key
    assert len(dotted) == 2
    expected = error_bound(cert.observed[0], cert.q, cert.c, cert.bias, 6).numpy()
    for b, line in enumerate(dotted):
        assert list(line.get_xdata()) == list(range(7))
        np.testing.assert_allclose(line.get_ydata(), expected[:, b])
        assert np.isfinite(line.get_ydata()).all()
    dashed = [line for line in left.get_lines() if line.get_linestyle() == "--"]
    dashed = [line for line in dashed if len(line.get_xdata())]
    assert [line.get_ydata()[0] for line in dashed] == pytest.approx([0.05 / 0.5])
    assert "floor beta / (1 - q) (q < 1 for 1 of 2)" in _legend_texts(left)
    # The right panel: observed, bound and floor markers at the last step.
    offsets = [c.get_offsets() for c in right.collections if len(c.get_offsets())]
    assert len(offsets) == 3
    np.testing.assert_allclose(offsets[1][:, 1], expected[-1])


def test_certificate_figure_says_in_the_legends_that_no_floor_exists_when_q_is_at_least_1():
    left, right = certificate_figure(_certificate([1.0, 1.3])).axes[:2]
    dashed = [line for line in left.get_lines() if line.get_linestyle() == "--"]
    assert not [line for line in dashed if len(line.get_xdata())]
    for ax in (left, right):
        assert "no floor: q >= 1 for all 2" in _legend_texts(ax)


def test_certificate_figure_has_integer_ticks_for_steps_and_samples():
    fig = certificate_figure(_certificate([0.5, 0.9, 1.1], steps=3))
    FigureCanvasAgg(fig).draw()
    for ax in fig.axes[:2]:
        ticks = ax.get_xticks()
        assert len(ticks) >= 2
        assert all(float(t).is_integer() for t in ticks), ticks
