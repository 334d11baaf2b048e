"""Generate the Colab notebook that trains a ReSCU-Net on a GPU (the seed's "generate training notebook").

The notebook is built cell by cell with :mod:`nbformat` (an optional extra: ``pip install
'rescunet-ij[notebook]'``). It

1. introduces itself and lists the training parameters in a table;
2. checks that the runtime has a GPU and says how to switch to one if not;
3. installs rescunet-ij (the generator's version, or ``package_spec``);
4. parses the training parameters (one ``TrainConfig`` JSON, validated again on Colab);
5. unpacks the uploaded ``testtrain.zip`` or mounts Google Drive, and checks the training-set layout;
6. trains with per-epoch progress and shows the training curve;
7. saves the model file (and copies it to Drive) and offers it for download;
8. optionally propagates a test movie from its seed RoiSet and shows an overlay.

The parameters are validated when the notebook is generated, so a bad value fails here and not
an hour later on Colab. Test mode: with the environment variable ``RESCUNET_NOTEBOOK_TEST=1`` set
for the kernel, the GPU check accepts a CPU and the install step does nothing (the notebook then
uses the rescunet-ij installed in the kernel's Python). The generated code calls only
:mod:`rescunet_ij.api` and a few helpers of the package (progress callbacks, overlay picture).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from . import __version__
from .config import TrainConfig, format_validation_error
from .errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    import nbformat

__all__ = [
    "DEFAULT_TRAINING_ZIP",
    "MODEL_FILE",
    "TEST_MODE_ENV",
    "build_training_notebook",
    "write_training_notebook",
]

TEST_MODE_ENV = "RESCUNET_NOTEBOOK_TEST"
"""Environment variable that puts a generated notebook in test mode (CPU allowed, no install)."""

DEFAULT_TRAINING_ZIP = "testtrain.zip"
"""The training-set zip name the seed's notebook expects."""

MODEL_FILE = "rescunet_model.rescunet"
"""File name of the model the notebook trains (in the Colab working folder)."""

TEST_RESULT_ROIS = "test_RoiSet_propagated.zip"
TEST_OVERLAY_PNG = "test_overlay.png"

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
    "normalization.mode": "percentile = per-window percentiles to 0..1; max = divide by the set's maximum",
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

    The round trip is exactly what the notebook does on Colab, so a config that passes here also
    passes there.
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
    """A Python string literal for ``value`` (double quotes when possible; Colab forms like them)."""
    value = value or ""
    if '"' not in value and "\\" not in value and value.isprintable():
        return f'"{value}"'
    return repr(value)


# --------------------------------------------------------------------------- cell sources
def _settings_source(
    training_zip: str | None,
    drive_path: str | None,
    test_movie: str | None,
    test_rois: str | None,
    package_spec: str,
    allow_cpu: bool,
) -> str:
    return f'''\
# Settings. Change them here if your files have other names, then run all cells (Runtime > Run all).
# TRAINING_ZIP: the training-set zip you upload with the Files pane (folder icon on the left).
# DRIVE_PATH: instead of uploading, a zip or training-set folder on Google Drive, relative to "My Drive"
#             (e.g. "rescunet/testtrain.zip"); when set, TRAINING_ZIP is ignored unless DRIVE_PATH is a
#             folder that holds it.
# TEST_MOVIE / TEST_ROIS: optional TIFF movie and its seed RoiSet.zip to try the trained model on.
TRAINING_ZIP = {_py_str(training_zip)}  #@param {{type:"string"}}
DRIVE_PATH = {_py_str(drive_path)}  #@param {{type:"string"}}
TEST_MOVIE = {_py_str(test_movie)}  #@param {{type:"string"}}
TEST_ROIS = {_py_str(test_rois)}  #@param {{type:"string"}}
MODEL_FILE = {_py_str(MODEL_FILE)}  #@param {{type:"string"}}
PACKAGE_SPEC = {_py_str(package_spec)}  #@param {{type:"string"}}
ALLOW_CPU = {bool(allow_cpu)!r}  #@param {{type:"boolean"}}

import os
import sys

GENERATOR_VERSION = {_py_str(__version__)}
# {TEST_MODE_ENV}=1 in the kernel's environment = test mode: the GPU check accepts a CPU and the
# install step does nothing (for running this notebook headless with rescunet-ij already installed).
TEST_MODE = os.environ.get("{TEST_MODE_ENV}", "").strip().lower() not in ("", "0", "false", "no")
IN_COLAB = "google.colab" in sys.modules
print(f"running in {{'Colab' if IN_COLAB else 'a local Jupyter kernel'}}" + (" (test mode)" if TEST_MODE else ""))
'''


