"""BioImage.IO export: packages that pass bioimageio.core's model test, offline.

Every package is checked by ``bioimageio.core.test_model`` on its own test tensors (the model's
prediction for a real window of a synthetic movie), with the network switched off and the
bioimageio cache in a temporary folder, so nothing is downloaded.
"""

from __future__ import annotations

import socket
import sys
import zipfile

import numpy as np
import pytest
import torch

from rescunet_ij import api
from rescunet_ij.config import ModelConfig, NormalizationConfig, TrainConfig
from rescunet_ij.errors import DataError, MissingExtraError, OutputExistsError
from rescunet_ij.io.checkpoint import model_from_network, save_model
from rescunet_ij.model import build_model

pytest.importorskip("bioimageio.core")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network (a connection attempt fails at once) and a private bioimageio cache."""
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "bioimageio-cache"))

    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _model(level=1, *, channels=1, normalization=None, subimage=None, seed=0):
    torch.manual_seed(seed)
    mc = ModelConfig(input_size=32, base_filters=4, concatenation_level=level, in_channels=channels)
    tc = TrainConfig(model=mc, erosion_width=1, subimage_size=subimage)
    norm = normalization or NormalizationConfig()
    return model_from_network(build_model(mc), mc, norm, tc, [{"epoch": 1, "val_loss": 0.25}])


def _core_test(path):
    """bioimageio.core's own model test of a package, offline; returns the summary."""
    from bioimageio.core import test_model
    from bioimageio.spec import load_description

    from rescunet_ij.io.bioimageio import CITATION_URL

    descr = load_description(path, perform_io_checks=True, known_files={CITATION_URL: None})
    return test_model(descr, devices=["cpu"])


def _failed(summary):
    return [(d.name, [e.msg[:300] for e in d.errors]) for d in summary.details if d.errors]


@pytest.mark.slow
def test_two_input_package_passes_bioimageio_core(tmp_path):
    """Image + prompt, percentile normalisation as spec ops, TorchScript and ONNX weights."""
    model = _model(level=1)
    out = tmp_path / "model.zip"
    result = api.export_bioimageio(model, out, check=False, authors=["A. Tester"])
    assert result.inputs == ("image", "prompt") and result.outputs == ("probability",)
    assert result.weight_formats == ("torchscript", "onnx")

    summary = _core_test(out)
    assert summary.status == "passed", _failed(summary)
    tested = {d.name for d in summary.details if d.status == "passed"}
    assert "Reproduce test outputs from test inputs (torchscript)" in tested
    assert "Reproduce test outputs from test inputs (onnx)" in tested

    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        readme = z.read("README.md").decode()
        assert {"weights_torchscript.pt", "weights.onnx", "cover.png"} <= names
        image = np.load(z.open("test_input_image.npy"))
        prompt = np.load(z.open("test_input_prompt.npy"))
        expected = np.load(z.open("test_output_probability.npy"))
        rdf = z.read("rdf.yaml" if "rdf.yaml" in names else "bioimageio.yaml").decode()
    assert "Hawkins" in readme and "J Cell Biol" in readme and "## Validation" in readme
    assert "Threshold the probability at 0.5" in readme and "erode it by 1 pixel" in readme
    assert "scale_range" in rdf and "clip" in rdf and "binarize" in rdf
    # The test tensors are a real window: an object, some background, and raw intensities.
    assert image.shape == (1, 1, 32, 32) and prompt.shape == (1, 1, 32, 32)
    assert 0 < prompt.mean() < 1 and image.max() > 50  # raw uint16-range intensities
    inside, outside = image[prompt > 0.5], image[prompt < 0.5]
    assert inside.mean() > outside.mean() + 3 * outside.std()  # the object is there, brighter
    # ... and the expected output is what rescunet-ij's own pipeline predicts for it.
    from rescunet_ij.data.windows import normalize

    with torch.no_grad():
        logits = model.network(
            normalize(torch.from_numpy(image), model.normalization), torch.from_numpy(prompt)
        )
    np.testing.assert_allclose(expected, torch.softmax(logits, 1)[:, 1:2].numpy(), atol=1e-6)


@pytest.mark.slow
def test_single_input_package_for_level_0(tmp_path):
    """One 2-channel input (image, prompt) that deepImageJ runs."""
    out = tmp_path / "single.zip"
    result = api.export_bioimageio(_model(level=0, seed=1), out, single_input=True, check=False)
    assert result.status == "not checked" and result.inputs == ("input",)
    with zipfile.ZipFile(out) as z:
        stacked = np.load(z.open("test_input_input.npy"))
        rdf = z.read("rdf.yaml" if "rdf.yaml" in z.namelist() else "bioimageio.yaml").decode()
    assert stacked.shape == (1, 2, 32, 32)
    assert set(np.unique(stacked[0, 1])) == {0.0, 1.0}  # the prompt channel
    assert "scale_range" not in rdf  # the network normalises its image channel itself
    summary = _core_test(out)
    assert summary.status == "passed", _failed(summary)


