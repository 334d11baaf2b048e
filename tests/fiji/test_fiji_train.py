"""Train Model (2 epochs, then a cancelled run) in the real JVM against a live service."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from harness import finish, no_trace, run_plan, settings

pytestmark = pytest.mark.ij

TRAIN_OPTS = (
    "input_size=32 subimage_size=0 learning_rate=0.003 batch_size=16 concatenation_level=1 "
    "base_filters=8 erosion_width=0 validation_fraction=0.15 early_stopping_patience=4 "
    "use_model=true"
)


@pytest.fixture(scope="module")
def training_zip(tmp_path_factory):
    from rescunet_ij import api
    from rescunet_ij.demo import labels_to_outlines
    from rescunet_ij.sample_data import synthetic_movie

    root = tmp_path_factory.mktemp("fiji_train")
    sm = synthetic_movie(8, (64, 64), n_objects=2, radius=(7.0, 9.0), seed=5)
    movie = api.as_movie(sm.images, dims="tyx")
    api.make_training_set(
        movie,
        labels_to_outlines(sm.labels),
        root / "tset",
        subimage_size=32,
        zip_path=root / "tset.zip",
    )
    return root / "tset.zip"


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_train_model_then_cancel(training_zip, service, tiny_model_path, tmp_path):
    from rescunet_ij import api

    model = tmp_path / "trained.rescunet"
    steps = [
        settings(service.url, tiny_model_path),
        {
            "op": "run",
            "label": "Train Model",
            "options": f"training_set=[{training_zip}] name=fiji-tiny epochs=2 {TRAIN_OPTS} "
            f"model_out=[{model}]",
        },
        {"op": "prefs", "keys": ["rescunet.model"]},
    ]
    res = run_plan(steps, tmp_path / "home")
    step = res[1]
    assert step["ok"], step
    assert not step["last_error"], step["log"]
    assert step["outputs"]["result"] == str(model)
    assert "epoch 2/2: train loss " in step["log"], step["log"]
    no_trace(step)
    assert res[2]["values"] == {"rescunet.model": str(model)}
    loaded = api.load_model(model)
    assert loaded is not None

    # a run cancelled while the command polls (what Esc does: POST /v1/jobs/{id}/cancel)
    model2 = tmp_path / "cancelled.rescunet"
    steps = [
        settings(service.url, tiny_model_path),
        {
            "op": "run",
            "label": "Train Model",
            "options": f"training_set=[{training_zip}] name=fiji-cancel epochs=500 {TRAIN_OPTS} "
            f"model_out=[{model2}]",
        },
    ]
    proc, out = run_plan(steps, tmp_path / "home2", wait=False)
    job = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and job is None:
        for j in _get(service.url + "/v1/jobs"):
            if j["model_name"].startswith("fiji-cancel") and j["status"] == "running":
                job = j
        time.sleep(0.3)
    assert job is not None, "the training job did not start"
    req = urllib.request.Request(service.url + f"/v1/jobs/{job['id']}/cancel", method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    res = finish(proc, out)
    step = res[1]
    assert step["ok"], step
    assert step["outputs"]["result"] == "cancelled", step
    assert "cancelled; no model saved" in step["log"]
    assert not model2.exists()
    assert not step["last_error"]
    no_trace(step)
