"""Batch_Propagate.ijm in ImageJ's macro interpreter (batch mode) against a live service."""

from __future__ import annotations

import csv

import pytest
from harness import MACRO, run_plan, settings

pytestmark = pytest.mark.ij


@pytest.fixture(scope="module")
def movies(tmp_path_factory):
    """Two movies with seeds (NAME_seeds.zip, NAME.zip), one with broken seeds, one without."""
    from rescunet_ij import api
    from rescunet_ij.demo import labels_to_outlines
    from rescunet_ij.sample_data import synthetic_movie

    root = tmp_path_factory.mktemp("batch_movies")
    truth = {}
    for name, seed, seeds_name in (("a", 11, "a_seeds.zip"), ("b", 12, "b.zip")):
        sm = synthetic_movie(8, (96, 96), n_objects=3, radius=(7.0, 10.0), seed=seed)
        movie = api.as_movie(sm.images, dims="tyx")
        api.write_movie(root / f"{name}.tif", movie)
        api.write_outlines(root / seeds_name, labels_to_outlines(sm.labels, range(0, 1)), movie)
        truth[name] = (movie, sm.labels)
    api.write_movie(root / "broken.tif", truth["a"][0])
    (root / "broken_seeds.zip").write_bytes(b"PK\x03\x04 not a zip")
    api.write_movie(root / "noseeds.tif", truth["a"][0])
    return root, truth


def test_batch_propagate_folder(movies, service, tiny_model_path, tmp_path):
    from rescunet_ij import api

    root, truth = movies
    out = tmp_path / "results"
    steps = [
        settings(service.url, tiny_model_path),
        {"op": "macro", "path": str(MACRO), "arg": f"dir=[{root}] out=[{out}]"},
    ]
    res = run_plan(steps, tmp_path / "home")
    assert res[0]["ok"], res[0]
    mac = res[1]
    assert mac["ok"], mac
    assert mac["macro_error"] is None, mac
    assert mac["returned"] == "done=2 failed=1 skipped=1", mac["log"]
    assert "ReSCU-Net batch: 2 done, 1 failed, 1 skipped" in mac["log"]
    assert "broken.tif: FAILED: " in mac["log"]
    assert "noseeds.tif: skipped" in mac["log"]
    assert "\tat " not in mac["log"]
    for name, (movie, labels) in truth.items():
        predicted = api.read_outlines(out / f"{name}_RoiSet.zip", movie)
        later = [o for o in predicted if o.frame > 0]
        assert len(later) == 3 * (labels.shape[0] - 1)
        iou = api.mean_iou(later, labels, range(1, labels.shape[0]))
        assert iou > 0.8, (name, iou)
        lab = api.read_movie(out / f"{name}_labels.tif")
        assert lab.sizes["t"] == labels.shape[0]
        assert set(map(int, lab.values.ravel())) >= {0, 1, 2, 3}
        with open(out / f"{name}_report.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 3 * (labels.shape[0] - 1)
        assert set(rows[0]) == {
            "frame",
            "object_id",
            "status",
            "confidence",
            "prompt_iou",
            "reason",
            "doubtful",
        }
        assert (out / f"{name}_doubtful.csv").read_text().startswith("frame,object_id,status")
    assert not (out / "broken_RoiSet.zip").exists()
