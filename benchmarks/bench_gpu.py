"""GPU throughput: IRNO training (fp32/bf16, eager/compiled) and solve() of learned, classical
and hybrid solvers on 256^2 and 512^2 batches; figures printed and written as JSON.

Training: samples per second of :func:`irsolve.learned.training.fit` on the refiner objective
(Algorithm 1: frozen neuralop FNO base, 16 modes, width 32, 4 layers; reference U-Net
``Phi``, width 16, depth 4; K = 6 unrolled steps), timed over the second of two epochs
so that ``torch.compile``'s compilation (first epoch) is left out. Rows for
``precision`` fp32 and bf16, ``compile`` off and on; ratios against fp32 eager.

Solves (``irsolve.solve``), samples per second and iterations, on Darcy problems with
FNO-benchmark coefficients (12/3, ``f = 1``):

- ``refiner``: base FNO then 2K = 12 IRNO steps (the learned refiner alone);
- ``multigrid``: :class:`~irsolve.solvers.Multigrid` V(2,2) to relative residual 1e-8;
- ``hybrid``: :class:`~irsolve.solvers.FlexibleCG` (m = 5) preconditioned by the
  corrector's hybrid cycle (the learned :class:`~irsolve.solvers.ResidualCorrector`, a
  neuralop FNO ``Phi``, then its smoothing sweeps), to 1e-8; with ``--corrector
  CHECKPOINT`` the cycle it was trained with (:func:`irsolve.learned.trained.load_corrector`),
  else the default :class:`~irsolve.learned.darcy_corrector.DarcyCorrectorConfig` cycle with
  random weights (then only its time per iteration means something).

Each timing follows one untimed warm-up call and ends with ``torch.cuda.synchronize``.
On a GPU each solve row also counts the host-device synchronisations per step
(``syncs_per_step``: the engine copies each step's per-sample norms to the host once to
decide which samples stop; Krylov methods test for breakdown once per step).
The hybrid's ratio is against multigrid measured in the same run.

Run (GPU): ``benchmarks/gpu.sh OUT`` (installs, runs the GPU tests, then this);
on a CPU: ``python benchmarks/bench_gpu.py --out /tmp/gpu --dry-run`` (tiny sizes,
checks that every path runs; the figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from irsolve import solve
from irsolve.distributed import resolve_device
from irsolve.learned.darcy_corrector import DarcyCorrector, DarcyCorrectorConfig, corrector_net
from irsolve.learned.nets import RefinementUNet, base_operator
from irsolve.learned.trained import load_corrector
from irsolve.learned.training import (
    RefinerConfig,
    RefinerObjective,
    TrainConfig,
    fit,
    seed_everything,
)
from irsolve.solvers import (
    Darcy2D,
    FlexibleCG,
    Multigrid,
    Refiner,
    darcy_coefficient,
    gaussian_random_field,
)


def synchronized(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """Seconds of one call of ``fn`` after an untimed warm-up call, and its result."""
    fn()
    synchronized(device)
    start = time.perf_counter()
    result = fn()
    synchronized(device)
    return time.perf_counter() - start, result


def syncs_per_step(run: Callable[[], Any], device: torch.device) -> float | None:
    """Host-device synchronisations per solver step of ``run()`` (CUDA only; ``None`` else).

    Counted as the warnings of ``torch.cuda.set_sync_debug_mode("warn")``: each
    ``.item()``, ``.cpu()``, ``bool(tensor)`` or blocking copy in the loop is one.
    """
    if device.type != "cuda":
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            sol = run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return len(caught) / max(int(sol.stats.get("steps", 1)), 1)


def nets(
    channels: int, width: int, device: torch.device
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The frozen base FNO and the refinement U-Net (reference sizes unless ``--dry-run``)."""
    seed_everything(0)
    base = base_operator(
        "fno", channels, channels, n_modes=(16, 16), hidden_channels=32, n_layers=4
    )
    net = RefinementUNet(2 * channels, channels, base_channels=width, depth=4, padding="zeros")
    return base.to(device).eval(), net.to(device)