_GPU_SOURCE = '''\
# Is there a GPU? Training on a CPU works, but takes hours instead of minutes.
import shutil
import subprocess


def find_gpu():
    """The name of this runtime's CUDA GPU, or None."""
    try:
        import torch
    except ImportError:  # not installed yet: ask the driver directly
        torch = None
    if torch is not None:
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    return None


GPU_NAME = find_gpu()
if GPU_NAME:
    print(f"GPU runtime: {GPU_NAME}")
elif TEST_MODE or ALLOW_CPU:
    why = "test mode" if TEST_MODE else "ALLOW_CPU is ticked"
    print(f"No GPU found; training on the CPU ({why}). This is slow for real training sets.")
else:
    raise RuntimeError(
        "This runtime has no GPU, and training on a CPU would take a very long time.\\n"
        "Switch to a GPU: Runtime > Change runtime type > Hardware accelerator: GPU (e.g. T4) > Save,\\n"
        "then run the notebook again from the top (Runtime > Run all). Files you uploaded are lost when\\n"
        "the runtime changes: upload them again.\\n"
        "To train on the CPU anyway, tick ALLOW_CPU in the settings cell and run it again."
    )
'''

_INSTALL_SOURCE = """\
# Install rescunet-ij (the version this notebook was generated with, unless PACKAGE_SPEC says otherwise).
if TEST_MODE:
    print(f"test mode: not installing; using the rescunet-ij of {sys.executable}")
else:
    if "rescunet_ij" in sys.modules:
        print("rescunet-ij was already imported in this runtime: if the install below changes it, "
              "restart the runtime (Runtime > Restart session) and run all cells again")
    print(f"installing {PACKAGE_SPEC} ...")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", PACKAGE_SPEC],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\\n")
        raise RuntimeError(
            f"pip could not install {PACKAGE_SPEC!r} (its messages are above). Check PACKAGE_SPEC in the "
            "settings cell (a version such as rescunet-ij==" + GENERATOR_VERSION + ", a git URL or a path) "
            "and that the runtime is online, then run this cell again."
        )

import rescunet_ij

print(f"rescunet-ij {rescunet_ij.__version__} is ready ({rescunet_ij.__file__})")
if rescunet_ij.__version__ != GENERATOR_VERSION:
    print(f"note: this notebook was generated by rescunet-ij {GENERATOR_VERSION}; "
          f"the installed version is {rescunet_ij.__version__}")
"""

