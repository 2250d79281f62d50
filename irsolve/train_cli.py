"""``irsolve train-base``, ``irsolve train`` and ``irsolve evaluate``: the refiner's command line.

Options come from flags or from a YAML/TOML file given with ``--config``
(keys are the option names, with ``-`` or ``_``; values are checked and
converted like the flag's, so ``lr: 1e-3`` is a number); flags written after
``--config`` override the file. Defaults are the IRNO paper's.

``--seed`` fixes the initial weights, the data order and every random draw:
two runs with one seed give identical weights on CPU. Each epoch commits
``OUT/last.pt`` and ``OUT/best.pt`` (with ``.json`` summaries) as one set
listed in ``OUT/manifest.json``; ``--resume`` continues a stopped run from
its last committed epoch exactly, ``--overwrite`` replaces a finished one.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, get_args

import torch
import yaml
from torch.utils.data import Dataset, TensorDataset

from irsolve.checkpoint import load_checkpoint, load_model_state
from irsolve.cli_types import config_value, device, existing_path, integer, new_file, real
from irsolve.data.dataset import HDF5Dataset
from irsolve.evaluate import evaluate
from irsolve.nets import RefinementUNet, base_operator, build_net
from irsolve.training import (
    RefinerConfig,
    StepWeights,
    TrainConfig,
    make_refiner,
    seed_everything,
    train_base,
    train_refiner,
)

__all__ = ["add_subcommands", "load_config_file", "load_pairs"]


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
    (:func:`~irsolve.cli_types.config_value`), so a YAML ``lr: 1e-3``, which
    YAML reads as a string, becomes the number ``0.001``.
    """

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        try:
            options = load_config_file(values)
        except (OSError, ValueError, yaml.YAMLError) as err:  # TOMLDecodeError is a ValueError
            parser.error(f"cannot read --config {values}: {err}")
        actions = {a.dest: a for a in parser._actions if a.dest not in (self.dest, "help")}
        unknown = sorted(k for k in options if k not in actions)
        if unknown:
            parser.error(f"unknown options in {values}: {', '.join(unknown)}")
        for key, value in options.items():
            try:
                setattr(namespace, key, config_value(actions[key], value))
            except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
                parser.error(f"--config {values}: option {key}: {err}")
        setattr(namespace, self.dest, values)


def load_pairs(path: str | Path, split: str, n_steps_input: int) -> Dataset:
    """``(x, y)`` pairs of a Well dataset folder or ``.hdf5`` file, or of a ``.pt`` file.

    A ``.pt`` file holds ``{"x": Tensor, "y": Tensor}`` of shapes
    ``(N, C_x, *space)`` and ``(N, C_y, *space)`` (read with ``weights_only``).
    """
    path = Path(path)
    if path.suffix == ".pt":
        try:
            tensors = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # unpickling arbitrary bytes can raise nearly any error
            raise ValueError(
                f"expected {path} to be a torch file of tensors 'x' and 'y', cannot read it "
                f"({type(err).__name__})"
            ) from None
        if not isinstance(tensors, dict) or not {"x", "y"} <= tensors.keys():
            raise ValueError(f"expected {path} to hold a dict with tensors 'x' and 'y'")
        x, y = tensors["x"], tensors["y"]
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            raise ValueError(f"expected 'x' and 'y' in {path} to be tensors")
        if x.dim() < 3 or x.dim() != y.dim() or len(x) != len(y) or x.shape[2:] != y.shape[2:]:
            raise ValueError(
                f"expected x (N, C_x, *space) and y (N, C_y, *space) in {path}, "
                f"got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        return TensorDataset(x, y)
    return HDF5Dataset(path, split=split, n_steps_input=n_steps_input, n_steps_output=1)


def _channels(data: Dataset) -> tuple[int, int]:
    x, y = data[0]
    return x.shape[0], y.shape[0]


def _train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        lr_min=args.lr_min,
        clip=args.clip,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
        max_skipped=args.max_skipped,
    )


#: What each kind of checkpoint is written by, for error messages.
_WRITTEN_BY = {"base": "irsolve train-base", "refiner": "irsolve train"}


