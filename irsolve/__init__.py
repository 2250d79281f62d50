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

import importlib  # noqa: E402

#: Public name -> the module that defines it. Imported on first use (PEP 562), so
#: ``import irsolve`` (and ``irsolve --version``, ``irsolve --help``) loads no torch.
_EXPORTS = {
    "Anderson": "irsolve.anderson",
    "Cycle": "irsolve.composition",
    "FixedPointSolver": "irsolve.interface",
    "Interleave": "irsolve.composition",
    "Problem": "irsolve.interface",
    "ReturnCode": "irsolve.solution",
    "Solution": "irsolve.solution",
    "SolveState": "irsolve.engine",
    "init": "irsolve.engine",
    "restrict": "irsolve.interface",
    "sample_norm": "irsolve.engine",
    "solve": "irsolve.engine",
}


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'irsolve' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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
