"""Training samples (rescunet_ij.data.samples) and their folders and zips (rescunet_ij.io)."""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from rescunet_ij.data.motion import NO_SHIFT
from rescunet_ij.data.samples import sample_shifts, samples_from_masks
from rescunet_ij.errors import ConfigError, DataError, OutputExistsError
from rescunet_ij.io import training_set as ts
from rescunet_ij.io.training_set import (
    META_FILE,
    TrainingSample,
    check_training_set_output,
    check_training_zip_output,
    read_training_set,
    write_training_set,
    write_training_zip,
)
from rescunet_ij.sample_data import synthetic_movie, with_drift


@pytest.fixture(scope="module")
def movie():
    return synthetic_movie(6, (96, 96), n_objects=3, seed=3)


@pytest.fixture(scope="module")
def samples(movie):
    masks = {o: {t: movie.labels[t] == o for t in range(6)} for o in (1, 2, 3)}
    return samples_from_masks(movie.images, masks, 32)


def _assert_same(a: list[TrainingSample], b: list[TrainingSample]) -> None:
    assert [s.name for s in a] == [s.name for s in b]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.image, y.image)
        assert x.image.dtype == y.image.dtype
        np.testing.assert_array_equal(x.mask, y.mask)
        np.testing.assert_array_equal(x.prev_mask, y.prev_mask)
        assert y.mask.dtype == bool and y.prev_mask.dtype == bool


def _write_sample(root, name, image, mask, prev, fname=None):
    for sub, arr in (("image", image), ("mask", mask), ("prev_mask", prev)):
        (root / name / sub).mkdir(parents=True)
        tifffile.imwrite(root / name / sub / (fname or f"{name}.tif"), arr)


# ----------------------------------------------------------------------------- samples_from_masks


def test_samples_from_masks_crops_contain_both_masks(movie, samples):
    assert len(samples) == 3 * 5  # every object, frames 2..6
    assert samples[0].name == "t0002_obj0001"
    assert [s.name for s in samples[:3]] == ["t0002_obj0001", "t0002_obj0002", "t0002_obj0003"]
    for s in samples:
        t, obj = int(s.name[1:5]) - 1, int(s.name[-4:])
        # The crop holds the whole object in both frames (the masks lose no pixel).
        assert s.mask.sum() == (movie.labels[t] == obj).sum()
        assert s.prev_mask.sum() == (movie.labels[t - 1] == obj).sum()
        # About twice the window, clipped to the 96-pixel frame.
        assert all(32 < n <= 96 for n in s.shape)
        assert s.image.dtype == np.uint16 and s.image.shape == s.shape
        # Centred on the previous mask unless clipped by the frame border.
        rows = np.flatnonzero(s.prev_mask.any(1))
        assert rows[0] >= 16 or s.shape[0] < 64


def test_samples_from_masks_skips_empty_masks_with_warning(movie):
    masks = {
        4: {0: movie.labels[0] == 1, 1: np.zeros((96, 96), bool), 2: movie.labels[2] == 1},
        7: {3: movie.labels[3] == 2, 4: movie.labels[4] == 2},
    }
    with pytest.warns(UserWarning, match=r"object 4 frame 2 .*object 4 frame 3"):
        out = samples_from_masks(movie.images, masks, 32)
    assert [s.name for s in out] == ["t0005_obj0007"]


def test_samples_from_masks_rejects_wrong_sizes(movie):
    with pytest.raises(DataError, match="50x50.*96x96"):
        samples_from_masks(movie.images, {1: {0: np.ones((50, 50), bool)}}, 32)
    with pytest.raises(DataError, match="frame 10.*6 frame"):
        samples_from_masks(movie.images, {1: {9: movie.labels[0] == 1}}, 32)


def test_samples_from_masks_large_object_gets_a_larger_crop():
    planes = np.zeros((2, 200, 200), np.uint16)
    prev = np.zeros((200, 200), bool)
    prev[50:130, 60:100] = True  # 80 rows tall, larger than 2 x 32
    cur = np.roll(prev, 10, axis=0)
    (s,) = samples_from_masks(planes, {1: {0: prev, 1: cur}}, (32, 32))
    assert s.shape[0] >= 90 + 32 and s.mask.sum() == cur.sum() and s.prev_mask.sum() == prev.sum()


