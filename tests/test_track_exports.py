"""Track exports: Cell Tracking Challenge results scored with py-ctcmetrics, and TrackMate XML."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import roifile
import tifffile
from ctc_metrics.metrics import valid
from ctc_metrics.scripts.evaluate import evaluate_sequence
from ctc_metrics.utils.filesystem import parse_masks, read_tracking_file

from rescunet_ij import api
from rescunet_ij.cli import main
from rescunet_ij.errors import DataError, OutputExistsError
from rescunet_ij.io.ctc import mask_name
from rescunet_ij.types import Outline

METRICS = ["Valid", "SEG", "DET", "TRA"]


@pytest.fixture(scope="module")
def sim():
    return api.synthetic_movie(10, (64, 64), n_objects=3, radius=(6.0, 9.0), seed=3)


@pytest.fixture(scope="module")
def truth(sim):
    return api.outlines_from_labels(sim.labels)


def write_gt(folder: Path, labels: np.ndarray) -> Path:
    """The CTC ground-truth layout (TRA + SEG), written straight from the truth, not by us."""
    (folder / "TRA").mkdir(parents=True)
    (folder / "SEG").mkdir()
    lines = []
    for t, frame in enumerate(labels):
        tifffile.imwrite(folder / "TRA" / f"man_track{t:03d}.tif", frame.astype(np.uint16))
        tifffile.imwrite(folder / "SEG" / f"man_seg{t:03d}.tif", frame.astype(np.uint16))
    for oid in np.unique(labels[labels > 0]):
        frames = np.flatnonzero((labels == oid).any(axis=(1, 2)))
        assert len(frames) == frames[-1] - frames[0] + 1  # the synthetic objects never vanish
        lines.append(f"{oid} {frames[0]} {frames[-1]} 0\n")
    (folder / "TRA" / "man_track.txt").write_text("".join(lines))
    return folder


def score(res: Path, gt: Path) -> dict:
    return evaluate_sequence(str(res), str(gt), metrics=list(METRICS), threads=1)


def is_valid(res: Path) -> int:
    """py-ctcmetrics' own check of a result folder (labels present exactly on their frames)."""
    masks = parse_masks(str(res))
    labels = [sorted(int(v) for v in np.unique(tifffile.imread(m)) if v) for m in masks]
    return valid(masks, read_tracking_file(str(res / "res_track.txt")), labels)


def square(oid: int, frame: int, x: float, y: float, size: float) -> Outline:
    return Outline(oid, frame, [(x, y), (x + size, y), (x + size, y + size), (x, y + size)])


# ---------------------------------------------------------------- Cell Tracking Challenge format


def test_the_truth_exported_as_ctc_scores_perfectly(sim, truth, tmp_path):
    gt = write_gt(tmp_path / "01_GT", sim.labels)
    res = api.write_ctc(tmp_path / "01_RES", truth, api.as_movie(sim.images, dims="tyx"))
    names = sorted(p.name for p in res.iterdir())
    assert names == [f"mask{t:03d}.tif" for t in range(10)] + ["res_track.txt"]
    for t in range(10):
        mask = tifffile.imread(res / mask_name(t, 10))
        assert mask.dtype == np.uint16 and np.array_equal(mask, sim.labels[t])
    assert (res / "res_track.txt").read_text() == "1 0 9 0\n2 0 9 0\n3 0 9 0\n"
    scores = score(res, gt)
    assert scores["Valid"] == 1
    for metric in ("SEG", "DET", "TRA"):
        assert scores[metric] == pytest.approx(1.0), metric


def test_swapped_ids_or_a_missed_object_score_lower(sim, truth, tmp_path):
    gt = write_gt(tmp_path / "01_GT", sim.labels)
    movie = api.as_movie(sim.images, dims="tyx")
    swap = {1: 2, 2: 1, 3: 3}
    swapped = [
        Outline(swap[o.object_id] if o.frame >= 5 else o.object_id, o.frame, o.polygon)
        for o in truth
    ]
    s = score(api.write_ctc(tmp_path / "swapped", swapped, movie), gt)
    assert s["Valid"] == 1
    assert s["DET"] == pytest.approx(1.0) and s["SEG"] == pytest.approx(1.0)  # right objects...
    assert s["TRA"] < 0.99  # ...wrong links
    missed = [o for o in truth if not (o.object_id == 3 and o.frame == 4)]
    res = api.write_ctc(tmp_path / "missed", missed, movie)
    # Object 3 is back after a gap: a new track, child of the one before the gap.
    assert (res / "res_track.txt").read_text().splitlines()[2:] == ["3 0 3 0", "4 5 9 3"]
    s = score(res, gt)
    assert s["Valid"] == 1
    assert s["DET"] < 0.99 and s["SEG"] < 0.99 and s["TRA"] < 0.99


