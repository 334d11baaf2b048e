"""Tests of the memory estimate and batch fitting (rescunet_ij.model.memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rescunet_ij.config import ModelConfig, NormalizationConfig
from rescunet_ij.errors import ConfigError, ModelFileError
from rescunet_ij.model import (
    MemoryEstimate,
    available_memory,
    build_model,
    estimate_memory,
    fit_batch_size,
    parameter_count,
)
from rescunet_ij.model.memory import SAFE_FRACTION, TRAINING_FACTOR

REPO = Path(__file__).resolve().parents[1]
GIB = 2**30


@pytest.mark.parametrize("level", [0, 1, 2, 4])
@pytest.mark.parametrize("channels, filters, dropout", [(1, 4, True), (3, 8, False)])
def test_parameter_count_is_exact(level, channels, filters, dropout):
    cfg = ModelConfig(
        base_filters=filters, concatenation_level=level, in_channels=channels, dropout=dropout
    )
    assert parameter_count(cfg) == sum(p.numel() for p in build_model(cfg).parameters())


def test_the_papers_network_has_31_million_parameters():
    assert parameter_count(ModelConfig(base_filters=64, concatenation_level=1)) == 31_141_954


def test_estimate_scales_with_pixels_and_filters():
    small = estimate_memory(ModelConfig(input_size=64, base_filters=16), training=True)
    big = estimate_memory(ModelConfig(input_size=128, base_filters=16), training=True)
    assert big.per_sample_bytes == pytest.approx(4 * small.per_sample_bytes, rel=1e-6)
    assert big.fixed_bytes == small.fixed_bytes  # the weights do not depend on the input size
    wide = estimate_memory(ModelConfig(input_size=64, base_filters=32), training=True)
    assert wide.per_sample_bytes > 1.9 * small.per_sample_bytes
    for cfg in (ModelConfig(), ModelConfig(base_filters=8, concatenation_level=0, dropout=False)):
        infer, train = (estimate_memory(cfg, training=t) for t in (False, True))
        assert train.per_sample_bytes > 2 * infer.per_sample_bytes
        assert train.fixed_bytes >= 4 * parameter_count(cfg) * 4  # weights, grads, 2 moments
        assert infer.fixed_bytes >= parameter_count(cfg) * 4
    est = MemoryEstimate(fixed_bytes=100, per_sample_bytes=10, training=False)
    assert est.total(1) == 110 and est.total(7) == 170


def test_dropout_costs_memory_in_training_only():
    on = ModelConfig(base_filters=16, dropout=True)
    off = ModelConfig(base_filters=16, dropout=False)
    assert (
        estimate_memory(on, training=True).per_sample_bytes
        > estimate_memory(off, training=True).per_sample_bytes
    )
    assert (
        estimate_memory(on, training=False).per_sample_bytes
        == estimate_memory(off, training=False).per_sample_bytes
    )


@pytest.mark.parametrize(
    "spec",
    [
        dict(base_filters=16, input_size=64, concatenation_level=1, dropout=True),
        dict(base_filters=8, input_size=(32, 64), concatenation_level=0, dropout=False),
        dict(base_filters=8, input_size=64, concatenation_level=4, dropout=True, in_channels=2),
    ],
)
def test_training_count_matches_what_autograd_saves(spec):
    # The analytic count (before the calibration factor) against the bytes autograd really keeps
    # for backward, counted with saved-tensor hooks on a real forward pass.
    cfg = ModelConfig(**spec)
    net = build_model(cfg).train()
    h, w = cfg.input_size
    batch = 2
    image = torch.rand(batch, cfg.in_channels, h, w)
    mask = (torch.rand(batch, 1, h, w) > 0.5).float()
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = net(image, mask)
        torch.nn.functional.cross_entropy(logits, mask[:, 0].long())
    weights = {p.untyped_storage().data_ptr() for p in net.parameters()}
    saved = sum(n for ptr, n in storages.items() if ptr not in weights) / batch
    counted = estimate_memory(cfg, training=True).per_sample_bytes / TRAINING_FACTOR
    assert 0.9 * saved <= counted <= 1.5 * saved, (counted, saved)


def test_estimate_allocates_nothing_and_builds_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the estimate must not build a network")

    monkeypatch.setattr("rescunet_ij.model.rescunet.ReSCUNet.__init__", refuse)
    cfg = ModelConfig(input_size=1024, base_filters=128)
    est = estimate_memory(cfg, training=True)
    assert est.per_sample_bytes > 10 * GIB  # computed, never allocated
    assert fit_batch_size(cfg, "cpu", 8, training=False, available=64 * GIB) >= 1


# ----------------------------------------------------------------------------- fit_batch_size


def test_fit_batch_size_keeps_the_wanted_batch_when_it_fits():
    cfg = ModelConfig(base_filters=8, input_size=32)
    assert fit_batch_size(cfg, "cpu", 16, training=True, available=64 * GIB) == 16


@pytest.mark.parametrize("training", [False, True])
def test_fit_batch_size_returns_the_largest_batch_that_fits(training):
    cfg = ModelConfig(base_filters=64, input_size=1024)
    available = 16 * GIB
    n = fit_batch_size(cfg, torch.device("cpu"), 4096, training=training, available=available)
    est = estimate_memory(cfg, training=training)
    assert 1 <= n < 4096
    assert est.total(n) <= SAFE_FRACTION * available < est.total(n + 1)


def test_fit_batch_size_refuses_when_one_sample_does_not_fit():
    # model_construct skips validation: an input of 4096, as in an edited model file.
    cfg = ModelConfig.model_construct(
        input_size=(4096, 4096), base_filters=64, concatenation_level=1, dropout=True, in_channels=1
    )
    with pytest.raises(ConfigError) as info:
        fit_batch_size(cfg, "cpu", 32, training=True, available=16 * GIB)
    msg = str(info.value)
    assert "a batch of 1 at input size 4096x4096" in msg
    assert "GiB for training but the cpu has 16 GiB available" in msg
    assert "lower input_size" in msg
    need = estimate_memory(cfg, training=True).total(1) / GIB
    assert f"~{need:.0f} GiB" in msg and need > 100
    with pytest.raises(ConfigError, match="for propagation"):
        fit_batch_size(cfg, "cpu", 1, training=False, available=1 * GIB)


def test_fit_batch_size_rejects_a_batch_below_one():
    with pytest.raises(ConfigError, match="at least 1, got 0"):
        fit_batch_size(ModelConfig(), "cpu", 0, training=False, available=GIB)


def test_fit_batch_size_asks_the_device_when_not_told():
    cfg = ModelConfig(base_filters=4, input_size=16)
    assert fit_batch_size(cfg, "cpu", 8, training=False) == 8  # a tiny model fits any machine


# ----------------------------------------------------------------------------- available_memory


def test_available_cpu_memory_is_positive_and_below_physical():
    avail = available_memory("cpu")
    assert avail > 0
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        assert avail <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert available_memory(torch.device("cpu")) > 0


@pytest.mark.skipif(
    sys.platform != "linux" or not Path("/proc/meminfo").exists(), reason="reads /proc/meminfo"
)
def test_available_cpu_memory_is_the_kernels_estimate_or_the_cgroup_room():
    with open("/proc/meminfo", encoding="ascii") as fh:
        meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh}
    avail = available_memory("cpu")
    # MemAvailable moves while other processes run: compare loosely.
    assert avail <= meminfo["MemAvailable"] * 1.25 + 256 * 2**20


def test_available_memory_rejects_unknown_devices():
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        available_memory("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_available_memory_on_missing_cuda_says_so():
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        available_memory("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_available_cuda_memory_counts_the_allocator_cache():
    free, total = torch.cuda.mem_get_info()
    assert free <= available_memory("cuda") <= total


# ----------------------------------------------------------------------------- calibration


@pytest.mark.skipif(
    sys.platform != "linux" or not Path("/proc/self/clear_refs").exists(),
    reason="the measurement needs Linux (glibc, /proc/self/clear_refs)",
)
@pytest.mark.slow
def test_estimate_is_within_2x_of_a_real_cpu_measurement(tmp_path):
    # Real forward and forward+backward+Adam passes on the CPU, peak resident memory measured in
    # a separate process (benchmarks/bench_memory.py); the estimate must be safe and within 2x.
    out = tmp_path / "memory.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench_memory.py", "--quick", "--check", "--json", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    assert {r["training"] for r in results} == {False, True}
    for r in results:
        for batch, total in r["totals"].items():
            assert 1.0 <= total["ratio"] <= 2.0, (r["spec"], r["training"], batch, total)


# ----------------------------------------------------------------------------- absurd model files


@pytest.fixture
def input_4096_model(tmp_path):
    """A real (tiny, untrained) model file whose metadata claims a 4096x4096 network input."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from rescunet_ij.io.checkpoint import save_model

    cfg = ModelConfig(base_filters=4, input_size=32)
    good = save_model(tmp_path / "good.rescunet", build_model(cfg), cfg, NormalizationConfig())
    with safe_open(str(good), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k).clone() for k in f.keys()}
    meta["model_config"] = json.dumps({**json.loads(meta["model_config"]), "input_size": 4096})
    path = tmp_path / "input4096.rescunet"
    save_file(tensors, str(path), metadata=meta)  # the weights fit any input size
    return path


