"""Every public constructor and entry point rejects bad arguments with an error naming them.

Each row: a call with one bad argument, the exception type, and a pattern the
message must match: the public name (``Jacobi``, ``solve``, ...) followed by the
argument's name, so that no error comes from inside torch or from an internal
such as ``SolveState.__init__``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from core_solvers import AffineMap

from irsolve import Anderson, Interleave, init, sample_norm, solve
from irsolve.analysis import contraction_certificate, lipschitz, spectral_error
from irsolve.analysis.lipschitz_estimates import spectral_norm
from irsolve.analysis.spectral import band_edges
from irsolve.analysis.stepmap import StepMap
from irsolve.data import load_dataset
from irsolve.metrics import rfne, vrmse
from irsolve.solvers import (
    Darcy2D,
    FlexibleCG,
    FlexibleGMRES,
    GaussSeidel,
    GeometricAlpha,
    Jacobi,
    Multigrid,
    Poisson2D,
    Refiner,
    StencilProblem,
    darcy_coefficient,
    gaussian_random_field,
)

F64 = torch.float64
H0 = torch.zeros(2, 3, dtype=F64)
STEP = AffineMap(0.5 * torch.eye(3, dtype=F64).expand(2, 3, 3), torch.ones(2, 3, dtype=F64))
GRID = torch.ones(2, 1, 4, 4, dtype=F64)
POISSON = Poisson2D(GRID)


def _stencil() -> tuple[torch.Tensor, torch.Tensor]:
    return POISSON.stencil.clone(), POISSON.f.clone()


def _outward_stencil() -> StencilProblem:
    stencil, f = _stencil()
    stencil[:, 0, 0, :] = -1.0  # north neighbour of the first row lies outside the grid
    return StencilProblem(stencil, f, periodic=False)


def _nan_stencil() -> StencilProblem:
    stencil, f = _stencil()
    stencil[0, 2, 1, 1] = math.nan
    return StencilProblem(stencil, f, periodic=False)


def _solve(**options: object) -> Callable[[], object]:
    return lambda: solve(H0, STEP, H0, **options)


CASES: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    # irsolve.solve / init
    ("solve maxiter=inf", _solve(maxiter=math.inf), ValueError, r"^solve: .*maxiter.*inf"),
    ("solve maxiter=2.5", _solve(maxiter=2.5), ValueError, r"^solve: .*maxiter.*2\.5"),
    ("solve maxiter=-1", _solve(maxiter=-1), ValueError, r"^solve: .*maxiter.*>= 0"),
    ("solve tol='1e-6'", _solve(tol="1e-6"), TypeError, r"^solve: .*tol.*'1e-6' \(str\)"),
    ("solve tol=nan", _solve(tol=math.nan), ValueError, r"^solve: .*tol.*nan"),
    ("solve rtol=-1", _solve(rtol=-1.0), ValueError, r"^solve: .*rtol"),
    ("solve divergence=1", _solve(divergence=1.0), ValueError, r"^solve: .*divergence.*> 1"),
    ("solve patience=0", _solve(patience=0), ValueError, r"^solve: .*patience"),
    ("solve norm='l3'", _solve(norm="l3"), ValueError, r"^solve: .*norm.*'rms'"),
    ("solve callback=3", _solve(callback=3), TypeError, r"^solve: .*callback"),
    (
        "solve norm returns a scalar",
        _solve(norm=lambda t: t.norm()),
        ValueError,
        r"^sample_norm: expected the norm callable to return .* shape \(2,\), got shape \(\)",
    ),
    (
        "solve norm returns a float",
        _solve(norm=lambda t: 1.0),
        ValueError,
        r"^sample_norm: expected the norm callable .*, got 1.0$",
    ),
    ("solve save_trajectory", _solve(save_trajectory="yes"), TypeError, r"^solve: .*save_traj"),
    ("solve grad=1", _solve(grad=1), TypeError, r"^solve: .*grad.*bool"),
    ("solve unknown keyword", _solve(tolerance=1e-3), TypeError, r"^solve\(\) .*'tolerance'"),
    ("solve base=3", lambda: solve(3, STEP, H0), TypeError, r"^solve: .*base"),
    ("solve refiner", lambda: solve(H0, lambda h: h, H0), TypeError, r"^solve: .*refiner"),
    (
        "init maxiter=inf",
        lambda: init(H0, STEP, H0, maxiter=math.inf),
        ValueError,
        r"^init: .*maxiter",
    ),
    ("sample_norm norm", lambda: sample_norm(H0, "l3"), ValueError, r"^sample_norm: .*norm"),
    # irsolve.Anderson, irsolve.Interleave
    ("Anderson m=0", lambda: Anderson(STEP, m=0), ValueError, r"^Anderson: .*m .*>= 1"),
    ("Anderson m=2.5", lambda: Anderson(STEP, m=2.5), ValueError, r"^Anderson: .*m "),
    ("Anderson beta=0", lambda: Anderson(STEP, beta=0.0), ValueError, r"^Anderson: .*beta"),
    ("Anderson lam=nan", lambda: Anderson(STEP, lam=math.nan), ValueError, r"^Anderson: .*lam"),
    ("Anderson lam=-1", lambda: Anderson(STEP, lam=-1.0), ValueError, r"^Anderson: .*lam"),
    ("Anderson solver", lambda: Anderson(lambda h: h), TypeError, r"^Anderson: .*solver"),
    (
        "Interleave pattern 0",
        lambda: Interleave(STEP, STEP, pattern=(0, 1)),
        ValueError,
        r"^Interleave: .*pattern",
    ),
    (
        "Interleave pattern 1.5",
        lambda: Interleave(STEP, STEP, pattern=(1.5, 1)),
        ValueError,
        r"^Interleave: .*pattern",
    ),
    (
        "Interleave child",
        lambda: Interleave(STEP, "jacobi"),
        TypeError,
        r"^Interleave: .*FixedPointSolver",
    ),
    # irsolve.metrics
    ("vrmse eps=-1", lambda: vrmse(GRID, GRID, eps=-1.0), ValueError, r"^vrmse: .*eps"),
    ("rfne pred list", lambda: rfne([1.0], GRID), TypeError, r"^rfne: .*pred"),
    # irsolve.solvers: relaxation and learned steps
    ("Jacobi sweeps=1.5", lambda: Jacobi(sweeps=1.5), ValueError, r"^Jacobi: .*sweeps.*1\.5"),
    ("Jacobi sweeps=0", lambda: Jacobi(sweeps=0), ValueError, r"^Jacobi: .*sweeps"),
    ("Jacobi sweeps='2'", lambda: Jacobi(sweeps="2"), TypeError, r"^Jacobi: .*sweeps"),
    ("Jacobi omega=2", lambda: Jacobi(omega=2.0), ValueError, r"^Jacobi: .*omega"),
    ("Jacobi omega=nan", lambda: Jacobi(omega=math.nan), ValueError, r"^Jacobi: .*omega"),
    ("Jacobi omega='0.8'", lambda: Jacobi(omega="0.8"), TypeError, r"^Jacobi: .*omega"),
    (
        "GaussSeidel sweeps=1.5",
        lambda: GaussSeidel(sweeps=1.5),
        ValueError,
        r"^GaussSeidel: .*sweeps",
    ),
    ("GaussSeidel omega=2", lambda: GaussSeidel(omega=2.0), ValueError, r"^GaussSeidel: .*omega"),
    (
        "GaussSeidel ordering",
        lambda: GaussSeidel(ordering="lex"),
        ValueError,
        r"^GaussSeidel: .*ordering",
    ),
    (
        "GaussSeidel clusters=0",
        lambda: GaussSeidel(clusters=0.0),
        ValueError,
        r"^GaussSeidel: .*clusters",
    ),
    (
        "GaussSeidel cluster_size=1",
        lambda: GaussSeidel(cluster_size=1),
        ValueError,
        r"^GaussSeidel: .*cluster_size",
    ),
    ("Multigrid pre=1.5", lambda: Multigrid(pre=1.5), ValueError, r"^Multigrid: .*pre"),
    (
        "Multigrid pre=post=0",
        lambda: Multigrid(pre=0, post=0),
        ValueError,
        r"^Multigrid: .*pre \+ post",
    ),
    ("Multigrid cycle='X'", lambda: Multigrid(cycle="X"), ValueError, r"^Multigrid: .*cycle"),
    (
        "Multigrid coarsest=2.5",
        lambda: Multigrid(coarsest=2.5),
        ValueError,
        r"^Multigrid: .*coarsest",
    ),
    (
        "Multigrid float16",
        lambda: Multigrid(cycle_dtype=torch.float16),
        ValueError,
        r"^Multigrid: .*cycle_dtype",
    ),
    (
        "Multigrid symmetric='yes'",
        lambda: Multigrid(symmetric="yes"),
        TypeError,
        r"^Multigrid: .*symmetric",
    ),
    ("Multigrid smoother", lambda: Multigrid(smoother="gs"), TypeError, r"^Multigrid: .*smoother"),
    (
        "GeometricAlpha alpha=-1",
        lambda: GeometricAlpha(alpha=-1.0),
        ValueError,
        r"^GeometricAlpha: .*alpha",
    ),
    (
        "GeometricAlpha gamma",
        lambda: GeometricAlpha(gamma=1.5),
        ValueError,
        r"^GeometricAlpha: .*gamma",
    ),
    (
        "GeometricAlpha start",
        lambda: GeometricAlpha(start=0.5),
        ValueError,
        r"^GeometricAlpha: .*start",
    ),
    ("Refiner net", lambda: Refiner(3), TypeError, r"^Refiner: .*net"),
    (
        "Refiner alpha=0",
        lambda: Refiner(torch.nn.Identity(), alpha=0.0),
        ValueError,
        r"^Refiner: .*alpha",
    ),
    (
        "Refiner alpha=nan",
        lambda: Refiner(torch.nn.Identity(), alpha=math.nan),
        ValueError,
        r"^Refiner: .*alpha",
    ),
    (
        "Refiner stop_threshold",
        lambda: Refiner(torch.nn.Identity(), stop_threshold=-1.0),
        ValueError,
        r"^Refiner: .*stop_threshold",
    ),
    (
        "Refiner features",
        lambda: Refiner(torch.nn.Identity(), features=3),
        TypeError,
        r"^Refiner: .*features",
    ),
    # irsolve.solvers: problems and fields
    (
        "Poisson2D dtype int32",
        lambda: Poisson2D(GRID, dtype=torch.int32),
        ValueError,
        r"^Poisson2D: .*dtype.*int32",
    ),
    (
        "Poisson2D dtype float16",
        lambda: Poisson2D(GRID, dtype=torch.float16),
        ValueError,
        r"^Poisson2D: .*dtype.*float16",
    ),
    ("Poisson2D bc", lambda: Poisson2D(GRID, bc="neumann"), ValueError, r"^Poisson2D: .*bc"),
    (
        "Poisson2D f non-square",
        lambda: Poisson2D(torch.ones(1, 1, 4, 5)),
        ValueError,
        r"^Poisson2D: .*f of shape",
    ),
    (
        "Poisson2D f nan",
        lambda: Poisson2D(torch.full((1, 1, 3, 3), math.nan)),
        ValueError,
        r"^Poisson2D: .*f",
    ),
    ("Poisson2D f list", lambda: Poisson2D([[1.0]]), TypeError, r"^Poisson2D: .*f"),
    ("Darcy2D a <= 0", lambda: Darcy2D(-GRID), ValueError, r"^Darcy2D: .*coefficient a"),
    (
        "Darcy2D f shape",
        lambda: Darcy2D(GRID, f=torch.ones(1, 1, 4, 4)),
        ValueError,
        r"^Darcy2D: .*f of shape",
    ),
    ("Darcy2D f nan", lambda: Darcy2D(GRID, f=math.nan), ValueError, r"^Darcy2D: .*f"),
    ("Darcy2D f str", lambda: Darcy2D(GRID, f="1"), TypeError, r"^Darcy2D: .*f"),
    (
        "Darcy2D dtype float16",
        lambda: Darcy2D(GRID, dtype=torch.float16),
        ValueError,
        r"^Darcy2D: .*dtype",
    ),
    (
        "StencilProblem non-square",
        lambda: StencilProblem(
            torch.zeros(2, 5, 4, 5, dtype=F64), torch.zeros(2, 1, 4, 5, dtype=F64), False
        ),
        ValueError,
        r"^StencilProblem: .*stencil of shape",
    ),
    (
        "StencilProblem K=7",
        lambda: StencilProblem(torch.zeros(2, 7, 4, 4, dtype=F64), POISSON.f, False),
        ValueError,
        r"^StencilProblem: .*stencil of shape",
    ),
    (
        "StencilProblem batch",
        lambda: StencilProblem(POISSON.stencil, POISSON.f[:1], False),
        ValueError,
        r"^StencilProblem: .*f of shape \(2, 1, 4, 4\)",
    ),
    (
        "StencilProblem int32",
        lambda: StencilProblem(POISSON.stencil.int(), POISSON.f.int(), False),
        ValueError,
        r"^StencilProblem: .*stencil.dtype.*int32",
    ),
    (
        "StencilProblem float16",
        lambda: StencilProblem(POISSON.stencil.half(), POISSON.f.half(), False),
        ValueError,
        r"^StencilProblem: .*stencil.dtype.*float16",
    ),
    (
        "StencilProblem f dtype",
        lambda: StencilProblem(POISSON.stencil, POISSON.f.float(), False),
        ValueError,
        r"^StencilProblem: .*f with the stencil's dtype",
    ),
    (
        "StencilProblem periodic",
        lambda: StencilProblem(POISSON.stencil, POISSON.f, "no"),
        TypeError,
        r"^StencilProblem: .*periodic",
    ),
    (
        "StencilProblem outward",
        _outward_stencil,
        ValueError,
        r"^StencilProblem: .*out of the Dirichlet grid",
    ),
    (
        "StencilProblem nan",
        _nan_stencil,
        ValueError,
        r"^StencilProblem: .*finite values in stencil",
    ),
    (
        "StencilProblem f list",
        lambda: StencilProblem(POISSON.stencil, [0.0], False),
        TypeError,
        r"^StencilProblem: .*f",
    ),
    (
        "gaussian_random_field batch",
        lambda: gaussian_random_field(0, 8),
        ValueError,
        r"^gaussian_random_field: .*batch",
    ),
    (
        "gaussian_random_field n",
        lambda: gaussian_random_field(1, 2.5),
        ValueError,
        r"^gaussian_random_field: .*n ",
    ),
    (
        "gaussian_random_field tau",
        lambda: gaussian_random_field(1, 8, tau=0.0),
        ValueError,
        r"^gaussian_random_field: .*tau",
    ),
    (
        "gaussian_random_field dtype",
        lambda: gaussian_random_field(1, 8, dtype=torch.int32),
        ValueError,
        r"^gaussian_random_field: .*dtype",
    ),
    (
        "darcy_coefficient high",
        lambda: darcy_coefficient(GRID, high=-1.0),
        ValueError,
        r"^darcy_coefficient: .*high",
    ),
    (
        "darcy_coefficient low",
        lambda: darcy_coefficient(GRID, low=math.nan),
        ValueError,
        r"^darcy_coefficient: .*low",
    ),
    (
        "darcy_coefficient grf",
        lambda: darcy_coefficient([1.0]),
        TypeError,
        r"^darcy_coefficient: .*grf",
    ),
    # resources, underflow and NaN (issue 23): refused before anything is allocated
    (
        "Poisson2D 1e6 x 1e6 grid",
        lambda: Poisson2D(torch.ones(1, 1, 1, 1, dtype=F64).expand(1, 1, 10**6, 10**6)),
        ValueError,
        r"^Poisson2D: .*1000000 x 1000000 grid.* would need about .* more than this machine",
    ),
    (
        "Darcy2D 1e6 x 1e6 grid",
        lambda: Darcy2D(torch.ones(1, 1, 1, 1, dtype=F64).expand(1, 1, 10**6, 10**6)),
        ValueError,
        r"^Darcy2D: .*would need about",
    ),
    (
        "Anderson m=1e15",
        lambda: solve(H0, Anderson(STEP, m=10**15), H0),
        ValueError,
        r"^Anderson: a history of m=1000000000000000 .*would need about",
    ),
    (
        "Anderson m=1e7 on a 128 x 128 grid",
        lambda: solve(None, Anderson(Jacobi(), m=10**7), Poisson2D(torch.ones(1, 1, 128, 128))),
        ValueError,
        r"^Anderson: a history of m=10000000 iterates and images of 1 x 16384 .*would need about",
    ),
    (
        "gaussian_random_field n=1e6",
        lambda: gaussian_random_field(1, 10**6),
        ValueError,
        r"^gaussian_random_field: .*1000000 x 1000000.*would need about",
    ),
    (
        "gaussian_random_field numpy generator",
        lambda: gaussian_random_field(1, 8, generator=np.random.default_rng(0)),
        TypeError,
        r"^gaussian_random_field: .*generator to be a torch.Generator.*numpy",
    ),
    (
        "Darcy2D a=1e307",
        lambda: Darcy2D(GRID * 1e307),
        ValueError,
        r"^Darcy2D: expected the coefficient a in \[2.23e-308, 8.99e\+305\] .*got min 1e\+307",
    ),
    (
        "Darcy2D a=1e-50 as float32",
        lambda: Darcy2D(GRID * 1e-50, dtype=torch.float32),
        ValueError,
        r"^Darcy2D: expected the coefficient a in \[1.18e-38, ",
    ),
    (
        "darcy_coefficient nan",
        lambda: darcy_coefficient(torch.tensor([1.0, math.nan])),
        ValueError,
        r"^darcy_coefficient: expected grf without NaN, got 1 NaN",
    ),
    (
        "darcy_coefficient complex",
        lambda: darcy_coefficient(torch.ones(2, dtype=torch.complex64)),
        TypeError,
        r"^darcy_coefficient: expected grf to be a real torch.Tensor, got complex",
    ),
    ("load_dataset None", lambda: load_dataset(None), TypeError, r"^load_dataset: .*path.*None"),
    ("FlexibleCG m=None", lambda: FlexibleCG(Jacobi(), m=None), TypeError, r"^FlexibleCG: .*m "),
    ("FlexibleCG m=nan", lambda: FlexibleCG(Jacobi(), m=math.nan), ValueError, r"^FlexibleCG: .*"),
    ("FlexibleCG m=inf", lambda: FlexibleCG(Jacobi(), m=math.inf), ValueError, r"^FlexibleCG: .*"),
    (
        "FlexibleGMRES restart=0",
        lambda: FlexibleGMRES(Jacobi(), restart=0),
        ValueError,
        r"^FlexibleGMRES: expected restart to be an int >= 1, got 0",
    ),
    (
        "Multigrid coarsest=100 on 99x99",
        lambda: solve(None, Multigrid(coarsest=100), Poisson2D(torch.ones(1, 1, 99, 99))),
        ValueError,
        r"^Multigrid: .*at most 4096 unknowns.* grid of 99 stops at 99 x 99 \(coarsest=100",
    ),
    # irsolve.analysis
    (
        "lipschitz method",
        lambda: lipschitz(Jacobi(), POISSON, GRID, method="svd"),
        ValueError,
        r"^lipschitz: .*method",
    ),
    (
        "lipschitz norm",
        lambda: lipschitz(Jacobi(), POISSON, GRID, norm="l1"),
        ValueError,
        r"^lipschitz: .*norm",
    ),
    (
        "lipschitz iters",
        lambda: lipschitz(Jacobi(), POISSON, GRID, iters=0),
        ValueError,
        r"^lipschitz: .*iters",
    ),
    (
        "lipschitz spectral_tol",
        lambda: lipschitz(Jacobi(), POISSON, GRID, spectral_tol=-1.0),
        ValueError,
        r"^lipschitz: .*spectral_tol",
    ),
    (
        "lipschitz n_pairs",
        lambda: lipschitz(Jacobi(), POISSON, GRID, n_pairs=0),
        ValueError,
        r"^lipschitz: .*n_pairs",
    ),
    (
        "lipschitz radius",
        lambda: lipschitz(Jacobi(), POISSON, GRID, radius=-1.0),
        ValueError,
        r"^lipschitz: .*radius",
    ),
    (
        "lipschitz k",
        lambda: lipschitz(Jacobi(), POISSON, GRID, k=-1),
        ValueError,
        r"^lipschitz: .*k ",
    ),
    (
        "lipschitz solver",
        lambda: lipschitz(lambda h: h, POISSON, GRID),
        TypeError,
        r"^lipschitz: .*solver",
    ),
    (
        "lipschitz h shape",
        lambda: lipschitz(Jacobi(), POISSON, GRID[:1]),
        ValueError,
        r"^lipschitz: .*h of the problem's solution shape \(2, 1, 4, 4\)",
    ),
    (
        "certificate y shape",
        lambda: contraction_certificate(Jacobi(), POISSON, GRID[:, :, :3]),
        ValueError,
        r"^contraction_certificate: .*y of the problem's solution shape",
    ),
    (
        "spectral_norm fn",
        lambda: spectral_norm("G", GRID),
        TypeError,
        r"^spectral_norm: .*fn",
    ),
    (
        "spectral_norm iters",
        lambda: spectral_norm(lambda v: v, GRID, iters=0),
        ValueError,
        r"^spectral_norm: .*iters",
    ),
    (
        "StepMap k",
        lambda: StepMap(Jacobi(), POISSON, k=-1),
        ValueError,
        r"^StepMap: .*k ",
    ),
    (
        "lipschitz h",
        lambda: lipschitz(Jacobi(), POISSON, [0.0]),
        ValueError,
        r"^lipschitz: .*batched tensor",
    ),
    (
        "lipschitz energy periodic",
        lambda: lipschitz(Jacobi(), Poisson2D(GRID, bc="periodic"), GRID, norm="energy"),
        ValueError,
        r"^lipschitz: .*positive definite",
    ),
    (
        "certificate steps",
        lambda: contraction_certificate(Jacobi(), POISSON, GRID, steps=-1),
        ValueError,
        r"^contraction_certificate: .*steps",
    ),
    (
        "certificate n_probe",
        lambda: contraction_certificate(Jacobi(), POISSON, GRID, n_probe=1.5),
        ValueError,
        r"^contraction_certificate: .*n_probe",
    ),
    (
        "certificate method",
        lambda: contraction_certificate(Jacobi(), POISSON, GRID, method="svd"),
        ValueError,
        r"^contraction_certificate: .*method",
    ),
    (
        "certificate norm",
        lambda: contraction_certificate(Jacobi(), POISSON, GRID, norm="max"),
        ValueError,
        r"^contraction_certificate: .*norm",
    ),
    (
        "certificate energy tensor",
        lambda: contraction_certificate(STEP, H0, H0, norm="energy"),
        TypeError,
        r"^contraction_certificate: .*norm='energy'",
    ),
    (
        "certificate delta",
        lambda: contraction_certificate(Jacobi(), POISSON, GRID, delta=0.0),
        ValueError,
        r"^contraction_certificate: .*delta",
    ),
    (
        "certificate points_per_call",
        lambda: contraction_certificate(Jacobi(), POISSON, GRID, points_per_call=0),
        ValueError,
        r"^contraction_certificate: .*points_per_call",
    ),
    (
        "certificate h0",
        lambda: contraction_certificate(Jacobi(), POISSON, GRID, h0=GRID[:1]),
        ValueError,
        r"^contraction_certificate: .*h0",
    ),
    (
        "certificate n_probe=1e12",
        lambda: contraction_certificate(Jacobi(), POISSON, GRID, n_probe=10**12),
        ValueError,
        r"^contraction_certificate: steps=12 and n_probe=1000000000000 .*would need about",
    ),
    (
        "certificate steps=1e12",
        lambda: contraction_certificate(Jacobi(), POISSON, GRID, steps=10**12),
        ValueError,
        r"^contraction_certificate: steps=1000000000000 and n_probe=8 .*would need about",
    ),
    (
        "spectral_error bands",
        lambda: spectral_error(GRID, GRID, bands=0),
        ValueError,
        r"^band_edges: .*bands",
    ),
    (
        "spectral_error bands str",
        lambda: spectral_error(GRID, GRID, bands="3"),
        TypeError,
        r"^band_edges: .*bands",
    ),
    ("band_edges edges", lambda: band_edges([0.0, 0.3]), ValueError, r"^band_edges: .*bands"),
    (
        "spectral_error shape",
        lambda: spectral_error(GRID, GRID[:1]),
        ValueError,
        r"^spectral_error: .*same shape",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "pattern"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_input_raises_an_error_naming_the_function_and_argument(
    call: Callable[[], object], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        call()


def test_valid_edge_values_are_accepted() -> None:
    # The boundaries of each range that are legal, and integral floats where ints are asked.
    assert Jacobi(sweeps=2.0).sweeps == 2
    assert Anderson(STEP, m=1, beta=1.0, lam=0.0).m == 1
    assert GeometricAlpha(gamma=0.0, start=0).gamma == 0.0
    assert solve(H0, STEP, H0, tol=0.0, maxiter=1e1, divergence=math.inf).stats["steps"] == 10
    assert Poisson2D(GRID, dtype=torch.float32).f.dtype == torch.float32
    assert Darcy2D(GRID.int()).f.dtype == F64  # an integer coefficient is converted
