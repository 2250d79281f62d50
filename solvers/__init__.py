"""Fixed-point solvers, classical and learned, and the discrete PDE problems they solve."""

from irsolve.solvers.fields import darcy_coefficient, gaussian_random_field
from irsolve.solvers.gauss_seidel import GaussSeidel
from irsolve.solvers.jacobi import Jacobi
from irsolve.solvers.multigrid import Multigrid
from irsolve.solvers.problems import Darcy2D, Poisson2D, StencilProblem
from irsolve.solvers.refiner import Refiner

__all__ = [
    "Darcy2D",
    "GaussSeidel",
    "Jacobi",
    "Multigrid",
    "Poisson2D",
    "Refiner",
    "StencilProblem",
    "darcy_coefficient",
    "gaussian_random_field",
]
