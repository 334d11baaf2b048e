"""Generate the Colab notebook that trains a ReSCU-Net on a GPU (the seed's "training notebook").

The notebook is built cell by cell with :mod:`nbformat` (an optional extra: ``pip install
'rescunet-ij[notebook]'``). It

1. introduces itself and lists the training parameters in a table;
2. checks that the runtime has a GPU and says how to switch to one if not;
3. installs rescunet-ij: by default the wheel of the generator's own rescunet-ij, embedded in the
   notebook (base64, a few hundred kB; see :func:`embedded_wheel`), so it needs no package index
   for it; or what ``package_spec`` names (an index version, a git URL);
4. reads the training parameters (checked again on Colab);
5. finds the uploaded ``testtrain.zip`` or mounts Google Drive, and checks the training set;
6. trains with per-epoch progress and shows the training curve;
7. saves the model file (and copies it to Drive) and offers it for download;
8. optionally propagates a test movie from its seed RoiSet and shows an overlay.

The code cells are real Python files in ``rescunet_ij/notebook_cells/`` (package data, checked by
ruff and the tests), copied into the notebook unchanged except two: the generator fills in the
values of the *settings* cell (``settings.py``, Colab ``# @param`` form fields), of the
*training parameters* cell (``parameters.py``) and of the *wheel* cell (``wheel.py``, the
embedded wheel as base64, a Colab form cell whose code is hidden). The cells call only
:mod:`rescunet_ij.api` (and :mod:`rescunet_ij.errors`); each takes the names it needs from the
cells above with ``from __main__ import ...`` (a notebook kernel's variables live in
``__main__``), so the linter sees every name and a cell run out of order says which name is missing.

The parameters are validated when the notebook is generated, so a bad value fails here and not
an hour later on Colab. Test mode: with the environment variable ``RESCUNET_NOTEBOOK_TEST=1`` set
for the kernel, the GPU check accepts a CPU and the install step does nothing (the notebook then
uses the rescunet-ij installed in the kernel's Python).

The embedded wheel is built once per version and source hash and cached in
:func:`wheel_cache_dir` (``$RESCUNET_IJ_CACHE_DIR/wheels``, else the user cache folder).
"""

from __future__ import annotations

import ast
import base64
import json
import warnings
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import __version__
from .config import ModelConfig, TrainConfig, format_validation_error
from .errors import ConfigError, MissingExtraError, RescunetError
from .notebook_wheel import (
    WHEEL_CACHE_ENV,
    EmbeddedWheel,
    _base64_literal,
    embedded_wheel,
    wheel_cache_dir,
)

if TYPE_CHECKING:
    import nbformat

__all__ = [
    "CELL_FILES",
    "DEFAULT_TRAINING_ZIP",
    "MODEL_FILE",
    "TEST_MODE_ENV",
    "WHEEL_CACHE_ENV",
    "EmbeddedWheel",
    "build_training_notebook",
    "embedded_wheel",
    "wheel_cache_dir",
    "write_training_notebook",
]

TEST_MODE_ENV = "RESCUNET_NOTEBOOK_TEST"
"""Environment variable that puts a generated notebook in test mode (CPU allowed, no install)."""

DEFAULT_TRAINING_ZIP = "testtrain.zip"
"""The training-set zip name the seed's notebook expects."""

MODEL_FILE = "rescunet_model.rescunet"
"""File name of the model the notebook trains (in the Colab working folder)."""

CELL_FOLDER = "notebook_cells"
"""The package-data folder (in ``rescunet_ij``) holding the code cells as ``.py`` files."""

