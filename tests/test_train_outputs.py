"""The files of a training run: checked up front, never overwritten unasked, written as one unit,
and never lost (a full disk at the end puts the weights in the temporary folder)."""

from __future__ import annotations

import csv
import errno
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import torch

from rescunet_ij.config import TrainConfig, make_config
from rescunet_ij.data.samples import samples_from_masks
from rescunet_ij.errors import OutputExistsError, WriteError
from rescunet_ij.io.checkpoint import load_model
from rescunet_ij.sample_data import synthetic_movie
from rescunet_ij.train import TrainCallbacks, TrainingSaveError, train_model
from rescunet_ij.train import trainer as trainer_mod
from rescunet_ij.train.history import history_paths


@pytest.fixture(scope="module")
def samples():
    movie = synthetic_movie(6, (64, 64), n_objects=2, radius=(7.0, 10.0), seed=3)
    masks = {o: {t: movie.labels[t] == o for t in range(6)} for o in (1, 2)}
    return samples_from_masks(movie.images, masks, 32)


def _config(**kw):
    values = {
        "model": {"input_size": 32, "base_filters": 4},
        "epochs": 2,
        "batch_size": 8,
        "learning_rate": 3e-3,
        "validation_fraction": 0.3,
        "device": "cpu",
        "seed": 0,
    }
    values.update(kw)
    return make_config(TrainConfig, **values)


def _mount_tmpfs(folder: Path, options: str) -> None:
    folder.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")


@pytest.fixture
def small_disk(tmp_path):
    """A real 64 KiB file system: the empty write probe fits, a model (~480 KiB) does not."""
    mnt = tmp_path / "small"
    _mount_tmpfs(mnt, "size=64k")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


@pytest.fixture
def read_only_disk(tmp_path):
    """A real read-only file system (root ignores folder permissions, so chmod would not do)."""
    mnt = tmp_path / "ro"
    _mount_tmpfs(mnt, "ro,size=64k")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


@pytest.fixture
def rescue_dir(tmp_path, monkeypatch):
    """The temporary folder where weights that cannot be saved go (kept inside tmp_path)."""
    folder = tmp_path / "rescue"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _csv_epochs(path: Path) -> list[int]:
    with path.open() as fh:
        return [int(row["epoch"]) for row in csv.DictReader(fh)]


# ------------------------------------------------------------------------------ up front


@pytest.mark.parametrize("which", ["csv", "png"])
def test_existing_history_file_is_refused_before_training(tmp_path, samples, which):
    """The issue: `train` replaced <stem>.history.csv and <stem>.training.png without asking."""
    out = tmp_path / "m.rescunet"
    csv_path, png_path = history_paths(out)
    existing = csv_path if which == "csv" else png_path
    existing.write_bytes(b"precious")
    batches = []
    with pytest.raises(OutputExistsError, match=rf"{existing.name}.*--overwrite"):
        train_model(
            samples,
            _config(),
            output=out,
            callbacks=TrainCallbacks(on_batch_end=lambda i, n: batches.append(i)),
        )
    assert batches == [] and existing.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing.name]


def test_overwrite_replaces_all_three(tmp_path, samples):
    out = tmp_path / "m.rescunet"
    csv_path, png_path = history_paths(out)
    for path in (out, csv_path, png_path):
        path.write_bytes(b"old")
    res = train_model(samples, _config(epochs=1), output=out, overwrite=True)
    assert load_model(out).history == res.history
    assert _csv_epochs(csv_path) == [1]
    assert png_path.read_bytes()[:4] == b"\x89PNG"


def test_read_only_folder_fails_before_training(read_only_disk, samples):
    """The issue: training into a read-only folder ran fully, then lost the weights."""
    batches = []
    with pytest.raises(WriteError, match=r"m.rescunet.*read-only") as info:
        train_model(
            samples,
            _config(),
            output=read_only_disk / "m.rescunet",
            callbacks=TrainCallbacks(on_batch_end=lambda i, n: batches.append(i)),
        )
    assert batches == [] and info.value.errno == errno.EROFS


# ------------------------------------------------------------------------------ as one unit


def test_every_checkpoint_writes_model_and_history_together(tmp_path, samples):
    """The issue: the history CSV was left older than the model. Checked after every epoch."""
    out = tmp_path / "m.rescunet"
    csv_path, png_path = history_paths(out)
    seen = []

    def on_epoch_end(stats):
        # Checkpoints are throttled (20 times the time a save takes), so the file may lag behind
        # training, but the CSV always matches the model it sits beside.
        model = load_model(out)
        assert [h["epoch"] for h in model.history] == _csv_epochs(csv_path)
        losses = [h["val_loss"] for h in model.history]
        assert model.extra["best_epoch"] == losses.index(min(losses)) + 1
        assert model.extra["training_complete"] is False
        seen.append(len(model.history))

    res = train_model(
        samples,
        _config(epochs=3),
        output=out,
        callbacks=TrainCallbacks(on_epoch_end=on_epoch_end),
        _checkpoint_interval_s=0.0,
    )
    assert seen[0] == 1  # saved as soon as the first epoch ended
    assert _csv_epochs(csv_path) == [1, 2, 3] and load_model(out).history == res.history
    assert load_model(out).extra["training_complete"] is True and png_path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [out.name, csv_path.name, png_path.name]
    )


