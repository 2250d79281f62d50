"""The heterogeneous Helmholtz equation with a sponge layer, and its shifted Laplacian.

:class:`Helmholtz2D` is ``-Δu - k(x)^2 (1 - i γ(x)) u = f`` on the unit square,
zero Dirichlet values, the 5-point Laplacian on the ``n x n`` interior nodes
``x_i = (i + 1) h``, ``h = 1 / (n + 1)`` (the :class:`~irsolve.solvers.Poisson2D`
grid), in complex128:

``(A u)_ij = (4 u_ij - u_{i±1,j} - u_{i,j±1}) / h^2 - k_ij^2 (1 - i γ_ij) u_ij``.

:class:`Helmholtz3D` is the same on the unit cube with the 7-point Laplacian
(centre ``6 / h^2``), built by the same code; the media and sources below take
``dim=3``.

The wavenumber is ``k = ω / c`` for a wave speed ``c(x) > 0``; ``ω`` is set by
the points per wavelength at the slowest speed, ``ppw = 2 π c_min / (ω h)``,
so ``k_max h = 2 π / ppw`` (default 10 points: ``k_max = 40.8`` at ``n = 64``).
The damping ``γ = γ_0 + γ_s(x)`` is a uniform attenuation ``γ_0 >= 0``
(default 0) plus a sponge layer that absorbs the outgoing waves instead of
reflecting them at the Dirichlet boundary: with ``d(x)`` the distance from
``x`` to the boundary and ``L`` the sponge width (default 0.1, 10 % of each
side), ``γ_s = σ (1 - d / L)^2`` for ``d < L`` and 0 inside (quadratic ramp
to ``σ = 1`` at the boundary, as the absorbing layers of Erlangga, Oosterlee
and Vuik 2006, Sec. 2, and Azulay and Treister 2022, Sec. 5).

The operator is complex symmetric (``A^T = A``), not Hermitian, and indefinite
where ``k`` is large: standard multigrid diverges on it, because a coarse grid
with fewer than ~2 points per wavelength represents the waves with the wrong
sign. The classical preconditioner is the shifted Laplacian
(:meth:`Helmholtz2D.shifted_laplacian`)

``M = -Δ - k^2 (β_1 - i (β_2 + γ))``,    default ``β = 1 - 0.5 i``,

whose extra damping ``β_2`` makes it multigrid-friendly (Erlangga, Oosterlee
and Vuik, "A novel multigrid based preconditioner for heterogeneous Helmholtz
problems", SIAM J. Sci. Comput. 27 (2006) 1471-1492).

References
----------
Y. A. Erlangga, C. W. Oosterlee, C. Vuik, SIAM J. Sci. Comput. 27 (2006) 1471-1492.
Y. Azulay, E. Treister, "Multigrid-augmented deep learning preconditioners for
the Helmholtz equation", SIAM J. Sci. Comput. 45 (2023) S127-S151 (arXiv 2022).
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import torch
from torch import Tensor

from irsolve._validate import check_dim, check_int, check_memory, check_real
from irsolve.solvers.fields import gaussian_random_field
from irsolve.solvers.problems import (
    ComplexStencilProblem,
    grid_coordinates,
    zero_outward,
)

__all__ = [
    "ComplexStencilProblem",
    "Helmholtz2D",
    "Helmholtz3D",
    "HelmholtzProblem",
    "layered_speed",
    "piecewise_speed",
    "point_source",
    "random_source",
    "smooth_speed",
    "sponge_profile",
]

logger = logging.getLogger(__name__)

#: Below this many points per wavelength the 5-point stencil's phase error is O(1).
MIN_PPW = 4.0
#: A warning is logged (and raised as a ``UserWarning``) below this many points per wavelength.
WARN_PPW = 6.0
#: Accepted wave speeds. Only speed ratios and the points per wavelength enter the operator
#: (``ω ∝ c_min``), and inside this range ``ω``, ``k^2 = (ω / c)^2`` and ``k^2 h^2`` stay far
#: from float64 under- and overflow on any grid that fits in memory; a subnormal speed
#: (1e-320) would lose digits in ``c_min / c`` and so change ``k_max``.
SPEED_RANGE = (1e-100, 1e100)
#: Measured peak of building a Helmholtz problem, in float64 fields of the grid (2-D at
#: 3000^2: 25, the inputs included; the complex stencil alone is 10; 3-D at 127^3: 29, its
#: stencil 14).
HELMHOLTZ_FIELDS = {2: 25, 3: 29}


def _check_grid(
    owner: str, batch: Any, n: Any, fields: float, dim: Any = 2
) -> tuple[int, int, int]:
    """``(batch, n, dim)`` checked (``batch >= 0``, ``n >= 2``, ``dim`` 2 or 3) and refused,
    before anything is allocated, when ``fields`` float64 fields of ``batch x n^dim`` exceed
    the machine's memory (``fields``: the measured peak of what the caller builds)."""
    batch = check_int(owner, "batch", batch, minimum=0)
    n = check_int(owner, "n", n, minimum=2)
    dim = check_dim(owner, dim)
    grid = " x ".join([str(n)] * dim)
    check_memory(
        owner,
        f"a batch of {batch} on a {grid} grid (a measured peak of {fields:g} float64 fields)",
        fields * batch * n**dim * 8,
    )
    return batch, n, dim


