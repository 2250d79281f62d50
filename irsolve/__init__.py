"""irsolve: learned and classical fixed-point solvers behind one ``solve`` call.

This package is the engine (the step loop :mod:`irsolve.engine`, the solver
interface, :class:`Solution`, the composites :class:`Cycle`, :class:`Interleave`
and :class:`Anderson`, the per-sample :mod:`irsolve.reductions`); around it
:mod:`irsolve.solvers` holds every solver,
:mod:`irsolve.analysis` the contraction and spectral analysis,
:mod:`irsolve.data` the datasets, :mod:`irsolve.learned` networks, losses and
training, and :mod:`irsolve.cli` the ``irsolve`` command.

>>> from irsolve import solve
>>> from irsolve.solvers import Multigrid, Darcy2D
>>> sol = solve(None, Multigrid(), Darcy2D(a), tol=1e-8)     # doctest: +SKIP
"""

__version__ = "0.1.0"

from irsolve._moved import install as _keep_old_module_paths  # noqa: E402
from irsolve.anderson import Anderson  # noqa: E402
from irsolve.composition import Cycle, Interleave  # noqa: E402
from irsolve.engine import SolveState, init, sample_norm, solve  # noqa: E402
from irsolve.interface import FixedPointSolver, Problem, restrict  # noqa: E402
from irsolve.solution import ReturnCode, Solution  # noqa: E402

_keep_old_module_paths()

__all__ = [
    "Anderson",
    "Cycle",
    "FixedPointSolver",
    "Interleave",
    "Problem",
    "ReturnCode",
    "Solution",
    "SolveState",
    "__version__",
    "init",
    "restrict",
    "sample_norm",
    "solve",
]
