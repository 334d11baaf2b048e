"""``rescunet-ij serve``: a real server process on 127.0.0.1, spoken to over real HTTP.

Every endpoint; 20 concurrent propagations answered with the CLI's ROIs; bad requests answered
with a 4xx naming the problem while the service stays healthy; the token; training jobs that
finish, are cancelled, or whose server is killed (no partial model either way).
"""

from __future__ import annotations

import base64
import json
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from service_util import run_server, start_server

from rescunet_ij import api
from rescunet_ij.cli import main as cli_main
from rescunet_ij.demo import labels_to_outlines

TOKEN = "test-token-0123456789abcdef"
TRAIN_PARAMS = dict(input_size=32, base_filters=8, concatenation_level=1, batch_size=16)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def files(tmp_path_factory, sim_test, sim_train):
    """A test movie with its frame-1 seeds (RoiSet.zip), and a training-set zip."""
    root = tmp_path_factory.mktemp("service_files")
    movie = api.as_movie(sim_test.images, dims="tyx")
    outlines = labels_to_outlines(sim_test.labels)
    movie_path = api.write_movie(root / "movie.tif", movie)
    seeds = [o for o in outlines if o.frame == 0]
    rois = api.write_outlines(root / "seeds.zip", seeds, movie)
    train_movie = api.as_movie(sim_train.images, dims="tyx")
    api.make_training_set(
        train_movie,
        labels_to_outlines(sim_train.labels),
        root / "tset",
        subimage_size=32,
        zip_path=root / "tset.zip",
    )
    return {"root": root, "movie": movie_path, "rois": rois, "tset": root / "tset.zip"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("models"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url + "/v1", timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def model_id(http, tiny_model_path):
    r = http.post("/models/load", json={"path": str(tiny_model_path)})
    assert r.status_code == 200, r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def cli_result(files, tiny_model_path, tmp_path_factory):
    """What ``rescunet-ij propagate`` writes for the same movie, seeds and model."""
    out = tmp_path_factory.mktemp("cli") / "out.zip"
    rc = cli_main(
        ["propagate", str(files["movie"]), str(files["rois"]), "--model", str(tiny_model_path),
         "-o", str(out), "--device", "cpu"]
    )  # fmt: skip
    assert rc == 0
    return out


def _outlines_of_zip(data: bytes, movie_path: Path, tmp: Path):
    path = tmp / f"answer-{time.monotonic_ns()}.zip"
    path.write_bytes(data)
    return api.read_outlines(path, api.read_movie(movie_path))


def _same_outlines(a, b) -> None:
    a = sorted(a, key=lambda o: o.sort_key)
    b = sorted(b, key=lambda o: o.sort_key)
    assert [(o.object_id, o.frame, o.z) for o in a] == [(o.object_id, o.frame, o.z) for o in b]
    for x, y in zip(a, b):
        assert x.polygon.shape == y.polygon.shape
        np.testing.assert_allclose(x.polygon, y.polygon, atol=1e-3)


def _propagate(http, movie: Path, rois: Path, params: dict) -> httpx.Response:
    return http.post(
        "/propagate",
        files={"movie": (movie.name, movie.read_bytes()), "rois": (rois.name, rois.read_bytes())},
        data={"params": json.dumps(params)},
    )


def _healthy(http) -> None:
    r = http.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


# ----------------------------------------------------------------------------- health and models
def test_health_names_version_device_and_models(http, model_id):
    from rescunet_ij import __version__

    h = http.get("/health").json()
    assert h["version"] == __version__
    assert h["device"] == "cpu" and h["gpu"] is None
    assert model_id in [m["id"] for m in h["models"]]
    assert h["token_required"] is False and h["busy"] is None


def test_openapi_schema_lists_every_endpoint(server):
    schema = httpx.get(server.url + "/openapi.json").json()
    paths = set(schema["paths"])
    wanted = ["health", "models/load", "models/upload", "propagate", "apply", "jobs/train",
              "jobs/{job_id}", "jobs/{job_id}/cancel", "notebook"]  # fmt: skip
    for p in wanted:
        assert f"/v1/{p}" in paths
    assert httpx.get(server.url + "/docs").status_code == 200


def test_models_by_path_and_upload_are_one_model(http, model_id, tiny_model_path, tmp_path):
    data = tiny_model_path.read_bytes()
    up = http.post("/models/upload", files={"file": ("mine.rescunet", data)})
    assert up.status_code == 200, up.text
    assert up.json()["id"] == model_id  # the same contents: the same model
    info = http.get(f"/models/{model_id}").json()["info"]
    assert info["model_config"]["base_filters"] == 8 and info["window_size"] == [32, 32]
    assert info["epochs_trained"] >= 1
    assert model_id in [m["id"] for m in http.get("/models").json()]
    got = http.get(f"/models/{model_id}/file")
    assert got.status_code == 200 and got.content == data


def test_unloaded_model_is_loaded_again_when_used(http, model_id, files):
    r = http.delete(f"/models/{model_id}")
    assert r.status_code == 200 and r.json()["unloaded"] is True
    assert model_id not in [m["id"] for m in http.get("/health").json()["models"]]
    r = _propagate(
        http, files["movie"], files["rois"], {"model": model_id, "next_frame_only": True}
    )
    assert r.status_code == 200, r.text
    assert model_id in [m["id"] for m in http.get("/health").json()["models"]]


def test_a_pickle_upload_is_refused_and_not_kept(http, server):
    import pickle

    r = http.post("/models/upload", files={"file": ("evil.rescunet", pickle.dumps({"a": 1}))})
    assert r.status_code == 422
    assert "pickle" in r.json()["detail"] and "evil.rescunet" in r.json()["detail"]
    assert not list((server.models_dir / "uploaded").glob("*")) or all(
        p.stat().st_size != len(pickle.dumps({"a": 1}))
        for p in (server.models_dir / "uploaded").glob("*")
    )
    _healthy(http)


def test_model_path_errors(http, tmp_path):
    r = http.post("/models/load", json={"path": str(tmp_path / "none.rescunet")})
    assert r.status_code == 404 and "no model file" in r.json()["detail"]
    r = http.post("/models/load", json={"path": "relative/model.rescunet"})
    assert r.status_code == 422 and "absolute" in r.json()["detail"]
    r = http.get("/models/0123456789abcdef")
    assert r.status_code == 404 and "unknown model" in r.json()["detail"]
    _healthy(http)


# ----------------------------------------------------------------------------- propagation
def test_propagate_gives_the_clis_rois(http, model_id, files, cli_result, tmp_path):
    r = _propagate(http, files["movie"], files["rois"], {"model": model_id, "return_roiset": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["start_frame"] == 1 and body["end_frame"] == 12
    assert {o["frame"] for o in body["outlines"]} == set(range(2, 13))
    assert len(body["frames"]) == 11 and all(len(f["objects"]) == 4 for f in body["frames"])
    mine = _outlines_of_zip(base64.b64decode(body["roiset"]), files["movie"], tmp_path)
    theirs = api.read_outlines(cli_result, api.read_movie(files["movie"]))
    _same_outlines(mine, theirs)
    # the JSON outlines are the predicted ones of the same result
    predicted = [o for o in theirs if o.frame > 0]
    assert len(body["outlines"]) == len(predicted)


def test_twenty_concurrent_requests_all_get_the_clis_rois(
    http, model_id, files, cli_result, tmp_path
):
    theirs = api.read_outlines(cli_result, api.read_movie(files["movie"]))
    params = {"model": model_id, "return_roiset": True}
    with ThreadPoolExecutor(20) as pool:
        answers = list(
            pool.map(lambda _: _propagate(http, files["movie"], files["rois"], params), range(20))
        )
    assert [a.status_code for a in answers] == [200] * 20
    for a in answers:
        _same_outlines(_outlines_of_zip(base64.b64decode(a.json()["roiset"]), files["movie"],
                                        tmp_path), theirs)  # fmt: skip
    _healthy(http)


def test_a_cut_out_keeps_the_movies_frame_numbers(http, model_id, files, tiny_model_path):
    """Frames 5..9 sent alone, seeds as JSON on frame 5: answers numbered 6..9, as in-process."""
    from rescunet_ij.service.client import Client

    movie = api.read_movie(files["movie"])
    seeds = api.read_outlines(files["rois"], movie)
    local = api.propagate(movie, seeds, tiny_model_path, end_frame=4)  # frames 1..5 (0-based 4)
    on_5 = [o for o in local.outlines if o.frame == 4]
    expected = api.propagate(movie, on_5, tiny_model_path, start_frame=4, end_frame=8)
    with Client(http.base_url.__str__().removesuffix("/v1/")) as client:
        got = client.propagate(movie, on_5, model_id, start_frame=4, end_frame=8)
    assert (got.start_frame, got.end_frame) == (4, 8)
    _same_outlines(got.predicted, expected.predicted)
    assert {f["frame"] for f in got.frames} == {6, 7, 8, 9}


def test_apply_predicts_one_frame_from_the_one_before(http, model_id, files, tiny_model_path):
    movie = api.read_movie(files["movie"])
    seeds = api.read_outlines(files["rois"], movie)
    expected = api.propagate(movie, seeds, tiny_model_path, next_only=True)
    two = files["root"] / "two.tif"
    api.write_movie(two, movie.isel(t=slice(0, 2)), overwrite=True)
    outlines = [
        {"object_id": o.object_id, "frame": 1, "polygon": o.polygon.tolist()} for o in seeds
    ]
    r = http.post(
        "/apply",
        files={
            "movie": ("two.tif", two.read_bytes()),
            "outlines": ("o.json", json.dumps(outlines)),
        },
        data={"params": json.dumps({"model": model_id})},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["start_frame"], body["end_frame"]) == (1, 2)
    got = sorted(body["outlines"], key=lambda o: o["object_id"])
    want = sorted(expected.predicted, key=lambda o: o.object_id)
    assert [o["object_id"] for o in got] == [o.object_id for o in want]
    for g, w in zip(got, want):
        assert g["frame"] == 2
        np.testing.assert_allclose(np.asarray(g["polygon"]), w.polygon, atol=1e-3)


def test_one_plane_series_of_a_hyperstack_comes_back_positioned_for_the_image(
    http, model_id, files, tiny_model_path, sim_test, tmp_path
):
    """What the Fiji commands do: send channel 1 of a 2-channel hyperstack and the ROI Manager's
    ROIs; the answer's RoiSet replaces the ROIs sent, positioned for the hyperstack."""
    from rescunet_ij.types import Outline

    images = sim_test.images
    hyper = api.as_movie(np.stack([images, images.max() - images], axis=1), dims="tcyx")
    seeds = [o for o in labels_to_outlines(sim_test.labels) if o.frame == 0]
    for o in seeds:
        o.c = 0
    other = Outline(99, 5, [[2, 2], [12, 2], [12, 12], [2, 12]], c=1, name="on channel 2")
    rois = api.write_outlines(tmp_path / "rm.zip", [*seeds, other], hyper)
    plane = api.write_movie(tmp_path / "c1.tif", hyper.isel(c=[0]))
    image = {"channels": 2, "slices": 1, "frames": 12}
    r = _propagate(http, plane, rois, {"model": model_id, "image": image, "channel": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    zip_path = tmp_path / "answer.zip"
    zip_path.write_bytes(base64.b64decode(body["roiset"]))
    back = api.read_outlines(zip_path, (12, 1, 2, 96, 96))
    expected = api.propagate(hyper, [*seeds, other], tiny_model_path, channel=0)
    _same_outlines(back, expected.outlines)
    assert [o for o in back if o.object_id == 99][0].c == 1  # the other channel's ROI, untouched
    assert {o.c for o in back if o.object_id != 99} == {0}
    # a TIFF with both channels is refused when 'image' says it is one plane series
    both = api.write_movie(tmp_path / "both.tif", hyper)
    r = _propagate(http, both, rois, {"model": model_id, "image": image, "channel": 1})
    assert r.status_code == 422 and "one plane series" in r.json()["detail"]


def test_training_set_endpoint_returns_a_training_zip(http, files, tmp_path, sim_train):
    movie = api.as_movie(sim_train.images, dims="tyx")
    path = api.write_movie(tmp_path / "train.tif", movie)
    rois = api.write_outlines(tmp_path / "all.zip", labels_to_outlines(sim_train.labels), movie)
    r = http.post(
        "/training-sets",
        files={"movie": ("train.tif", path.read_bytes()), "rois": ("all.zip", rois.read_bytes())},
        data={"params": json.dumps({"subimage_size": 32})},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    out = tmp_path / "testtrain.zip"
    out.write_bytes(r.content)
    info = api.training_set_info(out)
    assert info["samples"] == int(r.headers["x-rescunet-samples"]) > 0
    assert r.headers["x-rescunet-window"] == "32x32"


# ----------------------------------------------------------------------------- bad requests
def _bad(http, files, model_id, tmp_path):
    """(name, response, expected status, words the message must hold) for each bad request."""
    movie, rois = files["movie"], files["rois"]
    empty_zip = tmp_path / "empty.zip"
    import zipfile

    zipfile.ZipFile(empty_zip, "w").close()
    not_tiff = tmp_path / "movie.tif"
    not_tiff.write_bytes(b"this is not a TIFF at all" * 10)
    truncated = tmp_path / "cut.tif"
    truncated.write_bytes(movie.read_bytes()[: len(movie.read_bytes()) // 2])
    return [
        ("malformed TIFF", _propagate(http, not_tiff, rois, {"model": model_id}), 422,
         ["movie.tif", "TIFF"]),
        ("truncated TIFF", _propagate(http, truncated, rois, {"model": model_id}), 422,
         ["cut.tif"]),
        ("empty RoiSet", _propagate(http, movie, empty_zip, {"model": model_id}), 422,
         ["no ROIs"]),
        ("frame outside", _propagate(http, movie, rois, {"model": model_id, "last_frame": 99}),
         422, ["99", "outside", "1..12"]),
        ("seed frame without outlines", _propagate(http, movie, rois, {"model": model_id,
         "first_frame": 3}), 422, ["no outlines on the start frame 3", "params: first_frame"]),
        ("unknown model", _propagate(http, movie, rois, {"model": "feedfacefeedface"}), 404,
         ["unknown model", "load it first"]),
        ("unknown param", _propagate(http, movie, rois, {"model": model_id, "frist": 2}), 422,
         ["frist"]),
        ("params not JSON", http.post("/propagate", files={"movie": ("m.tif", b"x"),
         "rois": ("r.zip", b"x")}, data={"params": "{model:"}), 422, ["not valid JSON"]),
        ("no outlines", http.post("/propagate", files={"movie": ("m.tif", movie.read_bytes())},
         data={"params": json.dumps({"model": model_id})}), 422, ["outlines", "rois"]),
        ("empty JSON outlines", http.post("/propagate", files={"movie": ("m.tif",
         movie.read_bytes()), "outlines": ("o.json", b"[]")},
         data={"params": json.dumps({"model": model_id})}), 422, ["empty"]),
        ("apply without a previous frame", http.post("/apply", files={"movie": ("m.tif",
         movie.read_bytes()), "rois": ("r.zip", rois.read_bytes())},
         data={"params": json.dumps({"model": model_id, "frame": 1})}), 422, ["previous"]),
        ("training set missing", http.post("/jobs/train", data={"name": "x"}), 422,
         ["training_set", "training_path"]),
        ("bad model name", http.post("/jobs/train", data={"name": "../evil",
         "training_path": str(tmp_path)}), 422, ["not allowed"]),
        ("bad training parameter", http.post("/jobs/train", data={"name": "ok", "training_path":
         str(tmp_path), "params": json.dumps({"epochs": 0})}), 422, ["epochs"]),
        ("bad notebook parameter", http.post("/notebook", json={"params": {"input_size": 33}}),
         422, ["input size", "33"]),
    ]  # fmt: skip


def test_bad_requests_get_a_clear_4xx_and_the_service_stays_healthy(
    http, files, model_id, tmp_path
):
    for name, response, status, words in _bad(http, files, model_id, tmp_path):
        assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "Traceback" not in detail, name
        assert "CLI:" not in detail and not re.search(r"--[a-z]", detail), f"{name}: CLI words"
        for w in words:
            assert w.lower() in detail.lower(), f"{name}: '{w}' not in {detail!r}"
        _healthy(http)
    # and real work still goes through
    r = _propagate(
        http, files["movie"], files["rois"], {"model": model_id, "next_frame_only": True}
    )
    assert r.status_code == 200


def test_notebook_endpoint_returns_a_valid_notebook(http):
    import nbformat

    r = http.post("/notebook", json={"params": {"epochs": 7}})
    assert r.status_code == 200, r.text
    nb = nbformat.from_dict(r.json())
    nbformat.validate(nb)
    assert nb.metadata["rescunet_ij"]["config"]["epochs"] == 7


# ----------------------------------------------------------------------------- token and binding
def test_non_loopback_bind_needs_a_token(tmp_path):
    rc, out = run_server(tmp_path, "--host", "0.0.0.0", env={"RESCUNET_IJ_TOKEN": ""})
    assert rc == 2
    assert "refusing to listen on 0.0.0.0" in out and "token" in out
    assert "Traceback" not in out


def test_token_and_body_limit(tmp_path, files):
    """Bound to every interface with a token: each request must carry it; bodies are bounded."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    srv = start_server(tmp_path / "m", "--host", "0.0.0.0", "--token-file", str(token_file),
                       "--max-body-mb", "0.05")  # fmt: skip
    try:
        port = srv.url.rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{port}/v1"
        none = httpx.get(base + "/health")
        assert none.status_code == 401 and "Authorization: Bearer" in none.json()["detail"]
        wrong = httpx.get(base + "/health", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and "wrong access token" in wrong.json()["detail"]
        assert httpx.get(base.removesuffix("/v1") + "/openapi.json").status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        ok = httpx.get(base + "/health", headers=auth)
        assert ok.status_code == 200 and ok.json()["token_required"] is True
        big = httpx.post(
            base + "/propagate",
            headers=auth,
            files={"movie": ("m.tif", b"\0" * 200_000)},
            data={"params": "{}"},
        )
        assert big.status_code == 413 and "--max-body-mb" in big.json()["detail"]
        assert httpx.get(base + "/health", headers=auth).status_code == 200
    finally:
        srv.stop()


# ----------------------------------------------------------------------------- training jobs
def _train(http, files, name: str, **params) -> dict:
    r = http.post(
        "/jobs/train",
        data={"name": name, "params": json.dumps({**TRAIN_PARAMS, **params})},
        files={"training_set": ("tset.zip", files["tset"].read_bytes())},
    )
    assert r.status_code == 202, r.text
    return r.json()


def _wait(http, job_id: str, until, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = http.get(f"/jobs/{job_id}").json()
        if until(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached the state: {state}")


def test_training_job_saves_a_model_the_service_can_use(http, files, server):
    job = _train(http, files, "trained-ok", epochs=3, seed=0)
    assert job["status"] in ("queued", "running") and job["samples"] > 0
    done = _wait(http, job["id"], lambda s: s["status"] in ("succeeded", "failed", "cancelled"))
    assert done["status"] == "succeeded", done["error"]
    assert done["progress"]["epoch"] == 3 and done["progress"]["epochs"] == 3
    assert len(done["history"]) == 3 and done["history"][0]["train_loss"] > 0
    path = Path(done["result"]["model_path"])
    assert path == server.models_dir / "trained-ok.rescunet" and path.is_file()
    assert api.load_model(path).model_config.base_filters == 8
    r = _propagate(http, files["movie"], files["rois"],
                   {"model": done["result"]["model_id"], "next_frame_only": True})  # fmt: skip
    assert r.status_code == 200, r.text
    # the name is now taken
    again = http.post(
        "/jobs/train", data={"name": "trained-ok", "training_path": str(files["tset"])}
    )
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


def test_cancelled_job_leaves_no_model_and_busy_device_says_why(http, files, server, model_id):
    job = _train(http, files, "cancelled", epochs=5000)
    _wait(http, job["id"], lambda s: s["progress"].get("epoch", 0) >= 1)
    busy = _propagate(http, files["movie"], files["rois"], {"model": model_id})
    assert busy.status_code == 503 and job["id"] in busy.json()["detail"]
    assert http.get("/health").json()["jobs_active"] == [job["id"]]
    r = http.post(f"/jobs/{job['id']}/cancel")
    assert r.status_code == 200
    state = _wait(http, job["id"], lambda s: s["status"] != "running")
    assert state["status"] == "cancelled"
    assert not (server.models_dir / "cancelled.rescunet").exists()
    job_dir = server.models_dir / ".jobs" / job["id"]
    assert not list(job_dir.glob("*.rescunet")) and not (job_dir / "training_set.zip").exists()
    again = http.post(f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]
    assert http.get("/jobs/nope").status_code == 404
    _healthy(http)
    r = _propagate(
        http, files["movie"], files["rois"], {"model": model_id, "next_frame_only": True}
    )
    assert r.status_code == 200


def test_a_job_cancelled_at_once_is_cancelled_not_failed(http, files, server):
    """Cancelled while queued or before its first epoch ended: ``cancelled``, and no model."""
    job = _train(http, files, "cancelled-at-once", epochs=5000)
    assert http.post(f"/jobs/{job['id']}/cancel").status_code == 200
    state = _wait(http, job["id"], lambda s: s["status"] not in ("queued", "running"))
    assert state["status"] == "cancelled", state
    assert not list(server.models_dir.glob("cancelled-at-once*"))


def test_killed_server_leaves_no_model_and_a_restart_reports_the_job_failed(tmp_path, files):
    models = tmp_path / "models"
    srv = start_server(models)
    try:
        with httpx.Client(base_url=srv.url + "/v1", timeout=60) as http:
            job = _train(http, files, "killed", epochs=5000)
            _wait(http, job["id"], lambda s: s["progress"].get("epoch", 0) >= 2)
    finally:
        srv.stop(signal.SIGKILL)
    job_dir = models / ".jobs" / job["id"]
    assert json.loads((job_dir / "job.json").read_text())["status"] == "running"
    srv = start_server(models)
    try:
        with httpx.Client(base_url=srv.url + "/v1", timeout=60) as http:
            state = http.get(f"/jobs/{job['id']}").json()
            assert state["status"] == "failed"
            assert "stopped" in state["error"] and "no model was saved" in state["error"]
            assert http.get("/health").json()["jobs_active"] == []
    finally:
        srv.stop()
    assert not (models / "killed.rescunet").exists()
    assert not list(job_dir.glob("*.rescunet")) and not list(models.glob("*.rescunet"))


# ----------------------------------------------------------------------------- settings
def test_settings_refuse_weak_setups(tmp_path, monkeypatch):
    from rescunet_ij.errors import ConfigError
    from rescunet_ij.service.settings import make_settings

    monkeypatch.delenv("RESCUNET_IJ_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="refusing to listen on 192.0.2.1"):
        make_settings(host="192.0.2.1")
    short = tmp_path / "short"
    short.write_text("abc")
    with pytest.raises(ConfigError, match="too short"):
        make_settings(token_file=short, host="0.0.0.0")
    with pytest.raises(ConfigError, match="empty"):
        (tmp_path / "empty").write_text("\n")
        make_settings(token_file=tmp_path / "empty")
    with pytest.raises(ConfigError, match="port"):
        make_settings(port=70000)
    monkeypatch.setenv("RESCUNET_IJ_TOKEN", TOKEN)
    s = make_settings(host="0.0.0.0", models_dir=tmp_path)
    assert s.token.get_secret_value() == TOKEN and "****" in repr(s.token)
    assert make_settings(host="localhost").host == "localhost"


def test_stopped_server_ends_a_running_job_as_failed_without_a_model(tmp_path, files):
    """SIGTERM (Ctrl-C, a cluster's time limit): the job stops after its batch, saves nothing."""
    models = tmp_path / "models"
    srv = start_server(models)
    try:
        with httpx.Client(base_url=srv.url + "/v1", timeout=60) as http:
            job = _train(http, files, "stopped", epochs=5000)
            _wait(http, job["id"], lambda s: s["progress"].get("epoch", 0) >= 1)
    finally:
        srv.stop(signal.SIGTERM)
    assert srv.proc.returncode is not None
    state = json.loads((models / ".jobs" / job["id"] / "job.json").read_text())
    assert state["status"] == "failed" and "service was stopped" in state["error"]
    assert not list(models.glob("*.rescunet"))
    assert not list((models / ".jobs" / job["id"]).glob("*.rescunet"))
