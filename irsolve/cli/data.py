"""``irsolve data``: generate datasets in The Well's layout and inspect HDF5 files.

``irsolve data generate {navier_stokes,darcy,poisson} --samples N --resolution R
--seed S --out DIR`` writes ``DIR/<name>/`` (``--fractions`` 0.8 0.1 0.1 by
default);
``irsolve data info PATH`` prints the layout, fields, shapes and splits of a
single file (any layout of :mod:`irsolve.data.formats`), a dataset folder, or
every complete dataset in a folder; ``--verify`` also checks a dataset's
files against the SHA-256 sums recorded when it was generated
(:mod:`irsolve.data.checksums`).

Nothing outside ``--out`` is written or deleted: ``--name`` is one plain
folder name, and ``--overwrite`` swaps the new dataset in by renames
(:mod:`irsolve.data.atomic_folder`), so a killed run leaves the complete old
or the complete new dataset. Every bad input is one ``argparse`` error line
that names the flag (exit status 2), not a traceback.
"""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Callable
from pathlib import Path

import h5py
import yaml

from irsolve._validate import check_memory
from irsolve.cli.flags import add_flags
from irsolve.cli.types import integer, path
from irsolve.data.atomic_folder import check_folder_name, is_work_folder
from irsolve.data.checksums import CHECKSUM_FILE, read_checksums, verify_checksums
from irsolve.data.formats import detect_format, load_dataset
from irsolve.data.generate import (
    TRAJECTORIES_PER_FILE,
    make_darcy_dataset,
    make_navier_stokes_dataset,
    make_poisson_dataset,
)
from irsolve.data.navier_stokes import NavierStokes2D, check_time_steps
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
    add_flags(generate, "--samples", samples={"help": "samples, all splits (required)"})
    add_flags(
        generate,
        "--resolution",
        "--out",
        resolution={
            "help": "grid points per side (default: 64 for navier_stokes, even >= 4; 63 otherwise)"
        },
        out={"required": True, "help": "parent folder (created if missing)"},
    )
    generate.add_argument("--seed", type=integer(0), default=0, help="(default: 0)")
    generate.add_argument(
        "--name", type=_folder_name, help="dataset folder name (default: the problem)"
    )
    generate.add_argument(
        "--fractions",
        type=_number_at_least_zero,
        nargs=3,
        default=(0.8, 0.1, 0.1),
        metavar=("TRAIN", "VALID", "TEST"),
        help="relative sizes of the splits (default: 0.8 0.1 0.1)",
    )
    for flag, kind, default, text in _NS_FLAGS:
        generate.add_argument(flag, type=kind, help=f"{text} (navier_stokes; default {default})")
    generate.add_argument("--velocity", action="store_true", help="also store velocity (NS)")
    generate.add_argument(
        "--overwrite", action="store_true", help="replace an existing dataset of that name"
    )
    add_flags(generate, "--threads", threads={"default": 1})
    generate.set_defaults(handler=functools.partial(_generate, generate))

    info = commands.add_parser(
        "info", help="print the layout of a dataset file, dataset folder or folder of datasets"
    )
    info.add_argument("path", type=path)
    info.add_argument(
        "--verify",
        action="store_true",
        help="check the dataset(s) against the SHA256SUMS written by data generate",
    )
    info.set_defaults(handler=functools.partial(_info, info))


def _number(text: str, low: float, strict: bool) -> float:
    """``float(text)`` if finite and ``> low`` (``strict``) or ``>= low``, else raise."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < low or (strict and value == low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
    return value


def _number_above_zero(text: str) -> float:
    """An argparse ``type``: a finite number ``> 0``."""
    return _number(text, 0.0, strict=True)


def _number_at_least_zero(text: str) -> float:
    """An argparse ``type``: a finite number ``>= 0``."""
    return _number(text, 0.0, strict=False)


def _folder_name(text: str) -> str:
    """An argparse ``type``: one plain, visible folder name."""
    try:
        return check_folder_name(text, "a dataset name")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


#: Flags of ``navier_stokes`` only: flag, argparse type, default, help.
_NS_FLAGS: tuple[tuple[str, Callable[[str], object], object, str], ...] = (
    ("--frames", integer(1), 10, "frames per trajectory"),
    ("--record-dt", _number_above_zero, 1.0, "time between frames"),
    ("--viscosity", _number_above_zero, 1e-3, "kinematic viscosity"),
    ("--burn-in", _number_at_least_zero, 0.0, "time simulated before frame 0"),
)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def split_counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Round ``n`` samples into train/valid/test by ``fractions`` (train gets the remainder)."""
    finite = all(math.isfinite(f) and f >= 0 for f in fractions)
    if n < 1 or not finite or not 0 < sum(fractions) < math.inf:
        raise ValueError(
            f"expected n >= 1 and finite non-negative fractions with a positive sum, "
            f"got {n} and {tuple(fractions)}"
        )
    total = sum(fractions)
    valid = int(round(n * (fractions[1] / total)))  # fraction first: n * f may overflow
    test = int(round(n * (fractions[2] / total)))
    train = n - valid - test
    if train < 1:
        raise ValueError(f"split {tuple(fractions)} of {n} samples leaves no training sample")
    return train, valid, test


