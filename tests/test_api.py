"""The Python API as a user calls it: what it accepts, what it refuses (and how), frame numbers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import rescunet_ij
from rescunet_ij import api
from rescunet_ij.demo import labels_to_outlines
from rescunet_ij.errors import ConfigError, DataError, ModelFileError, RescunetError

PACKAGE = Path(rescunet_ij.__file__).parent


@pytest.fixture(scope="module")
def movie(sim_test):
    return api.as_movie(sim_test.images, dims="tyx")


@pytest.fixture(scope="module")
def seeds(sim_test):
    return labels_to_outlines(sim_test.labels, range(0, 1))


# ------------------------------------------------------------------------------ accepted inputs


def test_propagate_accepts_numpy_tyx_xarray_and_paths(
    sim_test, movie, seeds, tiny_model_path, tmp_path
):
    ref = api.propagate(movie, seeds, tiny_model_path, next_only=True)
    tyx = xr.DataArray(sim_test.images, dims=("t", "y", "x"))
    path = api.write_movie(tmp_path / "m.tif", movie)
    rois = api.write_outlines(tmp_path / "seeds.zip", seeds, movie)
    for mv, outs in ((sim_test.images, seeds), (tyx, seeds), (path, rois)):
        run = api.propagate(mv, outs, tiny_model_path, next_only=True)
        assert [o.frame for o in run.predicted] == [o.frame for o in ref.predicted]
        np.testing.assert_allclose(run.predicted[0].polygon, ref.predicted[0].polygon)


def test_a_cut_out_keeps_its_frame_numbers(movie, sim_test, tiny_model_path, tmp_path):
    """Issue 15.1: frames 3..8 of a movie are frames 3..8 in every result, not 0..5."""
    part = movie.isel(t=slice(3, 9))
    seeds = labels_to_outlines(sim_test.labels, range(3, 4))
    run = api.propagate(part, seeds, tiny_model_path)
    assert (run.start_frame, run.end_frame) == (3, 8)
    assert [fr.frame for fr in run.frames] == [4, 5, 6, 7, 8]
    assert sorted({o.frame for o in run.outlines}) == [3, 4, 5, 6, 7, 8]
    assert all(ob.outline.frame == fr.frame for fr in run.frames for ob in fr.objects)
    with pytest.raises(DataError, match="start frame 1 is outside the movie .frames 4..9"):
        api.propagate(part, seeds, tiny_model_path, start_frame=0)
    # written for the whole movie: frame positions are the original ones
    out = api.write_outlines(tmp_path / "part.zip", run.outlines, part)
    back = api.read_outlines(out, movie)
    assert sorted({o.frame for o in back}) == [3, 4, 5, 6, 7, 8]


def test_iter_propagate_checks_before_the_first_frame(movie, seeds, tiny_model_path):
    with pytest.raises(DataError, match="outside the movie"):
        api.iter_propagate(movie, seeds, tiny_model_path, start_frame=0, end_frame=99)
    frames = [fr.frame for fr, _ in api.iter_propagate(movie, seeds, tiny_model_path)]
    assert frames == list(range(1, 12))


# ------------------------------------------------------------------------------ refused inputs


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"movie": None}, DataError, "movie is None"),
        ({"movie": {"a": 1}}, DataError, "got dict"),
        ({"movie": np.zeros((2, 3, 4, 8, 8))}, DataError, "dims="),
        ({"movie": np.zeros((3, 8, 8), complex)}, DataError, "complex"),
        ({"outlines": None}, DataError, "outlines is None"),
        ({"outlines": [1, 2]}, DataError, r"outlines\[0\] is a int"),
        ({"outlines": 5}, DataError, "list of Outline"),
        ({"model": None}, DataError, "model is None"),
        ({"model": 123}, ModelFileError, "path of a model file"),
        ({"start_frame": "1"}, ConfigError, "start_frame must be a whole number"),
        ({"start_frame": True}, ConfigError, "start_frame must be a whole number"),
        ({"end_frame": 2.5}, ConfigError, "end_frame must be a whole number"),
        ({"channel": "0"}, ConfigError, "channel must be a whole number"),
        ({"axis": "q"}, ConfigError, "axis must be 't'"),
        ({"object_ids": [99]}, DataError, r"no outlines of object\(s\) \[99\]"),
    ],
)
def test_propagate_refuses_with_the_packages_own_errors(
    movie, seeds, tiny_model_path, kwargs, error, message
):
    args = {"movie": movie, "outlines": seeds, "model": tiny_model_path, **kwargs}
    with pytest.raises(error, match=message) as info:
        api.propagate(args.pop("movie"), args.pop("outlines"), args.pop("model"), **args)
    assert isinstance(info.value, RescunetError)


def test_identity_and_load_model_are_checked(movie, tmp_path, seeds):
    rois = api.write_outlines(tmp_path / "r.zip", seeds, movie)
    with pytest.raises(ConfigError, match="identity must be one of auto, property"):
        api.read_outlines(rois, movie, identity="bogus")
    with pytest.raises(ModelFileError, match="path of a model file"):
        api.load_model(123)
    with pytest.raises(DataError, match="needs a file path"):
        api.read_movie(None)


def test_seeds_on_another_plane_say_where_they_are(sim_test, tiny_model_path):
    images = np.stack([sim_test.images, sim_test.images], axis=1)  # t, z
    movie = api.as_movie(images, dims="tzyx")
    seeds = [
        type(o)(o.object_id, o.frame, o.polygon, z=1)
        for o in labels_to_outlines(sim_test.labels, range(1))
    ]
    where = "no outlines on z-plane 1; the outlines are on z-plane.s. 2"
    with pytest.raises(DataError, match=where):
        api.propagate(movie, seeds, tiny_model_path, z=0)
    run = api.propagate(movie, seeds, tiny_model_path, z=1, next_only=True)
    assert {o.z for o in run.predicted} == {1}


# ------------------------------------------------------------------------------ the façade


def test_importing_the_api_starts_no_java_and_no_torch():
    code = (
        "import sys, rescunet_ij.api\n"
        "bad = [m for m in ('jpype', 'scyjava', 'imagej', 'torch') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module a file imports at run time (not under ``if TYPE_CHECKING:``), made absolute."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    package = ".".join(("rescunet_ij", *path.relative_to(PACKAGE).parent.parts))
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            names = [f"{name}.{a.name}" for a in node.names]
            out += [(n, node.lineno) for n in names]
    return out


def test_no_module_outside_the_bridge_imports_java():
    offenders = [
        f"{p.relative_to(PACKAGE)}:{line} imports {name}"
        for p in PACKAGE.rglob("*.py")
        if "bridge" not in p.parts
        for name, line in _imports(p)
        if name.split(".")[0] in ("jpype", "scyjava", "imagej")
    ]
    assert offenders == []


def test_only_the_service_speaks_http():
    """The core never imports the HTTP stack (FastAPI, uvicorn, httpx): only service/ does."""
    offenders = [
        f"{p.relative_to(PACKAGE)}:{line} imports {name}"
        for p in PACKAGE.rglob("*.py")
        if "service" not in p.parts
        for name, line in _imports(p)
        if name.split(".")[0] in ("fastapi", "starlette", "uvicorn", "httpx", "multipart")
    ]
    assert offenders == []


SERVICE_SHELLS = [
    f"service/{name}"
    for name in ("__init__.py", "app.py", "client.py", "jobs.py", "models.py", "settings.py")
    + ("wire.py", "worker.py")
]


# commands in their own modules
CLI_SHELLS = [
    "cli_propagate.py",
    "cli_finetune.py",
    "cli_interop.py",
    "cli_bioimageio.py",
    "cli_batch.py",
]


@pytest.mark.parametrize(
    "shell",
    ["cli.py", "demo.py", "fiji_install.py", "bridge/operations.py", *SERVICE_SHELLS]
    + [s for s in CLI_SHELLS if (PACKAGE / s).exists()],
)
def test_shells_call_only_the_api(shell):
    """The CLI, the demo and the bridge's user operations reach the core only through api."""
    allowed = (
        "rescunet_ij.api",
        "rescunet_ij.errors",
        "rescunet_ij.types",
        "rescunet_ij.__version__",
    )
    own = {
        "cli.py": (
            "rescunet_ij.demo",
            "rescunet_ij.doctor",
            "rescunet_ij.fiji_install",
            "rescunet_ij.notebook",
            "rescunet_ij.service",
            "rescunet_ij.cli_status",
            "rescunet_ij.cli_propagate",
            "rescunet_ij.cli_finetune",
            "rescunet_ij.cli_interop",
            "rescunet_ij.cli_bioimageio",
            "rescunet_ij.cli_batch",
        ),
        **{s: ("rescunet_ij.cli", "rescunet_ij.cli_status") for s in CLI_SHELLS},
        "bridge/operations.py": ("rescunet_ij.bridge",),
        **{s: ("rescunet_ij.service",) for s in SERVICE_SHELLS},
        "service/app.py": ("rescunet_ij.service", "rescunet_ij.notebook"),
    }.get(shell, ())
    reached = [
        f"line {line}: {name}"
        for name, line in _imports(PACKAGE / shell)
        if name.startswith("rescunet_ij")
        and not name.startswith(allowed + own)
        and name != "rescunet_ij.api"
    ]
    assert reached == []


