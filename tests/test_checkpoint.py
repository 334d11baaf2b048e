"""Tests of the model file (rescunet_ij.io.checkpoint) and atomic writes (rescunet_ij.io.atomic)."""

from __future__ import annotations

import gzip
import json
import pickle
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import rescunet_ij
from rescunet_ij.config import ModelConfig, NormalizationConfig, TrainConfig
from rescunet_ij.errors import ConfigError, ModelFileError, OutputExistsError
from rescunet_ij.io.atomic import atomic_write, atomic_write_bytes, atomic_write_text
from rescunet_ij.io.checkpoint import LoadedModel, load_model, model_from_network, save_model
from rescunet_ij.model import ReSCUNet, build_model


@pytest.fixture
def mcfg():
    return ModelConfig(base_filters=4, concatenation_level=1, input_size=(32, 48))


@pytest.fixture
def net(mcfg):
    torch.manual_seed(0)
    return build_model(mcfg)


@pytest.fixture
def saved(tmp_path, net, mcfg):
    return save_model(tmp_path / "m.rescunet", net, mcfg, NormalizationConfig())


def _inputs():
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 1, 32, 48, generator=g), (
        torch.rand(2, 1, 32, 48, generator=g) > 0.5
    ).float()


def _rewrite(src, dst, *, meta_update=None, drop_meta=(), tensor_update=None):
    """Copy a model file, changing metadata or tensors (to craft bad files)."""
    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k).clone() for k in f.keys()}
    meta.update(meta_update or {})
    for k in drop_meta:
        meta.pop(k, None)
    if tensor_update:
        tensor_update(tensors)
    save_file(tensors, str(dst), metadata=meta)
    return dst


# ----------------------------------------------------------------------------- round trip


def test_round_trip_outputs_and_metadata(tmp_path, net, mcfg):
    tcfg = TrainConfig(model=mcfg, erosion_width=2, subimage_size=(40, 40), epochs=3)
    norm = NormalizationConfig(mode="max", max_value=4095.0)
    history = [
        {"epoch": 1, "loss": 0.5, "val_loss": float("nan")},
        {"epoch": 2, "loss": torch.tensor(0.25)},
    ]
    path = save_model(
        tmp_path / "sub" / "model.rescunet",
        net,
        mcfg,
        norm,
        train_config=tcfg,
        history=history,
        extra={"note": "hi"},
    )
    assert path.is_file()
    loaded = load_model(path)
    assert isinstance(loaded, LoadedModel)
    assert isinstance(loaded.network, ReSCUNet)
    assert not loaded.network.training
    assert loaded.model_config == mcfg
    assert loaded.normalization == norm
    assert loaded.train_config == tcfg
    assert loaded.history[0]["epoch"] == 1 and loaded.history[1]["loss"] == 0.25
    assert loaded.package_version == rescunet_ij.__version__
    assert loaded.path == path
    assert loaded.extra == {"note": "hi"}
    assert loaded.erosion_width == 2
    assert loaded.window_size == (40, 40)

    net.eval()
    image, mask = _inputs()
    with torch.no_grad():
        assert torch.equal(net(image, mask), loaded.network(image, mask))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert all(f.get_tensor(k).dtype == torch.float32 for k in f.keys())
    assert meta["format"] == "rescunet-ij-model" and meta["format_version"] == "1"
    assert "T" in meta["created"]


def test_defaults_without_train_config(saved, mcfg):
    loaded = load_model(saved, device="cpu")
    assert loaded.train_config is None
    assert loaded.history == [] and loaded.extra == {}
    assert loaded.erosion_width == 0
    assert loaded.window_size == (32, 48)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch-internal, on importing dynamo
def test_compiled_prefix_is_stripped(tmp_path, net, mcfg):
    compiled = torch.compile(net)  # wrapping only; nothing is compiled until it is called
    path = save_model(tmp_path / "c.rescunet", compiled, mcfg, NormalizationConfig())
    with safe_open(str(path), framework="pt") as f:
        assert not any("_orig_mod" in k for k in f.keys())
    assert isinstance(load_model(path).network, ReSCUNet)