def _check_real_field(
    owner: str, name: str, value: Any, shape: tuple[int, ...] | None, dim: int = 2
) -> Tensor:
    """``value`` if it is a finite real tensor ``(B, 1, n, ..., n)`` over ``dim`` grid dimensions
    (or of ``shape``), else an error."""
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{owner}: expected {name} to be a torch.Tensor, got {type(value).__name__}"
        )
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{owner}: expected {name} with a real dtype, got {value.dtype}")
    cube = value.dim() == 2 + dim and value.shape[1] == 1 and len(set(value.shape[2:])) == 1
    if not cube or value.shape[-1] < 2 or (shape is not None and tuple(value.shape) != shape):
        expected = f"(B, 1, {', '.join('n' * dim)}), n >= 2" if shape is None else str(shape)
        raise ValueError(f"{owner}: expected {name} of shape {expected}, got {tuple(value.shape)}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{owner}: expected finite values in {name}, got NaN or infinity")
    return value


def sponge_profile(n: int, width: float = 0.1, strength: float = 1.0, dim: int = 2) -> Tensor:
    """The sponge damping ``γ_s = σ (1 - d / L)^2`` (``d < L``, else 0) on the ``n^dim`` nodes.

    ``d`` is the distance of node ``((i + 1) h, (j + 1) h[, (l + 1) h])`` to the
    boundary of the unit square (cube), ``L = width``, ``σ = strength``.
    Returns ``(n, ..., n)`` float64.
    """
    dim = check_dim("sponge_profile", dim)
    axes = grid_coordinates(n, False, torch.float64, torch.device("cpu"), dim)
    d = torch.stack([torch.minimum(x, 1 - x) for x in axes]).amin(dim=0)
    if width <= 0:
        return torch.zeros_like(d)
    return strength * (1 - d / width).clamp_min(0.0) ** 2


