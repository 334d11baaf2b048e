"""Fine-tuning from the corrections in a real ImageJ ROI Manager (bridge.finetune_in_imagej)."""

from __future__ import annotations

import pytest
from ij_helpers import java_polygon_roi

pytestmark = [pytest.mark.ij, pytest.mark.slow]


def test_finetune_in_imagej_learns_the_fix_and_replaces_only_later_predictions(
    ij1, rm, ij_model_path, tmp_path
):
    from rescunet_ij.bridge import (
        finetune_in_imagej,
        movie_to_imageplus,
        propagate_in_imagej,
        roimanager_to_outlines,
    )
    from rescunet_ij.demo import labels_to_outlines
    from rescunet_ij.io.movie import as_movie
    from rescunet_ij.sample_data import synthetic_movie

    sim = synthetic_movie(8, (96, 96), n_objects=3, radius=(7.0, 10.0), seed=202)
    imp = movie_to_imageplus(as_movie(sim.images, dims="tyx"), "cells", show=True)
    for o in labels_to_outlines(sim.labels, range(1)):
        rm.addRoi(java_polygon_roi(o.polygon, name=f"cell {o.object_id}", position=1))
    imp.setT(1)
    propagate_in_imagej(ij_model_path, imp, rm)
    # The user redraws object 2 on frame 4 (the ground truth).
    names = [str(rm.getName(i)) for i in range(rm.getCount())]
    idx = names.index("t0004-cell 2")
    gt = next(o for o in labels_to_outlines(sim.labels, range(3, 4)) if o.object_id == 2)
    fixed = java_polygon_roi(gt.polygon, name="cell 2", position=4)
    fixed.setProperty("object_id", "2")
    rm.setRoi(fixed, idx)
    before = {(o.frame, o.object_id): o.polygon.copy() for o in roimanager_to_outlines(rm, imp)}
    out = tmp_path / "tuned.rescunet"
    result = finetune_in_imagej(ij_model_path, imp, rm, output=out, epochs=2, device="cpu")
    assert out.exists()
    assert [(c.object_id, c.frame) for c in result.corrections] == [(2, 3)]
    after = {(o.frame, o.object_id): o for o in roimanager_to_outlines(rm, imp)}
    assert set(after) == set(before)
    for key, poly in before.items():
        frame, _ = key
        if frame <= 3:  # up to the corrected frame (the correction too): untouched
            assert (after[key].polygon == poly).all(), key
        else:  # later frames: the new model's predictions
            assert after[key].confidence is not None
    assert after[3, 2].confidence is None
    assert any(
        not (after[k].polygon.shape == p.shape and (after[k].polygon == p).all())
        for k, p in before.items()
        if k[0] > 3
    )


def test_imagej_keeps_the_hash_of_untouched_predictions_and_sees_edits(ij1, rm, tmp_path):
    import numpy as np

    from rescunet_ij.io.rois import read_rois, write_rois
    from rescunet_ij.types import Outline

    sq = np.array([[10.25, 10.5], [30.0, 11.0], [29.5, 30.75], [11.0, 29.0]])
    outlines = [Outline(1, 0, sq), Outline(1, 1, sq + 1.5, confidence=0.9, prompt_iou=0.8)]
    outlines.append(Outline(1, 2, sq + 3.25, confidence=0.8, prompt_iou=0.7))
    src = write_rois(tmp_path / "pred.zip", outlines, n_frames=3)
    rm.open(str(src))
    assert int(rm.getCount()) == 3
    resaved = tmp_path / "resaved.zip"
    rm.runCommand("Save", str(resaved))  # opened and saved again by ImageJ, nothing edited
    back = read_rois(resaved, n_frames=3)
    assert [o.origin for o in back] == ["user", "model", "model"]
    roi = rm.getRoi(2)
    roi.setLocation(roi.getXBase() + 2.0, roi.getYBase())  # the user drags the prediction
    rm.setRoi(roi, 2)
    edited = tmp_path / "edited.zip"
    rm.runCommand("Save", str(edited))
    back = read_rois(edited, n_frames=3)
    assert [o.origin for o in back] == ["user", "model", "edited"]


def test_the_live_roi_manager_sees_a_dragged_prediction_as_edited(ij1, rm, ij_model_path):
    """Predictions pushed by the bridge carry their hash: an edit in ImageJ is a correction."""
    from rescunet_ij.bridge import movie_to_imageplus, propagate_in_imagej, roimanager_to_outlines
    from rescunet_ij.demo import labels_to_outlines
    from rescunet_ij.io.movie import as_movie
    from rescunet_ij.io.rois import OUTLINE_HASH_PROPERTY
    from rescunet_ij.sample_data import synthetic_movie

    sim = synthetic_movie(4, (80, 80), n_objects=2, radius=(7.0, 9.0), seed=5)
    imp = movie_to_imageplus(as_movie(sim.images, dims="tyx"), "cells", show=True)
    for o in labels_to_outlines(sim.labels, range(1)):
        rm.addRoi(java_polygon_roi(o.polygon, name=f"cell {o.object_id}", position=1))
    imp.setT(1)
    propagate_in_imagej(ij_model_path, imp, rm)
    outlines = roimanager_to_outlines(rm, imp)
    assert {o.origin for o in outlines if o.frame == 0} == {"user"}
    assert {o.origin for o in outlines if o.frame > 0} == {"model"}
    names = [str(rm.getName(i)) for i in range(rm.getCount())]
    idx = names.index("t0003-cell 1")
    roi = rm.getRoi(idx)
    assert roi.getProperty(OUTLINE_HASH_PROPERTY) is not None
    roi.setLocation(roi.getXBase() + 2.0, roi.getYBase())  # the user drags the prediction
    rm.setRoi(roi, idx)
    edited = [(o.frame, o.object_id) for o in roimanager_to_outlines(rm, imp) if o.edited]
    assert edited == [(2, 1)]
