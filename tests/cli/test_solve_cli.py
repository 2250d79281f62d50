"""``irsolve solve``: generated and file problems, every solver, checked against scipy spsolve."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest
import torch
from scipy.sparse.linalg import spsolve

from irsolve import Cycle
from irsolve.cli import build_parser, main
from irsolve.cli.solve import SOLVE_ARRAYS, SOLVERS, make_problem, relative_errors
from irsolve.data.generate import make_darcy_dataset
from irsolve.learned.checkpoint import model_state, save_checkpoint
from irsolve.learned.darcy_corrector import DarcyCorrectorConfig, corrector_net
from irsolve.learned.nets.factory import net_config
from irsolve.solvers import Darcy2D, darcy_coefficient, gaussian_random_field

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corrector(tmp_path_factory):
    """An untrained corrector checkpoint as train-corrector writes it (config and weights)."""
    torch.manual_seed(0)
    net = corrector_net(modes=2, width=4, layers=1)
    config = {
        "objective": "corrector",
        "family": "darcy",
        "model": net_config(net),
        "corrector": dataclasses.asdict(DarcyCorrectorConfig(nu=2)),
    }
    path = tmp_path_factory.mktemp("corrector") / "best.pt"
    save_checkpoint(path, {"model": model_state(net), "config": config}, {"config": config})
    return str(path)


def _solve(tmp_path, *argv: str) -> dict:
    report = tmp_path / "solve.json"
    assert main(["solve", *argv, "--json", str(report)]) == 0
    return json.loads(report.read_text())


def test_multigrid_on_generated_darcy_matches_spsolve(tmp_path, capsys):
    report = _solve(tmp_path, "--resolution", "15", "--samples", "2", "--rtol", "1e-10", "--check")
    assert report["retcodes"] == ["SUCCESS", "SUCCESS"]
    # ||e|| / ||u|| <= cond(A) * ||r|| / ||f||; cond(A) ~ (4/pi^2) (n+1)^2 * 4 (contrast 12/3)
    # ~ 400 at n = 15, so a relative residual of 1e-10 bounds the error by about 4e-8.
    assert max(report["relative_errors"]) < 1e-7
    printed = capsys.readouterr().out
    assert "Solution(retcode=SUCCESS, batch=2" in printed and "spsolve: max" in printed


def test_the_generated_problems_are_the_seeded_fno_darcy_fields():
    args = build_parser().parse_args(
        ["solve", "--resolution", "9", "--samples", "3", "--seed", "5"]
    )
    problem = make_problem(args)
    field = gaussian_random_field(3, 9, generator=torch.Generator().manual_seed(5))
    expected = Darcy2D(darcy_coefficient(field.to(torch.float64)))
    torch.testing.assert_close(problem.a, expected.a, rtol=0, atol=0)
    torch.testing.assert_close(problem.f, expected.f, rtol=0, atol=0)


@pytest.mark.parametrize("solver", [s for s in SOLVERS if "corrector" not in s])
def test_each_classical_solver_converges_on_poisson(tmp_path, solver):
    argv = ["--problem", "poisson", "--resolution", "7", "--samples", "2", "--solver", solver]
    report = _solve(tmp_path, *argv, "--rtol", "1e-9", "--maxiter", "5000", "--check")
    assert report["retcodes"] == ["SUCCESS", "SUCCESS"]
    # Poisson at n = 7: cond(A) ~ 26, so the error is below 26 * 1e-9.
    assert max(report["relative_errors"]) < 1e-7


@pytest.mark.parametrize("solver", ["corrector+jacobi", "fcg-corrector"])
def test_a_hybrid_with_a_corrector_checkpoint_converges_on_darcy(tmp_path, corrector, solver):
    # an even grid: neuraloperator's FNO warns on odd sizes (its spectral shift)
    argv = ["--resolution", "16", "--samples", "2", "--solver", solver, "--corrector", corrector]
    report = _solve(tmp_path, *argv, "--rtol", "1e-8", "--maxiter", "3000", "--check")
    # An untrained corrector with the energy step length never raises the A-norm error, and
    # the trained number of Jacobi sweeps (2) per cycle converges on its own.
    assert report["retcodes"] == ["SUCCESS", "SUCCESS"]
    assert max(report["relative_errors"]) < 1e-5  # cond ~ 400 times 1e-8


def test_a_data_file_s_coefficients_are_solved(tmp_path):
    folder = make_darcy_dataset(tmp_path / "data", 1, 1, 2, resolution=7)
    report = _solve(tmp_path, "--data", str(folder), "--samples", "2", "--check")
    assert report["retcodes"] == ["SUCCESS", "SUCCESS"]
    assert max(report["relative_errors"]) < 1e-6


def test_a_solve_that_does_not_converge_exits_1(capsys):
    argv = ["solve", "--solver", "jacobi", "--resolution", "15", "--samples", "1", "--maxiter", "3"]
    assert main(argv) == 1
    assert "MAX_ITERS" in capsys.readouterr().out


def test_relative_errors_are_zero_for_the_spsolve_solution_and_one_for_zero():
    problem = make_problem(
        argparse.Namespace(
            data=None, problem="poisson", samples=2, resolution=5, seed=0, device="cpu"
        )
    )
    exact = [
        spsolve(m.tocsc(), problem.f[b].flatten().numpy()) for b, m in enumerate(problem.to_scipy())
    ]
    u = torch.stack([torch.from_numpy(e).view(1, 5, 5) for e in exact])
    assert relative_errors(problem, u).max() < 1e-14
    assert relative_errors(problem, torch.zeros_like(u)) == pytest.approx([1.0, 1.0])


def test_a_corrector_given_to_a_solver_that_ignores_it_is_refused(corrector, capsys):
    argv = ["solve", "--solver", "multigrid", "--corrector", corrector, "--resolution", "7"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--corrector only with --solver corrector+jacobi or fcg-corrector" in err
    assert "got it with --solver multigrid" in err


def test_a_helmholtz_corrector_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    from irsolve.learned.helmholtz_corrector import (
        HelmholtzCorrectorConfig,
        helmholtz_corrector_net,
    )

    net = helmholtz_corrector_net(2, 1)
    config = {"objective": "corrector", "family": "helmholtz", "model": net_config(net),
              "corrector": dataclasses.asdict(HelmholtzCorrectorConfig())}  # fmt: skip
    path = tmp_path / "helmholtz.pt"
    save_checkpoint(path, {"model": model_state(net), "config": config}, {"config": config})
    argv = ["solve", "--solver", "fcg-corrector", "--corrector", str(path), "--resolution", "7"]
    assert main(argv) == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "--corrector" in x]
    assert "expected --corrector to be a darcy corrector checkpoint" in line
    assert "of the helmholtz family" in line


def test_the_corrector_solvers_run_the_trained_cycle(corrector):
    argv = ["solve", "--solver", "fcg-corrector", "--corrector", corrector]
    args = build_parser().parse_args(argv)
    preconditioner = SOLVERS["fcg-corrector"](args).preconditioner
    assert isinstance(preconditioner, Cycle)
    assert preconditioner.solvers[1].sweeps == 2  # the checkpoint's nu, not a default


def test_every_solver_has_a_measured_memory_peak():
    """irsolve solve refuses a grid beyond the memory by each solver's measured peak."""
    assert SOLVE_ARRAYS.keys() == SOLVERS.keys()
    assert all(isinstance(v, int) and v >= 20 for v in SOLVE_ARRAYS.values())
