"""The three user operations on a real ImageJ: export, propagate, apply to the current frame."""

from __future__ import annotations

import numpy as np
import pytest
from ij_helpers import java_polygon_roi, square

from rescunet_ij.errors import DataError

pytestmark = pytest.mark.ij


@pytest.fixture(scope="module")
def sim():
    from rescunet_ij.sample_data import synthetic_movie

    return synthetic_movie(8, (96, 96), n_objects=3, radius=(7.0, 10.0), seed=202)


def _open_movie(sim):
    from rescunet_ij.bridge import movie_to_imageplus
    from rescunet_ij.io.movie import as_movie

    imp = movie_to_imageplus(
        as_movie(sim.images, dims="tyx", pixel_size=0.5, unit="um"), "cells", show=True
    )
    return imp


def _seed(rm, sim, frame=0, names=True):
    """The user outlines every object on `frame` (0-based) and adds it to the ROI Manager."""
    from rescunet_ij.demo import labels_to_outlines

    for o in labels_to_outlines(sim.labels, range(frame, frame + 1)):
        rm.addRoi(
            java_polygon_roi(
                o.polygon, name=f"cell {o.object_id}" if names else None, position=frame + 1
            )
        )


def _rm_rows(rm):
    return [(str(rm.getName(i)), int(r.getPosition())) for i, r in enumerate(rm.getRoisAsArray())]


def _mean_iou(rm, imp, sim):
    from rescunet_ij.bridge import roimanager_to_outlines
    from rescunet_ij.geometry import iou, polygon_to_mask

    outs = roimanager_to_outlines(rm, imp)
    scores = [
        iou(polygon_to_mask(o.polygon, sim.labels.shape[1:]), sim.labels[o.frame] == o.object_id)
        for o in outs
        if o.frame > 0
    ]
    return float(np.mean(scores)), outs


@pytest.mark.slow
def test_full_flow_propagate_then_correct_and_repropagate(ij1, rm, sim, ij_model_path):
    from rescunet_ij.bridge import propagate_in_imagej

    imp = _open_movie(sim)
    _seed(rm, sim)
    imp.setT(1)
    frames_seen = []
    summary = propagate_in_imagej(ij_model_path, on_frame=lambda fr: frames_seen.append(fr.frame))
    assert frames_seen == list(range(1, 8))
    assert (summary.start_frame, summary.end_frame, summary.object_ids) == (1, 8, [1, 2, 3])
    assert summary.added == 21 and summary.removed == 0
    assert "3 object(s) propagated from frame 1 through frame 8" in str(summary)
    rows = _rm_rows(rm)
    assert rows[:3] == [("cell 1", 1), ("cell 2", 1), ("cell 3", 1)]
    # the same ordered objects in every frame, named like their seed, labelled with the frame
    assert rows[3:] == [(f"t{t:04d}-cell {k}", t) for t in range(2, 9) for k in (1, 2, 3)]
    assert {str(r.getName()) for r in rm.getRoisAsArray()} == {"cell 1", "cell 2", "cell 3"}
    score, outs = _mean_iou(rm, imp, sim)
    assert score > 0.6
    assert all(o.confidence is not None for o in outs if o.frame > 0)

    # the user corrects frame 4 (replaces object 2's ROI with the ground truth) and re-propagates
    from rescunet_ij.demo import labels_to_outlines

    before = {i: str(rm.getName(i)) for i in range(rm.getCount())}
    untouched = [
        r.getFloatPolygon().xpoints[0] for r in rm.getRoisAsArray() if r.getPosition() <= 4
    ]
    idx = next(i for i, row in enumerate(_rm_rows(rm)) if row == ("t0004-cell 2", 4))
    gt = next(o for o in labels_to_outlines(sim.labels, range(3, 4)) if o.object_id == 2)
    fixed = java_polygon_roi(gt.polygon, name="cell 2", position=4)
    fixed.setProperty("object_id", "2")
    rm.setRoi(fixed, idx)
    untouched[idx] = fixed.getFloatPolygon().xpoints[0]
    imp.setT(4)
    s2 = propagate_in_imagej(ij_model_path, imp, rm)
    assert (s2.start_frame, s2.end_frame, s2.added, s2.removed) == (4, 8, 12, 12)
    # the run in the summary uses the movie's (0-based) frames, not the copied window's
    assert (s2.run.start_frame, s2.run.end_frame) == (3, 7)
    assert [fr.frame for fr in s2.run.frames] == [4, 5, 6, 7]
    assert sorted({o.frame for o in s2.run.predicted}) == [4, 5, 6, 7]
    # issue 15.1: every outline in the run is on its own frame (not shifted twice)
    assert all(
        ob.outline.frame == fr.frame for fr in s2.run.frames for ob in fr.objects if ob.outline
    )
    assert sorted({o.frame for o in s2.run.outlines}) == [3, 4, 5, 6, 7]
    assert {o.frame for o in s2.run.outlines if o.confidence is None} == {3}  # the seeds
    assert all(5 <= f <= 8 for f, _, _ in s2.doubtful)
    assert [str(rm.getName(i)) for i in range(rm.getCount())] == list(before.values())
    assert [
        r.getFloatPolygon().xpoints[0] for r in rm.getRoisAsArray() if r.getPosition() <= 4
    ] == untouched