def test_any_suffix_is_accepted(tmp_path, net, mcfg):
    path = save_model(tmp_path / "weights.bin", net, mcfg, NormalizationConfig())
    assert isinstance(load_model(path).network, ReSCUNet)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch-internal, on importing dynamo
def test_model_from_network(net, mcfg):
    net.train()
    lm = model_from_network(torch.compile(net), mcfg, NormalizationConfig(), history=[{"epoch": 1}])
    assert lm.network is net and not net.training
    assert lm.path is None and lm.history == [{"epoch": 1}] and lm.erosion_width == 0
    assert lm.package_version == rescunet_ij.__version__
    with pytest.raises(ConfigError, match="does not match"):
        model_from_network(net, ModelConfig(base_filters=8), NormalizationConfig())


def test_save_refuses_wrong_config(tmp_path, net, mcfg):
    with pytest.raises(ConfigError, match="does not match"):
        save_model(tmp_path / "x.rescunet", net, ModelConfig(base_filters=8), NormalizationConfig())
    with pytest.raises(ConfigError, match="train_config.model"):
        save_model(
            tmp_path / "x.rescunet",
            net,
            mcfg,
            NormalizationConfig(),
            train_config=TrainConfig(model=ModelConfig(base_filters=8)),
        )
    assert not (tmp_path / "x.rescunet").exists()


# ----------------------------------------------------------------------------- overwrite / atomic


def test_overwrite_false_refuses_and_keeps_file(saved, net, mcfg):
    before = saved.read_bytes()
    with pytest.raises(OutputExistsError) as info:
        save_model(saved, net, mcfg, NormalizationConfig(), overwrite=False)
    assert str(saved) in str(info.value) and "overwrite" in str(info.value)
    assert saved.read_bytes() == before
    save_model(saved, net, mcfg, NormalizationConfig(), overwrite=True)  # allowed


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old content")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target) as fh:
            fh.write(b"partial new")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]  # temp file removed


def test_atomic_write_success_and_helpers(tmp_path):
    target = tmp_path / "deep" / "f.txt"
    atomic_write_text(target, "héllo\n")
    assert target.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(target, b"bytes")
    assert target.read_bytes() == b"bytes"
    with pytest.raises(OutputExistsError):
        atomic_write_bytes(target, b"again", overwrite=False)
    assert target.read_bytes() == b"bytes"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(target, "a"):
            pass


def test_save_model_failure_keeps_old_model(saved, net, mcfg, monkeypatch):
    before = saved.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("rescunet_ij.io.atomic.os.replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_model(saved, net, mcfg, NormalizationConfig())
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]
    load_model(saved)


# ----------------------------------------------------------------------------- refusing bad files


class _Evil:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_evil_pickle_really_runs_code(tmp_path):
    # Sanity check of the test itself: unpickling the payload does create the marker.
    marker = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Evil(marker))).close()
    assert marker.exists()


@pytest.mark.parametrize("kind", ["torch_save", "raw_pickle"])
def test_refuses_pickles_without_running_them(tmp_path, kind):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.rescunet"
    if kind == "torch_save":
        torch.save({"state_dict": {"w": torch.zeros(2)}, "evil": _Evil(marker)}, path)
        assert path.read_bytes()[:4] == b"PK\x03\x04"
    else:
        path.write_bytes(pickle.dumps({"evil": _Evil(marker)}, protocol=4))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    msg = str(info.value)
    assert str(path) in msg and "pickle" in msg.lower() and "code" in msg
    assert not marker.exists()


def test_refuses_hdf5(tmp_path):
    path = tmp_path / "old.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(ModelFileError, match="HDF5"):
        load_model(path)


