"""Cost of one refiner training step (loss + backward) against a hand-written unroll.

:class:`~irsolve.learned.training.RefinerObjective` unrolls the refiner through the
solve engine (``irsolve.init`` with ``grad=True``); the peer is the same
Algorithm-1 loss written as a bare loop ``h <- h + alpha * net([x; h])``
with the same per-step losses, measured in the same run. Both use a
reference-shaped U-Net (base width 8, depth 3) on a batch of 8 at 32x32,
K = 6 steps. The two losses are checked equal before timing.

    python benchmarks/bench_training_step.py [--repeats 15] [--K 6] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from timing import elapsed

from irsolve.learned.losses import mse, progressive_spectral_loss
from irsolve.learned.nets import RefinementUNet
from irsolve.learned.training import RefinerConfig, RefinerObjective


def hand_unroll_loss(
    net: torch.nn.Module, x: torch.Tensor, h0: torch.Tensor, y: torch.Tensor, cfg: RefinerConfig
) -> torch.Tensor:
    """Mean over k of ``mse(h_k, y) + beta_s L_spec(h_k, y; lambda_k)``, written out by hand."""
    h, total = h0, 0.0
    for k in range(cfg.K):
        h = h + cfg.alpha * net(torch.cat([x, h], dim=1))
        spec = progressive_spectral_loss(h, y, k, cfg.K, cfg.lam_start, cfg.lam_end)
        total = total + mse(h, y) + cfg.beta_s * spec
    return total / cfg.K


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--K", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="5 repeats (CI-sized)")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 5
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, args.size, args.size)
    y = torch.roll(x, 1, -1)
    h0 = y + 0.3 * torch.randn_like(y)
    net = RefinementUNet(2, 1, base_channels=8, depth=3, norm="group")
    cfg = RefinerConfig(K=args.K, beta_fp=0.0)
    objective = RefinerObjective(lambda _: h0, net, cfg)

    def engine_step() -> None:
        net.zero_grad(set_to_none=True)
        objective.loss(x, y, 1.0)[0].backward()

    def hand_step() -> None:
        net.zero_grad(set_to_none=True)
        hand_unroll_loss(net, x, h0, y, cfg).backward()

    engine_loss = objective.loss(x, y, 1.0)[0]
    hand_loss = hand_unroll_loss(net, x, h0, y, cfg)
    assert torch.allclose(engine_loss, hand_loss, rtol=1e-6), (engine_loss, hand_loss)

    engine_step(), hand_step()  # warm-up
    t_engine, t_hand = [], []
    for _ in range(args.repeats):  # interleaved, so drifting load hits both alike
        t_hand.append(elapsed(hand_step))
        t_engine.append(elapsed(engine_step))
    hand_s, engine_s = statistics.median(t_hand), statistics.median(t_engine)
    print(
        f"batch {args.batch}, {args.size}x{args.size}, K={args.K}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"{'hand unroll':<20} {hand_s * 1e3:9.2f} ms per loss + backward")
    print(f"{'RefinerObjective':<20} {engine_s * 1e3:9.2f} ms per loss + backward")
    ratio = engine_s / hand_s
    print(f"ratio objective/hand unroll: {ratio:.4f}  (overhead {100 * (ratio - 1):+.2f} %)")


if __name__ == "__main__":
    main()