# The notebook from top to bottom: (cell id, "file.py" for a code cell, or the markdown text).
# The introduction is generated; the code of "settings", "parameters" and "wheel" is filled in.
_LAYOUT: list[tuple[str, str]] = [
    ("introduction", ""),
    ("settings", "settings.py"),
    (
        "gpu-title",
        "## 1. Check the GPU\nIf this cell fails, switch the runtime: **Runtime > Change runtime "
        "type > GPU**, then **Runtime > Run all** again.",
    ),
    ("gpu-check", "gpu_check.py"),
    ("install-title", "## 2. Install rescunet-ij"),
    ("wheel", "wheel.py"),
    ("install", "install.py"),
    (
        "parameters-title",
        "## 3. Training parameters\nThese were checked when the notebook was generated. You may "
        "edit them; a wrong value stops here with a message naming it.",
    ),
    ("parameters", "parameters.py"),
    (
        "data-title",
        "## 4. Training data\nThe uploaded zip (or the Drive path) is found and every sample is "
        "checked: a folder with `image/`, `mask/` and `prev_mask/`, one TIFF in each.",
    ),
    ("data", "data.py"),
    ("train-title", "## 5. Train"),
    ("train", "train.py"),
    ("curve", "curve.py"),
    ("save-title", "## 6. Save and download the model"),
    ("save", "save.py"),
    (
        "test-title",
        "## 7. Optional: try the model on a test movie\nThe seed outlines (`TEST_ROIS`, outlines "
        "on the first frame) are propagated through `TEST_MOVIE`; the result is a RoiSet.zip for "
        "Fiji's ROI Manager and an overlay picture.",
    ),
    ("test-movie", "try_on_movie.py"),
]

CELL_FILES: dict[str, str] = {cid: text for cid, text in _LAYOUT if text.endswith(".py")}
"""Code cell id -> its file in :data:`CELL_FOLDER`, in notebook order."""

# Cell metadata of the wheel cell: a form in Colab (code hidden), collapsed in JupyterLab.
_HIDDEN_CODE = {"cellView": "form", "jupyter": {"source_hidden": True}}

# Short explanations for the parameter table where the config field has no description.
_DESCRIPTIONS = {
    "learning_rate": "Adam learning rate",
    "batch_size": "samples per training step (lower it if the GPU runs out of memory)",
    "epochs": "maximum number of passes over the training set",
    "validation_fraction": "fraction of the samples held out to measure progress",
    "lr_plateau_patience": "epochs without improvement before the learning rate is cut",
    "lr_plateau_factor": "factor the learning rate is multiplied by at a plateau",
    "seed": "random seed (same seed, same split and augmentation)",
    "device": "auto = the GPU when there is one",
    "num_workers": "data-loading worker processes",
    "normalization.mode": (
        "percentile = per-window percentiles to 0..1; max = divide by the set's maximum"
    ),
    "normalization.low_percentile": "intensity mapped to 0 (percentile mode)",
    "normalization.high_percentile": "intensity mapped to 1 (percentile mode)",
    "normalization.max_value": "filled in by training (max mode)",
}


# --------------------------------------------------------------------------- validation
def _nbformat() -> Any:
    try:
        import nbformat
    except ImportError:
        raise MissingExtraError("nbformat", "notebook", "Generating a training notebook") from None
    return nbformat


def _validated_config(config: Any) -> TrainConfig:
    """Re-validate ``config`` (a TrainConfig or a dict of its fields) through its JSON form.

    The notebook holds the values of this JSON form (as Python literals), so a config that passes
    here also passes there.
    """
    if isinstance(config, TrainConfig):
        with warnings.catch_warnings():  # an unchecked (model_construct) config warns while dumped
            warnings.simplefilter("ignore")
            data: Any = config.model_dump(mode="json")
    elif isinstance(config, Mapping):
        data = dict(config)
    else:
        raise ConfigError(
            f"config must be a TrainConfig, got {type(config).__name__}; build one with "
            "rescunet_ij.api.train_config(epochs=..., input_size=..., ...)"
        )
    try:
        checked = TrainConfig.model_validate_json(json.dumps(data))
    except (TypeError, ValueError) as exc:
        if not isinstance(exc, ValidationError):
            raise ConfigError(f"training parameters cannot be written as JSON: {exc}") from None
        raise ConfigError(format_validation_error(exc, "invalid training parameters")) from None
    if isinstance(config, TrainConfig) and checked != config:
        raise ConfigError(
            "the training parameters change when written as JSON (a value JSON cannot hold?); "
            "build the config with rescunet_ij.api.train_config(...)"
        )
    return checked


def _check_text(value: Any, what: str, *, hint: str) -> str | None:
    """A setting that becomes a string literal in the notebook: None, or a clean one-line string."""
    if value is None:
        return None
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a string, got {type(value).__name__} {value!r}; {hint}")
    value = value.strip()
    if not value:
        raise ConfigError(f"{what} is empty; {hint}")
    if any(ord(ch) < 32 for ch in value):
        raise ConfigError(f"{what} contains a line break or control character ({value!r}); {hint}")
    return value


