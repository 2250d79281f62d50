"""Build networks from JSON-able configs and describe built ones, for checkpoints and the CLI."""

from __future__ import annotations

from typing import Any

from torch import nn

from irsolve.learned.nets.fno import base_operator
from irsolve.learned.nets.unet import RefinementUNet

__all__ = ["build_net", "net_config"]


def build_net(config: dict[str, Any]) -> nn.Module:
    """A network from ``{"type": "unet" | "fno" | "tfno", **constructor arguments}``."""
    kwargs = dict(config)
    kind = kwargs.pop("type", None)
    if kind == "unet":
        return RefinementUNet(**kwargs)
    if kind in ("fno", "tfno"):
        kwargs["n_modes"] = tuple(kwargs["n_modes"])
        return base_operator(kind, **kwargs)
    raise ValueError(f"expected a net config with type 'unet', 'fno' or 'tfno', got {kind!r}")


def net_config(net: nn.Module) -> dict[str, Any] | None:
    """The config :func:`build_net` rebuilds ``net`` from, or ``None`` if it was built otherwise."""
    if isinstance(net, RefinementUNet):
        return {"type": "unet", **net.config()}
    config = getattr(net, "irsolve_config", None)
    return dict(config) if config is not None else None
