"""``irsolve demo``: the three things irsolve is for, offline, in minutes, with one report.

1. **Navier–Stokes, learned refiner against its base.** Vorticity
   trajectories simulated here (:func:`irsolve.data.make_navier_stokes_dataset`,
   ``nu = 1e-4``, one ``(w_0, w_0.1)`` pair per trajectory, the recipe of
   ``examples/end_to_end.sh``), an FNO base trained on them, the IRNO
   refiner ``h_{k+1} = h_k + alpha_k Phi([x; h_k])`` trained on the frozen
   base, evaluated to ``2K`` steps (:func:`irsolve.learned.evaluate.evaluate`) and
   analysed (:func:`irsolve.analysis.report.analyze`: per-band spectral
   error ratios, contraction certificate, figures).
2. **Darcy, learned and classical steps in one solve.** A closed-loop
   :class:`~irsolve.solvers.ResidualCorrector` (``h + s Phi(a, r / s)``,
   ``s = ||r||``, energy step length) trained with
   :class:`~irsolve.learned.corrector_training.CorrectorObjective`, then held-out
   problems solved from zero to a relative residual of ``1e-8`` by Jacobi
   alone, the corrector interleaved with Jacobi, Jacobi-PCG, flexible CG
   preconditioned by the corrector cycle, and multigrid V(2,2); errors
   against :func:`scipy.sparse.linalg.spsolve`.
3. **Multigrid against PyAMG.** irsolve's black-box multigrid (alone and
   as FCG preconditioner) beside PyAMG smoothed aggregation + CG, the same
   problems, tolerance and machine (PyAMG row skipped when it is not installed).

Trained nets and simulated data go to a cache keyed on the settings
(:meth:`DemoSettings.key`), so a second run with the same settings trains
nothing. The report folder holds ``report.md``, ``summary.json``, figures
(PNG) and the analysis report of part 1 under ``ns_analysis/``.

>>> result = run_demo("runs/demo", quick=True)   # doctest: +SKIP
>>> print(summary_table(result["summary"]))        # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.sparse.linalg import spsolve
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

import irsolve
from irsolve import FixedPointSolver, Interleave, solve
from irsolve.cli.flags import add_flags
from irsolve.data import HDF5Dataset, make_navier_stokes_dataset
from irsolve.learned.corrector_training import (
    CorrectorConfig,
    CorrectorObjective,
    corrector_net,
    darcy_pairs,
)
from irsolve.learned.evaluate import evaluate
from irsolve.learned.nets import RefinementUNet, base_operator
from irsolve.learned.trained import load_corrector, load_net, load_refiner
from irsolve.learned.training import (
    RefinerConfig,
    TrainConfig,
    fit,
    seed_everything,
    train_base,
    train_refiner,
)
from irsolve.solvers import (
    Darcy2D,
    FlexibleCG,
    Jacobi,
    Multigrid,
    darcy_coefficient,
    gaussian_random_field,
)
from irsolve.solvers.peers import pyamg_cg

__all__ = [
    "DemoCache",
    "DemoSettings",
    "add_subcommands",
    "default_cache_dir",
    "run_demo",
    "run_hybrid",
    "run_multigrid_table",
    "run_navier_stokes",
    "summary_table",
]

logger = logging.getLogger(__name__)

#: Relative residual every Darcy row is solved to (``f = 1``, so also absolute RMS).
TOL = 1e-8


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; :meth:`preset` gives the full and the ``--quick`` ones.

    Attributes
    ----------
    ns_resolution, ns_trajectories
        Navier–Stokes grid and trajectories (80 / 10 / 10 % train / valid / test).
    base_epochs, base_modes, base_hidden
        The FNO base (``n_modes = (base_modes, base_modes)``).
    irno_epochs, irno_width, K
        The refinement U-Net (depth 4, ``irno_width`` base channels) and its
        trained horizon; evaluated to ``2K``.
    analyze_samples
        Test samples of the analysis report (certificate, spectra, figures).
    darcy_n, corrector_problems, corrector_epochs, corrector_modes, corrector_width
        The corrector's training grid and data, and its FNO.
    test_problems, max_sweeps, max_cycles
        Held-out Darcy problems per row, the cap on Jacobi sweeps alone and on
        cycles of the stationary hybrid (corrector then ``nu`` sweeps).
    amg_sizes
        Grids of the multigrid-versus-PyAMG table (``2^k - 1``).
    seed
        Seed of every simulation and initialisation.
    """

    ns_resolution: int = 32
    ns_trajectories: int = 300
    base_epochs: int = 10
    base_modes: int = 4
    base_hidden: int = 32
    irno_epochs: int = 4
    irno_width: int = 8
    K: int = 4
    analyze_samples: int = 8
    darcy_n: int = 64
    corrector_problems: int = 192
    corrector_epochs: int = 20
    corrector_modes: int = 16
    corrector_width: int = 32
    test_problems: int = 8
    max_sweeps: int = 10000
    max_cycles: int = 300
    amg_sizes: tuple[int, ...] = (127, 255)
    seed: int = 0

    @classmethod
    def preset(cls, quick: bool = False) -> DemoSettings:
        """The full demo or the ``quick`` one.

        Measured on two CPU cores, one thread, shared with other jobs
        (load average in brackets), from an empty cache: full 236 s (2.8);
        quick 41 s (1.9) and 92 s (6). From the cache (nothing trained): full 61 s,
        quick 16 s.
        """
        if not quick:
            return cls()
        return cls(
            ns_trajectories=160,
            base_epochs=6,
            irno_epochs=3,
            analyze_samples=4,
            darcy_n=32,
            corrector_problems=128,
            corrector_epochs=20,
            corrector_modes=8,
            corrector_width=16,
            max_sweeps=4000,
            max_cycles=400,
            amg_sizes=(63,),
        )

    def key(self) -> str:
        """Cache key: a hash of every setting and the irsolve version."""
        text = json.dumps([dataclasses.asdict(self), irsolve.__version__], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$IRSOLVE_CACHE/demo`` if set, else ``~/.cache/irsolve/demo``."""
    root = os.environ.get("IRSOLVE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "irsolve") / "demo"


class DemoCache:
    """Folder of trained nets and simulated data for one :class:`DemoSettings`.

    ``built`` lists what this instance had to make (empty on a cache hit).
    """

    def __init__(self, root: str | os.PathLike[str], settings: DemoSettings) -> None:
        self.root = Path(root) / settings.key()
        self.settings = settings
        self.built: list[str] = []

    #: Written into an entry's folder once ``make`` has returned: an interrupted run (a
    #: training killed after its first epoch's checkpoint) is built again, not reused.
    MARKER = "complete.json"

    def get(self, name: str, path: str, make: Callable[[Path], Any]) -> Path:
        """``root/name/path``, made by ``make(root/name)`` first unless a complete one exists."""
        folder = self.root / name
        target = folder / path
        if not (target.exists() and (folder / self.MARKER).exists()):
            logger.info("cache miss: building %s in %s", name, folder)
            folder.mkdir(parents=True, exist_ok=True)
            (self.root / "settings.json").write_text(
                json.dumps(dataclasses.asdict(self.settings), indent=2) + "\n"
            )
            make(folder)
            if not target.exists():
                raise RuntimeError(f"expected {name} to write {target}, got nothing there")
            (folder / self.MARKER).write_text(json.dumps({"key": self.settings.key()}) + "\n")
            self.built.append(name)
        return target


def _train_config(epochs: int, lr: float, batch_size: int, seed: int) -> TrainConfig:
    return TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device="cpu", progress=True
    )


def run_navier_stokes(settings: DemoSettings, cache: DemoCache, out: Path) -> dict[str, Any]:
    """Part 1: NS data, FNO base, IRNO refiner, evaluation to ``2K``, analysis in ``out``.

    Returns the evaluation (``VRMSE`` per step), the analysis summary and the summary rows.
    """
    from irsolve.analysis.report import analyze

    s = settings
    n_train = int(0.8 * s.ns_trajectories)
    n_valid = n_test = (s.ns_trajectories - n_train) // 2

    def make_data(folder: Path) -> None:
        make_navier_stokes_dataset(
            folder,
            n_train,
            n_valid,
            n_test,
            resolution=s.ns_resolution,
            n_steps=2,
            record_dt=0.1,
            viscosity=1e-4,
            seed=s.seed,
            overwrite=True,
            progress=True,
        )

    root = cache.get("ns_data", "navier_stokes", make_data)
    train, valid, test = (
        HDF5Dataset(root, split, n_steps_input=1) for split in ("train", "valid", "test")
    )
    x0, y0 = train[0]
    c_in, c_out = x0.shape[0], y0.shape[0]

    def make_base(folder: Path) -> None:
        seed_everything(s.seed)
        model = base_operator(
            "fno", c_in, c_out, n_modes=(s.base_modes, s.base_modes), hidden_channels=s.base_hidden
        )
        config = _train_config(s.base_epochs, 3e-3, 8, s.seed)
        train_base(model, train, valid, config, checkpoint_dir=folder, overwrite=True)

    base, _ = load_net(cache.get("base", "best.pt", make_base), "base")

    def make_irno(folder: Path) -> None:
        seed_everything(s.seed)
        net = RefinementUNet(c_in + c_out, c_out, base_channels=s.irno_width, depth=4, norm="batch")
        levers = RefinerConfig(
            K=s.K,
            beta_fp=0.05,
            unroll_max=2 * s.K,
            step_weights="linear",
            alpha_decay=0.25,
        )
        config = _train_config(s.irno_epochs, 2e-3, 8, s.seed)
        train_refiner(
            base, net, train, valid, config, levers, checkpoint_dir=folder, overwrite=True
        )

    refiner, refiner_settings = load_refiner(cache.get("irno", "best.pt", make_irno))
    K = refiner_settings.K
    tic = time.perf_counter()
    report = evaluate(base, refiner, test, K=K, steps=2 * K)
    wall = time.perf_counter() - tic
    vrmse = report.metrics["vrmse"]

    items = [test[i] for i in range(min(s.analyze_samples, len(test)))]
    x = torch.stack([item[0] for item in items])
    y = torch.stack([item[1] for item in items])
    analysis = analyze(base, refiner, x, y, out / "ns_analysis", trained_steps=K, steps=2 * K)
    label = f"NS {s.ns_resolution}^2, {len(test)} test"
    rows = [
        _row(label, "FNO base (one shot)", "", None, f"VRMSE {vrmse[0]:.4f}"),
        _row(
            label,
            f"IRNO, K = {K} steps",
            f"{K} learned",
            None,
            f"VRMSE {vrmse[K]:.4f} ({-100 * report.reduction(K):+.0f} %)",
        ),
        _row(
            label,
            f"IRNO, 2K = {2 * K} steps",
            f"{2 * K} learned",
            wall,
            f"VRMSE {vrmse[2 * K]:.4f} ({-100 * report.reduction(2 * K):+.0f} %)",
        ),
        _row(
            label,
            "contraction certificate (analyze)",
            f"{analysis['samples']} samples",
            None,
            f"holds for {analysis['certificate']['holds']}/{analysis['samples']}",
        ),
    ]
    return {"evaluation": report.to_dict(), "analysis_dir": "ns_analysis", "summary": rows}


def _row(part: str, method: str, work: str, wall_s: float | None, result: str) -> dict[str, Any]:
    return {"part": part, "method": method, "work": work, "wall_s": wall_s, "result": result}


def _darcy_problems(count: int, n: int, seed: int) -> tuple[Darcy2D, list[np.ndarray]]:
    """``count`` FNO Darcy problems on ``n^2`` and their ``spsolve`` solutions."""
    generator = torch.Generator().manual_seed(seed)
    problem = Darcy2D(darcy_coefficient(gaussian_random_field(count, n, generator=generator)))
    exact = [
        spsolve(m.tocsc(), problem.f[b].flatten().numpy()) for b, m in enumerate(problem.to_scipy())
    ]
    return problem, exact


def _solve_row(
    solver: FixedPointSolver, problem: Darcy2D, exact: list[np.ndarray], maxiter: int
) -> dict[str, Any]:
    """Solve from zero to ``TOL``; worst iterations, residual, error vs ``spsolve``, history."""
    tic = time.perf_counter()
    sol = solve(None, solver, problem, tol=TOL, rtol=0.0, maxiter=maxiter)
    wall = time.perf_counter() - tic
    u = sol.u.flatten(1).numpy()
    errors = [np.linalg.norm(u[b] - e) / np.linalg.norm(e) for b, e in enumerate(exact)]
    return {
        "iterations": int(sol.iterations.max()),
        "wall_s": wall,
        "final_residual": float(sol.final_residuals.max()),
        "error_vs_spsolve": float(max(errors)),
        "retcodes": {c.name: sol.retcodes.count(c) for c in set(sol.retcodes)},
        "history": sol.residuals.nan_to_num(0.0).max(dim=1).values.tolist(),
    }


def run_hybrid(settings: DemoSettings, cache: DemoCache, out: Path) -> dict[str, Any]:
    """Part 2: the closed-loop corrector beside Jacobi, Jacobi-PCG and multigrid on Darcy.

    Writes ``hybrid_residuals.png`` (worst problem's residual per solver
    step) to ``out``; returns the rows with their residual histories.
    """
    s = settings
    config = CorrectorConfig()

    def make_corrector(folder: Path) -> None:
        seed_everything(s.seed)
        net = corrector_net(modes=s.corrector_modes, width=s.corrector_width)
        objective = CorrectorObjective(net, config)
        fit(
            objective,
            darcy_pairs(s.corrector_problems, s.darcy_n, seed=s.seed),
            darcy_pairs(16, s.darcy_n, seed=s.seed + 1),
            _train_config(s.corrector_epochs, 1e-3, 16, s.seed),
            checkpoint_dir=folder,
            overwrite=True,
        )

    corrector, trained = load_corrector(cache.get("corrector", "best.pt", make_corrector))
    nu = int(trained.get("nu", config.nu))
    problem, exact = _darcy_problems(s.test_problems, s.darcy_n, seed=s.seed + 1000)
    plans: list[tuple[str, FixedPointSolver, int, Callable[[int], str]]] = [
        ("Jacobi alone (omega 0.8)", Jacobi(), s.max_sweeps, lambda it: f"{it} sweeps"),
        (
            f"corrector + Jacobi x{nu}",
            Interleave(corrector, Jacobi(sweeps=nu), pattern=(1, 1)),
            2 * s.max_cycles,
            lambda it: f"{(it + 1) // 2} learned + {(it // 2) * nu} sweeps",
        ),
        (
            "Jacobi-PCG",
            FlexibleCG(Jacobi(omega=1.0), m=1),
            s.max_sweeps,
            lambda it: f"{it} CG its",
        ),
        (
            f"FCG(corrector + Jacobi x{nu}), m=5",
            FlexibleCG(
                Interleave(corrector, Jacobi(sweeps=nu), pattern=(1, 1)), preconditioner_steps=2
            ),
            500,
            lambda it: f"{it} FCG its ({it} learned + {it * nu} sweeps)",
        ),
        ("Multigrid V(2,2)", Multigrid(), 100, lambda it: f"{it} V-cycles"),
    ]
    rows, summary = [], []
    label = f"Darcy {s.darcy_n}^2, {s.test_problems} problems"
    for name, solver, maxiter, work in tqdm(plans, desc="Darcy hybrid rows", unit="row"):
        row = {"row": name, **_solve_row(solver, problem, exact, maxiter)}
        rows.append(row)
        codes = ", ".join(f"{k} {v}" for k, v in sorted(row["retcodes"].items()))
        result = f"res {row['final_residual']:.1e}, err {row['error_vs_spsolve']:.1e}, {codes}"
        summary.append(_row(label, name, work(row["iterations"]), row["wall_s"], result))
    _plot_histories(rows, out / "hybrid_residuals.png", f"Darcy {s.darcy_n}^2 from zero")
    return {"nu": nu, "tol": TOL, "rows": rows, "summary": summary}


def _plot_histories(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for row in rows:
        history = np.asarray(row["history"])
        ax.semilogy(np.arange(len(history)), np.maximum(history, 1e-16), label=row["row"])
    ax.axhline(TOL, color="k", lw=0.8, ls=":", label=f"tol {TOL:g}")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(left=0)
    ax.set_xlabel("solver steps (a hybrid cycle is 2 steps: learned, then sweeps)")
    ax.set_ylabel("worst RMS residual ||f - A h||")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_multigrid_table(settings: DemoSettings) -> dict[str, Any]:
    """Part 3: multigrid V(2,2), multigrid-preconditioned FCG and PyAMG SA + CG per size."""
    try:
        import pyamg
    except ImportError:
        pyamg = None
        logger.warning("pyamg is not installed: the PyAMG rows are skipped")
    rows, summary = [], []
    for n in tqdm(settings.amg_sizes, desc="multigrid vs PyAMG", unit="size"):
        problem, exact = _darcy_problems(4, n, seed=settings.seed + 2000 + n)
        label = f"AMG {n}^2, 4 problems"
        for name, solver in (
            ("irsolve Multigrid V(2,2)", Multigrid()),
            ("FCG(Multigrid)", FlexibleCG(Multigrid())),
        ):
            row = {"n": n, "row": name, **_solve_row(solver, problem, exact, 100)}
            del row["history"]
            rows.append(row)
            result = f"res {row['final_residual']:.1e}, err {row['error_vs_spsolve']:.1e}"
            summary.append(_row(label, name, f"{row['iterations']} its", row["wall_s"], result))
        if pyamg is None:
            continue
        peer = pyamg_cg(problem, TOL)
        row = {
            "n": n,
            "row": "PyAMG SA + CG (set-up + solve)",
            "iterations": max(peer.iterations),
            "wall_s": peer.wall_s,
            "final_residual": max(peer.relative_residuals),
            "error_vs_spsolve": max(peer.errors(exact)),
        }
        rows.append(row)
        result = f"res {row['final_residual']:.1e}, err {row['error_vs_spsolve']:.1e}"
        summary.append(_row(label, row["row"], f"{row['iterations']} its", row["wall_s"], result))
    return {"rows": rows, "summary": summary}


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The demo's one summary table, as Markdown (readable as plain text too)."""
    lines = [
        "| part | method | work | wall s | result |",
        "| --- | --- | --- | ---: | --- |",
    ]
    for r in rows:
        wall = "" if r["wall_s"] is None else f"{r['wall_s']:.2f}"
        lines.append(f"| {r['part']} | {r['method']} | {r['work']} | {wall} | {r['result']} |")
    return "\n".join(lines)


def run_demo(
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    settings: DemoSettings | None = None,
    parts: tuple[str, ...] = ("navier_stokes", "hybrid", "multigrid"),
    threads: int | None = None,
) -> dict[str, Any]:
    """Run the demo parts and write ``report.md``, ``summary.json`` and figures to ``out``.

    Parameters
    ----------
    out
        Report folder (created).
    quick
        Use :meth:`DemoSettings.preset` ``(quick=True)`` (ignored when ``settings`` is given).
    cache_dir
        Cache root (default :func:`default_cache_dir`); the run uses the
        sub-folder :meth:`DemoSettings.key`.
    settings
        Explicit sizes (tests use tiny ones).
    parts
        Any of ``"navier_stokes"``, ``"hybrid"``, ``"multigrid"``.
    threads
        Threads of torch and of the BLAS / OpenMP pools under NumPy, SciPy and
        PyAMG for the run (``threadpoolctl``); ``None`` leaves them as they
        are. On a loaded CPU one thread is fastest: PyAMG's set-up measured
        10-40 times slower at 127^2 with idle-spinning BLAS threads than with one.

    Returns
    -------
    dict
        The content of ``summary.json``: ``settings``, ``summary`` (the rows
        of :func:`summary_table`), each part's results, ``built`` (what the
        cache had to train or simulate) and ``wall_s``.
    """
    known = ("navier_stokes", "hybrid", "multigrid")
    unknown = [p for p in parts if p not in known]
    if unknown or not parts:
        raise ValueError(f"expected parts among {known}, got {parts!r}")
    settings = settings or DemoSettings.preset(quick)
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"expected threads to be a positive int or None, got {threads!r}")
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with threadpool_limits(limits=threads):
                return run_demo(
                    out, quick=quick, cache_dir=cache_dir, settings=settings, parts=parts
                )
        finally:
            torch.set_num_threads(previous)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = DemoCache(default_cache_dir() if cache_dir is None else cache_dir, settings)
    tic = time.perf_counter()
    result: dict[str, Any] = {"settings": dataclasses.asdict(settings), "summary": []}
    result["part_wall_s"] = {}
    runners = {
        "navier_stokes": lambda: run_navier_stokes(settings, cache, out),
        "hybrid": lambda: run_hybrid(settings, cache, out),
        "multigrid": lambda: run_multigrid_table(settings),
    }
    for part in known:
        if part in parts:
            start = time.perf_counter()
            result[part] = runners[part]()
            result["summary"] += result[part].pop("summary")
            result["part_wall_s"][part] = time.perf_counter() - start
    result["built"] = cache.built
    result["cache"] = str(cache.root)
    result["wall_s"] = time.perf_counter() - tic
    (out / "summary.json").write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    (out / "report.md").write_text(_markdown(result, parts))
    return result


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return float(value)