_DATA_SOURCE = '''\
# Find the training set: an uploaded zip, or a zip / folder on Google Drive. Zips are unpacked here.
import zipfile
from pathlib import Path

SAMPLE_PARTS = ("image", "mask", "prev_mask")
UNPACKED = Path("rescunet_training_set")  # scratch folder of this notebook, replaced on every run


def drive_root():
    """Mount Google Drive (Colab) and return the folder DRIVE_PATH is relative to."""
    if not IN_COLAB:
        return Path(".")  # outside Colab DRIVE_PATH is an ordinary path
    from google.colab import drive

    drive.mount("/content/drive")
    return Path("/content/drive/MyDrive")


def on_drive(path):
    path = Path(path)
    if path.is_absolute() or not IN_COLAB:
        return path
    if path.parts and path.parts[0] in ("MyDrive", "My Drive"):
        return Path("/content/drive") / path
    return DRIVE_ROOT / path


def missing(path, what):
    here = Path(path).parent if str(Path(path).parent) else Path(".")
    found = sorted(p.name for p in here.iterdir())[:20] if here.is_dir() else []
    listing = f" Files in {here.resolve()}: {', '.join(found) or 'none'}." if here.is_dir() else ""
    if DRIVE_PATH:
        fix = ("Check DRIVE_PATH in the settings cell: it is relative to 'My Drive', e.g. "
               "'rescunet/testtrain.zip'.")
    elif IN_COLAB:
        fix = (f"Upload {Path(path).name} with the Files pane on the left (folder icon > upload), wait until "
               "the upload has finished, then run this cell again. Or put it on Google Drive and set "
               "DRIVE_PATH in the settings cell.")
    else:
        fix = f"Copy {Path(path).name} next to this notebook, or set the path in the settings cell."
    return FileNotFoundError(f"{what} {path} not found. {fix}{listing}")


def unpack(zip_path, dest):
    """Unpack a zip into dest, refusing members that would land outside it."""
    import shutil

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    root = dest.resolve()
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for member in zf.infolist():
                if member.filename.startswith("__MACOSX"):
                    continue
                target = (dest / member.filename).resolve()
                if target != root and root not in target.parents:
                    raise ValueError(f"{zip_path} holds a file outside its folder ({member.filename}); "
                                     "it is not a training-set zip")
                zf.extract(member, dest)
    except zipfile.BadZipFile:
        raise ValueError(f"{zip_path} is not a valid zip file (an unfinished upload?); upload it again") from None
    return dest


def is_sample(folder):
    return all((folder / part).is_dir() for part in SAMPLE_PARTS)


def find_samples(top):
    """The folder whose subfolders are the samples (image/, mask/, prev_mask/), searched 3 levels deep."""
    level = [Path(top)]
    for _ in range(4):
        for folder in level:
            if any(is_sample(sub) for sub in folder.iterdir() if sub.is_dir()):
                return folder
        level = [sub for folder in level for sub in folder.iterdir()
                 if sub.is_dir() and not sub.name.startswith((".", "__MACOSX"))]
    raise ValueError(
        f"no training samples found in {top}: each sample must be a folder holding the subfolders "
        "image/, mask/ and prev_mask/ (make the set with 'rescunet-ij make-training-set ... --zip "
        "testtrain.zip' or Fiji's 'Create training set')"
    )


DRIVE_ROOT = drive_root() if DRIVE_PATH else None
if DRIVE_PATH:
    source = on_drive(DRIVE_PATH)
    if source.is_dir() and TRAINING_ZIP and (source / TRAINING_ZIP).is_file():
        source = source / TRAINING_ZIP
    if not source.exists():
        raise missing(source, "training set")
    DATA_DIR = source.parent  # the Drive folder for the test files and the copy of the model
else:
    if not TRAINING_ZIP:
        raise ValueError("set TRAINING_ZIP (an uploaded zip) or DRIVE_PATH in the settings cell")
    source = Path(TRAINING_ZIP)
    if not source.exists():
        raise missing(source, "training-set zip")
    DATA_DIR = None

if source.is_file():
    print(f"unpacking {source} ...")
    TRAINING_SET = find_samples(unpack(source, UNPACKED))
else:
    TRAINING_SET = find_samples(source)

samples = sorted(p for p in TRAINING_SET.iterdir() if p.is_dir())
complete = [p for p in samples if is_sample(p)]
incomplete = [p.name for p in samples if not is_sample(p)]
if incomplete:
    print(f"warning: {len(incomplete)} folder(s) lack image/, mask/ or prev_mask/ and are not samples: "
          + ", ".join(incomplete[:5]) + (" ..." if len(incomplete) > 5 else ""))
print(f"training set: {len(complete)} samples in {TRAINING_SET}")
'''

