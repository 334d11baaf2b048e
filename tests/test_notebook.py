"""The Colab training notebook: generation, validation, the cells' behaviour, and a headless run."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

import rescunet_ij
from rescunet_ij import __version__, api
from rescunet_ij.config import ModelConfig, TrainConfig
from rescunet_ij.errors import (
    ConfigError,
    DataError,
    MissingExtraError,
    OutputExistsError,
    RescunetError,
)
from rescunet_ij.notebook import (
    CELL_FILES,
    CELL_FOLDER,
    MODEL_FILE,
    TEST_MODE_ENV,
    build_training_notebook,
    write_training_notebook,
)

nbformat = pytest.importorskip("nbformat")

CELL_IDS = [
    "introduction",
    "settings",
    "gpu-title",
    "gpu-check",
    "install-title",
    "wheel",
    "install",
    "parameters-title",
    "parameters",
    "data-title",
    "data",
    "train-title",
    "train",
    "curve",
    "save-title",
    "save",
    "test-title",
    "test-movie",
]


@pytest.fixture
def tiny_config() -> TrainConfig:
    return api.train_config(base_filters=4, input_size=32, epochs=2, batch_size=8, seed=3)


def _cell(nb, cell_id: str) -> str:
    return next(c.source for c in nb.cells if c.id == cell_id)


def _run_cells(nb, ids: list[str], **overrides) -> dict:
    """Execute some code cells in one namespace, after optional overrides, as a kernel does.

    Like IPython, the namespace is the ``__main__`` module's, so the cells' ``from __main__ import``
    finds the names of the cells run before.
    """
    main = types.ModuleType("__main__")
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = main
    try:
        for cell_id in ids:
            exec(compile(_cell(nb, cell_id), cell_id, "exec"), main.__dict__)
            if cell_id in ("settings", "wheel"):  # the cells that only set values
                main.__dict__.update(overrides)
    finally:
        sys.modules["__main__"] = saved
    return main.__dict__


CELLS_DIR = Path(rescunet_ij.__file__).resolve().parent / CELL_FOLDER


# --------------------------------------------------------------------------- generation
def test_notebook_structure_metadata_and_valid_code(tiny_config):
    nb = build_training_notebook(config=tiny_config, test_movie="movie.tif", test_rois="RoiSet.zip")
    nbformat.validate(nb)
    assert [c.id for c in nb.cells] == CELL_IDS
    for c in nb.cells:
        if c.cell_type == "code":
            compile(c.source, c.id, "exec")  # plain Python: no shell magics
            assert c.outputs == [] and c.execution_count is None
    meta = nb.metadata
    assert meta["accelerator"] == "GPU" and meta["kernelspec"]["name"] == "python3"
    info = meta["rescunet_ij"]
    assert info["generator_version"] == __version__
    # By default the notebook installs the wheel embedded in it (tests/test_notebook_wheel.py).
    assert info["package_spec"] is None
    assert info["embedded_wheel"]["name"] == f"rescunet_ij-{__version__}-py3-none-any.whl"
    wheel_cell = next(c for c in nb.cells if c.id == "wheel")
    assert wheel_cell.metadata["cellView"] == "form"  # Colab shows the title, hides the base64
    assert wheel_cell.metadata["jupyter"]["source_hidden"] is True
    assert info["training_zip"] == "testtrain.zip" and info["drive_path"] is None
    assert TrainConfig.model_validate(info["config"]) == tiny_config


@pytest.mark.parametrize(
    "cfg",
    [
        TrainConfig(
            model=ModelConfig(input_size=(48, 32), base_filters=8, concatenation_level=3),
            early_stopping_patience=None,
            subimage_size=(40, 30),
            epochs=7,
            normalization={"mode": "max", "max_value": 4095.0},
        ),
        TrainConfig(
            model=ModelConfig(dropout=False, in_channels=2),
            normalization={"low_percentile": 2.5, "high_percentile": 99.0},
            learning_rate=1e-5,
            validation_fraction=0.0,
            augment=False,
            device="cuda:1",
            mixed_precision=True,
            num_workers=2,
        ),
        TrainConfig(),
    ],
)
def test_parameters_cell_rebuilds_the_config_exactly(cfg):
    nb = build_training_notebook(config=cfg)
    src = _cell(nb, "parameters")
    assert "PARAMETERS = {" in src and "api.train_config(**parameters)" in src
    ns = _run_cells(nb, ["parameters"])
    assert ns["config"] == cfg
    if cfg.early_stopping_patience is None:  # not silently back to the default 5
        assert ns["config"].early_stopping_patience is None
    assert '"base_filters": %d,' % cfg.model.base_filters in src  # flat names, as the CLI's


def _edit(nb, cell_id: str, old: str, new: str) -> None:
    cell = next(c for c in nb.cells if c.id == cell_id)
    assert old in cell.source
    cell.source = cell.source.replace(old, new)


def test_parameters_cell_checks_edited_values(tiny_config):
    # A user's edit in Colab is checked at once, with a message naming the parameter.
    nb = build_training_notebook(config=tiny_config)
    _edit(nb, "parameters", '"epochs": 2,', '"epochs": 0,')
    with pytest.raises(ConfigError, match="epochs"):
        _run_cells(nb, ["parameters"])
    nb = build_training_notebook(config=tiny_config)
    _edit(nb, "parameters", '"learning_rate": 0.001,', '"learning_rate": None,')
    with pytest.raises(ConfigError, match="learning_rate cannot be None"):
        _run_cells(nb, ["parameters"])
    nb = build_training_notebook(config=tiny_config)
    _edit(nb, "parameters", '"early_stopping_patience": 5,', '"early_stopping_patience": None,')
    assert _run_cells(nb, ["parameters"])["config"].early_stopping_patience is None


def test_introduction_lists_parameters_gpu_hint_and_test_mode(tiny_config):
    intro = _cell(build_training_notebook(config=tiny_config), "introduction")
    # Named and written as in the parameters cell (flat names, Python values).
    assert "| `base_filters` | `4` |" in intro
    assert "| `input_size` | `[32, 32]` |" in intro
    assert "| `early_stopping_patience` | `5` |" in intro
    assert '| `normalization.mode` | `"percentile"` |' in intro
    assert "| `epochs` | `2` |" in intro
    assert "Runtime > Change runtime type" in intro
    assert "testtrain.zip" in intro and "Files" in intro
    assert TEST_MODE_ENV in intro


def test_settings_cell_holds_the_given_values_literally(tiny_config):
    odd = 'folder "with quotes"\\and backslash/testtrain.zip'
    nb = build_training_notebook(
        config=tiny_config,
        training_zip="mine.zip",
        drive_path=odd,
        test_movie="m.tif",
        test_rois="r.zip",
        package_spec="/work/main",
    )
    ns = _run_cells(nb, ["settings"])
    assert ns["TRAINING_ZIP"] == "mine.zip" and ns["DRIVE_PATH"] == odd
    assert (ns["TEST_MOVIE"], ns["TEST_ROIS"]) == ("m.tif", "r.zip")
    assert ns["PACKAGE_SPEC"] == "/work/main" and ns["MODEL_FILE"] == MODEL_FILE
    assert ns["GENERATOR_VERSION"] == __version__ and ns["ALLOW_CPU"] is False
    # Colab form fields (Colab writes them "# @param" itself, as ruff format does).
    assert 'MODEL_FILE = "rescunet_model.rescunet"  # @param {type:"string"}' in _cell(
        nb, "settings"
    )
    assert 'DRIVE_PATH = %s  # @param {type:"string"}' % repr(odd) in _cell(nb, "settings")


def test_generation_is_deterministic(tiny_config):
    a = nbformat.writes(build_training_notebook(config=tiny_config))
    b = nbformat.writes(build_training_notebook(config=tiny_config))
    assert a == b


# --------------------------------------------------------------------------- the cell files
def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _full_notebook(tiny_config):
    return build_training_notebook(
        config=tiny_config, drive_path="rescunet", test_movie="m.tif", test_rois="r.zip"
    )


def test_code_cells_are_the_package_files(tiny_config):
    nb = _full_notebook(tiny_config)
    assert [c.id for c in _code_cells(nb)] == list(CELL_FILES)
    assert sorted(p.name for p in CELLS_DIR.glob("*.py")) == sorted(CELL_FILES.values())
    filled = {"settings": {"TRAINING_ZIP", "DRIVE_PATH", "TEST_MOVIE", "TEST_ROIS", "MODEL_FILE",
                           "PACKAGE_SPEC", "ALLOW_CPU", "GENERATOR_VERSION"},
              "parameters": {"PARAMETERS"},
              "wheel": {"WHEEL_NAME", "WHEEL_SHA256", "WHEEL_BASE64"}}  # fmt: skip

    def statements(source: str, skip: set[str]) -> list[str]:
        return [
            ast.dump(node)
            for node in ast.parse(source).body
            if not (isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in skip)
        ]

    for cell in _code_cells(nb):
        template = (CELLS_DIR / CELL_FILES[cell.id]).read_text(encoding="utf-8")
        if cell.id in filled:  # only the values of the filled-in names differ
            assert statements(cell.source, filled[cell.id]) == statements(template, filled[cell.id])
        else:
            assert cell.source == template, f"cell {cell.id} differs from {CELL_FILES[cell.id]}"
    # The test-mode switch the generator documents is the one the settings cell reads.
    assert f'os.environ.get("{TEST_MODE_ENV}"' in _cell(nb, "settings")


def test_cell_files_pass_ruff():
    if shutil.which("ruff"):
        ruff = [shutil.which("ruff")]
    elif importlib.util.find_spec("ruff"):
        ruff = [sys.executable, "-m", "ruff"]
    else:
        pytest.skip("ruff is not installed")
    root = CELLS_DIR.parent.parent
    if not (root / "pyproject.toml").is_file():
        pytest.skip("not run from a checkout: the ruff settings live in its pyproject.toml")
    for command in (["check"], ["format", "--check"]):
        proc = subprocess.run(
            [*ruff, *command, "--no-cache", str(CELLS_DIR)],
            cwd=root,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, f"ruff {' '.join(command)}:\n{proc.stdout}{proc.stderr}"


def test_generated_cells_use_only_the_api(tiny_config):
    allowed_from = {
        "rescunet_ij": {"api", "errors", "__version__"},
        "rescunet_ij.errors": None,  # any exception class
    }
    for cell in _code_cells(_full_notebook(tiny_config)):
        assert "import_module(" not in cell.source and "__import__(" not in cell.source
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "rescunet_ij":
                        assert alias.name in ("rescunet_ij", "rescunet_ij.api"), (
                            cell.id,
                            alias.name,
                        )
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rescunet_ij"):
                assert node.module in allowed_from, (cell.id, node.module)
                names = {a.name for a in node.names}
                assert allowed_from[node.module] is None or names <= allowed_from[node.module], (
                    cell.id,
                    names,
                )
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "rescunet_ij":
                    assert node.attr in ("__version__", "__file__"), (cell.id, node.attr)
                elif node.value.id == "api":  # only the public API, nothing it imports
                    assert node.attr in api.__all__, (cell.id, f"api.{node.attr}")


class _Bindings(ast.NodeVisitor):
    """The names a cell binds at its top level (not inside functions or comprehensions)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_FunctionDef(self, node) -> None:
        self.names.add(node.name)  # its body is another scope

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node) -> None:
        pass

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_Lambda

    def visit_Name(self, node) -> None:
        if isinstance(node.ctx, ast.Store):
            self.names.add(node.id)

    def visit_alias(self, node) -> None:
        self.names.add((node.asname or node.name).split(".")[0])