class HelmholtzProblem(ComplexStencilProblem):
    """``-Δu - k^2 (1 - i γ) u = f`` on the unit square or cube (see the module docstring);
    :class:`Helmholtz2D` and :class:`Helmholtz3D` set :attr:`dims`.

    Parameters
    ----------
    speed
        Wave speed ``c`` at the nodes, ``(B, 1, n, n)`` (``(B, 1, n, n, n)``), real,
        finite, ``> 0``.
    f
        Right-hand side of the same shape (real or complex; stored as complex128).
    ppw
        Points per wavelength at the slowest speed of each sample (``ω`` per
        sample from it); default 10. Below 4 it is refused, below 6 a
        ``UserWarning`` is raised (the star stencil's dispersion error grows
        as ``(k h)^2``).
    omega
        Angular frequency, the same for every sample; overrides ``ppw``
        (the points per wavelength are then checked as above).
    sponge_width, sponge_strength
        ``L`` and ``σ`` of :func:`sponge_profile` (default 0.1 and 1.0).
    attenuation
        Uniform ``γ_0 >= 0`` added to the sponge (default 0).
    dtype
        complex128 only (complex64 is refused; see :class:`ComplexStencilProblem`).

    Attributes
    ----------
    k2, gamma
        ``k^2`` and ``γ`` at the nodes, shaped as ``speed``, float64.
    omega
        ``(B,)`` float64.
    h
        Grid spacing ``1 / (n + 1)``.
    """

    dims = 2

    def __init__(
        self,
        speed: Tensor,
        f: Tensor,
        ppw: float = 10.0,
        omega: float | None = None,
        sponge_width: float = 0.1,
        sponge_strength: float = 1.0,
        attenuation: float = 0.0,
        dtype: torch.dtype = torch.complex128,
    ) -> None:
        owner, dim = type(self).__name__, self.dims
        if dtype != torch.complex128:
            raise TypeError(f"{owner}: expected dtype torch.complex128, got {dtype}")
        if isinstance(speed, Tensor) and speed.dim() == 2 + dim:
            _check_grid(owner, speed.shape[0], speed.shape[-1], HELMHOLTZ_FIELDS[dim], dim)
        speed = _check_real_field(owner, "speed", speed, None, dim).to(torch.float64)
        _check_speed_range(owner, speed)
        if not isinstance(f, Tensor):
            raise TypeError(f"{owner}: expected f to be a torch.Tensor, got {type(f).__name__}")
        if f.dtype == torch.complex64:
            raise TypeError(f"{owner}: expected f real or complex128, got complex64")
        if not f.is_complex():
            _check_real_field(owner, "f", f, tuple(speed.shape), dim)
        n = speed.shape[-1]
        self.h = 1.0 / (n + 1)
        c_min = speed.flatten(1).amin(dim=1) if speed.numel() else speed.new_ones(0)
        self.omega = _angular_frequency(owner, c_min, self.h, ppw, omega)
        width = check_real(owner, "sponge_width", sponge_width, minimum=0.0)
        strength = check_real(owner, "sponge_strength", sponge_strength, minimum=0.0)
        attenuation = check_real(owner, "attenuation", attenuation, minimum=0.0)
        self.k2 = (self.omega.view(-1, *[1] * (dim + 1)) / speed) ** 2
        sponge = sponge_profile(n, width, strength, dim).to(speed.device)
        self.gamma = (attenuation + sponge).expand_as(speed).contiguous()
        if not bool(torch.isfinite(self.k2 * self.gamma).all()):
            raise ValueError(
                f"{owner}: expected attenuation and sponge_strength small enough for a finite "
                f"k^2 γ, got attenuation={attenuation:g}, sponge_strength={strength:g}"
            )
        self.speed = speed
        stencil = laplacian_stencil(speed.shape[0], n, speed.device, dim)
        stencil[:, dim : dim + 1] -= self.k2 * (1 - 1j * self.gamma)
        if tuple(f.shape) != tuple(speed.shape):
            raise ValueError(
                f"{owner}: expected f of shape {tuple(speed.shape)}, got {tuple(f.shape)}"
            )
        super().__init__(stencil, f.to(torch.complex128))

    @property
    def k_max(self) -> Tensor:
        """Largest wavenumber of each sample, ``(B,)``."""
        return self.k2.flatten(1).amax(dim=1).sqrt()

    def features(self) -> Tensor:
        """Input of a learned step: ``cat([k^2 h^2, γ])``, ``(B, 2, n, ...)`` float64.

        ``k^2 h^2 = (2 π / ppw_local)^2`` is dimensionless and the same at every
        grid size for the same points per wavelength.
        """
        return torch.cat([self.k2 * self.h**2, self.gamma], dim=1)

    def shifted_laplacian(self, beta: complex = 1 - 0.5j) -> ComplexStencilProblem:
        """``M = -Δ - k^2 (β_1 - i (β_2 + γ))`` with this problem's ``f``.

        ``beta = β_1 - i β_2``; the default ``1 - 0.5 i`` is Erlangga, Oosterlee
        and Vuik's (2006) choice. ``β_2 > 0`` is needed for ``M`` to be a good
        multigrid target.
        """
        beta = complex(beta)
        if beta.imag > 0:
            raise ValueError(
                f"shifted_laplacian: expected beta = b1 - i b2 with b2 >= 0, got {beta!r}"
            )
        dim = self.dim
        centre = laplacian_stencil(1, self.n, self.f.device, dim)[:, dim : dim + 1]
        stencil = self.stencil.clone()
        stencil[:, dim : dim + 1] = centre - self.k2 * (beta.real - 1j * (-beta.imag + self.gamma))
        return ComplexStencilProblem(stencil, self.f)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(batch={self.batch_size}, n={self.n}, "
            f"k_max={float(self.k_max.max()):.3g})"
        )


