"""irsolve.learned.trained: the one loader of trained nets, against the weights that were saved.

Trained = deployed: the cycle a corrector checkpoint loads into is the cycle its
training ran (same kind of object, bit-identical outputs from the same input).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from irsolve import Cycle
from irsolve.interface import apply_from_zero
from irsolve.learned.checkpoint import CheckpointError, model_state, save_checkpoint
from irsolve.learned.corrector_training import CorrectorObjective
from irsolve.learned.darcy_corrector import DarcyCorrector, DarcyCorrectorConfig, corrector_net
from irsolve.learned.helmholtz_corrector import (
    HelmholtzCorrector,
    HelmholtzCorrectorConfig,
    helmholtz_corrector_net,
    mixed_speed,
)
from irsolve.learned.nets import RefinementUNet, base_operator
from irsolve.learned.nets.factory import net_config
from irsolve.learned.trained import CORRECTOR_FAMILIES, load_corrector, load_net, load_refiner
from irsolve.learned.training import RefinerConfig, TrainConfig, fit
from irsolve.solvers import (
    Darcy2D,
    GaussSeidel,
    GeometricAlpha,
    Helmholtz2D,
    Jacobi,
    ResidualCorrector,
    ShiftedLaplacian,
    darcy_coefficient,
    gaussian_random_field,
)
from irsolve.solvers.helmholtz import random_source


def _save(path, net, objective, **settings):
    config = {"objective": objective, "model": net_config(net), **settings}
    save_checkpoint(path, {"model": model_state(net), "config": config}, {"config": config})
    return path


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    base = base_operator("fno", 1, 1, n_modes=(2, 2), hidden_channels=4, n_layers=1)
    unet = RefinementUNet(2, 1, base_channels=2, depth=1, norm="group")
    refiner = RefinerConfig(K=3, alpha=0.3, alpha_decay=0.5)
    corrector = corrector_net(2, 4, 1)
    helmholtz = helmholtz_corrector_net(2, 1)
    return {
        "base": (_save(tmp_path / "base.pt", base, "base"), base),
        "refiner": (
            _save(tmp_path / "ref.pt", unet, "refiner", refiner=dataclasses.asdict(refiner)),
            unet,
        ),
        "corrector": (
            _save(
                tmp_path / "cor.pt",
                corrector,
                "corrector",
                family="darcy",
                corrector=dataclasses.asdict(DarcyCorrectorConfig(nu=3, step_length="residual")),
            ),
            corrector,
        ),
        "helmholtz": (
            _save(
                tmp_path / "helm.pt",
                helmholtz,
                "corrector",
                family="helmholtz",
                corrector=dataclasses.asdict(HelmholtzCorrectorConfig(ppw=8.0, repeats=2)),
            ),
            helmholtz,
        ),
    }


def test_load_net_rebuilds_the_net_with_the_saved_weights_frozen(saved):
    path, original = saved["base"]
    net, config = load_net(path, "base")
    assert config["objective"] == "base" and not net.training
    saved_state, loaded = model_state(original), model_state(net)
    assert saved_state.keys() == loaded.keys()
    assert all(torch.equal(saved_state[k], loaded[k]) for k in saved_state)
    assert not any(p.requires_grad for p in net.parameters())


def test_load_refiner_restores_its_settings_and_applies_overrides(saved):
    path, _ = saved["refiner"]
    refiner, settings = load_refiner(path)
    assert settings == RefinerConfig(K=3, alpha=0.3, alpha_decay=0.5)
    assert isinstance(refiner.alpha, GeometricAlpha)  # alpha_decay != 1
    _, overridden = load_refiner(path, alpha_decay=1.0, stop_threshold=None)
    assert overridden.alpha_decay == 1.0 and overridden.stop_threshold is None


def test_load_corrector_rebuilds_the_trained_cycle_and_returns_its_settings(saved):
    path, _ = saved["corrector"]
    cycle, settings = load_corrector(path)
    assert settings == DarcyCorrectorConfig(nu=3, step_length="residual")
    corrector, smoothing = cycle.solvers
    assert isinstance(corrector, ResidualCorrector) and corrector.step_length == "residual"
    assert isinstance(smoothing, Jacobi) and (smoothing.omega, smoothing.sweeps) == (0.8, 3)
    energy, overridden = load_corrector(path, step_length="energy", nu=2, smoother="gauss-seidel")
    assert energy.solvers[0].step_length == "energy" and overridden.nu == 2
    assert isinstance(energy.solvers[1], GaussSeidel) and energy.solvers[1].sweeps == 2


def test_a_checkpoint_with_unknown_settings_is_refused_in_one_line(tmp_path):
    net = corrector_net(2, 4, 1)
    path = _save(
        tmp_path / "old.pt", net, "corrector", family="darcy", corrector={"nu": 3, "chains": 2}
    )
    with pytest.raises(CheckpointError, match=r"unknown chains: .*retrain") as info:
        load_corrector(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kind", "wanted"), [("base", "refiner"), ("refiner", "corrector"), ("corrector", "base")]
)
def test_a_checkpoint_of_another_kind_is_refused_naming_the_flag(saved, kind, wanted):
    path, _ = saved[kind]
    with pytest.raises(CheckpointError, match=f"expected --x to be a {wanted} checkpoint"):
        load_net(path, wanted, flag="--x")


def test_load_corrector_rebuilds_the_helmholtz_preconditioner_with_its_ppw(saved):
    path, original = saved["helmholtz"]
    pre, settings = load_corrector(path)
    assert settings == HelmholtzCorrectorConfig(ppw=8.0, repeats=2)
    assert isinstance(pre, Cycle) and pre.repeats == 2
    shifted, corrector = pre.solvers
    assert isinstance(shifted, ShiftedLaplacian) and corrector.step_length == "residual"
    assert corrector.net.base_channels == original.base_channels
    speed = mixed_speed(1, 16, torch.Generator().manual_seed(0))
    f = torch.zeros_like(speed, dtype=torch.complex128)
    # the problems the net was trained on: 8 points per wavelength, not the default 10
    assert torch.equal(settings.problem(speed).k2, Helmholtz2D(speed, f, ppw=8.0).k2)
    assert not torch.equal(settings.problem(speed).k2, Helmholtz2D(speed, f).k2)
    # a sponge width passes through; None keeps the problem's default
    wide = settings.problem(speed, sponge_width=0.3)
    assert torch.equal(wide.gamma, Helmholtz2D(speed, f, ppw=8.0, sponge_width=0.3).gamma)
    default = settings.problem(speed).gamma
    assert torch.equal(settings.problem(speed, sponge_width=None).gamma, default)
    assert not torch.equal(wide.gamma, default)
    _, overridden = load_corrector(path, repeats=1)
    assert overridden.repeats == 1 and overridden.ppw == 8.0


def test_a_corrector_checkpoint_without_a_family_is_refused_in_one_line(tmp_path):
    """Checkpoints of the earlier layout (no family) are refused: retrain them."""
    net = corrector_net(2, 4, 1)
    old = dataclasses.asdict(DarcyCorrectorConfig())
    path = _save(tmp_path / "old.pt", net, "corrector", corrector=old)
    with pytest.raises(CheckpointError, match=r"got family None: .*retrain") as info:
        load_corrector(path)
    assert "\n" not in str(info.value)


def _darcy_case():
    a = darcy_coefficient(gaussian_random_field(2, 16, generator=torch.Generator().manual_seed(1)))
    problem = Darcy2D(a)
    return problem, torch.randn_like(problem.f, generator=torch.Generator().manual_seed(2))


def _helmholtz_case():
    config = HelmholtzCorrectorConfig(repeats=2)
    problem = config.problem(mixed_speed(2, 16, torch.Generator().manual_seed(3)))
    return problem, random_source(2, 16, generator=torch.Generator().manual_seed(4))


def _describe(solver):
    """The structure of a (nested) solver: its type and, recursively, its children."""
    children = getattr(solver, "solvers", ())
    repeats = getattr(solver, "repeats", None)
    return (type(solver).__name__, repeats, tuple(map(_describe, children)))


@pytest.mark.parametrize(
    ("family", "net", "config", "case"),
    [
        ("darcy", lambda: corrector_net(2, 4, 1), DarcyCorrectorConfig(nu=2), _darcy_case),
        (
            "helmholtz",
            lambda: helmholtz_corrector_net(2, 1),
            HelmholtzCorrectorConfig(repeats=2),
            _helmholtz_case,
        ),
    ],
)
def test_trained_is_deployed_the_checkpoint_loads_into_the_objectives_cycle(
    tmp_path, family, net, config, case
):
    torch.manual_seed(0)
    objective = CorrectorObjective(CORRECTOR_FAMILIES[family], net(), config)
    train = objective.family.generate(2, 16, 0, config)
    fit(objective, train, None, TrainConfig(epochs=1, batch_size=64, lr=1e-3, progress=False),
        checkpoint_dir=tmp_path)  # fmt: skip
    deployed, settings = load_corrector(tmp_path / "best.pt")
    assert settings == config
    assert type(deployed) is type(objective.cycle)
    assert _describe(deployed) == _describe(objective.cycle)
    problem, f = case()
    with torch.no_grad():
        trained_out = apply_from_zero(objective.cycle, objective.cycle.prepare(problem), f)
        deployed_out = apply_from_zero(deployed, deployed.prepare(problem), f)
    assert torch.equal(trained_out, deployed_out)
    assert not torch.equal(trained_out, torch.zeros_like(trained_out))


def test_the_families_deployed_cycles_are_what_the_objective_trains():
    darcy = CorrectorObjective(DarcyCorrector(), corrector_net(2, 4, 1))
    assert isinstance(darcy.cycle, Cycle) and isinstance(darcy.cycle.solvers[0], ResidualCorrector)
    assert isinstance(darcy.cycle.solvers[1], Jacobi) and darcy.cycle.solvers[1].sweeps == 5
    helmholtz = CorrectorObjective(HelmholtzCorrector(), helmholtz_corrector_net(2, 1))
    assert isinstance(helmholtz.cycle, Cycle) and helmholtz.cycle.repeats == 3
    assert set(CORRECTOR_FAMILIES) == {"darcy", "helmholtz"}
