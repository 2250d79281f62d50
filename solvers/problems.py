"""Discrete elliptic model problems on the unit square, batched in torch.

Both problems are finite-difference / finite-volume discretisations
``A u = f`` on a uniform ``n x n`` grid, held as a batched stencil (see
:mod:`irsolve.solvers._stencil`) so that the classical solvers can smooth and
coarsen them without forming matrices. Tensors are ``(B, 1, n, n)``; index
``i`` (dim -2) runs along ``x`` and ``j`` (dim -1) along ``y``.

References
----------
W. L. Briggs, V. E. Henson, S. F. McCormick, *A Multigrid Tutorial*, 2nd ed.,
SIAM 2000, Ch. 1 (model problems) and Ch. 7 (variable coefficients).
"""

from __future__ import annotations

import copy
from typing import Any

import scipy.sparse as sp
import torch
from torch import Tensor

from irsolve._validate import (
    check_bool,
    check_choice,
    check_float_dtype,
    check_memory,
    check_real,
)
from irsolve.interface import Problem
from irsolve.solvers._stencil import apply_stencil, centre_index, offsets, stencil_to_scipy

__all__ = ["Darcy2D", "Poisson2D", "StencilProblem", "check_omega", "require_stencil_problem"]


def _check_field(
    owner: str,
    name: str,
    value: Any,
    shape: tuple[int, ...] | None = None,
    *,
    dtype: torch.dtype | None = None,
    arrays: int = 0,
) -> None:
    """Raise unless ``value`` is a finite real tensor of shape ``(B, 1, n, n)`` (or ``shape``).

    With ``arrays > 0``, also refuse (before the finiteness check reads it) a
    grid on which ``arrays`` fields of ``dtype`` exceed the machine's memory:
    the measured peak of building the problem (the stencil, the fields and
    their temporaries; Poisson2D 12, Darcy2D 18 at 3000^2).
    """
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{owner}: expected {name} to be a torch.Tensor, got {type(value).__name__}"
        )
    if value.dtype == torch.bool or value.is_complex():
        raise TypeError(f"{owner}: expected {name} with a real dtype, got {value.dtype}")
    expected = "(B, 1, n, n)" if shape is None else str(shape)
    square = value.dim() == 4 and value.shape[1] == 1 and value.shape[2] == value.shape[3]
    if not square or value.shape[-1] < 1 or (shape is not None and tuple(value.shape) != shape):
        raise ValueError(f"{owner}: expected {name} of shape {expected}, got {tuple(value.shape)}")
    if arrays:
        batch, n = value.shape[0], value.shape[-1]
        check_memory(
            owner,
            f"building the stencil and fields of a batch of {batch} on a {n} x {n} grid ({dtype}, "
            f"a measured peak of {arrays} fields)",
            arrays * batch * n * n * (torch.finfo(dtype).bits // 8),
        )
    if not torch.isfinite(value).all():
        raise ValueError(f"{owner}: expected finite values in {name}, got NaN or infinity")


class StencilProblem(Problem):
    """A batched problem ``A u = f`` whose operator is a 5- or 9-point stencil.

    Parameters
    ----------
    stencil
        ``(B, K, n, n)`` coefficients, ``K`` in {5, 9} (layout in
        :mod:`irsolve.solvers._stencil`).
    f
        Right-hand side ``(B, 1, n, n)``.
    periodic
        Whether the grid wraps around (else zero Dirichlet boundary values; the
        coefficients that point out of the grid must then be zero).

    ``apply``, ``residual``, ``diagonal`` and ``to_scipy`` work for any such
    stencil; :class:`Poisson2D` and :class:`Darcy2D` build theirs.

    Raises
    ------
    TypeError
        ``stencil`` or ``f`` not a tensor, ``periodic`` not a bool.
    ValueError
        Shapes that do not match (batch, grid size, ``K``), a non-square
        grid, a dtype other than float32 / float64 or differing dtypes or
        devices, non-finite values, or (Dirichlet) a non-zero coefficient
        pointing out of the grid.
    """

    def __init__(self, stencil: Tensor, f: Tensor, periodic: bool) -> None:
        owner = type(self).__name__
        for name, value in (("stencil", stencil), ("f", f)):
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"{owner}: expected {name} to be a torch.Tensor, got {type(value).__name__}"
                )
        self.periodic = check_bool(owner, "periodic", periodic)
        if (
            stencil.dim() != 4
            or stencil.shape[1] not in (5, 9)
            or stencil.shape[2] != stencil.shape[3]
        ):
            raise ValueError(
                f"{owner}: expected stencil of shape (B, 5, n, n) or (B, 9, n, n) on a square "
                f"grid, got {tuple(stencil.shape)}"
            )
        batch, _, n, _ = stencil.shape
        if tuple(f.shape) != (batch, 1, n, n):
            raise ValueError(
                f"{owner}: expected f of shape {(batch, 1, n, n)} (the stencil's batch and grid), "
                f"got {tuple(f.shape)}"
            )
        check_float_dtype(owner, "stencil.dtype", stencil.dtype)
        if f.dtype != stencil.dtype or f.device != stencil.device:
            raise ValueError(
                f"{owner}: expected f with the stencil's dtype and device ({stencil.dtype}, "
                f"{stencil.device}), got {f.dtype}, {f.device}"
            )
        for name, value in (("stencil", stencil), ("f", f)):
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"{owner}: expected finite values in {name}, got NaN or infinity")
        if not self.periodic:
            _check_dirichlet_stencil(owner, stencil)
        self.stencil = stencil
        self.f = f

    @property
    def batch_size(self) -> int:
        return self.f.shape[0]

    @property
    def n(self) -> int:
        """Grid points per side."""
        return self.f.shape[-1]

    def zeros(self) -> Tensor:
        return torch.zeros_like(self.f)

    def apply(self, u: Tensor) -> Tensor:
        """``A u`` for ``u`` of shape ``(B, C, n, n)``."""
        return apply_stencil(self.stencil, u, self.periodic)

    def residual(self, u: Tensor) -> Tensor:
        """``f - A u``."""
        return self.f - self.apply(u)

    def diagonal(self) -> Tensor:
        """Diagonal of ``A``, shape ``(B, 1, n, n)``."""
        c = centre_index(self.stencil)
        return self.stencil[:, c : c + 1]

    def to_scipy(self) -> list[sp.csr_matrix]:
        """``A`` as one CSR matrix per sample (list index = batch index), rows ``i * n + j``.

        For references: this copies to the host.
        """
        return stencil_to_scipy(self.stencil, self.periodic)

    def coordinates(self) -> tuple[Tensor, Tensor]:
        """Node coordinates ``(x, y)``, each ``(n, n)``, ``x`` along dim -2."""
        return grid_coordinates(self.n, self.periodic, self.f.dtype, self.f.device)

    def features(self) -> Tensor:
        """Input of a learned step (:class:`~irsolve.solvers.Refiner`): ``f``, ``(B, 1, n, n)``."""
        return self.f

    def with_rhs(self, f: Tensor) -> StencilProblem:
        """The same operator with right-hand side ``f`` (``(B, 1, n, n)``, cast to the stencil's
        dtype and device; used as is, also on periodic grids)."""
        if not isinstance(f, Tensor) or tuple(f.shape) != tuple(self.f.shape):
            got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
            raise ValueError(f"expected f of shape {tuple(self.f.shape)}, got {got}")
        new = copy.copy(self)
        new.f = f.to(dtype=self.f.dtype, device=self.f.device)
        return new

    def restrict(self, index: Tensor) -> StencilProblem:
        new = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, Tensor):
                setattr(new, name, value.index_select(0, index))
        return new

    def __repr__(self) -> str:
        bc = "periodic" if self.periodic else "dirichlet"
        return f"{type(self).__name__}(batch={self.batch_size}, n={self.n}, bc={bc!r})"


