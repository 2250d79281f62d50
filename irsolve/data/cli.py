"""``irsolve data``: generate datasets in The Well's layout and inspect HDF5 files.

``irsolve data generate {navier_stokes,darcy,poisson} --n N --resolution R
--seed S --out DIR`` writes ``DIR/<name>/`` (splits 80/10/10 by default);
``irsolve data info PATH`` prints the layout, fields, shapes and splits of a
dataset folder or a single file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import torch
import yaml

from irsolve.data.generate import (
    make_darcy_dataset,
    make_navier_stokes_dataset,
    make_poisson_dataset,
)
from irsolve.data.well_format import SPLITS, field_specs

__all__ = ["add_subcommands", "split_counts"]

_DEFAULT_RESOLUTION = {"navier_stokes": 64, "darcy": 63, "poisson": 63}


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``data generate`` and ``data info`` under ``irsolve``."""
    data = subparsers.add_parser("data", help="generate or inspect datasets (The Well's layout)")
    data.set_defaults(handler=lambda args: _print_help(data))
    commands = data.add_subparsers(dest="data_command", metavar="COMMAND")

    generate = commands.add_parser("generate", help="simulate and write a dataset")
    generate.add_argument("problem", choices=sorted(_DEFAULT_RESOLUTION))
    generate.add_argument("--n", type=int, required=True, help="samples over all splits")
    generate.add_argument("--resolution", type=int, help="grid points per side")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--out", type=Path, required=True, help="parent folder")
    generate.add_argument("--name", help="dataset name (default: the problem)")
    generate.add_argument(
        "--split", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VALID", "TEST")
    )
    generate.add_argument("--steps", type=int, default=10, help="frames per trajectory (NS)")
    generate.add_argument("--record-dt", type=float, default=1.0, help="time between frames (NS)")
    generate.add_argument("--viscosity", type=float, default=1e-3, help="(NS)")
    generate.add_argument("--burn-in", type=float, default=0.0, help="time before frame 0 (NS)")
    generate.add_argument("--velocity", action="store_true", help="also store velocity (NS)")
    generate.add_argument("--overwrite", action="store_true")
    generate.add_argument(
        "--threads", type=int, help="torch threads (one is fastest on a busy machine)"
    )
    generate.set_defaults(handler=_generate)

    info = commands.add_parser("info", help="print the layout of a dataset folder or file")
    info.add_argument("path", type=Path)
    info.set_defaults(handler=_info)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def split_counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Round ``n`` samples into train/valid/test by ``fractions`` (train gets the remainder)."""
    if n < 1 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ValueError(f"expected n >= 1 and non-negative fractions, got {n} and {fractions}")
    total = sum(fractions)
    valid = int(round(n * fractions[1] / total))
    test = int(round(n * fractions[2] / total))
    train = n - valid - test
    if train < 1:
        raise ValueError(f"split {fractions} of {n} samples leaves no training sample")
    return train, valid, test


def _generate(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    try:
        counts = split_counts(args.n, tuple(args.split))
        common = {
            "resolution": args.resolution or _DEFAULT_RESOLUTION[args.problem],
            "seed": args.seed,
            "name": args.name or args.problem,
            "overwrite": args.overwrite,
            "progress": True,
        }
        if args.problem == "navier_stokes":
            path = make_navier_stokes_dataset(
                args.out,
                *counts,
                n_steps=args.steps,
                record_dt=args.record_dt,
                viscosity=args.viscosity,
                burn_in=args.burn_in,
                velocity=args.velocity,
                **common,
            )
        elif args.problem == "darcy":
            path = make_darcy_dataset(args.out, *counts, **common)
        else:
            path = make_poisson_dataset(args.out, *counts, **common)
    except FileExistsError as err:
        print(
            f"irsolve data generate: {err.args[0].split(';')[0]}; pass --overwrite", file=sys.stderr
        )
        return 2
    except ValueError as err:
        print(f"irsolve data generate: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} (train/valid/test = {counts[0]}/{counts[1]}/{counts[2]})")
    return 0


def _info(args: argparse.Namespace) -> int:
    path: Path = args.path
    try:
        if path.is_file():
            print(_describe_file(path))
            return 0
        if not (path / "data").is_dir():
            raise FileNotFoundError(f"{path}: expected a .hdf5 file or a folder with data/")
        print(f"dataset {path.name} ({path})")
        for split in SPLITS:
            files = sorted((path / "data" / split).glob("*.hdf5"))
            trajectories = 0
            for file in files:
                with h5py.File(file, "r") as f:
                    trajectories += int(f.attrs.get("n_trajectories", 0))
            print(f"  {split}: {len(files)} file(s), {trajectories} trajectories")
        files = [f for s in SPLITS for f in sorted((path / "data" / s).glob("*.hdf5"))]
        if not files:
            raise FileNotFoundError(f"{path}: no .hdf5 file in any split")
        print(_describe_file(files[0]))
        stats = path / "stats.yaml"
        if stats.is_file():
            table = yaml.safe_load(stats.read_text())
            print(f"stats.yaml: {', '.join(sorted(table))}")
            for name in table.get("mean", {}):
                print(f"  {name}: mean {table['mean'][name]}, std {table['std'][name]}")
        else:
            print("stats.yaml: missing")
    except (OSError, ValueError) as err:
        print(f"irsolve data info: {err}", file=sys.stderr)
        return 2
    return 0


def _describe_file(path: Path) -> str:
    """A few lines: root attributes, dimensions, then one line per field with shape and dtype."""
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: cannot open as HDF5 (truncated or corrupt?): {err}") from err
    with f:
        lines = [f"file {path}"]
        for key in ("dataset_name", "grid_type", "n_spatial_dims", "n_trajectories"):
            lines.append(f"  @{key} = {f.attrs.get(key)}")
        params = [
            p.decode() if isinstance(p, bytes) else str(p)
            for p in f.attrs.get("simulation_parameters", [])
        ]
        lines.append("  parameters: " + ", ".join(f"{p}={f.attrs.get(p)}" for p in params))
        if "dimensions" in f:
            dims = f["dimensions"]
            lines.append("  dimensions: " + ", ".join(f"{k}{dims[k].shape}" for k in dims))
        for spec in field_specs(f):
            ds = f[spec.group][spec.name]
            lines.append(
                f"  {spec.group}/{spec.name}: shape {ds.shape} {ds.dtype}, "
                f"channels {', '.join(spec.channels)}"
            )
    return "\n".join(lines)