def _markdown(result: dict[str, Any], parts: tuple[str, ...]) -> str:
    built = ", ".join(result["built"]) or "nothing (all from the cache)"
    lines = [
        "# irsolve demo",
        "",
        f"irsolve {irsolve.__version__}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); {result['wall_s']:.0f} s; trained or simulated "
        f"this run: {built}. Darcy rows solve from zero to a relative residual of {TOL:g}; "
        "`err` is the worst relative error against `scipy.sparse.linalg.spsolve`.",
        "",
        summary_table(result["summary"]),
        "",
    ]
    if "navier_stokes" in parts:
        lines += [
            "## Navier–Stokes: IRNO against its FNO base",
            "",
            "Per-step errors, per-band spectral error ratios (IRNO error spectrum over the "
            "base's) and the contraction certificate: [ns_analysis/report.md]"
            "(ns_analysis/report.md).",
            "",
            "![IRNO over base error energy per radial band](ns_analysis/band_ratios.png)",
            "",
        ]
    if "hybrid" in parts:
        lines += [
            "## Darcy: the closed-loop corrector with Jacobi and Krylov",
            "",
            "![residual histories](hybrid_residuals.png)",
            "",
        ]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    result = run_demo(args.out, quick=args.quick, cache_dir=args.cache, threads=args.threads)
    print(summary_table(result["summary"]))
    built = ", ".join(result["built"]) or "nothing (cache hit)"
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in result["part_wall_s"].items())
    print(f"\n{result['wall_s']:.0f} s ({parts}); trained or simulated: {built}")
    print(f"cache: {result['cache']}")
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``irsolve demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="NS refiner, Darcy hybrid and multigrid-vs-PyAMG on self-made data, one report",
        description=__doc__.split("\n\n")[0].replace("``", ""),
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    add_flags(parser, "--out", out={"default": Path("runs/demo"), "help": "report folder"})
    parser.add_argument(
        "--cache",
        default=None,
        help="cache root for data and trained nets (default: $IRSOLVE_CACHE/demo or "
        "~/.cache/irsolve/demo)",
    )
    add_flags(parser, "--threads", threads={"default": 1})
    parser.set_defaults(handler=_run)