def _generate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Check the arguments that depend on each other, then write the dataset.

    Every bad input ends in ``parser.error`` (one line naming the flag, exit
    status 2); nothing is written or deleted outside ``--out``.
    """
    ns_options = {}
    for flag, _, default, _ in _NS_FLAGS:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None and args.problem != "navier_stokes":
            parser.error(f"argument {flag}: applies to navier_stokes only, not {args.problem}")
        ns_options[flag[2:].replace("-", "_")] = default if value is None else value
    if args.velocity and args.problem != "navier_stokes":
        parser.error(f"argument --velocity: applies to navier_stokes only, not {args.problem}")
    resolution = _DEFAULT_RESOLUTION[args.problem] if args.resolution is None else args.resolution
    if args.problem == "navier_stokes" and (resolution < 4 or resolution % 2):
        parser.error(f"argument --resolution: expected an even int >= 4, got {resolution}")
    if args.samples is None:
        parser.error("the following arguments are required: --samples")
    try:
        counts = split_counts(args.samples, tuple(args.fractions))
    except ValueError as err:
        parser.error(f"argument --fractions: {err}")
    if args.out.exists() and not args.out.is_dir():
        parser.error(
            f"argument --out: expected a directory or a path to create, got file {args.out}"
        )
    _check_cost(parser, args, resolution, ns_options)
    name = args.name or args.problem
    common = {
        "resolution": resolution,
        "seed": args.seed,
        "name": name,
        "overwrite": args.overwrite,
        "progress": True,
    }
    try:
        if args.problem == "navier_stokes":
            path = make_navier_stokes_dataset(
                args.out,
                *counts,
                n_steps=ns_options["frames"],
                record_dt=ns_options["record_dt"],
                viscosity=ns_options["viscosity"],
                burn_in=ns_options["burn_in"],
                velocity=args.velocity,
                **common,
            )
        elif args.problem == "darcy":
            path = make_darcy_dataset(args.out, *counts, **common)
        else:
            path = make_poisson_dataset(args.out, *counts, **common)
    except FileExistsError as err:
        if not args.overwrite:
            parser.error(
                f"argument --name: {args.out / name} exists; pass --overwrite to replace it"
            )
        parser.error(f"argument --name: {err}")
    except OSError as err:
        parser.error(f"argument --out: {err}")
    except ValueError as err:
        parser.error(str(err))
    print(f"wrote {path} (train/valid/test = {counts[0]}/{counts[1]}/{counts[2]})")
    return 0


def _check_cost(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    resolution: int,
    ns_options: dict[str, float],
) -> None:
    """Refuse, before anything is written, a run whose memory or time is out of reach.

    Memory: one file's trajectories as float64 arrays (every frame, the
    velocity's two components, six working arrays for the solvers) must fit
    in the machine's memory; time: see
    :func:`~irsolve.data.navier_stokes.check_time_steps`.
    """
    batch = min(args.samples, TRAJECTORIES_PER_FILE)
    navier_stokes = args.problem == "navier_stokes"
    arrays = ns_options["frames"] * (3 if args.velocity else 1) + 6 if navier_stokes else 8
    try:
        check_memory(
            "argument --resolution",
            f"{batch} sample(s) of {arrays} arrays of {resolution} x {resolution} float64 per file",
            8 * batch * arrays * resolution**2,
        )
    except ValueError as err:
        parser.error(str(err))
    if navier_stokes:
        duration = (ns_options["frames"] - 1) * ns_options["record_dt"] + ns_options["burn_in"]
        flag = "--record-dt" if duration > 2 * ns_options["burn_in"] else "--burn-in"
        solver = NavierStokes2D(resolution, ns_options["viscosity"])
        try:
            check_time_steps(solver, duration, batch, "--record-dt x (--frames - 1) + --burn-in")
        except ValueError as err:
            parser.error(f"argument {flag}: {err}")


def _info(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Describe a file, a dataset folder, or every complete dataset in a folder."""
    path: Path = args.path
    try:
        if path.is_file():
            layout = detect_format(path)
            print(_describe_file(path) if layout == "well" else _describe_pairs(path, layout))
        elif (path / "data").is_dir():
            if is_work_folder(path.name):
                raise ValueError(
                    f"{path} is the work folder of an unfinished irsolve data generate "
                    "(running or killed), not a dataset"
                )
            print(_describe_dataset(path))
        elif path.is_dir():
            print(_describe_datasets(path))
        else:
            raise FileNotFoundError(f"no file or folder at {path}{_interrupted_hint(path)}")
    except (OSError, ValueError) as err:
        parser.error(f"argument path: {err}")
    if args.verify:
        _verify(parser, path)
    return 0


