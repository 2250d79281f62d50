"""Accuracy of ``lipschitz`` against dense references, in the 2-norm and the energy norm.

Darcy problems (FNO-style coefficients 3 / 12, ``--n`` points per side, batch
``--batch``, seed 0) and two classical steps: weighted Jacobi (omega 0.8) and
red-black Gauss-Seidel. For each step it prints, per method (power, Lanczos)
and norm (``l2``, ``energy``), the worst relative error over the batch of
``lipschitz`` with its defaults (20 products, early stop at a relative
change of 1e-3) against the dense reference, and the wall time of the
estimate beside the time of the dense reference:

* 2-norm: ``||E||_2`` by ``numpy.linalg.norm(E, 2)`` (LAPACK SVD);
* energy norm: ``||A^{1/2} E A^{-1/2}||_2`` with ``A^{1/2}`` from
  ``numpy.linalg.eigh(A)``;

where ``E`` is the step's error propagation, built column by column (the
step applied to unit vectors with ``f = 0``) and ``A`` the problem's matrix
(``to_scipy``). Single CPU thread.

    python benchmarks/bench_lipschitz.py [--n 15] [--batch 4] [--quick]

Measured (2-core CPU, shared; n = 15, batch 4), worst relative error, power /
Lanczos: Jacobi 2-norm (dense 0.986-1.004) -1.6e-2 / -2.4e-4, energy norm
(0.983-0.987) -2.7e-2 / -3.6e-4; Gauss-Seidel 2-norm (1.374-1.423) -1.0e-2 /
-2.2e-4, energy norm (0.979-0.984) -2.8e-2 / -5.0e-4. Lanczos 0.1-0.5 s per
estimate, the dense references 1.1 s (Jacobi) and 4.1 s (Gauss-Seidel).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from irsolve.analysis import lipschitz
from irsolve.solvers import Darcy2D, GaussSeidel, Jacobi, darcy_coefficient, gaussian_random_field


def error_propagation(solver: object, a: torch.Tensor) -> np.ndarray:
    """Dense ``E`` of one step on ``Darcy2D(a)`` (one sample): column ``j`` is ``step(e_j)``."""
    n = a.shape[-1]
    size = n * n
    zero_rhs = Darcy2D(a.repeat(size, 1, 1, 1), f=0.0)
    basis = torch.eye(size, dtype=torch.float64).reshape(size, 1, n, n)
    return solver.step(solver.prepare(zero_rhs), basis, 0).reshape(size, size).T.numpy()


def dense_norms(solver: object, problem: Darcy2D) -> dict[str, np.ndarray]:
    """The 2-norm and the energy norm of each sample's ``E``."""
    l2, energy = [], []
    for b, matrix in enumerate(problem.to_scipy()):
        step = error_propagation(solver, problem.a[b : b + 1])
        lam, vec = np.linalg.eigh(matrix.toarray())
        half = vec @ np.diag(np.sqrt(lam)) @ vec.T
        inverse_half = vec @ np.diag(1.0 / np.sqrt(lam)) @ vec.T
        l2.append(np.linalg.norm(step, 2))
        energy.append(np.linalg.norm(half @ step @ inverse_half, 2))
    return {"l2": np.array(l2), "energy": np.array(energy)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="n = 10, batch 2")
    args = parser.parse_args()
    if args.quick:
        args.n, args.batch = 10, 2
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    a = darcy_coefficient(gaussian_random_field(args.batch, args.n, generator=gen))
    problem = Darcy2D(a)
    h = torch.randn(args.batch, 1, args.n, args.n, dtype=torch.float64, generator=gen)
    print(f"Darcy {args.n}x{args.n}, batch {args.batch}; relative error of lipschitz vs dense")
    print(
        f"{'step':>12} {'norm':>7} {'dense':>17} {'method':>8} {'worst rel. error':>17} "
        f"{'estimate s':>11} {'dense s':>8}"
    )
    for name, solver in (("Jacobi", Jacobi(omega=0.8)), ("GaussSeidel", GaussSeidel())):
        start = time.perf_counter()
        exact = dense_norms(solver, problem)
        dense_s = time.perf_counter() - start
        for norm in ("l2", "energy"):
            for method in ("power", "lanczos"):
                start = time.perf_counter()
                estimate = lipschitz(
                    solver,
                    problem,
                    h,
                    method=method,
                    norm=norm,
                    generator=torch.Generator().manual_seed(1),
                ).numpy()
                seconds = time.perf_counter() - start
                error = estimate / exact[norm] - 1.0
                worst = error[np.argmax(np.abs(error))]
                shown = f"{exact[norm].min():.4f}-{exact[norm].max():.4f}"
                print(
                    f"{name:>12} {norm:>7} {shown:>17} {method:>8} {worst:>17.2e} "
                    f"{seconds:>11.3f} {dense_s:>8.3f}"
                )


if __name__ == "__main__":
    main()
