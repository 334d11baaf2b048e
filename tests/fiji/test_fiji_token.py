"""A service with an access token: the token from ReSCU-Net Settings goes with every request."""

from __future__ import annotations

import pytest
from harness import no_trace, run_plan, settings
from service_util import start_server

pytestmark = pytest.mark.ij

TOKEN = "fiji-test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def token_service(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("models"), env={"RESCUNET_IJ_TOKEN": TOKEN})
    yield server
    server.stop()


def test_token(token_service, tiny_model_path, tmp_path):
    url = token_service.url
    steps = [
        settings(url, tiny_model_path, token="wrong-token-0123456789"),
        {"op": "run", "label": "Model Info", "options": "model_file="},
        settings(url, tiny_model_path, token=TOKEN),
        {"op": "run", "label": "Model Info", "options": "model_file="},
        {"op": "prefs", "keys": ["rescunet.token"]},
        # an empty token keeps the stored one ("-" clears it)
        settings(url, tiny_model_path),
        {"op": "prefs", "keys": ["rescunet.token"]},
        settings(url, tiny_model_path, token="-"),
        {"op": "prefs", "keys": ["rescunet.token"]},
    ]
    res = run_plan(steps, tmp_path / "home")
    assert "refused the access token" in res[1]["last_error"], res[1]["log"]
    no_trace(res[1])
    assert res[3]["ok"] and not res[3]["last_error"], res[3]["log"]
    assert res[4]["values"] == {"rescunet.token": TOKEN}
    assert res[6]["values"] == {"rescunet.token": TOKEN}
    assert res[8]["values"] == {"rescunet.token": ""}
