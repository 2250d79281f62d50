"""Cost of committing an epoch's checkpoints as a verified set, against plain ``torch.save``.

The payload is what :func:`irsolve.learned.training.fit` writes for the paper's
refinement U-Net (depth 4, width 16, 2.16 M parameters) with AdamW
state: ``last`` and ``best`` each as ``.pt`` plus ``.json``. The set
(:func:`irsolve.learned.checkpoint.commit_checkpoints`: staged files flushed to disk,
SHA-256 per file, manifest, renames) is timed against the peer it replaced,
two ``torch.save`` calls to the final names, and loading with the manifest
check against a bare ``torch.load(weights_only=True)``. Prints the median of
``--repeats`` runs and the ratios.

Run: ``python benchmarks/bench_checkpoint.py`` (about 10 s on 2 CPU cores).
Measured there (25 MiB per file, load average 4-5 from other jobs): commit
165 ms against 92-108 ms for the two ``torch.save`` calls (ratio 1.6-1.8,
the peer without flush to disk), checked load 82 ms against 39 ms (ratio
2.1): well under a second per epoch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from timing import wall_times  # noqa: E402

from irsolve.learned.checkpoint import commit_checkpoints, load_checkpoint, model_state  # noqa: E402
from irsolve.learned.nets import RefinementUNet  # noqa: E402


def _payload() -> dict:
    torch.manual_seed(0)
    net = RefinementUNet(2, 1)
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-4)
    net(torch.randn(2, 2, 32, 32)).square().mean().backward()
    optimizer.step()  # fills the two moment buffers
    return {"model": model_state(net), "optimizer": optimizer.state_dict(), "epoch": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    payload = _payload()
    summary = {"epoch": 1}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sets = wall_times(
            lambda: commit_checkpoints(
                folder / "set", 1, {"last": (payload, summary), "best": (payload, summary)}
            ),
            args.repeats,
        )
        plain = wall_times(
            lambda: [torch.save(payload, folder / f"{n}.pt") for n in ("last", "best")],
            args.repeats,
        )
        size = (folder / "last.pt").stat().st_size
        checked = wall_times(lambda: load_checkpoint(folder / "set" / "last.pt"), args.repeats)
        bare = wall_times(lambda: torch.load(folder / "last.pt", weights_only=True), args.repeats)
    commit, save = statistics.median(sets), statistics.median(plain)
    load, raw = statistics.median(checked), statistics.median(bare)
    print(f"payload: {size / 2**20:.1f} MiB per .pt file (U-Net 16/4 + AdamW state)")
    print(f"commit last+best as a set: {commit * 1e3:8.1f} ms")
    print(f"torch.save last+best:      {save * 1e3:8.1f} ms   ratio {commit / save:.2f}")
    print(f"load_checkpoint (checked): {load * 1e3:8.1f} ms")
    print(f"torch.load weights_only:   {raw * 1e3:8.1f} ms   ratio {load / raw:.2f}")


if __name__ == "__main__":
    main()
