"""Fine-tuning from corrections: which ROIs are corrections, the new model, repropagation, CLI."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from roifile import ImagejRoi

from rescunet_ij import api
from rescunet_ij.cli import main
from rescunet_ij.errors import DataError
from rescunet_ij.geometry import iou, polygon_to_mask
from rescunet_ij.io.rois import OUTLINE_HASH_PROPERTY, outline_hash, read_rois, write_rois
from rescunet_ij.sample_data import synthetic_movie
from rescunet_ij.train.finetune import find_corrections, weights_hash
from rescunet_ij.types import Outline

SHAPE = (64, 64)


def _square(x0, y0, size=8.0):
    return np.array([[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size]], float)


def _edit_roiset(src: Path, dst: Path, edits: dict[str, np.ndarray], renames=()) -> None:
    """Change ROIs of a RoiSet as Fiji does: new vertices (or name), same properties/position."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            roi = ImagejRoi.frombytes(zin.read(info))
            stem = info.filename[:-4]
            if stem in edits or stem in renames:
                poly = edits.get(stem, roi.coordinates())
                new = ImagejRoi.frompoints(np.asarray(poly, float), name=roi.name)
                new.roitype, new.options = roi.roitype, roi.options
                new.position, new.group = roi.position, roi.group
                new.stroke_color, new.properties = roi.stroke_color, dict(roi.properties)
                if stem in renames:
                    new.name = "renamed"
                roi = new
            zout.writestr(info.filename, roi.tobytes())


# ----------------------------------------------------------------------------- edits and hashes


def test_edited_predictions_are_recognised_by_their_geometry_hash(tmp_path):
    outlines = [
        Outline(1, 0, _square(4, 4)),  # the user's seed
        Outline(1, 1, _square(5, 4), confidence=0.9, prompt_iou=0.8),
        Outline(1, 2, _square(6.25, 4.5), confidence=0.9, prompt_iou=0.8),
        Outline(1, 3, _square(7, 4), confidence=0.9, prompt_iou=0.8),
    ]
    written = write_rois(tmp_path / "pred.zip", outlines, n_frames=4)
    with zipfile.ZipFile(written) as zf:
        names = [n[:-4] for n in zf.namelist()]
    back = read_rois(written, n_frames=4, image_shape=SHAPE)
    assert [o.origin for o in back] == ["user", "model", "model", "model"]  # a round trip
    moved = _square(6.25, 4.5)
    moved[2] += [1.5, 0.0]  # one vertex dragged in Fiji
    _edit_roiset(written, tmp_path / "edited.zip", {names[2]: moved}, renames=(names[3],))
    back = read_rois(tmp_path / "edited.zip", n_frames=4, image_shape=SHAPE)
    # the moved ROI is edited; the renamed one is not (only its geometry counts)
    assert [o.origin for o in back] == ["user", "model", "edited", "model"]
    assert back[2].edited and back[2].confidence == pytest.approx(0.9)
    # A prediction without a hash (older RoiSets) counts as the model's output.
    old = tmp_path / "old.zip"
    with zipfile.ZipFile(written) as zin, zipfile.ZipFile(old, "w") as zout:
        for info in zin.infolist():
            roi = ImagejRoi.frombytes(zin.read(info))
            roi.properties = {k: v for k, v in roi.properties.items() if k != OUTLINE_HASH_PROPERTY}
            zout.writestr(info.filename, roi.tobytes())
    assert [o.origin for o in read_rois(old, n_frames=4)] == ["user", "model", "model", "model"]
    # An edited outline is written as the user's, and read back as the user's.
    again = write_rois(tmp_path / "again.zip", back, n_frames=4)
    assert [o.origin for o in read_rois(again, n_frames=4)] == ["user", "model", "user", "model"]


def test_outline_hash_ignores_the_closing_vertex_and_sees_small_moves():
    sq = _square(3.3, 7.1)
    assert outline_hash(sq) == outline_hash(np.vstack([sq, sq[:1]]))
    assert outline_hash(sq) != outline_hash(sq + [0.01, 0.0])
    assert len(outline_hash(sq)) == 12


