"""propagate_batch.ijm in the real ImageJ macro interpreter: it exec()s the real command line.

The macro finds rescunet-ij through the ImageJ preference rescunet.env (as install-fiji sets it),
reads the outcome from --status-file, and shows the command line's own error message.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import tifffile
from ij_helpers import run_macro

pytestmark = pytest.mark.ij

REPO = Path(__file__).resolve().parents[2]
MACRO = REPO / "fiji_scripts" / "macros" / "propagate_batch.ijm"


def _env_has_cli() -> bool:
    return (Path(sys.prefix) / "bin" / "rescunet-ij").is_file() or (
        Path(sys.prefix) / "Scripts" / "rescunet-ij.exe"
    ).is_file()


@pytest.fixture
def env_pref(ij1):
    """The ImageJ preference rescunet.env set to this environment (in memory only), then unset."""
    if not _env_has_cli():
        pytest.skip("the rescunet-ij command line is not installed here (pip install -e .)")
    import jpype

    Prefs = jpype.JClass("ij.Prefs")
    old = Prefs.get("rescunet.env", None)
    Prefs.set("rescunet.env", sys.prefix)
    yield Prefs
    Prefs.set("rescunet.env", old)


@pytest.fixture
def files(tmp_path):
    from rescunet_ij.demo import labels_to_outlines
    from rescunet_ij.io.rois import write_rois
    from rescunet_ij.sample_data import synthetic_movie

    sim = synthetic_movie(6, (96, 96), n_objects=3, radius=(7.0, 10.0), seed=3)
    folder = tmp_path / "with space"
    folder.mkdir()
    movie = folder / "cells.tif"
    tifffile.imwrite(movie, sim.images, imagej=True, metadata={"axes": "TYX"})
    seeds = write_rois(folder / "RoiSet.zip", labels_to_outlines(sim.labels, range(1)), n_frames=6)
    return folder, movie, seeds


def test_success_returns_the_summary_and_writes_the_rois(env_pref, files, ij_model_path):
    from rescunet_ij.io.rois import read_rois

    folder, movie, seeds = files
    args = f"movie=[{movie}] rois=[{seeds}] model=[{ij_model_path}] first=1 last=5"
    result = run_macro(MACRO.read_text(encoding="utf-8"), args)  # no exe=: from rescunet.env
    out = folder / "RoiSet_propagated.zip"
    assert result is not None and result.startswith("count=15 doubtful="), result
    assert result.endswith(f" out={out}")
    got = read_rois(out, n_frames=6, image_shape=(96, 96))
    assert [(o.frame, o.object_id) for o in got] == [(t, k) for t in range(5) for k in (1, 2, 3)]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not a model", "rescunet-ij propagate failed: cannot open model file"),
        ("frames out of range", "rescunet-ij propagate failed: "),
    ],
)
def test_failure_shows_the_cli_error_and_keeps_the_old_output(
    env_pref, files, ij_model_path, capfd, tmp_path, case, message
):
    folder, movie, seeds = files
    out = folder / "RoiSet_propagated.zip"
    out.write_bytes(b"the previous result")
    model, frames = ij_model_path, "first=1 last=99"
    if case == "not a model":
        model, frames = tmp_path / "bogus.rescunet", "first=1 last=5"
        model.write_text("not a model")
    capfd.readouterr()
    with pytest.raises(RuntimeError, match="canceled"):
        run_macro(
            MACRO.read_text(encoding="utf-8"),
            f"movie=[{movie}] rois=[{seeds}] model=[{model}] {frames}",
        )
    shown = capfd.readouterr().out
    assert message in shown, shown
    if case == "frames out of range":
        assert "99" in shown and "outside the movie" in shown, shown
    assert out.read_bytes() == b"the previous result"
    assert not list(folder.glob("*.tmp*"))


def test_a_wrong_env_setting_is_named(env_pref, files, ij_model_path, capfd, tmp_path):
    folder, movie, seeds = files
    env_pref.set("rescunet.env", str(tmp_path / "no-env"))
    capfd.readouterr()
    with pytest.raises(RuntimeError, match="canceled"):
        run_macro(
            MACRO.read_text(encoding="utf-8"),
            f"movie=[{movie}] rois=[{seeds}] model=[{ij_model_path}]",
        )
    shown = capfd.readouterr().out
    assert "ImageJ preference rescunet.env" in shown and "no-env" in shown, shown


def test_missing_arguments_are_reported(ij1, capfd):
    with pytest.raises(RuntimeError, match="canceled"):
        run_macro(MACRO.read_text(encoding="utf-8"), "movie=[/nonexistent.tif]")
    assert "needs movie=, rois= and model= arguments" in capfd.readouterr().out


def test_imagej_reads_the_prefs_install_fiji_writes(ij1, tmp_path, monkeypatch):
    """The real ij.Prefs.get sees the keys, from the file as java.util.Properties loads it."""
    import jpype

    from rescunet_ij import fiji_install

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    app = tmp_path / "Fiji.app"
    (app / "jars").mkdir(parents=True)
    (app / "scripts").mkdir()
    env = tmp_path / "an env: with spaces, ä and C:\\backslash"
    result = fiji_install.install(app, env=env, url="http://127.0.0.1:9876")
    assert result.prefs_file.is_relative_to(tmp_path / "home")
    Prefs = jpype.JClass("ij.Prefs")
    props = Prefs.getControlPanelProperties()  # the Properties that Prefs.get reads
    saved = props.clone()
    stream = jpype.JClass("java.io.FileInputStream")(str(result.prefs_file))
    try:
        props.load(stream)  # what Prefs.loadPrefs does at ImageJ's start
        assert str(Prefs.get("rescunet.env", "")) == str(env)
        assert str(Prefs.get("rescunet.url", "")) == "http://127.0.0.1:9876"
    finally:
        stream.close()
        props.clear()
        props.putAll(saved)
    # the file's folder is where this ImageJ looks (Linux and Windows: ~/.imagej; macOS: Library)
    expected = ".imagej" if sys.platform != "darwin" else "Preferences"
    assert Path(str(Prefs.getPrefsDir())).name in (expected, Path.cwd().name)