_TRAIN_SOURCE = """\
# Train. Each epoch prints its losses; the best model (lowest validation loss) is kept.
# Press the stop button once to end training early and keep the best model so far.
import importlib.util
import json
import signal
import time
import warnings

from rescunet_ij import api
from rescunet_ij.data.training_set import META_FILE
from rescunet_ij.train.loop import TrainCallbacks

tqdm = None
if importlib.util.find_spec("ipywidgets") and importlib.util.find_spec("tqdm"):  # a live bar (Colab has both)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm

if config.subimage_size is None and (TRAINING_SET / META_FILE).is_file():
    # As `rescunet-ij train` does: cut windows of the size the training set was made with.
    window = json.loads((TRAINING_SET / META_FILE).read_text()).get("window_size")
    if window:
        config.subimage_size = tuple(window)
        print(f"subimage size {config.subimage_size[0]} x {config.subimage_size[1]} (from the training set)")


def fmt(value, digits=4):
    return "-" if value is None else f"{value:.{digits}f}"


stop_requested = False


def request_stop(signum, frame):
    global stop_requested
    if stop_requested:  # second press: stop at once
        raise KeyboardInterrupt
    stop_requested = True
    print("stopping after this batch; the best model so far is kept (press stop again to abort)")


def on_epoch_end(stats):
    line = (f"epoch {stats['epoch']}/{stats.get('epochs', config.epochs)}: "
            f"loss {fmt(stats.get('train_loss'))}, validation loss {fmt(stats.get('val_loss'))}, "
            f"validation IoU {fmt(stats.get('val_iou'), 3)} ({time.perf_counter() - started:.0f} s)")
    if bar is not None:
        bar.update(1)
        bar.set_postfix(loss=fmt(stats.get("train_loss")), val_iou=fmt(stats.get("val_iou"), 3))
    print(line, flush=True)


try:
    previous_handler = signal.signal(signal.SIGINT, request_stop)
except ValueError:  # not the main thread: the stop button interrupts at once
    previous_handler = None
started = time.perf_counter()
bar = tqdm(total=config.epochs, desc="training", unit="epoch") if tqdm is not None else None
try:
    result = api.train(TRAINING_SET, MODEL_FILE, config=config, overwrite=True,
                       callbacks=TrainCallbacks(on_epoch_end=on_epoch_end, should_stop=lambda: stop_requested))
finally:
    if bar is not None:
        bar.close()
    if previous_handler is not None:
        signal.signal(signal.SIGINT, previous_handler)
if result.model_path is None:
    raise RuntimeError("training stopped before the first epoch ended: no model was saved; run this cell again")
how = "stopped early" if result.stopped_early else ("stopped by you" if result.cancelled else "finished")
print(f"training {how} after {len(result.history)} epochs in {time.perf_counter() - started:.0f} s; "
      f"best epoch {result.best_epoch}")
"""

_CURVE_SOURCE = """\
# The training curve (loss and validation IoU per epoch), as written next to the model file.
from IPython.display import Image, display

curve = getattr(result, "history_png", None)
if curve is not None and Path(curve).is_file():
    display(Image(filename=str(curve)))
    print(f"curve: {curve}; numbers: {getattr(result, 'history_csv', None)}")
else:
    print("no training-curve picture was written")
"""

