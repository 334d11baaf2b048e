"""Cold start: a model opens without initialising weights it then replaces; imports stay lazy.

Training from scratch still initialises as before (Kaiming-normal weights, zero biases, the same
weights for the same seed). Timings are measured by ``benchmarks/bench_cold_start.py``, never here.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from rescunet_ij.config import ModelConfig, NormalizationConfig
from rescunet_ij.errors import ModelFileError
from rescunet_ij.io.checkpoint import load_model, save_model
from rescunet_ij.model import build_model

CFG = ModelConfig(input_size=32, base_filters=4, concatenation_level=1)


def _python(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_network_built_for_loading_has_no_values_and_draws_no_random_numbers():
    before = torch.random.get_rng_state()
    net = build_model(CFG, for_loading=True)
    assert torch.equal(torch.random.get_rng_state(), before)  # no init draws at all
    assert all(p.is_meta for p in net.parameters())
    # it still has the architecture: the same tensors as a trained network
    real = build_model(CFG)
    assert {k: v.shape for k, v in net.state_dict().items()} == {
        k: v.shape for k, v in real.state_dict().items()
    }
    net.load_state_dict(real.state_dict(), assign=True)
    assert not any(p.is_meta for p in net.parameters())
    for k, v in real.state_dict().items():
        assert torch.equal(net.state_dict()[k], v)


def test_training_build_initialises_as_before_same_seed_same_weights():
    torch.manual_seed(123)
    a = build_model(CFG)
    torch.manual_seed(123)
    b = build_model(CFG)
    torch.manual_seed(124)
    c = build_model(CFG)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if k.endswith("weight"))
    for m in a.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            assert torch.count_nonzero(m.bias) == 0  # zero biases (reset_parameters ran)
            fan_in = torch.nn.init._calculate_correct_fan(m.weight, "fan_in")
            if m.weight.numel() >= 500:  # Kaiming normal: std sqrt(2 / fan_in)
                expected = math.sqrt(2.0 / fan_in)
                assert abs(float(m.weight.detach().std()) / expected - 1) < 0.15, (m, expected)


@pytest.fixture
def model_file(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_model(tmp_path / "m.rescunet", build_model(CFG), CFG, NormalizationConfig())


def test_loaded_model_equals_the_saved_one(model_file):
    torch.manual_seed(0)
    ref = build_model(CFG).state_dict()
    net = load_model(model_file).network
    assert not any(p.is_meta for p in net.parameters())
    for k, v in net.state_dict().items():
        assert torch.equal(v, ref[k])


def test_huge_but_finite_weights_load_and_any_nan_is_refused(tmp_path, model_file):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(model_file), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k).clone() for k in f.keys()}
    w = tensors["head.weight"]
    w.fill_(3e38)  # finite, but their float32 sum overflows to infinity
    huge = tmp_path / "huge.rescunet"
    save_file(tensors, str(huge), metadata=metadata)
    assert float(load_model(huge).network.head.weight.detach().max()) == pytest.approx(3e38)
    for bad in (float("nan"), float("inf")):
        tensors["encoder.0.conv1.weight"][0, 0, 0, 0] = bad
        path = tmp_path / "bad.rescunet"
        save_file(tensors, str(path), metadata=metadata)
        with pytest.raises(ModelFileError, match="NaN or infinity"):
            load_model(path)


HEAVY = ("matplotlib", "torch._dynamo", "distributed", "zarr", "onnx", "onnxruntime", "bioimageio")


def test_importing_the_cli_and_api_stays_light():
    proc = _python(
        """
        import sys
        import rescunet_ij.cli, rescunet_ij.api
        heavy = ("torch", "scipy", "skimage", "dask", "xarray", "matplotlib", "pandas", "zarr")
        print(sorted(m for m in heavy if m in sys.modules))
        """
    )
    assert proc.stdout.strip() == "[]"


def test_loading_a_model_does_not_import_torch_dynamo(model_file):
    # Initialising weights on the meta device goes through torch._refs, which imports
    # torch._dynamo (about a second): a model that is only loaded must never do that.
    proc = _python(
        f"""
        import sys
        from rescunet_ij.io.checkpoint import load_model
        load_model({str(model_file)!r})
        print("torch._dynamo" in sys.modules)
        """
    )
    assert proc.stdout.strip() == "False"


@pytest.mark.slow
def test_next_frame_cli_run_imports_only_what_it_needs(tmp_path, model_file):
    from rescunet_ij import api
    from rescunet_ij.demo import labels_to_outlines
    from rescunet_ij.io.tiff import write_movie
    from rescunet_ij.sample_data import synthetic_movie

    sim = synthetic_movie(n_frames=3, shape=(64, 64), n_objects=2, seed=1)
    movie = api.as_movie(sim.images, dims="tyx")
    write_movie(tmp_path / "movie.tif", movie)
    api.write_outlines(tmp_path / "seeds.zip", labels_to_outlines(sim.labels, range(1)), movie)
    args = [
        "propagate",
        "movie.tif",
        "seeds.zip",
        "--model",
        str(model_file),
        "-o",
        "out.zip",
        "--next-frame-only",
    ]
    proc = _python(
        f"""
        import sys
        from rescunet_ij.cli import main
        rc = main({args!r})
        print("RC", rc)
        print("HEAVY", sorted(m for m in {HEAVY!r} if m in sys.modules))
        """,
        cwd=tmp_path,
    )
    assert "RC 0" in proc.stdout, proc.stdout + proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout
    assert (tmp_path / "out.zip").exists()


def test_training_with_channels_last_bf16_and_a_prefetching_worker():
    from rescunet_ij.api import train_config
    from rescunet_ij.data.samples import samples_from_masks
    from rescunet_ij.sample_data import synthetic_movie
    from rescunet_ij.train.loop import train_model

    sim = synthetic_movie(n_frames=4, shape=(48, 48), n_objects=2, seed=4)
    masks = {i: {f: sim.labels[f] == i for f in range(4)} for i in (1, 2)}
    samples = samples_from_masks(sim.images, masks, 16, motion="off")
    cfg = train_config(
        input_size=16,
        base_filters=4,
        batch_size=4,
        epochs=1,
        validation_fraction=0.3,
        channels_last=True,
        mixed_precision=True,  # bfloat16 autocast on the CPU
        num_workers=1,
        prefetch_factor=3,
        device="cpu",
    )
    assert cfg.channels_last and cfg.prefetch_factor == 3
    result = train_model(samples, cfg, output=None)
    (record,) = result.history
    assert np.isfinite(record["train_loss"]) and 0.0 <= record["val_iou"] <= 1.0
    # the saved form of the network is the ordinary one (contiguous weights)
    assert all(v.is_contiguous() for v in result.model.network.state_dict().values())
