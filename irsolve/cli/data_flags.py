"""The data flags every command shares, defined once, and the split they name.

``--data PATH`` (added by each command) is a Well dataset folder or one file
of a layout of :mod:`irsolve.data.formats`. The flags added here:

==================  =====================================================
``--format F``      force a layout (``well``, ``pt``, ``pdebench``, ``npz``, ``npy``)
``--val-fraction``  hold out this fraction of a single ``--data`` file as
                    the validation split (seeded, disjoint)
``--split-seed``    seed of that hold-out (default 0; independent of ``--seed``,
                    so the split stays put when the initial weights change)
``--val-data``      a separate validation file or dataset folder
``--test-data``     a separate test file or folder (evaluating commands)
==================  =====================================================

Training without any validation source on a single file runs without
validation and says so in a warning; it never validates on the training
samples.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from torch.utils.data import Dataset

from irsolve.cli.types import existing_path, integer
from irsolve.data.formats import FORMATS, load_dataset

__all__ = [
    "add_data_arguments",
    "add_format_argument",
    "check_one_validation_source",
    "load_split",
]

logger = logging.getLogger(__name__)


def _fraction(text: str) -> float:
    """A finite float strictly between 0 and 1 (``--val-fraction``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def add_format_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--format`` (a layout of :data:`~irsolve.data.formats.FORMATS`, default: detected)."""
    parser.add_argument(
        "--format", choices=FORMATS, default=None, help="layout of the data (default: detected)"
    )


def add_data_arguments(parser: argparse.ArgumentParser, *, evaluation: bool) -> None:
    """Add ``--format``, ``--val-fraction``, ``--split-seed``, ``--val-data`` (and ``--test-data``).

    Parameters
    ----------
    parser
        A command's parser that already has ``--data``.
    evaluation
        Whether the command reads a chosen split (``evaluate``, ``analyze``):
        it then also gets ``--test-data``.
    """
    group = parser.add_argument_group("data layout and splits")
    add_format_argument(group)
    group.add_argument(
        "--val-fraction",
        type=_fraction,
        default=None,
        help="hold out this fraction of a single --data file for validation",
    )
    group.add_argument(
        "--split-seed", type=integer(0), default=0, help="seed of the --val-fraction hold-out"
    )
    group.add_argument(
        "--val-data", type=existing_path, default=None, help="separate validation file or folder"
    )
    if evaluation:
        group.add_argument(
            "--test-data", type=existing_path, default=None, help="separate test file or folder"
        )


def check_one_validation_source(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` if both ``--val-fraction`` and ``--val-data`` are given."""
    if args.val_fraction is not None and args.val_data is not None:
        raise ValueError(
            f"expected --val-fraction or --val-data, got both ({args.val_fraction} and "
            f"{args.val_data})"
        )


def load_split(args: argparse.Namespace, split: str, *, optional: bool = False) -> Dataset | None:
    """The ``split`` (``train``, ``valid`` or ``test``) that the parsed flags name.

    ``--val-data`` / ``--test-data`` give the ``valid`` / ``test`` split when
    present (the whole file, or that split of a dataset folder); otherwise the
    split comes from ``--data`` through
    :func:`~irsolve.data.formats.load_dataset`.

    Parameters
    ----------
    args
        Parsed flags of a parser that has ``--data`` and
        :func:`add_data_arguments`.
    split
        The split wanted.
    optional
        For ``valid`` of a single ``--data`` file with neither
        ``--val-fraction`` nor ``--val-data``: return ``None`` with a warning
        (training then runs without validation) instead of raising.

    Raises
    ------
    ValueError
        If both ``--val-fraction`` and ``--val-data`` are given, or the split
        cannot be read (see :func:`~irsolve.data.formats.load_dataset`).
    """
    check_one_validation_source(args)
    common = {"format": args.format, "n_steps_input": getattr(args, "n_steps_input", 1)}
    separate = {"valid": args.val_data, "test": getattr(args, "test_data", None)}.get(split)
    if separate is not None:
        return load_dataset(separate, split=split if Path(separate).is_dir() else None, **common)
    if split == "valid" and optional and args.val_fraction is None and Path(args.data).is_file():
        logger.warning(
            "no validation data: --data %s is one file and neither --val-fraction nor "
            "--val-data was given; training runs without validation (best.pt follows the "
            "training loss)",
            args.data,
        )
        return None
    return load_dataset(
        args.data, split=split, val_fraction=args.val_fraction, seed=args.split_seed, **common
    )