class Helmholtz2D(HelmholtzProblem):
    """``-Δu - k^2 (1 - i γ) u = f`` on the unit square, 5-point, complex128, sponge layer
    (see the module docstring and :class:`HelmholtzProblem` for the parameters);
    ``speed`` and ``f`` are ``(B, 1, n, n)``."""

    dims = 2


class Helmholtz3D(HelmholtzProblem):
    """``-Δu - k^2 (1 - i γ) u = f`` on the unit cube, 7-point, complex128, sponge layer on
    all six faces (see :class:`HelmholtzProblem`); ``speed`` and ``f`` are ``(B, 1, n, n, n)``.
    """

    dims = 3


def _check_speed_range(owner: str, speed: Tensor) -> None:
    """Raise unless every speed lies in :data:`SPEED_RANGE`."""
    if speed.numel() and not bool(((speed >= SPEED_RANGE[0]) & (speed <= SPEED_RANGE[1])).all()):
        raise ValueError(
            f"{owner}: expected wave speeds in [{SPEED_RANGE[0]:g}, {SPEED_RANGE[1]:g}] "
            f"(rescale the medium: only ratios of speeds and ppw matter), got min "
            f"{float(speed.min()):.3g}, max {float(speed.max()):.3g}"
        )


def _angular_frequency(owner: str, c_min: Tensor, h: float, ppw: Any, omega: Any) -> Tensor:
    """``ω`` per sample, ``(B,)``: ``2 π c_min / (ppw h)``, or ``omega`` for all; the achieved
    points per wavelength refused below :data:`MIN_PPW` and warned about below :data:`WARN_PPW`."""
    if omega is None:
        ppw = check_real(owner, "ppw", ppw, minimum=0.0, open_min=True)
        omega_b = 2 * math.pi * c_min / (ppw * h)
    else:
        omega = check_real(owner, "omega", omega, minimum=0.0, open_min=True)
        omega_b = torch.full_like(c_min, omega)
    achieved = float((2 * math.pi * c_min / (omega_b * h)).min()) if len(c_min) else math.inf
    if achieved < MIN_PPW:
        raise ValueError(
            f"{owner}: expected at least {MIN_PPW:g} points per wavelength, got {achieved:.3g}"
        )
    if achieved < WARN_PPW:
        logger.warning("%s: %.3g points per wavelength: large dispersion error", owner, achieved)
        warnings.warn(
            f"{owner}: {achieved:.3g} points per wavelength: large dispersion error",
            stacklevel=3,
        )
    return omega_b


