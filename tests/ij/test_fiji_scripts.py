"""Fiji menu scripts (called as Fiji's Python mode calls them), the batch macro and the example."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tifffile
from ij_helpers import java_polygon_roi, run_macro

pytestmark = pytest.mark.ij

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "fiji_scripts" / "ReSCU-Net"
MACRO = REPO / "fiji_scripts" / "macros" / "propagate_batch.ijm"
EXAMPLE = REPO / "examples" / "imagej_propagate.py"
PARAM = re.compile(r"^#@(output)?\s*(\w+)\s*(\((.*)\))?\s*(\w+)\s*$")
TYPES = {"ImagePlus", "File", "Integer", "Boolean", "String", "Double"}


def parse_parameters(path: Path) -> tuple[dict[str, tuple[str, str | None]], list[str]]:
    """SciJava's view of a script's #@ lines: inputs (type, default) and outputs."""
    inputs: dict[str, tuple[str, str | None]] = {}
    outputs: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#@"):
            continue
        m = PARAM.match(line)
        assert m, f"{path.name}: cannot parse {line!r}"
        is_out, typ, _, opts, name = m.groups()
        assert typ in TYPES, f"{path.name}: unexpected type {typ}"
        if is_out:
            outputs.append(name)
            continue
        default = re.search(r'value\s*=\s*("([^"]*)"|[\w.]+)', opts or "")
        value = (
            None
            if default is None
            else (default.group(2) if default.group(2) is not None else default.group(1))
        )
        inputs[name] = (typ, value)
    return inputs, outputs


def run_fiji_script(path: Path, **bindings):
    """Mimic Fiji's Python mode (PythonScriptRunner): bindings become globals, outputs come back."""
    from rescunet_ij.bridge._java import jc

    inputs, outputs = parse_parameters(path)
    scope = {"__name__": "__main__", "__file__": str(path)}
    for name, (typ, default) in inputs.items():
        if name in bindings:
            value = bindings[name]
        elif typ == "ImagePlus":
            value = jc.WindowManager.getCurrentImage()
        else:
            assert default is not None, f"{path.name}: no value for {name}"
            value = {"Integer": int, "Double": float, "Boolean": lambda v: v == "true"}.get(
                typ, str
            )(default)
        if typ == "File" and value is not None:
            value = jpype_file(value)
        scope[name] = value
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), scope)  # noqa: S102 - our own script
    return {name: scope.get(name) for name in outputs}


def jpype_file(p):
    import jpype

    return jpype.JClass("java.io.File")(str(p))


def _movie_window(n_frames=6, seed=3):
    from rescunet_ij.bridge import movie_to_imageplus
    from rescunet_ij.io.movie import as_movie
    from rescunet_ij.sample_data import synthetic_movie

    sim = synthetic_movie(n_frames, (96, 96), n_objects=3, radius=(7.0, 10.0), seed=seed)
    imp = movie_to_imageplus(as_movie(sim.images, dims="tyx"), "cells", show=True)
    return sim, imp


def _seed(rm, sim, frames=range(1)):
    from rescunet_ij.demo import labels_to_outlines

    for o in labels_to_outlines(sim.labels, frames):
        rm.addRoi(java_polygon_roi(o.polygon, name=f"cell {o.object_id}", position=o.frame + 1))


def test_every_script_header_parses():
    scripts = sorted(SCRIPTS.glob("*.py"))
    assert [p.name for p in scripts] == [
        "Apply_To_Current_Frame.py",
        "Export_Training_Set.py",
        "Propagate_Outlines.py",
        "Train_Model.py",
    ]
    for p in scripts:
        inputs, outputs = parse_parameters(p)
        assert outputs == ["summary"]
        assert inputs
        compile(p.read_text(encoding="utf-8"), str(p), "exec")


def test_export_and_train_scripts(ij1, rm, tmp_path):
    sim, _ = _movie_window()
    _seed(rm, sim, range(4))
    out = run_fiji_script(
        SCRIPTS / "Export_Training_Set.py", out_dir=tmp_path / "set", subimage_size=32
    )
    assert out["summary"] == f"training set written to {tmp_path / 'set'}"
    again = run_fiji_script(
        SCRIPTS / "Export_Training_Set.py", out_dir=tmp_path / "set", subimage_size=32
    )
    assert again["summary"].startswith("error:") and "overwrite" in again["summary"]
    res = run_fiji_script(
        SCRIPTS / "Train_Model.py",
        training_set=tmp_path / "set",
        model_file=tmp_path / "m.rescunet",
        epochs=1,
        input_size=32,
        base_filters=4,
        device="cpu",
    )
    assert res["summary"].startswith(f"model saved to {tmp_path / 'm.rescunet'}"), res["summary"]
    assert (tmp_path / "m.rescunet").is_file()


