"""End to end through the Python API: training set -> training -> propagation on synthetic blobs."""

from __future__ import annotations

import numpy as np
import pytest

from rescunet_ij import api
from rescunet_ij.demo import copy_previous_iou, labels_to_outlines, mean_iou
from rescunet_ij.errors import DataError


def test_tiny_model_propagates_10_frames_and_beats_copying(tiny_model_path, sim_test):
    movie = api.as_movie(sim_test.images, dims="tyx")
    seeds = labels_to_outlines(sim_test.labels, range(0, 1))
    run = api.propagate(movie, seeds, tiny_model_path, start_frame=0, end_frame=10)
    frames = range(1, 11)
    ours = mean_iou(run.outlines, sim_test.labels, frames)
    baseline = copy_previous_iou(sim_test.labels, frames)
    assert ours > 0.8, f"mean IoU {ours:.3f}"
    assert ours > baseline + 0.05, f"ours {ours:.3f} vs copying the first mask {baseline:.3f}"
    # Same ordered object ids in every frame.
    for f in range(0, 11):
        assert [o.object_id for o in run.outlines if o.frame == f] == [1, 2, 3, 4]
    assert {fr.frame for fr in run.frames} == set(frames)
    for fr in run.frames:
        for ob in fr.objects:
            assert 0.0 <= ob.confidence <= 1.0 and 0.0 <= ob.prompt_iou <= 1.0


def test_repropagation_from_corrected_frame_replaces_only_later_frames(tiny_model_path, sim_test):
    movie = api.as_movie(sim_test.images, dims="tyx")
    seeds = labels_to_outlines(sim_test.labels, range(0, 1))
    first = api.propagate(movie, seeds, tiny_model_path, start_frame=0)
    # The user corrects frame 6 (0-based 5) with the truth and re-propagates from there.
    corrected = [o for o in first.outlines if o.frame != 5] + labels_to_outlines(
        sim_test.labels, range(5, 6)
    )
    second = api.propagate(movie, corrected, tiny_model_path, start_frame=5)
    before = {(o.frame, o.object_id): o.polygon for o in first.outlines if o.frame <= 4}
    after = {(o.frame, o.object_id): o.polygon for o in second.outlines if o.frame <= 4}
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    assert {fr.frame for fr in second.frames} == set(range(6, 12))
    truth5 = {o.object_id: o.polygon for o in labels_to_outlines(sim_test.labels, range(5, 6))}
    for o in second.outlines:
        if o.frame == 5:
            np.testing.assert_array_equal(o.polygon, truth5[o.object_id])
    assert mean_iou(second.outlines, sim_test.labels, range(6, 12)) >= 0.8


def test_next_frame_only_and_reverse(tiny_model_path, sim_test):
    movie = api.as_movie(sim_test.images, dims="tyx")
    seeds = labels_to_outlines(sim_test.labels, range(6, 7))
    nxt = api.propagate(movie, seeds, tiny_model_path, start_frame=6, next_only=True)
    assert [fr.frame for fr in nxt.frames] == [7]
    back = api.propagate(movie, seeds, tiny_model_path, start_frame=6, end_frame=2, reverse=True)
    assert [fr.frame for fr in back.frames] == [5, 4, 3, 2]
    assert mean_iou(back.outlines, sim_test.labels, range(2, 6)) > 0.75


def test_propagate_errors_name_the_problem(tiny_model_path, sim_test):
    movie = api.as_movie(sim_test.images, dims="tyx")
    seeds = labels_to_outlines(sim_test.labels, range(0, 1))
    with pytest.raises(
        DataError, match="no outlines on the start frame 3 .outlines exist on frames 1"
    ):
        api.propagate(movie, seeds, tiny_model_path, start_frame=2)
    with pytest.raises(DataError, match="outside the movie"):
        api.propagate(movie, seeds, tiny_model_path, start_frame=0, end_frame=40)
    with pytest.raises(DataError, match="--reverse"):
        api.propagate(
            movie,
            labels_to_outlines(sim_test.labels, range(5, 6)),
            tiny_model_path,
            start_frame=5,
            end_frame=2,
        )
    with pytest.raises(DataError, match="no outlines"):
        api.propagate(movie, [], tiny_model_path)


def test_z_stack_propagation_along_z(tiny_model_path, sim_test):
    # A z-stack: the planes of one time point play the role of frames.
    movie = api.as_movie(sim_test.images[:6], dims="zyx")
    seeds = [
        type(o)(o.object_id, 0, o.polygon, z=0, name=o.name)
        for o in labels_to_outlines(sim_test.labels, range(0, 1))
    ]
    run = api.propagate(movie, seeds, tiny_model_path, axis="z")
    assert sorted({o.z for o in run.outlines}) == list(range(6))
    assert all(o.frame == 0 for o in run.outlines)
