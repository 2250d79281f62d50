"""Anderson acceleration: ``irsolve.Anderson`` against torchdeq's ``anderson_solver``.

The map is affine, ``G(h) = M h + c`` per sample, with ``M = Q diag(lambda) Q^T``
symmetric (``Q`` Haar-random orthogonal), ``n = 64`` unknowns, batch 8, and
``c`` standard normal. ``--spectrum symmetric`` (default) draws ``lambda``
uniformly in ``[-0.99, 0.99]`` with both ends present; ``--spectrum positive``
draws it in ``[0, 0.99]`` with ``0.99`` present. Either way plain iteration
contracts by 0.99 per step (about 2,000 steps to the target); the symmetric
case is the harder one for Anderson, since ``I - M`` then has condition number
199 instead of 100 (Anderson with full memory is GMRES on ``(I - M) h = c``,
Walker & Ni 2011).

For each history length ``m`` it prints, for irsolve and for each peer
measured in the same run (a plain type-II least-squares reference written
here in NumPy, one sample at a time; torchdeq's ``anderson_solver`` with its
default ``lam = 1e-4`` and with ``lam = 1e-10``, added to the Gram matrix of
the unscaled residuals, which it solves by the normal equations): the number
of map evaluations until every sample's RMS error ``||h - h*|| / sqrt(n)`` is
at most ``--target`` (``h*`` from a dense solve), the wall time of that many
evaluations (median of ``--repeats``; for a peer that never reaches the
target, of ``--maxiter``), the ratios irsolve / peer, and the lowest
worst-sample error the peer reached. torchdeq's iterate after ``j``
evaluations is the one it would return there (the lowest-residual image so
far). Single CPU thread.

    python benchmarks/bench_anderson.py [--spectrum symmetric|positive] [--repeats 5] [--quick]

Measured (2-core CPU shared with other jobs, one thread, ``--repeats 3``;
wall times are noisy to about 30 %):

* symmetric: plain iteration 2157 steps. m = 6 / 20 / 64: irsolve 655 / 212 /
  58 steps, the NumPy reference the same 655 / 212 / 58 (irsolve / NumPy time
  1.46 / 2.00 / 1.20: per-step overhead of torch on 8 x 64 unknowns).
  torchdeq (lam 1e-4) gets no lower than 3.8e-5 / 6.9e-4 / 6.8e-3 in 3000
  evaluations; with lam 1e-10 it reaches 1e-8 only at m = 64, in 1261 (irsolve
  0.05 of its steps, 0.09 of its time).
* positive: irsolve 381 / 133 / 57, NumPy 381 / 134 / 56; torchdeq reaches
  1e-8 at no m (best 5.8e-5 / 1.2e-3 / 5.8e-3 with lam 1e-4; 8.3e-8 / 4.8e-6 /
  4.5e-8 with lam 1e-10).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from timing import wall_times
from torch import Tensor

from irsolve import Anderson, FixedPointSolver, init, solve


class Affine(FixedPointSolver):
    """``G(h) = M h + c`` per sample; ``h`` is ``(B, n)``."""

    def __init__(self, matrix: Tensor, shift: Tensor) -> None:
        self.matrix, self.shift = matrix, shift

    def prepare(self, x: object) -> tuple[Tensor, Tensor]:
        return self.matrix, self.shift

    def step(self, ctx: tuple[Tensor, Tensor], h: Tensor, k: int) -> Tensor:
        return self(h)

    def __call__(self, h: Tensor) -> Tensor:
        return torch.einsum("bij,bj->bi", self.matrix, h) + self.shift


def make_case(spectrum: str, batch: int = 8, n: int = 64, q: float = 0.99) -> Affine:
    """The affine map described in the module docstring (seed 0)."""
    gen = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(batch, n, n, dtype=torch.float64, generator=gen))
    low = -q if spectrum == "symmetric" else 0.0
    eigenvalues = torch.empty(batch, n, dtype=torch.float64).uniform_(low, q, generator=gen)
    eigenvalues[:, 0], eigenvalues[:, 1] = q, low
    matrix = basis @ torch.diag_embed(eigenvalues) @ basis.transpose(1, 2)
    return Affine(matrix, torch.randn(batch, n, dtype=torch.float64, generator=gen))


def rms_error(h: Tensor, exact: Tensor) -> Tensor:
    return (h - exact).square().mean(dim=1).sqrt()


def irsolve_steps(solver: FixedPointSolver, exact: Tensor, target: float, maxiter: int) -> int:
    """Evaluations of ``G`` until every sample's RMS error is <= ``target``."""
    h0 = torch.zeros_like(exact)
    for state in init(h0, solver, h0, tol=0.0, maxiter=maxiter):
        if bool((rms_error(state.current_iterates(), exact) <= target).all()):
            return state.k
    return -1


def torchdeq_steps(
    amap: Affine, m: int, *, lam: float, exact: Tensor, target: float, maxiter: int
) -> tuple[int, float]:
    """torchdeq's evaluations of ``G`` until every RMS error <= target (-1: never), and the
    lowest worst-sample RMS error it reached."""
    from torchdeq.solver.anderson import anderson_solver

    steps = list(range(3, maxiter + 1))  # it evaluates G twice before its first mixing step
    _, iterates, _ = anderson_solver(
        amap, torch.zeros_like(exact), max_iter=maxiter, tol=0.0, m=m, lam=lam, indexing=steps
    )
    errors = [float(rms_error(h, exact).max()) for h in iterates]
    reached = [count for count, e in zip(steps, errors, strict=True) if e <= target]
    return (reached[0] if reached else -1), min(errors)


