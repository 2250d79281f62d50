"""Trained networks rebuilt from their checkpoints: the one loader every command uses.

A training checkpoint (:func:`irsolve.learned.training.fit`) holds the model's state
dict and a JSON-able ``config`` whose ``"objective"`` says what was trained
(``"base"``, ``"refiner"`` or ``"corrector"``, with its ``"family"``) and whose
``"model"`` rebuilds
the network (:func:`irsolve.learned.nets.build_net`). :func:`load_net` checks the
kind, rebuilds the net and loads the weights key by key
(:func:`~irsolve.learned.checkpoint.load_model_state`); :func:`load_refiner` and
:func:`load_corrector` wrap the net in its solver, built from the typed settings
the checkpoint was trained with.

>>> base, _ = load_net("runs/base/best.pt", "base")             # doctest: +SKIP
>>> refiner, settings = load_refiner("runs/irno/best.pt")        # doctest: +SKIP
>>> sol = solve(base, refiner, x, tol=None, maxiter=settings.K)  # doctest: +SKIP
>>> cycle, config = load_corrector("runs/corrector/best.pt")     # doctest: +SKIP
>>> sol = solve(None, FlexibleCG(cycle), Darcy2D(a), tol=0.0, rtol=1e-8)  # doctest: +SKIP
>>> pre, config = load_corrector("runs/helmholtz/best.pt")       # doctest: +SKIP
>>> sol = solve(None, FlexibleGMRES(pre), config.problem(c, f), tol=0, rtol=1e-7)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
from torch import nn

from irsolve.distributed import resolve_device
from irsolve.interface import FixedPointSolver
from irsolve.learned.checkpoint import CheckpointError, load_checkpoint, load_model_state
from irsolve.learned.corrector_training import CorrectorFamily
from irsolve.learned.darcy_corrector import DarcyCorrector, DarcyCorrectorConfig
from irsolve.learned.helmholtz_corrector import HelmholtzCorrector, HelmholtzCorrectorConfig
from irsolve.learned.nets.factory import build_net
from irsolve.learned.training import RefinerConfig, make_refiner
from irsolve.solvers import Refiner

__all__ = [
    "CORRECTOR_FAMILIES",
    "Objective",
    "family_of",
    "load_corrector",
    "load_net",
    "load_refiner",
]

logger = logging.getLogger(__name__)

Settings = TypeVar("Settings", RefinerConfig, DarcyCorrectorConfig, HelmholtzCorrectorConfig)

#: The learned corrector's problem families by name (``irsolve train-corrector NAME``).
CORRECTOR_FAMILIES: dict[str, CorrectorFamily] = {
    family.name: family for family in (DarcyCorrector(), HelmholtzCorrector())
}

#: What a training checkpoint may hold, by its ``config["objective"]``.
Objective = Literal["base", "refiner", "corrector"]

#: The command that writes each kind, for error messages.
_WRITTEN_BY = {
    "base": "irsolve train-base",
    "refiner": "irsolve train",
    "corrector": "irsolve train-corrector",
}


def load_net(
    path: str | Path,
    objective: Objective,
    *,
    flag: str | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """The network of a training checkpoint of ``objective``, in eval mode, without gradients.

    Parameters
    ----------
    path
        The checkpoint file (``best.pt`` or ``last.pt`` of a training run).
    objective
        The kind expected: ``"base"``, ``"refiner"`` or ``"corrector"``.
    flag
        The command-line flag that named ``path``, for the error message.
    device
        Where the net's weights go (``"auto"``: see
        :func:`~irsolve.distributed.resolve_device`).

    Returns
    -------
    net : nn.Module
        The rebuilt network with the checkpoint's weights.
    config : dict
        The checkpoint's config (objective settings under their own key).

    Raises
    ------
    FileNotFoundError, CheckpointError
        As :func:`~irsolve.learned.checkpoint.load_checkpoint`; also when the
        checkpoint holds another objective or no rebuildable model.
    ValueError
        When the weights do not fit the rebuilt architecture.
    """
    if objective not in _WRITTEN_BY:
        raise ValueError(f"expected objective one of {sorted(_WRITTEN_BY)}, got {objective!r}")
    device = resolve_device(device)
    state = load_checkpoint(path, map_location=device)
    config = state.get("config") or {}
    if config.get("objective") == objective and config.get("model") is None:
        raise CheckpointError(
            f"checkpoint {path}: expected config.model (the architecture to rebuild), found "
            "none; a checkpoint of another irsolve version or edited"
        )
    if config.get("objective") != objective or "model" not in state:
        raise CheckpointError(
            f"expected {flag or 'the checkpoint'} to be a {objective} checkpoint (written by "
            f"{_WRITTEN_BY[objective]}), got one with objective {config.get('objective')!r}: "
            f"{path}"
        )
    net = _rebuilt(config["model"], path)
    load_model_state(net, state["model"], source=str(path))
    logger.info("loaded the %s net of %s", objective, path)
    return net.to(device).eval().requires_grad_(False), config


def _rebuilt(model: Any, path: str | Path) -> nn.Module:
    """The net ``config.model`` of checkpoint ``path`` describes; a config that is not a
    mapping of names, names an unknown argument, or asks for more memory than the machine
    has: one line naming the file and the key, before anything is allocated."""
    if not isinstance(model, dict) or not all(isinstance(key, str) for key in model):
        raise CheckpointError(
            f"checkpoint {path}: expected config.model to be a mapping of argument names, "
            f"got {model!r:.80}; a checkpoint of another irsolve version or edited"
        )
    try:
        return build_net(model)
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"checkpoint {path}: config.model does not build a net ({err}); a checkpoint of "
            "another irsolve version or edited: retrain it"
        ) from None


def _settings(kind: type[Settings], values: Any, path: str | Path) -> Settings:
    """``kind(**values)``, with one line naming the checkpoint and the key when they do not fit
    (not a mapping, a name that is not a string or not a setting, a value out of range)."""
    names = {field.name for field in dataclasses.fields(kind)}
    if not isinstance(values, dict) or not all(isinstance(key, str) for key in values):
        raise CheckpointError(
            f"expected the {kind.__name__} settings of {path} to be a mapping of names, "
            f"got {values!r}"
        )
    unknown = sorted(set(values) - names)
    if unknown:
        raise CheckpointError(
            f"expected {kind.__name__} settings ({', '.join(sorted(names))}) in {path}, got "
            f"unknown {', '.join(unknown)}: a checkpoint of another irsolve version; retrain it"
        )
    try:
        return kind(**values)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its {kind.__name__} settings do not fit: {err}") from err


def _replaced(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """``settings`` with the ``overrides`` that are not ``None``."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(settings, **given) if given else settings


