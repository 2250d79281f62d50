"""Per-sample error metrics: VRMSE (The Well's definition), RFNE and MSE.

Fields are ``(B, C, *space)``, channels first; each metric returns one value
per sample, shape ``(B,)``, so callers can keep, drop or count samples (for
instance the diverged ones) before averaging.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["mse_per_sample", "rfne", "vrmse"]


def _check(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape or pred.dim() < 3:
        raise ValueError(
            f"expected pred and target of the same shape (B, C, *space), "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def vrmse(pred: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """Variance-scaled RMSE per sample, averaged over fields (channels).

    ``VRMSE_{b,c} = sqrt(mean_space((p - y)^2) / (var_space(y) + eps))`` with the
    population variance over the spatial dims of sample ``b``, channel ``c``;
    the result is ``mean_c VRMSE_{b,c}``. Ohana et al., "The Well", NeurIPS
    2024 (the reduction runs over space only, per field, never over the batch).
    """
    _check(pred, target)
    space = tuple(range(2, pred.dim()))
    err = (pred - target).square().mean(dim=space)
    var = target.var(dim=space, correction=0)
    return (err / (var + eps)).sqrt().mean(dim=1)


def rfne(pred: Tensor, target: Tensor) -> Tensor:
    """Relative Frobenius-norm error per sample: ``||p_b - y_b||_2 / ||y_b||_2``."""
    _check(pred, target)
    return (pred - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)


def mse_per_sample(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error per sample: ``mean_{c, space}((p_b - y_b)^2)``."""
    _check(pred, target)
    return (pred - target).square().flatten(1).mean(dim=1)