_SAVE_SOURCE = """\
# Save the model: check it opens, copy it to Google Drive (if used) and download it.
MODEL_PATH = Path(result.model_path)
loaded = api.load_model(MODEL_PATH)  # the file opens: what Fiji and the CLI will read
print(f"model file: {MODEL_PATH.resolve()} ({MODEL_PATH.stat().st_size / 1e6:.1f} MB), "
      f"input size {tuple(loaded.model_config.input_size)}")

if DATA_DIR is not None:
    import shutil

    copy = DATA_DIR / MODEL_PATH.name
    n = 1
    while copy.exists():  # never replace a model saved by an earlier run
        n += 1
        copy = DATA_DIR / f"{MODEL_PATH.stem}_{n}{MODEL_PATH.suffix}"
    shutil.copy2(MODEL_PATH, copy)
    print(f"copied to {copy}")

if IN_COLAB and not TEST_MODE:
    from google.colab import files

    files.download(str(MODEL_PATH))  # your browser saves it to its downloads folder
else:
    print(f"not in Colab: the model is at {MODEL_PATH.resolve()}")
print("Use it on your computer with: rescunet-ij propagate movie.tif RoiSet.zip "
      f"--model {MODEL_PATH.name} -o RoiSet_out.zip (or from Fiji, see the rescunet-ij README)")
"""

_TEST_SOURCE = f"""\
# Optional: propagate the seed outlines of a test movie with the new model and look at the result.
def find_input(name, what):
    candidates = [Path(name)]
    if DRIVE_PATH:
        candidates += [DATA_DIR / name, on_drive(name)]
    for path in candidates:
        if path.is_file():
            return path
    raise missing(candidates[-1], what)


if not (TEST_MOVIE and TEST_ROIS):
    print("no test movie: set TEST_MOVIE and TEST_ROIS in the settings cell to try the model on one")
else:
    from rescunet_ij.io.movie import select_plane_series
    from rescunet_ij.report import overlay_png

    movie = api.read_movie(find_input(TEST_MOVIE, "test movie"))
    seeds = api.read_outlines(find_input(TEST_ROIS, "seed RoiSet"), movie)
    run = api.propagate(movie, seeds, MODEL_PATH)
    TEST_RESULT = api.write_outlines({_py_str(TEST_RESULT_ROIS)}, run.outlines, movie, overwrite=True)
    print(f"{{len(run.predicted)}} outlines predicted on frames {{run.start_frame + 2}}..{{run.end_frame + 1}}; "
          f"written to {{TEST_RESULT}} (open it in Fiji's ROI Manager)")
    for frame, object_id, why in run.doubtful()[:10]:
        print(f"  worth a look: frame {{frame + 1}}, object {{object_id}}: {{why}}")
    planes = select_plane_series(movie)[0]
    display(Image(filename=str(overlay_png(planes, run.outlines, {_py_str(TEST_OVERLAY_PNG)}))))
    if IN_COLAB and not TEST_MODE:
        from google.colab import files

        files.download(str(TEST_RESULT))
"""


# --------------------------------------------------------------------------- markdown
def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _parameter_rows(config: TrainConfig) -> list[tuple[str, str, str]]:
    rows = []

    def add(prefix: str, model: Any) -> None:
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            key = f"{prefix}{name}"
            if isinstance(value, BaseModel):
                add(f"{key}.", value)
                continue
            shown = json.dumps(list(value) if isinstance(value, tuple) else value)
            rows.append((key, shown, field.description or _DESCRIPTIONS.get(key, "")))

    add("", config)
    return rows


