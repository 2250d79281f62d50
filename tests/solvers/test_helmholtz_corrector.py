"""The learned Helmholtz preconditioner: one solver, training that pays off, its CLI.

References: iteration counts against FGMRES with the shifted-Laplacian
multigrid cycle alone; the cycle's application against its children applied
by hand. The corrector step itself (minimal residual against NumPy's
least-squares solution, the (Re, Im) channels, the refused energy step) is
tested with the one :class:`~irsolve.solvers.ResidualCorrector` in
``tests/solvers/test_corrector.py``.
"""

from __future__ import annotations

import pytest
import torch

from irsolve import Cycle, solve
from irsolve.cli import main
from irsolve.interface import FixedPointSolver, apply_from_zero
from irsolve.learned.corrector_training import CorrectorObjective
from irsolve.learned.helmholtz_corrector import (
    HelmholtzCorrector,
    HelmholtzCorrectorConfig,
    helmholtz_corrector_net,
    krylov_vectors,
    mixed_speed,
)
from irsolve.learned.trained import load_corrector
from irsolve.learned.training import TrainConfig, fit, seed_everything
from irsolve.solvers import FlexibleGMRES, Helmholtz2D, ResidualCorrector, ShiftedLaplacian
from irsolve.solvers.helmholtz import point_source, random_source
from irsolve.solvers.helmholtz_preconditioner import learned_preconditioner


def _problem(n: int, batch: int, seed: int) -> Helmholtz2D:
    g = torch.Generator().manual_seed(seed)
    return Helmholtz2D(mixed_speed(batch, n, g), point_source(batch, n, generator=g))


def _counted_net() -> tuple[torch.nn.Module, list[int]]:
    torch.manual_seed(0)
    net = helmholtz_corrector_net(4, 2)
    calls = []
    net.register_forward_hook(lambda module, args, out: calls.append(1))
    return net, calls


def test_learned_preconditioner_is_one_solver_of_sl_and_corrector_repeated():
    net, _ = _counted_net()
    pre = learned_preconditioner(net)
    assert isinstance(pre, FixedPointSolver) and not isinstance(pre, tuple)
    assert isinstance(pre, Cycle) and pre.repeats == 3
    shifted, corrector = pre.solvers
    assert isinstance(shifted, ShiftedLaplacian) and isinstance(corrector, ResidualCorrector)
    assert corrector.net is net and corrector.step_length == "residual"
    assert learned_preconditioner(net, repeats=1).repeats == 1


def test_one_application_is_the_sl_step_then_the_learned_step_repeats_times():
    net, calls = _counted_net()
    pre = learned_preconditioner(net, repeats=2)
    problem = _problem(16, 2, seed=1)
    r = random_source(2, 16, generator=torch.Generator().manual_seed(2))
    shifted, corrector = pre.solvers
    with torch.no_grad():
        got = apply_from_zero(pre, pre.prepare(problem), r)
        assert len(calls) == 2
        target = problem.with_rhs(r)
        sl_ctx, c_ctx = shifted.prepare(target), corrector.prepare(target)
        z = torch.zeros_like(r)
        for i in range(2):
            z = corrector.step(c_ctx, shifted.step(sl_ctx, z, i), i)
    assert torch.equal(got, z)


def test_flexible_gmres_with_defaults_calls_the_net():
    """The old tuple API ran FGMRES(pre) without the net when the step count was forgotten."""
    net, calls = _counted_net()
    problem = _problem(16, 2, seed=3)
    with torch.no_grad():
        sol = solve(None, FlexibleGMRES(learned_preconditioner(net)), problem, maxiter=4)
    applications = int(sol.iterations.max())
    assert applications >= 1
    # Each FGMRES iteration applies the preconditioner once: three learned steps.
    assert len(calls) >= 3 * applications


def test_learned_preconditioner_refuses_a_bad_shifted_laplacian_or_repeats():
    net, _ = _counted_net()
    with pytest.raises(TypeError, match="expected shifted to be a ShiftedLaplacian instance"):
        learned_preconditioner(net, shifted=ShiftedLaplacian)
    with pytest.raises((TypeError, ValueError), match="repeats"):
        learned_preconditioner(net, repeats=0)


@pytest.mark.slow
def test_tiny_trained_preconditioner_beats_sl_multigrid_on_held_out_media():
    """About 60 s: 12 media at 48^2, 3 epochs (~1 minute of training); held out: 4 other media.

    Measured when written: SL multigrid 47-67 iterations, learned at most 63.
    """
    torch.set_num_threads(1)
    config = HelmholtzCorrectorConfig(repeats=1)
    train = krylov_vectors(mixed_speed(12, 48, torch.Generator().manual_seed(0)), config)
    seed_everything(0)
    net = helmholtz_corrector_net(8, 3)
    objective = CorrectorObjective(HelmholtzCorrector(), net, config)
    fit(objective, train, None, TrainConfig(epochs=3, batch_size=12, lr=1e-3, progress=False))
    problem = _problem(48, 4, seed=7)
    options = {"tol": 0.0, "rtol": 1e-7, "maxiter": 400}
    classical = solve(None, FlexibleGMRES(ShiftedLaplacian(), restart=200), problem, **options)
    learned = solve(None, FlexibleGMRES(objective.cycle, restart=200), problem, **options)
    assert classical.success and learned.success
    assert int(learned.iterations.max()) < int(classical.iterations.max())
    assert int(learned.iterations.sum()) < int(classical.iterations.sum())


TINY = ["--resolution", "16", "--train-samples", "2", "--val-samples", "1", "--epochs", "1",
        "--batch-size", "8", "--no-progress"]  # fmt: skip


def test_train_corrector_cli_trains_the_helmholtz_preconditioner(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train-corrector", "helmholtz", "--out", str(out), *TINY, "--unet-base", "4",
            "--unet-depth", "2", "--attenuation", "0.01", "--repeats", "2"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "best checkpoint" in printed and "val_residual_factor" in printed
    pre, settings = load_corrector(out / "best.pt")
    assert settings.attenuation == 0.01 and settings.repeats == 2
    assert isinstance(pre, Cycle) and pre.repeats == 2
    assert pre.solvers[1].net.base_channels == 4


@pytest.mark.parametrize(
    ("family", "flag", "owner"),
    [
        ("helmholtz", ["--data", "x.pt"], "darcy"),
        ("helmholtz", ["--modes", "4"], "darcy"),
        ("helmholtz", ["--nu", "2"], "darcy"),
        ("helmholtz", ["--val-fraction", "0.25"], "darcy"),
        ("darcy", ["--unet-base", "4"], "helmholtz"),
        ("darcy", ["--ppw", "8"], "helmholtz"),
    ],
)
def test_a_flag_of_the_other_family_is_a_one_line_error(tmp_path, capsys, family, flag, owner):
    argv = ["train-corrector", family, "--out", str(tmp_path / "r"), *flag]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    (message,) = [line for line in err.splitlines() if "error:" in line]
    assert message.startswith(
        f"irsolve train-corrector {family}: error: {flag[0]} is a flag of "
        f"'irsolve train-corrector {owner}', not of 'irsolve train-corrector {family}'"
    ), err
    assert not (tmp_path / "r").exists()  # refused before any training
