"""Batches of a dataset, as the training loop and the calibration read them."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler


def _loader(
    data: Dataset,
    batch_size: int,
    num_workers: int = 0,
    device: torch.device | None = None,
    sampler: DistributedSampler | None = None,
) -> DataLoader:
    """Batches of ``data``, in ``sampler``'s order or else in order; ``num_workers > 0``
    reads them in that many persistent worker processes (each opens its own file handles),
    pinned for a copy to a CUDA ``device``. The workers' base seeds come from a generator
    of their own, never from the global RNG, which the loss's random draws use."""
    workers: dict[str, Any] = {}
    if num_workers > 0:
        pin = device is not None and device.type == "cuda"
        workers = {"num_workers": num_workers, "persistent_workers": True, "pin_memory": pin}
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        generator=torch.Generator().manual_seed(0),
        **workers,
    )
