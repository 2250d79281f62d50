"""Figures of a refinement run: convergence, band ratios, error spectra, fields, certificate.

Every function draws one figure with Matplotlib's object API (no global
``pyplot`` state; rendering through the Agg canvas), writes it as PNG and PDF
next to ``path`` (the suffix is replaced) and returns the written paths.
Curves over samples show the median and the 25-75 % range, as in the IRNO
paper's spectral figures.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from .certificate import Certificate, error_bound
from .spectral import BAND_NAMES

__all__ = [
    "certificate_figure",
    "plot_band_ratios",
    "plot_certificate",
    "plot_convergence",
    "plot_error_spectra",
    "plot_fields",
]

logger = logging.getLogger(__name__)

#: Samples drawn individually in the certificate figure.
MAX_SAMPLE_CURVES = 8


def _numpy(value: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def _save(fig: Figure, path: str | Path) -> list[Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".pdf"):
        target = path.with_suffix(suffix)
        fig.savefig(target, dpi=130, bbox_inches="tight")
        written.append(target)
    logger.info("wrote %s", ", ".join(str(p) for p in written))
    return written


def _median_band(ax: Axes, steps: np.ndarray, values: np.ndarray, label: str) -> None:
    """Median over samples (axis 1) with the 25-75 % range shaded."""
    q25, median, q75 = np.nanquantile(values, [0.25, 0.5, 0.75], axis=1)
    (line,) = ax.plot(steps, median, marker="o", markersize=3, label=label)
    ax.fill_between(steps, q25, q75, color=line.get_color(), alpha=0.2, linewidth=0)


def _mark_trained(ax: Axes, K: int | None) -> None:
    if K is not None:
        ax.axvline(K, color="0.4", linestyle=":", linewidth=1)
        ax.annotate(
            f"trained K = {K}",
            xy=(K, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color="0.3",
        )


def plot_convergence(
    errors: Tensor | np.ndarray,
    path: str | Path,
    *,
    residuals: Tensor | np.ndarray | None = None,
    K: int | None = None,
    error_label: str = "relative error ||h_k - y|| / ||y||",
) -> list[Path]:
    """Error (and physical residual, if given) per step, median and 25-75 % over samples.

    Parameters
    ----------
    errors, residuals
        ``(steps + 1, B)``; row 0 is the base prediction ``h_0``.
    path
        Output path; ``.png`` and ``.pdf`` are written.
    K
        The ``K`` the refiner was trained with, marked by a dotted line.
    """
    errors = _numpy(errors)
    steps = np.arange(errors.shape[0])
    panels = 1 if residuals is None else 2
    fig = Figure(figsize=(5.0 * panels, 3.6), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    _median_band(axes[0], steps, errors, "error")
    axes[0].set_ylabel(error_label)
    if residuals is not None:
        _median_band(axes[1], steps, _numpy(residuals), "residual")
        axes[1].set_ylabel("RMS physical residual ||f - A h_k||")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("refinement step k (0 = base)")
        ax.grid(True, which="both", alpha=0.3)
        _mark_trained(ax, K)
    fig.suptitle("Convergence: median and 25-75 % over samples")
    return _save(fig, path)


def plot_band_ratios(
    ratios: Tensor | np.ndarray,
    path: str | Path,
    *,
    band_names: Sequence[str] | None = None,
    K: int | None = None,
) -> list[Path]:
    """Error energy per band at step ``k`` over the base's, per band and step.

    Parameters
    ----------
    ratios
        ``(steps + 1, B, n_bands)`` (row 0 is 1 by definition).
    band_names
        Legend labels; default low / mid / high for three bands.
    """
    ratios = _numpy(ratios)
    n_bands = ratios.shape[-1]
    names = band_names or (BAND_NAMES if n_bands == 3 else [f"band {i}" for i in range(n_bands)])
    steps = np.arange(ratios.shape[0])
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for i, name in enumerate(names):
        _median_band(ax, steps, ratios[..., i], name)
    ax.set_yscale("log")
    ax.axhline(1.0, color="0.5", linewidth=0.8)
    ax.set_xlabel("refinement step k")
    ax.set_ylabel("band error energy / base's")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="radial band")
    _mark_trained(ax, K)
    fig.suptitle("Spectral error ratio per band (median, 25-75 %)")
    return _save(fig, path)


def plot_error_spectra(
    spectra: Sequence[Tensor | np.ndarray],
    radii: Tensor | np.ndarray,
    labels: Sequence[str],
    path: str | Path,
    *,
    edges: Tensor | np.ndarray | None = None,
) -> list[Path]:
    """Radial error power spectra (median over samples), one curve per selected step.

    Parameters
    ----------
    spectra
        One ``(B, n_shells)`` array per curve (e.g. base, step K, step 2K).
    radii
        ``(n_shells,)`` radial frequency in cycles per sample.
    labels
        One label per curve.
    edges
        Band edges to draw as vertical lines (the outer edge is skipped);
        the dotted line marks Nyquist (0.5).
    """
    if len(spectra) != len(labels):
        raise ValueError(f"expected one label per spectrum, got {len(spectra)} and {len(labels)}")
    radii = _numpy(radii)
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for spectrum, label in zip(spectra, labels, strict=True):
        ax.plot(radii, np.median(_numpy(spectrum), axis=0), marker=".", label=label)
    if edges is not None:
        for edge in _numpy(edges)[1:-1]:
            ax.axvline(edge, color="0.5", linestyle="--", linewidth=0.8)
    ax.axvline(0.5, color="0.3", linestyle=":", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("radial frequency |w| (cycles per sample; Nyquist 0.5)")
    ax.set_ylabel("error power per shell")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.suptitle("Radial error spectrum (median over samples)")
    return _save(fig, path)


def plot_fields(
    truth: Tensor | np.ndarray,
    base: Tensor | np.ndarray,
    refined: Tensor | np.ndarray,
    path: str | Path,
    *,
    sample: int = 0,
    channel: int = 0,
    refined_label: str = "refined",
) -> list[Path]:
    """Truth, base prediction, refined prediction and both errors of one 2-D field.

    Inputs are ``(B, C, H, W)``; the three fields share one colour scale and
    the two errors another (symmetric about zero).
    """
    arrays = [_numpy(a) for a in (truth, base, refined)]
    if arrays[0].ndim != 4 or any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError(
            "expected truth, base and refined of one shape (B, C, H, W), got "
            + ", ".join(str(a.shape) for a in arrays)
        )
    y, h0, hk = (a[sample, channel] for a in arrays)
    low, high = float(min(y.min(), h0.min(), hk.min())), float(max(y.max(), h0.max(), hk.max()))
    err0, errk = h0 - y, hk - y
    bound = float(max(np.abs(err0).max(), np.abs(errk).max())) or 1.0
    fig = Figure(figsize=(15.0, 3.2), layout="constrained")
    axes = fig.subplots(1, 5)
    panels = [
        (y, "truth", "viridis", low, high),
        (h0, "base", "viridis", low, high),
        (hk, refined_label, "viridis", low, high),
        (err0, "base error", "RdBu_r", -bound, bound),
        (errk, f"{refined_label} error", "RdBu_r", -bound, bound),
    ]
    for ax, (field, title, cmap, vmin, vmax) in zip(axes, panels, strict=True):
        image = ax.imshow(field, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(f"sample {sample}, channel {channel}")
    return _save(fig, path)


def plot_certificate(cert: Certificate, path: str | Path) -> list[Path]:
    """Observed error per step against the theorem's bound and floor, per sample.

    The bound is the recursion of Theorem 3.1,
    ``t_0 = ||e_0||``, ``t_{k+1} = q t_k + c t_k^2 + beta`` (``beta = alpha ||b||``
    for the learned step), iterated from the observed ``e_0`` over every step
    (:func:`~irsolve.analysis.certificate.error_bound`; the theorem promises
    it only while the error stays in the ball of radius ``delta``). The floor
    ``beta / (1 - q)`` exists only where the step contracts at ``y``
    (``q < 1``); the legends say so where it does not.

    Left: the error ``||h_k - y||`` of up to :data:`MAX_SAMPLE_CURVES`
    samples (solid), their bound (dotted) and floor (dashed). Right, for every
    sample: the last observed error, the bound at that step and the floor
    (zero floors, as for a classical solver at its exact solution, are marked
    on the axis' bottom edge); samples where the certificate does not hold are
    shaded. Bounds far above every observed error are clipped off the axes.
    """
    return _save(certificate_figure(cert), path)


def certificate_figure(cert: Certificate) -> Figure:
    """The figure :func:`plot_certificate` writes, unsaved."""
    observed, floor = _numpy(cert.observed), _numpy(cert.floor)
    steps = observed.shape[0] - 1
    bound = _numpy(error_bound(cert.observed[0], cert.q, cert.c, cert.bias, steps))
    fig = Figure(figsize=(11.0, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    _certificate_curves(left, observed, bound, floor)
    _certificate_samples(right, cert, observed[-1], bound[-1], floor)
    top = _clip_above(observed)
    for ax in (left, right):
        ax.set_yscale("log")
        if top is not None and np.any(bound > top):
            ax.set_ylim(top=top)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="both", alpha=0.3)
    return fig


#: Bounds above this multiple of the largest observed error are clipped off the axes.
BOUND_CLIP = 1e4


def _clip_above(observed: np.ndarray) -> float | None:
    """The top of the y-axes: :data:`BOUND_CLIP` times the largest finite observed error."""
    finite = observed[np.isfinite(observed) & (observed > 0)]
    return float(BOUND_CLIP * finite.max()) if finite.size else None


def _floor_note(has_floor: np.ndarray) -> str:
    """Legend text for the floor: where it exists, and why not elsewhere."""
    if not has_floor.any():
        return f"no floor: q >= 1 for all {has_floor.size}"
    if has_floor.all():
        return "floor beta / (1 - q)"
    return f"floor beta / (1 - q) (q < 1 for {int(has_floor.sum())} of {has_floor.size})"


def _certificate_curves(
    ax: Axes, observed: np.ndarray, bound: np.ndarray, floor: np.ndarray
) -> None:
    """Left panel: observed error, bound and floor per step of the first samples."""
    drawn = min(observed.shape[1], MAX_SAMPLE_CURVES)
    steps = np.arange(observed.shape[0])
    has_floor = np.isfinite(floor[:drawn])
    for b in range(drawn):
        (line,) = ax.plot(steps, observed[:, b], label=f"sample {b}")
        color = line.get_color()
        ax.plot(steps, bound[:, b], color=color, linestyle=":", linewidth=1.2)
        if has_floor[b] and floor[b] > 0:
            ax.axhline(floor[b], color=color, linestyle="--", linewidth=0.8)
    key = [
        Line2D([], [], color="0.3", label="observed"),
        Line2D([], [], color="0.3", linestyle=":", label="bound from e_0"),
        Line2D(
            [],
            [],
            color="0.3",
            linestyle="--" if has_floor.any() else "none",
            label=_floor_note(has_floor),
        ),
    ]
    samples = ax.legend(fontsize=7, ncol=2, loc="upper left")
    ax.add_artist(samples)
    ax.legend(handles=key, fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    ax.set_xlabel("step k")
    ax.set_ylabel("||h_k - y||")
    ax.set_title(f"first {drawn} samples: error, bound and floor per step", fontsize=10)


def _certificate_samples(
    ax: Axes, cert: Certificate, final: np.ndarray, last_bound: np.ndarray, floor: np.ndarray
) -> None:
    """Right panel: last observed error, bound at that step and floor of every sample."""
    holds = cert.holds.detach().cpu().numpy().astype(bool)
    steps = cert.observed.shape[0] - 1
    samples = np.arange(cert.batch_size)
    has_floor = np.isfinite(floor)
    for values, marker, label in (
        (final, "o", f"observed at step {steps}"),
        (last_bound, "v", f"bound at step {steps}"),
        (floor, "_", _floor_note(has_floor)),
    ):
        shown = np.isfinite(values) & (values > 0)
        if shown.any():
            ax.scatter(samples[shown], values[shown], marker=marker, s=40, label=label)
    if not has_floor.any():
        ax.plot([], [], linestyle="none", label=_floor_note(has_floor))
    zero_floor = has_floor & (floor == 0)
    if zero_floor.any():
        ax.scatter(
            samples[zero_floor],
            np.zeros(int(zero_floor.sum())),
            marker="_",
            s=80,
            color="k",
            transform=ax.get_xaxis_transform(),
            clip_on=False,
            label="floor 0 (exact fixed point)",
        )
    for b in samples[~holds]:
        ax.axvspan(b - 0.4, b + 0.4, color="tab:red", alpha=0.12, linewidth=0)
    ax.set_xlabel("sample (red band: certificate does not hold)")
    ax.set_ylabel("||h - y||")
    ax.set_title(
        f"certificate holds for {int(holds.sum())} of {cert.batch_size} samples; "
        f"observed <= bound for {int(cert.within.sum())}",
        fontsize=10,
    )
    ax.legend(fontsize=8)
