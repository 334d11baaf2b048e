"""The rescunet-ij wheel the notebook embeds: what it holds, its cache, and a real install of it."""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from rescunet_ij import __version__, api
from rescunet_ij import notebook_wheel as nbmod  # the wheel embedding lives there
from rescunet_ij.notebook import (
    CELL_FILES,
    TEST_MODE_ENV,
    WHEEL_CACHE_ENV,
    build_training_notebook,
    embedded_wheel,
)

pytest.importorskip("nbformat")

WHEEL_NAME = f"rescunet_ij-{__version__}-py3-none-any.whl"
INFO = f"rescunet_ij-{__version__}.dist-info"


@pytest.fixture(scope="module")
def notebook():
    return build_training_notebook(config=api.train_config(epochs=2, base_filters=4))


def _cell(nb, cell_id: str) -> str:
    return next(c.source for c in nb.cells if c.id == cell_id)


def _wheel_cell_values(nb) -> dict:
    """The names the wheel cell sets (it is plain Python: run it)."""
    ns: dict = {"__name__": "__main__"}
    exec(compile(_cell(nb, "wheel"), "wheel", "exec"), ns)
    return ns


def _check_record(zf: zipfile.ZipFile) -> None:
    """Every file of the wheel is in its RECORD with the right hash and size."""
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(zf.read(f"{INFO}/RECORD").decode()))}
    assert set(rows) == set(zf.namelist())
    for name in zf.namelist():
        if name == f"{INFO}/RECORD":
            continue
        data = zf.read(name)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert rows[name] == [f"sha256={digest}", str(len(data))], name


def test_embedded_wheel_is_a_wheel_of_this_version(notebook):
    info = notebook.metadata["rescunet_ij"]["embedded_wheel"]
    ns = _wheel_cell_values(notebook)
    data = base64.b64decode(ns["WHEEL_BASE64"])
    assert ns["WHEEL_NAME"] == info["name"] == WHEEL_NAME
    assert hashlib.sha256(data).hexdigest() == ns["WHEEL_SHA256"] == info["sha256"]
    assert len(data) == info["bytes"]
    assert 50_000 < len(data) < 1_500_000, f"the embedded wheel has {len(data)} bytes"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        names = set(zf.namelist())
        assert "rescunet_ij/__init__.py" in names and "rescunet_ij/api/__init__.py" in names
        assert {f"rescunet_ij/notebook_cells/{f}" for f in CELL_FILES.values()} <= names
        assert not [n for n in names if n.startswith(("tests/", "benchmarks/")) or ".pyc" in n]
        meta = zf.read(f"{INFO}/METADATA").decode()
        assert "Name: rescunet-ij\n" in meta and f"Version: {__version__}\n" in meta
        assert "rescunet-ij = rescunet_ij.cli:main" in zf.read(f"{INFO}/entry_points.txt").decode()
        assert "Tag: py3-none-any" in zf.read(f"{INFO}/WHEEL").decode()
        _check_record(zf)
    # The base64 is readable: short lines in a triple-quoted string, in a cell of its own.
    assert max(len(line) for line in _cell(notebook, "wheel").splitlines()) < 140
    assert WHEEL_NAME in _cell(notebook, "introduction")


def test_wheel_is_cached_per_version_and_source(monkeypatch, tmp_path):
    monkeypatch.setenv(WHEEL_CACHE_ENV, str(tmp_path / "cache"))
    start = time.perf_counter()
    first = embedded_wheel()
    built = time.perf_counter() - start
    (cached,) = (tmp_path / "cache" / "wheels").glob(f"{__version__}-*/{WHEEL_NAME}")
    assert cached.read_bytes() == first.data
    start = time.perf_counter()
    again = embedded_wheel()
    assert again == first and time.perf_counter() - start < max(1.0, built / 2)
    # A damaged cache entry is built again.
    cached.write_bytes(b"not a wheel")
    assert embedded_wheel() == first and cached.read_bytes() == first.data
    # Another source tree (a changed file) gets its own entry; the same files build the same bytes.
    root = nbmod._source_root()
    if root is None:
        pytest.skip("rescunet_ij is not imported from a source checkout")
    copy = tmp_path / "checkout"
    for path in nbmod._source_files(root):
        target = copy / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    assert "tests" not in {p.name for p in copy.iterdir()}  # not copied, not hashed
    (copy / "rescunet_ij" / "notebook_cells" / "curve.py").open("a").write("# changed\n")
    monkeypatch.setattr(nbmod, "_source_root", lambda: copy)
    changed = embedded_wheel()
    assert len(list((tmp_path / "cache" / "wheels").iterdir())) == 2
    with zipfile.ZipFile(io.BytesIO(changed.data)) as zf:
        assert zf.read("rescunet_ij/notebook_cells/curve.py").endswith(b"# changed\n")


