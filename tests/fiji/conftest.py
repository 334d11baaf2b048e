"""Fixtures for the Fiji command tests: one live rescunet-ij service per test module."""

from __future__ import annotations

import pytest
from harness import skip_reason
from service_util import start_server


def pytest_collection_modifyitems(items):
    reason = skip_reason()
    for item in items:
        if "tests/fiji/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.ij)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A real ``rescunet-ij serve --port 0 --device cpu`` for the module's tests."""
    server = start_server(tmp_path_factory.mktemp("models"))
    yield server
    server.stop()
