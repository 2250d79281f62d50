"""Training losses of the learned refiner (IRNO): MSE, progressive spectral loss,
fixed-point regulariser, relative L2 and a Jacobian-norm penalty.

Every function is pure: tensors (or a network and tensors) in, a scalar out.
Fields are ``(B, C, H, W)``, channels first; the spectral loss acts on the
last two (spatial) dimensions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from irsolve.reductions import broadcast, dot

if TYPE_CHECKING:
    from irsolve.interface import Problem
    from irsolve.solvers.refiner import Refiner

__all__ = [
    "fixed_point_loss",
    "jacobian_penalty",
    "mse",
    "progressive_lambda",
    "progressive_spectral_loss",
    "relative_l2_loss",
    "spectral_loss",
    "spectral_weights",
]


def _check_pair(pred: Tensor, target: Tensor, min_dim: int = 1) -> None:
    if pred.shape != target.shape or pred.dim() < min_dim:
        raise ValueError(
            f"expected pred and target of the same shape with at least {min_dim} dims, "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error ``mean((pred - target)^2)`` over every element."""
    _check_pair(pred, target)
    return (pred - target).square().mean()


def relative_l2_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over samples of ``||p_b - y_b||_2 / ||y_b||_2`` (the usual FNO training loss)."""
    _check_pair(pred, target, min_dim=2)
    diff = (pred - target).flatten(1).norm(dim=1)
    return (diff / target.flatten(1).norm(dim=1).clamp_min(torch.finfo(target.dtype).tiny)).mean()


def spectral_weights(
    height: int,
    width: int,
    lam: float,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Spectral-loss weights ``rho`` on the ``rfft2`` grid ``(height, width // 2 + 1)``.

    ``|w| = sqrt(fx^2 + fy^2)`` with ``fx = fftfreq(height)``, ``fy = rfftfreq(width)``
    (sample spacing 1, Nyquist 0.5); ``rho = 1 + (|w| / 0.5)^lam``, then scaled
    so that its mean over the grid is 1.
    """
    fx = torch.fft.fftfreq(height, device=device, dtype=dtype)
    fy = torch.fft.rfftfreq(width, device=device, dtype=dtype)
    radius = torch.sqrt(fx[:, None] ** 2 + fy[None, :] ** 2)
    rho = 1.0 + (radius / 0.5) ** lam
    return rho / rho.mean()


def spectral_loss(pred: Tensor, target: Tensor, lam: float) -> Tensor:
    """Frequency-weighted amplitude loss of the IRNO paper.

    ``P = rfft2(pred, norm="ortho")``, ``Y = rfft2(target, norm="ortho")``
    over the last two dimensions; ``L_spec = mean(rho * (|P| - |Y|)^2)`` with
    ``rho`` from :func:`spectral_weights` (``1 + (|w|/0.5)^lam``, mean 1), the
    mean taken over batch, channels and the ``rfft2`` half-spectrum. Only
    amplitudes are compared; phase errors are left to the MSE term.
    """
    _check_pair(pred, target, min_dim=2)
    height, width = pred.shape[-2:]
    amp_p = torch.fft.rfft2(pred, norm="ortho").abs()
    amp_y = torch.fft.rfft2(target, norm="ortho").abs()
    rho = spectral_weights(height, width, lam, device=pred.device, dtype=amp_p.dtype)
    return (rho * (amp_p - amp_y).square()).mean()


def progressive_lambda(k: int, K: int, lam_start: float = 1.0, lam_end: float = 2.0) -> float:
    """``lambda_k = lam_start + (lam_end - lam_start) * k / (K - 1)`` (IRNO schedule).

    Held at ``lam_end`` for ``k >= K - 1`` (unrolls past ``K``).
    For ``K = 1`` the single step uses ``lam_start``.
    """
    if K < 1 or k < 0:
        raise ValueError(f"expected K >= 1 and k >= 0, got K={K}, k={k}")
    if K == 1:
        return lam_start
    return lam_start + (lam_end - lam_start) * min(k, K - 1) / (K - 1)


def progressive_spectral_loss(
    pred: Tensor, target: Tensor, k: int, K: int, lam_start: float = 1.0, lam_end: float = 2.0
) -> Tensor:
    """Spectral loss at refinement step ``k`` of ``K``: ``spectral_loss(pred, target, lambda_k)``.

    ``lambda_k`` from :func:`progressive_lambda` rises from ``lam_start`` to
    ``lam_end`` so later steps weigh high frequencies more (IRNO paper,
    progressive spectral loss).
    """
    return spectral_loss(pred, target, progressive_lambda(k, K, lam_start, lam_end))


