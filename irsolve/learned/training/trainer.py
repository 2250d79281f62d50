"""The training loop :func:`fit`, its checkpoints and resume, and the train entry points."""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from irsolve import distributed
from irsolve.learned.checkpoint import (
    MANIFEST,
    CheckpointError,
    commit_checkpoints,
    load_checkpoint,
    load_model_state,
    model_state,
    read_manifest,
    recover_checkpoints,
)
from irsolve.learned.training._loaders import _loader
from irsolve.learned.training.calibration import residual_rms
from irsolve.learned.training.configs import RefinerConfig, TrainConfig
from irsolve.learned.training.objectives import BaseObjective, Objective, RefinerObjective

__all__ = [
    "NonFiniteTrainingError",
    "TrainResult",
    "TrainingState",
    "fit",
    "load_weights",
    "seed_everything",
    "train_base",
    "train_refiner",
]

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs (every device) with ``seed``.

    Call it before building the model: weight initialisation draws from the
    global torch RNG, so two runs with one seed then start from the same
    weights. :func:`fit` seeds again when it starts (data order, noise).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global RNG user transforms draw from)
    torch.manual_seed(seed)


class NonFiniteTrainingError(RuntimeError):
    """Training stopped: too many non-finite batches in an epoch, or no finite metric at all."""


@dataclasses.dataclass
class TrainResult:
    """What :func:`fit` returns.

    ``history`` has one record per epoch (train loss and its parts, learning
    rate, skipped batches, mean validation metrics, seconds); ``best_metric``
    is the lowest mean ``val_<selection_metric>`` of the objective (its
    ``selection_metric``, see :class:`~irsolve.learned.training.objectives.Objective`;
    the train loss when there is no validation set) and ``best_epoch`` its
    epoch (1-based);
    ``skipped_batches`` counts non-finite batches over the whole run.
    """

    history: list[dict[str, float]]
    best_metric: float
    best_epoch: int
    skipped_batches: int
    checkpoint_dir: Path | None


