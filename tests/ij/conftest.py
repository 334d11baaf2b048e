"""Fixtures for the ImageJ bridge tests: one real ImageJ 1.x JVM per pytest process.

* The JVM starts lazily, in the session fixture ``imagej`` (never at import time), through
  ``rescunet_ij.bridge.start_imagej()`` itself; JPype cannot restart a JVM, so every test of the
  process shares it. pytest-xvfb provides the virtual display (DISPLAY) the ROI Manager needs.
* A watchdog closes any modal dialog ImageJ opens, so a stray ``IJ.error`` cannot hang the run.
* ``ij1`` resets ImageJ's global state (images, ROI Manager, batch mode) after each test.

Tests here need ``ij.jar`` (``$IJ_JAR`` or Debian's ``libij-java``), Java 11+ and JPype/scyjava;
they are skipped with the reason when one is missing.
"""

from __future__ import annotations

import importlib.util
import os
import threading

import pytest


def _skip_reason() -> str | None:
    for mod in ("jpype", "scyjava"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install 'rescunet-ij[imagej]')"
    from rescunet_ij.bridge.gateway import find_ij_jar
    from rescunet_ij.errors import ImageJError

    try:
        find_ij_jar()
    except ImageJError as exc:
        return str(exc)
    if not os.environ.get("DISPLAY"):
        return "no display: run under Xvfb (pytest-xvfb installed, or xvfb-run)"
    return None


@pytest.fixture(scope="session")
def imagej():
    """The ImageJ session (started once per pytest process) with a dialog watchdog."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from rescunet_ij.bridge import start_imagej

    handle = start_imagej()
    from java.awt import Dialog, Window

    from rescunet_ij.bridge._java import jc

    # NB: never "from ij import ..." in these tests: this folder is named ij too.

    seen: list[str] = []
    stop = threading.Event()

    def watchdog() -> None:
        while not stop.wait(0.2):
            for w in Window.getWindows():
                if isinstance(w, Dialog) and w.isShowing():
                    seen.append(str(w.getTitle()))
                    w.dispose()

    th = threading.Thread(target=watchdog, daemon=True, name="ij-dialog-watchdog")
    th.start()
    jc.IJ.redirectErrorMessages(True)
    handle.dialogs = seen  # type: ignore[attr-defined]
    yield handle
    stop.set()
    th.join()


@pytest.fixture
def ij1(imagej):
    """Per test: the session, then ImageJ's global state reset (images, ROI Manager, batch mode)."""
    yield imagej
    from rescunet_ij.bridge._java import jc

    WindowManager, RoiManager, Interpreter = jc.WindowManager, jc.RoiManager, jc.Interpreter
    for i in list(WindowManager.getIDList() or []):
        imp = WindowManager.getImage(i)
        if imp is not None:
            imp.changes = False
            imp.close()
    rm = RoiManager.getInstance()
    if rm is not None:
        rm.reset()
        rm.close()
    Interpreter.batchMode = False


@pytest.fixture
def rm(ij1):
    """The shared ROI Manager (what a Fiji user sees), empty."""
    from rescunet_ij.bridge._java import jc

    r = jc.RoiManager.getRoiManager()
    r.reset()
    return r


@pytest.fixture(scope="session")
def ij_model_path(request, tmp_path_factory):
    """A tiny trained model: the suite-wide one when the root conftest provides it, else our own."""
    try:
        return request.getfixturevalue("tiny_model_path")
    except pytest.FixtureLookupError:
        pass
    from rescunet_ij import api
    from rescunet_ij.demo import labels_to_outlines
    from rescunet_ij.sample_data import synthetic_movie

    root = tmp_path_factory.mktemp("ij_model")
    sim = synthetic_movie(24, (96, 96), n_objects=4, radius=(7.0, 10.0), seed=101)
    tset = api.make_training_set(
        api.as_movie(sim.images, dims="tyx"),
        labels_to_outlines(sim.labels),
        root / "set",
        subimage_size=32,
    )
    result = api.train(
        tset,
        root / "tiny.rescunet",
        epochs=25,
        seed=0,
        input_size=32,
        base_filters=8,
        concatenation_level=1,
        batch_size=16,
        learning_rate=3e-3,
        validation_fraction=0.15,
        early_stopping_patience=4,
        device="cpu",
    )
    return result.model_path
