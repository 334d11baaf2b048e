"""PyJAMAS ``.cfr`` import: a restricted unpickler that never runs code, and exact weight mapping.

The CI tests write ``.cfr`` files in PyJAMAS's layout themselves (its dict keys, gzip + pickle
protocol 3, numpy arrays in Keras layout and PyJAMAS's Keras 3 weight order), from our own
network's weights, and check that the imported model predicts exactly what the original does.
The last test compares with PyJAMAS itself (its own network, its own ``ReSCUNet.save``) and runs
only where PyJAMAS's venv exists (``../shared/tools/pyjamas_venv.sh``).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rescunet_ij import api
from rescunet_ij.cli import main
from rescunet_ij.errors import ModelFileError, OutputExistsError
from rescunet_ij.io.pyjamas_cfr import pyjamas_weight_order, read_cfr
from rescunet_ij.model import ReSCUNet

REPO = Path(__file__).resolve().parents[1]

# The weight order of PyJAMAS 2026.9.0's ReSCU-Net at concatenation level 2, as Keras 3 lists it
# (``classifier.weights``; recorded from the real network, layer names mapped to our modules).
KERAS_ORDER_L2 = [
    "encoder.0.conv1",
    "mask_encoder.0.conv1",
    "encoder.0.conv2",
    "mask_encoder.0.conv2",
    "encoder.1.conv1",
    "mask_encoder.1.conv1",
    "encoder.1.conv2",
    "mask_encoder.1.conv2",
    "encoder.2.conv1",
    "encoder.2.conv2",
    "encoder.3.conv1",
    "encoder.3.conv2",
    "bottleneck.conv1",
    "bottleneck.conv2",
    "upsample.0",
    "decoder.0.conv1",
    "decoder.0.conv2",
    "upsample.1",
    "decoder.1.conv1",
    "decoder.1.conv2",
    "upsample.2",
    "decoder.2.conv1",
    "decoder.2.conv2",
    "upsample.3",
    "decoder.3.conv1",
    "decoder.3.conv2",
    "head",
]


def _keras_weights(net: ReSCUNet) -> list[np.ndarray]:
    """Our weights as PyJAMAS stores them: Keras layouts, in Keras's order."""
    sd = net.state_dict()
    out = []
    for name in pyjamas_weight_order(net.concatenation_level):
        w = sd[f"{name}.weight"].numpy()
        # Conv2D: torch (out, in, kh, kw) -> Keras (kh, kw, in, out); ConvTranspose2d:
        # torch (in, out, kh, kw) -> Keras (kh, kw, out, in). Both are the axes (2, 3, 1, 0).
        out.append(np.ascontiguousarray(w.transpose(2, 3, 1, 0)))
        out.append(sd[f"{name}.bias"].numpy().copy())
    return out


def _pyjamas_dict(net: ReSCUNet, *, size: int = 32, scaler: int = 3066, **changes) -> dict:
    d = {
        "positive_training_folder": "/data/train/",
        "train_image_size": (size, size),
        "scaler": np.amax(np.array([scaler], dtype=np.uint16)),  # a numpy scalar, as in PyJAMAS
        "epochs": 10,
        "mini_batch_size": 8,
        "learning_rate": 0.0010000000474974513,
        "classifier": _keras_weights(net),
        "step_sz": (8, 8),
        "erosion_width": 2,
        "early_stopper": {"active": True, "kwargs": {"patience": 5}},
        "lr_scheduler": {"active": True, "kwargs": {"patience": 5}},
        "model_checkpoint": {"active": True, "kwargs": {"save_best_only": True}},
        "logging": {"active": True, "kwargs": {}},
        "classifier_type": "ReSCU-Net",
        "concatenation_level": net.concatenation_level,
    }
    d.update(changes)
    return {k: v for k, v in d.items() if v is not _DROP}


_DROP = object()


