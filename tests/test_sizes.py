"""Window and input sizes chosen from the training data (rescunet_ij.data.settings), end to end."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from rescunet_ij import api
from rescunet_ij.cli import main
from rescunet_ij.data.motion import Shift
from rescunet_ij.data.settings import (
    SizeChoice,
    choose_sizes,
    input_for_window,
    prompt_shift_for,
    scale_warning,
    size_statistics,
    suggest_sizes,
)
from rescunet_ij.errors import ConfigError, DataError
from rescunet_ij.io.training_set import META_FILE
from rescunet_ij.sample_data import synthetic_movie, with_drift


def _squares(side: int, step=(0, 0), frames=4, objects=3, field=None):
    """``objects`` squares of ``side`` pixels moving ``step`` per frame: masks and their motion."""
    dy, dx = step
    H = field or side * objects * 2 + abs(dy) * frames + 8
    masks: dict[int, dict[int, np.ndarray]] = {}
    for o in range(1, objects + 1):
        for t in range(frames):
            m = np.zeros((H, H), bool)
            y0, x0 = 4 + t * dy, 4 + (o - 1) * 2 * side + t * dx
            m[y0 : y0 + side, x0 : x0 + side] = True
            masks.setdefault(o, {})[t] = m
    shifts = {(o, t): Shift(dy, dx, 1.0, "global") for o in masks for t in range(1, frames)}
    return masks, shifts


# ----------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    "side,window,inp",
    [
        (10, 32, 32),  # small objects: the smallest window, no rescaling
        (20, 32, 32),  # 1.5 x 20 = 30 -> 32
        (40, 64, 64),  # 60 -> 64
        (60, 96, 96),  # 90 -> 96: the largest window seen at native scale
        (100, 160, 96),  # 150 -> 160, input half of it (80) raised to 96
        (170, 256, 128),  # 255 -> 256, input 128: a 2x downscale
    ],
)
def test_still_objects_get_one_and_a_half_times_their_size(side, window, inp):
    masks, _ = _squares(side)
    choice = suggest_sizes(masks)
    assert choice.subimage_size == (window, window) and choice.input_size == (inp, inp)
    assert choice.chosen == "rule" and choice.warnings == ()
    assert choice.statistics.extent_p90 == side and choice.statistics.residual_p95 == 0
    assert f"subimage {window} px" in choice.reason and f"object size {side} px" in choice.reason


def test_motion_left_after_compensation_widens_the_window():
    masks, shifts = _squares(20, step=(30, 0))
    raw = suggest_sizes(masks)  # nothing compensated: the squares jump 30 px a frame
    assert raw.statistics.residual_p95 == 30 and raw.subimage_size == (80, 80)  # 20 + 2 x 30
    assert "residual motion 30.0 px" in raw.reason
    compensated = suggest_sizes(masks, shifts)  # moved with them: nothing left
    assert compensated.statistics.residual_p95 == 0 and compensated.subimage_size == (32, 32)
    assert compensated.statistics.motion_p95 == 30


def test_large_objects_warn_about_lost_detail():
    masks, _ = _squares(400, objects=1, frames=2)
    choice = suggest_sizes(masks)
    assert choice.subimage_size == (608, 608) and choice.input_size == (128, 128)
    (note,) = choice.warnings
    assert "4.8-fold reduced" in note and "fine detail may be lost" in note
    assert "input_size 304x304 (CLI: --input-size" in note
    assert choice.downscale == pytest.approx(4.75)


def test_given_sizes_are_kept_and_checked():
    masks, shifts = _squares(20, step=(30, 0))
    small = suggest_sizes(masks, subimage_size=(32, 32))  # no compensation, 30 px jumps
    assert small.chosen == "given" and small.subimage_size == (32, 32)
    assert small.input_size == (32, 32) and "by the input rule" in small.reason
    (note,) = small.warnings
    assert "in 9 of 9 samples (100%) the object moved further than a 32x32 px window" in note
    assert "at least 80" in note
    assert suggest_sizes(masks, shifts, subimage_size=(32, 32)).warnings == ()
    both = suggest_sizes(masks, shifts, subimage_size=(200, 200), input_size=(48, 48))
    assert both.input_size == (48, 48) and "as given" in both.reason
    assert any("4.2-fold reduced" in w for w in both.warnings)


def test_objects_too_large_for_any_window():
    masks, _ = _squares(3000, objects=1, frames=1)
    choice = suggest_sizes(masks)
    assert choice.subimage_size == (4096, 4096)
    assert any("too large for the largest window" in w for w in choice.warnings)


def test_input_rule_never_gives_a_larger_object_fewer_pixels():
    sides = [8, 16, 32, 40, 48, 96, 112, 128, 160, 192, 200, 256, 384, 4096]
    inputs = [input_for_window((n, n))[0] for n in sides]
    assert inputs == [16, 16, 32, 48, 48, 96, 96, 96, 96, 96, 96, 128, 128, 128]  # 40 -> 48
    assert inputs == sorted(inputs) and all(i % 16 == 0 for i in inputs)
    assert input_for_window((64, 200)) == (64, 96)
    assert scale_warning((384, 384), (128, 128)) is None  # exactly 3x: still fine
    assert "3.1-fold" in scale_warning((400, 400), (128, 128))


def test_statistics_and_choices_survive_the_metadata():
    masks, shifts = _squares(20, step=(3, 1))
    choice = suggest_sizes(masks, shifts)
    meta = json.loads(json.dumps(choice.to_meta()))
    back = SizeChoice.from_meta(meta)
    assert back.subimage_size == choice.subimage_size and back.input_size == choice.input_size
    assert back.reason == choice.reason and back.statistics == choice.statistics
    assert SizeChoice.from_meta(None) is None and SizeChoice.from_meta({"input_size": 3}) is None


def test_no_objects_is_an_error():
    with pytest.raises(DataError, match="every mask is empty"):
        size_statistics({1: {0: np.zeros((20, 20), bool)}})


def test_prompt_shift_follows_the_displacements():
    masks, _ = _squares(10, step=(5, 0))
    pairs = [(masks[o][t], masks[o][t - 1]) for o in masks for t in range(1, 4)]
    assert prompt_shift_for(pairs, (64, 64)) == 5
    still = [(masks[1][0], masks[1][0])]
    assert prompt_shift_for(still, (64, 64)) == 2  # at least 2
    assert prompt_shift_for(pairs, (16, 16)) == 4  # at most a quarter of the window


# ----------------------------------------------------------------------------- with real motion


@pytest.fixture(scope="module")
def drifting():
    sim = synthetic_movie(5, (96, 96), n_objects=3, radius=(7.0, 10.0), speed=0.5, seed=5)
    return with_drift(sim, (24, 32), seed=5)


def _masks(movie):
    return {o: {t: movie.labels[t] == o for t in range(len(movie.labels))} for o in (1, 2, 3)}


def test_choose_sizes_measures_the_motion_it_compensates(drifting):
    on, shifts = choose_sizes(drifting.images, _masks(drifting), "auto")
    off, none = choose_sizes(drifting.images, _masks(drifting), "off")
    assert on.statistics.residual_p95 <= 3 and on.statistics.motion_p95 > 35
    assert on.subimage_size == (48, 48)  # 1.5 x ~24 px objects
    assert off.statistics.residual_p95 > 30 and off.subimage_size[0] >= 24 + 60
    assert len(shifts) == len(none) == 12 and all(s.magnitude == 0 for s in none.values())


# ----------------------------------------------------------------------------- API and CLI


@pytest.fixture(scope="module")
def drift_files(tmp_path_factory, drifting):
    d = tmp_path_factory.mktemp("sizes")
    movie = api.as_movie(drifting.images, dims="tyx")
    api.write_movie(d / "movie.tif", movie)
    api.write_outlines(d / "rois.zip", api.outlines_from_labels(drifting.labels), movie)
    return d, movie, api.outlines_from_labels(drifting.labels)


@pytest.fixture(scope="module")
def auto_set(drift_files):
    d, movie, outlines = drift_files
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the data's own choice fits it: no warning
        return api.make_training_set(movie, outlines, d / "auto")


def test_make_training_set_chooses_and_stores_the_sizes(drift_files, auto_set):
    d, movie, outlines = drift_files
    tset = auto_set
    meta = json.loads((tset / META_FILE).read_text())
    assert meta["motion"] == "auto" and meta["window_size"] == [48, 48]
    assert meta["sizes"]["chosen"] == "rule" and meta["sizes"]["input_size"] == [48, 48]
    assert meta["sizes"]["statistics"]["samples"] == 12
    sizes = api.training_set_sizes(tset)
    assert sizes.subimage_size == (48, 48) and sizes.reason == meta["sizes"]["reason"]
    assert api.training_set_info(tset)["sizes"] == sizes
    with pytest.warns(UserWarning, match="moved further than a 32x32 px window"):
        api.make_training_set(movie, outlines, d / "off", subimage_size=32, motion="off")
    assert json.loads((d / "off" / META_FILE).read_text())["motion"] == "off"
    with pytest.raises(ConfigError, match="motion must be one of"):
        api.make_training_set(movie, outlines, d / "bad", motion="sideways")


def test_train_takes_the_input_size_of_the_set_unless_given(auto_set):
    tset = auto_set
    tiny = dict(epochs=1, base_filters=4, batch_size=8, device="cpu", validation_fraction=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no validation set
        chosen = api.train(tset, None, **tiny)
        given = api.train(tset, None, input_size=32, **tiny)
        meta = json.loads((tset / META_FILE).read_text())
        del meta["sizes"]  # a set made before sizes were chosen keeps the old default
        (tset / META_FILE).write_text(json.dumps(meta))
        old = api.train(tset, None, **tiny)
    assert chosen.model.model_config.input_size == (48, 48) and chosen.model.window_size == (48, 48)
    assert given.model.model_config.input_size == (32, 32) and given.model.window_size == (48, 48)
    assert old.model.model_config.input_size == (64, 64) and old.model.window_size == (48, 48)
    # The prompt shift left to the data was resolved and stored with the model, and so was the
    # motion mode of the set's prompts (for propagation to use the same).
    assert 2 <= chosen.model.train_config.prompt_shift <= 12
    assert chosen.model.train_config.prompt_motion == "auto"


def test_cli_make_training_set_prints_the_choice(drift_files, capsys):
    d, _movie, _outlines = drift_files
    args = ["make-training-set", str(d / "movie.tif"), str(d / "rois.zip"), str(d / "cli")]
    assert main(args) == 0
    out = " ".join(capsys.readouterr().err.split())  # whatever the console's line width
    assert "wrote 12 training samples" in out and "(motion: auto)" in out
    assert "subimage size 48x48 px (chosen from the data)" in out
    assert "input size 48x48 px" in out and "rule: subimage 48 px = smallest multiple of 16" in out
    args = [*args[:3], str(d / "cli_off"), "--motion", "off", "--subimage-size", "32"]
    assert main(args) == 0
    out = " ".join(capsys.readouterr().err.split())
    assert "subimage size 32x32 px (as given)" in out
    assert "warning:" in out and "moved further than a 32x32 px window" in out
    assert main([*args[:3], str(d / "cli_bad"), "--motion", "sideways"]) == 2
    assert "motion must be one of auto, off, global, object" in " ".join(
        capsys.readouterr().err.split()
    )