# ----------------------------------------------------------------------------- motion compensation
DRIFT = (24, 32)  # pixels per frame: more than the objects' size and the 32-pixel window's half


@pytest.fixture(scope="module")
def drifting():
    """A 5-frame movie whose field moves by DRIFT every frame (objects barely move on their own)."""
    sim = synthetic_movie(5, (96, 96), n_objects=3, radius=(7.0, 10.0), speed=0.5, seed=5)
    return with_drift(sim, DRIFT, seed=5)


def _masks(movie, objects=(1, 2, 3)):
    return {o: {t: movie.labels[t] == o for t in range(len(movie.labels))} for o in objects}


def _iou(a, b):
    return np.count_nonzero(a & b) / max(np.count_nonzero(a | b), 1)


def test_with_drift_moves_the_field_by_the_drift(drifting):
    for t in range(4):
        a, b = drifting.labels[t] == 1, drifting.labels[t + 1] == 1
        (ya, xa), (yb, xb) = (np.argwhere(m).mean(0) for m in (a, b))
        assert abs(yb - ya - DRIFT[0]) < 3 and abs(xb - xa - DRIFT[1]) < 3


@pytest.mark.parametrize("motion", ["auto", "global", "object"])
def test_prompts_are_motion_compensated(drifting, motion):
    on = samples_from_masks(drifting.images, _masks(drifting), 32, motion=motion)
    off = samples_from_masks(drifting.images, _masks(drifting), 32, motion="off")
    assert [s.name for s in on] == [s.name for s in off] and len(on) == 3 * 4
    # Uncompensated, the previous mask lies a drift away from the object: no overlap at all.
    assert max(_iou(s.mask, s.prev_mask) for s in off) == 0.0
    # Moved as the engine moves it, the prompt covers the object again (it deforms a little).
    ious = [_iou(s.mask, s.prev_mask) for s in on]
    assert min(ious) > 0.6 and np.mean(ious) > 0.8
    for s in on:  # the crop is cut around the moved prompt and still holds the whole object
        t, obj = int(s.name[1:5]) - 1, int(s.name[-4:])
        assert s.mask.sum() == (drifting.labels[t] == obj).sum()
        assert s.prev_mask.sum() == (drifting.labels[t - 1] == obj).sum()
        assert max(s.shape) <= 2 * 32 + 8  # not stretched over the drift


def test_sample_shifts_follow_the_drift_once_per_frame_pair(drifting):
    shifts = sample_shifts(drifting.images, _masks(drifting), 32, "global")
    assert sorted(shifts) == [(o, t) for o in (1, 2, 3) for t in (1, 2, 3, 4)]
    for t in (1, 2, 3, 4):  # one global estimate per frame pair, shared by its objects
        assert len({shifts[o, t] for o in (1, 2, 3)}) == 1
        s = shifts[1, t]
        assert s.source == "global" and abs(s.dy - DRIFT[0]) <= 2 and abs(s.dx - DRIFT[1]) <= 2
    assert set(sample_shifts(drifting.images, _masks(drifting), 32, "off").values()) == {NO_SHIFT}


def test_given_shifts_are_used_and_a_bad_mode_is_refused(drifting):
    masks = _masks(drifting, (1,))
    shifts = sample_shifts(drifting.images, masks, 32, "object")
    assert all(s.source == "object" for s in shifts.values())
    same = samples_from_masks(drifting.images, masks, 32, shifts=shifts, motion="off")
    for a, b in zip(same, samples_from_masks(drifting.images, masks, 32, motion="object")):
        np.testing.assert_array_equal(a.prev_mask, b.prev_mask)
    with pytest.raises(ConfigError, match="motion must be one of auto, off, global, object"):
        samples_from_masks(drifting.images, masks, 32, motion="drift")