def test_each_cell_takes_its_names_from_the_cells_above(tiny_config):
    defined: set[str] = set()
    for cell in _code_cells(_full_notebook(tiny_config)):
        tree = ast.parse(cell.source)
        taken = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "__main__"
            for alias in node.names
        }
        assert taken <= defined, (
            f"cell {cell.id} takes {sorted(taken - defined)} from no cell above"
        )
        bindings = _Bindings()
        bindings.visit(tree)
        defined |= bindings.names
    assert "TRAINING_SET" in defined and "MODEL_PATH" in defined


def test_a_damaged_cell_file_says_reinstall(monkeypatch, tiny_config):
    import rescunet_ij.notebook as notebook

    monkeypatch.setattr(notebook, "_cell_file", lambda name: "print('no settings here')\n")
    with pytest.raises(RescunetError, match="reinstall rescunet-ij"):
        build_training_notebook(config=tiny_config)


# ------------------------------------------------------------------------- validation at generation
@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"input_size": 50}, ["input size 50", "48 or 64"]),
        ({"concatenation_level": 7}, ["concatenation level", "7"]),
        ({"epochs": 0}, ["epochs"]),
        ({"learning_rate": -1.0}, ["learning rate"]),
    ],
)
def test_bad_parameters_fail_at_generation(tmp_path, params, words):
    # The CLI path: flat parameters -> api.train_config -> the generator.
    with pytest.raises(ConfigError) as err:
        write_training_notebook(tmp_path / "nb.ipynb", config=api.train_config(**params))
    assert all(w in str(err.value) for w in words), str(err.value)
    # The Python path: an unchecked config (or a dict) is validated again by the generator.
    model = {k: v for k, v in params.items() if k in ModelConfig.model_fields}
    rest = {k: v for k, v in params.items() if k not in model}
    raw = TrainConfig.model_construct(
        **{
            **TrainConfig().model_dump(),
            "model": ModelConfig.model_construct(**{**ModelConfig().model_dump(), **model}),
            **rest,
        }
    )
    with pytest.raises(ConfigError) as err2:
        write_training_notebook(tmp_path / "nb.ipynb", config=raw)
    assert all(w in str(err2.value) for w in words), str(err2.value)
    with pytest.raises(ConfigError):
        build_training_notebook(config={"model": model, **rest})
    assert not (tmp_path / "nb.ipynb").exists()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"training_zip": None}, ["no training data", "drive_path"]),
        ({"training_zip": "training_folder"}, [".zip", "export-training-zip"]),
        ({"test_movie": "m.tif"}, ["test_rois"]),
        ({"test_rois": "r.zip"}, ["test_movie"]),
        ({"drive_path": "a\nb"}, ["line break"]),
        ({"package_spec": "  "}, ["package_spec is empty"]),
        ({"training_zip": 3}, ["must be a string"]),
        ({"package_spec": "rescunet-ij==0.1.0", "embed_wheel": True}, ["not both"]),
        ({"embed_wheel": "yes"}, ["embed_wheel must be"]),
    ],
)
def test_bad_notebook_settings_are_refused(tiny_config, kwargs, words):
    with pytest.raises(ConfigError) as err:
        build_training_notebook(config=tiny_config, **kwargs)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_config_must_be_a_train_config():
    with pytest.raises(ConfigError, match="TrainConfig"):
        build_training_notebook(config="epochs=3")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- writing
