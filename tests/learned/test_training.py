"""One training loop for base and refiner: learning, exact resume, checkpoints, skipped batches."""

import json
import math

import pytest
import torch
from torch.utils.data import TensorDataset

from irsolve.learned.checkpoint import CheckpointError, load_checkpoint, load_model_state
from irsolve.learned.losses import progressive_spectral_loss
from irsolve.learned.nets import RefinementUNet, base_operator
from irsolve.learned.training import (
    NonFiniteTrainingError,
    RefinerConfig,
    RefinerObjective,
    TrainConfig,
    TrainingState,
    load_weights,
    make_refiner,
    residual_rms,
    train_base,
    train_refiner,
)


def _pairs(n: int = 16, size: int = 8, seed: int = 0) -> TensorDataset:
    """``y`` = a smoothed, shifted copy of ``x`` (a fixed linear periodic operator)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, size, size, generator=gen)
    y = 0.5 * (torch.roll(x, 1, -1) + torch.roll(x, 1, -2))
    return TensorDataset(x, y)


def _perturbed_base(x: torch.Tensor) -> torch.Tensor:
    """A deliberately imperfect base: the target map plus a fixed high-frequency error."""
    y = 0.5 * (torch.roll(x, 1, -1) + torch.roll(x, 1, -2))
    return y + 0.3 * torch.roll(x, 2, -1)


def _small_unet(norm: str = "group") -> RefinementUNet:
    torch.manual_seed(0)
    return RefinementUNet(2, 1, base_channels=4, depth=2, norm=norm)


FAST = {"batch_size": 4, "lr": 1e-2, "progress": False}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny nets run fastest on one thread (and do not oversubscribe a shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_refiner_training_lowers_the_loss_and_beats_the_base():
    data = _pairs()
    result = train_refiner(
        _perturbed_base,
        _small_unet(),
        data,
        data,
        # A larger lr than FAST's: the calibrated output_scale (0.3, the base's RMS
        # error) makes each Adam step move Phi 0.3 times as far.
        TrainConfig(epochs=5, **{**FAST, "lr": 3e-2}),
        RefinerConfig(K=2, alpha=0.5, fp_warmup_epochs=1),
    )
    first, last = result.history[0], result.history[-1]
    # Seeded run (first loss ~0.14 -> 0.053, base VRMSE 0.45 -> 0.24); the margins leave
    # room for platform-dependent rounding, not for a refiner that does not learn.
    assert last["train_loss"] < 0.7 * first["train_loss"]
    assert last["val_vrmse"] < 0.8 * last["val_vrmse_base"]
    assert result.skipped_batches == 0


def test_residual_rms_is_the_root_mean_square_of_the_base_error():
    data = _pairs(n=6)
    x, y = data.tensors
    expected = (y - _perturbed_base(x)).double().square().mean().sqrt().item()
    assert residual_rms(_perturbed_base, data, batch_size=4) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("calibrate", [True, False])
def test_train_refiner_sets_the_output_scale_to_the_base_error(calibrate, tmp_path):
    data = _pairs(n=8)
    net = _small_unet()
    train_refiner(
        _perturbed_base,
        net,
        data,
        None,
        TrainConfig(epochs=1, **FAST),
        RefinerConfig(K=1, calibrate_scale=calibrate),
        checkpoint_dir=tmp_path,
    )
    expected = residual_rms(_perturbed_base, data) if calibrate else 1.0
    assert net.output_scale.item() == pytest.approx(expected, rel=1e-6)
    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["model"]["output_scale"].item() == pytest.approx(expected, rel=1e-6)
    assert saved["config"]["model"]["output_scale"] == pytest.approx(expected, rel=1e-6)


def test_make_refiner_applies_the_inference_levers():
    config = RefinerConfig(K=3, alpha=0.2, alpha_decay=0.5, stop_threshold=1e-3)
    refiner = make_refiner(_small_unet(), config)
    assert [refiner.alpha_at(k) for k in range(5)] == pytest.approx([0.2, 0.2, 0.2, 0.1, 0.05])
    assert refiner.stop_threshold == 1e-3
    assert config.levers() == {"alpha_decay": 0.5, "stop_threshold": 1e-3}
    assert make_refiner(_small_unet(), RefinerConfig(K=3)).alpha_at(7) == 0.2


def test_base_training_lowers_the_relative_error():
    x = _pairs().tensors[0]
    data = TensorDataset(x, 0.5 * (x + torch.roll(x, 1, -1)))
    torch.manual_seed(0)
    fno = base_operator("fno", 1, 1, n_modes=(4, 4), hidden_channels=8, n_layers=2)
    result = train_base(fno, data, data, TrainConfig(epochs=4, **FAST))
    # Seeded: relative L2 0.99 -> 0.83 in 16 steps.
    assert result.history[-1]["train_rel_l2"] < 0.9 * result.history[0]["train_rel_l2"]
    assert result.best_metric == min(r["val_vrmse"] for r in result.history)


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    # BatchNorm (running stats), sampled unroll lengths and a Hutchinson penalty (global RNG)
    # and shuffling (loader RNG) all have to be restored for the runs to agree bit for bit.
    data = _pairs(n=8)
    train = TrainConfig(epochs=3, batch_size=4, lr=3e-3, progress=False)
    refine = RefinerConfig(K=2, alpha=0.5, unroll_max=3, beta_jac=0.01)

    full = train_refiner(
        _perturbed_base, _small_unet("batch"), data, data, train, refine,
        checkpoint_dir=tmp_path / "full",
    )  # fmt: skip

    class Interrupted(Exception):
        pass

    def stop_after_first_epoch(record):
        if record["epoch"] == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_refiner(
            _perturbed_base, _small_unet("batch"), data, data, train, refine,
            checkpoint_dir=tmp_path / "resumed", callback=stop_after_first_epoch,
        )  # fmt: skip
    torch.manual_seed(123)  # a different global RNG state before resuming must not matter
    resumed = train_refiner(
        _perturbed_base,
        RefinementUNet(2, 1, base_channels=4, depth=2, norm="batch"),
        data,
        data,
        train,
        refine,
        checkpoint_dir=tmp_path / "resumed",
        resume=True,
    )
    a = load_checkpoint(tmp_path / "full" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    losses = [r["train_loss"] for r in full.history]
    assert losses == [r["train_loss"] for r in resumed.history]


@pytest.mark.parametrize(
    ("train_data", "val_data", "changed"),
    [
        (_pairs(n=6), _pairs(n=8), r"data.train.samples \(saved 8, now 6\)"),
        (_pairs(size=12), _pairs(n=8), r"data.train.shapes \(saved \[\[1, 8, 8\], \[1, 8, 8\]\]"),
        (_pairs(n=8), None, r"data.val \(saved \{'samples': 8"),
    ],
    ids=["samples", "resolution", "no validation"],
)
def test_a_resume_on_other_data_is_refused_naming_what_changed(
    tmp_path, train_data, val_data, changed
):
    """Another sample count or resolution would continue the run on other data: refused."""
    data = _pairs(n=8)
    train, refine = TrainConfig(epochs=2, **FAST), RefinerConfig(K=2)

    def stop(record):
        raise KeyboardInterrupt  # a run killed after its first committed epoch

    with pytest.raises(KeyboardInterrupt):
        train_refiner(
            _perturbed_base, _small_unet(), data, data, train, refine,
            checkpoint_dir=tmp_path, callback=stop,
        )  # fmt: skip
    with pytest.raises(CheckpointError, match=changed):
        train_refiner(
            _perturbed_base, _small_unet(), train_data, val_data, train, refine,
            checkpoint_dir=tmp_path, resume=True,
        )  # fmt: skip
    resumed = train_refiner(
        _perturbed_base, _small_unet(), data, data, train, refine,
        checkpoint_dir=tmp_path, resume=True,
    )  # fmt: skip
    assert len(resumed.history) == 2  # the same data resumes


def test_worker_processes_do_not_change_the_trained_weights():
    """The data order is a function of the seed and the epoch: reading the batches in a
    worker process (persistent, prefetching) trains bit for bit the same weights."""
    data = _pairs(n=8)
    weights = []
    for workers in (0, 1):
        net = _small_unet("batch")
        train = TrainConfig(epochs=2, num_workers=workers, **FAST)
        train_refiner(_perturbed_base, net, data, data, train, RefinerConfig(K=2))
        weights.append([p.detach().clone() for p in net.parameters()])
    for a, b in zip(*weights, strict=True):
        assert torch.equal(a, b)


def test_checkpoints_are_weights_only_with_a_json_summary(tmp_path):
    data = _pairs(n=8)
    net = _small_unet()
    train_refiner(
        _perturbed_base, net, data, data, TrainConfig(epochs=2, **FAST), RefinerConfig(K=2),
        checkpoint_dir=tmp_path,
    )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.json", "best.pt", "last.json", "last.pt", "manifest.json",
    ]  # fmt: skip
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 2
    summary = json.loads((tmp_path / "last.json").read_text())
    assert summary["config"]["model"] == {"type": "unet", **net.config()}
    assert summary["config"]["refiner"]["K"] == 2
    loaded = load_weights(RefinementUNet(**net.config()), tmp_path / "last.pt")
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_checkpoint_of_another_architecture_lists_the_mismatched_keys(tmp_path):
    data = _pairs(n=4)
    train_refiner(
        _perturbed_base, _small_unet(), data, None, TrainConfig(epochs=1, **FAST),
        RefinerConfig(K=1), checkpoint_dir=tmp_path,
    )  # fmt: skip
    deeper = RefinementUNet(2, 1, base_channels=4, depth=3, norm="group")
    with pytest.raises(ValueError, match="architecture") as err:
        load_weights(deeper, tmp_path / "last.pt")
    saved = load_checkpoint(tmp_path / "last.pt")["model"]
    missing = sorted(set(deeper.state_dict()) - set(saved))
    assert "encoder.2.0.weight" in missing  # the third level only the deeper net has
    message = str(err.value)
    assert f"missing in the checkpoint ({len(missing)}): {missing[0]}, {missing[1]}" in message
    assert "bottleneck.0.weight (16, 8, 3, 3) vs (32, 16, 3, 3)" in message  # a wider bottleneck
    wider = RefinementUNet(2, 1, base_channels=8, depth=2, norm="group")
    reshaped = [k for k, v in wider.state_dict().items() if v.shape != saved[k].shape]
    with pytest.raises(ValueError, match=rf"shape checkpoint vs model \({len(reshaped)}\)"):
        load_model_state(wider, saved)


def test_non_finite_batches_are_skipped_and_counted():
    x, y = _pairs(n=8).tensors
    y = y.clone()
    y[3] = float("nan")
    y[6] = float("inf")
    torch.manual_seed(0)
    fno = base_operator("fno", 1, 1, n_modes=(4, 4), hidden_channels=4, n_layers=1)
    result = train_base(
        fno, TensorDataset(x, y), None, TrainConfig(epochs=2, batch_size=1, progress=False)
    )
    assert result.skipped_batches == 4  # two bad samples, two epochs, batch size 1
    assert [r["skipped"] for r in result.history] == [2.0, 2.0]
    assert all(torch.isfinite(p).all() for p in fno.parameters())


@pytest.mark.parametrize(
    ("cls", "field", "value", "error"),
    [
        (TrainConfig, "epochs", 0, ValueError),
        (TrainConfig, "epochs", 1.5, ValueError),
        (TrainConfig, "epochs", "3", TypeError),
        (TrainConfig, "batch_size", 0, ValueError),
        (TrainConfig, "lr", float("inf"), ValueError),
        (TrainConfig, "lr", float("nan"), ValueError),
        (TrainConfig, "lr", 0.0, ValueError),
        (TrainConfig, "lr", "1e-3", TypeError),  # a YAML string: converted by the CLI, not here
        (TrainConfig, "weight_decay", -1e-5, ValueError),
        (TrainConfig, "lr_min", 1.0, ValueError),  # above lr: the cosine would rise
        (TrainConfig, "clip", 0.0, ValueError),
        (TrainConfig, "seed", -1, ValueError),
        (TrainConfig, "seed", True, TypeError),
        (TrainConfig, "device", "gpu", ValueError),
        (TrainConfig, "progress", "yes", TypeError),
        (TrainConfig, "max_skipped", 1.5, ValueError),
        (RefinerConfig, "K", 0, ValueError),
        (RefinerConfig, "alpha", float("inf"), ValueError),
        (RefinerConfig, "alpha", -0.2, ValueError),
        (RefinerConfig, "beta_s", -1.0, ValueError),
        (RefinerConfig, "beta_fp", float("nan"), ValueError),
        (RefinerConfig, "fp_warmup_epochs", -1.0, ValueError),
        (RefinerConfig, "lam_end", -2.0, ValueError),
        (RefinerConfig, "alpha_decay", 0.0, ValueError),
        (RefinerConfig, "stop_threshold", -1e-3, ValueError),
        (RefinerConfig, "beta_jac", -1.0, ValueError),
        (RefinerConfig, "jac_method", "exact", ValueError),
        (RefinerConfig, "jac_iters", 0, ValueError),
        (RefinerConfig, "unroll_max", 3, ValueError),  # below K = 6
        (RefinerConfig, "step_weights", "last", ValueError),
        (RefinerConfig, "start_mix", 1.5, ValueError),
        (RefinerConfig, "calibrate_scale", 1, TypeError),
    ],
)
def test_config_fields_are_checked_for_type_and_range_naming_the_field(cls, field, value, error):
    with pytest.raises(error, match=rf"{cls.__name__}: expected {field} to be .*, got "):
        cls(**{field: value})


def test_integral_numbers_are_accepted_as_ints_and_floats():
    config = TrainConfig(epochs=2.0, lr=1)
    assert config.epochs == 2 and isinstance(config.epochs, int)
    assert config.lr == 1.0 and isinstance(config.lr, float)


def _fno() -> torch.nn.Module:
    torch.manual_seed(0)
    return base_operator("fno", 1, 1, n_modes=(4, 4), hidden_channels=4, n_layers=1)


def test_nan_in_the_training_data_stops_the_run_naming_the_data(tmp_path):
    x, y = _pairs(n=8).tensors
    x = x.clone()
    x[0, 0, 3, 3] = float("nan")  # one pixel: with batch size 8 every batch holds it
    config = TrainConfig(epochs=2, batch_size=8, progress=False)
    with pytest.raises(NonFiniteTrainingError, match="training data holds NaN or infinite"):
        train_base(_fno(), TensorDataset(x, y), None, config, checkpoint_dir=tmp_path)
    assert not (tmp_path / "best.pt").exists()  # nothing claims to be a trained model


def test_a_diverging_learning_rate_stops_the_run_naming_the_learning_rate():
    config = TrainConfig(epochs=2, batch_size=2, lr=1e30, progress=False)
    with pytest.raises(NonFiniteTrainingError, match=r"diverged after 1 update;.*lr=1e\+30"):
        train_base(_fno(), _pairs(n=8), None, config)


def test_a_non_finite_initial_loss_stops_the_run_naming_alpha():
    config = TrainConfig(epochs=1, progress=False)
    refine = RefinerConfig(K=2, alpha=1e200, calibrate_scale=False)
    with pytest.raises(NonFiniteTrainingError, match=r"before any update.*alpha=1e\+200"):
        train_refiner(_perturbed_base, _small_unet(), _pairs(n=8), None, config, refine)


@pytest.mark.parametrize("step_weights", ["uniform", "linear"])
def test_unroll_loss_weights_the_per_step_losses(step_weights):
    """The unroll loss is the plain or (k + 1)-weighted mean of hand-computed ``l_k``."""
    x, y = _pairs(n=4).tensors
    net = _small_unet()
    config = RefinerConfig(K=3, beta_fp=0.0, step_weights=step_weights)
    objective = RefinerObjective(_perturbed_base, net, config)
    with torch.no_grad():
        loss, parts = objective.loss(x, y, epoch_progress=1.0)
        h, per_step = _perturbed_base(x), []
        for k in range(3):
            h = h + 0.2 * net(torch.cat([x, h], dim=1))
            spec = progressive_spectral_loss(h, y, k, 3)
            per_step.append((h - y).square().mean() + spec)
    weights = [1 / 3] * 3 if step_weights == "uniform" else [1 / 6, 2 / 6, 3 / 6]
    expected = sum(w * l for w, l in zip(weights, per_step, strict=True))
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=0)
    assert parts["steps"] == 3


def test_unroll_loss_and_gradients_match_a_hand_written_unroll():
    """Loss and every parameter gradient of the engine's unroll against Algorithm 1 by hand.

    The reference writes ``h <- h + alpha Phi([x; h])`` with the per-step losses,
    the (k + 1)-weights and the fixed-point term ``mean(Phi([x; y])^2)`` out
    in plain torch; float32 autograd through both differs by round-off only.
    """
    x, y = _pairs(n=4).tensors
    net = _small_unet()
    config = RefinerConfig(K=3, alpha=0.3, beta_fp=0.5, fp_warmup_epochs=0, step_weights="linear")
    objective = RefinerObjective(_perturbed_base, net, config)
    loss, parts = objective.loss(x, y, epoch_progress=0.5)
    engine = torch.autograd.grad(loss, list(net.parameters()))

    h, total = _perturbed_base(x), 0.0
    for k in range(3):
        h = h + 0.3 * net(torch.cat([x, h], dim=1))
        spec = progressive_spectral_loss(h, y, k, 3)
        total = total + (k + 1) / 6 * ((h - y).square().mean() + spec)
    total = total + 0.5 * net(torch.cat([x, y], dim=1)).square().mean()
    hand = torch.autograd.grad(total, list(net.parameters()))

    torch.testing.assert_close(loss, total, rtol=1e-5, atol=0)
    for got, want in zip(engine, hand, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)
    assert parts["steps"] == 3 and parts["fixed_point"] > 0


def test_unroll_that_turns_nonfinite_gives_a_nonfinite_loss():
    """A sample stopped as UNSTABLE must not leave a finite loss: fit skips such batches."""
    x, y = _pairs(n=4).tensors
    config = RefinerConfig(K=3, alpha=1e200, beta_fp=0.0)
    objective = RefinerObjective(_perturbed_base, _small_unet(), config)
    loss, parts = objective.loss(x, y, epoch_progress=1.0)
    assert not torch.isfinite(loss) and math.isnan(parts["unroll"])
    assert torch.isnan(objective.validate(x, y)["vrmse"]).all()


class _Zero(torch.nn.Module):
    """A refinement net that never corrects: the unroll stays at its start."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(features[:, :1])


