"""The command line's vocabulary: each shared flag defined once, and flags made from settings.

Every sub-command that reads a dataset, a checkpoint or writes a result
takes the flags of :data:`VOCABULARY` through :func:`add_flags`, so a flag
name means one thing everywhere:

=====================  ====================================================
``--data PATH``        a data file or dataset folder
``--split NAME``       ``train``, ``valid`` or ``test`` of ``--data``
``--n-steps-input N``  input frames of time-dependent data
``--base PATH``        base operator checkpoint (``irsolve train-base``)
``--refiner PATH``     refiner checkpoint (``irsolve train``)
``--corrector PATH``   corrector checkpoint (``irsolve train-corrector``)
``--steps N``          refinement steps of a trained refiner
``--samples N``        problems or samples used
``--resolution N``     grid points per side of generated problems
``--modes``, ...       ``--modes``, ``--hidden``, ``--layers``: an FNO's size
``--out PATH``         the folder a command writes
``--threads N``        torch CPU threads
``--json PATH``        also write the results as JSON here
=====================  ====================================================

``--batch-size``, ``--seed`` and ``--device`` are the fields of
:class:`~irsolve.learned.training.TrainConfig`; training commands get every
field of their settings dataclasses from :func:`add_settings_arguments`
(name, type, default, range and help written once, in the dataclass, see
:mod:`irsolve.learned.settings`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from irsolve.cli.types import device, existing_path, integer, new_file, path, real
from irsolve.learned.settings import setting_kind

__all__ = [
    "VOCABULARY",
    "add_flags",
    "add_run_flags",
    "add_settings_arguments",
    "require",
    "run_options",
    "settings_from_args",
]

logger = logging.getLogger(__name__)

#: The shared flags: name -> ``add_argument`` keywords (see the module docstring).
VOCABULARY: dict[str, dict[str, Any]] = {
    "--data": {"type": existing_path, "help": "data file or dataset folder"},
    "--split": {
        "choices": ("train", "valid", "test"),
        "default": "test",
        "help": "split of --data (default: test)",
    },
    "--n-steps-input": {
        "type": integer(1),
        "default": 1,
        "help": "input frames of time-dependent data (default: 1)",
    },
    "--base": {"type": existing_path, "help": "base operator checkpoint (irsolve train-base)"},
    "--refiner": {"type": existing_path, "help": "refiner checkpoint (irsolve train)"},
    "--corrector": {
        "type": existing_path,
        "help": "learned corrector checkpoint (irsolve train-corrector)",
    },
    "--steps": {
        "type": integer(1),
        "default": None,
        "help": "refinement steps (default: twice the trained horizon K)",
    },
    "--samples": {"type": integer(1), "help": "number of problems or samples"},
    "--resolution": {"type": integer(2), "help": "grid points per side"},
    "--modes": {"type": integer(1), "default": 16, "help": "FNO Fourier modes per dimension"},
    "--hidden": {"type": integer(1), "default": 32, "help": "FNO width (hidden channels)"},
    "--layers": {"type": integer(1), "default": 4, "help": "FNO Fourier layers"},
    "--out": {"type": path, "help": "output folder"},
    "--threads": {
        "type": integer(1),
        "default": None,
        "help": "torch CPU threads (1 is the fastest on a shared or loaded CPU)",
    },
    "--json": {"type": new_file, "default": None, "help": "also write the results as JSON here"},
}

#: Per-command keywords a command may give a shared flag; the rest is the vocabulary's.
_PER_COMMAND = frozenset({"help", "required", "default"})


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, *names: str, **overrides: Any
) -> None:
    """Add the shared flags ``names`` (keys of :data:`VOCABULARY`) to ``parser``.

    ``overrides`` maps a flag's dest (``out``, ``samples``...) to a dict of
    ``help``, ``required`` and ``default`` for this command.

    Raises
    ------
    ValueError
        For a name not in the vocabulary or an override of another keyword.
    """
    for name in names:
        if name not in VOCABULARY:
            raise ValueError(f"expected a flag of VOCABULARY, got {name!r}")
        dest = name[2:].replace("-", "_")
        own = overrides.get(dest, {})
        if set(own) - _PER_COMMAND:
            raise ValueError(
                f"expected overrides of {name} among {sorted(_PER_COMMAND)}, got {sorted(own)}"
            )
        keywords = {**VOCABULARY[name], **own}
        if keywords.get("default") is not None and "default:" not in keywords["help"]:
            keywords["help"] += f" (default: {keywords['default']})"
        parser.add_argument(name, **keywords)


def _flag(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def add_settings_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    settings: type,
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    types: Mapping[str, Callable[[str], Any]] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Add a flag for each field of the settings dataclass ``settings``.

    Settings are declared with :mod:`irsolve.learned.settings`.

    The flag is the field's ``flag`` metadata or ``--field-name``; its
    default the field's; its help the field's. ``int`` and ``float`` fields
    parse with :func:`~irsolve.cli.types.integer` / :func:`~irsolve.cli.types.real`
    and the field's range, so a bad value is an ``argparse`` error naming the
    flag; a ``Literal`` field takes its strings as choices; a ``bool`` field
    that defaults to true becomes ``--no-field-name`` (``store_false``), one
    that defaults to false ``--field-name`` (``store_true``). Cross-field
    rules (``lr_min <= lr``) are checked when :func:`settings_from_args`
    builds the dataclass.

    Parameters
    ----------
    parser
        The parser or argument group.
    settings
        A dataclass whose fields were declared with :func:`irsolve.learned.settings.setting`.
    only, exclude
        Field names to add (default: all) and to leave out.
    types
        Parsers for ``str`` fields by field name (``{"device": device}``); a
        field named ``device`` gets :func:`~irsolve.cli.types.device` by default.
    defaults
        Other defaults than the fields' by field name; ``None`` there means
        "as the checkpoint was trained" (inference commands that override a
        trained setting only when the flag is given).
    """
    parsers = {"device": device, **(types or {})}
    defaults = defaults or {}
    wanted = None if only is None else set(only)
    for field in dataclasses.fields(settings):
        if (wanted is not None and field.name not in wanted) or field.name in exclude:
            continue
        meta, kind = field.metadata, setting_kind(settings, field.name)
        help_text = meta.get("help")
        if kind.base is bool:
            flag = _flag(field)
            if field.default:
                flag = "--no-" + flag[2:]
                help_text = f"do not {help_text[0].lower()}{help_text[1:]}" if help_text else None
            action = "store_false" if field.default else "store_true"
            parser.add_argument(flag, dest=field.name, action=action, help=help_text)
            continue
        if kind.choices is not None:
            extra: dict[str, Any] = {"choices": kind.choices}
        elif kind.base is int:
            extra = {"type": integer(meta.get("minimum"))}
        elif kind.base is float:
            bounds = {k: meta.get(k) for k in ("minimum", "maximum", "open_min")}
            extra = {"type": real(**{k: v for k, v in bounds.items() if v is not None})}
        else:
            extra = {"type": parsers[field.name]} if field.name in parsers else {}
        default = defaults.get(field.name, field.default)
        if help_text is not None and (field.name in defaults or default is not None):
            help_text += " (default: as trained)" if default is None else f" (default: {default})"
        parser.add_argument(_flag(field), dest=field.name, default=default, help=help_text, **extra)