def test_motion_of_a_multichannel_movie_is_that_of_its_channel_mean(drifting):
    # Two channels of the same scene (one dimmer): the shifts are those of the single channel.
    two = np.stack([drifting.images, drifting.images // 2], axis=1)
    masks = _masks(drifting, (2,))
    mean = drifting.images.astype(np.float32) * 0.75
    pairs = (sample_shifts(two, masks, 32, "auto"), sample_shifts(mean, masks, 32, "auto"))
    moves = [{k: (v.dy, v.dx, v.source) for k, v in p.items()} for p in pairs]
    assert moves[0] == moves[1] and len(moves[0]) == 4
    (s,) = samples_from_masks(two[:2], {2: {t: drifting.labels[t] == 2 for t in (0, 1)}}, 32)
    assert s.image.shape[0] == 2 and _iou(s.mask, s.prev_mask) > 0.6


# ----------------------------------------------------------------------------- folders


def test_round_trip_folder(tmp_path, samples):
    out = write_training_set(
        samples, tmp_path / "set", meta={"window_size": (32, 32), "source": "movie.tif"}
    )
    assert out == tmp_path / "set"
    first = samples[0].name
    mask = tifffile.imread(out / first / "mask" / f"{first}.tif")
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    back, meta = read_training_set(out)
    _assert_same(samples, back)
    assert meta["window_size"] == [32, 32] and meta["source"] == "movie.tif"
    assert meta["n_samples"] == len(samples) and "package_version" in meta and "created" in meta
    # No temporary folders are left beside the set.
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


def test_multichannel_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    m = np.zeros((40, 40), bool)
    m[10:20, 10:25] = True
    s = TrainingSample(rng.integers(0, 255, (3, 40, 40)).astype(np.uint8), m, np.roll(m, 2, 0), "a")
    back, _ = read_training_set(write_training_set([s], tmp_path / "s"))
    assert back[0].image.shape == (3, 40, 40) and back[0].channels == 3
    np.testing.assert_array_equal(back[0].image, s.image)


def test_pyjamas_style_set(tmp_path):
    """0/1 and bool masks, float and 8-bit images, any file name, no metadata file."""
    m = np.zeros((30, 30), np.uint8)
    m[5:15, 8:20] = 1
    _write_sample(
        tmp_path, "cell_1", np.full((30, 30), 0.5, np.float32), m, np.roll(m, 1, 1), "x.tiff"
    )
    _write_sample(
        tmp_path,
        "cell_2",
        np.arange(900, dtype=np.uint8).reshape(30, 30),
        m.astype(bool),
        m * 255,
        "whatever.TIF",
    )
    samples, meta = read_training_set(tmp_path)
    assert meta == {}
    assert [s.name for s in samples] == ["cell_1", "cell_2"]
    assert samples[0].image.dtype == np.float32 and samples[1].image.dtype == np.uint8
    for s in samples:
        assert s.mask.dtype == bool and s.mask.sum() == 120 and s.prev_mask.sum() == 120


def test_write_refuses_existing_folder(tmp_path, samples):
    out = write_training_set(samples[:2], tmp_path / "set")
    with pytest.raises(OutputExistsError, match="set"):
        write_training_set(samples[2:4], out)
    assert [s.name for s in read_training_set(out)[0]] == [s.name for s in samples[:2]]
    write_training_set(samples[2:4], out, overwrite=True)
    assert [s.name for s in read_training_set(out)[0]] == [s.name for s in samples[2:4]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
    # An existing empty folder is fine; a folder of other files is never replaced.
    (tmp_path / "empty").mkdir()
    write_training_set(samples[:1], tmp_path / "empty")
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match="not a training set"):
        write_training_set(samples[:1], other, overwrite=True)
    assert (other / "holiday.jpg").exists()


def test_crash_while_writing_leaves_nothing_and_keeps_the_old_set(tmp_path, samples, monkeypatch):
    out = write_training_set(samples[:2], tmp_path / "set")
    calls = {"n": 0}
    real = ts._write_tiff

    def flaky(target, array):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        real(target, array)

    monkeypatch.setattr(ts, "_write_tiff", flaky)
    with pytest.raises(DataError, match="disk full.*Nothing was written"):
        write_training_set(samples[2:5], out, overwrite=True)
    assert [s.name for s in read_training_set(out)[0]] == [s.name for s in samples[:2]]
    calls["n"] = 0
    with pytest.raises(DataError, match="disk full"):
        write_training_set(samples, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]

    # An interruption (not an OSError) is not dressed up, and cleans up the same way.
    def interrupted(target, array):
        raise KeyboardInterrupt

    monkeypatch.setattr(ts, "_write_tiff", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_training_set(samples[2:5], out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
    assert [s.name for s in read_training_set(out)[0]] == [s.name for s in samples[:2]]


def test_a_sample_that_cannot_be_written_leaves_no_folder_behind(tmp_path, samples):
    """A real failure halfway: the third sample's file name is too long for the file system."""
    longest = os.pathconf(tmp_path, "PC_NAME_MAX")
    bad = samples[2]
    # The folder name fits; "<name>.tif" inside it does not.
    too_long = TrainingSample(bad.image, bad.mask, bad.prev_mask, "x" * (longest - 2))
    with pytest.raises(DataError, match="cannot write the training set .*new.*Nothing was written"):
        write_training_set([*samples[:2], too_long, *samples[3:5]], tmp_path / "new")
    assert list(tmp_path.iterdir()) == []
    # Replacing an existing set: the old one stays, complete, and nothing else is left.
    old = write_training_set(samples[:2], tmp_path / "set")
    with pytest.raises(DataError, match="Nothing was written"):
        write_training_set([*samples[2:4], too_long], old, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["set"]
    assert [s.name for s in read_training_set(old)[0]] == [s.name for s in samples[:2]]


def test_failed_final_rename_puts_the_old_set_back(tmp_path, samples, monkeypatch):
    out = write_training_set(samples[:2], tmp_path / "set")
    real_rename = Path.rename

    def rename(self, target):
        if self.name.endswith(".tmp") and Path(target) == out:
            raise OSError("rename refused")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(DataError, match="rename refused"):
        write_training_set(samples[2:4], out, overwrite=True)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["set"]
    assert [s.name for s in read_training_set(out)[0]] == [s.name for s in samples[:2]]


def test_public_names_from_their_homes():
    import importlib.util

    import rescunet_ij.data as data
    import rescunet_ij.io as rio

    assert rio.read_training_set is read_training_set and rio.TrainingSample is TrainingSample
    assert rio.META_FILE == META_FILE == "rescunet_training_set.json"
    assert data.samples_from_masks is samples_from_masks and data.TrainingSample is TrainingSample
    # The format lives in io/ only: no second home to drift apart.
    assert importlib.util.find_spec("rescunet_ij.data.training_set") is None


def test_non_numeric_image_is_refused_before_writing(tmp_path, samples):
    s = samples[0]
    odd = TrainingSample(s.image.astype(complex), s.mask, s.prev_mask, "odd")
    with pytest.raises(DataError, match="sample odd: the image holds complex128 values"):
        write_training_set([samples[1], odd], tmp_path / "set")
    with pytest.raises(DataError, match="complex128"):
        write_training_zip([odd], tmp_path / "t.zip")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- checking outputs


def test_check_training_set_output(tmp_path, samples):
    assert check_training_set_output(tmp_path / "new") == tmp_path / "new"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    (tmp_path / "empty").mkdir()
    check_training_set_output(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="it is a file"):
        check_training_set_output(tmp_path / "file", overwrite=True)
    existing = write_training_set(samples[:1], tmp_path / "set")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_training_set_output(existing)
    assert check_training_set_output(existing, overwrite=True) == existing
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match="not a training set"):
        check_training_set_output(tmp_path / "photos", overwrite=True)


def test_check_training_zip_output(tmp_path, samples):
    assert check_training_zip_output(tmp_path / "sub" / "t.zip") == tmp_path / "sub" / "t.zip"
    assert list(tmp_path.iterdir()) == []
    z = write_training_zip(samples[:1], tmp_path / "t.zip")
    with pytest.raises(OutputExistsError, match="overwrite"):
        check_training_zip_output(z)
    assert check_training_zip_output(z, overwrite=True) == z
    (tmp_path / "folder.zip").mkdir()
    with pytest.raises(DataError, match="it is a folder"):
        check_training_zip_output(tmp_path / "folder.zip", overwrite=True)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="notes.txt is a file, not a folder"):
        check_training_zip_output(tmp_path / "notes.txt" / "t.zip")


def test_both_outputs_checked_before_any_work(tmp_path, samples):
    """The make-training-set flow (issue 7.5): an existing zip refuses before a folder is made."""
    z = write_training_zip(samples[:1], tmp_path / "existing.zip")
    before = z.read_bytes()
    out = tmp_path / "ts_new"
    with pytest.raises(OutputExistsError):
        check_training_set_output(out)
        check_training_zip_output(z)
        write_training_set(samples, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.zip"]
    assert z.read_bytes() == before
    # write_training_zip itself refuses before reading its input (which does not even exist).
    with pytest.raises(OutputExistsError):
        write_training_zip(tmp_path / "no_such_set", z)


def test_write_rejects_bad_samples(tmp_path, samples):
    with pytest.raises(DataError, match="no training samples"):
        write_training_set([], tmp_path / "a")
    with pytest.raises(DataError, match="unique"):
        write_training_set([samples[0], samples[0]], tmp_path / "a")
    bad = TrainingSample(np.zeros((10, 10)), np.zeros((9, 10), bool), np.zeros((10, 10), bool), "b")
    with pytest.raises(DataError, match="10x10.*9x10"):
        write_training_set([bad], tmp_path / "a")
    with pytest.raises(DataError, match="folder name"):
        write_training_set(
            [TrainingSample(samples[0].image, samples[0].mask, samples[0].prev_mask, "../x")],
            tmp_path / "a",
        )
    assert not (tmp_path / "a").exists()


# ----------------------------------------------------------------------------- zips


def test_zip_round_trip(tmp_path, samples):
    z = write_training_zip(samples, tmp_path / "testtrain.zip")
    names = zipfile.ZipFile(z).namelist()
    first = samples[0].name
    assert f"{first}/image/{first}.tif" in names and META_FILE in names
    back, meta = read_training_set(z)
    _assert_same(samples, back)
    assert meta["n_samples"] == len(samples)
    with pytest.raises(OutputExistsError):
        write_training_zip(samples, z)
    # From a folder, keeping its metadata.
    folder = write_training_set(samples, tmp_path / "set", meta={"source": "m.tif"})
    z2 = write_training_zip(folder, tmp_path / "t2.zip")
    back2, meta2 = read_training_set(z2)
    _assert_same(samples, back2)
    assert meta2["source"] == "m.tif"


def test_failed_zip_write_leaves_no_file(tmp_path, samples, monkeypatch):
    z = write_training_zip(samples[:2], tmp_path / "t.zip")
    before = z.read_bytes()

    def broken(target, array):
        raise OSError("disk full")

    monkeypatch.setattr(ts, "_write_tiff", broken)
    with pytest.raises(OSError, match="disk full"):
        write_training_zip(samples, tmp_path / "new.zip")
    with pytest.raises(OSError, match="disk full"):
        write_training_zip(samples, z, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.zip"]
    assert z.read_bytes() == before


def test_zip_path_index_lists_like_zipfile_path(tmp_path, samples):
    """The reader's zipfile.Path with an index lists folders exactly as zipfile.Path does."""
    z = tmp_path / "nested.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("top/a/image/a.tif", b"1")  # folders only implied
        zf.writestr("top/a/mask/", b"")  # an explicit folder entry
        zf.writestr("top/b.txt", b"2")
        zf.writestr("c.json", b"3")
    with zipfile.ZipFile(z) as zf:
        ours = ts._ZipPath(zf)

        def walk(node):
            return sorted(
                (c.name, c.is_dir(), walk(c) if c.is_dir() else None) for c in node.iterdir()
            )

        with zipfile.ZipFile(z) as zf2:
            assert walk(ours) == walk(zipfile.Path(zf2))
        assert sorted(c.name for c in (ours / "top" / "a").iterdir()) == ["image", "mask"]
        with pytest.raises(ValueError):
            list((ours / "c.json").iterdir())


def test_zip_with_backslash_names_is_refused_clearly(tmp_path, samples):
    z = tmp_path / "windows.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("t0002_obj0001\\image\\t0002_obj0001.tif", b"x")
    with pytest.raises(DataError, match=r"backslashes.*export-training-zip"):
        read_training_set(z)


def test_zip_with_one_top_folder(tmp_path, samples):
    folder = write_training_set(samples[:3], tmp_path / "mytrain")
    z = tmp_path / "packed.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(tmp_path).as_posix())  # includes folder entries
        zf.writestr("__MACOSX/._junk", b"junk")
    back, meta = read_training_set(z)
    _assert_same(samples[:3], back)
    assert meta["n_samples"] == 3


# ----------------------------------------------------------------------------- bad input


def test_read_errors(tmp_path, samples):
    with pytest.raises(DataError, match="does not exist"):
        read_training_set(tmp_path / "nope")
    f = tmp_path / "notes.txt"
    f.write_text("hi")
    with pytest.raises(DataError, match="not a folder or a .zip"):
        read_training_set(f)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no sample folders.*image/, mask/ and prev_mask/"):
        read_training_set(tmp_path / "empty")

    good = write_training_set(samples[:2], tmp_path / "good")
    name = samples[0].name
    with pytest.raises(DataError, match="ONE sample folder"):
        read_training_set(good / name)


def _fresh(tmp_path, samples, tag):
    return write_training_set(samples[:2], tmp_path / tag)


def test_read_errors_in_samples(tmp_path, samples):
    name = samples[0].name
    d = _fresh(tmp_path, samples, "a")
    for p in (d / name / "prev_mask").iterdir():
        p.unlink()
    (d / name / "prev_mask").rmdir()
    with pytest.raises(DataError, match=rf"{name} has no prev_mask/ folder"):
        read_training_set(d)

    d = _fresh(tmp_path, samples, "b")
    (d / name / "mask" / f"{name}.tif").unlink()
    with pytest.raises(DataError, match=rf"{name}/mask holds no TIFF"):
        read_training_set(d)

    d = _fresh(tmp_path, samples, "c")
    tifffile.imwrite(d / name / "image" / "second.tif", samples[0].image)
    with pytest.raises(DataError, match="2 TIFFs"):
        read_training_set(d)

    d = _fresh(tmp_path, samples, "d")
    tifffile.imwrite(d / name / "mask" / f"{name}.tif", np.ones((7, 9), np.uint8))
    h, w = samples[0].shape
    with pytest.raises(DataError, match=rf"image of {h}x{w} pixels, a mask of 7x9"):
        read_training_set(d)

    d = _fresh(tmp_path, samples, "e")
    (d / name / "image" / f"{name}.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(DataError, match="cannot read"):
        read_training_set(d)

    d = _fresh(tmp_path, samples, "f")
    (d / "stray_folder").mkdir()
    with pytest.raises(DataError, match="stray_folder has no image/ folder"):
        read_training_set(d)


def test_empty_masks_are_skipped_or_fatal(tmp_path):
    m = np.zeros((20, 20), np.uint8)
    m[5:10, 5:10] = 255
    z = np.zeros_like(m)
    _write_sample(tmp_path / "s", "ok", m, m, m)
    _write_sample(tmp_path / "s", "no_target", m, z, m)
    _write_sample(tmp_path / "s", "no_prompt", m, m, z)
    with pytest.warns(UserWarning, match="no_prompt .*prev_mask.*no_target .*mask"):
        samples, _ = read_training_set(tmp_path / "s")
    assert [s.name for s in samples] == ["ok"]

    _write_sample(tmp_path / "e", "x", m, z, z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="every sample"):
            read_training_set(tmp_path / "e")


def test_bad_metadata_is_ignored_with_warning(tmp_path, samples):
    d = write_training_set(samples[:1], tmp_path / "s")
    (d / META_FILE).write_text("{broken")
    with pytest.warns(UserWarning, match="ignoring"):
        back, meta = read_training_set(d)
    assert meta == {} and len(back) == 1
    (d / META_FILE).write_text(json.dumps({"window_size": [48, 48]}))
    assert read_training_set(d)[1] == {"window_size": [48, 48]}
