"""Base operators ``T_base``: FNO and TFNO from ``neuraloperator``.

The base operator gives the first iterate ``h0 = T_base(x)`` of a refinement
solve. Any ``nn.Module`` or callable works as a base; this module only builds
the two reference models of the IRNO paper with our defaults.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

from neuralop.models import FNO, TFNO
from torch import Tensor, nn

from irsolve._validate import check_choice, check_int, check_memory

__all__ = ["base_operator", "warn_if_odd_resolution"]

logger = logging.getLogger(__name__)

_MODELS: dict[str, type[nn.Module]] = {"fno": FNO, "tfno": TFNO}


def warn_if_odd_resolution(shape: tuple[int, ...] | list[int]) -> bool:
    """Warn when a spatial size is odd; return whether it was.

    neuraloperator 2.0.0's spectral convolution shifts the retained Fourier
    modes by one on odd grid sizes, so FNO/TFNO outputs are slightly wrong
    there; even resolutions are recommended.
    """
    odd = [n for n in shape if n % 2]
    if odd:
        warnings.warn(
            f"expected even spatial sizes for FNO/TFNO (neuraloperator's odd-size "
            f"spectral shift), got {tuple(shape)}",
            stacklevel=3,
        )
    return bool(odd)


def _check_input(module: nn.Module, args: tuple[Any, ...]) -> None:
    x = args[0]
    if isinstance(x, Tensor) and x.dim() >= 3:
        if x.shape[1] != module.in_channels:
            raise ValueError(
                f"expected base operator input of shape (B, {module.in_channels}, *space), "
                f"got {tuple(x.shape)}"
            )
        warn_if_odd_resolution(tuple(x.shape[2:]))
        n_modes = tuple(module.irsolve_config["n_modes"])
        if len(n_modes) != x.dim() - 2:
            raise ValueError(
                f"expected base operator input with {len(n_modes)} spatial dimensions "
                f"(n_modes {n_modes}), got shape {tuple(x.shape)}"
            )
        if any(m > n for m, n in zip(n_modes, x.shape[2:], strict=True)):
            warnings.warn(
                f"expected n_modes {n_modes} at most the grid {tuple(x.shape[2:])}: "
                "neuraloperator keeps only the modes the grid has, the other weights are unused",
                stacklevel=3,
            )


def base_operator(
    kind: Literal["fno", "tfno"],
    in_channels: int,
    out_channels: int,
    *,
    n_modes: tuple[int, ...] = (16, 16),
    hidden_channels: int = 32,
    n_layers: int = 4,
    **kwargs: Any,
) -> nn.Module:
    """Build ``neuralop.models.FNO`` or ``TFNO`` (Li et al. 2021; Kossaifi et al. 2023).

    Parameters
    ----------
    kind
        ``"fno"`` (dense spectral weights) or ``"tfno"`` (Tucker-factorised,
        rank 0.1 by default).
    in_channels, out_channels
        Channels of ``x`` and of the solution.
    n_modes
        Fourier modes kept per spatial dimension (each ``>= 1``).
    hidden_channels, n_layers
        Width and number of Fourier layers (``>= 1``).

    Raises
    ------
    TypeError, ValueError
        When an argument has the wrong type or is out of range; the message
        names it.
    **kwargs
        Passed to the neuraloperator constructor (e.g. ``rank``, ``norm``).

    Returns
    -------
    nn.Module
        The model, with a forward pre-hook that checks the input channels and
        spatial dimensions and warns on odd spatial sizes and on ``n_modes``
        larger than the grid (neuraloperator then drops the extra modes), and
        its arguments in ``irsolve_config`` (for :func:`irsolve.learned.nets.build_net`).
    """
    cls = _MODELS[check_choice("base_operator", "kind", kind, tuple(_MODELS))]
    in_channels = check_int("base_operator", "in_channels", in_channels, minimum=1)
    out_channels = check_int("base_operator", "out_channels", out_channels, minimum=1)
    hidden_channels = check_int("base_operator", "hidden_channels", hidden_channels, minimum=1)
    n_layers = check_int("base_operator", "n_layers", n_layers, minimum=1)
    if isinstance(n_modes, (str, bytes)) or not isinstance(n_modes, Sequence) or not n_modes:
        raise TypeError(
            f"base_operator: expected n_modes to be a non-empty tuple of ints, got {n_modes!r}"
        )
    n_modes = tuple(check_int("base_operator", "n_modes", m, minimum=1) for m in n_modes)
    # Dense spectral weights: hidden^2 complex64 per kept mode (the last dimension's real
    # FFT keeps m // 2 + 1), per layer; with gradients and two Adam moments.
    kept = math.prod(n_modes[:-1]) * (n_modes[-1] // 2 + 1)
    check_memory(
        "base_operator",
        f"the spectral weights of hidden_channels={hidden_channels}, n_modes={n_modes}, "
        f"n_layers={n_layers} (complex64, with gradients and two Adam moments)",
        4 * 8 * n_layers * hidden_channels**2 * kept,
    )
    model = cls(
        n_modes=tuple(n_modes),
        in_channels=in_channels,
        out_channels=out_channels,
        hidden_channels=hidden_channels,
        n_layers=n_layers,
        **kwargs,
    )
    model.register_forward_pre_hook(_check_input)
    model.irsolve_config = {
        "type": kind,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "n_modes": list(n_modes),
        "hidden_channels": hidden_channels,
        "n_layers": n_layers,
        **kwargs,
    }
    logger.info(
        "built %s with %d parameters", cls.__name__, sum(p.numel() for p in model.parameters())
    )
    return model
