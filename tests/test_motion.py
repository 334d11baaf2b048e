"""Motion compensation: known shifts found exactly, wrong ones refused, drifting movies followed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_propagate import make_propagator, movie_of

from rescunet_ij import api, geometry
from rescunet_ij.config import PropagateConfig
from rescunet_ij.data.motion import (
    NO_SHIFT,
    Shift,
    confirm_field_shift,
    estimate_global_shift,
    estimate_object_shift,
    shift_mask,
)
from rescunet_ij.demo import labels_to_outlines
from rescunet_ij.propagate import ObjectLostWarning
from rescunet_ij.sample_data import apply_drift, drift_random_walk, synthetic_movie
from rescunet_ij.types import ObjectMask, ObjectStatus


@pytest.fixture(scope="module")
def sim():
    return synthetic_movie(2, (256, 256), n_objects=6, seed=3)


def _moved(frame: np.ndarray, dy: int, dx: int, seed: int = 0) -> np.ndarray:
    """``frame`` as the camera sees it after the stage moved by (dy, dx), with fresh noise."""
    drifted = apply_drift(np.stack([frame, frame]), np.array([[0, 0], [dy, dx]]), seed=seed)
    return drifted.images[1].astype(np.float32) + np.random.default_rng(seed).normal(
        0, 30, frame.shape
    )


# ------------------------------------------------------------------------------ global shift


@pytest.mark.parametrize(
    "shift", [(1, 0), (0, -1), (3, -2), (10, 25), (-60, 40), (100, -90), (-100, 100), (37, 81)]
)
def test_global_shift_is_found_exactly(sim, shift):
    a = sim.images[0].astype(np.float32)
    found = estimate_global_shift(a, _moved(sim.images[0], *shift))
    assert (found.dy, found.dx) == shift and found.source == "global" and found.score > 0.9


def test_global_shift_of_a_large_frame_is_found_at_full_resolution(sim):
    big = np.kron(sim.images[0], np.ones((4, 4), np.uint16))  # 1024 x 1024: block-averaged first
    for shift in ((37, -81), (-3, 2), (99, 100)):
        found = estimate_global_shift(big.astype(np.float32), _moved(big, *shift))
        assert (found.dy, found.dx) == shift


def test_no_shift_for_still_or_unrelated_frames(sim):
    a = sim.images[0].astype(np.float32)
    assert estimate_global_shift(a, _moved(sim.images[0], 0, 0)) is NO_SHIFT
    other = synthetic_movie(1, (256, 256), n_objects=6, seed=99).images[0].astype(np.float32)
    assert estimate_global_shift(a, other) is NO_SHIFT  # different samples: no translation
    assert estimate_global_shift(a, _moved(sim.images[0], 40, 0), max_shift=20) is NO_SHIFT


# ------------------------------------------------------------------------------ objects


def _move_object(image: np.ndarray, labels: np.ndarray, oid: int, dy: int, dx: int) -> np.ndarray:
    out = image.astype(np.float32).copy()
    obj = labels == oid
    out[obj] = np.median(image)
    ys, xs = np.nonzero(obj)
    out[ys + dy, xs + dx] = image[ys, xs]
    return out


def test_an_object_moving_on_its_own_is_followed(sim):
    a, lab = sim.images[0].astype(np.float32), sim.labels[0]
    b = _move_object(sim.images[0], lab, 1, 12, -9)
    prompt = ObjectMask.from_full(lab == 1)
    found = estimate_object_shift(a, b, prompt, radius=32)
    assert (found.dy, found.dx, found.source) == (12, -9, "object")
    still = ObjectMask.from_full(lab == 2)  # did not move: keeps the start shift
    assert estimate_object_shift(a, b, still, radius=32) is NO_SHIFT
    # Beyond the search radius the object is not claimed to be found.
    far = _move_object(sim.images[0], lab, 1, 40, 0)
    assert estimate_object_shift(a, far, prompt, radius=16) is NO_SHIFT


@pytest.mark.parametrize("gone", [0.2, 0.4, 0.6])
def test_an_object_cut_by_the_border_keeps_the_field_shift(gone):
    """Half out of view, an object's crop cannot be matched where it is: nothing else is taken."""
    sim = synthetic_movie(2, (256, 256), 10, speed=0, seed=0)
    a = sim.images[0].astype(np.float32)
    kept = 0
    for oid in range(1, 11):
        mask = sim.labels[0] == oid
        xs = np.nonzero(mask)[1]
        dx = -(int(xs.min()) + int(gone * (xs.max() - xs.min() + 1)))  # `gone` leaves on the left
        b = _moved(sim.images[0], 0, dx)
        field = Shift(0, dx, 0.9, "global")
        found = estimate_object_shift(a, b, ObjectMask.from_full(mask), start=field, radius=48)
        kept += (found.dy, found.dx) == (0, dx)
    assert kept == 10