def _verify(parser: argparse.ArgumentParser, path: Path) -> None:
    """Check the dataset ``path`` (or every dataset in it) against its ``SHA256SUMS``."""
    if path.is_file():
        parser.error(f"argument --verify: expected a dataset folder, got the file {path}")
    datasets = [path] if (path / "data").is_dir() else _datasets(path)
    try:
        problems = [f"{d.name}/{line}" for d in datasets for line in verify_checksums(d)]
    except (OSError, ValueError) as err:
        parser.error(f"argument --verify: {err}")
    if problems:
        parser.error(
            f"argument --verify: {len(problems)} problem(s) against {CHECKSUM_FILE}: "
            + "; ".join(problems)
        )
    print(f"verified {len(datasets)} dataset(s): every file matches its {CHECKSUM_FILE}")


def _interrupted_hint(path: Path) -> str:
    """Where a run killed while replacing ``path`` left it, if it did (else ``""``)."""
    if not path.parent.is_dir():
        return ""
    left = sorted(
        p.name
        for p in path.parent.iterdir()
        if is_work_folder(p.name) and p.name.startswith(f".{path.name}.")
    )
    if not left:
        return ""
    return (
        f" (a run killed while writing it left {', '.join(left)}; the next "
        f"'irsolve data generate --out {path.parent}' restores or removes them)"
    )


def _describe_datasets(folder: Path) -> str:
    """One summary per complete dataset in ``folder``; hidden work folders are skipped."""
    datasets = _datasets(folder)
    if not datasets:
        raise FileNotFoundError(
            f"{folder}: expected a .hdf5 file, a dataset folder (with data/) or a folder of "
            "datasets, found none of them"
        )
    lines = [f"{len(datasets)} dataset(s) in {folder}"]
    lines += [line for p in datasets for line in _split_summary(p)]
    skipped = [p.name for p in sorted(folder.iterdir()) if is_work_folder(p.name)]
    if skipped:
        lines.append(f"skipped {len(skipped)} unfinished work folder(s): {', '.join(skipped)}")
    return "\n".join(lines)


def _datasets(folder: Path) -> list[Path]:
    """The complete dataset folders in ``folder`` (hidden work folders skipped), sorted."""
    return [
        p
        for p in sorted(folder.iterdir())
        if not p.name.startswith(".") and p.is_dir() and (p / "data").is_dir()
    ]


def _split_summary(path: Path) -> list[str]:
    """``dataset <name> (<path>)`` and one line per split with files and trajectories."""
    lines = [f"dataset {path.name} ({path})"]
    for split in SPLITS:
        files = sorted((path / "data" / split).glob("*.hdf5"))
        trajectories = 0
        for file in files:
            with h5py.File(file, "r") as f:
                trajectories += int(f.attrs.get("n_trajectories", 0))
        lines.append(f"  {split}: {len(files)} file(s), {trajectories} trajectories")
    return lines


def _describe_dataset(path: Path) -> str:
    """The split summary, the first file's layout and the fields of ``stats.yaml``."""
    lines = _split_summary(path)
    files = [f for s in SPLITS for f in sorted((path / "data" / s).glob("*.hdf5"))]
    if not files:
        raise FileNotFoundError(f"{path}: no .hdf5 file in any split")
    lines.append(_describe_file(files[0]))
    stats = path / "stats.yaml"
    if stats.is_file():
        table = yaml.safe_load(stats.read_text())
        lines.append(f"stats.yaml: {', '.join(sorted(table))}")
        for name in table.get("mean", {}):
            lines.append(f"  {name}: mean {table['mean'][name]}, std {table['std'][name]}")
    else:
        lines.append("stats.yaml: missing")
    listed = read_checksums(path)
    if listed is None:
        lines.append(f"{CHECKSUM_FILE}: missing (damaged files cannot be detected)")
    else:
        lines.append(f"{CHECKSUM_FILE}: {len(listed)} files, checked when read (all now: --verify)")
    return "\n".join(lines)


def _describe_pairs(path: Path, layout: str) -> str:
    """The layout, sample count and item shapes of a file of pairs (not The Well's)."""
    data = load_dataset(path, split=None, format=layout)
    x, y = data[0]
    return (
        f"file {path}\n  layout {layout}: {len(data)} samples, x {tuple(x.shape)}, "
        f"y {tuple(y.shape)} (per sample, read as float32)"
    )


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