@pytest.mark.slow
def test_propagated_roiset_saved_and_reopened_keeps_frame_1_labels(
    ij1, rm, sim, ij_model_path, tmp_path
):
    """Issue 10: every frame's ROI of an object had the seed's label ("nucleus-1" eight times);
    ImageJ renamed the duplicates on save, so reopened, frame 1 listed nucleus-4/5/6."""
    import zipfile

    from rescunet_ij.bridge import propagate_in_imagej, roimanager_to_outlines
    from rescunet_ij.demo import labels_to_outlines

    imp = _open_movie(sim)
    for o in labels_to_outlines(sim.labels, range(1)):
        rm.addRoi(java_polygon_roi(o.polygon, name=f"nucleus-{o.object_id}", position=1))
    seeds = ["nucleus-1", "nucleus-2", "nucleus-3"]
    assert [lab for lab, _ in _rm_rows(rm)] == seeds
    propagate_in_imagej(ij_model_path, imp, rm, start_frame=1)
    labels = [lab for lab, _ in _rm_rows(rm)]
    assert labels[:3] == seeds
    assert labels[3:6] == ["t0002-nucleus-1", "t0002-nucleus-2", "t0002-nucleus-3"]
    assert len(set(labels)) == len(labels) == 24
    before = [(o.frame, o.object_id, o.name) for o in roimanager_to_outlines(rm, imp)]
    path = tmp_path / "RoiSet.zip"
    assert rm.runCommand("Save", str(path))
    assert [n[:-4] for n in zipfile.ZipFile(path).namelist()] == labels
    rm.reset()
    assert rm.runCommand("Open", str(path))
    assert [lab for lab, _ in _rm_rows(rm)] == labels  # frame 1 keeps nucleus-1/2/3
    assert _rm_rows(rm)[:3] == [(name, 1) for name in seeds]
    after = [(o.frame, o.object_id, o.name) for o in roimanager_to_outlines(rm, imp)]
    assert after == before
    assert {name for _, _, name in after} == set(seeds)
    from rescunet_ij.io.rois import read_rois

    from_file = read_rois(path, n_frames=8)
    assert [(o.frame, o.object_id, o.name) for o in from_file] == before


@pytest.mark.slow
def test_propagation_from_a_later_frame_reports_the_movie_frames(ij1, rm, ij_model_path):
    """Issue 15.1: a 6-frame movie propagated from frame 3 reported frames 3,4,5 as 5,6,7."""
    from rescunet_ij.bridge import propagate_in_imagej
    from rescunet_ij.sample_data import synthetic_movie

    sim6 = synthetic_movie(6, (96, 96), n_objects=3, radius=(7.0, 10.0), seed=5)
    imp = _open_movie(sim6)
    _seed(rm, sim6, frame=2)
    summary = propagate_in_imagej(ij_model_path, imp, rm, start_frame=3)
    run = summary.run
    assert (summary.start_frame, summary.end_frame) == (3, 6)  # 1-based, as Fiji shows them
    assert (run.start_frame, run.end_frame) == (2, 5)  # 0-based movie frames
    assert [fr.frame for fr in run.frames] == [3, 4, 5]
    assert sorted({o.frame for o in run.predicted}) == [3, 4, 5]
    assert sorted({o.frame for o in run.outlines}) == [2, 3, 4, 5]
    assert [
        ob.outline.frame for fr in run.frames for ob in fr.objects if ob.outline is not None
    ] == [3, 3, 3, 4, 4, 4, 5, 5, 5]
    assert [t for _, t in _rm_rows(rm)] == [3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6]