def test_objects_overrule_a_field_shift_they_do_not_share():
    """Phase correlation can match one disk onto another when the first vanishes."""
    yy, xx = np.mgrid[:160, :160]
    rng = np.random.default_rng(0)

    def disk(cy, cx):
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= 64

    before = np.where(disk(30, 30) | disk(66, 66), 1.0, 0.1) + 0.01 * rng.normal(size=yy.shape)
    after = np.where(disk(67, 67), 1.0, 0.1) + 0.01 * rng.normal(size=yy.shape)
    prompts = [ObjectMask.from_full(disk(30, 30)), ObjectMask.from_full(disk(66, 66))]
    fooled = Shift(36, 36, 0.9, "global")  # disk 1 onto where disk 2 now is
    assert confirm_field_shift(before, after, prompts, fooled) is NO_SHIFT
    true = Shift(1, 1, 0.9, "global")
    assert confirm_field_shift(before, after, prompts[1:], true) is true


def test_shift_mask_moves_and_clips():
    m = ObjectMask(10, 20, np.ones((4, 6), bool))
    assert shift_mask(m, NO_SHIFT, (32, 32)) is m
    moved = shift_mask(m, Shift(5, -3), (32, 32))
    assert (moved.y0, moved.x0, moved.area) == (15, 17, 24)
    clipped = shift_mask(m, Shift(20, 0), (32, 32))  # rows 30..33: two rows stay in the plane
    assert (clipped.y0, clipped.area) == (30, 12)
    assert shift_mask(m, Shift(40, 0), (32, 32)).area == 0


# ------------------------------------------------------------------------------ the engine


def _drifting_disks(n: int, step: tuple[int, int]):
    """Two textured disks on a 128 x 128 stage drifting by `step` per frame (beyond any window)."""
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[:128, :128]
    truth = np.zeros((n, 2, 128, 128), bool)
    images = np.zeros((n, 128, 128), np.float32)
    texture = 0.1 + 0.05 * rng.random((128 + 40 * n, 128 + 40 * n))
    for t in range(n):
        oy, ox = t * step[0], t * step[1]
        for k, (cy, cx) in enumerate(((30, 90), (50, 60))):
            truth[t, k] = (yy - cy - oy) ** 2 + (xx - cx - ox) ** 2 <= 81
        y0, x0 = 20 * n - oy, 20 * n - ox
        images[t] = np.where(truth[t].any(0), 1.0, texture[y0 : y0 + 128, x0 : x0 + 128])
    return truth, images


@pytest.mark.parametrize("mode", ["auto", "global", "object"])
def test_a_drifting_stage_is_followed(mode):
    truth, images = _drifting_disks(5, (15, -12))  # 19 px per frame: the oracle reaches only 6
    prop, _ = make_propagator(motion=mode)
    state = prop.init_state(images)
    for k in range(2):
        prop.add_mask(state, 0, k + 1, truth[0, k])
    results = list(prop.propagate(state, 0))
    for r in results:
        assert r.shift == (15, -12)
        for ob in r.objects:
            assert ob.status is ObjectStatus.OK and ob.shift == (15, -12)
            mask = ob.mask.to_full((128, 128))
            assert geometry.iou(mask, truth[r.frame, ob.object_id - 1]) > 0.9


def test_without_motion_compensation_the_object_is_lost_with_a_reason():
    truth, images = _drifting_disks(3, (15, -12))
    prop, _ = make_propagator(motion="off")
    state = prop.init_state(images)
    prop.add_mask(state, 0, 1, truth[0, 0])
    with pytest.warns(ObjectLostWarning, match="object 1 lost at frame 2"):
        (r, *_) = list(prop.propagate(state, 0))
    assert r.objects[0].status is ObjectStatus.LOST and r.objects[0].reason
    assert r.shift == (0, 0)