def _train_loader(data: Dataset, config: TrainConfig, device: torch.device) -> DataLoader:
    """Shuffled training batches of ``config.batch_size`` samples in all.

    The order is a :class:`~torch.utils.data.distributed.DistributedSampler`'s,
    seeded with ``config.seed`` and reshuffled per epoch by ``set_epoch``: a
    function of the seed and the epoch alone, so it does not depend on
    ``num_workers`` (whose persistent workers draw from a shared generator at
    other times than one process does) and a resume needs only the epoch. Under
    ``torchrun`` each of the ``W`` ranks reads ``batch_size / W`` samples per
    batch from its share, so one step averages the gradient over the same global
    batch size as one process.
    """
    world = distributed.world_size()
    if config.batch_size % world:
        raise ValueError(
            f"expected batch_size to be a multiple of the world size {world} (it is the global "
            f"batch, split over the ranks), got {config.batch_size}"
        )
    sampler = DistributedSampler(
        data, num_replicas=world, rank=distributed.rank(), shuffle=True, seed=config.seed
    )
    return _loader(data, config.batch_size // world, config.num_workers, device, sampler)


class _ObjectiveLoss(nn.Module):
    """An objective's batch loss as a module over its trainable ``model``.

    ``DistributedDataParallel`` averages gradients over ranks only for
    backward passes of outputs of its own ``forward``; wrapping the whole
    loss (rather than the model) lets objectives call their model however
    they need (unrolls, several calls per batch).
    """

    def __init__(self, objective: Objective) -> None:
        super().__init__()
        self.model = objective.model
        self.objective = objective

    def forward(self, x: Tensor, y: Tensor, progress: float) -> tuple[Tensor, dict[str, float]]:
        return self.objective.loss(x, y, progress)


def _sum_over_ranks(totals: dict[str, float], count: int) -> tuple[dict[str, float], int]:
    """Per-key sums and the count added over ranks (unchanged in one process)."""
    gathered = distributed.all_gather_objects((totals, count))
    if len(gathered) == 1:
        return totals, count
    summed: dict[str, float] = {}
    for part, _ in gathered:
        for key, value in part.items():
            summed[key] = summed.get(key, 0.0) + value
    return summed, sum(n for _, n in gathered)


def _validate(objective: Objective, loader: DataLoader, device: torch.device) -> dict[str, float]:
    """Mean validation metrics over every rank's share of the samples."""
    objective.model.eval()
    sums: dict[str, float] = {}
    count = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            metrics = objective.validate(x, y)
            for key, values in metrics.items():
                sums[key] = sums.get(key, 0.0) + values.sum().item()
            count += len(x)
    sums, count = _sum_over_ranks(sums, count)
    return {f"val_{k}": v / max(count, 1) for k, v in sums.items()}


#: What every checkpoint payload of :class:`TrainingState` holds (plus ``config``).
_PAYLOAD = (
    "model",
    "optimizer",
    "scheduler",
    "epoch",
    "history",
    "best",
    "best_epoch",
    "skipped",
    "steps",
    "rng_torch",
    "rng_cuda",
)


@dataclasses.dataclass
class TrainingState:
    """What a run carries from one epoch to the next: the resumable part of its checkpoint.

    ``model``, ``optimizer`` and ``scheduler`` are the live objects; ``epoch``
    counts the epochs done (it also fixes the data order, see
    :func:`_train_loader`), ``steps`` the optimiser steps, ``skipped`` the
    non-finite batches, ``best`` / ``best_epoch`` the lowest selection metric
    and its epoch.
    :meth:`state_dict` and :meth:`load` convert it to and from a checkpoint
    payload together with the global RNG states, so a resumed run continues
    bit for bit as an uninterrupted one would (on CPU).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best: float = math.inf
    best_epoch: int = 0
    skipped: int = 0
    epoch: int = 0
    steps: int = 0

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint payload (every rank must call it: it gathers the ranks' RNG states)."""
        rank_states = distributed.all_gather_objects(torch.get_rng_state())
        payload = {
            "model": model_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "history": self.history,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "skipped": self.skipped,
            "steps": self.steps,
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        if len(rank_states) > 1:
            payload["rng_torch_ranks"] = rank_states
        return payload

    def load(self, payload: dict[str, Any], source: str) -> None:
        """Restore the run from a :meth:`state_dict` payload read from ``source``.

        Raises
        ------
        CheckpointError
            When the payload lacks a part (a checkpoint of another irsolve version).
        """
        missing = [key for key in _PAYLOAD if key not in payload]
        if missing:
            raise CheckpointError(
                f"cannot resume {source}: it lacks {', '.join(missing)} (written by another "
                "irsolve version); train into another folder or pass --overwrite"
            )
        load_model_state(self.model, payload["model"], source=source)
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        torch.set_rng_state(payload["rng_torch"])
        world, rank_states = distributed.world_size(), payload.get("rng_torch_ranks") or []
        if world > 1 and len(rank_states) == world:
            torch.set_rng_state(rank_states[distributed.rank()])
        elif world > 1:
            logger.warning(
                "resuming on %d processes a run saved on %d: the data order and random draws "
                "differ from an uninterrupted run's",
                world,
                max(len(rank_states), 1),
            )
        if payload["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["rng_cuda"])
        self.history = list(payload["history"])
        self.best, self.best_epoch = float(payload["best"]), int(payload["best_epoch"])
        self.skipped, self.epoch = int(payload["skipped"]), int(payload["epoch"])
        self.steps = int(payload["steps"])


class _Trainer:
    """One run of :func:`fit`: set-up, then :meth:`train` epoch by epoch.

    :meth:`train_one_epoch` runs the batches (:meth:`train_one_batch` each),
    :meth:`evaluate` the validation, :meth:`checkpoint` commits the epoch's set.
    """

    def __init__(
        self,
        objective: Objective,
        train_data: Dataset,
        val_data: Dataset | None,
        config: TrainConfig,
        checkpoint_dir: str | Path | None,
    ) -> None:
        self.objective, self.config = objective, config
        self.device = distributed.resolve_device(config.device)
        objective.to(self.device)
        model = objective.model
        if config.compile:
            model.compile()  # in place: the objective's calls and the state dict keys are unchanged
        # Rank 0 draws what one process draws; the other ranks draw their own noise and unrolls.
        torch.manual_seed(config.seed + distributed.rank())
        self.loader = _train_loader(train_data, config, self.device)
        if len(self.loader) == 0:
            raise ValueError("expected a non-empty training dataset, got 0 samples")
        self.val_loader = None
        if val_data is not None:
            shard = distributed.shard(val_data)
            self.val_loader = _loader(shard, config.batch_size, config.num_workers, self.device)
        self.params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.epochs * len(self.loader), eta_min=config.lr_min
        )
        self.state = TrainingState(model, optimizer, scheduler)
        self.summary_config = {
            "train": dataclasses.asdict(config),
            **objective.config(),
            "data": {"train": _data_shape(train_data), "val": _data_shape(val_data)},
        }
        self.ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.batch_loss: Callable[[Tensor, Tensor, float], tuple[Tensor, dict[str, float]]]
        self.batch_loss = objective.loss
        if distributed.world_size() > 1:
            # Gradients are averaged over the ranks during backward; rank 0's weights are sent.
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.batch_loss = DistributedDataParallel(_ObjectiveLoss(objective), device_ids=ids)

    def train(
        self, resume: bool, overwrite: bool, callback: Callable[[dict[str, float]], None] | None
    ) -> TrainResult:
        """Resume if asked, run the remaining epochs, and return the :class:`TrainResult`."""
        state, config = self.state, self.config
        saved = _resume_state(self.ckpt_dir, resume, overwrite, self.summary_config, self.device)
        if saved is not None:
            state.load(saved, str(self.ckpt_dir / "last.pt"))
            logger.info("resumed from %s at epoch %d", self.ckpt_dir / "last.pt", state.epoch)
        first = state.epoch
        while state.epoch < config.epochs:
            tic = time.perf_counter()
            record = self.train_one_epoch(state.epoch)
            if self.val_loader is not None:
                distributed.broadcast_buffers(state.model)  # rank 0's running statistics
                record.update(self.evaluate())
            record["seconds"] = time.perf_counter() - tic
            improved = self._select(record)
            # The first commit of a run that did not resume replaces whatever the folder held.
            self.checkpoint(record, improved, fresh=saved is None and state.epoch == first + 1)
            if callback is not None:
                callback(record)
        if state.best_epoch == 0:
            validated = self.val_loader is not None
            selected = f"val_{self.objective.selection_metric}" if validated else "train_loss"
            raise NonFiniteTrainingError(
                f"no epoch of {config.epochs} gave a finite {selected}: "
                "check the data for NaN or infinite values and lower the learning rate "
                f"(lr={config.lr:g})"
            )
        return TrainResult(
            state.history, state.best, state.best_epoch, state.skipped, self.ckpt_dir
        )

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        """The batches of epoch ``epoch`` (0-based); its record, without validation."""
        state, config, loader = self.state, self.config, self.loader
        state.model.train()
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        totals: dict[str, float] = {}
        done = skipped = bad_data = 0
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            # bars only on a terminal (the demo's rule): none in a log file
            disable=not (config.progress and distributed.is_main() and sys.stderr.isatty()),
        )
        for i, (x, y) in enumerate(bar):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            parts = self.train_one_batch(x, y, epoch + i / len(loader))
            if parts is not None:
                done += 1
                for key, value in parts.items():
                    totals[key] = totals.get(key, 0.0) + value
                bar.set_postfix(loss=f"{totals['loss'] / done:.4g}")
                continue
            skipped += 1
            bad_data += not (torch.isfinite(x).all() and torch.isfinite(y).all())
            logger.log(
                logging.WARNING if skipped == 1 else logging.DEBUG,  # the count at epoch end
                "epoch %d batch %d: non-finite loss or gradient, skipped",
                epoch + 1,
                i,
            )
            if skipped > config.max_skipped * len(loader):
                raise NonFiniteTrainingError(
                    _nonfinite_message(
                        epoch + 1,
                        skipped,
                        len(loader),
                        bad_data,
                        state.steps,
                        config,
                        self.summary_config,
                    )  # fmt: skip
                )
        totals, done = _sum_over_ranks(totals, done)
        state.skipped += skipped
        if skipped and distributed.is_main():
            logger.warning(
                "epoch %d: %d of %d batches skipped (non-finite loss or gradient)",
                epoch + 1,
                skipped,
                len(loader),
            )
        record = {"epoch": float(epoch + 1), "lr": state.optimizer.param_groups[0]["lr"]}
        record.update({f"train_{k}": v / max(done, 1) for k, v in totals.items()})
        record["skipped"] = float(skipped)
        return record

    def train_one_batch(self, x: Tensor, y: Tensor, progress: float) -> dict[str, float] | None:
        """One optimiser step on ``(x, y)``: the loss and its parts, or ``None`` when the
        loss or the gradient is not finite (the batch is skipped, nothing changes)."""
        state = self.state
        bf16 = self.config.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, parts = self.batch_loss(x, y, progress)
        state.optimizer.zero_grad(set_to_none=True)
        # Every rank must take the same branch: a rank that skips backward would leave
        # the others waiting in the gradient all-reduce.
        finite = distributed.all_true(torch.isfinite(loss))
        if finite:
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.clip)
            finite = bool(torch.isfinite(grad_norm))
        if not finite:
            state.optimizer.zero_grad(set_to_none=True)
            return None
        state.optimizer.step()
        state.scheduler.step()
        state.steps += 1
        return {"loss": loss.item(), **parts}

    def evaluate(self) -> dict[str, float]:
        """Mean validation metrics (``val_`` keys) over every rank's share of the samples."""
        return _validate(self.objective, self.val_loader, self.device)

    def _select(self, record: dict[str, float]) -> bool:
        """Count the epoch done and keep its record; True when it is the best so far."""
        state = self.state
        state.epoch += 1
        key = f"val_{self.objective.selection_metric}"
        metric = record.get(key, record.get("train_loss", math.inf))
        if not math.isfinite(metric):
            logger.warning("epoch %d: non-finite selection metric %s", state.epoch, metric)
        improved = metric < state.best
        if improved:
            state.best, state.best_epoch = metric, state.epoch
        state.history.append(record)
        if distributed.is_main():
            shown = ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch")
            logger.info("epoch %d/%d: %s", state.epoch, self.config.epochs, shown)
        return improved

    def checkpoint(self, record: dict[str, float], improved: bool, fresh: bool) -> None:
        """Commit ``last`` (and ``best`` when ``improved``) of the epoch just done, as one set."""
        if self.ckpt_dir is None:
            return
        payload = {**self.state.state_dict(), "config": self.summary_config}
        summary = {"config": self.summary_config, "epoch": self.state.epoch, "record": record}
        written = {"last": (payload, summary)}
        if improved:
            written["best"] = (payload, summary)
        if distributed.is_main():
            commit_checkpoints(self.ckpt_dir, self.state.epoch, written, fresh=fresh)
        distributed.barrier()  # no rank runs ahead of a set that is not yet committed


