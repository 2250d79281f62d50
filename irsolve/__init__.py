"""irsolve: learned and classical fixed-point solvers behind one ``solve`` call."""

__version__ = "0.1.0"

from irsolve.interface import FixedPointSolver, Problem, restrict  # noqa: E402

__all__ = ["FixedPointSolver", "Problem", "restrict", "__version__"]
