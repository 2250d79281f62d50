"""irsolve.learned.trained: the one loader of trained nets, against the weights that were saved."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from irsolve.learned.checkpoint import CheckpointError, model_state, save_checkpoint
from irsolve.learned.corrector_training import CorrectorConfig, corrector_net
from irsolve.learned.nets import RefinementUNet, base_operator
from irsolve.learned.nets.factory import net_config
from irsolve.learned.trained import load_corrector, load_net, load_refiner
from irsolve.learned.training import RefinerConfig
from irsolve.solvers import GaussSeidel, GeometricAlpha, Jacobi, ResidualCorrector


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
                corrector=dataclasses.asdict(CorrectorConfig(nu=3, step_length="residual")),
            ),
            corrector,
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
    assert settings == CorrectorConfig(nu=3, step_length="residual")
    corrector, smoothing = cycle.solvers
    assert isinstance(corrector, ResidualCorrector) and corrector.step_length == "residual"
    assert isinstance(smoothing, Jacobi) and (smoothing.omega, smoothing.sweeps) == (0.8, 3)
    energy, overridden = load_corrector(path, step_length="energy", nu=2, smoother="gauss-seidel")
    assert energy.solvers[0].step_length == "energy" and overridden.nu == 2
    assert isinstance(energy.solvers[1], GaussSeidel) and energy.solvers[1].sweeps == 2


def test_a_checkpoint_with_unknown_settings_is_refused_in_one_line(tmp_path):
    net = corrector_net(2, 4, 1)
    path = _save(tmp_path / "old.pt", net, "corrector", corrector={"nu": 3, "sweeps_per_cycle": 2})
    with pytest.raises(CheckpointError, match=r"unknown sweeps_per_cycle: .*retrain") as info:
        load_corrector(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kind", "wanted"), [("base", "refiner"), ("refiner", "corrector"), ("corrector", "base")]
)
def test_a_checkpoint_of_another_kind_is_refused_naming_the_flag(saved, kind, wanted):
    path, _ = saved[kind]
    with pytest.raises(CheckpointError, match=f"expected --x to be a {wanted} checkpoint"):
        load_net(path, wanted, flag="--x")