def settings_from_args(settings: type, args: argparse.Namespace, **values: Any) -> Any:
    """The ``settings`` dataclass from the parsed flags of :func:`add_settings_arguments`.

    Fields that ``args`` lacks keep their default; ``values`` override
    ``args``. Construction runs the dataclass's checks, so a cross-field
    mistake raises ``ValueError`` (one line through :func:`irsolve.cli.main`).
    """
    given = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(settings) if hasattr(args, f.name)
    }
    return settings(**{**given, **values})


def require(args: argparse.Namespace, *dests: str) -> None:
    """Raise naming the flags among ``dests`` that were not given (nor read from ``--config``).

    Required flags are checked here rather than by ``required=True``, so
    that a config file may give them.

    Raises
    ------
    ValueError
        ``expected --data, --out as flags or --config keys, got none``.
    """
    missing = [f"--{d.replace('_', '-')}" for d in dests if getattr(args, d, None) is None]
    if missing:
        where = "as flags or --config keys" if hasattr(args, "config") else "as flags"
        raise ValueError(f"expected {', '.join(missing)} {where}, got none")


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of a training run: ``--out`` (its checkpoint folder), ``--resume`` or
    ``--overwrite``, and ``--no-validation``; see :func:`run_options`."""
    add_flags(parser, "--out", out={"help": "checkpoint folder (required)"})
    add_flags(parser, "--threads", threads={"default": 1})
    restart = parser.add_mutually_exclusive_group()
    restart.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    restart.add_argument("--overwrite", action="store_true", help="replace the run in OUT, if any")
    parser.add_argument("--no-validation", action="store_true", help="train without validation")


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of :func:`irsolve.learned.training.fit` that :func:`add_run_flags` set."""
    require(args, "out")
    return {
        "checkpoint_dir": args.out,
        "resume": args.resume,
        "overwrite": args.overwrite,
        "callback": print_epoch,
    }


def print_epoch(record: dict[str, float]) -> None:
    """One line per finished epoch on stdout, flushed (a log file shows progress as it
    happens; progress bars are for terminals only): its record, training and validation
    metrics first."""
    from irsolve.distributed import is_main

    def order(key: str) -> int:
        return 0 if key.startswith("train_") else 1 if key.startswith("val_") else 2

    if is_main():
        keys = sorted((key for key in record if key != "epoch"), key=order)
        shown = ", ".join(f"{key} {record[key]:.4g}" for key in keys)
        print(f"epoch {int(record['epoch'])}: {shown}", flush=True)
