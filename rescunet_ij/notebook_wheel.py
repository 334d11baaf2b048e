"""The wheel a generated notebook carries: the running rescunet-ij, built once and cached.

:func:`embedded_wheel` builds it from the source checkout (``pip wheel``) or, for a package
installed from a wheel, from the installed files listed in its RECORD, and keeps it per version
and source hash in :func:`wheel_cache_dir`. :mod:`rescunet_ij.notebook` puts it into the
notebook's wheel cell.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .errors import RescunetError

WHEEL_CACHE_ENV = "RESCUNET_IJ_CACHE_DIR"
"""Environment variable: the folder for cached files (default: the platform's user cache folder)."""

# Top-level folders of a source checkout that never go into the wheel (not copied, not hashed).
_NOT_IN_WHEEL = {"tests", "benchmarks", "docs", "examples", "build", "dist", "venv", "node_modules"}
# Files an installer adds to a dist-info folder (not part of the wheel it installed).
_INSTALLER_FILES = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same files give the same wheel bytes


@dataclass(frozen=True)
class EmbeddedWheel:
    """A wheel of the running rescunet-ij, to embed in a notebook."""

    name: str
    """The wheel's file name, e.g. ``rescunet_ij-0.1.0-py3-none-any.whl``."""
    data: bytes

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of the wheel file."""
        return hashlib.sha256(self.data).hexdigest()


def wheel_cache_dir() -> Path:
    """Where built wheels are kept (``$RESCUNET_IJ_CACHE_DIR/wheels`` or the user cache folder)."""
    if os.environ.get(WHEEL_CACHE_ENV):
        base = Path(os.environ[WHEEL_CACHE_ENV])
    elif sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
        base = Path(local) / "rescunet-ij" / "Cache"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches" / "rescunet-ij"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rescunet-ij"
    return base / "wheels"


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def _source_root() -> Path | None:
    """The source checkout this package is imported from (editable install or path), or None."""
    root = _package_dir().parent
    try:
        text = (root / "pyproject.toml").read_text("utf-8")
    except OSError:
        return None
    return root if re.search(r'^name\s*=\s*"rescunet[-_]ij"', text, re.MULTILINE) else None


def _source_files(root: Path) -> list[Path]:
    """The files of a checkout a wheel can be built from: all but tests, caches, venvs, VCS."""
    files = []
    for path in sorted(root.iterdir()):
        name = path.name
        if path.is_file():
            files.append(path)
        elif path.is_dir() and not (
            name.startswith(".") or name in _NOT_IN_WHEEL or name.endswith(".egg-info")
        ):
            # os.walk in sorted order, skipping caches, so the hash is the same on every machine
            for folder, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
                files.extend(
                    Path(folder, n) for n in sorted(names) if not n.endswith((".pyc", ".pyo"))
                )
    return files


def _digest(items: list[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for rel, data in items:
        h.update(rel.encode("utf-8") + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()[:16]


def _pip_wheel(src: Path, out: Path) -> None:
    """``pip wheel`` the project at ``src`` into ``out``; offline when setuptools can build here."""
    base = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out)]
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # Without build isolation pip uses this environment's setuptools (no download); with it, pip
    # fetches setuptools from the index (a Python 3.12+ venv may have no setuptools at all).
    attempts = [[*base, "--no-build-isolation", str(src)], [*base, str(src)]]
    if importlib.util.find_spec("setuptools") is None:
        attempts = attempts[1:]
    messages = []
    for cmd in attempts:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode == 0 and list(out.glob("*.whl")):
            return
        messages.append(f"$ {' '.join(cmd)}\n{(proc.stdout + proc.stderr)[-2000:]}")
    raise RescunetError(
        "cannot build a wheel of rescunet-ij to embed in the notebook:\n"
        + "\n".join(messages)
        + "\ngive the notebook something to pip-install instead: --package-spec (a git URL, or "
        f"rescunet-ij=={__version__} from a package index)"
    )


def _wheel_from_source(root: Path, build_dir: Path) -> Path:
    """Build the wheel from a copy of the checkout (a build in place would leave build/ behind)."""
    src = build_dir / "src"
    for path in _source_files(root):
        target = src / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    _pip_wheel(src, build_dir / "out")
    return next((build_dir / "out").glob("*.whl"))


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel_from_installed(dist: Any, build_dir: Path) -> Path:
    """Pack the installed files of ``dist`` (its RECORD) back into the wheel they came from.

    The RECORD lists every file the wheel installed; the package and its dist-info are zipped
    again, minus the files pip adds (INSTALLER, REQUESTED, direct_url.json, the bytecode), with a
    new RECORD. Console scripts are not packed: pip writes them again from entry_points.txt.
    Installed data files (``*.data/data/...``) are mapped back from the environment's data folder.
    """
    site = Path(dist.locate_file("")).resolve()
    info_dir = next(
        (
            str(p).split("/")[0]
            for p in dist.files or []
            if str(p).split("/")[0].endswith(".dist-info")
        ),
        None,
    )
    if info_dir is None:
        raise RescunetError("the installed rescunet-ij has no RECORD of its files")
    data_root = Path(sysconfig.get_paths()["data"]).resolve()
    scripts_root = Path(sysconfig.get_paths()["scripts"]).resolve()
    members: dict[str, bytes] = {}
    for entry in dist.files:
        rel = str(entry)
        parts = rel.split("/")
        if "__pycache__" in parts or rel.endswith((".pyc", ".pyo")):
            continue
        if parts[0] == info_dir and parts[-1] in _INSTALLER_FILES and len(parts) == 2:
            continue
        path = (site / rel).resolve()
        if parts[0] == "..":
            if path.is_relative_to(scripts_root) or not path.is_relative_to(data_root):
                continue  # console scripts (pip makes them again) or files outside the prefix
            data_rel = path.relative_to(data_root).as_posix()
            rel = f"{info_dir[: -len('.dist-info')]}.data/data/{data_rel}"
        members[rel] = path.read_bytes()
    tags = [
        line.split(":", 1)[1].strip()
        for line in members.get(f"{info_dir}/WHEEL", b"").decode().splitlines()
        if line.startswith("Tag:")
    ]
    name = f"{info_dir[: -len('.dist-info')]}-{tags[0] if tags else 'py3-none-any'}.whl"
    record = "".join(
        f"{rel},{_record_hash(data)},{len(data)}\n" for rel, data in sorted(members.items())
    )
    members[f"{info_dir}/RECORD"] = (record + f"{info_dir}/RECORD,,\n").encode()
    path = build_dir / name
    # dist-info last, as wheels are written (installers may read it first; order does not matter)
    order = sorted(members, key=lambda r: (r.startswith(info_dir), r == f"{info_dir}/RECORD", r))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in order:
            entry = zipfile.ZipInfo(rel, _ZIP_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, members[rel])
    return path


def _installed_dist() -> Any:
    """The installed distribution whose files are the ones imported here, or None."""
    try:
        dist = importlib.metadata.distribution("rescunet-ij")
    except importlib.metadata.PackageNotFoundError:
        return None
    init = Path(dist.locate_file("rescunet_ij/__init__.py"))
    if not init.is_file() or init.resolve() != _package_dir() / "__init__.py" or not dist.files:
        return None
    return dist


def _check_wheel(data: bytes, name: str) -> None:
    """A built wheel must hold this version's package and its cell files."""
    from .notebook import CELL_FILES, CELL_FOLDER  # the notebook module imports this one

    needed = [
        "rescunet_ij/__init__.py",
        *(f"rescunet_ij/{CELL_FOLDER}/{f}" for f in CELL_FILES.values()),
        f"rescunet_ij-{__version__}.dist-info/METADATA",
    ]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            missing = [n for n in needed if n not in zf.namelist()]
    except zipfile.BadZipFile:
        missing = ["(not a zip file)"]
    if missing or not name.startswith(f"rescunet_ij-{__version__}-"):
        raise RescunetError(
            f"the wheel built of rescunet-ij ({name}) lacks "
            f"{', '.join(missing) or 'this version'}; use --package-spec instead of embedding"
        )


def embedded_wheel() -> EmbeddedWheel:
    """A wheel of the running rescunet-ij (this version, these files), built once and cached.

    From a source checkout (an editable install, or the checkout on ``sys.path``) the wheel is
    built by ``pip wheel --no-build-isolation`` from a copy of the checkout (without tests,
    benchmarks, docs); from an installed wheel the installed files are packed again (see
    :func:`_wheel_from_installed`). The result is cached in :func:`wheel_cache_dir` under the
    version and a hash of the source files, so a change to the code builds a new wheel.

    Raises
    ------
    RescunetError
        If no wheel can be built (no checkout and no RECORD, or pip fails); the message suggests
        ``--package-spec``.
    """
    root = _source_root()
    dist = None if root is not None else _installed_dist()
    if root is not None:
        files = _source_files(root)
        key = _digest([(p.relative_to(root).as_posix(), p.read_bytes()) for p in files])
    elif dist is not None:
        key = _digest([("RECORD", (dist.read_text("RECORD") or "").encode())])
    else:
        raise RescunetError(
            f"cannot embed rescunet-ij in the notebook: {_package_dir()} is neither a source "
            "checkout nor an installed wheel with a RECORD; use --package-spec"
        )
    cache = wheel_cache_dir() / f"{__version__}-{key}"
    cached = sorted(cache.glob("*.whl")) if cache.is_dir() else []
    if cached:
        data = cached[0].read_bytes()
        try:
            _check_wheel(data, cached[0].name)
            return EmbeddedWheel(cached[0].name, data)
        except RescunetError:
            pass  # a damaged cache entry: build again
    with tempfile.TemporaryDirectory(prefix="rescunet-wheel-") as tmp:
        build_dir = Path(tmp)
        built = (
            _wheel_from_source(root, build_dir)
            if root is not None
            else _wheel_from_installed(dist, build_dir)
        )
        wheel = EmbeddedWheel(built.name, built.read_bytes())
    _check_wheel(wheel.data, wheel.name)
    try:  # cache it (atomically); a read-only cache folder only costs the next call a rebuild
        cache.mkdir(parents=True, exist_ok=True)
        part = cache / f".{wheel.name}.{os.getpid()}.part"
        part.write_bytes(wheel.data)
        os.replace(part, cache / wheel.name)
        _prune_cache(cache.parent, keep=cache)
    except OSError:
        pass
    return wheel


def _prune_cache(folder: Path, keep: Path, entries: int = 8) -> None:
    """Remove all but the newest ``entries`` cached wheels (each source change makes one)."""
    old = sorted(
        (p for p in folder.iterdir() if p.is_dir() and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for path in old[entries - 1 :]:
        shutil.rmtree(path, ignore_errors=True)


def _base64_literal(data: bytes) -> str:
    """``data`` as a triple-quoted base64 string, 76 characters a line (newlines decode away)."""
    return '"""\\\n' + base64.encodebytes(data).decode("ascii") + '"""'