def load_refiner(
    path: str | Path,
    *,
    flag: str | None = None,
    device: str | torch.device = "cpu",
    **overrides: Any,
) -> tuple[Refiner, RefinerConfig]:
    """The :class:`~irsolve.solvers.Refiner` of a refiner checkpoint and its settings.

    ``overrides`` replace trained settings that act at inference
    (``alpha_decay=0.5``, ``stop_threshold=1e-3``); ``None`` values are ignored.
    """
    net, config = load_net(path, "refiner", flag=flag, device=device)
    settings = _replaced(_settings(RefinerConfig, config["refiner"], path), overrides)
    return make_refiner(net, settings), settings


def family_of(config: Any) -> str:
    """The name of the corrector family whose settings ``config`` is (``"darcy"``, ...)."""
    for name, family in CORRECTOR_FAMILIES.items():
        if isinstance(config, family.config_type):
            return name
    raise TypeError(f"expected the settings of a corrector family, got {type(config).__name__}")


def load_corrector(
    path: str | Path,
    *,
    flag: str | None = None,
    device: str | torch.device = "cpu",
    **overrides: Any,
) -> tuple[FixedPointSolver, DarcyCorrectorConfig | HelmholtzCorrectorConfig]:
    """The deployed cycle of a corrector checkpoint of any family and its settings.

    The cycle is ``family.cycle(net, config)``, the very object type training
    ran (:class:`~irsolve.learned.corrector_training.CorrectorObjective`): for
    Darcy ``Cycle(ResidualCorrector(net, step_length), smoothing)`` (the
    corrector is ``cycle.solvers[0]``), for Helmholtz the learned preconditioner
    ``Cycle(ShiftedLaplacian(), ResidualCorrector(net, "residual"), repeats=3)``.
    The settings carry what the problems need (Helmholtz: ``config.ppw``,
    ``config.attenuation``, ``config.problem(speed, f)``). ``overrides``
    replace settings (``nu=3``, ``repeats=2``); ``None`` values are ignored.

    Raises
    ------
    CheckpointError
        For a checkpoint of another objective, of no known family, or whose
        settings are not this version's (one line naming the file).
    """
    net, config = load_net(path, "corrector", flag=flag, device=device)
    name = config.get("family")
    family = CORRECTOR_FAMILIES.get(name) if isinstance(name, str) else None
    if family is None:
        raise CheckpointError(
            f"expected a corrector checkpoint with a family ({', '.join(CORRECTOR_FAMILIES)}) "
            f"and its settings, got family {name!r}: {path} was written by an earlier irsolve; "
            "retrain it with irsolve train-corrector"
        )
    settings = _replaced(_settings(family.config_type, config.get("corrector"), path), overrides)
    return family.cycle(net, settings), settings
