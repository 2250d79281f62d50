"""The demo's summary table, its residual figure and ``report.md``, in plain words."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

import irsolve

__all__ = ["markdown", "plot_histories", "row", "summary_table"]


def row(
    part: str,
    method: str,
    work: str,
    wall_s: float | None,
    result: str,
    train_s: float | None = None,
) -> dict[str, Any]:
    """One summary row: ``wall_s`` the solve or evaluation, ``train_s`` the training."""
    return {
        "part": part,
        "method": method,
        "work": work,
        "train_s": train_s,
        "wall_s": wall_s,
        "result": result,
    }


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The demo's one summary table, as Markdown (readable as plain text too)."""
    lines = [
        "| part | method | work | train s | solve s | result |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for r in rows:
        train, wall = ("" if v is None else f"{v:.1f}" for v in (r.get("train_s"), r["wall_s"]))
        lines.append(
            f"| {r['part']} | {r['method']} | {r['work']} | {train} | {wall} | {r['result']} |"
        )
    return "\n".join(lines)


def plot_histories(rows: list[dict[str, Any]], path: Path, title: str, tol: float) -> None:
    """Worst residual per solver step of each row, with the tolerance drawn."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for r in rows:
        history = np.asarray(r["history"])
        ax.semilogy(np.arange(len(history)), np.maximum(history, 1e-16), label=r["row"])
    ax.axhline(tol, color="k", lw=0.8, ls=":", label=f"tolerance {tol:g}")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(left=0)
    ax.set_xlabel("iterations of the row (sweeps, hybrid cycles, CG iterations or V-cycles)")
    ax.set_ylabel("worst RMS residual ||f - A h|| of the problems")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=120)


def _navier_stokes_section(ns: dict[str, Any]) -> list[str]:
    K = ns["K"]
    cert = ns["certificate"]
    per_sample = cert["per_sample"]
    q = np.asarray(per_sample["q"], dtype=float)
    samples = q.size
    one_shot = ns["cut_one_shot"]
    growth = (1 - ns["cut_2K"]) / (1 - ns["cut_K"]) - 1  # VRMSE(2K) / VRMSE(K) - 1
    drift = "no higher than at K" if growth <= 0 else f"{100 * growth:.1f} % above its value at K"
    gap = ns["cut_K"] - one_shot
    if abs(gap) < 0.05:
        verdict = (
            "IRNO and the one-shot net end within 5 points of each other: here the K steps "
            "apply, in pieces, a correction the same U-Net learns to apply at once."
        )
    elif gap > 0:
        verdict = "IRNO's K steps beat the one-shot net by more than 5 points here."
    else:
        verdict = "The one-shot net beats IRNO's K steps by more than 5 points here."
    return [
        "## Navier–Stokes: IRNO against its FNO base",
        "",
        f"The FNO base predicts the vorticity `dt` later in one shot (test VRMSE "
        f"{ns['base']:.4f}, the error over the field's spread). IRNO repeats "
        f"`h <- h + alpha Phi([x; h])` with one small U-Net `Phi`: after K = {K} steps the "
        f"error is {100 * ns['cut_K']:.0f} % lower than the base's, after 2K = {2 * K} steps "
        f"{100 * ns['cut_2K']:.0f} % lower: past K the step size decays, and the error "
        f"there is {drift}. The same U-Net trained to correct the base once gives "
        f"{100 * one_shot:.0f} %. {verdict}",
        "",
        "![IRNO over base error energy per radial band](ns_analysis/band_ratios.png)",
        "",
        "The figure splits the error into low, middle and high spatial frequencies and "
        "divides each by the base's error there: below 1 the refiner removed error in that "
        "band. Per-step errors, spectra, fields and the certificate are in "
        "[ns_analysis/report.md](ns_analysis/report.md).",
        "",
        f"**The contraction certificate** asks whether the step map `G(h) = h + alpha Phi` "
        f"pulls every nearby iterate towards the true solution `y` (its Jacobian's norm "
        f"`q < 1` at `y`); if so, the error must end below a floor `alpha ||Phi(x, y)|| / "
        f"(1 - q)`. It holds for {cert['holds']} of {samples} test samples "
        f"(median q = {float(np.median(q)):.3f}). The IRNO step reads no residual: it is an "
        "open-loop correction, trained to push the base's output a fixed way, not to "
        "measure its error, so `y` is not its fixed point (`Phi(x, y) != 0`) and `q` is "
        "close to 1. It would hold for a step that sees its own error, such as the Darcy "
        "corrector below (it reads `f - A h`, so the exact solution is a fixed point), or a "
        "refiner trained to make `Phi(x, y) = 0` and `q < 1` (a stronger fixed-point "
        "weight, a Jacobian penalty). The observed errors stayed under the step-by-step "
        f"bound `q e + c e^2 + beta` for {cert['within']} of {samples} samples: the bound "
        "is valid, it just does not shrink.",
        "",
    ]


def _hybrid_section(hybrid: dict[str, Any]) -> list[str]:
    nu = hybrid["nu"]
    rows = {r["row"]: r for r in hybrid["rows"]}
    multigrid = rows.get("Multigrid V(2,2)")
    learned = [r for name, r in rows.items() if "corrector" in name]
    lines = [
        "## Darcy: the closed-loop corrector with Jacobi and Krylov",
        "",
        "Each row solves the same held-out problems `-div(a grad u) = 1` from zero until the "
        f"residual `f - A h` is below {hybrid['tol']:g}. *Jacobi alone* damps only "
        "rough error and crawls on smooth error. The *corrector* is a small FNO that reads "
        "the residual and proposes a correction; its step length is chosen so it can "
        f"never make the error larger, and it is followed by {nu} Jacobi sweeps (one "
        "*cycle*): the net removes smooth error, the sweeps rough error. *Jacobi-PCG* is "
        "conjugate gradients with a diagonal preconditioner; *FCG(corrector ...)* is "
        "flexible CG with the corrector cycle as preconditioner; *multigrid* is the "
        "classical optimal solver for this problem. `err` compares with a direct sparse "
        "solve.",
        "",
        "![residual histories](hybrid_residuals.png)",
        "",
        "The figure shows the worst problem's residual per solver step on a log scale; "
        "the dotted line is the tolerance.",
        "",
    ]
    if multigrid is not None and learned:
        slowest = max(r["wall_s"] for r in learned)
        lines += [
            f"**Where the learned rows lose on time.** They need far fewer steps than "
            f"Jacobi, but each learned step is an FNO forward pass (FFTs and dense layers "
            f"over the grid), which on a CPU costs as much as many stencil sweeps; "
            f"multigrid solves in {multigrid['iterations']} cheap V-cycles "
            f"({multigrid['wall_s']:.2f} s against {slowest:.2f} s for the slowest learned "
            "row). A learned step pays off where no multigrid exists or where it is hard "
            "to build, and on a GPU, where the FNO costs less relative to the sweeps.",
            "",
        ]
    return lines


def markdown(result: dict[str, Any], parts: tuple[str, ...], tol: float) -> str:
    """``report.md`` of a demo run: the summary table and a few sentences per figure."""
    built = ", ".join(result["built"]) or "nothing (all from the cache)"
    load = ", ".join(f"{v:.1f}" for v in result["load_average"])
    lines = [
        "# irsolve demo",
        "",
        f"irsolve {irsolve.__version__}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), {os.cpu_count()} CPU cores, load average "
        f"{load} at the end; {result['wall_s']:.0f} s in all; trained or simulated this "
        f"run: {built}.",
        "",
        "`train s` is the training time of the row's net (from the run that trained it, "
        "also when read from the cache), `solve s` the time of the solve or evaluation "
        f"alone. Darcy rows solve from zero to a relative residual of {tol:g}; `err` is the "
        "worst relative error against `scipy.sparse.linalg.spsolve`.",
        "",
        summary_table(result["summary"]),
        "",
    ]
    if "navier_stokes" in parts:
        lines += _navier_stokes_section(result["navier_stokes"])
    if "hybrid" in parts:
        lines += _hybrid_section(result["hybrid"])
    if "multigrid" in parts:
        lines += [
            "## Multigrid against PyAMG",
            "",
            "irsolve's geometric multigrid (alone and as the preconditioner of flexible CG) "
            "beside PyAMG's smoothed aggregation with CG on the same problems, tolerance and "
            "machine; PyAMG's time includes building its hierarchy.",
            "",
        ]
    return "\n".join(lines)
