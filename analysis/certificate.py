"""Contraction certificates (Theorem 3.1 / Corollary 3.3 of the IRNO paper) on real inputs.

For a step map ``G`` (one application of a fixed-point solver) and the true
solution ``y``, write ``e = h - y`` and expand ``G`` around ``y``:

``G(y + e) - y = (G(y) - y) + J e + R(e)``,  ``J = dG/dh (y)``.

With ``q = ||J||`` (the operator norm induced by the vector norm used
throughout: the 2-norm, or the energy norm ``||e||_A = sqrt(e^T A e)`` of an
SPD problem, where ``||J||_A = ||A^{1/2} J A^{-1/2}||_2``), ``c`` a bound on
``||R(e)|| / ||e||^2`` for ``||e|| <= delta`` and the bias
``beta = ||G(y) - y||``, every step obeys

``||e_{k+1}|| <= q ||e_k|| + c ||e_k||^2 + beta``   (while ``||e_k|| <= delta``).

For the learned step ``G(h) = h + alpha Phi(x, h)`` this is the paper's
Theorem 3.1: ``J = I - alpha A`` with ``A`` the Jacobian of ``-Phi`` at ``y``
and ``beta = alpha ||b||``, ``b = Phi(x, y)``. For a classical step (Jacobi,
Gauss-Seidel, multigrid) the exact discrete solution is a fixed point, so
``beta = 0`` and ``y`` should be that solution; an affine step has ``c = 0``.

Corollary 3.3: the ball ``B_r(y)`` is invariant when ``q r + c r^2 + beta <= r``.
With ``q < 1`` this holds for ``r`` in ``[r_-, r_+]``, the roots of
``c r^2 - (1 - q) r + beta = 0``,

``r_± = ((1 - q) ± sqrt((1 - q)^2 - 4 c beta)) / (2 c)``,

which exist iff ``beta <= (1 - q)^2 / (4 c)``; for ``c = 0``,
``r_- = beta / (1 - q)`` and ``r_+ = inf``. The certificate *holds* when such
an ``r <= delta`` exists, i.e. ``q < 1``, the discriminant is non-negative and
``r_- <= delta``. Iterates started in ``B_r(y)`` then stay there and their
error bound decreases to ``r_-``; to first order in ``beta`` this is the error
floor ``beta / (1 - q)`` (``alpha ||b|| / (1 - q)`` in the paper's notation).

Beside ``q`` (the Jacobian at ``y``) the certificate reports ``lipschitz``,
the largest ``||J_G(p)||`` found on the ball and along the trajectory: if
it is below one, ``G`` contracts on the whole ball (mean-value theorem), a
stronger statement that needs no ``c``.

Reference: the IRNO paper, Sec. 3 and App. (proof of Corollary 3.3); the
Banach fixed-point theorem for the contraction argument.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Literal

import torch
from torch import Tensor

from irsolve._validate import check_choice, check_int, check_memory, check_real
from irsolve.engine import solve
from irsolve.interface import FixedPointSolver, Problem

from .lipschitz_estimates import Linearisation, check_solver_call, spectral_norm
from .norms import EnergyNorm, EuclideanNorm, NormName, make_norm
from .stepmap import StepMap, ball_points

__all__ = ["Certificate", "contraction_certificate", "error_bound", "invariant_radii", "iterate"]

logger = logging.getLogger(__name__)

#: Second-order probes closer to ``y`` than this fraction of ``delta`` are skipped:
#: there ``||R(e)|| / ||e||^2`` measures round-off, not curvature.
MIN_PROBE_FRACTION = 1e-2


@dataclasses.dataclass(frozen=True)
class Certificate:
    """Estimated constants of Theorem 3.1 and what the iteration really did, per sample.

    Attributes
    ----------
    q : Tensor
        ``(B,)`` operator norm (in ``norm``) of the step's Jacobian at ``y``.
    c : Tensor
        ``(B,)`` largest second-order ratio ``||G(y+e) - G(y) - J e|| / ||e||^2``
        found on ``B_delta(y)`` (round-off removed).
    lipschitz : Tensor
        ``(B,)`` largest ``||J_G(p)||`` found at ``y``, at the trajectory
        points inside ``B_delta(y)`` and at random points of it.
    bias : Tensor
        ``(B,)`` ``beta = ||G(y) - y||`` (``alpha ||Phi(x, y)||`` for the
        learned step, zero for a classical step at its exact solution).
    r_minus, r_plus : Tensor
        ``(B,)`` bounds of the invariant radii (``r_plus = inf`` when
        ``c = 0``); NaN where no invariant ball exists.
    floor : Tensor
        ``(B,)`` predicted error floor ``beta / (1 - q)`` (``inf`` if ``q >= 1``).
    holds : Tensor
        ``(B,)`` bool: an invariant ball ``B_r(y)`` with ``r <= delta`` exists.
    delta : Tensor
        ``(B,)`` radius of the ball on which ``q`` and ``c`` were estimated.
    observed : Tensor
        ``(steps + 1, B)`` error ``||h_k - y||`` of the actual iteration
        (row 0: the initial iterate ``h0``).
    bound : Tensor
        ``(steps + 1, B)`` the predicted bound ``t_0 = ||h_0 - y||``,
        ``t_{k+1} = q t_k + c t_k^2 + beta``; ``inf`` once it leaves the ball.
    within : Tensor
        ``(B,)`` bool: ``observed <= bound`` at every step (up to round-off).
    norm : str
        The norm every quantity is measured in: ``"l2"`` or ``"energy"``.
    """

    q: Tensor
    c: Tensor
    lipschitz: Tensor
    bias: Tensor
    r_minus: Tensor
    r_plus: Tensor
    floor: Tensor
    holds: Tensor
    delta: Tensor
    observed: Tensor
    bound: Tensor
    within: Tensor
    norm: str = "l2"

    @property
    def batch_size(self) -> int:
        return self.q.shape[0]

    def __repr__(self) -> str:
        steps = self.observed.shape[0] - 1
        header = (
            f"Certificate(batch={self.batch_size}, steps={steps}, norm={self.norm!r}, "
            f"holds={int(self.holds.sum())}/{self.batch_size}, "
            f"within={int(self.within.sum())}/{self.batch_size})\n"
        )
        columns = (
            "q",
            "c",
            "lipschitz",
            "bias",
            "r_minus",
            "r_plus",
            "floor",
            "delta",
            "err0",
            "errK",
        )
        lines = [f"{'sample':>6} " + " ".join(f"{n:>9}" for n in columns) + "  holds within"]
        for b in range(self.batch_size):
            values = (
                self.q[b],
                self.c[b],
                self.lipschitz[b],
                self.bias[b],
                self.r_minus[b],
                self.r_plus[b],
                self.floor[b],
                self.delta[b],
                self.observed[0, b],
                self.observed[-1, b],
            )
            cells = " ".join(f"{float(v):9.3g}" for v in values)
            lines.append(f"{b:>6} {cells}  {bool(self.holds[b])!s:>5} {bool(self.within[b])!s:>6}")
        return header + "\n".join(lines)

    def to_dict(self) -> dict[str, list]:
        """Plain lists (JSON-ready): per-sample fields, ``observed``/``bound`` per step, and
        ``norm``."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {name: v.tolist() if isinstance(v, Tensor) else v for name, v in values.items()}