def lstsq_reference(
    amap: Affine, m: int, *, exact: Tensor, target: float, maxiter: int
) -> tuple[int, float]:
    """Plain type-II Anderson, one sample at a time in NumPy: ``theta`` from ``numpy.linalg.lstsq``
    (SVD) on the differences ``f_k - f_i``, ``h_{k+1} = G(h_k) - sum_i theta_i (G(h_k) - G(h_i))``.
    Returns the evaluations of ``G`` until every RMS error <= target (-1: never) and the lowest
    worst-sample RMS error."""
    matrices, shifts, solutions = amap.matrix.numpy(), amap.shift.numpy(), exact.numpy()
    errors = np.zeros((matrices.shape[0], maxiter))
    for b, (matrix, shift) in enumerate(zip(matrices, shifts, strict=True)):
        iterates, images = [], []
        h = np.zeros_like(shift)
        for k in range(maxiter):
            iterates.append(h)
            images.append(matrix @ h + shift)
            iterates, images = iterates[-m:], images[-m:]
            residuals = [g - x for g, x in zip(images, iterates, strict=True)]
            if len(iterates) == 1:
                h = images[-1]
            else:
                diff = np.stack([residuals[-1] - r for r in residuals[:-1]], axis=1)
                theta = np.linalg.lstsq(diff, residuals[-1], rcond=None)[0]
                image_diff = np.stack([images[-1] - g for g in images[:-1]], axis=1)
                h = images[-1] - image_diff @ theta
            errors[b, k] = np.sqrt(np.mean((h - solutions[b]) ** 2))
    worst = errors.max(axis=0)
    reached = np.flatnonzero(worst <= target)
    return (int(reached[0]) + 1 if reached.size else -1), float(worst.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spectrum", choices=("symmetric", "positive"), default="symmetric")
    parser.add_argument("--target", type=float, default=1e-8)
    parser.add_argument("--maxiter", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="one timed repeat and at most 1000 evaluations"
    )
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.maxiter = 1, min(args.maxiter, 1000)
    torch.set_num_threads(1)

    amap = make_case(args.spectrum)
    eye = torch.eye(amap.matrix.shape[-1], dtype=torch.float64)
    exact = torch.linalg.solve(eye - amap.matrix, amap.shift)
    h0 = torch.zeros_like(exact)
    plain = irsolve_steps(amap, exact, args.target, args.maxiter)
    print(f"spectrum {args.spectrum}, n=64, batch 8, target rms error {args.target:g}")
    print(f"plain iteration: {plain} steps")
    # name -> (steps and best error, the bare run of a given number of evaluations)
    peers = {
        "numpy lstsq": (
            lstsq_reference,
            lambda m, budget: lstsq_reference(
                amap, m, exact=exact, target=args.target, maxiter=budget
            ),
        )
    }
    try:
        from torchdeq.solver.anderson import anderson_solver
    except ImportError:
        print("torchdeq is not installed (pip install torchdeq==0.1.0): NumPy reference only")
    else:
        for lam in (1e-4, 1e-10):
            peers[f"torchdeq lam={lam:g}"] = (
                partial(torchdeq_steps, lam=lam),
                partial(_torchdeq_run, anderson_solver, amap, h0, lam),
            )
    print(
        f"{'m':>3} {'peer':>19} {'irsolve steps':>14} {'peer steps':>11} {'ratio':>6} "
        f"{'irsolve ms':>11} {'peer ms':>9} {'ratio':>6} {'peer best error':>16}"
    )
    for m in (6, 20, 64):
        ours = irsolve_steps(Anderson(amap, m=m), exact, args.target, args.maxiter)
        run = partial(solve, h0, Anderson(amap, m=m), h0, tol=0.0, maxiter=max(ours, 1))
        our_ms = 1e3 * statistics.median(wall_times(run, args.repeats))
        for name, (steps_of, run_of) in peers.items():
            theirs, best = steps_of(amap, m, exact=exact, target=args.target, maxiter=args.maxiter)
            budget = theirs if theirs > 0 else args.maxiter
            peer_ms = 1e3 * statistics.median(wall_times(partial(run_of, m, budget), args.repeats))
            step_ratio = f"{ours / theirs:.2f}" if theirs > 0 and ours > 0 else "-"
            shown = theirs if theirs > 0 else f">{args.maxiter}"
            print(
                f"{m:>3} {name:>19} {ours:>14} {shown:>11} {step_ratio:>6} "
                f"{our_ms:>11.1f} {peer_ms:>9.1f} {our_ms / peer_ms:>6.2f} {best:>16.2e}"
            )


def _torchdeq_run(
    solver: Callable[..., object], amap: Affine, h0: Tensor, lam: float, m: int, budget: int
) -> object:
    """torchdeq's Anderson for ``budget`` evaluations, nothing recorded (the timed run)."""
    return solver(amap, h0, max_iter=budget, tol=0.0, m=m, lam=lam)


if __name__ == "__main__":
    main()