def test_gaps_and_hidden_objects_split_tracks_as_the_challenge_requires(tmp_path):
    outlines = [square(1, t, 2, 2, 6) for t in (0, 1, 3, 4)]  # missing on frame 2
    outlines += [square(5, t, 20, 20, 4) for t in range(5)]
    # On frame 1 object 7 covers object 5 entirely (later outlines win): 5 is hidden there.
    outlines += [square(7, t, 18, 18, 9) for t in (1,)]
    res = api.write_ctc(tmp_path / "res", outlines, (5, 1, 1, 32, 32))
    tracks = (res / "res_track.txt").read_text().splitlines()
    assert tracks == ["1 0 1 0", "5 0 0 0", "7 1 1 0", "8 2 4 5", "9 3 4 1"]
    frame3 = tifffile.imread(res / "mask003.tif")
    assert set(np.unique(frame3)) == {0, 8, 9}  # both continuations, under their new labels
    assert is_valid(res) == 1
    # Written as the objects came, a hidden object's label would be in res_track.txt but in no
    # pixel: the check that makes the evaluation refuse a result.
    (res / "res_track.txt").write_text("1 0 4 0\n5 0 4 0\n7 1 1 0\n")
    with pytest.warns(UserWarning):
        assert is_valid(res) == 0


def test_masks_are_painted_and_written_one_frame_at_a_time_as_the_label_movie(tmp_path):
    import io
    import tracemalloc

    from rescunet_ij.io.ctc import write_ctc_result
    from rescunet_ij.io.labels import outlines_to_label_movie

    sim = api.synthetic_movie(30, (256, 256), n_objects=4, radius=(8.0, 14.0), seed=5)
    # Object 2 vanishes on frames 8-11: it comes back as a second track, under a new label.
    outlines = [
        o
        for o in api.outlines_from_labels(sim.labels)
        if not (o.object_id == 2 and 8 <= o.frame < 12)
    ]
    write_ctc_result(tmp_path / "warm", [], (1, 8, 8))  # lazy imports are not the writer's memory
    tracemalloc.start()
    tracks = write_ctc_result(tmp_path / "res", outlines, sim.labels.shape)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    whole = outlines_to_label_movie(outlines, sim.labels.shape)  # 3.9 MB; one frame is 0.13 MB
    assert peak < whole.nbytes / 4, f"{peak / 2**20:.2f} MB traced, {whole.nbytes / 2**20:.1f} MB"
    assert any(tr.parent for tr in tracks)
    for t, frame in enumerate(whole):  # the label movie, each object under its track's label
        expected = frame.copy()
        for tr in tracks:
            if tr.begin <= t <= tr.end:
                expected[frame == tr.object_id] = tr.label
        buf = io.BytesIO()
        tifffile.imwrite(buf, expected)
        assert (tmp_path / "res" / mask_name(t, 30)).read_bytes() == buf.getvalue(), t


def test_every_frame_is_written_with_the_challenges_digits(tmp_path):
    assert mask_name(7, 999) == "mask007.tif" and mask_name(7, 1000) == "mask0007.tif"
    movie = api.as_movie(np.zeros((9, 16, 16), np.uint16), dims="tyx").isel(t=slice(6, 9))
    res = api.write_ctc(tmp_path / "res", [square(2, 7, 4, 4, 5)], movie)
    # A cut-out keeps its frame numbers: frames 0..5 are written empty, as write_labels does.
    assert len(list(res.glob("mask*.tif"))) == 9
    assert not tifffile.imread(res / "mask006.tif").any()
    assert tifffile.imread(res / "mask007.tif").max() == 2
    assert (res / "res_track.txt").read_text() == "2 7 7 0\n"


def test_outputs_are_refused_replaced_and_written_all_or_nothing(tmp_path):
    dims = (4, 1, 1, 16, 16)
    first = [square(1, t, 2, 2, 5) for t in range(4)]
    res = api.write_ctc(tmp_path / "res", first, dims)
    before = (res / "mask002.tif").read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite"):
        api.write_ctc(tmp_path / "res", [square(3, 0, 1, 1, 4)], dims)
    assert (res / "mask002.tif").read_bytes() == before
    api.write_ctc(tmp_path / "res", [square(3, 0, 1, 1, 4)], dims, overwrite=True)
    assert (res / "res_track.txt").read_text() == "3 0 0 0\n"
    assert not tifffile.imread(res / "mask002.tif").any()
    # A longer earlier result's masks would be read as frames by the CTC tools: refused.
    (res / "mask0999.tif").write_bytes(b"")
    with pytest.raises(OutputExistsError, match="mask0999.tif"):
        api.write_ctc(tmp_path / "res", first, dims, overwrite=True)
    with pytest.raises(OutputExistsError):
        api.check_ctc_output(tmp_path / "res", dims, overwrite=True)
    api.check_ctc_output(tmp_path / "new", dims)  # a new folder is fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        api.check_ctc_output(tmp_path / "file")
    # Inside an output group, a failure later on leaves no part of the result behind.
    with pytest.raises(RuntimeError), api.output_group():
        api.write_ctc(tmp_path / "group", first, dims)
        raise RuntimeError("a later output failed")
    assert not list((tmp_path / "group").glob("*"))


