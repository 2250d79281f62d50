"""What the safe overwrite costs: publishing a dataset against writing it.

``make_darcy_dataset(..., overwrite=True)`` over an existing dataset, with
the three publishing steps of :mod:`irsolve.data.atomic_folder` timed inside
the same run: the ``fsync`` of every file before the swap, the swap itself
(two renames, the parent's ``fsync``, deleting the replaced dataset) and the
scan for killed runs' work folders. Each is printed as seconds and as a
fraction of the whole run (simulate + write HDF5 + stats.yaml + publish).

    python benchmarks/bench_dataset_publish.py [--n 512] [--resolution 63]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from irsolve.data import atomic_folder, well_format
from irsolve.data.generate import make_darcy_dataset


def timed(spent: dict[str, float], key: str, fn: Callable[..., object]) -> Callable[..., object]:
    """``fn`` that adds its wall time to ``spent[key]``."""

    def wrapper(*args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - start

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512, help="samples (all in train)")
    parser.add_argument("--resolution", type=int, default=63)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spent: dict[str, float] = {}
    sync, publish = atomic_folder._sync, well_format.publish
    atomic_folder._sync = timed(spent, "fsync files", sync)
    well_format.publish = timed(spent, "publish", publish)
    well_format.clean_interrupted = timed(spent, "scan", well_format.clean_interrupted)
    with tempfile.TemporaryDirectory() as tmp:
        make_darcy_dataset(tmp, args.n, 0, 0, resolution=args.resolution, seed=1)
        spent.clear()
        start = time.perf_counter()
        root = make_darcy_dataset(tmp, args.n, 0, 0, resolution=args.resolution, overwrite=True)
        total = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
    spent["swap (renames, fsync parent, delete old)"] = spent.pop("publish") - spent["fsync files"]
    print(
        f"darcy {args.n} samples at {args.resolution}^2, {size / 2**20:.1f} MiB, "
        f"overwriting a dataset of the same size: {total:.2f} s in all (1 torch thread)"
    )
    for key, seconds in spent.items():
        print(f"  {key:42s} {seconds:7.3f} s  ({seconds / total:6.1%} of the run)")


if __name__ == "__main__":
    main()