def _load_net(
    path: str | Path, flag: str, objective: str
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network of a training checkpoint given as ``flag``, which must be of ``objective``."""
    state = load_checkpoint(path)
    config = state.get("config") or {}
    if config.get("objective") != objective or config.get("model") is None:
        raise ValueError(
            f"expected {flag} to be a {objective} checkpoint (written by "
            f"{_WRITTEN_BY[objective]}), got one with objective {config.get('objective')!r}: "
            f"{path}"
        )
    net = build_net(config["model"])
    load_model_state(net, state["model"], source=str(path))
    return net, config


def _print_history(history: list[dict[str, float]]) -> None:
    keys = [k for k in history[-1] if k.startswith(("train_loss", "val_"))]
    if any(record["skipped"] for record in history):
        keys.append("skipped")  # batches with a non-finite loss or gradient
    print("epoch " + " ".join(f"{k:>14}" for k in keys))
    for record in history:
        print(f"{int(record['epoch']):5d} " + " ".join(f"{record[k]:14.5g}" for k in keys))


def _require(args: argparse.Namespace, *dests: str) -> None:
    """Raise naming the options that neither a flag nor the ``--config`` file gave."""
    missing = [f"--{d.replace('_', '-')}" for d in dests if getattr(args, d) is None]
    if missing:
        raise ValueError(f"expected {', '.join(missing)} as flags or --config keys, got none")


def _run_train_base(args: argparse.Namespace) -> int:
    _require(args, "data", "out")
    config = _train_config(args)
    train = load_pairs(args.data, "train", args.n_steps_input)
    valid = load_pairs(args.data, "valid", args.n_steps_input) if not args.no_validation else None
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
        checkpoint_dir=args.out,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    _print_history(result.history)
    print(f"best epoch {result.best_epoch}: {result.best_metric:.5g}; checkpoints in {args.out}")
    return 0


def _refiner_config(args: argparse.Namespace) -> RefinerConfig:
    return RefinerConfig(
        K=args.K,
        alpha=args.alpha,
        beta_s=args.beta_s,
        beta_fp=args.beta_fp,
        fp_warmup_epochs=args.fp_warmup,
        lam_start=args.lam_start,
        lam_end=args.lam_end,
        alpha_decay=args.alpha_decay,
        stop_threshold=args.stop_threshold,
        beta_jac=args.beta_jac,
        jac_method=args.jac_method,
        jac_iters=args.jac_iters,
        unroll_max=args.unroll_max,
        step_weights=args.step_weights,
        start_mix=args.start_mix,
        calibrate_scale=args.calibrate_scale,
    )


def _run_train(args: argparse.Namespace) -> int:
    _require(args, "data", "out", "base")
    config, refiner_config = _train_config(args), _refiner_config(args)
    train = load_pairs(args.data, "train", args.n_steps_input)
    valid = load_pairs(args.data, "valid", args.n_steps_input) if not args.no_validation else None
    base, _ = _load_net(args.base, "--base", "base")
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
        checkpoint_dir=args.out,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    _print_history(result.history)
    print(f"stability levers on: {refiner_config.levers() or 'none'}")
    print(f"best epoch {result.best_epoch}: {result.best_metric:.5g}; checkpoints in {args.out}")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    _require(args, "data", "base", "refiner")
    data = load_pairs(args.data, args.split, args.n_steps_input)
    base, _ = _load_net(args.base, "--base", "base")
    net, config = _load_net(args.refiner, "--refiner", "refiner")
    settings = RefinerConfig(**config["refiner"])
    overrides = {
        "alpha_decay": args.alpha_decay,
        "stop_threshold": args.stop_threshold,
    }
    settings = dataclasses.replace(
        settings, **{k: v for k, v in overrides.items() if v is not None}
    )
    report = evaluate(
        base,
        make_refiner(net, settings),
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


_POSITIVE = integer(1)
_NON_NEGATIVE = real(0.0)


def _common(parser: argparse.ArgumentParser, *, training: bool) -> None:
    parser.add_argument("--config", action=_ConfigFile, help="YAML or TOML file of options")
    parser.add_argument(
        "--data", type=existing_path, help="Well dataset folder, .hdf5 or .pt file (required)"
    )
    parser.add_argument("--n-steps-input", type=_POSITIVE, default=1, help="input frames")
    parser.add_argument("--batch-size", type=_POSITIVE, default=16)
    parser.add_argument("--device", type=device, default="cpu")
    if training:
        defaults = TrainConfig()
        parser.add_argument("--out", type=Path, help="checkpoint folder (required)")
        parser.add_argument("--epochs", type=_POSITIVE, default=defaults.epochs)
        parser.add_argument("--lr", type=real(0.0, open_min=True), default=defaults.lr)
        parser.add_argument("--weight-decay", type=_NON_NEGATIVE, default=defaults.weight_decay)
        parser.add_argument("--lr-min", type=_NON_NEGATIVE, default=defaults.lr_min)
        parser.add_argument("--clip", type=real(0.0, open_min=True), default=defaults.clip)
        parser.add_argument(
            "--seed",
            type=integer(0),
            default=defaults.seed,
            help="fixes the initial weights, the data order and every random draw",
        )
        parser.add_argument(
            "--max-skipped",
            type=real(0.0, 1.0),
            default=defaults.max_skipped,
            help="stop when more than this fraction of an epoch's batches is non-finite",
        )
        restart = parser.add_mutually_exclusive_group()
        restart.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
        restart.add_argument(
            "--overwrite", action="store_true", help="replace the run in OUT, if any"
        )
        parser.add_argument("--no-validation", action="store_true")
        parser.add_argument("--no-progress", action="store_true")


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train-base``, ``train`` and ``evaluate``."""
    p = subparsers.add_parser("train-base", help="train an FNO/TFNO base operator")
    _common(p, training=True)
    p.add_argument("--kind", choices=("fno", "tfno"), default="fno")
    p.add_argument("--modes", type=_POSITIVE, default=16, help="Fourier modes per dimension")
    p.add_argument("--hidden", type=_POSITIVE, default=32, help="FNO width")
    p.add_argument("--layers", type=_POSITIVE, default=4, help="Fourier layers")
    p.set_defaults(handler=_run_train_base)

    p = subparsers.add_parser("train", help="train the refiner on a frozen base (IRNO)")
    _common(p, training=True)
    r = RefinerConfig()
    p.add_argument("--base", type=existing_path, help="base checkpoint of train-base (required)")
    p.add_argument("--K", type=_POSITIVE, default=r.K, help="trained horizon")
    p.add_argument("--alpha", type=real(0.0, open_min=True), default=r.alpha)
    p.add_argument("--beta-s", type=_NON_NEGATIVE, default=r.beta_s, help="spectral weight")
    p.add_argument("--beta-fp", type=_NON_NEGATIVE, default=r.beta_fp, help="fixed-point weight")
    p.add_argument("--fp-warmup", type=_NON_NEGATIVE, default=r.fp_warmup_epochs, help="epochs")
    p.add_argument("--lam-start", type=_NON_NEGATIVE, default=r.lam_start)
    p.add_argument("--lam-end", type=_NON_NEGATIVE, default=r.lam_end)
    p.add_argument(
        "--alpha-decay", type=real(0.0, open_min=True), default=r.alpha_decay, help="gamma past K"
    )
    p.add_argument("--stop-threshold", type=_NON_NEGATIVE, default=r.stop_threshold)
    p.add_argument("--beta-jac", type=_NON_NEGATIVE, default=r.beta_jac, help="Jacobian penalty")
    p.add_argument("--jac-method", choices=("hutchinson", "power"), default=r.jac_method)
    p.add_argument("--jac-iters", type=_POSITIVE, default=r.jac_iters)
    p.add_argument("--unroll-max", type=_POSITIVE, default=r.unroll_max, help="sample K..this")
    p.add_argument(
        "--step-weights",
        choices=get_args(StepWeights),
        default=r.step_weights,
        help="per-step loss weights: mean, or (k + 1)-weighted",
    )
    p.add_argument(
        "--start-mix",
        type=real(0.0, 1.0),
        default=r.start_mix,
        help="start unrolls at T(x) + t (y - T(x)), t ~ U(0, this)",
    )
    p.add_argument(
        "--no-calibrate-scale",
        dest="calibrate_scale",
        action="store_false",
        help="keep the U-Net's output_scale at 1 (default: the base's RMS training error)",
    )
    p.add_argument("--width", type=_POSITIVE, default=16, help="U-Net base width")
    p.add_argument("--depth", type=_POSITIVE, default=4, help="U-Net depth")
    p.add_argument("--norm", choices=("batch", "layer", "group"), default="batch")
    p.add_argument("--padding", choices=("circular", "zeros"), default="circular")
    p.set_defaults(handler=_run_train)

    p = subparsers.add_parser("evaluate", help="per-step metrics of base + refiner to 2K")
    _common(p, training=False)
    p.add_argument("--base", type=existing_path, help="base operator checkpoint (required)")
    p.add_argument("--refiner", type=existing_path, help="refiner checkpoint (required)")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test")
    p.add_argument("--steps", type=integer(0), default=None, help="default 2K")
    p.add_argument(
        "--alpha-decay", type=real(0.0, open_min=True), default=None, help="override gamma past K"
    )
    p.add_argument("--stop-threshold", type=_NON_NEGATIVE, default=None, help="override stop")
    p.add_argument("--patience", type=_POSITIVE, default=None, help="stop when updates stall")
    p.add_argument("--json", type=new_file, default=None, help="write the report here")
    p.set_defaults(handler=_run_evaluate)