def _write_cfr(path: Path, obj, *, compress: bool = True) -> Path:
    if compress:
        with gzip.open(path, "wb") as fh:  # as PyJAMAS's RUtils.pickle_this
            pickle.dump(obj, fh, 3)
    else:
        path.write_bytes(pickle.dumps(obj, 3))
    return path


def _net(level: int, seed: int = 0) -> ReSCUNet:
    torch.manual_seed(seed)
    net = ReSCUNet(base_filters=4, concatenation_level=level).eval()
    with torch.no_grad():  # non-zero biases, so a bias mix-up shows
        for p in net.parameters():
            if p.ndim == 1:
                p.normal_(0, 0.1)
    return net


def _inputs(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(3, 1, 32, 32, generator=g) * 3066
    prev = (torch.rand(3, 1, 32, 32, generator=g) > 0.6).float()
    return image, prev


def test_the_weight_order_is_pyjamas_keras_order():
    assert pyjamas_weight_order(2) == KERAS_ORDER_L2
    # Level 0 has no mask branch; every level has its own count (2 arrays per layer).
    assert [len(pyjamas_weight_order(level)) for level in range(5)] == [23, 25, 27, 29, 31]


@pytest.mark.parametrize("level", [0, 1, 4])
def test_imported_model_predicts_exactly_as_the_original(tmp_path, level):
    net = _net(level)
    cfr = _write_cfr(tmp_path / "ckpt_final.cfr", _pyjamas_dict(net))
    out = tmp_path / "model.rescunet"
    imported = api.import_pyjamas(cfr, out)
    loaded = api.load_model(out)  # and back from the written file
    image, prev = _inputs()
    with torch.no_grad():
        want = net(image / 3066.0, prev)
        for model in (imported, loaded):
            # PyJAMAS's normalisation: divide by the scaler
            assert model.normalization.mode == "max" and model.normalization.max_value == 3066
            from rescunet_ij.data.windows import normalize

            got = model.network(normalize(image, model.normalization), prev)
            assert torch.equal(got, want)
    m = loaded.model_config
    assert (m.concatenation_level, m.base_filters, m.in_channels) == (level, 4, 1)
    assert tuple(m.input_size) == (32, 32) and tuple(loaded.window_size) == (32, 32)
    assert loaded.erosion_width == 2
    tc = loaded.train_config
    assert (tc.batch_size, tc.epochs, tc.early_stopping_patience) == (8, 10, 5)
    assert not tc.augment and tc.prompt_motion == "off"
    info = loaded.extra["imported_from"]
    import hashlib

    assert info["sha256"] == hashlib.sha256(cfr.read_bytes()).hexdigest()
    assert info["file"] == str(cfr.resolve()) and not info["concatenation_level_inferred"]
    assert info["pyjamas_settings"]["step_sz"] == [8, 8]
    assert "classifier" not in info["pyjamas_settings"]


def test_missing_concatenation_level_is_found_from_the_weights(tmp_path):
    net = _net(3)
    cfr = _write_cfr(tmp_path / "old.cfr", _pyjamas_dict(net, concatenation_level=_DROP))
    model = api.import_pyjamas(cfr)
    assert model.model_config.concatenation_level == 3 and model.path is None
    assert model.extra["imported_from"]["concatenation_level_inferred"]
    image, prev = _inputs()
    with torch.no_grad():
        assert torch.equal(model.network(image / 3066.0, prev), net(image / 3066.0, prev))


def test_files_written_by_numpy_1_and_uncompressed_pickles_are_read(tmp_path):
    # numpy < 2 pickles arrays and scalars through numpy.core.multiarray (numpy 2: numpy._core).
    raw = pickle.dumps(_pyjamas_dict(_net(1)), 3)
    assert b"numpy._core.multiarray" in raw
    old = raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy._core" not in old
    path = tmp_path / "numpy1.cfr"
    with gzip.open(path, "wb") as fh:
        fh.write(old)
    d = read_cfr(path)
    assert d["scaler"] == 3066 and len(d["classifier"]) == 50
    plain = _write_cfr(tmp_path / "plain.cfr", _pyjamas_dict(_net(1)), compress=False)
    assert api.import_pyjamas(plain).model_config.concatenation_level == 1


def test_every_pickle_protocol_is_read(tmp_path):
    # PyJAMAS writes protocol 3; 0-2 name builtins as Python 2 did and store bytes through
    # _codecs.encode, 5 stores arrays through numpy's _frombuffer.
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    d = {"w": [a, np.asfortranarray(a), a.transpose(2, 0, 1)], "s": {1, 2}, "n": np.uint16(7)}
    for protocol in range(6):
        path = _write_cfr(tmp_path / f"p{protocol}.cfr", d)
        path.write_bytes(gzip.compress(pickle.dumps(d, protocol)))
        r = read_cfr(path)
        assert all(np.array_equal(x, y) for x, y in zip(r["w"], d["w"], strict=True)), protocol
        assert r["s"] == {1, 2} and r["n"] == 7 and r["n"].dtype == np.uint16, protocol


def test_numpy_globals_cannot_be_misused(tmp_path):
    # numpy.ndarray called directly (an allocation of the pickle's choosing) is not possible
    path = tmp_path / "alloc.cfr"
    path.write_bytes(gzip.compress(b"\x80\x03cnumpy\nndarray\nJ\x00\xca\x9a\x3b\x85R."))
    with pytest.raises(ModelFileError, match="damaged"):
        read_cfr(path)


class _Run:
    """Pickles as ``func(*args)``: what a malicious .cfr would carry."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize(
    ("how", "refused"),
    [
        ("os.system", "system"),
        ("builtins.exec", "builtins.exec"),
        ("subprocess.call", "subprocess.call"),
        ("nested", "builtins.eval"),
    ],
)
def test_a_malicious_cfr_never_runs_code(tmp_path, how, refused):
    marker = tmp_path / "PWNED"
    touch = f"open({str(marker)!r}, 'w').write('x')"
    payload = {
        "os.system": _Run(os.system, f"touch {marker}"),
        "builtins.exec": _Run(exec, touch),
        "subprocess.call": _Run(subprocess.call, ["touch", str(marker)]),
    }.get(how)
    if how == "nested":  # hidden among real weights inside a valid-looking dict
        d = _pyjamas_dict(_net(1))
        d["classifier"].insert(3, _Run(eval, touch))
        payload = d
    cfr = _write_cfr(tmp_path / "evil.cfr", payload)
    # the payload really is live: plain pickle.load would run it
    with pytest.raises(ModelFileError) as err:
        api.import_pyjamas(cfr, tmp_path / "out.rescunet")
    msg = str(err.value)
    assert refused in msg and "nothing in it was executed" in msg and str(cfr) in msg
    assert not marker.exists() and not (tmp_path / "out.rescunet").exists()
    # the CLI says the same without a traceback (exit status 2)
    assert main(["import-pyjamas", str(cfr), "-o", str(tmp_path / "cli.rescunet")]) == 2
    assert not marker.exists()


def test_the_crafted_payload_is_live(tmp_path):
    # control for the test above: the same file does run code under plain pickle.load
    marker = tmp_path / "PWNED"
    cfr = _write_cfr(tmp_path / "evil.cfr", _Run(os.system, f"touch {marker}"))
    with gzip.open(cfr, "rb") as fh:
        pickle.load(fh)  # noqa: S301 - demonstrating the danger the importer avoids
    assert marker.exists()


def test_bad_files_are_refused_clearly(tmp_path):
    net = _net(1)
    cases = {
        "missing.cfr": (None, "does not exist"),
        "text.cfr": (b"hello", "neither gzip-compressed nor a pickle"),
        "quickie.cfr": (_pyjamas_dict(net, classifier_type="QuickieNet"), "'QuickieNet'"),
        "list.cfr": ([1, 2], "holds a list"),
        "unet-shapes.cfr": (
            _pyjamas_dict(net, classifier=_keras_weights(net)[:-2]),
            "not a ReSCU-Net",
        ),
        "wrong-level.cfr": (_pyjamas_dict(net, concatenation_level=2), "level 2"),
        "nan.cfr": (
            _pyjamas_dict(net, classifier=[w * np.nan for w in _keras_weights(net)]),
            "NaN",
        ),
        "size.cfr": (_pyjamas_dict(net, train_image_size=(50, 50)), "input size"),
    }
    for name, (content, words) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            _write_cfr(path, content)
        with pytest.raises(ModelFileError, match="cannot import PyJAMAS model") as err:
            api.import_pyjamas(path)
        assert words in str(err.value), (name, str(err.value))
    # truncated gzip stream
    good = _write_cfr(tmp_path / "good.cfr", _pyjamas_dict(net)).read_bytes()
    (tmp_path / "cut.cfr").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        api.import_pyjamas(tmp_path / "cut.cfr")


def test_existing_output_is_refused_before_reading(tmp_path):
    cfr = _write_cfr(tmp_path / "m.cfr", _pyjamas_dict(_net(1)))
    out = tmp_path / "m.rescunet"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        api.import_pyjamas(tmp_path / "evil-or-missing.cfr", out)
    assert out.read_bytes() == b"keep me"
    api.import_pyjamas(cfr, out, overwrite=True)
    assert api.load_model(out).model_config.concatenation_level == 1


def test_cli_import_pyjamas(tmp_path, capsys):
    cfr = _write_cfr(tmp_path / "ckpt_final.cfr", _pyjamas_dict(_net(0)))
    assert main(["import-pyjamas", str(cfr)]) == 0  # default output: beside it, .rescunet
    out = tmp_path / "ckpt_final.rescunet"
    assert api.load_model(out).model_config.concatenation_level == 0
    err = capsys.readouterr().err
    assert "concatenation level 0" in err and "divided by 3066" in err and "erosion width 2" in err
    assert main(["import-pyjamas", str(cfr), "-o", str(out)]) == 2  # exists: no --overwrite
    assert main(["import-pyjamas", str(cfr), "-o", str(out), "--overwrite"]) == 0


# ----------------------------------------------------------------------------- the real PyJAMAS
def _pyjamas_helpers():
    spec = importlib.util.spec_from_file_location("_pyjamas", REPO / "benchmarks" / "_pyjamas.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["_pyjamas"] = mod
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.mark.slow
def test_equivalence_with_pyjamas_itself(tmp_path):
    pj = _pyjamas_helpers()
    if pj.pyjamas_python() is None:
        pytest.skip("PyJAMAS's venv is missing (../shared/tools/pyjamas_venv.sh builds it)")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 4000, size=(4, 32, 32)).astype(np.uint16)
    prev = np.zeros((4, 32, 32), dtype=bool)
    for k in range(4):
        prev[k, 4 + k : 20 + k, 6 : 22 + k] = True
    # Level 2 saved without its level (as older PyJAMAS files): found from the weights, and the
    # branches that alternate in Keras's order are told apart. Every level, and a trained
    # model: benchmarks/bench_pyjamas_import.py.
    for level, keep in ((2, False),):
        cfr = pj.random_cfr(
            tmp_path / f"L{level}.cfr",
            concatenation_level=level,
            train_image_size=32,
            scaler=4000,
            keep_level=keep,
        )
        ref = pj.window_probabilities(cfr, images, prev)
        model = api.import_pyjamas(cfr)
        assert model.model_config.concatenation_level == level
        assert model.model_config.base_filters == 64
        with torch.no_grad():
            x = torch.from_numpy(images.astype(np.float32))[:, None] / 4000.0
            m = torch.from_numpy(prev.astype(np.float32))[:, None]
            ours = torch.softmax(model.network(x, m), 1)[:, 1].numpy()
        assert np.abs(ours - ref).max() < 1e-4, level
