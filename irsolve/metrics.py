"""Per-sample error metrics: VRMSE (The Well's definition), RFNE and MSE.

Fields are ``(B, C, *space)``, channels first; each metric returns one value
per sample, shape ``(B,)``, so callers can keep, drop or count samples (for
instance the diverged ones) before averaging.
"""

from __future__ import annotations

import math

from torch import Tensor

from irsolve._validate import check_real

__all__ = ["mse_per_sample", "rfne", "vrmse"]


def _check(name: str, pred: Tensor, target: Tensor) -> None:
    for arg, value in (("pred", pred), ("target", target)):
        if not isinstance(value, Tensor):
            raise TypeError(
                f"{name}: expected {arg} to be a torch.Tensor, got {type(value).__name__}"
            )
    if pred.shape != target.shape or pred.dim() < 3:
        raise ValueError(
            f"{name}: expected pred and target of the same shape (B, C, *space), "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def vrmse(pred: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """Variance-scaled RMSE per sample, averaged over fields (channels).

    ``VRMSE_{b,c} = sqrt(mean_space((p - y)^2) / (s^2(y) + eps))``, where
    ``s^2(y) = sum_space (y - mean_space(y))^2 / (N - 1)`` is the sample
    variance (Bessel's correction, ``N`` spatial points) of sample ``b``,
    channel ``c``; the result is ``mean_c VRMSE_{b,c}``. This is The Well's
    VRMSE (Ohana et al., "The Well", NeurIPS 2024; ``the_well`` package,
    ``nrmse`` with ``norm_mode="std"``: ``torch.std(y) ** 2 + eps`` over the
    spatial dims), reduced over space only, per field, never over the batch.

    Parameters
    ----------
    pred, target
        ``(B, C, *space)`` with at least two spatial points.
    eps
        Added to the variance, ``>= 0`` (The Well's default ``1e-7``).

    Returns
    -------
    Tensor
        ``(B,)``.
    """
    _check("vrmse", pred, target)
    check_real("vrmse", "eps", eps, minimum=0.0)
    space = tuple(range(2, pred.dim()))
    points = math.prod(pred.shape[2:])
    if points < 2:
        raise ValueError(
            f"vrmse: expected at least 2 spatial points per field (the sample variance), "
            f"got pred of shape {tuple(pred.shape)}"
        )
    err = (pred - target).square().mean(dim=space)
    var = target.var(dim=space, correction=1)
    return (err / (var + eps)).sqrt().mean(dim=1)


def rfne(pred: Tensor, target: Tensor) -> Tensor:
    """Relative Frobenius-norm error per sample: ``||p_b - y_b||_2 / ||y_b||_2``."""
    _check("rfne", pred, target)
    return (pred - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)


def mse_per_sample(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error per sample: ``mean_{c, space}((p_b - y_b)^2)``."""
    _check("mse_per_sample", pred, target)
    return (pred - target).square().flatten(1).mean(dim=1)
