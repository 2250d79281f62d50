"""One tiny training, evaluation and batch solve, run by ``tests/test_distributed.py``.

Launched as ``python -m torch.distributed.run --nproc_per_node=2 tests/ddp_worker.py OUT``
(each rank saves what it computed to ``OUT/rank<r>.pt``), and called in one process
(:func:`run`) for the reference the multi-process results are compared with.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from irsolve.distributed import rank, session, shard_solve, world_size
from irsolve.learned.checkpoint import model_state
from irsolve.learned.evaluate import evaluate
from irsolve.learned.nets import RefinementUNet, base_operator
from irsolve.learned.training import (
    RefinerConfig,
    TrainConfig,
    seed_everything,
    train_base,
    train_refiner,
)
from irsolve.solvers import Jacobi, Poisson2D, Refiner

#: Samples of the training set: one global batch, 4 per rank on 2 ranks.
SAMPLES = 8


def pairs(count: int, seed: int) -> TensorDataset:
    """``(x, y)`` with ``y`` a shifted, scaled ``x``: an FNO learns it in a few steps."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(count, 1, 16, 16, generator=g)
    return TensorDataset(x, 0.5 * x.roll(1, dims=-1))


class Interrupted(Exception):
    """Stops a run after its first epoch, as a kill would (the set is committed)."""


def _refiner_run(folder: Path, **fit_kwargs) -> dict[str, torch.Tensor]:
    """Two epochs of the refiner objective (batch norm, unroll lengths drawn per rank)."""
    seed_everything(2)
    net = RefinementUNet(2, 1, base_channels=4, depth=1, norm="batch")
    train_refiner(
        lambda x: 0.9 * x,
        net,
        pairs(8, 6),
        None,
        TrainConfig(epochs=2, batch_size=4, lr=3e-3, seed=3, device="cpu", progress=False),
        RefinerConfig(K=2, unroll_max=3, calibrate_scale=False),
        checkpoint_dir=folder,
        **fit_kwargs,
    )
    return model_state(net)


def resume_is_exact(out: Path) -> bool:
    """Whether a run stopped after epoch 1 and resumed ends with an uninterrupted run's weights."""
    full = _refiner_run(out / "full")

    def stop(record: dict) -> None:
        if record["epoch"] == 1:
            raise Interrupted

    try:
        _refiner_run(out / "resumed", callback=stop)
    except Interrupted:
        pass
    resumed = _refiner_run(out / "resumed", resume=True)
    return all(torch.equal(full[k], resumed[k]) for k in full)


def run(out: Path) -> dict:
    """Train, evaluate and solve; return (and save as ``out/rank<r>.pt``) what this rank got."""
    torch.set_num_threads(1)
    with session("cpu"):
        seed_everything(0)
        model = base_operator("fno", 1, 1, n_modes=(4, 4), hidden_channels=8, n_layers=2)
        config = TrainConfig(
            epochs=2, batch_size=SAMPLES, lr=1e-3, seed=0, device="cpu", progress=False
        )
        result = train_base(
            model, pairs(SAMPLES, 1), pairs(5, 2), config, checkpoint_dir=out / "ckpt"
        )
        seed_everything(1)
        net = RefinementUNet(2, 1, base_channels=4, depth=1)
        report = evaluate(model, Refiner(net, 0.2), pairs(7, 3), K=2, batch_size=3)
        f = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        sol = shard_solve(None, Jacobi(), Poisson2D(f), tol=0.0, rtol=0.1, maxiter=300)
        found = {
            "model": model_state(model),
            "history": result.history,
            "vrmse": report.metrics["vrmse"],
            "codes": report.sample_retcodes,
        }
        found["resume_exact"] = resume_is_exact(out)
        if world_size() > 1:
            try:
                train_base(model, pairs(6, 5), None, TrainConfig(batch_size=3, progress=False))
            except ValueError as err:
                found["uneven_batch"] = str(err)
        if sol is not None:
            found["solution"] = {
                "u": sol.u,
                "iterations": sol.iterations,
                "residuals": sol.residuals,
                "codes": [int(c) for c in sol.retcodes],
            }
        torch.save(found, out / f"rank{rank()}.pt")
    return found


if __name__ == "__main__":
    run(Path(sys.argv[1]))
