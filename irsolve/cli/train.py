"""``irsolve train-base``, ``irsolve train`` and ``irsolve evaluate``: the refiner's command line.

The optimisation and refiner flags are generated from the fields of
:class:`~irsolve.learned.training.TrainConfig` and :class:`~irsolve.learned.training.RefinerConfig`
(:func:`irsolve.cli.flags.add_settings_arguments`: name, type, default,
range and help written once, in the dataclass); data and checkpoint flags
are the shared vocabulary of :mod:`irsolve.cli.flags`. Options come from
flags or from a YAML/TOML file given with ``--config`` (keys are the flag
names or the settings' field names, with ``-`` or ``_``; values are checked
and converted like the flag's, so ``lr: 1e-3`` is a number); flags written
after ``--config`` override the file. Defaults are the IRNO paper's.

``--seed`` fixes the initial weights, the data order and every random draw:
two runs with one seed give identical weights on CPU. Each epoch commits
``OUT/last.pt`` and ``OUT/best.pt`` (with ``.json`` summaries) as one set
listed in ``OUT/manifest.json``; ``--resume`` continues a stopped run from
its last committed epoch exactly, ``--overwrite`` replaces a finished one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from torch.utils.data import Dataset

from irsolve.cli.data_flags import add_data_arguments, load_split
from irsolve.cli.flags import (
    add_flags,
    add_run_flags,
    add_settings_arguments,
    require,
    run_options,
    settings_from_args,
)
from irsolve.cli.types import config_value, integer
from irsolve.learned.evaluate import evaluate
from irsolve.learned.nets import RefinementUNet, base_operator
from irsolve.learned.trained import load_net, load_refiner
from irsolve.learned.training import (
    RefinerConfig,
    TrainConfig,
    seed_everything,
    train_base,
    train_refiner,
)

__all__ = ["add_subcommands", "load_config_file"]


try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: YAML only
    tomllib = None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a ``.yaml``/``.yml`` or ``.toml`` file, keys normalised to ``snake_case``."""
    path = Path(path)
    if path.suffix in (".yaml", ".yml"):
        data = yaml.safe_load(path.read_text()) or {}
    elif path.suffix == ".toml":
        if tomllib is None:
            raise ValueError(f"TOML config files need Python >= 3.11, use YAML for {path}")
        data = tomllib.loads(path.read_text())
    else:
        raise ValueError(f"expected a .yaml, .yml or .toml config file, got {path}")
    if not isinstance(data, dict):
        raise ValueError(f"expected a mapping of option names in {path}, got {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


class _ConfigFile(argparse.Action):
    """``--config FILE``: set every option the file names, checked like the flag it stands for.

    Unknown names are errors; values go through the flag's type and choices
    (:func:`~irsolve.cli.types.config_value`), so a YAML ``lr: 1e-3``, which
    YAML reads as a string, becomes the number ``0.001``.
    """

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        try:
            options = load_config_file(values)
        except (OSError, ValueError, yaml.YAMLError) as err:  # TOMLDecodeError is a ValueError
            parser.error(f"cannot read --config {values}: {err}")
        actions = {}  # the flag's name (fp_warmup, no_progress) and its dest (fp_warmup_epochs)
        for action in parser._actions:
            if action.dest in (self.dest, "help") or action.help is argparse.SUPPRESS:
                continue
            for name in (*action.option_strings, action.dest):
                actions[name.lstrip("-").replace("-", "_")] = action
        unknown = sorted(k for k in options if k not in actions)
        if unknown:
            parser.error(f"unknown options in {values}: {', '.join(unknown)}")
        for key, value in options.items():
            action = actions[key]
            try:
                value = config_value(action, value)
            except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
                parser.error(f"--config {values}: option {key}: {err}")
            if action.nargs == 0 and key != action.dest:  # a switch by its flag: true sets it
                value = action.const if value else action.default
            setattr(namespace, action.dest, value)
        setattr(namespace, self.dest, values)


def _channels(data: Dataset) -> tuple[int, int]:
    x, y = data[0]
    return x.shape[0], y.shape[0]


def _splits(args: argparse.Namespace) -> tuple[Dataset, Dataset | None]:
    """The training split and, unless ``--no-validation``, the validation split."""
    train = load_split(args, "train")
    valid = None if args.no_validation else load_split(args, "valid", optional=True)
    return train, valid


def _print_history(history: list[dict[str, float]]) -> None:
    keys = [k for k in history[-1] if k.startswith(("train_loss", "val_"))]
    if any(record["skipped"] for record in history):
        keys.append("skipped")  # batches with a non-finite loss or gradient
    print("epoch " + " ".join(f"{k:>14}" for k in keys))
    for record in history:
        print(f"{int(record['epoch']):5d} " + " ".join(f"{record[k]:14.5g}" for k in keys))


def _run_train_base(args: argparse.Namespace) -> int:
    require(args, "data", "out")
    config = settings_from_args(TrainConfig, args)
    train, valid = _splits(args)
    c_in, c_out = _channels(train)
    seed_everything(args.seed)  # before the net is built: --seed fixes its initial weights
    model = base_operator(
        args.kind,
        c_in,
        c_out,
        n_modes=(args.modes, args.modes),
        hidden_channels=args.hidden,
        n_layers=args.layers,
    )
    result = train_base(
        model,
        train,
        valid,
        config,
        **run_options(args),
    )
    _print_history(result.history)
    print(f"best epoch {result.best_epoch}: {result.best_metric:.5g}; checkpoints in {args.out}")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    require(args, "data", "out", "base")
    config = settings_from_args(TrainConfig, args)
    refiner_config = settings_from_args(RefinerConfig, args)
    train, valid = _splits(args)
    base, _ = load_net(args.base, "base", flag="--base")
    c_in, c_out = _channels(train)
    seed_everything(args.seed)  # before the net is built: --seed fixes its initial weights
    net = RefinementUNet(
        c_in + c_out,
        c_out,
        base_channels=args.width,
        depth=args.depth,
        padding=args.padding,
        norm=args.norm,
    )
    result = train_refiner(
        base,
        net,
        train,
        valid,
        config,
        refiner_config,
        **run_options(args),
    )
    _print_history(result.history)
    print(f"stability levers on: {refiner_config.levers() or 'none'}")
    print(f"best epoch {result.best_epoch}: {result.best_metric:.5g}; checkpoints in {args.out}")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    require(args, "data", "base", "refiner")
    data = load_split(args, args.split)
    base, _ = load_net(args.base, "base", flag="--base", device=args.device)
    refiner, settings = load_refiner(
        args.refiner,
        flag="--refiner",
        device=args.device,
        alpha_decay=args.alpha_decay,
        stop_threshold=args.stop_threshold,
    )
    report = evaluate(
        base,
        refiner,
        data,
        K=settings.K,
        steps=args.steps,
        batch_size=args.batch_size,
        patience=args.patience,
        device=args.device,
    )
    print(f"{'k':>3} {'VRMSE':>10} {'RFNE':>10} {'MSE':>10} {'vs base':>8}")
    for k in report.steps:
        m = report.metrics
        print(
            f"{k:3d} {m['vrmse'][k]:10.5f} {m['rfne'][k]:10.5f} {m['mse'][k]:10.3g} "
            f"{-100 * report.reduction(k):+7.1f}%"
        )
    print(f"return codes: {report.retcodes}; levers: {settings.levers() or 'none'}")
    if args.json:
        report.write_json(args.json)
        print(f"wrote {args.json}")
    return 0


def _data_flags(parser: argparse.ArgumentParser, *, evaluation: bool) -> None:
    parser.add_argument("--config", action=_ConfigFile, help="YAML or TOML file of options")
    add_flags(
        parser,
        "--data",
        "--n-steps-input",
        data={"help": "data file or dataset folder (required; layouts: irsolve.data.formats)"},
    )
    add_data_arguments(parser, evaluation=evaluation)


def _training_flags(parser: argparse.ArgumentParser) -> None:
    _data_flags(parser, evaluation=False)
    add_run_flags(parser)
    add_settings_arguments(parser.add_argument_group("optimisation"), TrainConfig)


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train-base``, ``train`` and ``evaluate``."""
    p = subparsers.add_parser("train-base", help="train an FNO/TFNO base operator")
    _training_flags(p)
    p.add_argument("--kind", choices=("fno", "tfno"), default="fno", help="(default: fno)")
    add_flags(p, "--modes", "--hidden", "--layers")
    p.set_defaults(handler=_run_train_base)

    p = subparsers.add_parser("train", help="train the refiner on a frozen base (IRNO)")
    _training_flags(p)
    add_flags(p, "--base", base={"help": "base checkpoint of irsolve train-base (required)"})
    add_settings_arguments(p.add_argument_group("refiner (IRNO)"), RefinerConfig)
    net = p.add_argument_group("U-Net")
    net.add_argument("--width", type=integer(1), default=16, help="base width (default: 16)")
    net.add_argument("--depth", type=integer(1), default=4, help="levels (default: 4)")
    net.add_argument("--norm", choices=("batch", "layer", "group"), default="batch")
    net.add_argument("--padding", choices=("circular", "zeros"), default="circular")
    p.set_defaults(handler=_run_train)

    p = subparsers.add_parser("evaluate", help="per-step metrics of base + refiner to 2K")
    _data_flags(p, evaluation=True)
    add_flags(p, "--threads", threads={"default": 1})
    add_flags(
        p,
        "--split",
        "--base",
        "--refiner",
        "--steps",
        "--json",
        base={"help": "base operator checkpoint (irsolve train-base; required)"},
        refiner={"help": "refiner checkpoint (irsolve train; required)"},
    )
    add_settings_arguments(p, TrainConfig, only=("batch_size", "device"))
    add_settings_arguments(
        p,
        RefinerConfig,
        only=("alpha_decay", "stop_threshold"),
        defaults={"alpha_decay": None, "stop_threshold": None},
    )
    p.add_argument("--patience", type=integer(1), default=None, help="stop when the updates stall")
    p.set_defaults(handler=_run_evaluate)
