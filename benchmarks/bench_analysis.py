"""Cost of the contraction analysis (irsolve.analysis) on a learned refinement step.

Prints, every figure measured in this run on this machine:

1. ``lipschitz`` (power iteration and Lanczos, 20 JVP+VJP pairs each) and
   the empirical difference-quotient estimate on a batch of 32 at 64^2, in
   seconds and in *forward-equivalents per sample* (time over the time of
   one batched step).
2. Beside their peer, the dense Jacobian (``torch.func.jacrev``) plus an
   SVD, on one sample at a size where the dense Jacobian still fits: time
   ratio and relative error of each estimate after 20 pairs.
3. A full ``contraction_certificate`` with its defaults (Lanczos, at most 20
   pairs per point, tol 1e-3; 12 observed steps, 4 probes) for a batch of 32
   at 64^2, beside the 12 plain refinement steps it certifies: time ratio.

The learned step is ``irsolve.solvers.Refiner`` around a small randomly
initialised network (``--net conv``: three 3x3 convolutions of width 16 with
GELU; ``--net unet``: ``RefinementUNet`` of base width 8 and depth 2). Weights
are random: the figures are about cost, not about a trained model.

Run: ``python benchmarks/bench_analysis.py`` (``--quick`` for batch 8 at 32^2).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import torch
from timing import wall_times
from torch import nn

from irsolve.analysis import contraction_certificate, lipschitz
from irsolve.analysis.certificate import iterate
from irsolve.analysis.stepmap import StepMap
from irsolve.learned.nets import RefinementUNet
from irsolve.solvers.refiner import Refiner


def seconds(fn: Callable[[], object], repeat: int) -> float:
    """Shortest wall time of ``repeat`` calls after one warm-up (robust to other load)."""
    return min(wall_times(fn, repeat))


def small_net(kind: str) -> nn.Module:
    """Phi([x; h]) with 2 input channels and 1 output channel, random weights, eval mode."""
    torch.manual_seed(0)
    if kind == "conv":
        net = nn.Sequential(
            nn.Conv2d(2, 16, 3, padding=1, padding_mode="circular"),
            nn.GELU(),
            nn.Conv2d(16, 16, 3, padding=1, padding_mode="circular"),
            nn.GELU(),
            nn.Conv2d(16, 1, 3, padding=1, padding_mode="circular"),
        )
    else:
        net = RefinementUNet(2, 1, base_channels=8, depth=2)
    return net.eval().requires_grad_(False)


#: JVP+VJP pairs of every spectral-norm estimate timed here.
PAIRS = 20


def step_time(step: StepMap, h0: torch.Tensor) -> float:
    """Shortest time of one batched step (the unit of the forward-equivalents)."""
    with torch.no_grad():
        return seconds(lambda: step(h0), repeat=10)


def lipschitz_costs(
    refiner: Refiner, step: StepMap, x: torch.Tensor, h0: torch.Tensor, repeat: int, t_step: float
) -> float:
    """Print part 1 (the batch's Lipschitz estimates); return the fastest step time seen."""
    estimates, timings = {}, {}
    for method in ("power", "lanczos"):

        def run(method: str = method) -> torch.Tensor:
            return lipschitz(refiner, x, h0, method=method, iters=PAIRS, spectral_tol=0.0)

        timings[method] = seconds(run, repeat)
        estimates[method] = run()
    t_emp = seconds(lambda: lipschitz(refiner, x, h0, method="empirical", n_pairs=16), repeat)
    emp = lipschitz(refiner, x, h0, method="empirical", n_pairs=16)
    t_step = min(t_step, step_time(step, h0))
    print("1. local Lipschitz constant of the step, whole batch")
    print(f"   one batched step:            {t_step * 1e3:9.1f} ms  (1 forward-equivalent)")
    for method, t in timings.items():
        print(
            f"   {method:8s} {PAIRS} JVP+VJP pairs:  {t * 1e3:9.1f} ms  = "
            f"{t / t_step:6.1f} forward-equivalents per sample ({t / t_step / PAIRS:.2f} per pair)"
        )
    print(
        f"   empirical, 16 pairs:         {t_emp * 1e3:9.1f} ms  = "
        f"{t_emp / t_step:6.1f} forward-equivalents per sample"
    )
    lanczos = estimates["lanczos"]
    print(
        f"   medians over samples: lanczos {lanczos.median():.5f}, power / lanczos "
        f"{float((estimates['power'] / lanczos).median()):.5f}, empirical / lanczos "
        f"{float((emp / lanczos).median()):.4f}\n"
    )
    return t_step


def dense_comparison(
    refiner: Refiner, x: torch.Tensor, h0: torch.Tensor, dense_n: int, repeat: int
) -> None:
    """Print part 2: the estimates against the dense Jacobian's SVD on one small sample."""
    xs, hs = x[:1, :, :dense_n, :dense_n], h0[:1, :, :dense_n, :dense_n]
    one = StepMap(refiner, xs)

    def dense_norm() -> torch.Tensor:
        jac = torch.func.jacrev(lambda v: one(v.view_as(hs)).flatten())(hs.flatten())
        return torch.linalg.matrix_norm(jac.double(), ord=2)

    t_dense = seconds(dense_norm, repeat)
    exact = float(dense_norm())
    print(f"2. one sample at {dense_n}^2 ({dense_n**2} unknowns), {PAIRS} pairs vs dense + SVD")
    print(f"   dense jacrev + SVD:          {t_dense * 1e3:9.1f} ms   ||J|| = {exact:.6f}")
    for method in ("power", "lanczos"):

        def small(method: str = method) -> torch.Tensor:
            return lipschitz(refiner, xs, hs, method=method, iters=PAIRS, spectral_tol=0.0)

        t = seconds(small, repeat)
        error = abs(float(small()[0]) - exact) / exact
        print(
            f"   {method:8s}                     {t * 1e3:9.1f} ms   dense / {method} time "
            f"{t_dense / t:5.1f}x, relative error {error:.1e}"
        )
    print()


def certificate_cost(
    refiner: Refiner,
    step: StepMap,
    x: torch.Tensor,
    y: torch.Tensor,
    h0: torch.Tensor,
    repeat: int,
    t_step: float,
) -> None:
    """Print part 3: a default certificate against the 12 steps it certifies."""
    batch, n = x.shape[0], x.shape[-1]
    t_traj = seconds(lambda: iterate(refiner, x, h0, 12), repeat)
    cert_kwargs = {"h0": h0, "steps": 12, "n_probe": 4}
    start = time.perf_counter()  # one run: every kernel was warmed up above
    cert = contraction_certificate(refiner, x, y, **cert_kwargs)
    t_cert = time.perf_counter() - start
    t_step = min(t_step, t_traj / 12, step_time(step, h0))
    print(f"3. full certificate, batch {batch} at {n}^2 (defaults; 12 steps, 4 probes)")
    print(f"   12 plain refinement steps:   {t_traj:9.2f} s")
    print(
        f"   contraction_certificate:     {t_cert:9.2f} s  = {t_cert / t_traj:.1f}x the "
        f"steps it certifies, {t_cert / t_step:.0f} forward-equivalents per sample"
    )
    print(
        f"   (random weights) q median {cert.q.median():.3f}, holds for "
        f"{int(cert.holds.sum())}/{batch}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 8 at 32^2")
    parser.add_argument("--net", choices=("conv", "unet"), default="conv")
    args = parser.parse_args()
    batch, n = (8, 32) if args.quick else (32, 64)
    dense_n = 16 if args.quick else 24
    repeat = 3

    refiner = Refiner(small_net(args.net), alpha=0.2)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, n, n, generator=gen)
    y = torch.randn(batch, 1, n, n, generator=gen)
    h0 = y + 0.3 * torch.randn(batch, 1, n, n, generator=gen)
    step = StepMap(refiner, x)
    print(
        f"machine: {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; net {args.net}; batch {batch} at {n}^2\n"
    )
    # Forward-equivalents divide by the fastest step seen over the whole run (the
    # machine is shared); the step is timed again after the expensive parts.
    t_step = lipschitz_costs(refiner, step, x, h0, repeat, step_time(step, h0))
    dense_comparison(refiner, x, h0, dense_n, repeat)
    certificate_cost(refiner, step, x, y, h0, repeat, t_step)


if __name__ == "__main__":
    main()