def test_write_is_atomic_and_refuses_to_overwrite(tmp_path, tiny_config):
    path = tmp_path / "train_rescunet.ipynb"
    out = write_training_notebook(path, config=tiny_config)
    assert out == path
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert [c.id for c in nb.cells] == CELL_IDS
    before = path.read_bytes()
    with pytest.raises(OutputExistsError):
        write_training_notebook(path, config=api.train_config(epochs=9))
    assert path.read_bytes() == before
    with pytest.raises(ConfigError):  # a bad config never touches the existing file either
        write_training_notebook(
            path,
            config=api.train_config(epochs=9).model_copy(update={"epochs": -1}),
            overwrite=True,
        )
    assert path.read_bytes() == before
    write_training_notebook(path, config=api.train_config(epochs=9), overwrite=True)
    assert nbformat.read(path, as_version=4).metadata["rescunet_ij"]["config"]["epochs"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary files left


def test_notebook_file_must_end_in_ipynb(tmp_path, tiny_config):
    with pytest.raises(ConfigError, match=r"\.ipynb"):
        write_training_notebook(tmp_path / "notebook.json", config=tiny_config)


def test_missing_nbformat_names_the_extra(monkeypatch, tmp_path, tiny_config):
    monkeypatch.setitem(sys.modules, "nbformat", None)  # makes `import nbformat` raise ImportError
    with pytest.raises(MissingExtraError) as err:
        write_training_notebook(tmp_path / "nb.ipynb", config=tiny_config)
    assert "nbformat" in str(err.value) and "rescunet-ij[notebook]" in str(err.value)
    assert err.value.extra == "notebook"
    with pytest.raises(MissingExtraError):
        build_training_notebook(config=tiny_config)
    assert not (tmp_path / "nb.ipynb").exists()


def test_importing_the_module_needs_neither_nbformat_nor_torch():
    code = (
        "import sys; sys.modules['nbformat'] = None; import rescunet_ij.notebook; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'rescunet_ij.api' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- the cells' behaviour
def test_gpu_check_refuses_a_cpu_runtime_with_instructions(monkeypatch, tiny_config):
    pytest.importorskip("torch")
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    nb = build_training_notebook(config=tiny_config)
    monkeypatch.delenv(TEST_MODE_ENV, raising=False)
    with pytest.raises(RuntimeError) as err:
        _run_cells(nb, ["settings", "gpu-check"])
    assert "Runtime > Change runtime type" in str(err.value) and "GPU" in str(err.value)
    monkeypatch.setenv(TEST_MODE_ENV, "1")
    ns = _run_cells(nb, ["settings", "gpu-check"])
    assert ns["TEST_MODE"] and ns["GPU_NAME"] is None
    # A config that asks for the CPU explicitly needs no GPU either.
    monkeypatch.delenv(TEST_MODE_ENV)
    cpu_nb = build_training_notebook(config=tiny_config.model_copy(update={"device": "cpu"}))
    assert _run_cells(cpu_nb, ["settings", "gpu-check"])["ALLOW_CPU"] is True


def test_install_cell_installs_package_spec_and_reports_pip_failures(monkeypatch, tiny_config):
    nb = build_training_notebook(config=tiny_config, package_spec="rescunet-ij==0.1.0")
    assert nb.metadata["rescunet_ij"]["embedded_wheel"] is None
    assert _run_cells(nb, ["settings", "wheel"])["WHEEL_BASE64"] == ""  # nothing embedded
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        code = 0 if len(calls) == 1 else 1
        return subprocess.CompletedProcess(cmd, code, stdout="pip says hi", stderr="pip error text")

    monkeypatch.delenv(TEST_MODE_ENV, raising=False)
    monkeypatch.setattr(subprocess, "run", fake_run)
    _run_cells(nb, ["settings", "wheel", "install"], subprocess=subprocess)
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet", "rescunet-ij==0.1.0"]]
    with pytest.raises(RuntimeError, match="PACKAGE_SPEC"):
        _run_cells(nb, ["settings", "wheel", "install"], subprocess=subprocess)
    monkeypatch.setenv(TEST_MODE_ENV, "1")
    calls.clear()
    _run_cells(nb, ["settings", "wheel", "install"], subprocess=subprocess)
    assert calls == []  # test mode: nothing installed
    # --no-embed: this version from a package index.
    no_embed = build_training_notebook(config=tiny_config, embed_wheel=False)
    assert no_embed.metadata["rescunet_ij"]["package_spec"] == f"rescunet-ij=={__version__}"
    assert no_embed.metadata["rescunet_ij"]["embedded_wheel"] is None
    assert f"`rescunet-ij=={__version__}`" in _cell(no_embed, "introduction")


def test_install_cell_installs_the_embedded_wheel(monkeypatch, tmp_path, tiny_config):
    nb = build_training_notebook(config=tiny_config)
    info = nb.metadata["rescunet_ij"]["embedded_wheel"]
    assert f"rescunet-ij {__version__}** from the wheel embedded" in _cell(nb, "introduction")
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")

    monkeypatch.delenv(TEST_MODE_ENV, raising=False)
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    _run_cells(nb, ["settings", "wheel", "install"], subprocess=subprocess)
    (wheel,) = tmp_path.glob("rescunet-ij-*/*.whl")  # off Colab: a temporary folder
    assert wheel.name == info["name"] and wheel.stat().st_size == info["bytes"]
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    # With its dependencies, then exactly this build over an earlier one of the same version;
    # torch is never reinstalled.
    assert calls == [[*pip, str(wheel)], [*pip, "--force-reinstall", "--no-deps", str(wheel)]]
    # A damaged (edited) wheel cell is refused before pip runs.
    calls.clear()
    with pytest.raises(RuntimeError, match="damaged"):
        _run_cells(
            nb, ["settings", "wheel", "install"], subprocess=subprocess, WHEEL_SHA256="0" * 64
        )
    assert calls == []


@pytest.fixture(scope="module")
def training_set(tmp_path_factory) -> Path:
    """A small real training-set folder, made by the API (its window size recorded: 48)."""
    sim = api.synthetic_movie(4, (64, 64), n_objects=2, radius=(6.0, 8.0), seed=5)
    movie = api.as_movie(sim.images, dims="tyx")
    out = tmp_path_factory.mktemp("training") / "set"
    return api.make_training_set(movie, api.outlines_from_labels(sim.labels), out, subimage_size=48)


def _zip_folder(folder: Path, zip_path: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(zip_path, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, prefix + p.relative_to(folder).as_posix())
    return zip_path


def test_data_cell_explains_a_missing_upload(monkeypatch, tmp_path, tiny_config):
    monkeypatch.chdir(tmp_path)
    nb = build_training_notebook(config=tiny_config)
    with pytest.raises(FileNotFoundError) as err:
        _run_cells(nb, ["settings", "data"], IN_COLAB=True)
    msg = str(err.value)
    assert "testtrain.zip" in msg and "upload" in msg.lower() and "Files pane on the left" in msg
    with pytest.raises(FileNotFoundError, match="next to this notebook"):
        _run_cells(nb, ["settings", "data"])


def test_data_cell_checks_the_uploaded_zip(
    monkeypatch, tmp_path, tiny_config, training_set, capsys
):
    monkeypatch.chdir(tmp_path)
    expected = api.training_set_info(training_set)
    # Sample folders inside one top folder, as zipping a folder by hand gives: read as they are.
    _zip_folder(training_set, tmp_path / "testtrain.zip", prefix="my_set/")
    nb = build_training_notebook(config=tiny_config)
    ns = _run_cells(nb, ["settings", "data"])
    assert ns["TRAINING_SET"] == Path("testtrain.zip") and ns["DATA_DIR"] is None
    info = ns["TRAINING_SET_INFO"]
    assert info["samples"] == expected["samples"] > 0 and info["window_size"] == (48, 48)
    assert f"training set: {info['samples']} samples, made with 48 x 48 windows" in (
        capsys.readouterr().out
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["testtrain.zip"]  # nothing unpacked


def test_data_cell_refuses_broken_training_sets(monkeypatch, tmp_path, tiny_config, training_set):
    monkeypatch.chdir(tmp_path)
    nb = build_training_notebook(config=tiny_config)
    upload = tmp_path / "testtrain.zip"
    # A sample folder without its masks: the message names the sample (training would fail on it).
    broken = tmp_path / "broken"
    shutil.copytree(training_set, broken)
    first = sorted(p for p in broken.iterdir() if p.is_dir())[0]
    shutil.rmtree(first / "mask")
    _zip_folder(broken, upload)
    with pytest.raises(DataError, match=f"{first.name} has no mask/ folder"):
        _run_cells(nb, ["settings", "data"])
    # Not a training set, not a zip, or a zip that escapes its folder: clear errors.
    with zipfile.ZipFile(upload, "w") as zf:
        zf.writestr("notes/readme.txt", "hello")
    with pytest.raises(ValueError, match="image/, mask/ and prev_mask/"):
        _run_cells(nb, ["settings", "data"])
    upload.write_bytes(b"PK\x03\x04 truncated upload")
    with pytest.raises(ValueError, match="not a valid zip"):
        _run_cells(nb, ["settings", "data"])
    with zipfile.ZipFile(upload, "w") as zf:
        zf.writestr("../evil.txt", "x")
    with pytest.raises(ValueError, match="no sample folders"):
        _run_cells(nb, ["settings", "data"])
    assert not (tmp_path.parent / "evil.txt").exists()


def test_data_cell_reads_a_drive_folder(monkeypatch, tmp_path, tiny_config, training_set):
    monkeypatch.chdir(tmp_path)
    drive = tmp_path / "drive" / "rescunet"
    drive.mkdir(parents=True)
    _zip_folder(training_set, drive / "testtrain.zip")
    samples = api.training_set_info(training_set)["samples"]
    # Outside Colab the Drive path is an ordinary path; a folder holding TRAINING_ZIP uses that zip.
    nb = build_training_notebook(config=tiny_config, drive_path=str(drive))
    ns = _run_cells(nb, ["settings", "data"])
    assert ns["TRAINING_SET"] == drive / "testtrain.zip" and ns["DATA_DIR"] == drive
    assert ns["TRAINING_SET_INFO"]["samples"] == samples
    # A training-set folder itself works too.
    folder_nb = build_training_notebook(config=tiny_config, drive_path=str(training_set))
    ns = _run_cells(folder_nb, ["settings", "data"])
    assert ns["TRAINING_SET"] == training_set and ns["TRAINING_SET_INFO"]["samples"] == samples
    missing_nb = build_training_notebook(
        config=tiny_config, drive_path=str(tmp_path / "nowhere.zip")
    )
    with pytest.raises(FileNotFoundError, match="DRIVE_PATH"):
        _run_cells(missing_nb, ["settings", "data"])


# --------------------------------------------------------------------------- a real headless run
def _kernel_for_this_python(root: Path) -> str:
    """A kernelspec that runs exactly this interpreter (the venv's), found through JUPYTER_PATH."""
    name = "rescunet-test-venv"
    spec = root / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "rescunet-ij test venv",
                "language": "python",
            }
        )
    )
    return name


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_notebook_runs_headless_trains_and_propagates(monkeypatch, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    labels_to_outlines, synthetic_movie = api.outlines_from_labels, api.synthetic_movie

    # A tiny training set as the user would upload it, and a test movie with frame-1 seeds.
    work = tmp_path / "colab"
    work.mkdir()
    sim = synthetic_movie(6, (64, 64), n_objects=2, radius=(6.0, 8.0), seed=5)
    movie = api.as_movie(sim.images, dims="tyx")
    tset = api.make_training_set(
        movie, labels_to_outlines(sim.labels), tmp_path / "set", subimage_size=48
    )
    api.export_training_zip(tset, work / "testtrain.zip")
    test_sim = synthetic_movie(4, (64, 64), n_objects=2, radius=(6.0, 8.0), seed=6)
    test_movie = api.as_movie(test_sim.images, dims="tyx")
    api.write_movie(work / "movie.tif", test_movie)
    api.write_outlines(
        work / "seeds.zip", labels_to_outlines(test_sim.labels, range(1)), test_movie
    )

    cfg = api.train_config(
        base_filters=4, input_size=32, epochs=2, batch_size=8, device="cpu", seed=1
    )
    path = write_training_notebook(
        tmp_path / "train_rescunet.ipynb",
        config=cfg,
        test_movie="movie.tif",
        test_rois="seeds.zip",
        package_spec="/work/main",
    )
    nb = nbformat.read(path, as_version=4)
    probe = nbformat.v4.new_code_cell(
        "import sys, rescunet_ij\nprint('INTERPRETER', sys.executable)\n"
        "print('PACKAGE', rescunet_ij.__file__)",
        id="probe",
    )
    nb.cells.insert(0, probe)

    # The kernel imports the rescunet_ij these tests import (the checkout, installed or not).
    checkout = str(Path(rescunet_ij.__file__).resolve().parent.parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv(TEST_MODE_ENV, "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    kernel = _kernel_for_this_python(tmp_path / "jupyter")
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(work)}}
    )
    client.execute()

    def text(cell_id: str) -> str:
        cell = next(c for c in nb.cells if c.id == cell_id)
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    def has_png(cell_id: str) -> bool:
        cell = next(c for c in nb.cells if c.id == cell_id)
        return any("image/png" in o.get("data", {}) for o in cell.outputs)

    assert f"INTERPRETER {sys.executable}" in text("probe")
    assert "PACKAGE " + str(Path(rescunet_ij.__file__).resolve()) in text("probe")
    assert "test mode" in text("gpu-check") and "test mode: not installing" in text("install")
    assert "samples, made with 48 x 48 windows" in text("data")
    # api.train takes the window from the training set, as `rescunet-ij train` does.
    assert "subimage size 48 x 48 (network input 32 x 32)" in text("train")
    assert "epoch 1/2" in text("train") and "epoch 2/2" in text("train")
    assert has_png("curve"), "the training curve is not shown"
    assert has_png("test-movie"), "the test overlay is not shown"

    model_path = work / MODEL_FILE
    loaded = api.load_model(model_path)
    assert (
        tuple(loaded.model_config.input_size) == (32, 32) and loaded.model_config.base_filters == 4
    )
    assert tuple(loaded.window_size) == (48, 48)
    run = api.propagate(test_movie, labels_to_outlines(test_sim.labels, range(1)), model_path)
    assert {fr.frame for fr in run.frames} == {1, 2, 3}
    # Two epochs teach the network little, so only the mechanics are checked: the notebook wrote
    # the same outlines this propagation gives (seeds included).
    result_rois = api.read_outlines(work / "test_RoiSet_propagated.zip", test_movie)
    assert sorted((o.frame, o.object_id) for o in result_rois) == sorted(
        (o.frame, o.object_id) for o in run.outlines
    )
    assert {(o.frame, o.object_id) for o in result_rois} >= {(0, 1), (0, 2)}
    assert (work / "test_overlay.png").stat().st_size > 1000


def test_cli_command_writes_a_notebook_and_refuses_bad_parameters(tmp_path, capsys):
    from rescunet_ij.cli import main

    out = tmp_path / "train_rescunet.ipynb"
    assert main(["notebook", "-o", str(out), "--input-size", "50"]) == 2
    assert "input size 50" in capsys.readouterr().err and not out.exists()
    assert main(["notebook", "-o", str(out), "--concatenation-level", "7"]) == 2
    assert not out.exists()
    assert (
        main(
            [
                "notebook",
                "-o",
                str(out),
                "--epochs",
                "3",
                "--base-filters",
                "8",
                "--drive-path",
                "rescunet/testtrain.zip",
            ]
        )
        == 0
    )
    info = nbformat.read(out, as_version=4).metadata["rescunet_ij"]
    assert info["config"]["epochs"] == 3 and info["config"]["model"]["base_filters"] == 8
    assert info["drive_path"] == "rescunet/testtrain.zip"
    assert info["embedded_wheel"]["name"].startswith(f"rescunet_ij-{__version__}-")
    assert main(["notebook", "-o", str(out)]) == 2  # exists: not replaced without --overwrite
    assert main(["notebook", "-o", str(out), "--overwrite", "--no-embed"]) == 0
    info = nbformat.read(out, as_version=4).metadata["rescunet_ij"]
    assert info["embedded_wheel"] is None and info["package_spec"] == f"rescunet-ij=={__version__}"
    spec = "git+https://example.org/rescunet-ij.git"
    assert main(["notebook", "-o", str(out), "--overwrite", "--package-spec", spec]) == 0
    info = nbformat.read(out, as_version=4).metadata["rescunet_ij"]
    assert info["embedded_wheel"] is None and info["package_spec"] == spec
