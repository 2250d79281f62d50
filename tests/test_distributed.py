"""irsolve.distributed and multi-process training/evaluation under torchrun (gloo, 2 CPU ranks).

The 2-process run is launched once per module (``python -m torch.distributed.run
--standalone --nproc_per_node=2 tests/ddp_worker.py OUT``) and compared with the
same worker called in this process, which has no process group (world size 1).
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import ddp_worker
import pytest
import torch

from irsolve import distributed
from irsolve.distributed import merge_solutions, resolve_device, shard_bounds, shard_solve
from irsolve.engine import solve
from irsolve.learned.checkpoint import load_checkpoint, read_manifest
from irsolve.learned.nets import base_operator
from irsolve.learned.training import TrainConfig, seed_everything, train_base
from irsolve.solvers import Jacobi, Poisson2D

WORKER = Path(__file__).with_name("ddp_worker.py")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """What each of 2 ranks computed, and what one process computed on the same data."""
    two = tmp_path_factory.mktemp("two")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", str(WORKER), str(two)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    one = tmp_path_factory.mktemp("one")
    return {
        "one": ddp_worker.run(one),
        "rank0": torch.load(two / "rank0.pt", weights_only=True),
        "rank1": torch.load(two / "rank1.pt", weights_only=True),
        "two_dir": two,
    }


def test_both_ranks_finish_with_identical_weights(runs: dict) -> None:
    # DistributedDataParallel averages gradients before each step and every rank applies
    # the same AdamW update to the same broadcast start: the weights agree bit for bit.
    w0, w1 = runs["rank0"]["model"], runs["rank1"]["model"]
    assert w0.keys() == w1.keys()
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    # The epoch records are reduced over the ranks; only each rank's own wall time differs.
    for r0, r1 in zip(runs["rank0"]["history"], runs["rank1"]["history"], strict=True):
        assert {k: v for k, v in r0.items() if k != "seconds"} == {
            k: v for k, v in r1.items() if k != "seconds"
        }


def test_two_process_loss_and_weights_equal_one_process_on_the_same_global_batch(
    runs: dict,
) -> None:
    # One step per epoch on the 8 samples: 4 per rank on 2 ranks, 8 in one process.
    # The relative L2 loss is a per-sample mean, so the rank-averaged gradient is the
    # global batch's; only float32 summation order differs (a few ulp: rtol 1e-5).
    # Without gradient averaging each rank would step with its own half-batch gradient:
    # AdamW's first update is about lr = 1e-3 per weight, far outside atol 1e-6.
    one, two = runs["one"], runs["rank0"]
    for single, multi in zip(one["history"], two["history"], strict=True):
        for key in ("train_loss", "val_vrmse"):
            assert math.isclose(single[key], multi[key], rel_tol=1e-5), (key, single, multi)
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, rtol=0, atol=1e-6)


def test_rank0_alone_wrote_the_checkpoint_set_with_the_trained_weights(runs: dict) -> None:
    ckpt = runs["two_dir"] / "ckpt"
    manifest = read_manifest(ckpt)
    assert manifest is not None and manifest["epoch"] == 2
    assert sorted(p.name for p in ckpt.iterdir()) == sorted([*manifest["files"], "manifest.json"])
    state = load_checkpoint(ckpt / "last.pt")
    assert all(torch.equal(state["model"][k], v) for k, v in runs["rank0"]["model"].items())
    assert len(state["rng_torch_ranks"]) == 2  # each rank resumes its own random stream


def test_two_process_run_stopped_after_an_epoch_resumes_to_the_uninterrupted_weights(
    runs: dict,
) -> None:
    # Refiner objective with batch norm and unroll lengths drawn from each rank's own RNG:
    # the per-rank RNG states and the epoch-seeded sampler make the resumed run bit-identical.
    assert runs["rank0"]["resume_exact"] and runs["rank1"]["resume_exact"]
    assert runs["one"]["resume_exact"]


def test_global_batch_that_the_ranks_cannot_share_evenly_is_refused(runs: dict) -> None:
    expected = "expected batch_size to be a multiple of the world size 2"
    assert runs["rank0"]["uneven_batch"].startswith(expected)
    assert runs["rank1"]["uneven_batch"].endswith("got 3")


def test_two_process_evaluation_gives_the_one_process_vrmse_per_step(runs: dict) -> None:
    # 7 samples in batches of 3: blocks of 3 and 4 on the ranks, other batches than in
    # one process; per-sample float32 metrics may differ in the last bits (rtol 1e-5).
    one, r0, r1 = runs["one"], runs["rank0"], runs["rank1"]
    assert r0["vrmse"] == r1["vrmse"] and r0["codes"] == r1["codes"] == one["codes"]
    assert len(one["codes"]) == 7
    for k, (single, multi) in enumerate(zip(one["vrmse"], r0["vrmse"], strict=True)):
        assert math.isclose(single, multi, rel_tol=1e-5), (k, single, multi)


def test_shard_solve_gathers_every_sample_in_order_on_rank0(runs: dict) -> None:
    # Jacobi on 5 Poisson problems, split 2 + 3 over the ranks; the reference is one solve
    # of the whole batch (samples stop at different steps: rows are NaN-padded alike).
    f = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    ref = solve(None, Jacobi(), Poisson2D(f), tol=0.0, rtol=0.1, maxiter=300)
    got = runs["rank0"]["solution"]
    assert "solution" not in runs["rank1"]
    assert got["codes"] == [int(c) for c in ref.retcodes]
    assert torch.equal(got["iterations"], ref.iterations)
    assert len(set(ref.iterations.tolist())) > 1
    torch.testing.assert_close(got["u"], ref.u, rtol=1e-12, atol=0)
    torch.testing.assert_close(got["residuals"], ref.residuals, rtol=1e-12, atol=0, equal_nan=True)


def test_shard_solve_in_chunks_equals_one_solve_in_one_process() -> None:
    f = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    options = {"tol": 0.0, "rtol": 0.05, "maxiter": 400, "save_trajectory": True}
    ref = solve(None, Jacobi(), Poisson2D(f), **options)
    got = shard_solve(None, Jacobi(), Poisson2D(f), batch_size=2, **options)
    assert got.retcodes == ref.retcodes
    assert torch.equal(got.iterations, ref.iterations)
    torch.testing.assert_close(got.u, ref.u, rtol=1e-12, atol=0)
    torch.testing.assert_close(got.residuals, ref.residuals, rtol=1e-12, atol=0, equal_nan=True)
    torch.testing.assert_close(got.updates, ref.updates, rtol=1e-12, atol=0, equal_nan=True)
    torch.testing.assert_close(got.trajectory, ref.trajectory, rtol=1e-12, atol=0)
    assert got.stats["sample_steps"] == ref.stats["sample_steps"]
    assert got.stats["steps"] == ref.stats["steps"]


def test_shard_bounds_split_every_index_once_in_order() -> None:
    for n in range(0, 12):
        for world in range(1, 5):
            blocks = [range(*shard_bounds(n, r, world)) for r in range(world)]
            assert [i for b in blocks for i in b] == list(range(n))
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


def test_shard_bounds_and_batch_size_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="expected n >= 0 and 0 <= rank < world, got n=3"):
        shard_bounds(3, 2, 2)
    f = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="shard_solve: expected batch_size to be an int >= 1"):
        shard_solve(None, Jacobi(), Poisson2D(f), batch_size=0, maxiter=1)
    with pytest.raises(ValueError, match="expected at least one Solution"):
        merge_solutions([])


def test_one_process_session_is_world_one_and_creates_no_group() -> None:
    with distributed.session("cpu") as device:
        assert device == torch.device("cpu")
        assert distributed.world_size() == 1 and distributed.rank() == 0
        assert not torch.distributed.is_initialized()
        assert distributed.all_gather_objects({"a": 1}) == [{"a": 1}]


def test_auto_device_is_cpu_without_cuda_and_bad_names_are_named() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="expected device to be 'auto' or a torch device"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="TrainConfig: expected device to be 'auto'"):
        TrainConfig(device="gpu")


def _train(precision: str, device: str = "cpu") -> list[float]:
    seed_everything(0)
    model = base_operator("fno", 1, 1, n_modes=(4, 4), hidden_channels=8, n_layers=2)
    config = TrainConfig(
        epochs=2, batch_size=4, lr=1e-2, device=device, progress=False, precision=precision
    )
    result = train_base(model, ddp_worker.pairs(8, 1), None, config)
    return [record["train_loss"] for record in result.history]


def test_bf16_training_runs_under_autocast_close_to_fp32() -> None:
    # bfloat16 keeps 8 significant bits (relative spacing 2**-8 = 3.9e-3): the losses must
    # differ (autocast is on) but by far less than the loss itself.
    fp32, bf16 = _train("fp32"), _train("bf16")
    assert fp32 != bf16
    for a, b in zip(fp32, bf16, strict=True):
        assert abs(a - b) <= 2e-2 * a


@pytest.mark.slow
def test_compiled_training_matches_eager_training() -> None:
    # torch.compile reorders float32 arithmetic (fused kernels): rtol 1e-4 on the loss.
    seed_everything(0)
    losses = []
    for compile_ in (False, True):
        seed_everything(0)
        model = base_operator("fno", 1, 1, n_modes=(4, 4), hidden_channels=8, n_layers=2)
        config = TrainConfig(epochs=1, batch_size=4, device="cpu", progress=False, compile=compile_)
        result = train_base(model, ddp_worker.pairs(8, 1), None, config)
        losses.append(result.history[0]["train_loss"])
    assert math.isclose(*losses, rel_tol=1e-4)


@pytest.mark.gpu
@cuda
def test_cuda_training_matches_cpu_training() -> None:
    # cuFFT and cuDNN reorder float32 sums (TF32 is off by default for matmuls in torch):
    # the losses agree to rtol 1e-4 after two epochs.
    cpu, gpu = _train("fp32", "cpu"), _train("fp32", "cuda")
    for a, b in zip(cpu, gpu, strict=True):
        assert math.isclose(a, b, rel_tol=1e-4)


@pytest.mark.gpu
@cuda
def test_solver_steps_on_cuda_do_not_synchronise_with_the_host() -> None:
    # A host <-> device copy or a .item() in a step raises under sync debug mode "error".
    from irsolve.solvers import Multigrid

    f = torch.randn(4, 1, 32, 32, device="cuda", dtype=torch.float64)
    for solver in (Jacobi(), Multigrid()):
        problem = Poisson2D(f)
        ctx = solver.prepare(problem)
        h = problem.zeros()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for k in range(3):
                h = solver.step(ctx, h, k)
                solver.residual(ctx, h)
        finally:
            torch.cuda.set_sync_debug_mode("default")


@pytest.mark.gpu
@cuda
def test_solve_on_cuda_matches_solve_on_cpu() -> None:
    f = torch.randn(3, 1, 16, 16, dtype=torch.float64)
    options = {"tol": 0.0, "rtol": 1e-6, "maxiter": 2000}
    cpu = solve(None, Jacobi(), Poisson2D(f), **options)
    gpu = solve(None, Jacobi(), Poisson2D(f.cuda()), **options)
    assert gpu.u.is_cuda and gpu.retcodes == cpu.retcodes
    torch.testing.assert_close(gpu.u.cpu(), cpu.u, rtol=1e-10, atol=1e-12)


def test_session_destroys_the_process_group_it_created_also_on_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A one-rank gloo group stands in for torchrun's environment (launched() forced true).
    with socket.socket() as probe:  # a free port for the group's store
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setattr(distributed, "launched", lambda: True)
    with pytest.raises(RuntimeError, match="failed inside"):
        with distributed.session("cpu"):
            assert torch.distributed.is_initialized()
            assert torch.distributed.get_backend() == "gloo"
            raise RuntimeError("failed inside")
    assert not torch.distributed.is_initialized()


@pytest.mark.slow
def test_cli_train_base_under_torchrun_prints_once_and_writes_one_checkpoint_set(
    tmp_path: Path,
) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 16, 16, generator=g)
    torch.save({"x": x, "y": 0.5 * x.roll(1, dims=-1)}, tmp_path / "pairs.pt")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", "-m", "irsolve.cli", "train-base"]
    command += ["--data", str(tmp_path / "pairs.pt"), "--out", str(tmp_path / "run")]
    command += ["--epochs", "1", "--batch-size", "4", "--modes", "4", "--hidden", "8"]
    command += ["--layers", "2", "--no-progress", "--device", "cpu"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("best epoch 1") == 1  # rank 1's output is discarded
    manifest = read_manifest(tmp_path / "run")
    assert manifest is not None and manifest["epoch"] == 1
