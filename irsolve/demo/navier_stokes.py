"""Part 1 of the demo: Navier–Stokes data, the FNO base, IRNO and its one-shot peer.

The recipe is ``benchmarks/bench_irno.py --preset long-step`` at demo size:
``x = w_0``, ``y = w_{dt}`` (vorticity, ``nu = 1e-4``, one pair per simulated
trajectory), an FNO base keeping few Fourier modes, then on the frozen base

* **IRNO**: ``h_{k+1} = h_k + alpha_k Phi([x; h_k])``, ``alpha = 0.2`` for
  ``k < K`` and decaying by ``0.25`` per step after it, trained on unrolls of
  ``K`` to ``2K`` steps with the later steps weighted more and a fixed-point
  weight ``beta_fp`` (``DemoSettings.irno_beta_fp``; the stability levers of
  :class:`~irsolve.learned.training.RefinerConfig`);
* **one-shot FNO + U-Net**: the same U-Net applied once (``K = 1``,
  ``alpha = 1``), trained as long: the peer that tells whether iterating helps.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from irsolve.data import HDF5Dataset, make_navier_stokes_dataset
from irsolve.learned.evaluate import EvaluationReport, evaluate
from irsolve.learned.nets import RefinementUNet, base_operator
from irsolve.learned.trained import load_net, load_refiner
from irsolve.learned.training import (
    RefinerConfig,
    TrainConfig,
    seed_everything,
    train_base,
    train_refiner,
)
from irsolve.solvers import Refiner

from .settings import DemoCache, DemoSettings

__all__ = ["NSModels", "irno_config", "one_shot_config", "run_navier_stokes", "train_models"]

#: Viscosity of the simulated flows (FNO's hardest setting).
VISCOSITY = 1e-4


def irno_config(K: int, beta_fp: float) -> RefinerConfig:
    """IRNO with the stability levers (``bench_irno.py``'s ``IRNO+levers``)."""
    return RefinerConfig(
        K=K, alpha=0.2, beta_fp=beta_fp, unroll_max=2 * K, step_weights="linear", alpha_decay=0.25
    )


def one_shot_config() -> RefinerConfig:
    """The same U-Net applied once: ``h = T(x) + Phi([x; T(x)])``."""
    return RefinerConfig(K=1, alpha=1.0, beta_fp=0.0)


@dataclasses.dataclass
class NSModels:
    """The trained nets of part 1 and the data they were trained on.

    Attributes
    ----------
    base : torch.nn.Module
        The FNO base ``x -> h_0``, in eval mode.
    irno, one_shot : Refiner
        IRNO and the one-shot FNO + U-Net (same U-Net size).
    K : int
        IRNO's trained horizon.
    train, test : TensorDataset
        The training and test pairs.
    train_s : dict
        Training seconds of ``base``, ``irno`` and ``one_shot`` (from the run
        that trained them, also when read from the cache).
    """

    base: torch.nn.Module
    irno: Refiner
    one_shot: Refiner
    K: int
    train: TensorDataset
    test: TensorDataset
    train_s: dict[str, float]


def _pairs(root: Path, split: str) -> TensorDataset:
    data = HDF5Dataset(root, split, n_steps_input=1, n_steps_output=1)
    xs, ys = zip(*(data[i] for i in range(len(data))), strict=True)
    return TensorDataset(torch.stack(xs), torch.stack(ys))


def train_models(settings: DemoSettings, cache: DemoCache, *, progress: bool = True) -> NSModels:
    """Simulate the data and train base, IRNO and the one-shot peer (each cached)."""
    s = settings

    def make_data(folder: Path) -> None:
        make_navier_stokes_dataset(
            folder,
            s.ns_train,
            s.ns_test // 2,
            s.ns_test,
            resolution=s.ns_resolution,
            n_steps=2,
            record_dt=s.ns_dt,
            viscosity=VISCOSITY,
            seed=s.seed,
            overwrite=True,
            progress=progress,
        )

    root = cache.get("ns_data", "navier_stokes", make_data)
    train, valid, test = (_pairs(root, split) for split in ("train", "valid", "test"))

    def config(epochs: int, lr: float) -> TrainConfig:
        return TrainConfig(
            epochs=epochs,
            batch_size=s.batch_size,
            lr=lr,
            seed=s.seed,
            device="cpu",
            progress=progress,
        )

    def make_base(folder: Path) -> None:
        seed_everything(s.seed)
        model = base_operator(
            "fno", 1, 1, n_modes=(s.base_modes, s.base_modes), hidden_channels=s.base_hidden
        )
        train_base(
            model, train, valid, config(s.base_epochs, 3e-3), checkpoint_dir=folder, overwrite=True
        )

    base, _ = load_net(cache.get("base", "best.pt", make_base), "base")

    def make_refiner(levers: RefinerConfig) -> Any:
        def make(folder: Path) -> None:
            seed_everything(s.seed)
            net = RefinementUNet(2, 1, base_channels=s.irno_width, depth=4, norm="batch")
            train_refiner(
                base,
                net,
                train,
                valid,
                config(s.irno_epochs, s.irno_lr),
                levers,
                checkpoint_dir=folder,
                overwrite=True,
            )

        return make

    levers = irno_config(s.K, s.irno_beta_fp)
    irno, levers = load_refiner(cache.get("irno", "best.pt", make_refiner(levers)))
    one_shot, _ = load_refiner(cache.get("one_shot", "best.pt", make_refiner(one_shot_config())))
    train_s = {name: cache.wall_s(name) for name in ("base", "irno", "one_shot")}
    return NSModels(base, irno, one_shot, levers.K, train, test, train_s)


def evaluate_models(models: NSModels) -> dict[str, Any]:
    """Test VRMSE of the base, IRNO per step to ``2K`` and the one-shot peer.

    Returns
    -------
    dict
        ``irno`` and ``one_shot`` (:meth:`EvaluationReport.to_dict`), ``base``
        (VRMSE of ``h_0``), ``cut_K``, ``cut_2K``, ``cut_one_shot`` (relative
        VRMSE reductions from the base) and ``wall_s`` (IRNO's ``2K`` steps on
        the test set).
    """
    K = models.K
    tic = time.perf_counter()
    irno: EvaluationReport = evaluate(models.base, models.irno, models.test, K=K, steps=2 * K)
    wall = time.perf_counter() - tic
    one_shot = evaluate(models.base, models.one_shot, models.test, K=1, steps=1)
    return {
        "base": irno.metrics["vrmse"][0],
        "cut_K": irno.reduction(K),
        "cut_2K": irno.reduction(2 * K),
        "cut_one_shot": one_shot.reduction(1),
        "wall_s": wall,
        "irno": irno.to_dict(),
        "one_shot": one_shot.to_dict(),
    }


def run_navier_stokes(
    settings: DemoSettings, cache: DemoCache, out: Path, *, progress: bool = True
) -> dict[str, Any]:
    """Part 1: train (or read from the cache), evaluate to ``2K``, analyse into ``out``.

    Returns the evaluation (:func:`evaluate_models`), the analysis summary
    (``out/ns_analysis``, :func:`irsolve.analysis.report.analyze`), the
    training times and the summary rows.
    """
    from irsolve.analysis.report import analyze

    from .report import row

    s = settings
    models = train_models(settings, cache, progress=progress)
    result = evaluate_models(models)
    K = models.K
    x, y = (t[: s.analyze_samples] for t in models.test.tensors)
    analysis = analyze(
        models.base, models.irno, x, y, out / "ns_analysis", K=K, steps=2 * K, progress=progress
    )
    vrmse = result["irno"]["metrics"]["vrmse"]
    one_shot = result["one_shot"]["metrics"]["vrmse"][1]
    label = f"NS {s.ns_resolution}^2, {len(models.test)} test"
    train_s = models.train_s
    rows = [
        row(label, "FNO base (one shot)", "", None, f"VRMSE {vrmse[0]:.4f}", train_s["base"]),
        row(
            label,
            f"IRNO, K = {K} steps",
            f"{K} learned",
            None,
            f"VRMSE {vrmse[K]:.4f} ({-100 * result['cut_K']:+.0f} %)",
            train_s["irno"],
        ),
        row(
            label,
            f"IRNO, 2K = {2 * K} steps",
            f"{2 * K} learned",
            result["wall_s"],
            f"VRMSE {vrmse[2 * K]:.4f} ({-100 * result['cut_2K']:+.0f} %)",
        ),
        row(
            label,
            "FNO + U-Net, one shot (same U-Net)",
            "1 learned",
            None,
            f"VRMSE {one_shot:.4f} ({-100 * result['cut_one_shot']:+.0f} %)",
            train_s["one_shot"],
        ),
        row(
            label,
            "contraction certificate (analyze)",
            f"{analysis['samples']} samples",
            None,
            f"holds for {analysis['certificate']['holds']}/{analysis['samples']}",
        ),
    ]
    return {
        **result,
        "K": K,
        "train_s": train_s,
        "analysis_dir": "ns_analysis",
        "certificate": analysis["certificate"],
        "summary": rows,
    }