def test_outlines_of_several_planes_need_a_plane(tmp_path):
    outlines = [square(1, 0, 2, 2, 5), Outline(1, 0, square(1, 0, 8, 8, 5).polygon, z=1)]
    dims = (2, 2, 1, 16, 16)
    with pytest.raises(DataError, match="z-planes 1, 2"):
        api.write_ctc(tmp_path / "res", outlines, dims)
    with pytest.raises(DataError, match="z-planes 1, 2"):
        api.write_trackmate(tmp_path / "tm.xml", outlines, dims)
    api.write_ctc(tmp_path / "res", outlines, dims, z=1)
    assert tifffile.imread(tmp_path / "res" / "mask000.tif")[10, 10] == 1
    with pytest.raises(DataError, match="frame 3"):
        api.write_ctc(tmp_path / "bad", [square(1, 2, 2, 2, 5)], dims)


# ---------------------------------------------------------------- TrackMate XML


def _declared(model: ET.Element, group: str) -> set[str]:
    return {f.get("feature") for f in model.find(f"FeatureDeclarations/{group}")}


def test_trackmate_xml_holds_calibrated_spots_rois_and_tracks(sim, truth, tmp_path):
    movie = api.as_movie(
        sim.images, dims="tyx", pixel_size=0.5, unit="micron", frame_interval=2.0, time_unit="min"
    )
    tif = api.write_movie(tmp_path / "movie.tif", movie)
    movie = api.read_movie(tif)
    outlines = [o for o in truth if not (o.object_id == 2 and o.frame == 4)]  # a gap
    outlines[0] = dataclasses.replace(outlines[0], confidence=0.7, prompt_iou=0.9)  # predicted
    xml = api.write_trackmate(tmp_path / "tracks.xml", outlines, movie)
    assert xml.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.parse(xml).getroot()
    assert root.tag == "TrackMate" and tuple(map(int, root.get("version").split("."))) >= (2, 1)
    model = root.find("Model")
    assert (model.get("spatialunits"), model.get("timeunits")) == ("micron", "min")

    spots = {int(s.get("ID")): s for s in model.iter("Spot")}
    assert int(model.find("AllSpots").get("nspots")) == len(spots) == len(outlines)
    spot_features = _declared(model, "SpotFeatures")
    by_key = {(o.object_id, o.frame): o for o in outlines}
    for block in model.find("AllSpots"):
        for s in block:
            assert s.get("FRAME") == block.get("frame")
            assert set(s.keys()) - {"ID", "name", "ROI_N_POINTS"} <= spot_features
            oid, t = int(s.get("OBJECT_ID")), int(s.get("FRAME"))
            assert float(s.get("POSITION_T")) == pytest.approx(2.0 * t)
            # Pixel centres on integers in TrackMate: the centroid of the pixels' indices.
            rows, cols = np.nonzero(sim.labels[t] == oid)
            assert float(s.get("POSITION_X")) == pytest.approx(0.5 * cols.mean())
            assert float(s.get("POSITION_Y")) == pytest.approx(0.5 * rows.mean())
            assert float(s.get("RADIUS")) == pytest.approx(0.5 * np.sqrt(len(rows) / np.pi))
            # The ROI, relative to the centre, is the outline itself.
            rel = np.array(s.text.split(), float).reshape(-1, 2)
            assert len(rel) == int(s.get("ROI_N_POINTS"))
            centre = [float(s.get("POSITION_X")), float(s.get("POSITION_Y"))]
            np.testing.assert_allclose((rel + centre) / 0.5 + 0.5, by_key[oid, t].polygon)
    first = spots[0]
    assert (float(first.get("QUALITY")), float(first.get("PROMPT_IOU"))) == (0.7, 0.9)
    others = list(spots.values())[1:]  # the user's outlines
    assert {float(s.get("QUALITY")) for s in others} == {1.0}
    assert all(np.isnan(float(s.get("PROMPT_IOU"))) for s in others)

    tracks = model.findall("AllTracks/Track")
    assert len(tracks) == 3
    assert {t.get("TRACK_ID") for t in tracks} == {
        t.get("TRACK_ID") for t in model.findall("FilteredTracks/TrackID")
    }
    for track in tracks:
        assert set(track.keys()) - {"name"} <= _declared(model, "TrackFeatures")
        edges = track.findall("Edge")
        objects = set()
        for e in edges:
            assert set(e.keys()) <= _declared(model, "EdgeFeatures")
            src, dst = spots[int(e.get("SPOT_SOURCE_ID"))], spots[int(e.get("SPOT_TARGET_ID"))]
            objects |= {src.get("OBJECT_ID"), dst.get("OBJECT_ID")}
            step = int(dst.get("FRAME")) - int(src.get("FRAME"))
            assert step == (2 if (src.get("OBJECT_ID"), src.get("FRAME")) == ("2", "3") else 1)
        assert len(objects) == 1 and len(edges) == int(track.get("NUMBER_SPOTS")) - 1
        assert track.get("NUMBER_GAPS") == ("1" if objects == {"2"} else "0")

    image = root.find("Settings/ImageData")
    assert image.get("filename") == "movie.tif"
    assert Path(image.get("folder")) == tmp_path.resolve()
    assert (image.get("width"), image.get("height"), image.get("nframes")) == ("64", "64", "10")
    assert float(image.get("pixelwidth")) == 0.5 and float(image.get("timeinterval")) == 2.0
    assert root.find("Settings/DetectorSettings").get("DETECTOR_NAME") == "MANUAL_DETECTOR"
    assert root.find("Settings/TrackerSettings").get("TRACKER_NAME") == "MANUAL_TRACKER"
    with pytest.raises(OutputExistsError):
        api.write_trackmate(tmp_path / "tracks.xml", outlines, movie)