def laplacian_stencil(batch: int, n: int, device: torch.device | str, dim: int = 2) -> Tensor:
    """The star Dirichlet ``-Δ`` (5-point 2-D, 7-point 3-D) as a complex128 stencil
    ``(batch, 2 dim + 1, n, ..., n)``."""
    inv_h2 = float(n + 1) ** 2
    shape = (batch, 2 * dim + 1, *[n] * dim)
    stencil = torch.full(shape, -inv_h2, dtype=torch.complex128, device=device)
    stencil[:, dim] = 2 * dim * inv_h2
    zero_outward(stencil)
    return stencil


def _unit_range(field: Tensor) -> Tensor:
    """Each sample of ``field`` mapped affinely onto ``[0, 1]``."""
    shape = (-1, *[1] * (field.dim() - 1))
    low = field.flatten(1).amin(dim=1).view(shape)
    high = field.flatten(1).amax(dim=1).view(shape)
    return (field - low) / (high - low).clamp_min(1e-300)


def _check_contrast(owner: str, contrast: float) -> float:
    return check_real(owner, "contrast", contrast, minimum=1.0)


def smooth_speed(
    batch: int,
    n: int,
    contrast: float = 2.0,
    generator: torch.Generator | None = None,
    dim: int = 2,
) -> Tensor:
    """Smooth random wave speeds in ``[1, contrast]``: a Gaussian random field
    (:func:`~irsolve.solvers.gaussian_random_field`, ``alpha = 3``, ``tau = 4``)
    mapped affinely per sample. ``(batch, 1, n, ..., n)`` float64 over ``dim`` grid dims."""
    owner = "smooth_speed"
    contrast = _check_contrast(owner, contrast)
    batch, n, dim = _check_grid(owner, batch, n, 10, dim)
    grf = gaussian_random_field(max(batch, 1), n, 3.0, 4.0, generator, dim=dim)[:batch]
    return 1 + (contrast - 1) * _unit_range(grf)


def piecewise_speed(
    batch: int,
    n: int,
    contrast: float = 2.0,
    generator: torch.Generator | None = None,
    dim: int = 2,
) -> Tensor:
    """Two-phase wave speeds, ``1`` and ``contrast``, split at the zero level set of a
    Gaussian random field (``alpha = 2``, ``tau = 3``, as the FNO Darcy fields; in 3-D
    the phases are inclusions in each other). ``(batch, 1, n, ..., n)`` float64.

    A sample holds one phase only where its field keeps one sign: that is part of
    the distribution, not guaranteed away (measured at 64^2: 16, 19 and 21 of 64
    samples for generator seeds 0, 1, 2; the same share as
    :func:`~irsolve.solvers.darcy_coefficient`).
    """
    owner = "piecewise_speed"
    contrast = _check_contrast(owner, contrast)
    batch, n, dim = _check_grid(owner, batch, n, 10, dim)
    grf = gaussian_random_field(max(batch, 1), n, 2.0, 3.0, generator, dim=dim)[:batch]
    return torch.where(grf > 0, torch.full_like(grf, contrast), torch.ones_like(grf))