@pytest.mark.slow
def test_apply_to_current_frame_step_by_step(ij1, rm, sim, ij_model_path):
    from rescunet_ij.bridge import apply_to_current_frame

    imp = _open_movie(sim)
    _seed(rm, sim, names=False)
    imp.setT(1)
    with pytest.raises(DataError, match="no previous frame"):
        apply_to_current_frame(ij_model_path, imp, rm)
    for t in (2, 3):
        imp.setT(t)
        s = apply_to_current_frame(ij_model_path, imp, rm)
        assert (s.start_frame, s.end_frame, s.added, s.removed) == (t - 1, t, 3, 0)
    imp.setT(3)
    s = apply_to_current_frame(ij_model_path, imp, rm)  # again: replaces frame 3 only
    assert (s.added, s.removed) == (3, 3)
    assert [t for _, t in _rm_rows(rm)] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    score, _ = _mean_iou(rm, imp, sim)
    assert score > 0.6
    imp.setT(5)  # frame 4 has no outlines yet
    with pytest.raises(DataError, match="no outlines on frame 4.*frames 1, 2, 3"):
        apply_to_current_frame(ij_model_path, imp, rm)


def test_export_training_set(ij1, rm, sim, tmp_path):
    from rescunet_ij.bridge import export_training_set
    from rescunet_ij.demo import labels_to_outlines

    imp = _open_movie(sim)
    for o in labels_to_outlines(sim.labels, range(3)):
        rm.addRoi(java_polygon_roi(o.polygon, name=f"cell {o.object_id}", position=o.frame + 1))
    out = export_training_set(out_dir=tmp_path / "set", subimage_size=32)
    assert out.is_dir() and any(out.iterdir())
    from rescunet_ij.io.training_set import read_training_set

    samples, meta = read_training_set(out)
    assert len(samples) == 6  # 3 objects x (frame 2 from 1, frame 3 from 2)
    assert meta["pixel_size"] == 0.5
    with pytest.raises(Exception, match="exist"):
        export_training_set(imp, rm, out_dir=out)


def test_bad_inputs_change_nothing(ij1, rm, sim, tmp_path):
    from rescunet_ij.bridge import apply_to_current_frame, export_training_set, propagate_in_imagej
    from rescunet_ij.bridge._java import jc

    model = tmp_path / "never-loaded.rescunet"
    assert jc.WindowManager.getCurrentImage() is None
    with pytest.raises(DataError, match="no image is open"):
        propagate_in_imagej(model)
    with pytest.raises(DataError, match="no image is open"):
        export_training_set(out_dir=tmp_path / "x")
    imp = _open_movie(sim)
    with pytest.raises(DataError, match="ROI Manager is empty"):
        propagate_in_imagej(model, start_frame=1)
    # ROIs without a frame position on a movie
    rm.addRoi(java_polygon_roi(square(20, 20), name="where?"))
    with pytest.raises(DataError, match="no frame position.*where"):
        propagate_in_imagej(model, start_frame=1)
    rm.reset()
    # ROIs from another (bigger) image
    rm.addRoi(java_polygon_roi(square(300, 300), name="elsewhere", position=1))
    with (
        pytest.raises(DataError, match="no usable outline"),
        pytest.warns(UserWarning, match="elsewhere"),
    ):
        propagate_in_imagej(model, start_frame=1)
    rm.reset()
    # line ROIs only are skipped with a warning, then nothing is left
    rm.addRoi(jc.Line(2, 2, 30, 30))
    with pytest.raises(DataError), pytest.warns(UserWarning, match="without an area"):
        propagate_in_imagej(model, start_frame=1)
    rm.reset()
    _seed(rm, sim, frame=2)
    rows = _rm_rows(rm)
    with pytest.raises(DataError, match="no outlines on frame 1.*frames 3"):
        propagate_in_imagej(model, start_frame=1)
    with pytest.raises(DataError, match="outside the movie"):
        propagate_in_imagej(model, start_frame=12)
    with pytest.raises(DataError, match="'cells': the last frame 2 is before the start frame 3"):
        propagate_in_imagej(model, start_frame=3, end_frame=2)
    with pytest.raises(DataError, match="last frame 5 is after the start frame 3.*backwards"):
        propagate_in_imagej(model, start_frame=3, end_frame=5, reverse=True)
    with pytest.raises(Exception, match="never-loaded"):
        propagate_in_imagej(model, start_frame=3)  # the model is loaded only after all checks
    imp.setT(1)
    with pytest.raises(DataError, match="no previous frame"):
        apply_to_current_frame(model)
    assert _rm_rows(rm) == rows  # nothing was lost or changed
    assert imp.getFrame() == 1