def _intro_markdown(
    config: TrainConfig,
    training_zip: str | None,
    drive_path: str | None,
    test_movie: str | None,
) -> str:
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
        f"Afterwards it propagates the seed outlines of the test movie `{test_movie}` and shows them."
        if test_movie
        else "Set `TEST_MOVIE` and `TEST_ROIS` below to try the model on a movie afterwards."
    )
    return f"""\
# Train a ReSCU-Net (rescunet-ij {__version__})

This notebook trains a ReSCU-Net, a U-Net that outlines one object in a frame from the image and
the object's outline in the previous frame, on a GPU in Google Colab. It was generated by
`rescunet-ij notebook`.

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


def _pretty_json(data: Mapping[str, Any], indent: str = "  ") -> str:
    """JSON with one key per line (nested objects too) and lists kept on one line."""
    lines = []
    for key, value in data.items():
        shown = (
            _pretty_json(value, indent + "  ") if isinstance(value, Mapping) else json.dumps(value)
        )
        lines.append(f"{indent}{json.dumps(key)}: {shown}")
    return "{\n" + ",\n".join(lines) + "\n" + indent[:-2] + "}"


def _config_source(config: TrainConfig) -> str:
    text = _pretty_json(config.model_dump(mode="json"))
    literal = f"'''\n{text}\n'''" if "'''" not in text and "\\" not in text else repr(text)
    return (
        "# Training parameters (a rescunet_ij TrainConfig). Edit the values here; they are checked at once.\n"
        "from rescunet_ij.config import TrainConfig\n\n"
        f"config = TrainConfig.model_validate_json({literal})\n"
        "for key, value in config.model_dump().items():\n"
        '    print(f"{key:>24}: {value}")\n'
    )


# --------------------------------------------------------------------------- public functions
def build_training_notebook(
    *,
    config: TrainConfig,
    training_zip: str | None = DEFAULT_TRAINING_ZIP,
    drive_path: str | None = None,
    test_movie: str | None = None,
    test_rois: str | None = None,
    package_spec: str | None = None,
) -> nbformat.NotebookNode:
    """Build the Colab training notebook in memory.

    Parameters
    ----------
    config
        The training parameters, e.g. from :func:`rescunet_ij.api.train_config`. They are validated
        again here (through their JSON form, as the notebook reads them).
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
        What the notebook installs with pip; default ``rescunet-ij==<this version>``. A git URL or
        a local path (``/work/rescunet-ij``) works too.

    Returns
    -------
    nbformat.NotebookNode
        A valid nbformat-4 notebook; its ``metadata["rescunet_ij"]`` records the settings.

    Raises
    ------
    ConfigError
        If a parameter is invalid (same rules as :func:`rescunet_ij.api.train`), neither a
        training zip nor a Drive path is given, or only one of ``test_movie``/``test_rois``.
    MissingExtraError
        If :mod:`nbformat` is not installed (``pip install 'rescunet-ij[notebook]'``).
    """
    nbf = _nbformat()
    config = _validated_config(config)
    training_zip = _check_text(
        training_zip, "training_zip", hint="give the zip's file name, e.g. testtrain.zip"
    )
    drive_path = _check_text(drive_path, "drive_path", hint="give a path relative to 'My Drive'")
    test_movie = _check_text(
        test_movie, "test_movie", hint="give the movie's file name, e.g. movie.tif"
    )
    test_rois = _check_text(
        test_rois, "test_rois", hint="give the seed RoiSet's file name, e.g. RoiSet.zip"
    )
    spec = _check_text(
        package_spec, "package_spec", hint="e.g. rescunet-ij==0.1.0, a git URL or a path"
    )
    if training_zip is None and drive_path is None:
        raise ConfigError(
            "no training data: give training_zip (a zip uploaded to Colab, e.g. testtrain.zip; CLI "
            "--training-zip) or drive_path (a zip or folder on Google Drive; CLI --drive-path)"
        )
    if drive_path is None and not training_zip.lower().endswith(".zip"):  # type: ignore[union-attr]
        raise ConfigError(
            f"training_zip must name a .zip file, got {training_zip!r}; pack a training-set folder with "
            "'rescunet-ij export-training-zip FOLDER -o testtrain.zip', or use drive_path for a folder on Drive"
        )
    if (test_movie is None) != (test_rois is None):
        given, needed = ("test_movie", "test_rois") if test_movie else ("test_rois", "test_movie")
        raise ConfigError(
            f"{given} was given without {needed}: propagating a test movie needs both the movie and "
            "its seed RoiSet.zip (CLI --test-movie and --test-rois)"
        )
    spec = spec or f"rescunet-ij=={__version__}"
    allow_cpu = config.device == "cpu"  # the user asked for CPU training explicitly

    md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
    cells = [
        md(_intro_markdown(config, training_zip, drive_path, test_movie), id="introduction"),
        code(
            _settings_source(training_zip, drive_path, test_movie, test_rois, spec, allow_cpu),
            id="settings",
        ),
        md(
            "## 1. Check the GPU\nIf this cell fails, switch the runtime: **Runtime > Change runtime type > "
            "GPU**, then **Runtime > Run all** again.",
            id="gpu-title",
        ),
        code(_GPU_SOURCE, id="gpu-check"),
        md("## 2. Install rescunet-ij", id="install-title"),
        code(_INSTALL_SOURCE, id="install"),
        md(
            "## 3. Training parameters\nThese were checked when the notebook was generated. You may edit "
            "the JSON; a wrong value stops here with a message naming it.",
            id="parameters-title",
        ),
        code(_config_source(config), id="parameters"),
        md(
            "## 4. Training data\nThe uploaded zip (or the Drive path) is unpacked and every sample folder is "
            "checked for `image/`, `mask/` and `prev_mask/`.",
            id="data-title",
        ),
        code(_DATA_SOURCE, id="data"),
        md("## 5. Train", id="train-title"),
        code(_TRAIN_SOURCE, id="train"),
        code(_CURVE_SOURCE, id="curve"),
        md("## 6. Save and download the model", id="save-title"),
        code(_SAVE_SOURCE, id="save"),
        md(
            "## 7. Optional: try the model on a test movie\nThe seed outlines (`TEST_ROIS`, outlines on the "
            "first frame) are propagated through `TEST_MOVIE`; the result is a RoiSet.zip for Fiji's ROI "
            "Manager and an overlay picture.",
            id="test-title",
        ),
        code(_TEST_SOURCE, id="test-movie"),
    ]
    nb = nbf.v4.new_notebook(cells=cells)
    nb.metadata.update(
        {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "accelerator": "GPU",  # Colab opens the notebook on a GPU runtime when one is available
            "colab": {"provenance": [], "gpuType": "T4"},
            "rescunet_ij": {
                "generator_version": __version__,
                "config": config.model_dump(mode="json"),
                "training_zip": training_zip,
                "drive_path": drive_path,
                "test_movie": test_movie,
                "test_rois": test_rois,
                "package_spec": spec,
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
    overwrite: bool = False,
) -> Path:
    """Write the Colab training notebook (see :func:`build_training_notebook`) to ``path``.

    Parameters
    ----------
    path
        The ``.ipynb`` file to write (atomically: an existing file is replaced only when
        ``overwrite`` is true and the new notebook is complete).
    config, training_zip, drive_path, test_movie, test_rois, package_spec
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
    MissingExtraError
        If :mod:`nbformat` is not installed.

    Examples
    --------
    >>> from rescunet_ij import api  # doctest: +SKIP
    >>> cfg = api.train_config(epochs=50, base_filters=32)  # doctest: +SKIP
    >>> write_training_notebook("train_rescunet.ipynb", config=cfg)  # doctest: +SKIP
    """
    from .io.atomic import atomic_write_text, check_overwrite

    path = Path(path)
    if path.suffix.lower() != ".ipynb":
        raise ConfigError(
            f"the notebook file must end in .ipynb (Colab opens only those), got {path.name!r}"
        )
    check_overwrite(path, overwrite)  # fail before the work, and again atomically when writing
    nb = build_training_notebook(
        config=config,
        training_zip=training_zip,
        drive_path=drive_path,
        test_movie=test_movie,
        test_rois=test_rois,
        package_spec=package_spec,
    )
    text = _nbformat().writes(nb)
    return atomic_write_text(
        path, text if text.endswith("\n") else text + "\n", overwrite=overwrite
    )
