"""Discrete elliptic model problems on the unit square and cube, batched in torch.

The problems are finite-difference / finite-volume discretisations
``A u = f`` on a uniform ``n x n`` (``n x n x n``) grid, held as a batched stencil
(see :mod:`irsolve.solvers._stencil`) so that the classical solvers can smooth
and coarsen them without forming matrices, built by one code for both
dimensions. Tensors are ``(B, 1, n, n)`` (``(B, 1, n, n, n)``); index ``i``
(the first grid dim) runs along ``x``, ``j`` along ``y`` (and ``l`` along ``z``).

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
from irsolve.solvers._stencil import (
    apply_stencil,
    centre_index,
    offsets,
    stencil_dim,
    stencil_to_scipy,
)

__all__ = [
    "ComplexStencilProblem",
    "Darcy2D",
    "Darcy3D",
    "Poisson2D",
    "Poisson3D",
    "StencilProblem",
    "check_dirichlet_stencil",
    "check_omega",
    "require_stencil_problem",
    "zero_outward",
]


def _check_field(
    owner: str,
    name: str,
    value: Any,
    shape: tuple[int, ...] | None = None,
    *,
    dtype: torch.dtype | None = None,
    arrays: int = 0,
    dim: int = 2,
) -> None:
    """Raise unless ``value`` is a finite real tensor of shape ``(B, 1, n, ..., n)`` over ``dim``
    grid dimensions (or ``shape``).

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
    expected = f"(B, 1, {', '.join('n' * dim)})" if shape is None else str(shape)
    grid = value.shape[2:]
    square = value.dim() == 2 + dim and value.shape[1] == 1 and len(set(grid)) == 1
    if not square or value.shape[-1] < 1 or (shape is not None and tuple(value.shape) != shape):
        raise ValueError(f"{owner}: expected {name} of shape {expected}, got {tuple(value.shape)}")
    if arrays:
        batch, n = value.shape[0], value.shape[-1]
        check_memory(
            owner,
            f"building the stencil and fields of a batch of {batch} on a "
            f"{' x '.join([str(n)] * dim)} grid ({dtype}, a measured peak of {arrays} fields)",
            arrays * batch * n**dim * (torch.finfo(dtype).bits // 8),
        )
    if not torch.isfinite(value).all():
        raise ValueError(f"{owner}: expected finite values in {name}, got NaN or infinity")


class StencilProblem(Problem):
    """A batched problem ``A u = f`` whose operator is a stencil on a 2-D or 3-D grid.

    Parameters
    ----------
    stencil
        ``(B, K, n, n)`` coefficients, ``K`` in {5, 9}, or ``(B, K, n, n, n)``, ``K``
        in {7, 27} (layout in :mod:`irsolve.solvers._stencil`).
    f
        Right-hand side ``(B, 1, n, n)`` (``(B, 1, n, n, n)``).
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
        try:
            dim = stencil_dim(stencil)
        except ValueError:
            dim = 0
        if not dim or len(set(stencil.shape[2:])) != 1:
            raise ValueError(
                f"{owner}: expected stencil of shape (B, 5 or 9, n, n) or (B, 7 or 27, n, n, n) "
                f"on a square grid, got {tuple(stencil.shape)}"
            )
        batch, n = stencil.shape[0], stencil.shape[-1]
        if tuple(f.shape) != (batch, 1, *[n] * dim):
            raise ValueError(
                f"{owner}: expected f of shape {(batch, 1, *[n] * dim)} (the stencil's batch and "
                f"grid), got {tuple(f.shape)}"
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
            check_dirichlet_stencil(owner, stencil)
        self.stencil = stencil
        self.f = f

    @property
    def batch_size(self) -> int:
        return self.f.shape[0]

    @property
    def n(self) -> int:
        """Grid points per side."""
        return self.f.shape[-1]

    @property
    def dim(self) -> int:
        """Grid dimensions: 2 or 3."""
        return self.f.dim() - 2

    def zeros(self) -> Tensor:
        return torch.zeros_like(self.f)

    def apply(self, u: Tensor) -> Tensor:
        """``A u`` for ``u`` of shape ``(B, C, n, n)`` (``(B, C, n, n, n)``)."""
        return apply_stencil(self.stencil, u, self.periodic)

    def residual(self, u: Tensor) -> Tensor:
        """``f - A u``."""
        return self.f - self.apply(u)

    def diagonal(self) -> Tensor:
        """Diagonal of ``A``, shaped as ``f``."""
        c = centre_index(self.stencil)
        return self.stencil[:, c : c + 1]

    def to_scipy(self) -> list[sp.csr_matrix]:
        """``A`` as one CSR matrix per sample (list index = batch index), rows in C order.

        For references: this copies to the host.
        """
        return stencil_to_scipy(self.stencil, self.periodic)

    def coordinates(self) -> tuple[Tensor, ...]:
        """Node coordinates ``(x, y)`` (``(x, y, z)``), each shaped as the grid, ``x`` along
        the first grid dim."""
        return grid_coordinates(self.n, self.periodic, self.f.dtype, self.f.device, self.dim)

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


class _Poisson(StencilProblem):
    """``-Δu = f`` with the ``(2 d + 1)``-point Laplacian on a grid of :attr:`dims` dimensions."""

    dims = 2

    def __init__(
        self, f: Tensor, bc: str = "dirichlet", dtype: torch.dtype = torch.float64
    ) -> None:
        owner, dim = type(self).__name__, self.dims
        check_choice(owner, "bc", bc, ("dirichlet", "periodic"))
        check_float_dtype(owner, "dtype", dtype)
        _check_field(owner, "f", f, dtype=dtype, arrays=6 * dim, dim=dim)
        f = f.to(dtype)
        n = f.shape[-1]
        periodic = bc == "periodic"
        self.h = 1.0 / n if periodic else 1.0 / (n + 1)
        if periodic:
            f = f - f.mean(dim=tuple(range(-dim, 0)), keepdim=True)
        inv_h2 = 1.0 / self.h**2
        stencil = torch.full(
            (f.shape[0], 2 * dim + 1, *[n] * dim), -inv_h2, dtype=dtype, device=f.device
        )
        stencil[:, dim] = 2 * dim * inv_h2
        if not periodic:
            zero_outward(stencil)
        super().__init__(stencil, f, periodic)


class Poisson2D(_Poisson):
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

    dims = 2


class Poisson3D(_Poisson):
    """``-Δu = f`` on the unit cube with the 7-point Laplacian, ``f`` of shape
    ``(B, 1, n, n, n)``: ``(A u)_P = (6 u_P - sum of the 6 neighbours) / h^2``, equal to
    ``pyamg.gallery.poisson((n, n, n)) / h**2`` (Dirichlet). Otherwise as
    :class:`Poisson2D` (``bc``, ``dtype``, the periodic mean-zero projection)."""

    dims = 3


def zero_outward(stencil: Tensor) -> None:
    """Zero, in place, every coefficient that points out of a Dirichlet grid."""
    for k, offset in enumerate(offsets(stencil)):
        for axis, o in enumerate(offset):
            if o:
                stencil[:, k].narrow(axis + 1, 0 if o < 0 else stencil.shape[-1] - 1, 1).zero_()


class _Darcy(StencilProblem):
    """``-div(a grad u) = f``, zero Dirichlet values, on a grid of :attr:`dims` dimensions:
    the finite-volume scheme of :class:`Darcy2D` with ``2 d`` faces per node."""

    dims = 2

    def __init__(
        self, a: Tensor, f: float | Tensor = 1.0, dtype: torch.dtype = torch.float64
    ) -> None:
        owner, dim = type(self).__name__, self.dims
        check_float_dtype(owner, "dtype", dtype)
        _check_field(owner, "a", a, dtype=dtype, arrays=9 * dim, dim=dim)
        if not bool((a > 0).all()):
            raise ValueError(
                f"{owner}: expected a strictly positive coefficient a, got min {float(a.min()):.3g}"
            )
        a = a.to(dtype)
        _check_coefficient_range(owner, a, dim)
        if isinstance(f, Tensor):
            _check_field(owner, "f", f, tuple(a.shape), dim=dim)
            f = f.to(dtype=dtype, device=a.device)
        else:
            f = torch.full_like(a, check_real(owner, "f", f))
        n = a.shape[-1]
        self.a = a
        self.h = 1.0 / (n + 1)
        stencil = a.new_zeros(a.shape[0], 2 * dim + 1, *[n] * dim)
        inv_h2 = 1.0 / self.h**2
        inverse = 1.0 / a
        boundary = torch.zeros_like(a)
        for axis in range(2, 2 + dim):  # the grid dims of a (B, 1, n, ...)
            # Channels of the neighbours before and after along this axis: in the star's
            # lexicographic order the first grid axis is channels 0 and 2 d, the next 1 and 2 d - 1.
            before, after = axis - 2, 2 * dim - (axis - 2)
            harmonic = 2.0 / (inverse.narrow(axis, 1, n - 1) + inverse.narrow(axis, 0, n - 1))
            stencil[:, before : before + 1].narrow(axis, 1, n - 1).copy_(-inv_h2 * harmonic)
            stencil[:, after : after + 1].narrow(axis, 0, n - 1).copy_(-inv_h2 * harmonic)
            boundary.narrow(axis, 0, 1).add_(a.narrow(axis, 0, 1))
            boundary.narrow(axis, n - 1, 1).add_(a.narrow(axis, n - 1, 1))
        # The centre is the sum of the face coefficients, boundary faces (a_P) included.
        faces = -stencil[:, [k for k in range(2 * dim + 1) if k != dim]].sum(dim=1, keepdim=True)
        stencil[:, dim : dim + 1] = faces + inv_h2 * boundary
        super().__init__(stencil, f, periodic=False)

    def features(self) -> Tensor:
        """Input of a learned step: coefficient and forcing ``cat([a, f])``, ``(B, 2, ...)``."""
        return torch.cat([self.a, self.f], dim=1)


class Darcy2D(_Darcy):
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

    dims = 2


class Darcy3D(_Darcy):
    """``-div(a grad u) = f`` on the unit cube, zero Dirichlet values: the scheme of
    :class:`Darcy2D` with the six faces of each control volume (harmonic face means),
    ``a`` and ``f`` of shape ``(B, 1, n, n, n)``; the coefficient must lie in
    ``[tiny, max / (12 (n + 1)^2)]`` of the dtype."""

    dims = 3


def _check_coefficient_range(owner: str, a: Tensor, dim: int) -> None:
    """Raise unless ``a`` (already in the problem's dtype) lies where the stencil is finite:
    ``[tiny, max / (4 d (n + 1)^2)]`` (the centre sums ``2 d`` faces of ``a / h^2``)."""
    info = torch.finfo(a.dtype)
    n = a.shape[-1]
    low, high = info.tiny, info.max / (4.0 * dim * (n + 1) ** 2)
    if a.numel() == 0:  # an empty batch: nothing to check
        return
    smallest, largest = float(a.min()), float(a.max())
    if smallest < low or largest > high:
        raise ValueError(
            f"{owner}: expected the coefficient a in [{low:.3g}, {high:.3g}] for {a.dtype} on a "
            f"{' x '.join([str(n)] * dim)} grid (beyond it the stencil a / h^2 under- or "
            "overflows), got min "
            f"{smallest:.3g}, max {largest:.3g}"
        )


def grid_coordinates(
    n: int, periodic: bool, dtype: torch.dtype, device: torch.device, dim: int = 2
) -> tuple[Tensor, ...]:
    """Nodes of the ``n^dim`` grid, one tensor per axis: ``(i + 1) / (n + 1)`` (Dirichlet)
    or ``i / n`` (periodic)."""
    t = torch.arange(n, dtype=dtype, device=device)
    t = t / n if periodic else (t + 1) / (n + 1)
    return torch.meshgrid(*[t] * dim, indexing="ij")


def require_stencil_problem(x: object, solver: str, dims: tuple[int, ...] = (2,)) -> StencilProblem:
    """``x`` if it is a :class:`StencilProblem` on a grid of one of ``dims`` dimensions, else a
    ``TypeError`` naming ``solver``."""
    if not isinstance(x, StencilProblem):
        raise TypeError(
            f"{solver} expected a stencil problem (Poisson2D, Darcy2D), got {type(x).__name__}"
        )
    if x.dim not in dims:
        raise TypeError(
            f"{solver} expected a {' or '.join(f'{d}-D' for d in dims)} stencil problem, got the "
            f"{x.dim}-D {type(x).__name__} (3-D problems: Jacobi, FlexibleCG/FlexibleGMRES with "
            "Jacobi, reference_solve)"
        )
    return x


def check_omega(omega: float, owner: str = "check_omega") -> float:
    """``omega`` as a float if ``0 < omega < 2`` (where relaxation can converge), else an error
    naming ``owner`` (the solver's name)."""
    value = check_real(owner, "omega", omega)
    if not 0.0 < value < 2.0:
        raise ValueError(f"{owner}: expected a relaxation weight omega in (0, 2), got {omega!r}")
    return value


def check_dirichlet_stencil(owner: str, stencil: Tensor) -> None:
    """Raise unless every coefficient that points out of a Dirichlet grid is zero."""
    n = stencil.shape[-1]
    for k, offset in enumerate(offsets(stencil)):
        edges = [
            stencil[:, k].narrow(axis + 1, 0 if o < 0 else n - 1, 1)
            for axis, o in enumerate(offset)
            if o
        ]
        if any(bool((edge != 0).any()) for edge in edges):
            raise ValueError(
                f"{owner}: expected zero stencil coefficients pointing out of the Dirichlet grid, "
                f"got non-zero ones for offset {offset} (channel {k}); pass periodic=True "
                "for a wrapping grid"
            )


class ComplexStencilProblem(StencilProblem):
    """A batched ``A u = f`` with a complex128 stencil (5- or 9-point 2-D, 7- or 27-point 3-D)
    on a Dirichlet grid.

    Everything of :class:`~irsolve.solvers.StencilProblem` (``apply``,
    ``residual``, ``diagonal``, ``to_scipy``, ``with_rhs``, ``restrict``) holds;
    only the dtype differs, so the constructor checks its own inputs. The grid
    spacing is ``h = 1 / (n + 1)`` and the off-diagonal coefficients are those
    of ``-Δ`` (what :attr:`interpolation_stencil` assumes).

    Parameters
    ----------
    stencil
        ``(B, 5 or 9, n, n)`` or ``(B, 7 or 27, n, n, n)`` complex128 coefficients (layout
        of :mod:`irsolve.solvers._stencil`; the full ones are Galerkin coarse operators),
        zero where they point out of the grid.
    f
        Right-hand side ``(B, 1, n, n)`` (``(B, 1, n, n, n)``), complex128.

    Raises
    ------
    TypeError
        A non-tensor, or a dtype other than complex128 (complex64 is refused:
        its 7 digits cannot reach the relative residual 1e-7 the solvers aim at
        at high wavenumber).
    ValueError
        Shapes that do not match, non-finite values, or a coefficient pointing
        out of the grid.
    """

    def __init__(self, stencil: Tensor, f: Tensor) -> None:
        owner = type(self).__name__
        for name, value in (("stencil", stencil), ("f", f)):
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"{owner}: expected {name} to be a torch.Tensor, got {type(value).__name__}"
                )
            if value.dtype != torch.complex128:
                raise TypeError(f"{owner}: expected {name} of dtype complex128, got {value.dtype}")
        dim = stencil.dim() - 2
        points = (2 * dim + 1, 3**dim)
        if dim not in (2, 3) or stencil.shape[1] not in points or len(set(stencil.shape[2:])) != 1:
            raise ValueError(
                f"{owner}: expected stencil of shape (B, 5 or 9, n, n) or (B, 7 or 27, n, n, n), "
                f"got {tuple(stencil.shape)}"
            )
        if tuple(f.shape) != (stencil.shape[0], 1, *stencil.shape[2:]):
            raise ValueError(
                f"{owner}: expected f of shape {(stencil.shape[0], 1, *stencil.shape[2:])}, "
                f"got {tuple(f.shape)}"
            )
        if not (bool(torch.isfinite(stencil).all()) and bool(torch.isfinite(f).all())):
            raise ValueError(f"{owner}: expected finite stencil and f, got NaN or infinity")
        check_dirichlet_stencil(owner, stencil)
        self.stencil = stencil
        self.f = f
        self.periodic = False

    @property
    def interpolation_stencil(self) -> Tensor | None:
        """The real stencil multigrid builds its interpolation from: the star ``-Δ`` (the
        off-diagonal part of a star stencil with its centre ``2 d / h^2``),
        ``(B, 2 d + 1, ...)``; ``None`` for a full (Galerkin) stencil."""
        if self.stencil.shape[1] != 2 * stencil_dim(self.stencil) + 1:
            return None
        stencil = self.stencil.real.clone()
        stencil[:, centre_index(stencil)] = 2 * stencil_dim(stencil) * float(self.n + 1) ** 2
        return stencil
