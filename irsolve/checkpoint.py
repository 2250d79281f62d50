"""Checkpoints: state dicts plus a JSON config, written atomically, loaded with ``weights_only``.

A checkpoint file ``name.pt`` holds plain containers of tensors and numbers
(model, optimiser and scheduler state dicts, epoch, RNG states, history and
the JSON-able config); ``name.json`` beside it repeats the config and the
epoch summary for people and tools. Both are written to a temporary file in
the same folder and renamed, so an interrupted write never leaves a torn file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["load_checkpoint", "load_model_state", "model_state", "save_checkpoint"]

logger = logging.getLogger(__name__)

_LISTED = 8


def model_state(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict restricted to tensors (drops e.g. neuraloperator's ``_metadata``)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if isinstance(v, Tensor)}


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LISTED])
    return shown + (f", ... ({len(keys) - _LISTED} more)" if len(keys) > _LISTED else "")


def load_model_state(
    model: nn.Module, state: dict[str, Tensor], source: str = "checkpoint"
) -> None:
    """Load ``state`` into ``model``, or raise naming the mismatched keys.

    Raises
    ------
    ValueError
        When keys are missing, unexpected, or have other shapes (a checkpoint
        of another architecture): the message gives the count of each kind
        and lists the first eight of each, sorted.
    """
    own = model_state(model)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    reshaped = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or reshaped:
        parts = [
            f"{label} ({len(keys)}): {_listing(keys)}"
            for label, keys in (
                ("missing in the checkpoint", missing),
                ("unexpected in the checkpoint", unexpected),
                ("shape checkpoint vs model", reshaped),
            )
            if keys
        ]
        raise ValueError(
            f"{source} does not match {type(model).__name__}'s architecture; " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=False)


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, payload: dict[str, Any], summary: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` (``torch.save``) and ``summary`` to ``path.json``.

    ``payload`` must hold only tensors, numbers, strings, ``None`` and
    lists/dicts of them, so that :func:`load_checkpoint` can read it with
    ``weights_only=True``; ``summary`` must be JSON-serialisable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=2, sort_keys=True).encode()
    _atomic_write(path, lambda handle: torch.save(payload, handle))
    _atomic_write(path.with_suffix(".json"), lambda handle: handle.write(text))
    logger.debug("wrote checkpoint %s", path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``torch.load(weights_only=True)``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected a checkpoint file at {path}, found none")
    return torch.load(path, map_location=map_location, weights_only=True)