def test_find_corrections_tells_corrections_from_seeds_and_predictions():
    pred = {"confidence": 0.9, "prompt_iou": 0.9}
    outlines = [
        Outline(1, 0, _square(4, 4)),  # seed
        Outline(2, 0, _square(30, 30)),  # seed
        Outline(1, 1, _square(5, 4), **pred),  # untouched prediction
        Outline(2, 1, _square(31, 30), **pred),
        Outline(1, 2, _square(6, 4), **pred, edited=True),  # edited: a correction
        Outline(2, 2, _square(32, 31)),  # redrawn by the user: a correction
        Outline(3, 2, _square(50, 50)),  # a new object: a seed
        Outline(3, 3, _square(51, 50), **pred),
        Outline(2, 4, _square(33, 31)),  # user's, but nothing in frame 3 for object 2: a seed
        Outline(1, 3, _square(7, 4), z=1),  # another plane: frame 2 has no z=1 outline
    ]
    found = find_corrections(outlines)
    assert [(c.object_id, c.frame, c.origin) for c in found] == [(1, 2, "edited"), (2, 2, "user")]
    assert found[0].previous.frame == 1 and found[0].previous.object_id == 1


# ----------------------------------------------------------------------------- with a model


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A small base model (a few seconds) and its predictions on a held-out movie."""
    d = tmp_path_factory.mktemp("finetune")
    kw = dict(n_objects=2, radius=(7.0, 10.0), speed=2.5, deformation=0.25)
    train = synthetic_movie(8, SHAPE, seed=1, **kw)
    test = synthetic_movie(6, SHAPE, seed=2, **kw)
    tmovie = api.as_movie(train.images, dims="tyx")
    tset = api.make_training_set(
        tmovie, api.outlines_from_labels(train.labels), d / "set", subimage_size=32
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = api.train(
            tset,
            d / "base.rescunet",
            epochs=8,
            input_size=32,
            base_filters=8,
            batch_size=8,
            learning_rate=3e-3,
            validation_fraction=0,
            device="cpu",
        )
    movie = api.as_movie(test.images, dims="tyx")
    api.write_movie(d / "test.tif", movie)
    seeds = api.outlines_from_labels(test.labels, range(1))
    run = api.propagate(movie, seeds, base.model, start_frame=0)
    api.write_outlines(d / "pred.zip", run.outlines, movie)
    truth = {(o.frame, o.object_id): o for o in api.outlines_from_labels(test.labels)}
    # The user replaces object 1 on frames 2 and 4 by the truth (drawn again in Fiji).
    corrected = [
        truth[o.frame, o.object_id] if (o.frame, o.object_id) in {(2, 1), (4, 1)} else o
        for o in api.read_outlines(d / "pred.zip", movie)
    ]
    api.write_outlines(d / "corrected.zip", corrected, movie)
    return {
        "dir": d,
        "set": tset,
        "base": base.model_path,
        "movie": movie,
        "labels": test.labels,
        "corrected": corrected,
    }


def _one_step_iou(model, case, frame=2, obj=1):
    """IoU with the truth of the prediction of ``obj`` on ``frame`` from the frame before it."""
    prompts = [o for o in case["corrected"] if o.frame == frame - 1]
    run = api.propagate(case["movie"], prompts, model, start_frame=frame - 1, end_frame=frame)
    pred = {o.object_id: o for o in run.predicted}[obj]
    return iou(polygon_to_mask(pred.polygon, SHAPE), case["labels"][frame] == obj)


def test_finetuned_model_learns_the_correction_and_records_its_lineage(case, tmp_path):
    parent = api.load_model(case["base"])
    before = _one_step_iou(parent, case)
    out = tmp_path / "new.rescunet"
    result = api.finetune(
        case["base"], case["movie"], case["dir"] / "corrected.zip", out, replay=case["set"]
    )
    assert [(c.object_id, c.frame) for c in result.corrections] == [(1, 2), (1, 4)]
    assert result.n_samples == 2 and result.n_replay > 0
    loaded = api.load_model(out)
    after = _one_step_iou(loaded, case)
    assert after > before + 0.01, (before, after)
    (step,) = loaded.extra["lineage"]
    assert step["parent"] == str(case["base"])
    assert step["parent_weights_sha256"] == weights_hash(parent)
    assert step["corrections"] == 2 and step["frames"] == [2, 4] and step["drawn"] == 2
    assert step["replay_source"] == str(case["set"]) and step["replay_samples"] == result.n_replay
    assert step["learning_rate"] == pytest.approx(parent.train_config.learning_rate * 0.2)
    assert loaded.extra["training_data"] == str(case["set"])
    assert api.model_info(loaded)["lineage"] == [step]  # what `info` and the service show
    assert loaded.model_config == parent.model_config
    assert weights_hash(loaded) != weights_hash(parent)
    # A second step replays the recorded set by itself and extends the lineage.
    again = api.finetune(loaded, case["movie"], case["corrected"], None, epochs=1)
    assert again.n_replay > 0 and len(again.model.extra["lineage"]) == 2
    # The learning rate stays 1/5 of the first training's (it does not shrink step by step).
    assert again.model.train_config.learning_rate == pytest.approx(step["learning_rate"])


def test_repropagation_keeps_the_corrections_and_replaces_later_frames(case, tmp_path):
    result = api.finetune(
        case["base"],
        case["movie"],
        case["corrected"],
        None,
        epochs=3,
        rois_output=tmp_path / "out.zip",
    )
    given = {(o.frame, o.object_id): o for o in case["corrected"]}
    back = api.read_outlines(tmp_path / "out.zip", case["movie"])
    got = {(o.frame, o.object_id): o for o in back}
    assert set(got) == set(given)
    for key in [(2, 1), (4, 1)]:  # the corrections, as given, still the user's
        np.testing.assert_allclose(got[key].polygon, given[key].polygon, atol=1e-4)
        assert got[key].origin == "user"
    for key in [(0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]:  # before or on the first correction
        np.testing.assert_allclose(got[key].polygon, given[key].polygon, atol=1e-4)
    # Two stretches: 2 -> 4 (both objects) and 4 -> 5.
    assert [(r.start_frame, r.end_frame) for r in result.runs] == [(2, 4), (4, 5)]
    predicted = {(o.frame, o.object_id): o for r in result.runs for o in r.predicted}
    for key in [(3, 1), (3, 2), (4, 2), (5, 1), (5, 2)]:  # replaced by the new model's
        np.testing.assert_allclose(got[key].polygon, predicted[key].polygon, atol=1e-4)
        assert got[key].origin == "model"
    # The first stretch predicted object 1 on frame 4 too; the correction won.
    assert not np.array_equal(predicted[4, 1].polygon, given[4, 1].polygon)


def test_no_corrections_is_a_clear_error(case):
    with pytest.raises(DataError, match="no corrections found.*a correction is an outline"):
        api.finetune(case["base"], case["movie"], case["dir"] / "pred.zip", None)


def test_cli_finetune_end_to_end(case, tmp_path, capsys):
    d = case["dir"]
    out, rois = tmp_path / "new.rescunet", tmp_path / "out.zip"
    args = ["finetune", str(case["base"]), str(d / "test.tif"), str(d / "corrected.zip")]
    args += ["-o", str(out), "--propagate-output", str(rois), "--epochs", "2", "--device", "cpu"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "found 2 correction(s) (0 edited, 2 drawn) on frame(s) 3, 5" in err
    assert out.exists() and rois.exists()
    assert main(["info", str(out)]) == 0
    assert "fine-tuning 1: from" in capsys.readouterr().err
    before = out.read_bytes()
    assert main(args) == 2  # both outputs exist
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(args + ["--overwrite"]) == 0
    assert (
        main(
            ["finetune", str(case["base"]), str(d / "test.tif"), str(d / "pred.zip")]
            + ["-o", str(tmp_path / "x.rescunet")]
        )
        == 2
    )
    assert "no corrections found" in capsys.readouterr().err
    assert not (tmp_path / "x.rescunet").exists()


def test_a_model_trained_by_api_train_replays_its_own_training_set(case, tmp_path):
    """api.train records the training set, so the first fine-tuning replays it unasked."""
    base = api.load_model(case["base"])
    assert base.extra["training_data"] == str(Path(case["set"]).resolve())
    result = api.finetune(case["base"], case["movie"], case["corrected"], None, epochs=1)
    assert result.n_replay > 0
    assert result.model.extra["lineage"][-1]["replay_source"] == base.extra["training_data"]
