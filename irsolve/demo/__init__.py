"""``irsolve demo``: the three things irsolve is for, offline, in minutes, with one report.

1. **Navier–Stokes, learned refiner against its base.** Vorticity
   trajectories simulated here (``nu = 1e-4``, one ``(w_0, w_dt)`` pair per
   trajectory), an FNO base trained on them, the IRNO refiner
   ``h_{k+1} = h_k + alpha_k Phi([x; h_k])`` trained on the frozen base and
   evaluated to ``2K`` steps, beside the same U-Net applied once, and an
   analysis report (per-band spectral error ratios, contraction
   certificate, figures): :mod:`irsolve.demo.navier_stokes`.
2. **Darcy, learned and classical steps in one solve.** A closed-loop
   :class:`~irsolve.solvers.ResidualCorrector` trained here, then held-out
   problems solved from zero to a relative residual of ``1e-8`` by Jacobi
   alone, the corrector interleaved with Jacobi, Jacobi-PCG, flexible CG
   preconditioned by the corrector cycle, and multigrid V(2,2), each
   checked against :func:`scipy.sparse.linalg.spsolve`: :mod:`irsolve.demo.darcy`.
3. **Multigrid against PyAMG** on the same problems, tolerance and machine.

Trained nets and simulated data go to a cache keyed on the settings
(:class:`~irsolve.demo.settings.DemoCache`), so a second run with the same
settings trains nothing. The report folder holds ``report.md`` (the summary
table and a few plain sentences per figure, :mod:`irsolve.demo.report`),
``summary.json``, figures (PNG) and the analysis report of part 1 under
``ns_analysis/``.

>>> result = run_demo("runs/demo", quick=True)   # doctest: +SKIP
>>> print(summary_table(result["summary"]))        # doctest: +SKIP
"""

from .report import summary_table
from .runner import PARTS, run_demo
from .settings import DemoCache, DemoSettings, default_cache_dir

__all__ = ["PARTS", "DemoCache", "DemoSettings", "default_cache_dir", "run_demo", "summary_table"]