def test_refuses_random_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("this is not a model at all, just some text")
    with pytest.raises(ModelFileError, match="not a safetensors file"):
        load_model(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.rescunet")
    with pytest.raises(ModelFileError, match="folder"):
        load_model(tmp_path)


@pytest.mark.parametrize("keep", [0, 5, 20, 0.5, -1])
def test_truncated_file(saved, keep):
    data = saved.read_bytes()
    n = (
        int(len(data) * keep)
        if isinstance(keep, float)
        else (len(data) + keep if keep < 0 else keep)
    )
    saved.write_bytes(data[:n])
    with pytest.raises(ModelFileError) as info:
        load_model(saved)
    assert str(saved) in str(info.value)
    assert (
        "truncated" in str(info.value)
        or "empty" in str(info.value)
        or "too short" in str(info.value)
    )


def test_corrupted_header(saved):
    data = bytearray(saved.read_bytes())
    data[9:14] = b"\xff\xfe!!#"  # break the JSON header
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupted"):
        load_model(saved)


def test_trailing_garbage(saved):
    saved.write_bytes(saved.read_bytes() + b"junk")
    with pytest.raises(ModelFileError, match="corrupted"):
        load_model(saved)


def test_newer_format_version(tmp_path, saved):
    bad = _rewrite(saved, tmp_path / "new.rescunet", meta_update={"format_version": "7"})
    with pytest.raises(ModelFileError) as info:
        load_model(bad)
    msg = str(info.value)
    assert "newer rescunet-ij (format 7" in msg and "pip install -U rescunet-ij" in msg


@pytest.mark.parametrize("fmt", [None, "something-else"])
def test_missing_or_unknown_format(tmp_path, saved, fmt):
    update = {} if fmt is None else {"format": fmt}
    drop = ("format",) if fmt is None else ()
    bad = _rewrite(saved, tmp_path / "f.rescunet", meta_update=update, drop_meta=drop)
    with pytest.raises(ModelFileError, match="not a rescunet-ij model"):
        load_model(bad)


def test_plain_safetensors_without_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(ModelFileError, match="not a rescunet-ij model"):
        load_model(path)


def test_weights_do_not_match_architecture(tmp_path, saved):
    bigger = ModelConfig(base_filters=8, concatenation_level=1, input_size=(32, 48))
    bad = _rewrite(
        saved, tmp_path / "a.rescunet", meta_update={"model_config": bigger.model_dump_json()}
    )
    with pytest.raises(ModelFileError, match="do not match its architecture") as info:
        load_model(bad)
    assert "wrong shape" in str(info.value)

    bad2 = _rewrite(saved, tmp_path / "b.rescunet", tensor_update=lambda t: t.pop("head.bias"))
    with pytest.raises(ModelFileError, match="missing tensor"):
        load_model(bad2)


def test_invalid_config_metadata(tmp_path, saved):
    bad = _rewrite(
        saved,
        tmp_path / "c.rescunet",
        meta_update={"model_config": json.dumps({"base_filters": 3})},
    )
    with pytest.raises(ModelFileError, match="model_config"):
        load_model(bad)


def test_nan_weights(tmp_path, saved):
    def poison(t):
        t["head.bias"][0] = float("nan")

    bad = _rewrite(saved, tmp_path / "n.rescunet", tensor_update=poison)
    with pytest.raises(ModelFileError, match="NaN"):
        load_model(bad)


def test_header_length_is_little_endian_u64(saved):
    # Guards our header parser against drifting from the safetensors layout.
    data = saved.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    assert header["__metadata__"]["format"] == "rescunet-ij-model"


# ----------------------------------------------------------------------------- format sniffing
# A safetensors file starts with its header length (little-endian u64): about 1 file in 256 starts
# with 0x80, the byte a pickle starts with. Safetensors must be recognised first (issue 7).


def _header_length(data: bytes) -> int:
    return struct.unpack("<Q", data[:8])[0]


def _with_header_length_low_byte(data: bytes, low: int) -> bytes:
    """The same model file with its `extra` metadata padded so the header length ends in `low`."""
    n = _header_length(data)
    header, body = json.loads(data[8 : 8 + n]), data[8 + n :]
    header["__metadata__"]["extra"] = json.dumps({"pad": ""})
    base = len(json.dumps(header).encode())
    header["__metadata__"]["extra"] = json.dumps({"pad": "x" * ((low - base) % 256)})
    text = json.dumps(header).encode()  # each "x" adds one byte; safetensors needs no alignment
    assert len(text) % 256 == low
    return struct.pack("<Q", len(text)) + text + body


def test_models_load_whatever_their_header_length_starts_with(tmp_path, saved, net):
    data = saved.read_bytes()
    image, mask = _inputs()
    net.eval()
    with torch.no_grad():
        expected = net(image, mask)
    path = tmp_path / "padded.rescunet"
    for low in range(256):
        path.write_bytes(_with_header_length_low_byte(data, low))
        assert path.read_bytes()[0] == low
        loaded = load_model(path)
        assert len(loaded.extra["pad"]) < 256
        if low in (0x80, 0x00, 0xFF):
            with torch.no_grad():
                assert torch.equal(loaded.network(image, mask), expected)


def test_save_model_file_starting_with_0x80_opens_in_info(tmp_path, net, mcfg, capsys):
    from rescunet_ij import cli

    # save_model pads the header to a multiple of 8 bytes; find an `extra` that makes it 0x..80.
    path = tmp_path / "m.rescunet"
    for k in range(0, 256, 8):
        save_model(path, net, mcfg, NormalizationConfig(), extra={"pad": "x" * k})
        if path.read_bytes()[0] == 0x80:
            break
    head = path.read_bytes()[:2]
    assert head[0] == 0x80, "no padding gave a header length ending in 0x80"
    assert load_model(path).model_config == mcfg
    assert cli.main(["info", str(path)]) == 0
    assert "architecture" in capsys.readouterr().err


def test_safetensors_prefixes_are_never_taken_for_pickles(tmp_path):
    from rescunet_ij.io.checkpoint import _MAX_HEADER, _pickle_protocol

    # Every header length whose bytes begin like PROTO 2..5 (0x80, 2..5), up to the size limit:
    # none decodes as a pickle, and a file cut inside such a header is reported as truncated.
    json_start = b'{"__metadata__":{"format":"rescunet-ij-model","format_version":"1"}}'
    for protocol in range(2, 6):
        for high in range((_MAX_HEADER >> 16) + 1):
            n = 0x80 | protocol << 8 | high << 16
            if n > _MAX_HEADER:
                break
            head = struct.pack("<Q", n) + json_start
            assert _pickle_protocol(head, size=n) is None, hex(n)
    path = tmp_path / "cut.rescunet"
    path.write_bytes(struct.pack("<Q", 0x460280) + json_start)
    with pytest.raises(ModelFileError, match="truncated"):
        load_model(path)


def test_pickle_sniffing_names_real_pickles_and_nothing_else():
    import random

    from rescunet_ij.io.checkpoint import _HEAD_BYTES, _pickle_protocol

    for protocol in range(2, 6):
        for obj in (None, {"a": 1}, "x" * 1000, list(range(100)), b"abc" * 50, 3.5, _Evil("m")):
            data = pickle.dumps(obj, protocol=protocol)
            assert _pickle_protocol(data[:_HEAD_BYTES], len(data)) == protocol, (protocol, obj)
    assert _pickle_protocol(b"\x80\x02.", 3) is None  # PROTO then STOP: nothing in it
    assert _pickle_protocol(b"\x80\x03\x00\x00", 4) is None  # 0x00 is no opcode
    assert _pickle_protocol(b"\x80\x02\x95" + bytes(8) + b"N.", 13) is None  # FRAME: protocol 4+
    assert _pickle_protocol(b"\x80\x01N.", 4) is None  # protocol 1 has no PROTO opcode
    rng = random.Random(0)  # random bytes after PROTO: never an exception
    for _ in range(2000):
        tail = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        head = b"\x80" + bytes([rng.randint(2, 5)]) + tail
        assert _pickle_protocol(head, rng.choice([len(head), 10**6])) in (None, 2, 3, 4, 5)


def test_truncated_file_whose_header_length_starts_with_0x80(saved):
    data = _with_header_length_low_byte(saved.read_bytes(), 0x80)
    saved.write_bytes(data[:100])
    with pytest.raises(ModelFileError, match="truncated"):
        load_model(saved)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("payload", ["dict", "long_string", "none"])
def test_refuses_pickles_of_every_protocol_unread(tmp_path, protocol, payload):
    marker = tmp_path / "pwned"
    obj = {
        "dict": {"weights": [1.0] * 10, "evil": _Evil(marker)},
        "long_string": "w" * 5000,
        "none": None,
    }[payload]
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    msg = str(info.value)
    assert f"a Python pickle (protocol {protocol}" in msg and "arbitrary code" in msg
    assert not marker.exists()


def test_refuses_gzip_compressed_pickle_unread(tmp_path):
    # PyJAMAS .cfr model files are gzip-compressed pickles.
    marker = tmp_path / "pwned"
    path = tmp_path / "model.cfr"
    path.write_bytes(gzip.compress(pickle.dumps({"evil": _Evil(marker)}, protocol=4)))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    msg = str(info.value)
    assert "gzip" in msg and ".cfr" in msg and "arbitrary code" in msg and str(path) in msg
    assert "rescunet-ij import-pyjamas" in msg  # the safe way to open it
    assert not marker.exists()


def test_bytes_after_0x80_that_are_no_pickle_are_not_called_one(tmp_path):
    path = tmp_path / "odd.bin"
    path.write_bytes(b"\x80\x03\x00\x00\x00\x00\x00\x00xyz and more bytes")
    with pytest.raises(ModelFileError, match="not a safetensors file") as info:
        load_model(path)
    assert "pickle (" not in str(info.value)


# ----------------------------------------------------------------------------- absurd metadata
# A model file whose JSON holds absurd sizes used to pass `info` and then fail deep inside torch or
# numpy (storage size overflow, "array is too big", 186 GiB requested). It is refused on opening.


def _model_json(**values):
    data = json.loads(ModelConfig(base_filters=4, concatenation_level=1).model_dump_json())
    data.update(values)
    return json.dumps(data).replace("1000000000.0", "1e9")


@pytest.mark.parametrize(
    "key, text, field, allowed",
    [
        ("model_config", _model_json(input_size=[1e9, 1e9]), "input size", "16..1024"),
        ("model_config", _model_json(input_size=4096), "input size", "16..1024"),
        ("model_config", _model_json(base_filters=10**6), "base filters", "4..128"),
        ("train_config", '{"subimage_size": 1e9}', "subimage size", "8..4096"),
        ("train_config", '{"subimage_size": 1e5}', "subimage size", "8..4096"),
        ("train_config", '{"batch_size": 1e9}', "batch size", "1..4096"),
        ("train_config", '{"epochs": 1e12}', "epochs", "1..100000"),
        ("normalization", '{"mode": "max", "max_value": 1e999}', "max value", "finite"),
    ],
)
def test_refuses_out_of_range_metadata(tmp_path, saved, key, text, field, allowed, capsys):
    from rescunet_ij import cli

    if key == "train_config":  # the rest of a valid train config, with the absurd value
        values = json.loads(text)
        tcfg = json.loads(TrainConfig(model=load_model(saved).model_config).model_dump_json())
        text = json.dumps({**tcfg, **values}).replace("1000000000.0", "1e9")
    bad = _rewrite(saved, tmp_path / "absurd.rescunet", meta_update={key: text})
    with pytest.raises(ModelFileError) as info:
        load_model(bad)
    msg = str(info.value)
    assert f"'{key}' metadata is invalid or out of range" in msg
    assert f"{field}:" in msg and allowed in msg and str(bad) in msg, msg
    assert cli.main(["info", str(bad)]) == 2  # `info` refuses it too, without a traceback
    assert field in capsys.readouterr().err
