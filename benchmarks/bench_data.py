"""Data generation throughput and FFT backends side by side.

1. Navier–Stokes 64²: wall time and trajectories/s of
   ``make_navier_stokes_dataset`` (simulate + write HDF5 + stats.yaml) for
   ``--n`` trajectories of ``--steps`` frames, against the goal of 256
   trajectories of T = 10 in 120 s; and the bare simulation (batches of 64,
   as the dataset writer runs it) on the default torch threads versus one.
2. FFT backends on the shapes the code uses (``rfft2`` + ``irfft2`` of a
   ``(B, n, n)`` float64 batch, B = 64 per file and 256): ``torch.fft`` (on
   the default threads and on one), ``scipy.fft`` with pyFFTW registered as
   its backend, and ``numpy.fft``;
   median of ``--repeats`` runs, ratio against ``torch.fft`` measured in the
   same run.

    python benchmarks/bench_data.py [--n 256] [--steps 10] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import pyfftw
import pyfftw.interfaces.scipy_fft
import scipy.fft
import torch
from timing import wall_times

from irsolve.data import NavierStokes2D, default_forcing, make_navier_stokes_dataset
from irsolve.data.navier_stokes import random_vorticity

GOAL_SECONDS = 120.0


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one warm-up."""
    return statistics.median(wall_times(fn, repeats))


def bench_navier_stokes(n: int, steps: int) -> None:
    threads = torch.get_num_threads()
    print(f"Navier-Stokes 64^2, nu = 1e-3, record_dt = 1, {n} trajectories x {steps} frames")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        make_navier_stokes_dataset(tmp, n, 0, 0, resolution=64, n_steps=steps)
        elapsed = time.perf_counter() - start
    goal = GOAL_SECONDS * n / 256 * steps / 10
    print(
        f"  make_navier_stokes_dataset ({threads} threads): {elapsed:7.2f} s  "
        f"{n / elapsed:6.2f} traj/s  (goal {goal:.0f} s: {elapsed / goal:.2f} of it)"
    )
    solver = NavierStokes2D(64, 1e-3, default_forcing(64))
    w0 = random_vorticity(n, 64, generator=torch.Generator().manual_seed(0))
    timings = {}
    for count in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(count)
        start = time.perf_counter()
        for chunk in w0.split(64):
            solver.simulate(chunk, steps, 1.0)
        timings[count] = time.perf_counter() - start
    torch.set_num_threads(threads)
    for count, seconds in timings.items():
        print(
            f"  simulate in batches of 64, {count} torch thread(s): {seconds:7.2f} s  "
            f"(ratio to {threads} threads: {seconds / timings[threads]:.2f})"
        )


def fft_torch(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.irfft2(torch.fft.rfft2(x), s=x.shape[-2:])


def fft_scipy_pyfftw(x: np.ndarray) -> np.ndarray:
    workers = torch.get_num_threads()
    with scipy.fft.set_backend(pyfftw.interfaces.scipy_fft):
        return scipy.fft.irfft2(
            scipy.fft.rfft2(x, workers=workers), s=x.shape[-2:], workers=workers
        )


def fft_numpy(x: np.ndarray) -> np.ndarray:
    return np.fft.irfft2(np.fft.rfft2(x), s=x.shape[-2:])


def bench_fft(repeats: int) -> None:
    pyfftw.interfaces.cache.enable()
    pyfftw.config.NUM_THREADS = torch.get_num_threads()
    print(f"rfft2 + irfft2, float64, {torch.get_num_threads()} threads (numpy.fft: 1)")
    for batch in (64, 256):
        x = np.random.default_rng(0).standard_normal((batch, 64, 64))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        torch_single = median_time(partial(fft_torch, torch.from_numpy(x)), repeats)
        torch.set_num_threads(threads)
        results = {
            "torch.fft": median_time(partial(fft_torch, torch.from_numpy(x)), repeats),
            "torch.fft 1 thread": torch_single,
            "scipy.fft+pyfftw": median_time(partial(fft_scipy_pyfftw, x), repeats),
            "numpy.fft": median_time(partial(fft_numpy, x), repeats),
        }
        best = min(results, key=results.get)
        for name, seconds in results.items():
            print(
                f"  ({batch}, 64, 64) {name:18s} {1e3 * seconds:8.3f} ms  "
                f"ratio to torch.fft {seconds / results['torch.fft']:5.2f}"
            )
        print(f"  fastest on ({batch}, 64, 64): {best}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="NS trajectories (0: FFTs only)")
    parser.add_argument("--steps", type=int, default=10, help="frames per trajectory")
    parser.add_argument("--repeats", type=int, default=20, help="FFT timing repeats")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_fft(args.repeats)
    if args.n > 0:
        bench_navier_stokes(args.n, args.steps)


if __name__ == "__main__":
    main()