class Poisson2D(StencilProblem):
    """``-Δu = f`` on the unit square with the 5-point Laplacian.

    ``(A u)_ij = (4 u_ij - u_{i-1,j} - u_{i+1,j} - u_{i,j-1} - u_{i,j+1}) / h^2``.

    * ``bc="dirichlet"``: zero boundary values, unknowns at the interior nodes
      ``x_i = (i + 1) h``, ``h = 1 / (n + 1)``; ``A`` equals
      ``pyamg.gallery.poisson((n, n)) / h**2``.
    * ``bc="periodic"``: ``x_i = i h``, ``h = 1 / n``. ``A`` is singular (constants
      are its null space); the right-hand side is projected to mean zero per
      sample so the problem is solvable, and the mean-zero solution is the one
      meant.

    Parameters
    ----------
    f
        Right-hand side at the nodes, ``(B, 1, n, n)``, finite.
    bc
        ``"dirichlet"`` or ``"periodic"``.
    dtype
        Floating dtype of the problem (``f`` is converted).
    """

    def __init__(
        self, f: Tensor, bc: str = "dirichlet", dtype: torch.dtype = torch.float64
    ) -> None:
        check_choice("Poisson2D", "bc", bc, ("dirichlet", "periodic"))
        check_float_dtype("Poisson2D", "dtype", dtype)
        _check_field("Poisson2D", "f", f, dtype=dtype, arrays=12)
        f = f.to(dtype)
        n = f.shape[-1]
        periodic = bc == "periodic"
        self.h = 1.0 / n if periodic else 1.0 / (n + 1)
        if periodic:
            f = f - f.mean(dim=(-2, -1), keepdim=True)
        inv_h2 = 1.0 / self.h**2
        stencil = torch.full((f.shape[0], 5, n, n), -inv_h2, dtype=dtype, device=f.device)
        stencil[:, 2] = 4.0 * inv_h2
        if not periodic:
            stencil[:, 0, 0, :] = 0.0
            stencil[:, 4, -1, :] = 0.0
            stencil[:, 1, :, 0] = 0.0
            stencil[:, 3, :, -1] = 0.0
        super().__init__(stencil, f, periodic)


