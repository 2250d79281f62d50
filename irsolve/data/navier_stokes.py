"""Incompressible Navier–Stokes in vorticity form on the periodic unit torus.

The equation, for the vorticity ``w = curl u`` of a divergence-free velocity
``u = (u_x, u_y)`` on ``[0, 1)^2`` with periodic boundaries, is

``dw/dt + u . grad w = nu Δw + f``,  ``u = (d psi/dy, -d psi/dx)``,  ``-Δ psi = w``,

the setting of the Fourier Neural Operator's Navier–Stokes benchmark (Li et
al., 2021, "Fourier Neural Operator for Parametric Partial Differential
Equations", ICLR, Sec. 5.3), with forcing ``f = 0.1 (sin 2π(x+y) + cos 2π(x+y))``.

It is solved pseudo-spectrally with ``torch.fft``: derivatives are exact on
the ``n x n`` Fourier modes, the quadratic advection term is dealiased by
Orszag's 2/3 rule, and time advances by the three-stage low-storage IMEX
Runge–Kutta scheme of Spalart, Moser & Rogers (1991, J. Comput. Phys. 96,
"Spectral methods for the Navier-Stokes equations with one infinite and two
periodic directions", appendix): third-order explicit advection and forcing,
Crank–Nicolson (trapezoidal) viscosity inside each stage. The step size obeys
a CFL bound recomputed at every snapshot interval.

Arrays are indexed ``w[..., i, j] = w(x_i, y_j)`` with ``x_i = i / n``: the
first spatial axis is ``x``, as in The Well's layout.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from irsolve.solvers.fields import gaussian_random_field

__all__ = [
    "MAX_TIME_STEPS",
    "NavierStokes2D",
    "check_time_steps",
    "default_forcing",
    "enstrophy",
    "kinetic_energy",
    "random_vorticity",
    "velocity_from_vorticity",
]

#: Stage coefficients (gamma_k, zeta_k, alpha_k) of the Spalart–Moser–Rogers IMEX RK3:
#: ``w_k = w_{k-1} + dt [alpha_k L (w_{k-1} + w_k) + gamma_k N_{k-1} + zeta_k N_{k-2}]``.
_SMR_STAGES: tuple[tuple[float, float, float], ...] = (
    (8.0 / 15.0, 0.0, 4.0 / 15.0),
    (5.0 / 12.0, -17.0 / 60.0, 1.0 / 15.0),
    (3.0 / 4.0, -5.0 / 12.0, 1.0 / 6.0),
)


def default_forcing(n: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The FNO forcing ``f(x, y) = 0.1 (sin 2π(x+y) + cos 2π(x+y))`` on the ``n x n`` grid.

    Returns
    -------
    Tensor
        Shape ``(n, n)``, indexed ``[i_x, i_y]``.
    """
    x = torch.arange(n, dtype=dtype) / n
    phase = 2.0 * math.pi * (x[:, None] + x[None, :])
    return 0.1 * (torch.sin(phase) + torch.cos(phase))


