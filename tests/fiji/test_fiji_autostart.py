"""No service answers at a local URL: the commands start one from the configured environment."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest
from harness import no_trace, run_plan, settings

pytestmark = pytest.mark.ij


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_service_starts_by_itself(tiny_model_path, tmp_path):
    env_dir = Path(sys.prefix)  # the environment rescunet-ij is installed in (bin/rescunet-ij)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    steps = [
        settings(url, tiny_model_path, env=str(env_dir)),
        {"op": "run", "label": "Model Info", "options": "model_file="},
    ]
    # HOME for the started service (its default models folder), away from the real one
    res = run_plan(steps, tmp_path / "home", env={"HOME": str(tmp_path / "home")})
    step = res[1]
    assert step["ok"] and not step["last_error"], step["log"] + step["jvm_output"][-3000:]
    assert "ReSCU-Net: starting the service: " in step["log"]
    assert f"serve --port {port}" in step["log"]
    assert "[rescunet-ij serve]" in step["log"]
    assert "id: " in step["log"]
    no_trace(step)
    # it ends with Fiji (the runner JVM has exited): the port is free again
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                break
        time.sleep(0.5)
    else:
        raise AssertionError("the started service still listens after Fiji exited")


def test_library_missing(tmp_path):
    steps = [{"op": "menu", "label": "Model Info", "values": {"model_file": ""}}]
    res = run_plan(steps, tmp_path / "home", lib=tmp_path / "nowhere" / "RescunetClient.groovy")
    step = res[0]
    assert step["ok"], step
    assert len(step["dialogs"]) == 1, step
    text = step["dialogs"][0]["text"]
    assert "The ReSCU-Net library is missing" in text and "rescunet-ij install-fiji" in text
    no_trace(step)
