"""Crafted corrector checkpoints are refused in one line naming the file (and the key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from irsolve.learned.checkpoint import CheckpointError, model_state, save_checkpoint
from irsolve.learned.corrector_training import CorrectorObjective
from irsolve.learned.helmholtz_corrector import HelmholtzCorrector, helmholtz_corrector_net
from irsolve.learned.trained import load_corrector


def _write(path: Path, edit) -> Path:
    """A helmholtz corrector checkpoint whose config ``edit`` changed."""
    net = helmholtz_corrector_net(base_channels=2, depth=1)
    config = CorrectorObjective(HelmholtzCorrector(), net).config()
    edit(config)
    save_checkpoint(path, {"model": model_state(net), "config": config}, {"config": config})
    return path


def test_a_well_formed_checkpoint_loads_with_its_settings(tmp_path: Path):
    path = _write(tmp_path / "ok.pt", lambda config: config["corrector"].update(ppw=8.0))
    _, settings = load_corrector(path)
    assert settings.ppw == 8.0 and settings.repeats == 3


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c.pop("model"), "expected config.model .the architecture to rebuild., fo"),
        (lambda c: c.update(model=[1]), "expected config.model to be a mapping of argument na"),
        (lambda c: c.update(model={1: 2}), "expected config.model to be a mapping of argument na"),
        (lambda c: c["model"].update(base_channels=10**5), "=100000, depth=1 .* more th"),
        (lambda c: c["model"].update(depth=60), "depth=60 .* more than this machine"),
        (lambda c: c["model"].update(width=8), "unexpected keyword argument 'width'"),
        (lambda c: c["model"].update(base_channels="8"), "base_channels to be an int >= 1"),
        (lambda c: c["model"].update(type="mlp"), "type 'unet', 'fno' or 'tfno', got 'mlp'"),
        (lambda c: c.pop("family"), "got family None"),
        (lambda c: c.update(family="poisson"), "got family 'poisson'"),
        (lambda c: c.update(corrector=None), "settings of .* to be a mapping of names, got None"),
        (lambda c: c["corrector"].update(chains=4), "got unknown chains"),
        (lambda c: c["corrector"].update({"1": 2}), "got unknown 1"),
        (lambda c: c["corrector"].update(ppw=-1.0), "settings do not fit: .*ppw"),
        (lambda c: c.update(objective="helmholtz-corrector"), "'helmholtz-corrector'"),
    ],
    ids=[
        "no-model",
        "model-list",
        "model-int-keys",
        "huge-width",
        "huge-depth",
        "unknown-argument",
        "string-width",
        "unknown-type",
        "no-family",
        "unknown-family",
        "none-settings",
        "old-lever",
        "odd-name",
        "out-of-range",
        "old-objective",
    ],  # fmt: skip
)
def test_crafted_checkpoint_is_one_line_naming_the_file(tmp_path: Path, edit, match: str):
    path = _write(tmp_path / "crafted.pt", edit)
    with pytest.raises(CheckpointError, match=match) as info:
        load_corrector(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