def random_vorticity(
    batch: int,
    n: int,
    *,
    alpha: float = 2.5,
    tau: float = 7.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Initial vorticity ``w0 = tau^(alpha - 1) g`` with ``g ~ N(0, (-Δ + tau^2)^-alpha)``.

    The covariance and the scale ``tau^(alpha - d/2)`` (``d = 2``) are those of
    the FNO Navier–Stokes data (Li et al., 2021, Sec. 5.3, ``alpha = 2.5``,
    ``tau = 7``); the spatial mean is removed because the vorticity of a
    periodic velocity field has zero mean.

    Returns
    -------
    Tensor
        Shape ``(batch, n, n)``.
    """
    g = gaussian_random_field(batch, n, alpha=alpha, tau=tau, generator=generator, dtype=dtype)
    w0 = tau ** (alpha - 1.0) * g[:, 0]
    return w0 - w0.mean(dim=(-2, -1), keepdim=True)


def _wavenumbers(n: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """Angular wavenumbers ``(k_x, k_y)`` on the ``rfft2`` grid: ``(n, 1)``, ``(1, n//2+1)``."""
    kx = 2.0 * math.pi * torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype, device=device)
    ky = 2.0 * math.pi * torch.fft.rfftfreq(n, d=1.0 / n, dtype=dtype, device=device)
    return kx[:, None], ky[None, :]


def velocity_from_vorticity(w: Tensor) -> Tensor:
    """Velocity ``u = (d psi/dy, -d psi/dx)`` with ``-Δ psi = w``, computed spectrally.

    The Nyquist modes of ``psi`` are dropped: their first derivative is not
    a real field on the grid (Trefethen, 2000, "Spectral Methods in MATLAB",
    Ch. 3), and keeping one component's but not the other's would break
    ``div u = 0``. Fields produced by :meth:`NavierStokes2D.simulate` have
    no Nyquist content, so for them ``curl u = w`` exactly.

    Parameters
    ----------
    w
        Vorticity, shape ``(..., n, n)`` with zero mean.

    Returns
    -------
    Tensor
        Shape ``(..., n, n, 2)``, components ``(u_x, u_y)`` last (The Well's
        ``t1_fields`` order).
    """
    n = w.shape[-1]
    kx, ky = _wavenumbers(n, w.dtype, w.device)
    k2 = kx**2 + ky**2
    k2[0, 0] = 1.0
    psi_hat = torch.fft.rfft2(w) / k2
    psi_hat[..., 0, 0] = 0.0
    if n % 2 == 0:
        psi_hat[..., n // 2, :] = 0.0
        psi_hat[..., :, n // 2] = 0.0
    ux = torch.fft.irfft2(1j * ky * psi_hat, s=(n, n))
    uy = torch.fft.irfft2(-1j * kx * psi_hat, s=(n, n))
    return torch.stack((ux, uy), dim=-1)


def kinetic_energy(w: Tensor) -> Tensor:
    """Kinetic energy ``E = 1/2 mean |u|^2`` of the flow with vorticity ``w``, per sample.

    By Parseval, ``E = 1/2 sum_k |w_k|^2 / |k|^2`` over the nonzero modes of
    the normalised Fourier coefficients ``w_k``.

    Returns
    -------
    Tensor
        Shape ``w.shape[:-2]``.
    """
    return 0.5 * velocity_from_vorticity(w).pow(2).sum(-1).mean(dim=(-2, -1))


def enstrophy(w: Tensor) -> Tensor:
    """Enstrophy ``Z = 1/2 mean w^2`` per sample; shape ``w.shape[:-2]``."""
    return 0.5 * w.pow(2).mean(dim=(-2, -1))


@dataclass(frozen=True)
class NavierStokes2D:
    """Pseudo-spectral solver for 2-D Navier–Stokes in vorticity form (module docstring).

    Parameters
    ----------
    n
        Grid points per side (even).
    viscosity
        Kinematic viscosity ``nu > 0`` (the FNO benchmark uses 1e-3, 1e-4, 1e-5).
    forcing
        Forcing ``f`` of shape ``(n, n)``; ``None`` for the unforced equation.
        :func:`default_forcing` gives the FNO forcing.
    cfl
        Courant number ``C`` of the step bound
        ``dt <= C dx / max(|u_x| + |u_y|)``, ``dx = 1/n``. The explicit RK3
        part is stable on the imaginary axis up to ``sqrt(3)``; ``C = 0.5``
        leaves room for the dealiased spectrum.
    max_dt
        Upper bound on the step: it bounds the time-discretisation error where
        the CFL step is large (slow flows). At the FNO setting (64², nu = 1e-3,
        10 time units) ``0.05`` gives a relative difference of about 1e-6
        from a run at ``dt = 0.0025``.
    """

    n: int
    viscosity: float = 1e-3
    forcing: Tensor | None = None
    cfl: float = 0.5
    max_dt: float = 5e-2

    def __post_init__(self) -> None:
        if self.n < 4 or self.n % 2:
            raise ValueError(f"expected an even grid size n >= 4, got n={self.n}")
        if not (self.viscosity > 0 and math.isfinite(self.viscosity)):
            raise ValueError(f"expected a finite viscosity > 0, got {self.viscosity}")
        if not (0 < self.cfl <= 1.5):
            raise ValueError(f"expected a Courant number in (0, 1.5], got {self.cfl}")
        if not self.max_dt > 0:
            raise ValueError(f"expected max_dt > 0, got {self.max_dt}")
        if self.forcing is not None and tuple(self.forcing.shape) != (self.n, self.n):
            raise ValueError(
                f"expected forcing of shape ({self.n}, {self.n}), got {tuple(self.forcing.shape)}"
            )

    def stable_dt(self, w: Tensor) -> float:
        """The CFL step ``C dx / max(|u_x| + |u_y|)`` over the whole batch, capped at ``max_dt``."""
        speed = velocity_from_vorticity(w).abs().sum(-1).max().item()
        return min(self.max_dt, self.cfl / (self.n * speed)) if speed > 0 else self.max_dt

    def simulate(
        self,
        w0: Tensor,
        n_snapshots: int,
        record_dt: float,
        *,
        callback: Callable[[int, Tensor], None] | None = None,
    ) -> Tensor:
        """Integrate from ``w0`` and record ``n_snapshots`` frames ``record_dt`` apart.

        Frame 0 is ``w0`` restricted to the resolved modes (``|k_x|, |k_y| <= n/3``,
        the 2/3 rule); frame ``m`` is the solution at ``t = m record_dt``.
        Each interval is split into ``ceil(record_dt / stable_dt(w))`` equal steps,
        the CFL bound taken at the start of the interval over the whole batch.

        Parameters
        ----------
        w0
            Initial vorticity, shape ``(B, n, n)``, zero mean (float64 advised).
        n_snapshots
            Number of recorded frames, ``>= 1``.
        record_dt
            Time between frames, ``> 0``.
        callback
            Called as ``callback(m, w_m)`` after each recorded frame ``m``.

        Returns
        -------
        Tensor
            Shape ``(B, n_snapshots, n, n)``, dtype of ``w0``.
        """
        if w0.dim() != 3 or tuple(w0.shape[1:]) != (self.n, self.n):
            raise ValueError(f"expected w0 of shape (B, {self.n}, {self.n}), got {tuple(w0.shape)}")
        if n_snapshots < 1 or not record_dt > 0:
            raise ValueError(
                f"expected n_snapshots >= 1 and record_dt > 0, got {n_snapshots} and {record_dt}"
            )
        w_hat = torch.fft.rfft2(w0) * _dealias_mask(self.n, w0.device)
        frames = [torch.fft.irfft2(w_hat, s=(self.n, self.n))]
        if callback is not None:
            callback(0, frames[0])
        for m in range(1, n_snapshots):
            w = torch.fft.irfft2(w_hat, s=(self.n, self.n))
            n_steps = math.ceil(record_dt / self.stable_dt(w) - 1e-9)
            w_hat = self.advance(w_hat, record_dt / n_steps, n_steps)
            frames.append(torch.fft.irfft2(w_hat, s=(self.n, self.n)))
            if callback is not None:
                callback(m, frames[-1])
        return torch.stack(frames, dim=1)

    def advance(self, w_hat: Tensor, dt: float, n_steps: int) -> Tensor:
        """Take ``n_steps`` IMEX RK3 steps of size ``dt`` on the ``rfft2`` coefficients ``w_hat``.

        Stage ``k`` solves ``(1 - a_k dt nu L) w_k = (1 + a_k dt nu L) w_{k-1}
        + dt (g_k N_{k-1} + z_k N_{k-2})`` per mode, with ``L = -|k|^2``, ``N`` the
        dealiased ``-u . grad w + f`` and ``(g_k, z_k, a_k)`` from Spalart, Moser &
        Rogers (1991).
        """
        ops = _SpectralOperators.build(self.n, w_hat.real.dtype, w_hat.device, self.forcing)
        factors = [
            (
                1.0 + a * dt * self.viscosity * ops.lap,
                1.0 / (1.0 - a * dt * self.viscosity * ops.lap),
            )
            for _, _, a in _SMR_STAGES
        ]
        for _ in range(n_steps):
            previous = None
            for (gamma, zeta, _), (explicit, implicit) in zip(_SMR_STAGES, factors, strict=True):
                current = ops.tendency(w_hat)
                rhs = explicit * w_hat + (gamma * dt) * current
                if previous is not None:
                    rhs = rhs + (zeta * dt) * previous
                w_hat = implicit * rhs
                previous = current
        return w_hat


@dataclass(frozen=True)
class _SpectralOperators:
    """Fourier symbols on the ``rfft2`` layout of an ``n x n`` grid, built once per call."""

    n: int
    kx: Tensor
    ky: Tensor
    lap: Tensor
    inv_lap: Tensor
    keep: Tensor
    f_hat: Tensor | None

    @classmethod
    def build(
        cls, n: int, dtype: torch.dtype, device: torch.device, forcing: Tensor | None
    ) -> _SpectralOperators:
        kx, ky = _wavenumbers(n, dtype, device)
        lap = -(kx**2 + ky**2)
        inv_lap = 1.0 / torch.where(lap < 0, lap, -1.0)
        inv_lap[0, 0] = 0.0
        keep = _dealias_mask(n, device)
        f_hat = (
            None
            if forcing is None
            else torch.fft.rfft2(forcing.to(dtype=dtype, device=device)) * keep
        )
        return cls(n, kx, ky, lap, inv_lap, keep, f_hat)

    def tendency(self, w_hat: Tensor) -> Tensor:
        """Dealiased explicit term ``N = -(u . grad w) + f`` in ``rfft2`` coefficients."""
        s = (self.n, self.n)
        psi_hat = -w_hat * self.inv_lap
        ux = torch.fft.irfft2(1j * self.ky * psi_hat, s=s)
        uy = torch.fft.irfft2(-1j * self.kx * psi_hat, s=s)
        wx = torch.fft.irfft2(1j * self.kx * w_hat, s=s)
        wy = torch.fft.irfft2(1j * self.ky * w_hat, s=s)
        advection = torch.fft.rfft2(ux * wx + uy * wy) * self.keep
        return -advection if self.f_hat is None else self.f_hat - advection


#: Most time steps :func:`check_time_steps` lets one simulation take (the FNO data take
#: 1,000 to 20,000): beyond it a typo such as ``--record-dt 1e6`` would run for days.
MAX_TIME_STEPS = 10**6


def check_time_steps(solver: NavierStokes2D, duration: float, batch: int, what: str) -> int:
    """The least number of steps ``solver`` takes to simulate ``duration``; raise if too many.

    The count is ``ceil(duration / max_dt)`` (the CFL bound can only make it
    larger). Above :data:`MAX_TIME_STEPS` the error gives the time it would
    take, from two steps of ``batch`` trajectories timed here.

    Raises
    ------
    ValueError
        ``record_dt x frames + burn_in = 1e+07 time units need at least
        200,000,000 time steps (dt <= max_dt = 0.05), about 3.1 days here;
        expected at most 1,000,000``.
    """
    steps = math.ceil(duration / solver.max_dt - 1e-9)
    if steps > MAX_TIME_STEPS:
        w_hat = torch.zeros(batch, solver.n, solver.n // 2 + 1, dtype=torch.complex128)
        start = time.perf_counter()
        solver.advance(w_hat, solver.max_dt, 2)
        seconds = steps * (time.perf_counter() - start) / 2
        raise ValueError(
            f"{what} = {duration:g} time units need at least {steps:,} time steps "
            f"(dt <= max_dt = {solver.max_dt:g}), about {seconds / 3600:.3g} hours here; "
            f"expected at most {MAX_TIME_STEPS:,}"
        )
    return steps


def _dealias_mask(n: int, device: torch.device) -> Tensor:
    """Orszag's 2/3 rule on the ``rfft2`` layout: keep the modes with ``|k_x|, |k_y| <= n/3``."""
    kx = torch.fft.fftfreq(n, d=1.0 / n, device=device).abs()[:, None]
    ky = torch.fft.rfftfreq(n, d=1.0 / n, device=device)[None, :]
    return (kx <= n / 3) & (ky <= n / 3)