def test_a_jump_to_a_neighbour_is_lost_or_doubtful_never_silent():
    """The object vanishes; a bright neighbour sits inside its windows: not passed off as it."""
    yy, xx = np.mgrid[:64, :64]
    a = (yy - 30) ** 2 + (xx - 24) ** 2 <= 36
    neighbour = (yy - 30) ** 2 + (xx - 40) ** 2 <= 100  # within the oracle's reach of `a`
    truth = np.stack([np.stack([a, a & False]), np.stack([a & False, neighbour])])
    images = movie_of(np.stack([truth[0, 0] | neighbour, neighbour]))
    for keep_going, status in ((False, ObjectStatus.LOST), (True, ObjectStatus.DOUBTFUL)):
        prop, _ = make_propagator(motion="off", keep_going=keep_going)
        state = prop.init_state(images)
        prop.add_mask(state, 0, 1, truth[0, 0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ObjectLostWarning)
            (r,) = list(prop.propagate(state, 0))
        ob = r.objects[0]
        assert ob.status is status and "left its object: IoU 0.01" in ob.reason
        assert (ob.outline is None) == (status is ObjectStatus.LOST)


# ------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def padded(sim_test):
    """The test movie on a larger field (40 px of background around it): drift moves objects
    about without pushing them out of view, so drifted and still runs compare like for like."""
    images = np.pad(sim_test.images, ((0, 0), (40, 40), (40, 40)), mode="reflect")
    labels = np.pad(sim_test.labels, ((0, 0), (40, 40), (40, 40)))
    images[:, :40], images[:, -40:] = images[:, 40:41], images[:, -41:-40]  # no mirrored cells
    images[:, :, :40], images[:, :, -40:] = images[:, :, 40:41], images[:, :, -41:-40]
    return images, labels


@pytest.fixture(scope="module")
def drifted(padded):
    images, labels = padded
    offsets = drift_random_walk(len(images), (15, 30), bound=30, seed=7)
    return apply_drift(images, offsets, labels, seed=7)


def test_a_drifted_movie_propagates_as_well_as_the_still_one(padded, drifted, tiny_model_path):
    images, labels = padded
    frames = range(1, len(images))
    still = api.propagate(
        api.as_movie(images, dims="tyx"), labels_to_outlines(labels, range(1)), tiny_model_path
    )
    movie = api.as_movie(drifted.images, dims="tyx")
    seeds = labels_to_outlines(drifted.labels, range(1))
    run = api.propagate(movie, seeds, tiny_model_path)
    ours = api.mean_iou(run.outlines, drifted.labels, frames)
    base = api.mean_iou(still.outlines, labels, frames)
    assert ours > base - 0.03, (ours, base)
    # The field's estimate is the stage's step give or take the objects' own motion (they move
    # by themselves in this movie; each object's own shift is refined after).
    steps = np.diff(drifted.offsets, axis=0)
    assert all(np.abs(np.subtract(fr.shift, s)).max() <= 4 for fr, s in zip(run.frames, steps))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ObjectLostWarning)
        off = api.propagate(movie, seeds, tiny_model_path, config=PropagateConfig(motion="off"))
    assert api.mean_iou(off.outlines, drifted.labels, frames) < ours - 0.3
    assert off.lost and all(off.lost[o] == f for f, o, why in off.doubtful() if "lost" in why)


def test_report_has_shifts_and_reasons(drifted, tiny_model_path, tmp_path):
    import csv

    from rescunet_ij.cli import main

    movie = api.as_movie(drifted.images, dims="tyx")
    api.write_movie(tmp_path / "m.tif", movie)
    api.write_outlines(tmp_path / "s.zip", labels_to_outlines(drifted.labels, range(1)), movie)
    args = ["propagate", str(tmp_path / "m.tif"), str(tmp_path / "s.zip"), "--model",
            str(tiny_model_path), "-o", str(tmp_path / "o.zip"), "--last-frame", "3"]  # fmt: skip
    assert main([*args, "--report", str(tmp_path / "r.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    steps = np.diff(drifted.offsets, axis=0)
    for row in rows:
        t = int(row["frame"]) - 1
        field = (int(row["field_shift_y"]), int(row["field_shift_x"]))
        assert np.abs(np.subtract(field, steps[t - 1])).max() <= 4
        assert row["status"] == "ok" and row["reason"] == ""
    off = [*args, "--report", str(tmp_path / "r2.csv"), "--motion", "off", "--overwrite"]
    assert main(off) == 0
    rows = list(csv.DictReader(open(tmp_path / "r2.csv")))
    assert any(r["status"] == "lost" and r["reason"] for r in rows)


def test_match_template_equals_scikit_images():
    """Our NCC (numpy.fft, no scipy.signal import) gives scikit-image's values, flat parts too."""
    from skimage.feature import match_template as skimage_match

    from rescunet_ij.data.motion import match_template

    rng = np.random.default_rng(0)
    for i in range(60):
        h, w = (int(v) for v in rng.integers(12, 90, 2))
        th, tw = int(rng.integers(4, h + 1)), int(rng.integers(4, w + 1))
        image = (rng.normal(size=(h, w)) * rng.uniform(1, 1000)).astype(np.float32)
        if i % 3 == 0:
            image[:, : w // 2] = 7.0  # flat windows: both give 0 there
        y, x = int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1))
        template = image[y : y + th, x : x + tw] + rng.normal(size=(th, tw)).astype(np.float32)
        ours, theirs = match_template(image, template), skimage_match(image, template)
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
    with pytest.raises(ValueError, match="fit"):
        match_template(np.zeros((5, 5)), np.zeros((6, 2)))
