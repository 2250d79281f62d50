"""Calibration before training: the base's error size, in units of which the net learns."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from irsolve.learned.training._loaders import _loader

__all__ = ["residual_rms"]


def residual_rms(
    base: nn.Module | Callable[[Tensor], Tensor],
    data: Dataset,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> float:
    """Root mean square of the base's error, ``sqrt(mean((y - T(x))^2))`` over ``data``."""
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in _loader(data, batch_size):
            y = y.to(device)
            total += (y - base(x.to(device)).to(y.dtype)).square().sum().item()
            count += y.numel()
    if count == 0:
        raise ValueError("expected a non-empty dataset, got 0 samples")
    return math.sqrt(total / count)