def test_checkpoint_keeps_an_earlier_best_when_its_turn_comes(tmp_path, samples, monkeypatch):
    """A checkpoint is due once the interval has passed and the best weights are not saved yet,
    even when the current epoch did not improve: it writes the best weights, not the current."""
    out = tmp_path / "m.rescunet"
    net = {}
    snapshot = {}

    def on_epoch_end(stats):
        if stats["epoch"] == 1:
            network = net["net"]
            snapshot.update({k: v.clone() for k, v in network.state_dict().items()})
            snapshot["saved_at_epoch_1"] = out.exists()
            with torch.no_grad():  # wreck the weights: epoch 2 cannot improve on epoch 1
                for prm in network.parameters():
                    prm.add_(torch.randn_like(prm) * 3.0)
            time.sleep(1.1)  # let the checkpoint interval pass
        if stats["epoch"] == 2:
            assert stats["best_epoch"] == 1 and not stats["improved"]
            model = load_model(out)
            assert model.extra["best_epoch"] == 1
            if not snapshot["saved_at_epoch_1"]:  # a very slow machine may save at epoch 1
                assert [h["epoch"] for h in model.history] == [1, 2]
            for k, v in model.network.state_dict().items():
                assert torch.equal(v, snapshot[k]), k

    real = trainer_mod.build_model

    def build(cfg):  # capture the trained network (the first one built)
        network = real(cfg)
        net.setdefault("net", network)
        return network

    monkeypatch.setattr(trainer_mod, "build_model", build)
    train_model(
        samples,
        _config(epochs=3),
        output=out,
        callbacks=TrainCallbacks(on_epoch_end=on_epoch_end),
        _checkpoint_interval_s=1.0,
    )


# ------------------------------------------------------------------------------ never lost


def test_full_disk_at_the_end_saves_the_weights_elsewhere(small_disk, rescue_dir, samples):
    """A real full disk: the model does not fit; the weights go to the temporary folder."""
    out = small_disk / "m.rescunet"
    with pytest.raises(TrainingSaveError) as info:
        train_model(samples, _config(epochs=1), output=out)
    err = info.value
    assert isinstance(err, WriteError) and err.errno == errno.ENOSPC
    fallback = err.fallback_path
    assert fallback is not None and fallback.parent == rescue_dir
    assert fallback.name.startswith("m.unsaved-") and fallback.suffix == ".rescunet"
    message = str(err)
    assert "cannot write" in message and "disk is full" in message
    assert str(fallback) in message and f"mv {fallback} {out}" in message
    saved = load_model(fallback)
    assert saved.history == err.result.history and saved.extra["training_complete"] is True
    assert err.result.model_path == fallback
    assert os.listdir(small_disk) == []  # nothing half-written: no model, CSV, PNG or temp file


def test_failed_rename_saves_the_weights_elsewhere(tmp_path, rescue_dir, samples, monkeypatch):
    """The same without a mount: the final rename in the output folder fails."""
    out_dir = tmp_path / "out"
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).parent == out_dir:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr("rescunet_ij.io.atomic.os.replace", replace)
    with pytest.raises(TrainingSaveError, match="No space left on device") as info:
        train_model(samples, _config(epochs=1), output=out_dir / "m.rescunet")
    fallback = info.value.fallback_path
    assert fallback is not None and fallback.parent == rescue_dir
    assert load_model(fallback).history == info.value.result.history
    assert os.listdir(out_dir) == []


def test_when_the_fallback_fails_too_the_weights_stay_in_memory(tmp_path, rescue_dir, samples):
    (tmp_path / "out").mkdir()

    def no_space(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("rescunet_ij.io.atomic.os.replace", no_space)
        with pytest.raises(TrainingSaveError, match="failed too.*only in memory") as info:
            train_model(samples, _config(epochs=1), output=tmp_path / "out" / "m.rescunet")
    err = info.value
    assert err.fallback_path is None and os.listdir(rescue_dir) == []
    x, p = torch.rand(1, 1, 32, 32), torch.zeros(1, 1, 32, 32)
    with torch.inference_mode():
        assert err.result.model.network(x, p).shape == (1, 2, 32, 32)


def test_a_failed_checkpoint_warns_and_training_goes_on(tmp_path, samples, monkeypatch):
    out = tmp_path / "m.rescunet"
    real_replace = os.replace
    state = {"epoch": 0}

    def replace(src, dst):
        if state["epoch"] < 1:  # the checkpoint after epoch 1 fails
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr("rescunet_ij.io.atomic.os.replace", replace)
    cb = TrainCallbacks(on_epoch_end=lambda s: state.__setitem__("epoch", s["epoch"]))
    with pytest.warns(UserWarning, match="could not write the checkpoint after epoch 1"):
        res = train_model(
            samples, _config(epochs=2), output=out, callbacks=cb, _checkpoint_interval_s=0.0
        )
    assert res.model_path == out and load_model(out).history == res.history
