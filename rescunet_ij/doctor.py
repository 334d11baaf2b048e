"""Environment report for bug reports and set-up problems.

Standard library only, so it runs even when torch, Java or ImageJ are broken.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys

IJ_JAR_CANDIDATES = ("/usr/share/java/ij.jar",)


def _version(pkg: str) -> str:
    if importlib.util.find_spec(pkg) is None:
        return "not installed"
    try:
        from importlib.metadata import version

        return version(
            {"skimage": "scikit-image", "jpype": "JPype1", "imagej": "pyimagej"}.get(pkg, pkg)
        )
    except Exception as exc:  # metadata can be missing for source checkouts
        return f"installed (version unknown: {exc.__class__.__name__})"


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        return "not found on PATH (needed for the ImageJ bridge only; install OpenJDK 11+)"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20)
        return f"{java}: {(out.stderr or out.stdout).splitlines()[0]}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{java}: failed to run ({exc})"


def _torch() -> str:
    if importlib.util.find_spec("torch") is None:
        return "not installed"
    code = (
        "import torch;print(torch.__version__, 'CUDA', torch.cuda.is_available(), "
        "torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        return (
            (out.stdout.strip() or out.stderr.strip().splitlines()[-1])
            if (out.stdout or out.stderr)
            else "?"
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"failed to import ({exc})"


def report() -> str:
    """A plain-text report of what rescunet-ij finds on this machine."""
    ij_jar = os.environ.get("IJ_JAR") or next(
        (p for p in IJ_JAR_CANDIDATES if os.path.exists(p)), None
    )
    lines = [
        f"rescunet-ij   {_version('rescunet_ij')}",
        f"python        {sys.version.split()[0]} ({sys.executable})",
        f"platform      {platform.platform()}",
        f"torch         {_torch()}",
    ]
    for pkg in (
        "numpy",
        "tifffile",
        "roifile",
        "skimage",
        "xarray",
        "pydantic",
        "safetensors",
        "jpype",
        "scyjava",
        "imagej",
        "fastapi",
        "uvicorn",
        "httpx",
    ):
        lines.append(f"{pkg:<13} {_version(pkg)}")
    no_jar = "not found (apt install libij-java, or use Fiji through pyimagej)"
    no_display = "none (the ROI Manager and macros need one: use xvfb-run)"
    lines += [
        f"java          {_java()}",
        f"ij.jar        {ij_jar or no_jar}",
        f"display       {os.environ.get('DISPLAY') or no_display}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(report())
