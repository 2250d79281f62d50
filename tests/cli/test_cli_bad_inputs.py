"""Each user mistake on train-base, train, evaluate, analyze: one line, exit 2, the flag named."""

from __future__ import annotations

import pytest
import torch

from irsolve.cli import main
from irsolve.data.generate import make_poisson_dataset
from irsolve.learned.checkpoint import save_checkpoint
from irsolve.learned.nets import RefinementUNet, base_operator
from irsolve.learned.training import RefinerConfig, TrainConfig, train_base, train_refiner


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny .pt dataset, a Poisson dataset folder, base and refiner checkpoints, damaged ones."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cli")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1, 8, 8, generator=gen)
    torch.save({"x": x, "y": torch.roll(x, 1, -1)}, root / "pairs.pt")
    wells = make_poisson_dataset(root / "wells", 2, 1, 1, resolution=8)
    config = TrainConfig(epochs=1, batch_size=4, progress=False)
    data = torch.utils.data.TensorDataset(x, torch.roll(x, 1, -1))
    torch.manual_seed(0)
    base = base_operator("fno", 1, 1, n_modes=(2, 2), hidden_channels=4, n_layers=1)
    train_base(base, data, None, config, checkpoint_dir=root / "base")
    net = RefinementUNet(2, 1, base_channels=2, depth=1, norm="group")
    train_refiner(
        base, net, data, None, config, RefinerConfig(K=1), checkpoint_dir=root / "refiner"
    )
    save_checkpoint(root / "damaged.pt", {"w": torch.ones(64)}, {})
    (root / "damaged.pt").write_bytes((root / "damaged.pt").read_bytes()[:100])
    (root / "text.pt").write_text("x, y\n")
    torch.save({"x": x, "y": x[:3]}, root / "short.pt")
    torch.save({"x": x[:0], "y": x[:0]}, root / "empty.pt")
    (root / "reported").mkdir()
    (root / "reported" / "report.md").write_text("an earlier analysis")
    (root / "bad_lr.yaml").write_text("lr: fast\n")
    (root / "bad_epochs.yaml").write_text("epochs: true\n")
    (root / "bad_norm.yaml").write_text("norm: instance\n")
    return {
        "pt": str(root / "pairs.pt"),
        "wells": str(wells),
        "base": str(root / "base" / "last.pt"),
        "refiner": str(root / "refiner" / "last.pt"),
        "damaged": str(root / "damaged.pt"),
        "out": str(root / "out"),
        "root": str(root),
    }


TRAIN_BASE = ["train-base", "--data", "{pt}", "--out", "{out}", "--epochs", "1", "--no-progress"]
TRAIN = [*TRAIN_BASE[:5], "--base", "{base}", "--epochs", "1", "--no-progress"]
TRAIN[0] = "train"
EVALUATE = ["evaluate", "--data", "{pt}", "--base", "{base}", "--refiner", "{refiner}"]
ANALYZE = ["analyze", "--data", "{wells}", "--out", "{out}"]
ANALYZE += ["--refiner", "{refiner}", "--base", "{base}"]
SOLVE = ["solve", "--resolution", "7", "--samples", "1"]
CORRECTOR = ["train-corrector", "darcy", "--out", "{out}", "--train-samples", "1"]
CORRECTOR += ["--no-validation"]
HELMHOLTZ = ["train-corrector", "helmholtz", *CORRECTOR[2:]]

