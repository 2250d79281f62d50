"""Checks of the pseudo-spectral Navier–Stokes solver against exact properties.

References: the Taylor–Green vortex is an exact solution of the unforced
equations (Taylor & Green, 1937); the inviscid, dealiased (Galerkin-truncated)
dynamics conserve energy and enstrophy, so viscosity can only lower them
(Kraichnan & Montgomery, 1980, Rep. Prog. Phys. 43).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from irsolve.data.generate import make_navier_stokes_dataset
from irsolve.data.navier_stokes import (
    NavierStokes2D,
    check_time_steps,
    default_forcing,
    enstrophy,
    kinetic_energy,
    random_vorticity,
    velocity_from_vorticity,
)


def taylor_green(n: int) -> torch.Tensor:
    """``w0 = 2k sin(kx) sin(ky)``, ``k = 2π``: curl of ``u = (sin kx cos ky, -cos kx sin ky)``."""
    k = 2.0 * math.pi
    x = torch.arange(n, dtype=torch.float64) / n
    return 2.0 * k * torch.sin(k * x)[:, None] * torch.sin(k * x)[None, :]


def test_taylor_green_vortex_decays_at_the_exact_viscous_rate() -> None:
    # Exact: w(t) = w0 exp(-2 nu k^2 t) (|K|^2 = 2 k^2). The advection term vanishes
    # identically, so the only error is the Crank–Nicolson stages': per stage
    # (nu |K|^2 dt)^3 / 12 ~ 1e-9 here, far under the 1e-6 asked.
    nu, n = 1e-2, 16
    w0 = taylor_green(n)[None]
    frames = NavierStokes2D(n, nu, forcing=None, max_dt=1e-2).simulate(w0, 4, 0.25)
    for m in range(4):
        exact = w0[0] * math.exp(-2.0 * nu * (2.0 * math.pi) ** 2 * 0.25 * m)
        error = (frames[0, m] - exact).abs().max() / exact.abs().max()
        assert error < 1e-6, f"frame {m}: relative error {error:.2e}"
    assert frames[0, -1].abs().max() < 0.95 * w0.abs().max()  # it did decay


def test_unforced_energy_and_enstrophy_never_increase() -> None:
    # A vigorous random field (|u| ~ 1), step by step at the CFL step: each step
    # may only dissipate. Tolerance 1e-12 relative: round-off of the sums.
    n = 32
    generator = torch.Generator().manual_seed(3)
    w = 10.0 * random_vorticity(2, n, generator=generator)
    solver = NavierStokes2D(n, 1e-3, forcing=None, max_dt=1.0)
    dt = solver.stable_dt(w)
    w_hat = torch.fft.rfft2(w)
    energy, ens = [kinetic_energy(w)], [enstrophy(w)]
    for _ in range(30):
        w_hat = solver.advance(w_hat, dt, 1)
        w = torch.fft.irfft2(w_hat, s=(n, n))
        energy.append(kinetic_energy(w))
        ens.append(enstrophy(w))
    energy, ens = torch.stack(energy), torch.stack(ens)
    assert (energy.diff(dim=0) <= 1e-12 * energy[0]).all()
    assert (ens.diff(dim=0) <= 1e-12 * ens[0]).all()
    assert (ens[-1] < ens[0]).all()  # viscosity acted


def test_velocity_is_divergence_free_and_its_curl_is_the_vorticity() -> None:
    # Independent check with numpy.fft on a simulated frame: div u = d_x u_x + d_y u_y = 0
    # and curl u = d_x u_y - d_y u_x = w, to round-off (1e-12 of the vorticity scale).
    n = 32
    w0 = random_vorticity(3, n, generator=torch.Generator().manual_seed(0))
    w = NavierStokes2D(n, 1e-3, default_forcing(n)).simulate(w0, 2, 0.1)[:, -1]
    u = velocity_from_vorticity(w).numpy()
    k = 2.0 * np.pi * np.fft.fftfreq(n, d=1.0 / n)
    ux_hat, uy_hat = np.fft.fft2(u[..., 0]), np.fft.fft2(u[..., 1])
    div = np.fft.ifft2(1j * k[:, None] * ux_hat + 1j * k[None, :] * uy_hat).real
    curl = np.fft.ifft2(1j * k[:, None] * uy_hat - 1j * k[None, :] * ux_hat).real
    scale = np.abs(w.numpy()).max()
    assert np.abs(div).max() < 1e-12 * scale
    assert np.abs(curl - w.numpy()).max() < 1e-12 * scale


def test_forced_solution_converges_at_third_order_in_time() -> None:
    # Self-convergence: halving dt must cut the error against a fine reference
    # by about 2^3 (the RK3 order); asked: a factor above 5.
    n = 16
    w0 = 5.0 * random_vorticity(1, n, generator=torch.Generator().manual_seed(1))
    solver = NavierStokes2D(n, 1e-3, forcing=default_forcing(n))
    w_hat0 = torch.fft.rfft2(w0)
    reference = solver.advance(w_hat0, 0.5 / 64, 64)
    errors = [
        (solver.advance(w_hat0, 0.5 / steps, steps) - reference).abs().max().item()
        for steps in (4, 8)
    ]
    assert errors[0] / errors[1] > 5.0, errors


def test_simulate_rejects_wrong_shapes() -> None:
    solver = NavierStokes2D(16)
    with pytest.raises(ValueError, match=r"expected w0 of shape \(B, 16, 16\)"):
        solver.simulate(torch.zeros(16, 16), 2, 0.1)
    with pytest.raises(ValueError, match="even grid size"):
        NavierStokes2D(15)


def test_a_simulation_beyond_a_million_steps_is_refused_with_its_time_estimate(tmp_path):
    solver = NavierStokes2D(8)
    assert check_time_steps(solver, 10.0, 2, "duration") == 200  # 10 / max_dt 0.05
    with pytest.raises(ValueError, match=r"^duration = 1e\+06 time units need at least "):
        check_time_steps(solver, 1e6, 2, "duration")
    with pytest.raises(
        ValueError, match=r"at least 20,000,000 time steps .* hours here; expected at most"
    ):
        make_navier_stokes_dataset(tmp_path, 1, 0, 0, resolution=8, n_steps=3, record_dt=5e5)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