def fit(
    objective: Objective,
    train_data: Dataset,
    val_data: Dataset | None,
    config: TrainConfig,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    callback: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """The training loop behind :func:`train_base` and :func:`train_refiner`.

    Parameters
    ----------
    objective
        Gives the trainable ``model``, the batch loss and the validation metrics.
    train_data, val_data
        Datasets of ``(x, y)`` pairs; ``val_data=None`` skips validation (the
        best checkpoint then follows the training loss).
    config
        Optimisation settings.
    checkpoint_dir
        Where ``last.pt`` (each epoch) and ``best.pt`` (lowest validation
        VRMSE) go, each with a ``.json`` summary, committed per epoch as one
        set by :func:`~irsolve.learned.checkpoint.commit_checkpoints` (a kill at any
        point leaves the last complete epoch's set); ``None`` writes nothing.
    resume
        Continue from the last committed set in ``checkpoint_dir`` when
        there is one: model, optimiser, scheduler, epoch, history and RNG
        states are restored, so the run continues exactly as an
        uninterrupted one would (on CPU). The run's settings must be those
        of the checkpoint (``device``, ``progress``, ``compile`` and
        ``num_workers`` may differ), and so must the number of training and
        validation samples and their shapes.
    overwrite
        Train from the start into a ``checkpoint_dir`` that holds a run; its
        files are replaced when this run commits its first epoch.
    callback
        Called with each epoch's record after its checkpoint is written.

    Notes
    -----
    Under ``torchrun`` (inside :func:`irsolve.distributed.session`) the
    objective's loss is wrapped in ``DistributedDataParallel`` and each rank
    takes ``batch_size / world`` samples per step from its share of the same
    epoch-seeded permutation one process reads, so with a per-sample mean loss
    a step is one process's step on the same global batch (when ``world``
    divides the sample count; else the sampler repeats up to ``world - 1``
    samples per epoch). The ranks' random draws differ from one process's, so
    runs on different numbers of processes are alike, not identical. Epoch
    records are averaged over all ranks' batches and validation metrics
    summed over the ranks' blocks of ``val_data``: every rank returns the
    same history. Rank 0 writes the checkpoints while the others wait. Batch
    norm layers use per-rank batch statistics (as in any
    ``DistributedDataParallel`` model); rank 0's running statistics are given
    to every rank before validation.

    Raises
    ------
    NonFiniteTrainingError
        When more than ``config.max_skipped`` of an epoch's batches have a
        non-finite loss or gradient (the message names the likely cause:
        non-finite data, the learning rate, the objective's settings), or
        when no epoch gives a finite selection metric.
    CheckpointError
        When ``checkpoint_dir`` holds a run and neither ``resume`` nor
        ``overwrite`` is set, when a resumed run's settings differ from its
        checkpoint's, or when a checkpoint file is damaged or stale.
    """
    trainer = _Trainer(objective, train_data, val_data, config, checkpoint_dir)
    return trainer.train(resume, overwrite, callback)


def _data_shape(data: Dataset | None) -> dict[str, Any] | None:
    """What a resume checks of a dataset: its size and its first sample's shapes and dtypes
    (another ``--resolution`` or sample count is refused; other data of the same size and
    shape is not detected)."""
    if data is None:
        return None
    size = len(data)  # type: ignore[arg-type]
    first = data[0] if size else ()
    parts = first if isinstance(first, (tuple, list)) else (first,)
    return {
        "samples": size,
        "shapes": [list(getattr(part, "shape", ())) for part in parts],
        "dtypes": [str(getattr(part, "dtype", type(part).__name__)) for part in parts],
    }


#: Training settings a resumed run may change: where and how fast it runs, how it reports.
_RESUMABLE = ("device", "progress", "compile", "num_workers")


def _differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two nested configs differ (a key only one of them has differs too).

    The ``train.`` settings of :data:`_RESUMABLE` are not compared.
    """
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current), key=str):
            name = f"{prefix}{key}"
            if prefix == "train." and key in _RESUMABLE:
                continue
            out += _differences(saved.get(key), current.get(key), name + ".")
        return out
    if isinstance(saved, (list, tuple)) and isinstance(current, (list, tuple)):
        saved, current = list(saved), list(current)
    return [] if saved == current else [f"{prefix[:-1]} (saved {saved!r}, now {current!r})"]


def _resume_state(
    ckpt_dir: Path | None,
    resume: bool,
    overwrite: bool,
    summary_config: dict[str, Any],
    device: torch.device,
) -> dict[str, Any] | None:
    """The ``last.pt`` state to resume from, after recovering the folder's last committed set."""
    if ckpt_dir is None:
        return None
    last = ckpt_dir / "last.pt"
    if resume and overwrite:
        raise ValueError("expected at most one of resume and overwrite, got both")
    if not resume:
        # Read (and so check) the manifest before any training: an overwrite deletes what
        # it lists, and a crafted one must be refused before a single epoch runs.
        if (read_manifest(ckpt_dir) is not None or last.exists()) and not overwrite:
            raise CheckpointError(
                f"checkpoint folder {ckpt_dir} already holds a run; resume it (resume=True, "
                "CLI --resume), replace it (overwrite=True, CLI --overwrite) or choose another "
                "folder"
            )
        return None
    # Rank 0 repairs an interrupted commit; the others read the folder once it has.
    manifest = recover_checkpoints(ckpt_dir) if distributed.is_main() else None
    distributed.barrier()
    if not distributed.is_main():
        manifest = read_manifest(ckpt_dir)
    if manifest is None:
        if not last.is_file():
            logger.info("nothing to resume in %s: training from the start", ckpt_dir)
            return None
        raise CheckpointError(
            f"cannot resume {last}: its folder has no {MANIFEST} (written by another irsolve "
            "version); train into another folder or pass --overwrite"
        )
    state = load_checkpoint(last, map_location=device)
    changed = _differences(state.get("config"), summary_config)
    if changed:
        raise CheckpointError(
            f"cannot resume {last} with other settings than its run's: {'; '.join(changed)}; "
            "resume with the same settings or train into another folder"
        )
    return state


def _nonfinite_message(
    epoch: int,
    skipped: int,
    batches: int,
    bad_data: int,
    steps: int,
    config: TrainConfig,
    summary_config: dict[str, Any],
) -> str:
    """The error of a run stopped for non-finite batches, naming the likely cause."""
    alpha = summary_config.get("refiner", {}).get("alpha")
    settings = "the objective's settings" + ("" if alpha is None else f" (alpha={alpha:g})")
    if bad_data:
        cause = (
            f"the training data holds NaN or infinite values ({bad_data} of the skipped "
            "batches); clean or regenerate the data"
        )
    elif steps == 0:
        cause = f"the loss is not finite before any update; check {settings}"
    else:
        cause = (
            f"training diverged after {steps} update{'s' * (steps != 1)}; lower the learning rate "
            f"(lr={config.lr:g}) or {settings}"
        )
    return (
        f"epoch {epoch}: {skipped} of {batches} batches had a non-finite loss or gradient, "
        f"more than max_skipped={config.max_skipped:g} of them; likely cause: {cause}"
    )


def train_base(
    model: nn.Module,
    train_data: Dataset,
    val_data: Dataset | None,
    config: TrainConfig | None = None,
    **fit_kwargs: Any,
) -> TrainResult:
    """Train a base operator (FNO/TFNO or any module) on relative L2; see :func:`fit`."""
    return fit(BaseObjective(model), train_data, val_data, config or TrainConfig(), **fit_kwargs)


def train_refiner(
    base: nn.Module | Callable[[Tensor], Tensor],
    net: nn.Module,
    train_data: Dataset,
    val_data: Dataset | None,
    config: TrainConfig | None = None,
    refiner_config: RefinerConfig | None = None,
    **fit_kwargs: Any,
) -> TrainResult:
    """Train the refinement network ``net`` on a frozen ``base`` (Algorithm 1); see :func:`fit`.

    With ``refiner_config.calibrate_scale`` (the default) the net's
    ``output_scale`` is first set to :func:`residual_rms` of the base on
    ``train_data`` (a resumed run then restores the checkpoint's value).
    """
    config = config or TrainConfig()
    objective = RefinerObjective(base, net, refiner_config or RefinerConfig())
    scale = getattr(net, "output_scale", None)
    if objective.settings.calibrate_scale and isinstance(scale, Tensor):
        device = distributed.resolve_device(config.device)
        objective.to(device)
        rms = residual_rms(base, train_data, config.batch_size, device)
        if math.isfinite(rms) and rms > 0:
            scale.fill_(rms)
            logger.info("output_scale of the refinement net set to the base's RMS error %.4g", rms)
        else:
            logger.warning("base RMS error is %s: output_scale left at %s", rms, scale.item())
    return fit(objective, train_data, val_data, config, **fit_kwargs)


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the model weights of a training checkpoint into ``model`` (checked key by key)."""
    payload = load_checkpoint(path)
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
        raise CheckpointError(f"{path}: not a training checkpoint (it holds no model weights)")
    load_model_state(model, payload["model"], source=str(path))
    return model