class Darcy2D(StencilProblem):
    """``-div(a grad u) = f`` on the unit square, zero Dirichlet boundary values.

    Five-point finite-volume scheme on the control volumes of side ``h``
    around the nodes of the :class:`Poisson2D` grid (``h = 1 / (n + 1)``,
    ``x_i = (i + 1) h``):

    ``(A u)_P = sum_{Q in N(P)} a_PQ (u_P - u_Q) / h^2``,

    over the four neighbours ``Q`` of node ``P``, where the face coefficient is
    the harmonic mean ``a_PQ = 2 a_P a_Q / (a_P + a_Q)`` and a face to the
    boundary uses ``a_PQ = a_P`` with ``u_Q = 0``. ``A`` is symmetric positive
    definite for ``a > 0``. The mean is computed as ``2 / (1/a_P + 1/a_Q)``,
    which neither underflows for tiny coefficients (``2 a_P a_Q`` is 0 in
    float64 for ``a = 1e-200``) nor overflows for huge ones; the
    coefficient must lie in ``[tiny, max / (8 (n + 1)^2)]`` of the dtype
    (``torch.finfo``), where the stencil ``a / h^2`` stays finite and normal.

    Parameters
    ----------
    a
        Coefficient at the nodes, ``(B, 1, n, n)``, finite and strictly positive.
    f
        Right-hand side: a number (constant forcing) or a ``(B, 1, n, n)`` tensor.
    dtype
        Floating dtype of the problem.
    """

    def __init__(
        self, a: Tensor, f: float | Tensor = 1.0, dtype: torch.dtype = torch.float64
    ) -> None:
        check_float_dtype("Darcy2D", "dtype", dtype)
        _check_field("Darcy2D", "a", a, dtype=dtype, arrays=18)
        if not bool((a > 0).all()):
            raise ValueError(
                f"Darcy2D: expected a strictly positive coefficient a, got min {float(a.min()):.3g}"
            )
        a = a.to(dtype)
        _check_coefficient_range(a)
        if isinstance(f, Tensor):
            _check_field("Darcy2D", "f", f, tuple(a.shape))
            f = f.to(dtype=dtype, device=a.device)
        else:
            f = torch.full_like(a, check_real("Darcy2D", "f", f))
        n = a.shape[-1]
        self.a = a
        self.h = 1.0 / (n + 1)
        stencil = a.new_zeros(a.shape[0], 5, n, n)
        inv_h2 = 1.0 / self.h**2
        inverse = 1.0 / a
        harmonic_x = 2.0 / (inverse[..., 1:, :] + inverse[..., :-1, :])
        harmonic_y = 2.0 / (inverse[..., :, 1:] + inverse[..., :, :-1])
        stencil[:, 0:1, 1:, :] = -inv_h2 * harmonic_x
        stencil[:, 4:5, :-1, :] = -inv_h2 * harmonic_x
        stencil[:, 1:2, :, 1:] = -inv_h2 * harmonic_y
        stencil[:, 3:4, :, :-1] = -inv_h2 * harmonic_y
        # The centre is the sum of the face coefficients, boundary faces (a_P) included.
        faces = -stencil[:, [0, 1, 3, 4]].sum(dim=1, keepdim=True)
        boundary = torch.zeros_like(a)
        boundary[..., 0, :] += a[..., 0, :]
        boundary[..., -1, :] += a[..., -1, :]
        boundary[..., :, 0] += a[..., :, 0]
        boundary[..., :, -1] += a[..., :, -1]
        stencil[:, 2:3] = faces + inv_h2 * boundary
        super().__init__(stencil, f, periodic=False)

    def features(self) -> Tensor:
        """Input of a learned step: coefficient and forcing ``cat([a, f])``, ``(B, 2, n, n)``."""
        return torch.cat([self.a, self.f], dim=1)


