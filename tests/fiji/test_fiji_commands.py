"""The ReSCU-Net Fiji commands (Groovy) in a real ImageJ 1.x + Groovy 4 JVM against a live service.

One service and one runner JVM for most of this module: the plan below is run once (module
fixture ``plan``) and each test checks its part of it.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
from fiji_data import extra_rois, hyperstack, labels_movie_images, outlines_c1, read_zip
from harness import no_trace, run_plan, settings

pytestmark = pytest.mark.ij


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from rescunet_ij import api

    root = tmp_path_factory.mktemp("fiji_data")
    movie_path, movie, labels = hyperstack(root)
    seeds = outlines_c1(labels, range(0, 1))
    api.write_outlines(root / "seeds.zip", seeds, movie)
    import roifile

    roifile.roiwrite(str(root / "seeds.zip"), extra_rois(), mode="a")
    api.write_outlines(root / "frame4.zip", outlines_c1(labels, range(3, 4)), movie)
    api.write_outlines(root / "all.zip", outlines_c1(labels, range(0, labels.shape[0])), movie)
    (root / "garbage.rescunet").write_bytes(b"this is not a model" * 10)
    # a z-stack (one time point): outlines propagate through the planes
    zmovie = api.as_movie(labels_movie_images(labels), dims="zyx")
    api.write_movie(root / "zstack.tif", zmovie)
    zseeds = [dataclasses.replace(o, frame=0, z=o.frame) for o in outlines_c1(labels, range(0, 1))]
    zseeds = [dataclasses.replace(o, c=None) for o in zseeds]
    api.write_outlines(root / "zseeds.zip", zseeds, zmovie)
    return {
        "root": root,
        "movie": movie_path,
        "xr": movie,
        "labels": labels,
        "seeds": seeds,
        "zmovie": zmovie,
        "zseeds": zseeds,
    }


@pytest.fixture(scope="module")
def plan(data, service, tiny_model_path, tmp_path_factory):
    home = tmp_path_factory.mktemp("fiji_home")
    root = data["root"]
    garbage = root / "garbage.rescunet"
    macro = 'run("Model Info", "model_file="); print("not reached");'
    steps = [
        settings(service.url, tiny_model_path),  # 0
        {"op": "open", "path": str(data["movie"]), "position": [1, 1, 1]},  # 1
        {"op": "rm_open", "path": str(root / "seeds.zip")},  # 2
        {
            "op": "run",
            "label": "Propagate Outlines",
            "options": "first_frame=0 last_frame=0 direction=forward next_frame_only=false",
        },  # 3
        {"op": "rm_save", "path": str(root / "propagated.zip")},  # 4
        {"op": "flatten", "c": 1, "z": 1, "t": 4, "path": str(root / "frame4.png")},  # 5
        {"op": "rm_open", "path": str(root / "frame4.zip")},  # 6
        {"op": "position", "c": 1, "z": 1, "t": 5},  # 7
        {"op": "run", "label": "Apply To Current Frame"},  # 8
        {"op": "rm_save", "path": str(root / "applied.zip")},  # 9
        {"op": "rm_open", "path": str(root / "all.zip")},  # 10
        {
            "op": "run",
            "label": "Export Training Set",
            "options": f"output=[{root / 'tset.zip'}] subimage_size=32",
        },  # 11
        {"op": "run", "label": "Model Info", "options": "model_file="},  # 12
        {
            "op": "run",
            "label": "Generate Training Notebook",
            "options": f"notebook=[{root / 'train.ipynb'}] training_zip=tset.zip epochs=7 "
            "input_size=32",
        },  # 13
        {"op": "prefs", "keys": ["rescunet.url", "rescunet.model", "rescunet.env"]},  # 14
        # error paths
        settings(service.url, root / "missing.rescunet"),  # 15
        {"op": "run", "label": "Propagate Outlines", "options": "first_frame=1"},  # 16
        settings(service.url, tiny_model_path),  # 17
        {"op": "run", "label": "Model Info", "options": f"model_file=[{garbage}]"},  # 18
        settings("http://127.0.0.2:9", tiny_model_path),  # 19
        {"op": "run", "label": "Model Info", "options": "model_file="},  # 20
        {"op": "menu", "label": "Model Info", "values": {"model_file": ""}},  # 21
        {"op": "macro_code", "code": macro},  # 22
        settings(service.url, tiny_model_path),  # 23
        # a failing request changes nothing
        {"op": "position", "c": 1, "z": 1, "t": 1},  # 24
        {"op": "rm_open", "path": str(root / "seeds.zip")},  # 25
        settings(service.url, root / "garbage.rescunet"),  # 26
        {"op": "run", "label": "Propagate Outlines", "options": "first_frame=1"},  # 27
        {"op": "rm_save", "path": str(root / "unchanged.zip")},  # 28
        settings(service.url, tiny_model_path),  # 29
        # no ROI Manager: seeds from and results to the image's Overlay
        {"op": "rm_close"},  # 30
        {"op": "open", "path": str(data["movie"]), "position": [1, 1, 1]},  # 31
        {"op": "overlay_open", "path": str(root / "seeds.zip")},  # 32
        {"op": "run", "label": "Propagate Outlines", "options": "first_frame=1 last_frame=4"},  # 33
        {"op": "overlay_save", "path": str(root / "overlay.zip")},  # 34
        # a z-stack
        {"op": "open", "path": str(root / "zstack.tif"), "position": [1, 1, 1]},  # 35
        {"op": "rm_open", "path": str(root / "zseeds.zip")},  # 36
        {"op": "run", "label": "Propagate Outlines", "options": "first_frame=0 last_frame=0"},  # 37
        {"op": "rm_save", "path": str(root / "zpropagated.zip")},  # 38
    ]
    t0 = time.monotonic()
    results = run_plan(steps, home)
    results[0]["wall_s"] = time.monotonic() - t0
    return {"steps": results, "home": home, "root": root}


def _ok(step):
    assert step["ok"], step.get("trace") or step
    assert not step["last_error"], (step["last_error"], step["log"])
    no_trace(step)


def test_settings_persisted(plan, service, tiny_model_path):
    s = plan["steps"]
    _ok(s[0])
    assert s[14]["values"] == {
        "rescunet.url": service.url,
        "rescunet.model": str(tiny_model_path),
        "rescunet.env": "",
    }
    prefs = (plan["home"] / ".imagej" / "IJ_Prefs.txt").read_text()
    assert f".rescunet.url={service.url}" in prefs.replace("\\:", ":")


def test_propagate_outlines_hyperstack(plan, data, tiny_model_path):
    from rescunet_ij import api

    step = plan["steps"][3]
    _ok(step)
    assert "outlines predicted" in step["outputs"]["result"], step["outputs"]
    rois = read_zip(plan["root"] / "propagated.zip")
    keep = {r.name for r in rois if r.name.startswith("keep-")}
    assert keep == {"keep-point", "keep-line", "keep-channel2"}
    ch2 = [r for r in rois if r.name == "keep-channel2"][0]
    assert ch2.c_position == 2
    areas = [r for r in rois if not r.name.startswith("keep-")]
    n_frames = data["labels"].shape[0]
    assert len(areas) == 3 * n_frames  # the 3 seeds + 3 objects on each later frame
    got = {}
    for r in areas:
        assert (r.c_position, r.z_position) == (1, 1), r
        got[(r.t_position, r.group)] = r.coordinates()
    assert {t for t, _ in got} == set(range(1, n_frames + 1))
    # the Python API on the same data gives the same polygons
    run = api.propagate(data["xr"], data["seeds"], api.load_model(tiny_model_path), channel=0)
    assert len(run.predicted) == 3 * (n_frames - 1)
    for o in run.predicted:
        poly = got[(o.frame + 1, o.object_id)]
        assert poly.shape == o.polygon.shape
        np.testing.assert_allclose(poly, o.polygon, atol=0.01)


def test_screenshot_shows_only_that_frames_outlines(plan, data):
    from PIL import Image

    _ok(plan["steps"][5])
    mag = plan["steps"][5]["magnification"]
    img = Image.open(plan["root"] / "frame4.png").convert("RGB")
    assert abs(img.size[0] - 96 * mag) <= 2, (img.size, mag)
    rgb = np.asarray(img.resize((96, 96), Image.Resampling.BOX)).astype(int)
    # outline pixels: saturated colours, unlike the grey image
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    coloured = spread > 40
    labels = data["labels"]
    colours = []
    for oid in range(1, 4):
        ys, xs = np.nonzero(labels[3] == oid)
        y0, y1, x0, x1 = ys.min() - 3, ys.max() + 4, xs.min() - 3, xs.max() + 4
        box = coloured[max(y0, 0) : y1, max(x0, 0) : x1]
        assert box.sum() > 10, f"no outline drawn near object {oid} on frame 4"
        pix = rgb[max(y0, 0) : y1, max(x0, 0) : x1][box]
        vals, counts = np.unique(pix, axis=0, return_counts=True)
        colours.append(tuple(vals[counts.argmax()]))
    assert len(set(colours)) == 3, colours  # one colour per object
    # only frame 4's outlines are drawn: none where the objects were on frame 1 (the seeds) only
    from scipy import ndimage

    f1 = ndimage.binary_dilation(labels[0] > 0, iterations=2) & ~ndimage.binary_dilation(
        labels[3] > 0, iterations=4
    )
    assert f1.sum() > 20  # the objects moved enough for this check to mean something
    assert coloured[f1].mean() < 0.05, coloured[f1].mean()


def test_apply_to_current_frame(plan, data, tiny_model_path):
    from rescunet_ij import api

    step = plan["steps"][8]
    _ok(step)
    assert step["outputs"]["result"].startswith("frame 5: 3 outlines"), step["outputs"]
    assert step["dialogs"] == []
    rois = read_zip(plan["root"] / "applied.zip")
    assert sorted(r.t_position for r in rois) == [4, 4, 4, 5, 5, 5]
    seeds4 = outlines_c1(data["labels"], range(3, 4))
    run = api.propagate(
        data["xr"],
        seeds4,
        api.load_model(tiny_model_path),
        channel=0,
        start_frame=3,
        end_frame=4,
        next_only=True,
    )
    got = {r.group: r.coordinates() for r in rois if r.t_position == 5}
    for o in run.predicted:
        np.testing.assert_allclose(got[o.object_id], o.polygon, atol=0.01)


def test_export_training_set(plan):
    from rescunet_ij import api

    _ok(plan["steps"][11])
    info = api.training_set_info(plan["root"] / "tset.zip")
    assert info["samples"] > 0, info


def test_model_info(plan, tiny_model_path):
    import hashlib

    step = plan["steps"][12]
    _ok(step)
    out = json.loads(step["outputs"]["result"])
    assert out["id"] == hashlib.sha256(tiny_model_path.read_bytes()).hexdigest()[:16]
    assert "id: " + out["id"] in step["log"]


def test_generate_training_notebook(plan):
    import nbformat

    _ok(plan["steps"][13])
    nb = nbformat.read(str(plan["root"] / "train.ipynb"), as_version=4)
    nbformat.validate(nb)
    text = json.dumps(nb)
    assert "tset.zip" in text


def test_missing_model_file(plan):
    step = plan["steps"][16]
    assert step["ok"]
    assert "missing.rescunet does not exist" in step["last_error"]
    assert "ReSCU-Net error:" in step["log"]
    no_trace(step)


def test_service_error_detail_shown(plan):
    step = plan["steps"][18]
    assert step["ok"]
    msg = step["last_error"]
    assert "not a safetensors file" in msg, msg  # the service's 422 detail
    assert "ReSCU-Net error: " + msg.splitlines()[0] in step["log"]
    no_trace(step)


def test_service_not_running_remote(plan):
    step = plan["steps"][20]
    assert "No rescunet-ij service answers at http://127.0.0.2:9" in step["last_error"]
    assert "on that machine" in step["last_error"]
    no_trace(step)
    # from the menu: an error dialog with the same words, no stack trace
    menu = plan["steps"][21]
    assert menu["ok"], menu
    assert menu["dialogs"], menu
    assert "No rescunet-ij service answers" in menu["dialogs"][0]["text"]
    no_trace(menu)
    # from a macro: the macro is aborted with the message
    mac = plan["steps"][22]
    assert "No rescunet-ij service answers" in (mac["macro_error"] or ""), mac
    assert "not reached" not in mac["log"]


def test_failed_request_changes_nothing(plan):
    step = plan["steps"][27]
    assert step["ok"] and step["last_error"], step
    no_trace(step)
    before = read_zip(plan["root"] / "seeds.zip")
    after = read_zip(plan["root"] / "unchanged.zip")
    assert [r.name for r in after] == [r.name for r in before]
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a.coordinates(), b.coordinates())
        assert (a.c_position, a.t_position) == (b.c_position, b.t_position)


def test_overlay_without_roi_manager(plan):
    step = plan["steps"][33]
    _ok(step)
    rois = read_zip(plan["root"] / "overlay.zip")
    assert plan["steps"][34]["count"] == 3 + 3 * 4  # the untouched ROIs, the seeds, frames 2-4
    assert {r.name for r in rois if r.name.startswith("keep-")} == {
        "keep-point",
        "keep-line",
        "keep-channel2",
    }
    areas = [r for r in rois if not r.name.startswith("keep-")]
    assert sorted({r.t_position for r in areas}) == [1, 2, 3, 4]


def test_propagate_z_stack(plan, data, tiny_model_path):
    from rescunet_ij import api

    step = plan["steps"][37]
    _ok(step)
    assert step["outputs"]["result"].startswith("planes 1-8"), step["outputs"]
    rois = read_zip(plan["root"] / "zpropagated.zip")
    n = data["labels"].shape[0]
    assert len(rois) == 3 * n
    run = api.propagate(data["zmovie"], data["zseeds"], api.load_model(tiny_model_path), axis="z")
    got = {(r.z_position or r.position, r.group): r.coordinates() for r in rois}
    for o in run.predicted:
        np.testing.assert_allclose(got[(o.z + 1, o.object_id)], o.polygon, atol=0.01)
