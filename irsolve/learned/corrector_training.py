"""Training a learned corrector through the very cycle it is deployed in.

A *problem family* (:class:`CorrectorFamily`: Darcy in
:mod:`irsolve.learned.darcy_corrector`, Helmholtz in
:mod:`irsolve.learned.helmholtz_corrector`) owns everything that differs
between problems: its settings, the reference net, the deployed cycle
(:meth:`CorrectorFamily.cycle`, a :class:`~irsolve.FixedPointSolver` around a
:class:`~irsolve.solvers.ResidualCorrector`), how a batch becomes a problem and
a right-hand side, the norm its factor is measured in, and its training data.
:class:`CorrectorObjective` is the one objective of every family: per batch it
runs the deployed cycle through the engine on ``A h = b`` from ``h = 0``,

``h = solve(None, family.cycle(net, config), problem.with_rhs(b), maxiter=steps, grad=True).u``,

and minimises the mean per-sample factor ``||b - A h||_N / ||b||_N`` in the
family's norm ``N`` (Darcy: the energy norm of the error; Helmholtz: the
residual 2-norm), so what is trained is what is deployed, by construction.
The cycle's step length (energy or minimal residual) sits inside the loss:
whatever the net returns, a step cannot increase the error in that norm.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from irsolve.engine import solve
from irsolve.interface import FixedPointSolver
from irsolve.learned.nets.factory import net_config
from irsolve.solvers.problems import StencilProblem

__all__ = ["CorrectorFamily", "CorrectorObjective", "RightHandSides"]


@dataclasses.dataclass
class RightHandSides:
    """What the cycle is run on: right-hand sides ``b``, the family's reference for the
    factor (Darcy: the errors ``e`` with ``b = A e``; Helmholtz: ``b`` itself) and the
    number of cycle steps."""

    b: Tensor
    reference: Tensor
    steps: int = 1


class CorrectorFamily(ABC):
    """One problem family of the learned corrector (see the module docstring).

    Subclasses set :attr:`name`, :attr:`config_type` (a dataclass of
    :func:`~irsolve.learned.settings.setting` fields: the deployed cycle's and the
    data's settings, stored in the checkpoint) and :attr:`selection_metric`, and
    implement the methods below.
    """

    name: ClassVar[str]
    config_type: ClassVar[type]
    #: The validation key the best checkpoint is selected by (lower is better).
    selection_metric: ClassVar[str]

    @abstractmethod
    def cycle(self, net: nn.Module, config: Any) -> FixedPointSolver:
        """The deployed solver around ``net``: one step is one application."""

    @abstractmethod
    def problem(self, x: Tensor, config: Any) -> StencilProblem:
        """The operator of a batch's inputs ``x`` (coefficients, wave speeds)."""

    @abstractmethod
    def training_rhs(self, problem: StencilProblem, y: Tensor, config: Any) -> RightHandSides:
        """Right-hand sides of one training step for the batch's targets ``y``."""

    @abstractmethod
    def validation_rhs(self, problem: StencilProblem, y: Tensor, config: Any) -> RightHandSides:
        """Right-hand sides (and steps) of the validation for the targets ``y``."""

    @abstractmethod
    def factor(self, problem: StencilProblem, rhs: RightHandSides, h: Tensor) -> Tensor:
        """``||b - A h||_N / ||b||_N`` per sample, ``(B,)``, in the family's norm."""

    @abstractmethod
    def generate(self, count: int, n: int, seed: int, config: Any) -> TensorDataset:
        """``count`` generated training pairs on an ``n x n`` grid (seeded)."""

    def config(self, **values: Any) -> Any:
        """The family's settings from keyword values (defaults for the rest)."""
        return self.config_type(**values)


class CorrectorObjective:
    """What :func:`irsolve.learned.training.fit` optimises for a learned corrector of any family.

    ``loss`` runs one step of the deployed cycle (``family.cycle(net, config)``,
    the object :attr:`cycle`) on the batch's right-hand sides with gradients and
    returns the mean factor; a batch where an iterate turned non-finite gives a
    NaN loss, which ``fit`` skips. ``validate`` runs the family's validation
    steps without gradients and reports the per-step factor
    ``(||b - A h||_N / ||b||_N)^(1 / steps)`` per sample under
    :attr:`selection_metric` (NaN where an iterate turned non-finite).
    """

    def __init__(self, family: CorrectorFamily, net: nn.Module, config: Any = None) -> None:
        if not isinstance(family, CorrectorFamily):
            raise TypeError(f"expected a CorrectorFamily instance, got {family!r}")
        self.family = family
        self.model = net
        self.settings = family.config() if config is None else config
        if not isinstance(self.settings, family.config_type):
            raise TypeError(
                f"expected {family.config_type.__name__} settings for the {family.name} "
                f"family, got {type(self.settings).__name__}"
            )
        self.cycle = family.cycle(net, self.settings)
        self.selection_metric = family.selection_metric

    def factors(self, x: Tensor, y: Tensor, *, validation: bool) -> Tensor:
        """Per-sample factor of the deployed cycle on the batch; NaN where it broke down."""
        family, config = self.family, self.settings
        problem = family.problem(x, config)
        make = family.validation_rhs if validation else family.training_rhs
        rhs = make(problem, y, config)
        sol = solve(
            None,
            self.cycle,
            problem.with_rhs(rhs.b),
            tol=None,
            maxiter=rhs.steps,
            divergence=None,
            grad=not validation,
        )
        ok = torch.tensor([code.ok for code in sol.retcodes], device=sol.u.device)
        factor = family.factor(problem, rhs, sol.u) ** (1.0 / rhs.steps)
        return torch.where(ok, factor, torch.full_like(factor, math.nan))

    def loss(self, x: Tensor, y: Tensor, epoch_progress: float) -> tuple[Tensor, dict[str, float]]:
        factor = self.factors(x, y, validation=False).mean()  # NaN: fit skips the batch
        return factor.float(), {"factor": factor.item()}

    def validate(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {self.selection_metric: self.factors(x, y, validation=True)}

    def config(self) -> dict[str, Any]:
        return {
            "objective": "corrector",
            "family": self.family.name,
            "model": net_config(self.model),
            "corrector": dataclasses.asdict(self.settings),
        }

    def to(self, device: torch.device) -> None:
        self.model.to(device)