def training_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    rows = []
    n, samples = args.train_size, args.train_samples
    g = torch.Generator().manual_seed(1)
    x = torch.randn(samples, 1, n, n, generator=g)
    data = TensorDataset(x, 0.5 * x.roll(1, dims=-1))
    for precision in ("fp32", "bf16"):
        for compiled in (False, True):
            base, net = nets(1, args.width, device)
            objective = RefinerObjective(base, net, RefinerConfig(K=6, calibrate_scale=False))
            config = TrainConfig(
                epochs=2,
                batch_size=args.batch,
                device=str(device),
                progress=False,
                precision=precision,
                compile=compiled,
            )
            synchronized(device)
            history = fit(objective, data, None, config).history
            seconds = history[-1]["seconds"]  # the second epoch: compilation is done
            rows.append(
                {
                    "what": "train_refiner",
                    "n": n,
                    "batch": args.batch,
                    "precision": precision,
                    "compile": compiled,
                    "seconds_per_epoch": seconds,
                    "samples_per_s": samples / seconds,
                    "loss": history[-1]["train_loss"],
                }
            )
    eager = rows[0]["samples_per_s"]
    for row in rows:
        row["ratio_vs_fp32_eager"] = row["samples_per_s"] / eager
    return rows


def darcy(batch: int, n: int, device: torch.device) -> Darcy2D:
    g = torch.Generator().manual_seed(2)
    a = darcy_coefficient(gaussian_random_field(batch, n, generator=g))
    return Darcy2D(a.to(device))


def solve_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    rows = []
    base, net = nets(1, args.width, device)
    refiner = Refiner(net.eval(), 0.2)
    if args.corrector is not None:
        cycle, _ = load_corrector(args.corrector, device=device)
    else:
        net = corrector_net(args.modes, 32, 4).to(device).eval()
        cycle = DarcyCorrector().cycle(net, DarcyCorrectorConfig())
    hybrid = FlexibleCG(cycle, m=5)
    for n in args.sizes:
        problem = darcy(args.batch, n, device)
        x = problem.a.to(torch.float32)
        cases: dict[str, Callable[[], Any]] = {
            "refiner": lambda x=x: solve(base, refiner, x, tol=0.0, maxiter=12),
            "multigrid": lambda p=problem: solve(None, Multigrid(), p, tol=0.0, rtol=1e-8),
            "hybrid": lambda p=problem: solve(
                None, hybrid, p, tol=0.0, rtol=1e-8, maxiter=args.hybrid_maxiter
            ),
        }
        for name, run in cases.items():
            with torch.no_grad():
                seconds, sol = timed(run, device)
            rows.append(
                {
                    "what": f"solve_{name}",
                    "n": n,
                    "batch": args.batch,
                    "seconds": seconds,
                    "samples_per_s": args.batch / seconds,
                    "iterations_mean": float(sol.iterations.float().mean()),
                    "seconds_per_iteration": seconds / max(int(sol.iterations.max()), 1),
                    "retcodes": sorted({str(c) for c in sol.retcodes}),
                }
            )
            with torch.no_grad():
                rows[-1]["syncs_per_step"] = syncs_per_step(run, device)
        multigrid = next(r for r in rows if r["what"] == "solve_multigrid" and r["n"] == n)
        for row in rows:
            if row["n"] == n:
                row["time_vs_multigrid"] = row["seconds"] / multigrid["seconds"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for bench_gpu.json")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on any device")
    parser.add_argument("--corrector", type=Path, default=None, help="train-corrector checkpoint")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = resolve_device(args.device)
    if args.dry_run:
        torch.set_num_threads(1)
        args.sizes, args.batch, args.width, args.modes = [32], 2, 4, 4
        args.train_size, args.train_samples, args.hybrid_maxiter = 32, 4, 20
    else:
        args.sizes, args.batch, args.width, args.modes = [256, 512], 16, 16, 16
        args.train_size, args.train_samples, args.hybrid_maxiter = 256, 64, 200
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rows = training_rows(args, device) + solve_rows(args, device)
    env = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "dry_run": args.dry_run,
        "corrector": str(args.corrector) if args.corrector else "random weights",
    }
    for row in rows:
        shown = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()}
        print(" ".join(f"{k}={v}" for k, v in shown.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "bench_gpu.json"
    path.write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