# ---------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def micro_model(tmp_path_factory, sim):
    """A barely trained model: the exports need predictions, not good ones."""
    root = tmp_path_factory.mktemp("micro")
    movie = api.as_movie(sim.images, dims="tyx")
    tset = api.make_training_set(movie, api.outlines_from_labels(sim.labels), root / "set")
    result = api.train(
        tset,
        root / "micro.rescunet",
        epochs=1,
        input_size=16,
        base_filters=4,
        batch_size=16,
        seed=0,
        device="cpu",
    )
    return result.model_path


def test_propagate_writes_ctc_and_trackmate_with_the_other_outputs(
    sim, micro_model, tmp_path, capsys
):
    movie = api.as_movie(sim.images, dims="tyx")
    api.write_movie(tmp_path / "movie.tif", movie)
    api.write_outlines(tmp_path / "seeds.zip", api.outlines_from_labels(sim.labels, [0]), movie)
    args = [
        "propagate",
        str(tmp_path / "movie.tif"),
        str(tmp_path / "seeds.zip"),
        "--model",
        str(micro_model),
        "-o",
        str(tmp_path / "out.zip"),
        "--ctc",
        str(tmp_path / "01_RES"),
        "--trackmate",
        str(tmp_path / "tracks.xml"),
    ]
    assert main(args) == 0
    rois = roifile.roiread(tmp_path / "out.zip")
    assert len(list((tmp_path / "01_RES").glob("mask*.tif"))) == 10
    assert is_valid(tmp_path / "01_RES") == 1
    gt = write_gt(tmp_path / "01_GT", sim.labels)
    assert score(tmp_path / "01_RES", gt)["Valid"] == 1
    root = ET.parse(tmp_path / "tracks.xml").getroot()
    assert len(list(root.iter("Spot"))) == len(rois)
    # Nothing is replaced without --overwrite; the command says so before any work.
    before = (tmp_path / "01_RES" / "res_track.txt").read_text()
    (tmp_path / "out.zip").unlink()
    (tmp_path / "tracks.xml").unlink()
    assert main(args) == 2  # the CTC folder is not empty
    assert not (tmp_path / "out.zip").exists() and not (tmp_path / "tracks.xml").exists()
    assert (tmp_path / "01_RES" / "res_track.txt").read_text() == before
    assert main([*args, "--overwrite"]) == 0
    # Another output inside the CTC folder would be read as part of the result.
    assert main([*args, "--overwrite", "--labels", str(tmp_path / "01_RES" / "l.tif")]) == 2
    # Tracks run through time, not through the planes of a z-stack: refused before any work.
    capsys.readouterr()
    assert main([*args, "--overwrite", "--axis", "z"]) == 2
    assert "--ctc and --trackmate" in capsys.readouterr().err