def fixed_point_loss(refiner: Refiner, x: Tensor | Problem, y: Tensor) -> Tensor:
    """Fixed-point regulariser ``mean(Phi([x ; y])^2)`` of a learned step.

    At the true solution ``y`` the correction should vanish, so ``y`` is a
    fixed point of ``h -> h + alpha * Phi([x; h])``; ``b = Phi(x, y)`` is the
    bias whose norm sets the error floor ``alpha ||b|| / (1 - q)`` (Theorem
    3.1 of the IRNO paper; :mod:`irsolve.analysis.certificate`). The net's
    input is built by the refiner (:meth:`Refiner.prepare` and
    :meth:`Refiner.correction`), with its shape and channel checks, exactly
    as in a solve.

    Parameters
    ----------
    refiner
        The learned step whose net ``Phi`` is evaluated.
    x
        Its input ``(B, C_x, *space)``, or a problem (the refiner's features of it).
    y
        Targets ``(B, C, *space)``.
    """
    return refiner.correction(refiner.prepare(x), y).square().mean()


def _jvp_by_double_vjp(out: Tensor, inp: Tensor, v: Tensor, create_graph: bool) -> Tensor:
    """``J v`` for ``J = d out / d inp`` using two reverse passes (the transpose trick)."""
    u = torch.zeros_like(out, requires_grad=True)
    (jt_u,) = torch.autograd.grad(out, inp, u, create_graph=True)
    (jv,) = torch.autograd.grad(jt_u, u, v, create_graph=create_graph)
    return jv


def jacobian_penalty(
    fn: Callable[[Tensor], Tensor],
    h: Tensor,
    *,
    method: Literal["hutchinson", "power"] = "hutchinson",
    n_iter: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Jacobian-norm penalty of a map ``G = fn`` at ``h``, differentiable in ``fn``'s parameters.

    ``"hutchinson"``: ``mean_b ||J_b^T v_b||^2 / ||v_b||^2`` with Gaussian
    ``v``, averaged over ``n_iter`` probes, an unbiased estimate of
    ``||J_b||_F^2 / d`` (mean squared singular value); Bai, Koltun and Kolter,
    "Stabilizing Equilibrium Models by Jacobian Regularization", ICML 2021.

    ``"power"``: ``n_iter`` power iterations ``v <- J^T J v`` (without graph)
    per sample, then ``mean_b ||J_b v_b||^2`` with ``||v_b|| = 1``, an
    estimate of ``mean_b sigma_max(J_b)^2``; below 1 means ``G`` is locally a
    contraction, which is what the fixed-point theory needs.

    ``J_b`` is the block of the Jacobian of ``G`` for sample ``b`` (exact when
    the network does not mix samples, i.e. not BatchNorm in training mode).
    """
    if n_iter < 1:
        raise ValueError(f"expected n_iter >= 1, got {n_iter}")
    h = h.detach().requires_grad_(True)
    out = fn(h)
    if out.shape != h.shape:
        raise ValueError(f"expected fn to map {tuple(h.shape)} to itself, got {tuple(out.shape)}")

    def probe() -> Tensor:
        return torch.randn(h.shape, generator=generator, device=h.device, dtype=h.dtype)

    if method == "hutchinson":
        total = h.new_zeros(())
        for _ in range(n_iter):
            v = probe()
            (jt_v,) = torch.autograd.grad(out, h, v, create_graph=True, retain_graph=True)
            total = total + (dot(jt_v, jt_v) / dot(v, v)).mean()
        return total / n_iter
    if method == "power":
        v = probe()
        for _ in range(n_iter):
            v = v / broadcast(dot(v, v).sqrt(), v)
            jv = _jvp_by_double_vjp(out, h, v, create_graph=False)
            (v,) = torch.autograd.grad(out, h, jv, retain_graph=True)
            v = v.detach()
        v = v / broadcast(dot(v, v).sqrt().clamp_min(1e-30), v)
        jv = _jvp_by_double_vjp(out, h, v, create_graph=True)
        return dot(jv, jv).mean()
    raise ValueError(f"expected method 'hutchinson' or 'power', got {method!r}")
