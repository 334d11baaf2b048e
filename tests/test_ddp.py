"""Training on several processes: torchrun + DistributedDataParallel (gloo on the CPU).

The real runs start ``python -m torch.distributed.run`` (torchrun) as a subprocess with two CPU
processes; the sampler and environment tests run in this process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from rescunet_ij import api
from rescunet_ij.demo import labels_to_outlines
from rescunet_ij.errors import ConfigError
from rescunet_ij.sample_data import synthetic_movie
from rescunet_ij.train.distributed import (
    ShardedEpochSampler,
    env_world,
    per_rank_batch,
    process_group,
    rank_seed,
    shard_indices,
    signals_deferred,
)

TRAIN = ["--device", "cpu", "--input-size", "32", "--base-filters", "4", "--batch-size", "4"]
TRAIN += ["--seed", "1"]


@pytest.fixture(scope="module")
def sim():
    return synthetic_movie(8, (64, 64), n_objects=3, radius=(7.0, 10.0), seed=5)


@pytest.fixture(scope="module")
def training_set(sim, tmp_path_factory):
    movie = api.as_movie(sim.images, dims="tyx")
    root = tmp_path_factory.mktemp("ddp")
    return api.make_training_set(
        movie, labels_to_outlines(sim.labels), root / "training_set", subimage_size=32
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", COLUMNS="200")
    return env


# ----------------------------------------------------------------------------- in this process


@pytest.mark.parametrize("n", [19, 20])
def test_the_ranks_get_disjoint_shards_of_every_epoch(n):
    for epoch in (1, 2):
        shards = []
        for rank in (0, 1):
            sampler = ShardedEpochSampler(n, rank=rank, world_size=2, seed=3)
            sampler.set_epoch(epoch)
            pairs = list(sampler)
            assert len(pairs) == len(sampler) == (n + 1) // 2  # the same number of steps
            assert {e for e, _ in pairs} == {epoch}  # the epoch travels with each index
            shards.append([i for _, i in pairs])
        a, b = set(shards[0]), set(shards[1])
        assert a | b == set(range(n))
        # Disjoint, but for the one window repeated to pad an odd count.
        assert len(a & b) == n % 2
    first = ShardedEpochSampler(20, rank=0, world_size=2, seed=3)
    first.set_epoch(1)
    order1 = [i for _, i in first]
    first.set_epoch(2)
    assert [i for _, i in first] != order1  # reshuffled each epoch


def test_validation_shards_cover_each_window_once():
    for n in (1, 2, 7):
        parts = [shard_indices(n, r, 3) for r in range(3)]
        assert sorted(i for p in parts for i in p) == list(range(n))


def test_global_batch_and_rank_seeds():
    assert per_rank_batch(8, 2) == 4
    assert per_rank_batch(5, 2) == 3  # rounded up: the effective batch is 6
    assert per_rank_batch(1, 4) == 1
    assert rank_seed(7, 0) == 7  # rank 0 keeps the single-device random stream
    assert len({rank_seed(7, r) for r in range(4)}) == 4


def test_the_environment_decides_whether_training_is_distributed(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert env_world() is None
    with process_group("cpu") as dist:
        assert dist is None  # no torchrun: single-device training, no process group
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert env_world() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert env_world() == (1, 2, 1)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError, match="RANK"):
        env_world()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ConfigError, match="torchrun"):
        env_world()
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="MPS"), process_group("mps"):
        pass


def test_nproc_per_node_is_refused_inside_torchrun(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="inside a distributed run"):
        api.launch_training(["train", "x"], 2)
    with pytest.raises(ConfigError, match="at least 1"):
        api.launch_training(["train", "x"], 0)


# ----------------------------------------------------------------------------- real runs


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:object .* lost")  # a 3-epoch model loses small objects
def test_two_gloo_processes_train_one_model_like_one_process(training_set, sim, tmp_path):
    epochs = 2
    single = api.train(
        training_set,
        tmp_path / "single" / "model.rescunet",
        device="cpu",
        input_size=32,
        base_filters=4,
        batch_size=4,
        seed=1,
        epochs=epochs,
    )
    out = tmp_path / "ddp"
    out.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    cmd += ["--master-port", str(_free_port()), "-m", "rescunet_ij", "train", str(training_set)]
    cmd += ["-o", str(out / "model.rescunet"), "--epochs", str(epochs), *TRAIN]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=240)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    # One model, one history, one plot: rank 0 alone wrote, and nothing else was left behind.
    assert sorted(p.name for p in out.iterdir()) == [
        "model.history.csv",
        "model.rescunet",
        "model.training.png",
    ]
    assert text.count("model saved to") == 1  # the other rank reports nothing
    assert len((out / "model.history.csv").read_text().strip().splitlines()) == epochs + 1

    model = api.load_model(out / "model.rescunet")
    assert model.extra["world_size"] == 2
    assert model.extra["batch_size_used"] == 4  # --batch-size is the global batch (2 x 2)
    assert model.extra["n_train"] == single.n_train and model.extra["n_val"] == single.n_val
    assert len(model.history) == epochs
    # The same state-dict keys as single-device training: no DDP "module." prefix.
    assert set(model.network.state_dict()) == set(single.model.network.state_dict())

    ddp_val = min(h["val_loss"] for h in model.history)
    one_val = min(h["val_loss"] for h in single.history)
    assert one_val / 2 < ddp_val < one_val * 2, (ddp_val, one_val)

    movie = api.as_movie(sim.images, dims="tyx")
    seeds = [o for o in labels_to_outlines(sim.labels) if o.frame == 0]
    # A 3-epoch model is poor: keep going, so every frame is predicted even where it doubts.
    config = api.propagate_config(keep_going=True, device="cpu")
    run = api.propagate(movie, seeds, model, start_frame=0, end_frame=3, config=config)
    assert (run.start_frame, run.end_frame, len(run.frames)) == (0, 3, 3)
    assert {o.object_id for o in run.predicted} <= {o.object_id for o in seeds}


def test_rank_0_saves_through_a_second_copy_of_the_signal():
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with signals_deferred(True):
            os.kill(os.getpid(), signal.SIGINT)  # torchrun's forwarded copy of a Ctrl-C
            time.sleep(0.05)  # would raise KeyboardInterrupt here without the deferral
        with pytest.raises(KeyboardInterrupt), signals_deferred(False):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig, group",
    [
        (signal.SIGTERM, False),  # a cluster's time limit, sent to the launcher
        (signal.SIGINT, True),  # Ctrl-C in a terminal: every process of the job gets it
    ],
    ids=["SIGTERM-to-launcher", "Ctrl-C-to-all"],
)
def test_an_interrupt_saves_the_best_weights_once(training_set, tmp_path, sig, group):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "rescunet_ij", "train", str(training_set)]
    cmd += ["-o", str(out / "model.rescunet"), "--epochs", "500", "--nproc-per-node", "2", *TRAIN]
    log = tmp_path / "log.txt"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=_env(), start_new_session=True
        )
        try:
            deadline = time.monotonic() + 120
            while "epoch 1:" not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.2)
            if group:
                os.killpg(proc.pid, sig)  # the launcher and its workers (our own session)
            else:
                proc.send_signal(sig)
            code = proc.wait(timeout=90)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert code == 128 + sig, text
    assert sorted(p.name for p in out.iterdir()) == [
        "model.history.csv",
        "model.rescunet",
        "model.training.png",
    ], text
    model = api.load_model(out / "model.rescunet")
    assert model.extra["interrupted"] == sig.name
    assert model.extra["training_complete"] is False
    assert model.extra["best_epoch"] >= 1
    assert text.count("were saved to") == 1, text  # rank 0 saved; rank 1 did not