CASES = [
    # train-base: the net, the optimisation, the data, the device, the config file
    (TRAIN_BASE, ["--modes", "0"], "argument --modes: expected an int >= 1, got '0'"),
    (TRAIN_BASE, ["--layers", "0"], "argument --layers: expected an int >= 1, got '0'"),
    (TRAIN_BASE, ["--hidden", "-4"], "argument --hidden: expected an int >= 1"),
    (TRAIN_BASE, ["--kind", "cnn"], "argument --kind: invalid choice: 'cnn'"),
    (TRAIN_BASE, ["--epochs", "0"], "argument --epochs: expected an int >= 1"),
    (TRAIN_BASE, ["--epochs", "1.5"], "argument --epochs: expected an int >= 1, got '1.5'"),
    (TRAIN_BASE, ["--batch-size", "0"], "argument --batch-size: expected an int >= 1"),
    (TRAIN_BASE, ["--n-steps-input", "0"], "argument --n-steps-input: expected an int >= 1"),
    (TRAIN_BASE, ["--lr", "inf"], "argument --lr: expected a finite real > 0, got 'inf'"),
    (TRAIN_BASE, ["--lr", "nan"], "argument --lr: expected a finite real > 0, got 'nan'"),
    (TRAIN_BASE, ["--lr", "0"], "argument --lr: expected a finite real > 0, got '0'"),
    (TRAIN_BASE, ["--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
    (TRAIN_BASE, ["--lr-min", "-1"], "argument --lr-min: expected a finite real >= 0"),
    (TRAIN_BASE, ["--lr-min", "1"], "expected lr_min to be a finite real >= 0 and <= 0.0003"),
    (TRAIN_BASE, ["--weight-decay", "-1"], "argument --weight-decay: expected a finite real >= 0"),
    (TRAIN_BASE, ["--clip", "0"], "argument --clip: expected a finite real > 0"),
    (TRAIN_BASE, ["--seed", "-1"], "argument --seed: expected an int >= 0, got '-1'"),
    (TRAIN_BASE, ["--max-skipped", "2"], "argument --max-skipped: expected a finite real >= 0"),
    (TRAIN_BASE, ["--device", "gpu"], "argument --device: expected a torch device"),
    (TRAIN_BASE, ["--data", "{root}/missing.pt"], "argument --data: expected an existing file"),
    (TRAIN_BASE, ["--data", "{root}/text.pt"], "text.pt to be a torch file of tensors 'x' and"),
    (TRAIN_BASE, ["--data", "{root}/short.pt"], "got (4, 1, 8, 8) and (3, 1, 8, 8)"),
    (TRAIN_BASE, ["--config", "{root}/bad_lr.yaml"], "option lr: expected a number, got 'fast'"),
    (TRAIN_BASE, ["--config", "{root}/bad_epochs.yaml"], "option epochs: expected a single"),
    (TRAIN_BASE, ["--config", "{root}/nope.yaml"], "cannot read --config"),
    (TRAIN_BASE[:3], [], "expected --out as flags or --config keys, got none"),
    (EVALUATE[:3], [], "expected --base, --refiner as flags or --config keys, got none"),
    # train: the refiner's settings and the U-Net
    (TRAIN, ["--K", "0"], "argument --K: expected an int >= 1"),
    (TRAIN, ["--alpha", "inf"], "argument --alpha: expected a finite real > 0, got 'inf'"),
    (TRAIN, ["--alpha", "0"], "argument --alpha: expected a finite real > 0, got '0'"),
    (TRAIN, ["--beta-s", "-1"], "argument --beta-s: expected a finite real >= 0, got '-1'"),
    (TRAIN, ["--beta-fp", "nan"], "argument --beta-fp: expected a finite real >= 0"),
    (TRAIN, ["--fp-warmup", "-1"], "argument --fp-warmup: expected a finite real >= 0"),
    (TRAIN, ["--lam-start", "-1"], "argument --lam-start: expected a finite real >= 0"),
    (TRAIN, ["--lam-end", "inf"], "argument --lam-end: expected a finite real >= 0"),
    (TRAIN, ["--alpha-decay", "0"], "argument --alpha-decay: expected a finite real > 0"),
    (TRAIN, ["--stop-threshold", "-1"], "argument --stop-threshold: expected a finite real >= 0"),
    (TRAIN, ["--beta-jac", "-1"], "argument --beta-jac: expected a finite real >= 0"),
    (TRAIN, ["--jac-method", "exact"], "argument --jac-method: invalid choice: 'exact'"),
    (TRAIN, ["--jac-iters", "0"], "argument --jac-iters: expected an int >= 1"),
    (TRAIN, ["--unroll-max", "0"], "argument --unroll-max: expected an int >= 1"),
    (TRAIN, ["--unroll-max", "3"], "expected unroll_max to be an int >= 6, got 3"),
    (TRAIN, ["--step-weights", "last"], "argument --step-weights: invalid choice: 'last'"),
    (TRAIN, ["--start-mix", "1.5"], "argument --start-mix: expected a finite real >= 0 and <= 1"),
    (TRAIN, ["--width", "0"], "argument --width: expected an int >= 1"),
    (TRAIN, ["--depth", "0"], "argument --depth: expected an int >= 1"),
    (TRAIN, ["--norm", "instance"], "argument --norm: invalid choice: 'instance'"),
    (TRAIN, ["--padding", "reflect"], "argument --padding: invalid choice: 'reflect'"),
    (TRAIN, ["--config", "{root}/bad_norm.yaml"], "option norm: expected one of 'batch'"),
    (TRAIN, ["--base", "{refiner}"], "expected --base to be a base checkpoint"),
    (TRAIN, ["--base", "{damaged}"], "damaged.pt is damaged (truncated torch file)"),
    # evaluate
    (EVALUATE, ["--refiner", "{base}"], "expected --refiner to be a refiner checkpoint"),
    (EVALUATE, ["--base", "{refiner}"], "expected --base to be a base checkpoint"),
    (EVALUATE, ["--refiner", "{damaged}"], "damaged.pt is damaged (truncated torch file)"),
    (EVALUATE, ["--steps", "0"], "argument --steps: expected an int >= 1, got '0'"),
    (EVALUATE, ["--patience", "0"], "argument --patience: expected an int >= 1"),
    (EVALUATE, ["--alpha-decay", "-0.5"], "argument --alpha-decay: expected a finite real > 0"),
    (EVALUATE, ["--stop-threshold", "nan"], "argument --stop-threshold: expected a finite real"),
    (EVALUATE, ["--split", "dev"], "argument --split: invalid choice: 'dev'"),
    (EVALUATE, ["--json", "{root}/no/dir/r.json"], "argument --json: expected a file path in"),
    (EVALUATE, ["--batch-size", "0"], "argument --batch-size: expected an int >= 1"),
    # analyze
    (ANALYZE, ["--n-probe", "0"], "argument --n-probe: expected an int >= 1, got '0'"),
    (ANALYZE, ["--samples", "0"], "argument --samples: expected an int >= 1"),
    (ANALYZE, ["--bands", "0"], "argument --bands: expected an int >= 1"),
    (ANALYZE, ["--steps", "0"], "argument --steps: expected an int >= 1"),
    (ANALYZE, ["--n-steps-input", "0"], "argument --n-steps-input: expected an int >= 1"),
    (ANALYZE, ["--split", "dev"], "argument --split: invalid choice: 'dev'"),
    (ANALYZE, ["--device", "cuda:x"], "argument --device: expected a torch device"),
    (ANALYZE, ["--refiner", "{base}"], "expected --refiner to be a refiner checkpoint"),
    (ANALYZE, ["--base", "{refiner}"], "expected --base to be a base checkpoint"),
    (ANALYZE, ["--base", "{root}/x.pt"], "argument --base: expected an existing file"),
    (ANALYZE, ["--split", "validation"], "argument --split: invalid choice: 'validation'"),
    (ANALYZE, ["--data", "{root}/no-folder"], "argument --data: expected an existing file"),
    # train-corrector: generated flags, the corrector's own checks, a missing --out or --init
    (CORRECTOR, ["--nu", "-1"], "argument --nu: expected an int >= 0, got '-1'"),
    (CORRECTOR, ["--omega", "fast"], "argument --omega: expected a number, got 'fast'"),
    (CORRECTOR, ["--smoother", "sor"], "argument --smoother: invalid choice: 'sor'"),
    (CORRECTOR, ["--resolution", "1"], "argument --resolution: expected an int >= 2"),
    (CORRECTOR, ["--lr", "0"], "argument --lr: expected a finite real > 0, got '0'"),
    (CORRECTOR, ["--init", "{root}/missing.pt"], "argument --init: expected an existing file"),
    (CORRECTOR[:2], [], "expected --out as flags, got none"),
    (CORRECTOR[:1], [], "the following arguments are required: FAMILY"),
    (HELMHOLTZ, ["--ppw", "0"], "argument --ppw: expected a finite real >= 4, got '0'"),
    (HELMHOLTZ, ["--nu", "3"], "--nu is a flag of 'irsolve train-corrector darcy', not of"),
    (CORRECTOR, ["--ppw", "8"], "--ppw is a flag of 'irsolve train-corrector helmholtz', not"),
    # solve
    (SOLVE, ["--json", "{root}/no/dir/s.json"], "argument --json: expected a file path in"),
    (SOLVE, ["--solver", "sor"], "argument --solver: invalid choice: 'sor'"),
    (SOLVE, ["--solver", "corrector+jacobi"], "expected --corrector PATH with --solver"),
    (SOLVE, ["--corrector", "{base}", "--solver", "fcg-corrector"], "expected --corrector to be"),
    (SOLVE, ["--corrector", "{base}", "--solver", "multigrid"], "--solver multigrid, which would"),
    (SOLVE, ["--resolution", "1"], "argument --resolution: expected an int >= 2, got '1'"),
    (SOLVE, ["--rtol", "0"], "argument --rtol: expected a finite real > 0, got '0'"),
    (SOLVE, ["--maxiter", "0"], "argument --maxiter: expected an int >= 1, got '0'"),
    (SOLVE, ["--problem", "poisson", "--data", "{pt}"], "expected --problem darcy with --data"),
    (SOLVE, ["--data", "{root}/no-folder"], "argument --data: expected an existing file"),
    (SOLVE, ["--data", "{root}/text.pt"], "text.pt"),
    # issue 23: resources checked against the data and the memory before allocating
    (SOLVE, ["--data", "{pt}", "--samples", "1e9"], "expected --samples <= 4, the samples"),
    (SOLVE, ["--resolution", "1000000"], "arguments --samples and --resolution: 1 darcy pro"),
    (SOLVE, ["--samples", "10000000000", "--problem", "poisson"], "would need about 143 TiB"),
    (SOLVE, ["--resolution", "300000", "--solver", "jacobi"], "--solver jacobi (about 22 float6"),
    (SOLVE, ["--data", "{root}/empty.pt"], "empty.pt: expected at least one coefficient field"),
    (TRAIN_BASE, ["--data", "{root}/empty.pt"], "empty.pt: expected at least one sample"),
    (ANALYZE, ["--n-probe", "1000000000"], "analyze: steps=2 and n_probe=1000000000 (the tra"),
    (ANALYZE, ["--steps", "1000000000"], "analyze: steps=1000000000 and n_probe=4 (the traje"),
    (EVALUATE, ["--steps", "1000000000"], "evaluate: the per-step tables of steps=1000000000"),
    # issue 23: no traceback from inside a library, nothing replaced unasked
    (TRAIN_BASE, ["--device", "meta"], "argument --device: expected a device this machine has"),
    (SOLVE, ["--device", "mps"], "argument --device: expected a device this machine has"),
    (SOLVE, ["--json", "/dev/full"], "argument --json: expected a regular file path"),
    (SOLVE, ["--json", "~nosuchuser/s.json"], "argument --json: expected a path whose ~ names"),
    (ANALYZE, ["--out", "{root}/reported"], "holds report.md from an earlier run; pass --over"),
    # issue 29: a close flag suggested, the command that makes a missing file named
    (SOLVE, ["--n", "64"], "unrecognized arguments: --n 64; did you mean --resolution?"),
    (SOLVE, ["--resolutoin", "8"], "did you mean --resolution?"),
    (ANALYZE, ["--checkpoint", "."], "unrecognized arguments: --checkpoint .; did you mean --ref"),
    (SOLVE, ["--solver", "corrector+jacobi"], "got none (irsolve train-corrector darcy --out"),
    (TRAIN_BASE[:3], ["--out", "{pt}"], "expected --out to be a folder, got the file {pt}"),
    # issue 29: a data file where a checkpoint belongs
    (CORRECTOR, ["--init", "{pt}"], "pairs.pt: not a traini"),
]


@pytest.mark.parametrize(
    ("command", "extra", "message"), CASES, ids=[f"{c[0]} {' '.join(e)}" for c, e, _ in CASES]
)
def test_a_bad_input_is_one_line_with_exit_code_2_naming_the_flag(
    files, capsys, command, extra, message
):
    argv = [a.format(**files) for a in [*command, *extra]]
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    # The command as typed: a train-corrector family is part of its name.
    name = command[:2] if command[0] == "train-corrector" and len(command) > 1 else command[:1]
    assert lines[0].startswith(f"irsolve {' '.join(name)}: error: "), err
    assert message.format(**files) in lines[0]


def test_debug_shows_the_traceback_instead(files):
    argv = [a.format(**files) for a in EVALUATE]
    argv[argv.index("--refiner") + 1] = files["base"]
    with pytest.raises(ValueError, match="expected --refiner to be a refiner checkpoint"):
        main(["--debug", *argv])


def test_ctrl_c_is_one_line_and_exit_code_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("irsolve.cli.solve.run_solve", interrupted)
    assert main(SOLVE) == 130
    assert capsys.readouterr().err == "irsolve solve: interrupted\n"


def test_analyze_overwrite_is_accepted_where_a_report_exists(files, capsys):
    """--overwrite passes the report check: the run goes on to read the checkpoints."""
    argv = [a.format(**files) for a in [*ANALYZE, "--out", "{root}/reported", "--overwrite"]]
    argv[argv.index("--refiner") + 1] = files["base"]
    assert main(argv) == 2
    assert "expected --refiner to be a refiner checkpoint" in capsys.readouterr().err


def test_analyze_names_samples_beyond_what_the_split_holds(files, capsys, caplog):
    """--samples larger than the split is analysed on what it holds, and said so (then the
    probe count, far beyond the memory, stops the run before any work)."""
    argv = [a.format(**files) for a in [*ANALYZE, "--samples", "50", "--n-probe", "10000000000"]]
    assert main(argv) == 2
    assert "--samples 50 is more than the 1 sample(s) of --split test of" in caplog.text
    assert "would need about" in capsys.readouterr().err


@pytest.mark.parametrize(("contrast", "warned"), [(1e3, True), (4.0, False)])
def test_solve_names_multigrid_robust_when_multigrid_fails_on_high_contrast(
    tmp_path, caplog, contrast, warned
):
    """Binary per-node coefficients (1 or the contrast, each with probability 1/2): the default
    multigrid needs about 200 V-cycles at contrast 1e3 on 19^2 (README), so 20 are too few."""
    gen = torch.Generator().manual_seed(0)
    a = torch.where(torch.rand(1, 19, 19, generator=gen) > 0.5, contrast, 1.0)
    torch.save({"x": a, "y": a}, tmp_path / "contrast.pt")
    argv = ["solve", "--data", str(tmp_path / "contrast.pt"), "--samples", "1"]
    assert main([*argv, "--maxiter", "20" if warned else "1"]) == 1
    assert ("Multigrid.robust()" in caplog.text) == warned