LAYERS = [
    {"errors", "types", "config"},
    {"geometry", "device", "model"},
    {"io"},
    {"data", "report", "sample_data"},
    {"train", "propagate"},
    {"api"},
    {
        "cli",
        "demo",
        "notebook",
        "notebook_wheel",
        "cli_status",
        "bridge",
        "doctor",
        "service",
        "fiji_install",
        "__main__",
        "cli_propagate",
        "cli_finetune",
        "cli_interop",
        "cli_bioimageio",
        "cli_batch",
    },
]
"""docs/ARCHITECTURE.md's layers, bottom first: a module imports only from its own or lower ones."""


def test_imports_flow_downward_only():
    level = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    upward = []
    for p in PACKAGE.rglob("*.py"):
        if "notebook_cells" in p.parts:  # code for the notebook's kernel, not the package
            continue
        rel = p.relative_to(PACKAGE)
        unit = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem
        if unit == "__init__":
            continue
        assert unit in level, f"{rel} belongs to no layer of docs/ARCHITECTURE.md"
        for name, line in _imports(p):
            parts = name.split(".")
            if parts[0] != "rescunet_ij" or len(parts) < 2 or parts[1] in ("__version__", unit):
                continue
            if level.get(parts[1], -1) > level[unit]:
                upward.append(f"{rel}:{line} imports {name}")
    assert upward == []
