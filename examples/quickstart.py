"""Quick start: a batch of Darcy problems solved by multigrid, checked against SciPy.

python examples/quickstart.py
"""

import torch
from scipy.sparse.linalg import spsolve

from irsolve import solve
from irsolve.solvers import Darcy2D, Multigrid, darcy_coefficient, gaussian_random_field

grf = gaussian_random_field(4, 63, generator=torch.Generator().manual_seed(0))
problem = Darcy2D(darcy_coefficient(grf))  # -div(a grad u) = 1, a in {3, 12}, 4 x 63²
sol = solve(None, Multigrid(), problem, tol=0.0, rtol=1e-10)  # zero start, V(2,2) cycles
print(sol)  # per-sample return codes, iterations, physical residuals
exact = spsolve(problem.to_scipy()[0].tocsc(), problem.f[0].flatten().numpy())
print("max |u - spsolve| =", abs(sol.u[0].flatten().numpy() - exact).max())