def test_propagate_script_reports_errors_instead_of_raising(ij1, rm, tmp_path):
    _movie_window()
    out = run_fiji_script(SCRIPTS / "Propagate_Outlines.py", model=tmp_path / "m.rescunet")
    assert out["summary"].startswith("error: the ROI Manager is empty")
    assert rm.getCount() == 0


@pytest.mark.slow
def test_propagate_and_apply_scripts(ij1, rm, ij_model_path):
    sim, imp = _movie_window()
    _seed(rm, sim)
    imp.setT(1)
    out = run_fiji_script(SCRIPTS / "Propagate_Outlines.py", model=ij_model_path, end_frame=4)
    assert "3 object(s) propagated from frame 1 through frame 4" in out["summary"], out["summary"]
    assert rm.getCount() == 12
    imp.setT(5)
    out = run_fiji_script(SCRIPTS / "Apply_To_Current_Frame.py", model=ij_model_path)
    assert "from frame 4 through frame 5" in out["summary"], out["summary"]
    assert [int(r.getPosition()) for r in rm.getRoisAsArray()][-3:] == [5, 5, 5]


def _cli() -> Path | None:
    exe = Path(sys.executable).parent / "rescunet-ij"
    if exe.is_file():
        return exe
    found = shutil.which("rescunet-ij")
    return Path(found) if found else None


@pytest.mark.slow
def test_batch_macro_runs_the_cli_and_opens_the_rois(ij1, tmp_path, ij_model_path):
    """The real macro interpreter runs propagate_batch.ijm, which exec()s the real CLI."""
    from rescunet_ij.demo import labels_to_outlines
    from rescunet_ij.io.rois import read_rois, write_rois
    from rescunet_ij.sample_data import synthetic_movie

    exe = _cli()
    if exe is None:
        pytest.skip("the rescunet-ij command line is not installed (pip install -e .)")
    sim = synthetic_movie(6, (96, 96), n_objects=3, radius=(7.0, 10.0), seed=3)
    folder = tmp_path / "with space"
    folder.mkdir()
    movie = folder / "cells.tif"
    tifffile.imwrite(movie, sim.images, imagej=True, metadata={"axes": "TYX"})
    seeds = write_rois(folder / "RoiSet.zip", labels_to_outlines(sim.labels, range(1)), n_frames=6)
    args = f"exe=[{exe}] movie=[{movie}] rois=[{seeds}] model=[{ij_model_path}] first=1 last=5"
    result = run_macro(MACRO.read_text(encoding="utf-8"), args)
    out = folder / "RoiSet_propagated.zip"
    assert result == f"count=15 out={out}", result
    got = read_rois(out, n_frames=6, image_shape=(96, 96))
    assert [(o.frame, o.object_id) for o in got] == [(t, k) for t in range(5) for k in (1, 2, 3)]


def test_batch_macro_reports_missing_arguments(ij1, capfd):
    with pytest.raises(RuntimeError, match="canceled"):
        run_macro(MACRO.read_text(encoding="utf-8"), "movie=[/nonexistent.tif]")
    assert "needs movie=, rois= and model= arguments" in capfd.readouterr().out


@pytest.mark.slow
def test_example_runs_under_xvfb_run(tmp_path, ij_model_path):
    """examples/imagej_propagate.py, exactly as docs/bridge.md tells users to run it."""
    cmd = [sys.executable, str(EXAMPLE), "--model", str(ij_model_path), "--out", str(tmp_path)]
    if shutil.which("xvfb-run"):
        cmd = ["xvfb-run", "-a", *cmd]
    elif not os.environ.get("DISPLAY"):
        pytest.skip("needs xvfb-run or a display")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 object(s) propagated from frame 1 through frame 10" in r.stdout
    assert "30 ROIs in the ROI Manager" in r.stdout
    from rescunet_ij.io.rois import read_rois

    got = read_rois(tmp_path / "RoiSet.zip", n_frames=10, image_shape=(96, 96))
    assert len(got) == 30 and {o.object_id for o in got} == {1, 2, 3}
