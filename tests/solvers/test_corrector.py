"""The closed-loop corrector: homogeneity, fixed point at the solution, safe step lengths.

One :class:`ResidualCorrector` serves real (Darcy, Poisson) and complex (Helmholtz)
problems; untrained nets suffice here: every property below holds for any ``Phi``.
References: ``scipy.sparse.linalg.spsolve`` and NumPy's least-squares minimiser.
A trained corrector is tested in ``tests/learned/test_corrector_training.py``, the
learned Helmholtz preconditioner in ``tests/solvers/test_helmholtz_corrector.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import spsolve

from irsolve import Cycle, Interleave, ReturnCode, solve
from irsolve.interface import with_rhs
from irsolve.learned.helmholtz_corrector import helmholtz_corrector_net, mixed_speed
from irsolve.learned.nets import base_operator
from irsolve.solvers import (
    Darcy2D,
    FlexibleCG,
    GaussSeidel,
    Helmholtz2D,
    Jacobi,
    Poisson2D,
    ResidualCorrector,
    darcy_coefficient,
    gaussian_random_field,
)
from irsolve.solvers.corrector import KH2_UNIT, corrector_features
from irsolve.solvers.helmholtz import point_source, random_source


def _net(dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    torch.manual_seed(0)
    net = base_operator("fno", 2, 1, n_modes=(4, 4), hidden_channels=8, n_layers=2)
    if dtype == torch.float64:  # Module.to(float64) would drop the spectral weights' imaginary part
        for param in net.parameters():
            param.data = param.data.to(torch.complex128 if param.is_complex() else dtype)
    return net.eval()


def _darcy(n: int = 16, batch: int = 3, f: float = 1.0) -> Darcy2D:
    grf = gaussian_random_field(batch, n, generator=torch.Generator().manual_seed(1))
    return Darcy2D(darcy_coefficient(grf), f=f)


def _energy(problem: Darcy2D, e: torch.Tensor) -> torch.Tensor:
    return (e * problem.apply(e)).flatten(1).sum(dim=1).sqrt()


NET64 = _net(torch.float64)


@pytest.mark.parametrize("step_length", ["energy", "residual", None])
@settings(max_examples=10)
@given(t=st.floats(min_value=1e-6, max_value=1e6))
def test_error_map_is_positively_homogeneous_of_degree_one(step_length, t):
    # f = 0, so u = 0 and the iterate h is minus its error: step(t h) must be t step(h).
    problem = _darcy(f=0.0)
    corrector = ResidualCorrector(NET64, step_length=step_length)
    ctx = corrector.prepare(problem)
    h = gaussian_random_field(3, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        scaled = corrector.step(ctx, t * h, 0)
        reference = t * corrector.step(ctx, h, 0)
    # float64 net: the inputs r / s agree to a few ulps (A(t h) vs t A(h)); the FNO
    # amplifies that by its Lipschitz constant, far below 1e-9 relative.
    torch.testing.assert_close(scaled, reference, rtol=1e-9, atol=1e-9 * t * h.abs().max())


def test_float32_net_step_is_homogeneous_to_single_precision():
    # The float32 net sees the same r / s up to rounding to float32 (6e-8 relative);
    # its output then differs by at most a few float32 ulps times the net's gain.
    problem = _darcy(f=0.0)
    corrector = ResidualCorrector(_net(torch.float32))
    ctx = corrector.prepare(problem)
    h = gaussian_random_field(3, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for t in (1e-10, 1e-3, 1e5):
            scaled = corrector.step(ctx, t * h, 0) / t
            torch.testing.assert_close(scaled, corrector.step(ctx, h, 0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("step_length", ["energy", "residual", None])
def test_zero_residual_leaves_the_iterate_unchanged(step_length):
    problem = _darcy()
    h = gaussian_random_field(3, 16, generator=torch.Generator().manual_seed(3))
    exact = Darcy2D(problem.a, f=problem.apply(h))  # h solves this problem: r = 0 exactly
    corrector = ResidualCorrector(_net(), step_length=step_length)
    with torch.no_grad():
        out = corrector.step(corrector.prepare(exact), h, 0)
    assert torch.equal(out, h)


def test_energy_step_never_increases_the_energy_error_and_is_optimal():
    # E(alpha) = ||e - alpha d||_A^2 is a parabola with minimum at <r, d> / <d, A d>.
    problem = _darcy(batch=4)
    u = gaussian_random_field(4, 16, generator=torch.Generator().manual_seed(4))
    problem = Darcy2D(problem.a, f=problem.apply(u))
    corrector = ResidualCorrector(_net())
    ctx = corrector.prepare(problem)
    for seed in range(3):
        h = gaussian_random_field(4, 16, generator=torch.Generator().manual_seed(10 + seed))
        with torch.no_grad():
            r = problem.residual(h)
            d = corrector.direction(ctx, r)
            alpha = corrector.step_size(ctx, r, d).view(-1, 1, 1, 1)
            after = _energy(problem, u - (h + alpha * d))
            before = _energy(problem, u - h)
            assert (after <= before * (1 + 1e-12)).all()
            for delta in (-0.1, 0.1):
                moved = _energy(problem, u - (h + (alpha * (1 + delta)) * d))
                assert (after <= moved * (1 + 1e-12)).all()


def test_residual_step_never_increases_the_residual():
    problem = _darcy(batch=4)
    corrector = ResidualCorrector(_net(), step_length="residual")
    ctx = corrector.prepare(problem)
    h = gaussian_random_field(4, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        before = problem.residual(h).flatten(1).norm(dim=1)
        after = problem.residual(corrector.step(ctx, h, 0)).flatten(1).norm(dim=1)
    assert (after <= before * (1 + 1e-12)).all()


def test_untrained_step_without_step_length_can_increase_the_error():
    # The safeguard matters: the raw step of a random net overshoots or points anywhere.
    problem = _darcy()
    corrector = ResidualCorrector(_net(), step_length=None)
    u = torch.zeros_like(problem.f)
    problem = Darcy2D(problem.a, f=0.0)
    h = gaussian_random_field(3, 16, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        out = corrector.step(corrector.prepare(problem), h, 0)
    assert (_energy(problem, u - out) > _energy(problem, u - h)).any()


def test_interleaved_with_jacobi_any_net_converges_to_the_solution():
    # Energy step (never increases ||e||_A) + Jacobi (contracts ||e||_A): convergence for any Phi.
    problem = _darcy(n=12)
    torch.manual_seed(0)
    net = torch.nn.Conv2d(2, 1, 3, padding=1)  # any Phi: a cheap one keeps the test fast
    hybrid = Interleave(ResidualCorrector(net), Jacobi(sweeps=2), pattern=(1, 2))
    sol = solve(None, hybrid, problem, tol=0.0, rtol=1e-8, maxiter=20000)
    assert sol.retcodes == [ReturnCode.SUCCESS] * 3, sol


def test_features_are_the_normalised_log_coefficient_and_zero_for_poisson():
    darcy = _darcy()
    features, scale = corrector_features(darcy)
    torch.testing.assert_close(features.mean(dim=(1, 2, 3)), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(features.exp() * scale.view(-1, 1, 1, 1), darcy.a)
    poisson = Poisson2D(torch.ones(2, 1, 8, 8))
    features, scale = corrector_features(poisson)
    assert torch.equal(features, torch.zeros(2, 1, 8, 8, dtype=torch.float64))
    assert torch.equal(scale, torch.ones(2, dtype=torch.float64))


def test_step_is_invariant_under_coefficient_scaling():
    # a -> c a gives A -> c A and A^{-1} -> A^{-1} / c: the step from the same h must agree
    # once f is scaled too (so that the solution is unchanged).
    problem = _darcy()
    h = gaussian_random_field(3, 16, generator=torch.Generator().manual_seed(7))
    corrector = ResidualCorrector(NET64)
    scaled = Darcy2D(4.0 * problem.a, f=4.0 * problem.f)
    with torch.no_grad():
        one = corrector.step(corrector.prepare(problem), h, 0)
        four = corrector.step(corrector.prepare(scaled), h, 0)
    torch.testing.assert_close(one, four, rtol=1e-9, atol=1e-12)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="expected step_length 'energy', 'residual' or None"):
        ResidualCorrector(_net(), step_length="line")
    with pytest.raises(TypeError, match="expected a stencil problem"):
        ResidualCorrector(_net()).prepare(torch.zeros(1, 1, 8, 8))


def test_new_right_hand_side_keeps_the_coefficient_features():
    problem = _darcy()
    corrector = ResidualCorrector(_net())
    ctx = corrector.prepare(problem)
    r = torch.randn_like(problem.f)
    swapped = with_rhs(ctx, r)
    assert swapped.features is ctx.features and swapped.scale is ctx.scale
    assert torch.equal(swapped.problem.f, r)


def test_corrector_preconditions_flexible_cg_to_the_discrete_solution():
    problem = _darcy()
    torch.manual_seed(0)
    net = torch.nn.Conv2d(2, 1, 3, padding=1)  # any Phi: FCG's energy line search keeps it safe
    smooth = GaussSeidel(sweeps=2)
    pcg = FlexibleCG(Cycle(smooth, ResidualCorrector(net), smooth))  # one application: all three
    sol = solve(None, pcg, problem, tol=0.0, rtol=1e-10, maxiter=300)
    assert sol.retcodes == [ReturnCode.SUCCESS] * 3, sol
    for b, matrix in enumerate(problem.to_scipy()):
        exact = spsolve(matrix.tocsc(), problem.f[b].flatten().numpy())
        error = np.linalg.norm(sol.u[b].flatten().numpy() - exact) / np.linalg.norm(exact)
        # relative residual 1e-10 and cond(A) ~ 1e3 at n = 16 bound the error by ~1e-7.
        assert error < 1e-7


# --- complex problems (Helmholtz): (Re, Im) channels, minimal-residual step --------------


def _helmholtz(n: int, batch: int, seed: int) -> Helmholtz2D:
    g = torch.Generator().manual_seed(seed)
    return Helmholtz2D(mixed_speed(batch, n, g), point_source(batch, n, generator=g))


def _helmholtz_corrector() -> ResidualCorrector:
    torch.manual_seed(3)
    return ResidualCorrector(helmholtz_corrector_net(4, 2), step_length="residual")


def test_complex_step_never_increases_the_residual_with_a_random_net():
    problem = _helmholtz(24, 4, seed=0)
    corrector = _helmholtz_corrector()
    ctx = corrector.prepare(problem)
    h = random_source(4, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for k in range(3):
            before = problem.residual(h).flatten(1).norm(dim=1)
            h = corrector.step(ctx, h, k)
            after = problem.residual(h).flatten(1).norm(dim=1)
            assert h.is_complex() and bool((after <= before * (1 + 1e-12)).all())


def test_complex_step_length_is_numpys_least_squares_minimiser():
    problem = _helmholtz(16, 2, seed=2)
    corrector = _helmholtz_corrector()
    ctx = corrector.prepare(problem)
    r = random_source(2, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        d = corrector.direction(ctx, r)
        alpha = corrector.step_size(ctx, r, d)
        ad = problem.apply(d)
    assert d.dtype == r.dtype and d.shape == r.shape
    for b in range(2):
        column = ad[b].flatten().numpy()[:, None]
        best = np.linalg.lstsq(column, r[b].flatten().numpy(), rcond=None)[0][0]
        assert abs(complex(alpha[b]) - best) < 1e-10 * abs(best)


def test_complex_residual_reaches_the_net_as_re_im_channels_after_the_features():
    problem = _helmholtz(8, 2, seed=3)
    seen = []

    class Probe(torch.nn.Module):
        in_channels = 4

        def forward(self, x):
            seen.append(x)
            return torch.zeros_like(x[:, 2:])

    corrector = ResidualCorrector(Probe(), step_length="residual")
    ctx = corrector.prepare(problem)
    r = random_source(2, 8, generator=torch.Generator().manual_seed(6))
    corrector.direction(ctx, r)
    (x,) = seen
    s = r.flatten(1).abs().pow(2).mean(dim=1).sqrt().view(-1, 1, 1, 1)
    kh2, gamma = problem.features().split(1, dim=1)
    torch.testing.assert_close(x[:, :1], (kh2 / KH2_UNIT).float())
    torch.testing.assert_close(x[:, 1:2], gamma.float())
    torch.testing.assert_close(x[:, 2:3], (r.real / s).float())
    torch.testing.assert_close(x[:, 3:4], (r.imag / s).float())


def test_helmholtz_features_are_scaled_wavenumber_and_attenuation_with_unit_scale():
    problem = _helmholtz(16, 2, seed=4)
    features, scale = corrector_features(problem)
    assert features.shape == (2, 2, 16, 16) and not features.is_complex()
    assert torch.equal(scale, torch.ones(2, dtype=torch.float64))
    # At the default 10 points per wavelength k h = 2 pi / 10 where the speed is 1, so the
    # first feature is 1 / c^2 (a fixed unit, not the problem's ppw).
    torch.testing.assert_close(features[:, :1], problem.speed.pow(-2), rtol=1e-12, atol=0.0)


def test_energy_step_on_a_complex_problem_is_refused_at_prepare():
    corrector = ResidualCorrector(helmholtz_corrector_net(4, 2))  # default: "energy"
    with pytest.raises(ValueError, match="expected step_length 'residual' or None") as info:
        corrector.prepare(_helmholtz(8, 1, seed=0))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("net", "problem"),
    [
        (helmholtz_corrector_net(4, 2), _darcy()),  # reads 4 channels, Darcy gives 2
        (base_operator("fno", 2, 1, n_modes=(2, 2), hidden_channels=4, n_layers=1), None),
    ],
)
def test_a_net_of_another_family_is_refused_at_prepare(net, problem):
    problem = _helmholtz(8, 1, seed=0) if problem is None else problem
    corrector = ResidualCorrector(net, step_length="residual")
    with pytest.raises(ValueError, match="a net trained for another problem family") as info:
        corrector.prepare(problem)
    assert "\n" not in str(info.value)
