"""irsolve.data.darcy_files: Darcy2D problems from the coefficient fields of data files.

References: scipy's sparse direct solve of the same matrix, and the solutions
of the generator that wrote the file (:func:`irsolve.data.darcy_samples`).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch
from own_files import H, arrays, one_line_error, write_pdebench, write_pt

from irsolve import solve
from irsolve.data import darcy_count, darcy_problems, darcy_samples, make_darcy_dataset
from irsolve.solvers import Multigrid


def test_bool_mask_becomes_fno_coefficients_and_matches_a_sparse_direct_solve(tmp_path):
    x, y = arrays()
    problem = darcy_problems(write_pt(tmp_path / "d.pt", x, y), indices=[4, 1])
    expected = np.where(x[[4, 1]], 12.0, 3.0)  # Li et al. 2021: 12 where positive, 3 elsewhere
    np.testing.assert_array_equal(problem.a[:, 0].numpy(), expected)
    sol = solve(None, Multigrid(), problem, tol=0.0, rtol=1e-12, maxiter=50)
    for b, matrix in enumerate(problem.to_scipy()):
        reference = spla.spsolve(matrix.tocsc(), np.ones(H * H)).reshape(H, H)
        # rtol 1e-12 on the residual, cond(A) < 1e3 at n = 8: error below 1e-9
        np.testing.assert_allclose(sol.u[b, 0].numpy(), reference, rtol=1e-9, atol=0)


def test_darcy_problems_from_a_generated_file_reproduce_its_solutions(tmp_path):
    a, u = darcy_samples(3, 15, generator=torch.Generator().manual_seed(0))
    np.savez(tmp_path / "gen.npz", x=a[:, 0].numpy(), y=u[:, 0].numpy())
    problem = darcy_problems(tmp_path / "gen.npz")
    sol = solve(None, Multigrid(), problem, tol=0.0, rtol=1e-12, maxiter=50)
    # both solved to a relative residual <= 1e-10 on the same grid, cond(A) ~ 4e2 at n = 15
    error = (sol.u - u).flatten(1).norm(dim=1) / u.flatten(1).norm(dim=1)
    assert float(error.max()) < 1e-7


def test_pdebench_forcing_comes_from_the_file_name(tmp_path):
    nu = np.random.default_rng(0).uniform(0.5, 2.0, (2, H, H))
    path = write_pdebench(tmp_path / "2D_DarcyFlow_beta0.1_Train.hdf5", nu, np.zeros_like(nu))
    problem = darcy_problems(path, indices=[1])
    assert float(problem.f.unique()) == pytest.approx(0.1)
    np.testing.assert_allclose(problem.a[0, 0].numpy(), nu[1].astype(np.float32))
    assert float(darcy_problems(path, forcing=2.0).f.unique()) == 2.0


def test_darcy_problems_reject_bad_indices_and_multichannel_inputs(tmp_path):
    path = write_pt(tmp_path / "d.pt", *arrays())
    assert "[0, 12)" in one_line_error(lambda: darcy_problems(path, indices=[12]))
    two = write_pt(tmp_path / "two.pt", torch.ones(3, 2, 8, 8), torch.ones(3, 1, 8, 8))
    assert "one real or bool coefficient" in one_line_error(lambda: darcy_problems(two))


@pytest.mark.parametrize(
    ("indices", "error", "message"),
    [
        ([0.5], TypeError, "expected indices to be ints, got 0.5 (float)"),  # was: sample 0
        ([True], TypeError, "expected indices to be ints, got True (bool)"),
        (range(10**12), ValueError, "expected at most 12 indices in [0, 12) (the samples it"),
        ([], ValueError, "expected at least one index in [0, 12), got none"),
    ],
)
def test_darcy_problems_refuse_indices_that_are_not_sample_numbers(
    tmp_path, indices, error, message
):
    path = write_pt(tmp_path / "d.pt", *arrays())
    with pytest.raises(error) as info:
        darcy_problems(path, indices=indices)
    assert message in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("beta", "got"),
    [
        ("beta1.0.0", "'1.0.0'"),
        ("betanan", "'nan'"),  # was: the default forcing 1, silently
        ("betainf", "'inf'"),
        ("betaX", "'X'"),
        ("beta", "''"),
    ],
)
def test_a_pdebench_name_whose_beta_does_not_parse_is_named(tmp_path, beta, got):
    nu = np.ones((1, H, H))
    path = write_pdebench(tmp_path / f"2D_DarcyFlow_{beta}_Train.hdf5", nu, nu)
    message = one_line_error(lambda: darcy_problems(path))
    assert message.startswith(f"{path}: expected PDEBench's forcing as a finite number")
    assert f"got {got};" in message


def test_a_pdebench_name_without_beta_has_the_default_forcing(tmp_path):
    nu = np.ones((1, H, H))
    for name in ("2D_DarcyFlow_Train.hdf5", "alphabeta_run.hdf5"):
        path = write_pdebench(tmp_path / name, nu, nu)
        assert float(darcy_problems(path).f.unique()) == 1.0


def test_darcy_count_is_the_number_of_fields_and_refuses_an_empty_file(tmp_path):
    assert darcy_count(write_pt(tmp_path / "d.pt", *arrays())) == 12
    empty = write_pt(tmp_path / "e.pt", torch.ones(0, 8, 8), torch.ones(0, 8, 8))
    assert "expected at least one coefficient field" in one_line_error(lambda: darcy_count(empty))


def test_static_well_dataset_gives_its_coefficients_and_solutions(tmp_path):
    root = make_darcy_dataset(tmp_path, 2, 1, 2, resolution=15, seed=1)
    problem = darcy_problems(root, split="test")
    (path,) = (root / "data" / "test").glob("*.hdf5")
    with h5py.File(path, "r") as f:
        a, u = f["t0_fields"]["a"][:, 0], f["t0_fields"]["u"][:, 0]  # (N, 15, 15) float64
    np.testing.assert_array_equal(problem.a[:, 0].numpy(), a)
    sol = solve(None, Multigrid(), problem, tol=0.0, rtol=1e-12, maxiter=50)
    # the file's u was solved to a relative residual 1e-10 on this grid; cond(A) ~ 4e2
    error = np.linalg.norm((sol.u[:, 0].numpy() - u).reshape(2, -1), axis=1)
    assert float((error / np.linalg.norm(u.reshape(2, -1), axis=1)).max()) < 1e-7