@pytest.mark.slow
def test_max_normalisation_two_channels_and_resized_windows(tmp_path):
    """``max`` mode as scale_linear, 2 image channels, 48 px windows fed at 32 px, ONNX only."""
    model = _model(
        level=2,
        channels=2,
        normalization=NormalizationConfig(mode="max", max_value=4000.0),
        subimage=48,
    )
    out = tmp_path / "max.zip"
    result = api.export_bioimageio(model, out, weight_formats=["onnx"])
    assert result.status == "passed" and result.weight_formats == ("onnx",)
    with zipfile.ZipFile(out) as z:
        assert "weights_torchscript.pt" not in z.namelist()
        assert np.load(z.open("test_input_image.npy")).shape == (1, 2, 32, 32)
        readme = z.read("README.md").decode()
    assert "resize the 48x48 window to 32x32" in readme.lower()


def test_single_input_normalisation_is_rescunet_ij_s(tmp_path):
    """The traced single-input network normalises as data.windows.normalize, at any size."""
    from rescunet_ij.data.windows import normalize
    from rescunet_ij.io.bioimageio import _export_module

    model = _model(level=0, seed=2)
    cfg = NormalizationConfig(low_percentile=2.0, high_percentile=99.0)
    module = _export_module(model.network, cfg, 1, single_input=True)
    rng = np.random.default_rng(0)

    def stacked(h, w):
        x = torch.from_numpy(rng.gamma(2.0, 300.0, size=(2, 2, h, w)).astype(np.float32))
        x[:, 1] = (x[:, 1] > 600).float()
        return x

    traced = torch.jit.trace(module, (stacked(32, 32),), check_trace=False)
    x = stacked(48, 64)  # another size than the one traced
    with torch.no_grad():
        want = torch.softmax(model.network(normalize(x[:, :1], cfg), x[:, 1:]), 1)[:, 1:2]
        got = traced(x)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)


@pytest.mark.slow
def test_failing_check_writes_nothing_and_outputs_are_not_overwritten(tmp_path):
    """A package whose test output the weights cannot reproduce is refused, and nothing written."""
    from rescunet_ij.api._bioimageio import sample_window
    from rescunet_ij.io.bioimageio import write_bioimageio_package

    model = _model(level=1, seed=3)
    image, prompt, prob = sample_window(model)
    out = tmp_path / "bad.zip"
    with pytest.raises(DataError, match="failed bioimageio.core's model test"):
        write_bioimageio_package(
            out,
            network=model.network,
            model_config=model.model_config,
            normalization=model.normalization,
            window_size=(32, 32),
            erosion_width=0,
            test_image=image,
            test_prompt=prompt,
            test_output=1.0 - prob,  # not what the network predicts
            weight_formats=["torchscript"],
        )
    assert not out.exists() and list(tmp_path.iterdir()) == []

    existing = tmp_path / "existing.zip"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        api.export_bioimageio(model, existing)
    assert existing.read_bytes() == b"keep me"


def test_missing_extra_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "bioimageio.core", None)  # import fails as if missing
    with pytest.raises(MissingExtraError, match=r"rescunet-ij\[bioimageio\]"):
        api.export_bioimageio(_model(), tmp_path / "m.zip")
    assert not (tmp_path / "m.zip").exists()


def test_bad_arguments_are_clear_errors(tmp_path):
    from rescunet_ij.errors import ConfigError

    with pytest.raises(ConfigError, match="weight formats"):
        api.export_bioimageio(_model(), tmp_path / "a.zip", weight_formats=["keras"])
    with pytest.raises(ConfigError, match="author"):
        api.export_bioimageio(_model(), tmp_path / "a.zip", authors=["a/b"])
    with pytest.raises(ConfigError, match="license"):
        api.export_bioimageio(
            _model(), tmp_path / "a.zip", license="not-a-licence", weight_formats=["torchscript"]
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_exports_and_refuses_to_overwrite(tmp_path):
    from rescunet_ij.cli import main

    model_path = tmp_path / "tiny.rescunet"
    m = _model(level=0, seed=4)
    save_model(model_path, m.network, m.model_config, m.normalization, train_config=m.train_config)
    out = tmp_path / "pkg.zip"
    args = ["export-bioimageio", str(model_path), "-o", str(out), "--single-input"]
    assert main([*args, "--weights", "torchscript", "--no-check", "--author", "A. Tester"]) == 0
    with zipfile.ZipFile(out) as z:
        assert "weights_torchscript.pt" in z.namelist() and "weights.onnx" not in z.namelist()
    before = out.read_bytes()
    assert main(args) == 2  # exists, no --overwrite
    assert out.read_bytes() == before
