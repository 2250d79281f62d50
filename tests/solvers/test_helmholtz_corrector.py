"""The learned Helmholtz preconditioner: minimal-residual step, and training that pays off.

References: the minimal-residual step length is checked against NumPy's
least-squares solution of ``min_a ||r - a A d||``; iteration counts against
FGMRES with the shifted-Laplacian multigrid cycle alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from irsolve import solve
from irsolve.learned.helmholtz_training import (
    HelmholtzObjective,
    helmholtz_corrector_net,
    krylov_vectors,
    mixed_speed,
)
from irsolve.learned.training import TrainConfig, fit, seed_everything
from irsolve.solvers import FlexibleGMRES, Helmholtz2D, ShiftedLaplacian
from irsolve.solvers.helmholtz import point_source, random_source
from irsolve.solvers.helmholtz_corrector import HelmholtzCorrector, learned_preconditioner


def _problem(n: int, batch: int, seed: int) -> Helmholtz2D:
    g = torch.Generator().manual_seed(seed)
    return Helmholtz2D(mixed_speed(batch, n, g), point_source(batch, n, generator=g))


def test_learned_step_never_increases_the_residual_with_a_random_net():
    torch.manual_seed(3)
    problem = _problem(24, 4, seed=0)
    corrector = HelmholtzCorrector(helmholtz_corrector_net(4, 2))
    ctx = corrector.prepare(problem)
    h = random_source(4, 24, generator=torch.Generator().manual_seed(1))
    for k in range(3):
        before = problem.residual(h).flatten(1).norm(dim=1)
        h = corrector.step(ctx, h, k)
        after = problem.residual(h).flatten(1).norm(dim=1)
        assert bool((after <= before * (1 + 1e-12)).all())


def test_step_length_is_numpys_least_squares_minimiser():
    torch.manual_seed(4)
    problem = _problem(16, 2, seed=2)
    corrector = HelmholtzCorrector(helmholtz_corrector_net(4, 2))
    ctx = corrector.prepare(problem)
    r = random_source(2, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        d = corrector.direction(ctx, r)
        alpha = corrector.step_size(ctx, r, d)
        ad = problem.apply(d)
    for b in range(2):
        column = ad[b].flatten().numpy()[:, None]
        best = np.linalg.lstsq(column, r[b].flatten().numpy(), rcond=None)[0][0]
        assert abs(complex(alpha[b]) - best) < 1e-10 * abs(best)


def test_energy_step_is_refused():
    with pytest.raises(ValueError, match="residual"):
        HelmholtzCorrector(helmholtz_corrector_net(4, 2), step_length="energy")


@pytest.mark.slow
def test_tiny_trained_preconditioner_beats_sl_multigrid_on_held_out_media():
    """About 60 s: 12 media at 48^2, 3 epochs (~1 minute of training); held out: 4 other media.

    Measured when written: SL multigrid 47-67 iterations, learned at most 63.
    """
    torch.set_num_threads(1)
    train = krylov_vectors(mixed_speed(12, 48, torch.Generator().manual_seed(0)))
    seed_everything(0)
    net = helmholtz_corrector_net(8, 3)
    fit(HelmholtzObjective(net), train, None, TrainConfig(epochs=3, batch_size=12, lr=1e-3,
        progress=False))  # fmt: skip
    problem = _problem(48, 4, seed=7)
    options = {"tol": 0.0, "rtol": 1e-7, "maxiter": 400}
    classical = solve(None, FlexibleGMRES(ShiftedLaplacian(), restart=200), problem, **options)
    preconditioner, steps = learned_preconditioner(net, repeats=1)
    learned = solve(None, FlexibleGMRES(preconditioner, restart=200, preconditioner_steps=steps),
                    problem, **options)  # fmt: skip
    assert classical.success and learned.success
    assert int(learned.iterations.max()) < int(classical.iterations.max())
    assert int(learned.iterations.sum()) < int(classical.iterations.sum())


def test_train_corrector_cli_trains_the_helmholtz_preconditioner(tmp_path, capsys):
    from irsolve.cli import main
    from irsolve.learned.helmholtz_training import load_helmholtz_net

    out = tmp_path / "run"
    argv = ["train-corrector", "--problem", "helmholtz", "--out", str(out), "--resolution", "16",
            "--train-samples", "2", "--val-samples", "1", "--epochs", "1", "--batch-size", "8",
            "--no-progress", "--unet-base", "4", "--unet-depth", "2",
            "--attenuation", "0.01"]  # fmt: skip
    assert main(argv) == 0
    assert "best checkpoint" in capsys.readouterr().out
    net, settings = load_helmholtz_net(out / "best.pt")
    assert settings.attenuation == 0.01 and net.base_channels == 4


def test_helmholtz_cli_refuses_data_files(tmp_path):
    from irsolve.cli import main

    with pytest.raises((ValueError, SystemExit)):
        main(["train-corrector", "--problem", "helmholtz", "--out", str(tmp_path / "r"),
              "--data", str(tmp_path / "x.pt")])  # fmt: skip