def invariant_radii(q: Tensor, c: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """Roots ``r_- <= r_+`` of ``c r^2 - (1 - q) r + bias = 0`` (Corollary 3.3).

    ``r_- = 2 bias / ((1 - q) + sqrt(D))`` (the cancellation-free form of
    ``((1 - q) - sqrt(D)) / (2c)``) and ``r_+ = ((1 - q) + sqrt(D)) / (2c)``,
    with ``D = (1 - q)^2 - 4 c bias``; ``r_- = bias / (1 - q)`` and
    ``r_+ = inf`` when ``c = 0``. NaN where ``q >= 1`` or ``D < 0`` (no
    invariant ball).
    """
    gap = 1.0 - q
    disc = gap**2 - 4.0 * c * bias
    valid = (gap > 0) & (disc >= 0)
    root = torch.sqrt(disc.clamp_min(0.0))
    r_minus = 2.0 * bias / (gap + root)
    tiny = torch.finfo(c.dtype).tiny
    r_plus = torch.where(c > 0, (gap + root) / (2.0 * c.clamp_min(tiny)), torch.inf)
    nan = torch.full_like(q, torch.nan)
    return torch.where(valid, r_minus, nan), torch.where(valid, r_plus, nan)


def iterate(solver: FixedPointSolver, x: Any, h0: Tensor, steps: int) -> Tensor:
    """``(steps + 1, B, ...)`` iterates ``h_0 .. h_steps`` of ``solver`` from ``h0``.

    The engine's fixed-step run: :func:`irsolve.solve` with ``tol=None`` (no
    convergence test), no divergence test and ``save_trajectory=True``, under
    ``torch.no_grad``. A sample whose iterate turns non-finite ends there
    (``UNSTABLE``) and its later rows repeat that non-finite iterate.
    """
    sol = solve(h0, solver, x, tol=None, maxiter=steps, divergence=None, save_trajectory=True)
    return sol.trajectory


def contraction_certificate(
    solver: FixedPointSolver,
    x: Any,
    y: Tensor,
    *,
    h0: Tensor | None = None,
    steps: int = 12,
    delta: float | Tensor | None = None,
    n_probe: int = 8,
    k: int = 0,
    iters: int = 20,
    spectral_tol: float = 1e-3,
    method: Literal["lanczos", "power"] = "lanczos",
    norm: NormName = "l2",
    generator: torch.Generator | None = None,
    points_per_call: int | None = None,
) -> Certificate:
    """Estimate the constants of Theorem 3.1 around ``y`` and check them on the trajectory.

    Assumptions (each one is what the estimate relies on, not something it proves):

    1. ``G = solver.step(ctx, ., k)`` is one fixed map, differentiable on
       ``B_delta(y)`` and built from torch operations; it acts on each sample
       independently (a learned step in ``eval()`` mode). A step-size schedule
       or composite solver is certified at step ``k`` only, while the observed
       trajectory uses the real indices ``0, 1, ...``.
    2. Norms are Euclidean over all non-batch entries of a sample
       (``norm="l2"``), or the energy norm ``||e||_A = sqrt(e^T A e)`` of an
       SPD problem (``norm="energy"``), in which every error, ``q``, ``c``,
       ``lipschitz``, ``bias`` and ``delta`` is then measured. A contraction
       in either norm proves convergence; Gauss-Seidel on an SPD problem
       contracts in the energy norm (its error propagation ``E`` has
       ``E^T A E < A``) while ``||E||_2`` may exceed one.
    3. ``q = ||J_G(y)||`` comes from Lanczos or power iteration (a lower
       bound that converges from below). ``c`` and ``lipschitz`` are suprema over the
       ball, estimated as maxima over finitely many points: the trajectory
       points inside the ball and ``n_probe`` uniform random points (and
       ``y`` for ``lipschitz``). All are lower bounds of the true values, so
       ``holds`` is a diagnosis on these probes, not a proof; ``within``
       checks the prediction against the actual iteration.
    4. ``c`` uses ``J = dG/dh(y)``; probes nearer to ``y`` than
       ``MIN_PROBE_FRACTION * delta`` are skipped (round-off dominates there)
       and a round-off allowance of a few ulps of ``||G||`` is subtracted, so
       an affine map gives ``c = 0``.
    5. ``y`` is the target the error is measured against (the reference
       solution); for a classical solver, the exact discrete solution.

    Parameters
    ----------
    solver
        Any fixed-point solver (see :func:`~irsolve.analysis.lipschitz`).
    x
        Its input: a tensor ``(B, C, *space)`` or a problem object.
    y
        Reference solution ``(B, C, *space)``.
    h0
        Initial iterate (e.g. the base operator's prediction); default zeros
        (``x.zeros()`` for a problem).
    steps
        Steps of the observed trajectory (default 12: twice the paper's K = 6).
    delta
        Radius of the ball around ``y`` (scalar or ``(B,)``); default: the
        largest finite observed error, so the ball contains the trajectory
        (all of it unless it diverged).
    n_probe
        Random points in the ball, for ``q`` and for ``c`` each.
    k
        Step index at which the map is certified.
    iters, spectral_tol, method
        Spectral-norm settings (:func:`~irsolve.analysis.lipschitz_estimates.spectral_norm`):
        at most ``iters`` products, stopped once every sample's estimate of ``q``
        changes by less than ``spectral_tol`` (relative); not a tolerance of the
        trajectory, which runs ``steps`` steps.
        Lanczos is the default here: ``q`` enters the floor through
        ``1 / (1 - q)``, so the few-percent underestimates that power
        iteration leaves on clustered spectra after 20 products matter.
    norm
        ``"l2"`` or ``"energy"`` (``x`` a stencil problem with a symmetric
        positive definite operator; :class:`~irsolve.analysis.norms.EnergyNorm`).
    generator
        Optional ``torch.Generator`` for the probes and start vectors.
    points_per_call
        Points (``y``, trajectory points, probes) evaluated in one batched
        call, each call holding ``points_per_call * B`` samples; ``None``
        evaluates all ``steps + n_probe + 2`` at once. Lower it to bound memory.

    Returns
    -------
    Certificate
        Per-sample tensors; ``print`` it for a table.
    """
    owner = "contraction_certificate"
    check_solver_call(owner, solver, x, y, k, name="y")
    steps = check_int(owner, "steps", steps, minimum=0)
    n_probe = check_int(owner, "n_probe", n_probe, minimum=0)
    iters = check_int(owner, "iters", iters, minimum=1)
    spectral_tol = check_real(owner, "spectral_tol", spectral_tol, minimum=0.0)
    check_choice(owner, "method", method, ("lanczos", "power"))
    check_choice(owner, "norm", norm, ("l2", "energy"))
    if points_per_call is not None:
        points_per_call = check_int(owner, "points_per_call", points_per_call, minimum=1)
    if delta is not None and not isinstance(delta, Tensor):
        delta = check_real(owner, "delta", delta, minimum=0.0, open_min=True)
    measure = make_norm(owner, norm, x)
    step = StepMap(solver, x, k=k)
    check_points_memory(owner, steps, n_probe, y, step.dtype)
    y = y.to(step.dtype)
    h0 = _start_iterate(owner, x, y, h0)

    trajectory = iterate(solver, x.to(step.dtype) if isinstance(x, Tensor) else x, h0, steps)
    errors = trajectory - y
    observed = torch.stack([measure(e) for e in errors])
    delta_t = _ball_radius(observed, delta, like=y)
    with torch.no_grad():
        g_y = step(y)
    bias = measure(g_y - y)

    random_errors = _random_ball_errors(y, delta_t, n_probe, measure, generator)
    inside = observed <= delta_t
    power = {"iters": iters, "tol": spectral_tol, "generator": generator, "method": method}
    q, lipschitz = _jacobian_norms(
        step, y, errors, inside, random_errors, power, measure, points_per_call
    )
    far = inside & (observed >= MIN_PROBE_FRACTION * delta_t)
    everywhere = torch.ones_like(far[:1]).expand(n_probe, -1)
    probes, keep = torch.cat([errors, random_errors]), torch.cat([far, everywhere])
    c = _largest_curvature(step, y, g_y, probes, keep, measure, points_per_call)
    cert = _certify(
        q, c, lipschitz, bias, delta_t, observed, norm, y_size=measure(y), dtype=y.dtype
    )
    logger.info("certificate holds for %d of %d samples", int(cert.holds.sum()), cert.batch_size)
    return cert


def _start_iterate(owner: str, x: Any, y: Tensor, h0: Tensor | None) -> Tensor:
    """``h0`` in ``y``'s dtype, checked to have ``y``'s shape; zeros (``x.zeros()``) if ``None``."""
    if h0 is None:
        h0 = x.zeros() if isinstance(x, Problem) else torch.zeros_like(y)
    if not isinstance(h0, Tensor) or h0.shape != y.shape:
        got = tuple(h0.shape) if isinstance(h0, Tensor) else type(h0).__name__
        raise ValueError(f"{owner}: expected h0 of the shape of y {tuple(y.shape)}, got {got}")
    return h0.to(y.dtype)


def _ball_radius(observed: Tensor, delta: float | Tensor | None, like: Tensor) -> Tensor:
    """``(B,)`` radius ``delta`` of the ball (in ``like``'s dtype and device); default the
    largest finite observed error."""
    if delta is None:
        finite = torch.where(torch.isfinite(observed), observed, torch.zeros_like(observed))
        return finite.amax(dim=0)
    radius = torch.as_tensor(delta, dtype=like.dtype, device=like.device)
    return radius.expand(like.shape[0]).clone()


def _random_ball_errors(
    y: Tensor,
    delta: Tensor,
    n_probe: int,
    measure: EuclideanNorm | EnergyNorm,
    generator: torch.Generator | None,
) -> Tensor:
    """``(n_probe, B, ...)`` offsets ``e`` drawn uniformly in the balls ``||e|| <= delta``."""
    return ball_points(
        y.repeat((n_probe,) + (1,) * (y.dim() - 1)),
        delta.repeat(n_probe),
        generator=generator,
        norm=measure.tile(n_probe),
    ).view((n_probe,) + tuple(y.shape))


def _certify(
    q: Tensor,
    c: Tensor,
    lipschitz: Tensor,
    bias: Tensor,
    delta: Tensor,
    observed: Tensor,
    norm: NormName,
    y_size: Tensor,
    dtype: torch.dtype,
) -> Certificate:
    """The certificate from the measured constants: radii, floor ``bias / (1 - q)``, the bound
    recursion from ``observed[0]`` and whether the observed errors stay under it (to a
    round-off slack of a few ulps of ``dtype`` of ``||y||`` plus the bound)."""
    eps = torch.finfo(dtype).eps
    r_minus, r_plus = invariant_radii(q, c, bias)
    floor = torch.where(q < 1, bias / (1.0 - q).clamp_min(eps), torch.inf)
    bound = error_bound(observed[0], q, c, bias, observed.shape[0] - 1, delta=delta)
    slack = 8 * eps * (y_size + bound.nan_to_num(posinf=0.0))
    return Certificate(
        q=q,
        c=c,
        lipschitz=lipschitz,
        bias=bias,
        r_minus=r_minus,
        r_plus=r_plus,
        floor=floor,
        holds=r_minus <= delta,
        delta=delta,
        observed=observed,
        bound=bound,
        within=(observed <= bound + slack).all(dim=0),
        norm=norm,
    )


def points_bytes(steps: int, n_probe: int, y: Tensor, dtype: torch.dtype) -> int:
    """Bytes the certificate's points take at least: the trajectory, its errors, the random
    probes and the evaluation's offsets and probes, ``steps + n_probe + 2`` copies of ``y`` each
    (working copies of one evaluation come on top)."""
    return 4 * (steps + n_probe + 2) * y.numel() * (torch.finfo(dtype).bits // 8)


def check_points_memory(
    owner: str, steps: int, n_probe: int, y: Tensor, dtype: torch.dtype, iterates: int = 0
) -> None:
    """Refuse, before the trajectory is run, ``steps`` and ``n_probe`` whose points (and
    ``iterates`` more copies of ``y``) exceed the machine's memory, naming both counts."""
    check_memory(
        owner,
        f"steps={steps} and n_probe={n_probe} (the trajectory and probe points of "
        f"{y.shape[0]} sample(s) of {y[0].numel()} values, {dtype})",
        points_bytes(steps, n_probe, y, dtype)
        + iterates * y.numel() * (torch.finfo(dtype).bits // 8),
    )


def _chunks(points: int, per_call: int | None) -> list[slice]:
    """Consecutive slices of ``range(points)`` with at most ``per_call`` points each."""
    size = points if per_call is None else max(1, per_call)
    return [slice(start, start + size) for start in range(0, points, size)]


def _jacobian_norms(
    step: StepMap,
    y: Tensor,
    errors: Tensor,
    inside: Tensor,
    random_errors: Tensor,
    power: dict[str, Any],
    measure: EuclideanNorm | EnergyNorm,
    per_call: int | None,
) -> tuple[Tensor, Tensor]:
    """``||J_G(y)||`` and the max of ``||J_G(p)||`` over ``y``, trajectory and random points.

    ``power`` holds the keyword arguments of :func:`spectral_norm`.
    """
    offsets = torch.cat([torch.zeros_like(y)[None], errors, random_errors])
    parts = []
    for part in _chunks(offsets.shape[0], per_call):
        chunk = offsets[part]
        points = y[None] + chunk
        tiled = step.tile(len(chunk), y)
        sigma = spectral_norm(tiled, points.flatten(0, 1), norm=measure.tile(len(chunk)), **power)
        parts.append(sigma.view(len(chunk), -1))
    sigma = torch.cat(parts)
    always = torch.ones_like(inside[:1])
    keep = torch.cat([always, inside, always.expand(len(random_errors), -1)])
    return sigma[0], torch.where(keep, sigma, torch.zeros_like(sigma)).amax(dim=0)


def _largest_curvature(
    step: StepMap,
    y: Tensor,
    g_y: Tensor,
    probes: Tensor,
    keep: Tensor,
    measure: EuclideanNorm | EnergyNorm,
    per_call: int | None,
) -> Tensor:
    """Max of ``(||G(y+e) - G(y) - J e|| - roundoff) / ||e||^2`` over the probes ``e``.

    ``probes`` is ``(P, B, ...)``; ``keep`` ``(P, B)`` marks the probes used.
    """
    eps, tiny = torch.finfo(y.dtype).eps, torch.finfo(y.dtype).tiny
    ratios = []
    for part in _chunks(probes.shape[0], per_call):
        chunk = probes[part]
        copies = len(chunk)
        tiled = step.tile(copies, y)
        centre = y.repeat((copies,) + (1,) * (y.dim() - 1))
        flat = chunk.flatten(0, 1)
        j_e = Linearisation(tiled, centre).forward(flat).detach()
        with torch.no_grad():
            g_shift = tiled(centre + flat)
        g_centre = g_y.repeat((copies,) + (1,) * (y.dim() - 1))
        norm = measure.tile(copies)
        remainder = norm(g_shift - g_centre - j_e)
        roundoff = 16 * eps * (norm(g_shift) + norm(g_centre) + norm(j_e))
        size = norm(flat)
        ratio = (remainder - roundoff).clamp_min(0.0) / size.clamp_min(tiny) ** 2
        ratios.append(torch.where(size > 0, ratio, torch.zeros_like(ratio)).view(copies, -1))
    ratio = torch.cat(ratios)
    return torch.where(keep, ratio, torch.zeros_like(ratio)).amax(dim=0)


def error_bound(
    start: Tensor,
    q: Tensor,
    c: Tensor,
    bias: Tensor,
    steps: int,
    *,
    delta: Tensor | None = None,
) -> Tensor:
    """``(steps + 1, B)`` recursion ``t_0 = start``, ``t_{k+1} = q t_k + c t_k^2 + bias``.

    With ``delta`` the terms after one above ``delta`` are ``inf`` (Theorem 3.1 bounds the
    next error only while ``||e_k|| <= delta``); without, the recursion runs every step.
    """
    bounds = [start]
    for _ in range(steps):
        t = bounds[-1]
        following = q * t + c * t**2 + bias
        bounds.append(following if delta is None else torch.where(t <= delta, following, torch.inf))
    return torch.stack(bounds)