def layered_speed(
    batch: int,
    n: int,
    contrast: float = 2.5,
    layers: int = 5,
    generator: torch.Generator | None = None,
    dim: int = 2,
) -> Tensor:
    """A layered "geology": ``layers`` layers stacked along ``x`` with undulating interfaces.

    Interface ``l`` lies at ``x = l / layers + a_l sin(2 π m_l y + φ_l)``
    (``a_l`` up to a third of a layer's thickness, ``m_l`` in 1..3; in 3-D the
    undulation is ``a_l sin(2 π m_l y + φ_l) cos(2 π m'_l z + φ'_l)``); the speed
    increases with depth from 1 in the top layer to ``contrast`` in the bottom
    one, each step a random share of the total. ``(batch, 1, n, ..., n)`` float64.
    """
    owner = "layered_speed"
    contrast = _check_contrast(owner, contrast)
    batch, n, dim = _check_grid(owner, batch, n, 5, dim)
    layers = check_int(owner, "layers", layers, minimum=2)
    x, *across = grid_coordinates(n, False, torch.float64, torch.device("cpu"), dim)
    shape = (batch, *[1] * dim)
    steps = torch.rand(batch, layers - 1, generator=generator, dtype=torch.float64) + 0.2
    levels = torch.cat([torch.zeros(batch, 1, dtype=torch.float64), steps.cumsum(1)], dim=1)
    levels = 1 + (contrast - 1) * levels / levels[:, -1:]
    speed = levels[:, :1].view(batch, 1, *[1] * dim).expand(batch, 1, *[n] * dim).clone()
    for layer in range(1, layers):
        amp = torch.rand(batch, generator=generator, dtype=torch.float64) / (3 * layers)
        wave = amp.view(shape)
        for axis, coordinate in enumerate(across):
            m = torch.randint(1, 4, (batch,), generator=generator).to(torch.float64)
            phase = 2 * math.pi * torch.rand(batch, generator=generator, dtype=torch.float64)
            angle = 2 * math.pi * m.view(shape) * coordinate + phase.view(shape)
            wave = wave * (torch.sin(angle) if axis == 0 else torch.cos(angle))
        below = (x >= layer / layers + wave).unsqueeze(1)
        speed = torch.where(below, levels[:, layer].view(batch, 1, *[1] * dim), speed)
    return speed


def point_source(
    batch: int,
    n: int,
    where: tuple[float, ...] | None = None,
    generator: torch.Generator | None = None,
    dim: int = 2,
) -> Tensor:
    """A unit point source ``δ(x - x_s)``: ``1 / h^dim`` at one node,
    ``(batch, 1, n, ..., n)`` float64.

    ``where`` is ``(x_s, y_s[, z_s])`` inside the open unit square (cube) (the
    nearest interior node is used; the boundary carries no unknowns); ``None``
    draws it uniformly inside the sponge-free region ``[0.2, 0.8]^dim``.
    """
    owner = "point_source"
    batch, n, dim = _check_grid(owner, batch, n, 2, dim)
    if where is not None:
        where = _check_point(owner, where, dim)
    h = 1.0 / (n + 1)
    f = torch.zeros(batch, 1, *[n] * dim, dtype=torch.float64)
    for b in range(batch):
        if where is None:
            point = (0.2 + 0.6 * torch.rand(dim, generator=generator, dtype=torch.float64)).tolist()
        else:
            point = where
        index = tuple(min(max(round(x / h) - 1, 0), n - 1) for x in point)
        f[(b, 0, *index)] = 1 / h**dim
    return f


def _check_point(owner: str, where: Any, dim: int) -> tuple[float, ...]:
    """``where`` as ``dim`` finite reals strictly inside ``(0, 1)``."""
    names, count = ("(x, y)", "two") if dim == 2 else ("(x, y, z)", "three")
    try:
        point = tuple(float(value) for value in where)
    except (TypeError, ValueError):
        point = ()
    if len(point) != dim:
        raise ValueError(
            f"{owner}: expected where to be a point {names} of {count} numbers, got {where!r}"
        )
    if not all(0 < x < 1 for x in point):  # also False for NaN
        raise ValueError(
            f"{owner}: expected where inside the open unit {'square' if dim == 2 else 'cube'} "
            f"(0, 1)^{dim}, got {where!r}"
        )
    return point


def random_source(
    batch: int, n: int, generator: torch.Generator | None = None, dim: int = 2
) -> Tensor:
    """Complex white-noise sources, unit variance per node, ``(batch, 1, n, ..., n)``
    complex128."""
    batch, n, dim = _check_grid("random_source", batch, n, 6, dim)
    shape = (batch, 1, *[n] * dim)
    real = torch.randn(shape, generator=generator, dtype=torch.float64)
    imag = torch.randn(shape, generator=generator, dtype=torch.float64)
    return torch.complex(real, imag) / math.sqrt(2)