def _py_str(value: str | None) -> str:
    """A Python string literal for ``value`` (double quotes when possible, as Colab forms write)."""
    value = value or ""
    if '"' not in value and "\\" not in value and value.isprintable():
        return f'"{value}"'
    return repr(value)


# --------------------------------------------------------------------------- cell code
def _cell_file(name: str) -> str:
    """The text of one cell file of :data:`CELL_FOLDER`."""
    try:
        return resources.files(__package__).joinpath(CELL_FOLDER, name).read_text("utf-8")
    except OSError as exc:
        raise RescunetError(
            f"the notebook cell file {CELL_FOLDER}/{name} of rescunet-ij cannot be read ({exc}); "
            "the installation is incomplete: reinstall rescunet-ij"
        ) from None


def _literal(value: Any, indent: str = "") -> str:
    """``value`` (str, number, bool, None, list, dict) as Python source; dicts one key a line."""
    if isinstance(value, str):
        return _py_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v, indent) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = indent + "    "
        items = "".join(f"{inner}{_py_str(k)}: {_literal(v, inner)},\n" for k, v in value.items())
        return "{\n" + items + indent + "}"
    return repr(value)


def _fill(name: str, values: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> str:
    """The cell file ``name`` with the values of its top-level assignments ``NAME = ...`` replaced.

    Only the value is replaced, so a comment after it (Colab's ``# @param``) stays. Every name must
    be assigned exactly once at the top level of the file. ``sources`` may give the Python source
    to write for some names (it must evaluate to the value).
    """
    source = _cell_file(name)
    assigned = [
        (node.targets[0].id, node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in values
    ]
    if sorted(key for key, _ in assigned) != sorted(values):
        raise RescunetError(
            f"the notebook cell file {CELL_FOLDER}/{name} does not assign each of "
            f"{', '.join(sorted(values))} once; reinstall rescunet-ij"
        )
    # ast positions are UTF-8 byte offsets; replace from the bottom up so earlier ones stay valid.
    lines = [line.encode("utf-8") for line in source.splitlines(keepends=True)]
    for key, node in sorted(assigned, key=lambda kv: kv[1].lineno, reverse=True):
        text = (sources or {}).get(key) or _literal(values[key])
        if ast.literal_eval(text) != values[key]:  # e.g. a value that is not plain data
            raise RescunetError(f"cannot write {key} = {values[key]!r} into the notebook")
        end_line, end_col = node.end_lineno, node.end_col_offset
        assert end_line is not None and end_col is not None  # always set by ast.parse
        first, last = lines[node.lineno - 1], lines[end_line - 1]
        lines[node.lineno - 1 : end_line] = [
            first[: node.col_offset] + text.encode("utf-8") + last[end_col:]
        ]
    return b"".join(lines).decode("utf-8")


def _flat_parameters(config: TrainConfig) -> dict[str, Any]:
    """The config as flat ``api.train_config`` parameters (model settings first, as JSON values)."""
    data = config.model_dump(mode="json")
    model = data.pop("model")
    return {**{k: model[k] for k in ModelConfig.model_fields}, **data}


# --------------------------------------------------------------------------- markdown
def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _parameter_rows(config: TrainConfig) -> list[tuple[str, str, str]]:
    """(name, value, meaning) per parameter, named and written as in the parameters cell."""
    fields = {**ModelConfig.model_fields, **TrainConfig.model_fields}
    rows = []
    for key, value in _flat_parameters(config).items():
        if isinstance(value, Mapping):  # a section (normalization): one row per setting
            section = type(getattr(config, key)).model_fields
            for name, v in value.items():
                meaning = section[name].description or _DESCRIPTIONS.get(f"{key}.{name}", "")
                rows.append((f"{key}.{name}", _literal(v), meaning))
        else:
            rows.append(
                (key, _literal(value), fields[key].description or _DESCRIPTIONS.get(key, ""))
            )
    return rows


def _intro_markdown(
    config: TrainConfig,
    training_zip: str | None,
    drive_path: str | None,
    test_movie: str | None,
    package_spec: str | None,
    wheel: EmbeddedWheel | None,
) -> str:
    if wheel is not None:
        install = (
            f"**Installs rescunet-ij {__version__}** from the wheel embedded in this notebook "
            f"(`{wheel.name}`, {len(wheel.data) / 1024:.0f} kB, sha256 `{wheel.sha256[:12]}…`): "
            "exactly the version that generated it, without a package index. Its dependencies "
            "come from PyPI as usual (Colab already has torch)."
        )
    else:
        install = f"**Installs** `{package_spec}` with pip (`PACKAGE_SPEC` in the settings cell)."
    if drive_path:
        data = (
            f"the training set on your Google Drive at `{drive_path}` (the notebook mounts Drive)"
        )
    else:
        data = (
            f"the training-set zip `{training_zip}`: upload it with the **Files** pane on the left "
            "(folder icon > upload) before you run the notebook"
        )
    table = "\n".join(
        f"| `{k}` | `{_md_escape(v)}` | {_md_escape(d)} |" for k, v, d in _parameter_rows(config)
    )
    test = (
        f"Afterwards it propagates the seed outlines of the test movie `{test_movie}` and shows "
        "them."
        if test_movie
        else "Set `TEST_MOVIE` and `TEST_ROIS` below to try the model on a movie afterwards."
    )
    return f"""\
# Train a ReSCU-Net (rescunet-ij {__version__})

This notebook trains a ReSCU-Net, a U-Net that outlines one object in a frame from the image and
the object's outline in the previous frame, on a GPU in Google Colab. It was generated by
`rescunet-ij notebook`.

{install}

**Before you start**

1. Pick a GPU runtime: **Runtime > Change runtime type > Hardware accelerator: GPU** (e.g. T4).
2. Provide {data}. Each sample of the set is a folder with the subfolders `image/`, `mask/` and
   `prev_mask/`.
3. Run all cells: **Runtime > Run all**. Training takes a while; at the end the model file
   (`{MODEL_FILE}`) is downloaded. Open it in Fiji or use it with `rescunet-ij propagate`.

{test}

**Training parameters** (checked when the notebook was generated; change them in the
*Training parameters* cell):

| parameter | value | meaning |
|---|---|---|
{table}

*Testing this notebook:* with the environment variable `{TEST_MODE_ENV}=1` set for the kernel, the
GPU check accepts a CPU and nothing is installed (the kernel's own rescunet-ij is used).
"""


# --------------------------------------------------------------------------- assembly
def _checked_settings(
    training_zip: Any,
    drive_path: Any,
    test_movie: Any,
    test_rois: Any,
    package_spec: Any,
    embed_wheel: Any = None,
) -> dict[str, Any]:
    """The notebook settings, checked: clean one-line strings (or None), and a coherent set.

    The result's ``embed`` says whether to embed the wheel (then its ``package_spec`` is None).
    """
    settings = {
        "training_zip": _check_text(
            training_zip, "training_zip", hint="give the zip's file name, e.g. testtrain.zip"
        ),
        "drive_path": _check_text(
            drive_path, "drive_path", hint="give a path relative to 'My Drive'"
        ),
        "test_movie": _check_text(
            test_movie, "test_movie", hint="give the movie's file name, e.g. movie.tif"
        ),
        "test_rois": _check_text(
            test_rois, "test_rois", hint="give the seed RoiSet's file name, e.g. RoiSet.zip"
        ),
        "package_spec": _check_text(
            package_spec, "package_spec", hint="e.g. rescunet-ij==0.1.0, a git URL or a path"
        ),
    }
    zip_name, drive = settings["training_zip"], settings["drive_path"]
    if zip_name is None and drive is None:
        raise ConfigError(
            "no training data: give training_zip (a zip uploaded to Colab, e.g. testtrain.zip; CLI "
            "--training-zip) or drive_path (a zip or folder on Google Drive; CLI --drive-path)"
        )
    if drive is None and not zip_name.lower().endswith(".zip"):
        raise ConfigError(
            f"training_zip must name a .zip file, got {zip_name!r}; pack a training-set folder "
            "with 'rescunet-ij export-training-zip FOLDER -o testtrain.zip', or use drive_path "
            "for a folder on Drive"
        )
    if (settings["test_movie"] is None) != (settings["test_rois"] is None):
        given, needed = (
            ("test_movie", "test_rois") if settings["test_movie"] else ("test_rois", "test_movie")
        )
        raise ConfigError(
            f"{given} was given without {needed}: propagating a test movie needs both the movie "
            "and its seed RoiSet.zip (CLI --test-movie and --test-rois)"
        )
    if embed_wheel not in (None, True, False):
        raise ConfigError(f"embed_wheel must be True, False or None, got {embed_wheel!r}")
    if embed_wheel and settings["package_spec"] is not None:
        raise ConfigError(
            "give either package_spec (what pip installs: an index version, a git URL, a path) or "
            "embed_wheel=True (the notebook installs the wheel embedded in it), not both"
        )
    settings["embed"] = settings["package_spec"] is None and embed_wheel is not False
    if settings["package_spec"] is None and not settings["embed"]:
        settings["package_spec"] = f"rescunet-ij=={__version__}"
    return settings


def _cells(
    nbf: Any, config: TrainConfig, settings: Mapping[str, Any], wheel: EmbeddedWheel | None
) -> list[Any]:
    """The notebook's cells, in the order of :data:`_LAYOUT`."""
    encoded = base64.encodebytes(wheel.data).decode("ascii") if wheel else ""
    filled = {
        "introduction": _intro_markdown(
            config,
            settings["training_zip"],
            settings["drive_path"],
            settings["test_movie"],
            settings["package_spec"],
            wheel,
        ),
        "settings": _fill(
            "settings.py",
            {
                "TRAINING_ZIP": settings["training_zip"] or "",
                "DRIVE_PATH": settings["drive_path"] or "",
                "TEST_MOVIE": settings["test_movie"] or "",
                "TEST_ROIS": settings["test_rois"] or "",
                "MODEL_FILE": MODEL_FILE,
                "PACKAGE_SPEC": settings["package_spec"] or "",
                "ALLOW_CPU": config.device == "cpu",  # the user asked for CPU training
                "GENERATOR_VERSION": __version__,
            },
        ),
        "parameters": _fill("parameters.py", {"PARAMETERS": _flat_parameters(config)}),
        "wheel": _fill(
            "wheel.py",
            {
                "WHEEL_NAME": wheel.name if wheel else "",
                "WHEEL_SHA256": wheel.sha256 if wheel else "",
                "WHEEL_BASE64": encoded,
            },
            sources={"WHEEL_BASE64": _base64_literal(wheel.data)} if wheel else None,
        ),
    }
    cells = []
    for cell_id, text in _LAYOUT:
        if cell_id in filled:
            text = filled[cell_id]
        elif cell_id in CELL_FILES:
            text = _cell_file(text)
        if cell_id not in CELL_FILES:
            cells.append(nbf.v4.new_markdown_cell(text, id=cell_id))
        else:
            hidden = cell_id == "wheel"
            cells.append(
                nbf.v4.new_code_cell(text, id=cell_id, metadata=_HIDDEN_CODE if hidden else {})
            )
    return cells


# --------------------------------------------------------------------------- public functions
def build_training_notebook(
    *,
    config: TrainConfig,
    training_zip: str | None = DEFAULT_TRAINING_ZIP,
    drive_path: str | None = None,
    test_movie: str | None = None,
    test_rois: str | None = None,
    package_spec: str | None = None,
    embed_wheel: bool | None = None,
) -> nbformat.NotebookNode:
    """Build the Colab training notebook in memory.

    Parameters
    ----------
    config
        The training parameters, e.g. from :func:`rescunet_ij.api.train_config`. They are validated
        again here (through their JSON form, whose values the notebook holds).
    training_zip
        Name of the training-set zip the user uploads next to the notebook (default
        ``testtrain.zip``, as in the seed). Ignored when ``drive_path`` is a zip file; when
        ``drive_path`` is a folder holding this file, the file is used.
    drive_path
        A training-set zip or folder on Google Drive, relative to "My Drive" (or absolute, e.g.
        ``/content/drive/MyDrive/...``). The notebook mounts Drive and also saves a copy of the
        model there.
    test_movie, test_rois
        Optional test movie (TIFF) and its seed ``RoiSet.zip`` (both or neither): after training
        the notebook propagates the seeds through the movie and shows an overlay.
    package_spec
        What the notebook installs with pip instead of the embedded wheel: an index version
        (``rescunet-ij==0.1.0``), a git URL or a local path. Nothing is embedded then.
    embed_wheel
        Embed a wheel of the running rescunet-ij (:func:`embedded_wheel`) and install that: the
        default (None) unless ``package_spec`` is given. False without ``package_spec``: install
        ``rescunet-ij==<this version>`` from a package index.

    Returns
    -------
    nbformat.NotebookNode
        A valid nbformat-4 notebook; its ``metadata["rescunet_ij"]`` records the settings (and
        ``embedded_wheel``: ``{"name", "sha256", "bytes"}`` of the wheel, or None). Its code
        cells are the files of :data:`CELL_FOLDER` (:data:`CELL_FILES`), the settings and training
        parameters filled in.

    Raises
    ------
    ConfigError
        If a parameter is invalid (same rules as :func:`rescunet_ij.api.train`), neither a
        training zip nor a Drive path is given, only one of ``test_movie``/``test_rois``, or
        both ``package_spec`` and ``embed_wheel=True``.
    RescunetError
        If the wheel to embed cannot be built (use ``package_spec`` then).
    MissingExtraError
        If :mod:`nbformat` is not installed (``pip install 'rescunet-ij[notebook]'``).
    """
    nbf = _nbformat()
    config = _validated_config(config)
    settings = _checked_settings(
        training_zip, drive_path, test_movie, test_rois, package_spec, embed_wheel
    )
    wheel = embedded_wheel() if settings["embed"] else None
    nb = nbf.v4.new_notebook(cells=_cells(nbf, config, settings, wheel))
    nb.metadata.update(
        {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "accelerator": "GPU",  # Colab opens the notebook on a GPU runtime when one is available
            "colab": {"provenance": [], "gpuType": "T4"},
            "rescunet_ij": {
                "generator_version": __version__,
                "config": config.model_dump(mode="json"),
                "training_zip": settings["training_zip"],
                "drive_path": settings["drive_path"],
                "test_movie": settings["test_movie"],
                "test_rois": settings["test_rois"],
                "package_spec": settings["package_spec"],
                "embedded_wheel": (
                    {"name": wheel.name, "sha256": wheel.sha256, "bytes": len(wheel.data)}
                    if wheel
                    else None
                ),
                "model_file": MODEL_FILE,
            },
        }
    )
    nbf.validate(nb)
    return nb


def write_training_notebook(
    path: str | Path,
    *,
    config: TrainConfig,
    training_zip: str | None = DEFAULT_TRAINING_ZIP,
    drive_path: str | None = None,
    test_movie: str | None = None,
    test_rois: str | None = None,
    package_spec: str | None = None,
    embed_wheel: bool | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the Colab training notebook (see :func:`build_training_notebook`) to ``path``.

    Parameters
    ----------
    path
        The ``.ipynb`` file to write (atomically: an existing file is replaced only when
        ``overwrite`` is true and the new notebook is complete).
    config, training_zip, drive_path, test_movie, test_rois, package_spec, embed_wheel
        As for :func:`build_training_notebook`.
    overwrite
        Replace an existing file.

    Returns
    -------
    Path
        The written notebook.

    Raises
    ------
    ConfigError
        If ``path`` does not end in ``.ipynb`` or a parameter is invalid.
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    WriteError
        If the file cannot be written (a missing or read-only folder, a full disk).
    MissingExtraError
        If :mod:`nbformat` is not installed.

    Examples
    --------
    >>> from rescunet_ij import api  # doctest: +SKIP
    >>> cfg = api.train_config(epochs=50, base_filters=32)  # doctest: +SKIP
    >>> write_training_notebook("train_rescunet.ipynb", config=cfg)  # doctest: +SKIP
    """
    from . import api

    path = Path(path)
    if path.suffix.lower() != ".ipynb":
        raise ConfigError(
            f"the notebook file must end in .ipynb (Colab opens only those), got {path.name!r}"
        )
    api.check_outputs([path], overwrite=overwrite)  # fail before the work (and again on writing)
    nb = build_training_notebook(
        config=config,
        training_zip=training_zip,
        drive_path=drive_path,
        test_movie=test_movie,
        test_rois=test_rois,
        package_spec=package_spec,
        embed_wheel=embed_wheel,
    )
    text = _nbformat().writes(nb)
    return api.write_text(path, text if text.endswith("\n") else text + "\n", overwrite=overwrite)
