"""Fixed-point solvers, classical and learned, and the discrete PDE problems they solve.

Problems (batched, ``(B, 1, n, n)``, float64 by default): :class:`Poisson2D`
and :class:`Darcy2D`, with ``apply``, ``residual``, ``diagonal`` and ``to_scipy``;
in 3-D (``(B, 1, n, n, n)``, 7-point) :class:`Poisson3D` and :class:`Darcy3D`, so
solved by :class:`GeometricMultigrid` (also 2-D), :class:`Jacobi` and Krylov methods.
Classical solvers, each one step of a fixed-point iteration on such a problem:
:class:`Jacobi`, :class:`GaussSeidel` (red-black / four-colour, SOR) and
:class:`Multigrid` (black-box multigrid, one cycle per step); :class:`SparseLU` (SuperLU
factors per sample, for coarse grids and references). Flexible
Krylov methods, one iteration per step, with any of these as preconditioner:
:class:`FlexibleCG` (SPD problems) and :class:`FlexibleGMRES`. Learned steps:
:class:`Refiner` (IRNO, ``h + alpha Phi(x, h)``: reads the iterate) and
:class:`ResidualCorrector` (``h + alpha s Phi(a, r / s)``: reads the residual, so the
solution is a fixed point). :class:`Helmholtz2D` and :class:`Helmholtz3D` (complex,
indefinite) are solved by :class:`FlexibleGMRES` preconditioned with
:class:`ShiftedLaplacian` or with :func:`learned_preconditioner` (shifted-Laplacian
cycles and a learned step). Fields: :func:`gaussian_random_field`,
:func:`darcy_coefficient` (Darcy coefficients); :func:`smooth_speed`,
:func:`piecewise_speed`, :func:`layered_speed` (wave speeds), :func:`point_source`,
:func:`random_source` (Helmholtz sources); each takes ``dim=3``.

>>> a = darcy_coefficient(gaussian_random_field(16, 256))     # doctest: +SKIP
>>> sol = solve(None, Multigrid(), Darcy2D(a), tol=0.0, rtol=1e-8)  # doctest: +SKIP
>>> sol = solve(None, FlexibleCG(Multigrid()), Darcy2D(a), tol=0.0, rtol=1e-8)  # doctest: +SKIP
"""

from irsolve.solvers.corrector import ResidualCorrector
from irsolve.solvers.direct import SparseLU
from irsolve.solvers.fields import darcy_coefficient, gaussian_random_field
from irsolve.solvers.gauss_seidel import GaussSeidel
from irsolve.solvers.geometric_multigrid import GeometricMultigrid
from irsolve.solvers.helmholtz import (
    Helmholtz2D,
    Helmholtz3D,
    layered_speed,
    piecewise_speed,
    point_source,
    random_source,
    smooth_speed,
)
from irsolve.solvers.helmholtz_preconditioner import ShiftedLaplacian, learned_preconditioner
from irsolve.solvers.jacobi import Jacobi
from irsolve.solvers.krylov import FlexibleCG, FlexibleGMRES
from irsolve.solvers.multigrid import Multigrid
from irsolve.solvers.problems import Darcy2D, Darcy3D, Poisson2D, Poisson3D, StencilProblem
from irsolve.solvers.refiner import GeometricAlpha, Refiner

__all__ = [
    "Darcy2D",
    "Darcy3D",
    "FlexibleCG",
    "FlexibleGMRES",
    "GaussSeidel",
    "GeometricMultigrid",
    "GeometricAlpha",
    "Helmholtz2D",
    "Helmholtz3D",
    "Jacobi",
    "Multigrid",
    "Poisson2D",
    "Poisson3D",
    "Refiner",
    "ResidualCorrector",
    "ShiftedLaplacian",
    "SparseLU",
    "StencilProblem",
    "darcy_coefficient",
    "gaussian_random_field",
    "layered_speed",
    "learned_preconditioner",
    "piecewise_speed",
    "point_source",
    "random_source",
    "smooth_speed",
]