def test_wheel_rebuilt_from_an_installed_wheel(tmp_path, notebook):
    # Installed from a wheel (no checkout): the installed files are packed again from the RECORD.
    original = base64.b64decode(_wheel_cell_values(notebook)["WHEEL_BASE64"])
    wheel = tmp_path / WHEEL_NAME
    wheel.write_bytes(original)
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
        + ["--disable-pip-version-check", "--target", str(target), str(wheel)],
        check=True,
    )
    dist = importlib.metadata.Distribution.at(target / INFO)
    (tmp_path / "build").mkdir()
    rebuilt = nbmod._wheel_from_installed(dist, tmp_path / "build")
    assert rebuilt.name == WHEEL_NAME
    with zipfile.ZipFile(wheel) as a, zipfile.ZipFile(rebuilt) as b:
        assert set(a.namelist()) == set(b.namelist())
        differ = [n for n in a.namelist() if a.read(n) != b.read(n)]
        assert differ in ([], [f"{INFO}/RECORD"])  # only the RECORD's order may differ
        _check_record(b)


def _venv_bin(venv: Path, name: str) -> Path:
    folder = venv / ("Scripts" if os.name == "nt" else "bin")
    return folder / (name + (".exe" if os.name == "nt" else ""))


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_embedded_wheel_installs_in_a_fresh_venv(tmp_path, notebook):
    """The notebook's install cell, run for real (not test mode) by a fresh venv's Python."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = _venv_bin(venv, "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop(TEST_MODE_ENV, None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def run(*cmd, timeout=300):
        proc = subprocess.run(
            [str(c) for c in cmd], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    # torch first, as Colab has it (the CPU wheel the project pins); the install keeps it.
    run(python, "-m", "pip", "install", "--quiet", "torch==2.13.0")
    # The first cells up to the install, as a script: each runs in __main__ as a kernel runs it.
    cells = tmp_path / "cells"
    cells.mkdir()
    for cell_id in ("settings", "wheel", "install"):
        (cells / f"{cell_id}.py").write_text(_cell(notebook, cell_id), encoding="utf-8")
    runner = tmp_path / "run_cells.py"
    runner.write_text(
        "import sys\nimport __main__\n"
        "for path in sys.argv[1:]:\n"
        "    with open(path, encoding='utf-8') as f:\n"
        "        exec(compile(f.read(), path, 'exec'), __main__.__dict__)\n"
    )
    out = run(python, runner, *(cells / f"{c}.py" for c in ("settings", "wheel", "install")))
    assert f"installing the embedded {WHEEL_NAME}" in out and "test mode" not in out
    assert f"rescunet-ij {__version__} is ready" in out and str(venv) in out

    probe = run(
        python, "-c",
        "import rescunet_ij, torch; print(rescunet_ij.__version__); print(rescunet_ij.__file__); "
        "print(torch.__version__)",
    ).splitlines()  # fmt: skip
    assert probe[0] == __version__
    assert Path(probe[1]).resolve().is_relative_to(venv.resolve())  # the venv's, not the checkout
    assert probe[2].startswith("2.13.0")  # torch was not replaced
    assert "propagate" in run(_venv_bin(venv, "rescunet-ij"), "--help")
    # The installed files are the embedded wheel's (its cells, byte for byte).
    installed = Path(probe[1]).parent / "notebook_cells" / "install.py"
    assert installed.read_text(encoding="utf-8") == _cell(notebook, "install")
    # Running the install cell again installs the same build again (no error, same version).
    out = run(python, runner, *(cells / f"{c}.py" for c in ("settings", "wheel", "install")))
    assert f"rescunet-ij {__version__} is ready" in out


def test_embed_needs_a_checkout_or_a_record(monkeypatch):
    monkeypatch.setattr(nbmod, "_source_root", lambda: None)
    monkeypatch.setattr(nbmod, "_installed_dist", lambda: None)
    monkeypatch.setenv(WHEEL_CACHE_ENV, "/nonexistent/cache")
    with pytest.raises(nbmod.RescunetError, match="--package-spec"):
        embedded_wheel()
    # Without embedding nothing is built.
    nb = build_training_notebook(config=api.train_config(), package_spec="rescunet-ij")
    assert nb.metadata["rescunet_ij"]["embedded_wheel"] is None
