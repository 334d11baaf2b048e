"""examples/imagej_propagate.py under xvfb-run, as docs/bridge.md tells users to run it.

(The Fiji commands are tested in tests/fiji, the exec() batch macro in test_exec_macro.py.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ij

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "imagej_propagate.py"


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