def _check_coefficient_range(a: Tensor) -> None:
    """Raise unless ``a`` (already in the problem's dtype) lies where the stencil is finite."""
    info = torch.finfo(a.dtype)
    n = a.shape[-1]
    low, high = info.tiny, info.max / (8.0 * (n + 1) ** 2)
    if a.numel() == 0:  # an empty batch: nothing to check
        return
    smallest, largest = float(a.min()), float(a.max())
    if smallest < low or largest > high:
        raise ValueError(
            f"Darcy2D: expected the coefficient a in [{low:.3g}, {high:.3g}] for {a.dtype} on a "
            f"{n} x {n} grid (beyond it the stencil a / h^2 under- or overflows), got min "
            f"{smallest:.3g}, max {largest:.3g}"
        )


def grid_coordinates(
    n: int, periodic: bool, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Nodes of the ``n x n`` grid: ``(i + 1) / (n + 1)`` (Dirichlet) or ``i / n`` (periodic)."""
    t = torch.arange(n, dtype=dtype, device=device)
    t = t / n if periodic else (t + 1) / (n + 1)
    return torch.meshgrid(t, t, indexing="ij")


def require_stencil_problem(x: object, solver: str) -> StencilProblem:
    """``x`` if it is a :class:`StencilProblem`, else a ``TypeError`` naming ``solver``."""
    if not isinstance(x, StencilProblem):
        raise TypeError(
            f"{solver} expected a stencil problem (Poisson2D, Darcy2D), got {type(x).__name__}"
        )
    return x


def check_omega(omega: float, owner: str = "check_omega") -> float:
    """``omega`` as a float if ``0 < omega < 2`` (where relaxation can converge), else an error
    naming ``owner`` (the solver's name)."""
    value = check_real(owner, "omega", omega)
    if not 0.0 < value < 2.0:
        raise ValueError(f"{owner}: expected a relaxation weight omega in (0, 2), got {omega!r}")
    return value


def _check_dirichlet_stencil(owner: str, stencil: Tensor) -> None:
    """Raise unless every coefficient that points out of a Dirichlet grid is zero."""
    for k, (di, dj) in enumerate(offsets(stencil)):
        rows = [0] if di < 0 else [-1] if di > 0 else []
        cols = [0] if dj < 0 else [-1] if dj > 0 else []
        edges = [stencil[:, k, r, :] for r in rows] + [stencil[:, k, :, c] for c in cols]
        if any(bool((edge != 0).any()) for edge in edges):
            raise ValueError(
                f"{owner}: expected zero stencil coefficients pointing out of the Dirichlet grid, "
                f"got non-zero ones for offset {(di, dj)} (channel {k}); pass periodic=True "
                "for a wrapping grid"
            )