def test_input_4096_model_cannot_make_propagation_hang(tmp_path, input_4096_model):
    from rescunet_ij import api, cli
    from rescunet_ij.demo import labels_to_outlines
    from rescunet_ij.io.tiff import write_movie
    from rescunet_ij.sample_data import synthetic_movie

    sim = synthetic_movie(3, (64, 64), n_objects=2, radius=(6.0, 8.0), seed=5)
    movie = api.as_movie(sim.images, dims="tyx")
    seeds = labels_to_outlines(sim.labels, range(1))
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError) as info:
        api.propagate(movie, seeds, input_4096_model)
    assert "input size 4096" in str(info.value) and "16..1024" in str(info.value)

    movie_path, seeds_path = tmp_path / "movie.tif", tmp_path / "seeds.zip"
    write_movie(movie_path, movie)
    api.write_outlines(seeds_path, seeds, movie)
    code = cli.main(
        [
            "propagate",
            str(movie_path),
            str(seeds_path),
            "--model",
            str(input_4096_model),
            "-o",
            str(tmp_path / "out.zip"),
            "--device",
            "cpu",
        ]
    )
    assert code == 2 and not (tmp_path / "out.zip").exists()
    assert time.perf_counter() - t0 < 60  # refused on opening, never near a forward pass


