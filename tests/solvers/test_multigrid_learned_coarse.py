"""Multigrid with any coarse solver (``Multigrid(coarse=ResidualCorrector(...))``, Jacobi, a Cycle).

References are independent of the code under test: dense solves of the
Galerkin coarse matrix (``stencil_to_dense``) and ``scipy.sparse.linalg.spsolve``
(:func:`irsolve.analysis.reference_solve`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

import irsolve.solvers.multigrid as multigrid_module
from irsolve import Cycle, solve
from irsolve.analysis import reference_solve
from irsolve.learned.darcy_corrector import corrector_net
from irsolve.solvers import (
    Darcy2D,
    FlexibleCG,
    GaussSeidel,
    Jacobi,
    Multigrid,
    Poisson2D,
    ResidualCorrector,
    darcy_coefficient,
    gaussian_random_field,
)
from irsolve.solvers._stencil import stencil_to_dense
from irsolve.solvers.corrector import CorrectorContext
from irsolve.solvers.multigrid import CoarseProblem

DT = torch.float64


def _darcy(batch: int, n: int) -> Darcy2D:
    """FNO Darcy coefficients (3 / 12), ``f = 1``."""
    seeded = torch.Generator().manual_seed(n)
    return Darcy2D(darcy_coefficient(gaussian_random_field(batch, n, generator=seeded)))


def _untrained_corrector() -> ResidualCorrector:
    torch.manual_seed(3)
    return ResidualCorrector(corrector_net(modes=4, width=8, layers=2).eval())


def _energy_sq(dense: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    v = e.reshape(e.shape[0], -1, 1)
    return (v.transpose(1, 2) @ dense @ v).flatten()


class ExactCoarseNet(nn.Module):
    """Returns ``A_c^{-1} z`` for the normalised residual ``z`` (channel 1).

    The corrector scales the output by ``s / a_g``, and the energy step length
    removes any positive scale, so the learned coarse step is then the exact one.
    """

    def __init__(self, coarse_dense: torch.Tensor) -> None:
        super().__init__()
        self.coarse_dense = coarse_dense
        self.dtype_anchor = nn.Parameter(torch.zeros((), dtype=DT))  # runs the net in float64

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x[:, 1:2]
        solved = torch.linalg.solve(self.coarse_dense, z.reshape(z.shape[0], -1, 1))
        return solved.reshape(z.shape)


def test_default_is_the_direct_coarse_solve():
    """``Multigrid()`` keeps the LU coarse solve: its ``Hierarchy`` holds the factor."""
    ctx = Multigrid().prepare(_darcy(2, 31))
    assert ctx.lu is not None and ctx.coarse is None
    assert "coarse solver: dense LU of 49 unknowns" in repr(ctx)


def test_exact_net_reproduces_the_direct_cycle():
    """With a net returning ``A_c^{-1} z``, a cycle equals the LU cycle to rounding."""
    problem = _darcy(2, 63)
    direct = Multigrid(coarsest=16)
    ctx = direct.prepare(problem)
    coarse_dense = stencil_to_dense(ctx.levels[-1].stencil, False)
    learned = Multigrid(coarse=ResidualCorrector(ExactCoarseNet(coarse_dense)), coarsest=16)
    learned_ctx = learned.prepare(problem)
    assert learned_ctx.lu is None and learned_ctx.levels[-1].n == 15
    assert isinstance(learned_ctx.coarse, CorrectorContext)
    assert isinstance(learned_ctx.coarse.problem, CoarseProblem)
    assert learned_ctx.coarse_name == "ResidualCorrector"
    r = problem.f
    expected = direct.precondition(ctx, r)
    got = learned.precondition(learned_ctx, r)
    # Both are the same float64 arithmetic up to the coarse solve (LU vs solve + alpha).
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12 * float(expected.abs().max()))


def test_untrained_coarse_step_never_increases_the_energy_error():
    """Energy step length on ``A_c``: the coarse correction ``e`` of a random untrained FNO
    satisfies ``<r, e> = <e, A_c e>`` (the optimum along its direction), hence with
    ``u = A_c^{-1} r``: ``||u - e||_{A_c}^2 = ||u||_{A_c}^2 - <e, A_c e> <= ||u||_{A_c}^2``."""
    problem = _darcy(3, 64)
    mg = Multigrid(coarse=_untrained_corrector(), coarsest=16)
    ctx = mg.prepare(problem)
    stencil = ctx.levels[-1].stencil
    dense = stencil_to_dense(stencil, False)
    r = torch.randn(3, 1, 16, 16, dtype=DT, generator=torch.Generator().manual_seed(5))
    e = mg._coarse_solve(ctx, r)
    exact = torch.linalg.solve(dense, r.reshape(3, -1, 1)).reshape(r.shape)
    before = _energy_sq(dense, exact)
    after = _energy_sq(dense, exact - e)
    inner = (r * e).flatten(1).sum(dim=1)
    torch.testing.assert_close(inner, _energy_sq(dense, e), rtol=1e-9, atol=0.0)
    torch.testing.assert_close(after, before - _energy_sq(dense, e), rtol=1e-9, atol=0.0)
    assert bool((after < before).all())


def test_coarse_feature_is_the_centred_restricted_log_coefficient():
    """A constant coefficient gives a zero feature and ``a_g`` equal to it."""
    a = torch.full((2, 1, 32, 32), 7.0, dtype=DT)
    ctx = Multigrid(coarse=_untrained_corrector(), coarsest=8).prepare(Darcy2D(a))
    assert ctx.coarse.features.shape == (2, 1, 8, 8)
    assert ctx.coarse.features.dtype == torch.float32  # the net's dtype
    assert float(ctx.coarse.features.abs().max()) < 1e-6
    torch.testing.assert_close(ctx.coarse.scale, torch.full((2,), 7.0, dtype=DT))


def test_the_coarse_coefficient_is_the_restricted_log_coefficient():
    """``log a_c = R log a / R 1`` level by level is a weighted mean (``R`` has nonnegative
    weights), so the coarse ``log a`` stays within the fine extremes; the coarse problem
    carries the Galerkin stencil of the last level."""
    grf = gaussian_random_field(2, 32, generator=torch.Generator().manual_seed(9))
    problem = Darcy2D(darcy_coefficient(grf))
    ctx = Multigrid(coarse=_untrained_corrector(), coarsest=8).prepare(problem)
    coarse = ctx.coarse.problem
    assert torch.equal(coarse.stencil, ctx.levels[-1].stencil)
    log_a, fine = coarse.a.log(), problem.a.log()
    assert coarse.a.shape == (2, 1, 8, 8)
    assert bool((log_a >= fine.amin(dim=(1, 2, 3), keepdim=True) - 1e-12).all())
    assert bool((log_a <= fine.amax(dim=(1, 2, 3), keepdim=True) + 1e-12).all())


@pytest.mark.parametrize("coarse_sweeps", [0, 2])
def test_fcg_with_learned_coarse_solve_matches_spsolve(coarse_sweeps):
    """FCG(Multigrid with an untrained coarse FNO) still converges (the energy step keeps
    the preconditioner positive); 1e-10 relative residual, so the error is below
    ``cond(A) * 1e-10`` (cond ~ 2e3 at 32^2 with contrast 4): 1e-6. The old
    ``coarse_sweeps=s`` (the multigrid's smoother, Gauss-Seidel) is now a Cycle."""
    problem = _darcy(2, 32)
    corrector = _untrained_corrector()
    coarse = (
        corrector if coarse_sweeps == 0 else Cycle(corrector, GaussSeidel(sweeps=coarse_sweeps))
    )
    mg = Multigrid(coarse=coarse, coarsest=8)
    sol = solve(None, FlexibleCG(mg), problem, tol=0.0, rtol=1e-10, maxiter=100)
    assert sol.success
    reference = reference_solve(problem)
    error = (sol.u - reference).flatten(1).norm(dim=1) / reference.flatten(1).norm(dim=1)
    assert float(error.max()) < 1e-6


def test_learned_coarse_solve_is_not_limited_to_max_direct():
    """The dense-LU size limit does not apply to a learned coarse solve (80^2 > 4096)."""
    problem = _darcy(1, 80)
    with pytest.raises(ValueError, match="at most 4096 unknowns"):
        Multigrid(coarsest=80).prepare(problem)
    ctx = Multigrid(coarse=_untrained_corrector(), coarsest=80).prepare(problem)
    assert len(ctx.levels) == 1 and ctx.lu is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"coarse": nn.Identity()}, TypeError, r"coarse \('direct' or a solver\).*got Identity"),
        ({"coarse": "lu"}, ValueError, "coarse"),
        ({"coarse": Jacobi}, TypeError, r"pass an instance, Jacobi\(\)"),
    ],
)
def test_bad_coarse_arguments_give_one_line(kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        Multigrid(**kwargs)
    assert "\n" not in str(info.value)


def test_multigrid_imports_nothing_learned():
    """The classical multigrid knows its coarse solver only as a FixedPointSolver."""
    tree = ast.parse(Path(multigrid_module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import: resolve it here"
            imported.add(node.module)
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
    forbidden = ("irsolve.learned", "irsolve.solvers.corrector", "irsolve.solvers.helmholtz")
    assert imported and not {m for m in imported if m.startswith(forbidden)}, imported
    assert not any("Corrector" in name or "Helmholtz" in name for name in imported), imported


@pytest.mark.parametrize("family", ["poisson", "darcy"])
def test_jacobi_sweeps_as_the_coarse_solve_converge_to_spsolve(family):
    """Ten Jacobi sweeps from zero on the 8^2 Galerkin problem replace the LU solve: an
    inexact coarse solve, so the V-cycle converges more slowly but to the same solution
    (relative residual 1e-10 and cond(A) ~ 2e3 at 32^2 bound the error by ~1e-6)."""
    problem = _darcy(2, 32) if family == "darcy" else Poisson2D(torch.ones(2, 1, 32, 32, dtype=DT))
    mg = Multigrid(coarse=Jacobi(sweeps=10), coarsest=8)
    ctx = mg.prepare(problem)
    assert ctx.lu is None and ctx.coarse_name == "Jacobi"
    assert isinstance(ctx.coarse, CoarseProblem) and ctx.coarse.f.shape == (2, 1, 8, 8)
    sol = solve(None, mg, problem, tol=0.0, rtol=1e-10, maxiter=200)
    assert sol.success, sol
    reference = reference_solve(problem)
    error = (sol.u - reference).flatten(1).norm(dim=1) / reference.flatten(1).norm(dim=1)
    assert float(error.max()) < 1e-6
    exact_coarse = solve(None, Multigrid(coarsest=8), problem, tol=0.0, rtol=1e-10, maxiter=200)
    assert int(exact_coarse.iterations.max()) <= int(sol.iterations.max())
