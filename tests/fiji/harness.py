"""Run the ReSCU-Net Fiji commands (Groovy) in a real, separate ImageJ 1.x + Groovy 4 JVM.

``runner.groovy`` stands in only for Fiji's SciJava layer (``#@`` parameters, the menu label, the
macro options); ImageJ, its ROI Manager and macro interpreter, Groovy 4 and the commands are real.
The JVM gets ``-Djava.awt.headless=false`` (pytest-xvfb's display: DISPLAY is inherited),
``-Duser.home=<tmp>`` (ImageJ's preferences go to <tmp>/.imagej/IJ_Prefs.txt, never the real ones)
and ``-Drescunet.lib=<repo>/fiji_scripts/lib/rescunet-ij/RescunetClient.groovy``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "fiji_scripts" / "Plugins" / "ReSCU-Net"
LIB = REPO / "fiji_scripts" / "lib" / "rescunet-ij" / "RescunetClient.groovy"
MACRO = REPO / "fiji_scripts" / "macros" / "Batch_Propagate.ijm"
RUNNER = Path(__file__).with_name("runner.groovy")
GROOVY_DIR = Path(os.environ.get("GROOVY4_DIR", REPO / ".cache" / "groovy4"))
IJ_JAR = Path(os.environ.get("IJ_JAR", "/usr/share/java/ij.jar"))
JARS = [IJ_JAR, GROOVY_DIR / "groovy-4.0.26.jar", GROOVY_DIR / "groovy-json-4.0.26.jar"]


def skip_reason() -> str | None:
    """Why these tests cannot run here (None when they can)."""
    if shutil.which("java") is None:
        return "java is not installed (bash scripts/setup.sh test)"
    for jar in JARS:
        if not jar.is_file():
            return f"{jar} is missing (bash scripts/setup.sh test installs ij.jar and Groovy 4)"
    if not os.environ.get("DISPLAY"):
        return "no display: run under Xvfb (pytest-xvfb)"
    return None


def run_plan(
    steps: list[dict],
    home: Path,
    timeout: float = 240,
    wait: bool = True,
    env: dict | None = None,
    lib: Path = LIB,
):
    """Run the steps in one JVM; the list of step results (or the Popen and result path)."""
    home.mkdir(parents=True, exist_ok=True)
    plan = home / f"plan-{os.getpid()}-{id(steps)}.json"
    out = plan.with_suffix(".result.json")
    plan.write_text(json.dumps({"scripts_dir": str(SCRIPTS), "steps": steps}))
    cmd = [
        "java",
        "-Xmx1g",
        "-Djava.awt.headless=false",
        f"-Duser.home={home}",
        f"-Duser.dir={home}",
        f"-Drescunet.lib={lib}",
        "-cp",
        os.pathsep.join(str(j) for j in JARS),
        "groovy.ui.GroovyMain",
        str(RUNNER),
        str(plan),
        str(out),
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if not wait:
        return proc, out
    return finish(proc, out, timeout)


def finish(proc: subprocess.Popen, out: Path, timeout: float = 240) -> list[dict]:
    """Wait for a runner JVM; its step results."""
    try:
        text, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        text, _ = proc.communicate()
        raise AssertionError("the runner JVM timed out:\n" + text[-4000:]) from None
    if not out.exists():
        raise AssertionError(f"the runner wrote no result (rc {proc.returncode}):\n{text[-4000:]}")
    steps = json.loads(out.read_text())["steps"]
    for s in steps:
        s["jvm_output"] = text
    return steps


def settings(url: str, model: Path | str = "", env: str = "", token: str = "") -> dict:
    """A step that configures the commands the way a user does: ReSCU-Net Settings, from a macro."""
    opts = f"url=[{url}] env=[{env}] model=[{model}] check=false"
    if token:
        opts += f" token=[{token}]"
    return {"op": "run", "label": "ReSCU-Net Settings", "options": opts}


def no_trace(step: dict) -> None:
    """No Java stack trace reached the user (dialogs, the Log outside the bug-report block)."""
    for d in step["dialogs"]:
        assert "\tat " not in d["text"] and "Exception" not in d["text"], d
    assert "\tat " not in step["log"], step["log"]