# ------------------------------------------------------------------------------ wired into use


def test_propagator_fits_its_pass_size_and_refuses_what_cannot_fit(monkeypatch):
    from rescunet_ij.config import PropagateConfig, TrainConfig
    from rescunet_ij.io.checkpoint import model_from_network
    from rescunet_ij.model import build_model
    from rescunet_ij.propagate import Propagator

    mc = ModelConfig(input_size=256, base_filters=8, concatenation_level=1)
    tc = TrainConfig(model=mc)
    loaded = model_from_network(build_model(mc), mc, NormalizationConfig(), tc)
    per_window = estimate_memory(mc, training=False)
    room = int((per_window.total(5) + 1) / SAFE_FRACTION)  # room for 5 windows, not 6
    monkeypatch.setattr("rescunet_ij.model.memory.available_memory", lambda device: room)
    prop = Propagator(loaded, PropagateConfig(device="cpu", batch_size=64))
    assert prop.pass_size == 5
    monkeypatch.setattr("rescunet_ij.model.memory.available_memory", lambda device: 1 << 20)
    with pytest.raises(ConfigError, match="a batch of 1 at input size 256x256"):
        Propagator(loaded, PropagateConfig(device="cpu"))


@pytest.mark.filterwarnings("ignore:training without a validation set")
def test_training_batch_is_fitted_with_a_warning(monkeypatch, tmp_path):
    from rescunet_ij import api
    from rescunet_ij.data.samples import samples_from_masks
    from rescunet_ij.sample_data import synthetic_movie
    from rescunet_ij.train import train_model

    sim = synthetic_movie(4, (64, 64), n_objects=2, radius=(7.0, 10.0), seed=1)
    masks = {o: {t: sim.labels[t] == o for t in range(4)} for o in (1, 2)}
    samples = samples_from_masks(sim.images, masks, 32)
    config = api.train_config(
        input_size=32, base_filters=4, batch_size=8, epochs=1, device="cpu",
        validation_fraction=0,
    )  # fmt: skip
    need = estimate_memory(config.model, training=True)
    room = int((need.total(2) + 1) / SAFE_FRACTION)
    monkeypatch.setattr("rescunet_ij.model.memory.available_memory", lambda device: room)
    with pytest.warns(UserWarning, match="training batch of 6 would not fit.*batches of 2"):
        result = train_model(samples, config, output=None)
    assert result.batch_size == 2