def test_start_mix_starts_the_unroll_between_the_base_and_the_target():
    """With ``Phi = 0`` every step's loss is that of the start ``T(x) + t (y - T(x))``."""
    x, y = _pairs(n=6).tensors
    config = RefinerConfig(K=2, beta_fp=0.0, beta_s=0.0, start_mix=1.0)
    objective = RefinerObjective(_perturbed_base, _Zero(), config)
    torch.manual_seed(3)
    loss, _ = objective.loss(x, y, epoch_progress=1.0)
    torch.manual_seed(3)
    t = torch.rand(6, 1, 1, 1)
    h0 = _perturbed_base(x)
    start = h0 + t * (y - h0)
    torch.testing.assert_close(loss, (start - y).square().mean())
    assert loss < (h0 - y).square().mean()


def test_a_training_state_survives_its_state_dict():
    # Independent of fit: build two states by hand, step one, move it into the other.
    def fresh(seed):
        torch.manual_seed(seed)
        model = torch.nn.Linear(3, 2)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
        return TrainingState(model, optimizer, scheduler)

    source = fresh(0)
    source.model(torch.ones(4, 3)).square().sum().backward()
    source.optimizer.step()
    source.scheduler.step()
    source.history, source.best, source.best_epoch = [{"epoch": 1.0}], 0.5, 1
    source.skipped, source.epoch, source.steps = 2, 1, 3
    payload = source.state_dict()
    draw = torch.rand(1)  # the global RNG state was saved before this draw
    target = fresh(1)
    target.load(payload, "memory")
    assert torch.equal(torch.rand(1), draw)
    for a, b in zip(source.model.parameters(), target.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert target.optimizer.state_dict()["state"][0]["step"] == 1
    assert target.scheduler.last_epoch == 1
    fields = ("history", "best", "best_epoch", "skipped", "epoch", "steps")
    assert [getattr(target, f) for f in fields] == [getattr(source, f) for f in fields]


def test_load_weights_of_a_file_that_is_no_training_checkpoint_names_the_file(tmp_path):
    data_file = tmp_path / "train.pt"
    torch.save({"inputs": torch.zeros(2, 1, 4, 4), "targets": torch.zeros(2, 1, 4, 4)}, data_file)
    with pytest.raises(CheckpointError, match=rf"{data_file}: not a training checkpoint"):
        load_weights(_small_unet(), data_file)


class _FactorObjective:
    """A base objective whose validation metric is named ``factor`` (not ``vrmse``)."""

    selection_metric = "factor"

    def __init__(self, model: torch.nn.Module, factors: list[float]) -> None:
        self.model, self.factors, self.calls = model, factors, 0

    def loss(self, x, y, epoch_progress):
        loss = (self.model(x) - y).pow(2).mean()
        return loss, {"mse": loss.item()}

    def validate(self, x, y):
        factor = self.factors[min(self.calls, len(self.factors) - 1)]
        self.calls += 1
        return {"factor": torch.full((x.shape[0],), factor), "vrmse": torch.zeros(x.shape[0])}

    def config(self):
        return {}

    def to(self, device):
        self.model.to(device)


def test_fit_selects_by_the_objectives_selection_metric():
    from irsolve.learned.training import fit

    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    data = _pairs(n=4)
    # one validation batch per epoch: factors 0.9, 0.5, 0.7 -> epoch 2 is the best
    objective = _FactorObjective(net, [0.9, 0.5, 0.7])
    result = fit(objective, data, data, TrainConfig(epochs=3, **FAST))
    assert result.best_epoch == 2 and result.best_metric == pytest.approx(0.5)


def test_no_progress_bars_when_stderr_is_not_a_terminal(capsys):
    x = _pairs(n=4).tensors[0]
    data = TensorDataset(x, x)
    torch.manual_seed(0)
    fno = base_operator("fno", 1, 1, n_modes=(2, 2), hidden_channels=4, n_layers=1)
    train_base(fno, data, None, TrainConfig(epochs=1, batch_size=4, progress=True))
    err = capsys.readouterr().err
    assert "it/s" not in err and "epoch 1/1" not in err
