"""Run PyJAMAS's own ReSCU-Net (``pyjamas-rfglab`` 2026.9.0) from the benchmarks, in its own venv.

This module measures nothing itself: the benchmarks (``bench_core.py --pyjamas``,
``bench_pyjamas_import.py``, time-to-accuracy) import it to train and apply the reference
implementation on the same data and machine as rescunet-ij. PyJAMAS lives in its own virtual
environment (built by ``../shared/tools/pyjamas_venv.sh``: ``pyjamas-rfglab==2026.9.0`` with
``torch==2.13.0`` CPU, Keras 3 on the torch backend) and runs in a subprocess
(``KERAS_BACKEND=torch QT_QPA_PLATFORM=offscreen``); nothing from PyJAMAS is imported here.

Parent side (the benchmark's Python; standard library plus numpy):

* :func:`pyjamas_python` -- the venv's python (building the venv if asked), or ``None``;
* :func:`train_pyjamas` -- ``ReSCUNet(params).fit()`` on a PyJAMAS-layout training folder, as the
  PyJAMAS dialog does: wall time, time in ``fit()``, peak RSS, the ``.cfr`` files, per-epoch
  losses and time stamps (and optionally a per-epoch IoU on windows you give);
* :func:`predict_pyjamas` -- ``ReSCUNet.predict`` (one object in one frame, PyJAMAS's tiling
  and clean-up) for a list of (frame, previous mask) pairs: masks, time per object-frame, peak RSS;
* :func:`window_probabilities` -- the network's foreground probability on given windows (the
  ``unet-activation`` softmax after dividing by the model's ``scaler``), to compare networks.

* :func:`random_cfr` -- an untrained network at any concatenation level, saved by PyJAMAS.

Worker side: ``python _pyjamas.py {train,predict,windows,random_cfr} REQUEST.json`` in the
PyJAMAS venv (what the functions above run; arrays travel as ``.npy`` files in a temporary folder).
PyJAMAS's defaults (its dialog's) are in :data:`PYJAMAS_DEFAULTS`. On 2 CPU cores PyJAMAS trains
~5 samples/s at input 64 (~9 in ``fit()``), each ``.cfr`` (110 MB pickle) takes seconds to write,
and predicting one object in a 256x256 frame takes ~3.5 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "PYJAMAS_DEFAULTS",
    "PYJAMAS_VERSION",
    "PyjamasPrediction",
    "PyjamasTraining",
    "predict_pyjamas",
    "pyjamas_env",
    "pyjamas_python",
    "random_cfr",
    "train_pyjamas",
    "window_probabilities",
]

PYJAMAS_VERSION = "2026.9.0"
"""The pyjamas-rfglab release these helpers drive."""

REPO = Path(__file__).resolve().parents[1]
VENV_SCRIPT = REPO.parent / "shared" / "tools" / "pyjamas_venv.sh"
"""Builds the PyJAMAS venv idempotently and prints its python (last line)."""

PYJAMAS_DEFAULTS: dict[str, Any] = {
    "train_image_size": None,  # the dialog starts at (0, 0): the user types it; None = the images'
    "step_sz": (24, 24),  # ReSCUNet.STEP_SIZE = TRAIN_IMAGE_SIZE // 8 (192 // 8)
    "learning_rate": 1e-3,
    "mini_batch_size": 1,
    "epochs": 100,
    "validation_split": 0.1,
    "erosion_width": 0,
    "concatenation_level": 1,
    "patience": 5,  # early stopping and the learning-rate scheduler (factor 0.1)
    "save_best_only": True,
}
"""The defaults of PyJAMAS 2026.9.0's ReSCU-Net dialog (``dialogs/rescuneuralnet.py``)."""


# ============================================================================ parent side
def pyjamas_env(threads: int | None = None) -> dict[str, str]:
    """The environment PyJAMAS runs in: torch Keras backend, no display, unbuffered output.

    ``threads`` sets ``OMP_NUM_THREADS`` (else the caller's setting, else torch's default).
    """
    env = dict(os.environ)
    env.update(KERAS_BACKEND="torch", QT_QPA_PLATFORM="offscreen", PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)  # never let rescunet-ij's paths leak into PyJAMAS's venv
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def pyjamas_python(build: bool = False, timeout: float = 1800) -> Path | None:
    """The PyJAMAS venv's python, or ``None`` when it is not there (and ``build`` is false).

    ``$PYJAMAS_PYTHON`` wins; else ``$PYJAMAS_STUDY/venv`` (default ``/tmp/pyjamas-study/venv``)
    is used if PyJAMAS imports there. With ``build=True`` a missing venv is built with
    ``pyjamas_venv.sh`` (minutes; needs the package index), and a failed build returns ``None``.
    """
    explicit = os.environ.get("PYJAMAS_PYTHON")
    if explicit:
        return Path(explicit) if Path(explicit).exists() else None
    venv = Path(os.environ.get("PYJAMAS_STUDY", "/tmp/pyjamas-study")) / "venv"
    py = venv / "bin" / "python"
    if py.exists() and _imports_pyjamas(py):
        return py
    if not build or not VENV_SCRIPT.exists():
        return None
    proc = subprocess.run(
        ["bash", str(VENV_SCRIPT)], capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not Path(lines[-1]).exists():
        print(f"[_pyjamas] building PyJAMAS's venv failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return Path(lines[-1])


def _imports_pyjamas(py: Path) -> bool:
    proc = subprocess.run(
        [str(py), "-c", "import pyjamas.rimage.rimml.rimrescunet"],
        capture_output=True,
        env=pyjamas_env(threads=1),
        timeout=300,
        check=False,
    )
    return proc.returncode == 0


@dataclass
class PyjamasTraining:
    """What one PyJAMAS training run did and cost.

    Attributes
    ----------
    cfr
        ``save_folder/ckpt_final.cfr`` (the best epoch's weights when checkpoints keep the best).
    best_cfr
        ``save_folder/ckpt_best.cfr`` or ``None``.
    wall_s
        The whole subprocess, as a user's command: start, imports, data loading, ``fit()``, exit.
    fit_s
        Inside ``ReSCUNet.fit()``: data loading and weight maps, epochs, checkpoint pickling.
    import_s
        ``import pyjamas...rimrescunet`` (Keras, torch, Qt, ...).
    peak_rss_mb
        Peak resident memory of the PyJAMAS process (``ru_maxrss``), MiB.
    n_samples, n_train, n_val
        Samples in the folder; used for training / validation (PyJAMAS takes the last
        ``int(n * validation_split)`` samples, in ``os.walk`` order, for validation).
    epochs_run
        Epochs trained (early stopping may end before ``epochs``).
    epoch_end_s
        Seconds since ``fit()`` began at which each epoch's training and validation ended
        (its "Epoch k/N" line; the epoch's checkpoint is written after it). Time spent in the
        optional per-epoch IoU evaluation is excluded.
    losses, val_losses
        PyJAMAS's weighted loss per epoch (``val_losses`` empty without validation).
    epoch_iou
        Mean IoU (foreground argmax vs mask) on ``eval_windows`` after each epoch, if given.
    samples_per_s
        ``n_train * epochs_run / fit_s`` (data loading and checkpoints included).
    params
        The parameter dict given to ``ReSCUNet``.
    """

    cfr: Path
    best_cfr: Path | None
    wall_s: float
    fit_s: float
    import_s: float
    peak_rss_mb: float
    n_samples: int
    n_train: int
    n_val: int
    epochs_run: int
    epoch_end_s: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    epoch_iou: list[float] = field(default_factory=list)
    samples_per_s: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class PyjamasPrediction:
    """PyJAMAS's ``ReSCUNet.predict`` on a list of (frame, previous mask) pairs.

    Attributes
    ----------
    masks
        ``(N, H, W)`` bool: each predicted contour rasterised back to a mask
        (``rimutils.mask_from_polylines``, brush 0); empty when PyJAMAS found nothing.
    probabilities
        ``(N, H, W)`` float32: PyJAMAS's ``prob_array`` (the winning class's probability of the
        last tile that covered each pixel).
    seconds
        Wall time of each ``predict`` call (building its Keras predictor, tiles, clean-up,
        contours).
    load_s
        Opening the ``.cfr`` and building the network.
    import_s
        Importing PyJAMAS.
    wall_s
        The whole subprocess.
    peak_rss_mb
        Peak resident memory of the PyJAMAS process, MiB.
    """

    masks: Any
    probabilities: Any
    seconds: list[float]
    load_s: float
    import_s: float
    wall_s: float
    peak_rss_mb: float

    @property
    def s_per_object_frame(self) -> float:
        """Mean wall time of one ``predict`` call (one object in one frame), seconds."""
        return sum(self.seconds) / max(1, len(self.seconds))


def _run_worker(
    py: Path | None, task: str, request: dict[str, Any], timeout: float, threads: int | None
) -> tuple[dict[str, Any], float]:
    """Run ``_pyjamas.py TASK REQUEST.json`` in the PyJAMAS venv; its result and the wall time."""
    py = py or pyjamas_python()
    if py is None:
        raise RuntimeError(
            "PyJAMAS's venv is missing: run ../shared/tools/pyjamas_venv.sh "
            "(or pyjamas_python(build=True)), or set PYJAMAS_PYTHON"
        )
    workdir = Path(request["workdir"])
    req_path = workdir / f"{task}_request.json"
    req_path.write_text(json.dumps(request))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(py), str(Path(__file__).resolve()), task, str(req_path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=pyjamas_env(threads),
        cwd=str(workdir),
        check=False,
    )
    wall = time.perf_counter() - t0
    result_path = workdir / f"{task}_result.json"
    if proc.returncode != 0 or not result_path.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-20:]
        raise RuntimeError(f"PyJAMAS {task} failed (exit {proc.returncode}):\n" + "\n".join(tail))
    return json.loads(result_path.read_text()), wall


def train_pyjamas(
    training_folder: str | os.PathLike[str],
    save_folder: str | os.PathLike[str],
    *,
    train_image_size: tuple[int, int] | int | None = None,
    step_sz: tuple[int, int] | int = PYJAMAS_DEFAULTS["step_sz"],
    learning_rate: float = PYJAMAS_DEFAULTS["learning_rate"],
    mini_batch_size: int = PYJAMAS_DEFAULTS["mini_batch_size"],
    epochs: int = PYJAMAS_DEFAULTS["epochs"],
    validation_split: float = PYJAMAS_DEFAULTS["validation_split"],
    erosion_width: int = PYJAMAS_DEFAULTS["erosion_width"],
    concatenation_level: int = PYJAMAS_DEFAULTS["concatenation_level"],
    patience: int = PYJAMAS_DEFAULTS["patience"],
    early_stopping: bool = True,
    lr_scheduler: bool = True,
    checkpoints: bool = True,
    save_best_only: bool = PYJAMAS_DEFAULTS["save_best_only"],
    logging: bool = False,
    seed: int | None = 0,
    eval_windows: tuple[Any, Any, Any] | None = None,
    python: Path | None = None,
    threads: int | None = None,
    timeout: float = 3600,
) -> PyjamasTraining:
    """Train PyJAMAS's ReSCU-Net on a PyJAMAS-layout folder, as its dialog does.

    Parameters
    ----------
    training_folder
        One subfolder per sample with ``image/``, ``mask/``, ``prev_mask/`` (what
        ``api.make_training_set`` writes). Images are resized to ``train_image_size`` by PyJAMAS.
    save_folder
        Where PyJAMAS writes ``ckpt_best.cfr`` and ``ckpt_final.cfr`` (created if missing).
    train_image_size
        Network input (rows, cols); ``None`` = the first sample's image size rounded down to a
        multiple of 16 (as the dialog rounds).
    step_sz, learning_rate, mini_batch_size, epochs, validation_split, erosion_width
        PyJAMAS's parameters (defaults: its dialog's, :data:`PYJAMAS_DEFAULTS`).
    concatenation_level, patience
        Where the prompt joins the image (0-4); early stopping / LR scheduler patience.
    early_stopping, lr_scheduler, checkpoints, save_best_only, logging
        PyJAMAS's callback switches. ``checkpoints=False`` trains without pickling ``.cfr``
        files each time validation improves; the final model is still saved (``ckpt_final``
        via :meth:`ReSCUNet.save`). ``logging`` writes TensorBoard logs (off by default).
    seed
        Seeds ``torch``, ``numpy`` and ``random`` in the worker (``None``: not seeded).
    eval_windows
        Optional ``(images (N, H, W), prev_masks (N, H, W), masks (N, H, W))`` windows of the
        network input size, raw intensities: after each epoch the worker computes the mean IoU
        of the network's foreground (argmax) against ``masks`` (outside the timed epochs).
    python
        The PyJAMAS venv's python (default :func:`pyjamas_python`).
    threads
        ``OMP_NUM_THREADS`` for the worker (default: inherited).
    timeout
        Seconds before the worker is killed.

    Returns
    -------
    PyjamasTraining
    """
    import numpy as np

    save = Path(save_folder).resolve()
    save.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pyjamas_train_", dir=save))
    params: dict[str, Any] = {
        "positive_training_folder": os.path.join(str(Path(training_folder).resolve()), ""),
        "save_folder": os.path.join(str(save), ""),
        "train_image_size": _pair(train_image_size) if train_image_size is not None else None,
        "step_sz": _pair(step_sz),
        "learning_rate": float(learning_rate),
        "mini_batch_size": int(mini_batch_size),
        "epochs": int(epochs),
        "validation_split": float(validation_split),
        "erosion_width": int(erosion_width),
        "concatenation_level": int(concatenation_level),
        "early_stopper": {"active": bool(early_stopping), "kwargs": {"patience": int(patience)}},
        "lr_scheduler": {"active": bool(lr_scheduler), "kwargs": {"patience": int(patience)}},
        "model_checkpoint": {
            "active": bool(checkpoints),
            "kwargs": {"save_best_only": bool(save_best_only)},
        },
        "logging": {"active": bool(logging), "kwargs": {}},
    }
    request: dict[str, Any] = {"workdir": str(workdir), "params": params, "seed": seed}
    if eval_windows is not None:
        for name, arr in zip(("images", "prev_masks", "masks"), eval_windows, strict=True):
            np.save(workdir / f"eval_{name}.npy", np.asarray(arr))
        request["eval"] = True
    try:
        res, wall = _run_worker(python, "train", request, timeout, threads)
    finally:
        _rmtree(workdir)
    best = save / "ckpt_best.cfr"
    return PyjamasTraining(
        cfr=save / "ckpt_final.cfr",
        best_cfr=best if best.exists() else None,
        wall_s=wall,
        fit_s=res["fit_s"],
        import_s=res["import_s"],
        peak_rss_mb=res["peak_rss_mb"],
        n_samples=res["n_samples"],
        n_train=res["n_train"],
        n_val=res["n_val"],
        epochs_run=len(res["epoch_end_s"]),
        epoch_end_s=res["epoch_end_s"],
        losses=res["losses"],
        val_losses=res["val_losses"],
        epoch_iou=res.get("epoch_iou", []),
        samples_per_s=res["n_train"] * len(res["epoch_end_s"]) / res["fit_s"],
        params={**params, "train_image_size": res["train_image_size"]},
    )


def predict_pyjamas(
    cfr: str | os.PathLike[str],
    images: Any,
    prev_masks: Any,
    *,
    step_sz: tuple[int, int] | int | None = None,
    python: Path | None = None,
    threads: int | None = None,
    timeout: float = 3600,
) -> PyjamasPrediction:
    """Run PyJAMAS's ``ReSCUNet.predict`` once per (image, previous mask) pair.

    Parameters
    ----------
    cfr
        A PyJAMAS model file (opened in the worker with PyJAMAS's own ``pickle.load``: give only
        trusted files).
    images
        ``(N, H, W)`` frames (raw intensities; PyJAMAS divides by the model's ``scaler``).
    prev_masks
        ``(N, H, W)`` bool: the object's mask in the previous frame, one per image.
    step_sz
        Tile step (rows, cols); ``None`` = the one stored in the model.
    python, threads, timeout
        As for :func:`train_pyjamas`.

    Returns
    -------
    PyjamasPrediction
    """
    import numpy as np

    workdir = Path(tempfile.mkdtemp(prefix="pyjamas_predict_"))
    try:
        np.save(workdir / "images.npy", np.asarray(images))
        np.save(workdir / "prev_masks.npy", np.asarray(prev_masks, dtype=bool))
        request = {
            "workdir": str(workdir),
            "cfr": str(Path(cfr).resolve()),
            "step_sz": None if step_sz is None else _pair(step_sz),
        }
        res, wall = _run_worker(python, "predict", request, timeout, threads)
        return PyjamasPrediction(
            masks=np.load(workdir / "masks.npy"),
            probabilities=np.load(workdir / "probabilities.npy"),
            seconds=res["seconds"],
            load_s=res["load_s"],
            import_s=res["import_s"],
            wall_s=wall,
            peak_rss_mb=res["peak_rss_mb"],
        )
    finally:
        _rmtree(workdir)


def window_probabilities(
    cfr: str | os.PathLike[str],
    images: Any,
    prev_masks: Any,
    *,
    python: Path | None = None,
    threads: int | None = None,
    timeout: float = 1800,
) -> Any:
    """PyJAMAS's network on ``(N, H, W)`` windows: the foreground probability ``(N, H, W)``.

    The windows (network input size, raw intensities) are divided by the model's ``scaler`` and
    fed, one batch, to the ``unet-activation`` softmax of PyJAMAS's Keras model (as
    ``ReSCUNet.predict`` does for each tile), with ``training=False``.
    """
    import numpy as np

    workdir = Path(tempfile.mkdtemp(prefix="pyjamas_windows_"))
    try:
        np.save(workdir / "images.npy", np.asarray(images))
        np.save(workdir / "prev_masks.npy", np.asarray(prev_masks, dtype=bool))
        request = {"workdir": str(workdir), "cfr": str(Path(cfr).resolve())}
        _run_worker(python, "windows", request, timeout, threads)
        return np.load(workdir / "probabilities.npy")
    finally:
        _rmtree(workdir)


def random_cfr(
    path: str | os.PathLike[str],
    *,
    concatenation_level: int = 1,
    train_image_size: tuple[int, int] | int = (64, 64),
    scaler: float = 1000.0,
    erosion_width: int = 0,
    keep_level: bool = True,
    seed: int = 0,
    python: Path | None = None,
    threads: int | None = None,
    timeout: float = 900,
) -> Path:
    """Save an untrained PyJAMAS ReSCU-Net (Keras ``he_normal`` weights) with ``ReSCUNet.save``.

    A quick ``.cfr`` at any concatenation level, written by PyJAMAS itself, to check a weight
    mapping; ``keep_level=False`` removes ``concatenation_level`` from the saved dict, like the
    files of older PyJAMAS versions. Returns ``path``.
    """
    workdir = Path(tempfile.mkdtemp(prefix="pyjamas_random_"))
    try:
        request = {
            "workdir": str(workdir),
            "path": str(Path(path).resolve()),
            "params": {
                "train_image_size": _pair(train_image_size),
                "concatenation_level": int(concatenation_level),
                "scaler": float(scaler),
                "erosion_width": int(erosion_width),
            },
            "keep_level": bool(keep_level),
            "seed": seed,
        }
        _run_worker(python, "random_cfr", request, timeout, threads)
    finally:
        _rmtree(workdir)
    return Path(path)


def _pair(v: Any) -> list[int]:
    if isinstance(v, int):
        return [v, v]
    a, b = v
    return [int(a), int(b)]


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# ============================================================================ worker side
def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _import_pyjamas() -> tuple[Any, float]:
    t0 = time.perf_counter()
    from pyjamas.rimage.rimml.rimrescunet import ReSCUNet

    return ReSCUNet, time.perf_counter() - t0


def _load_cfr(path: str) -> dict[str, Any]:
    """PyJAMAS's own way to open a model (``pickle.load`` on the gzip stream)."""
    import gzip
    import pickle

    with gzip.open(path, "rb") as fh:
        return pickle.load(fh)  # noqa: S301 - the reference implementation, trusted files only


def _network_from_cfr(ReSCUNet: Any, d: dict[str, Any]) -> Any:
    """``ReSCUNet(d)``; without ``concatenation_level``, levels 0..4 as PyJAMAS's loader tries."""
    if d.get("concatenation_level") is not None:
        return ReSCUNet(d)
    for level in range(5):  # rcallbacks/rcbio.py: the first level whose weights fit
        try:
            return ReSCUNet(dict(d, concatenation_level=level))
        except Exception:  # noqa: BLE001, S112 - PyJAMAS catches everything here too
            continue
    raise ValueError("the weights fit no concatenation level 0-4")


def _softmax_predictor(net: Any) -> Any:
    """The Keras model PyJAMAS's ``predict`` builds: (image, prev mask) -> softmax."""
    import keras

    return keras.Model(
        inputs=[net.classifier.input[0], net.classifier.input[2]],
        outputs=net.classifier.get_layer("unet-activation").output,
    )


def _foreground(predictor: Any, images: Any, prev: Any, scaler: float) -> Any:
    """Foreground probabilities ``(N, H, W)`` of PyJAMAS's network on raw windows."""
    import numpy as np
    import torch

    x = (np.asarray(images, dtype=np.float64) / scaler)[..., None]
    m = np.asarray(prev, dtype=np.float64)[..., None]
    out = []
    with torch.no_grad():
        for k in range(0, len(x), 16):
            y = predictor([x[k : k + 16], m[k : k + 16]], training=False)
            y = y.detach().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)
            out.append(y[..., 1])
    return np.concatenate(out).astype(np.float32)


def _worker_train(req: dict[str, Any]) -> dict[str, Any]:
    import builtins

    import numpy as np

    params = dict(req["params"])
    folder = params["positive_training_folder"]
    ids = next(os.walk(folder))[1]
    if params.get("train_image_size") is None:
        import skimage.io as sio

        img_dir = os.path.join(folder, ids[0], "image")
        shape = sio.imread(os.path.join(img_dir, os.listdir(img_dir)[0])).shape[-2:]
        params["train_image_size"] = [max(16, s // 16 * 16) for s in shape]
    params["train_image_size"] = tuple(params["train_image_size"])
    params["step_sz"] = tuple(params["step_sz"])

    ReSCUNet, import_s = _import_pyjamas()
    if req.get("seed") is not None:
        import random

        import torch

        random.seed(req["seed"])
        np.random.seed(req["seed"])
        torch.manual_seed(req["seed"])
    net = ReSCUNet(params)

    workdir = Path(req["workdir"])
    ev = None
    if req.get("eval"):
        ev = [np.load(workdir / f"eval_{k}.npy") for k in ("images", "prev_masks", "masks")]
    stamps: list[float] = []
    losses: list[float] = []
    val_losses: list[float] = []
    ious: list[float] = []
    excluded = [0.0]
    t_fit = [0.0]
    real_print = builtins.print

    def stamping_print(*args: Any, **kwargs: Any) -> None:
        text = " ".join(str(a) for a in args)
        if text.startswith("Epoch ") and "loss:" in text:
            stamps.append(time.perf_counter() - t_fit[0] - excluded[0])
            for part in text.split(" - ")[1:]:
                key, _, value = part.partition(":")
                (val_losses if key.strip() == "val_loss" else losses).append(float(value))
            if ev is not None:
                t0 = time.perf_counter()
                prob = _foreground(_softmax_predictor(net), ev[0], ev[1], float(net.scaler))
                pred, truth = prob > 0.5, ev[2].astype(bool)
                inter = (pred & truth).sum(axis=(1, 2))
                union = (pred | truth).sum(axis=(1, 2))
                ious.append(float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0))))
                excluded[0] += time.perf_counter() - t0
        real_print(*args, **kwargs)

    builtins.print = stamping_print
    t_fit[0] = time.perf_counter()
    try:
        net.fit()
        if not params["model_checkpoint"]["active"]:
            net.save(os.path.join(params["save_folder"], "ckpt_final.cfr"))
    finally:
        builtins.print = real_print
    fit_s = time.perf_counter() - t_fit[0] - excluded[0]
    n = len(ids)
    n_val = int(n * params["validation_split"])
    return {
        "import_s": import_s,
        "fit_s": fit_s,
        "eval_s": excluded[0],
        "peak_rss_mb": _peak_rss_mb(),
        "n_samples": n,
        "n_train": n - n_val,
        "n_val": n_val,
        "epoch_end_s": stamps,
        "losses": losses,
        "val_losses": val_losses,
        "epoch_iou": ious,
        "scaler": float(net.scaler),
        "train_image_size": list(params["train_image_size"]),
    }


def _worker_predict(req: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    ReSCUNet, import_s = _import_pyjamas()
    from pyjamas.rimage.rimutils import rimutils
    from pyjamas.rutils import RUtils

    workdir = Path(req["workdir"])
    images = np.load(workdir / "images.npy")
    prev = np.load(workdir / "prev_masks.npy")
    t0 = time.perf_counter()
    net = _network_from_cfr(ReSCUNet, _load_cfr(req["cfr"]))
    if req.get("step_sz"):
        net.step_sz = tuple(req["step_sz"])
    load_s = time.perf_counter() - t0
    masks = np.zeros(images.shape, dtype=bool)
    probs = np.zeros(images.shape, dtype=np.float32)
    seconds = []
    for k in range(len(images)):
        t0 = time.perf_counter()
        objs, prob = net.predict(images[k], prev[k])
        seconds.append(time.perf_counter() - t0)
        probs[k] = prob
        if len(objs):
            masks[k] = rimutils.mask_from_polylines(
                imsize=images[k].shape, polylines=[RUtils.list2qpolygonf(objs[0])], brushsz=0
            )
    np.save(workdir / "masks.npy", masks)
    np.save(workdir / "probabilities.npy", probs)
    return {
        "import_s": import_s,
        "load_s": load_s,
        "seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _worker_windows(req: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    ReSCUNet, import_s = _import_pyjamas()
    workdir = Path(req["workdir"])
    net = _network_from_cfr(ReSCUNet, _load_cfr(req["cfr"]))
    prob = _foreground(
        _softmax_predictor(net),
        np.load(workdir / "images.npy"),
        np.load(workdir / "prev_masks.npy"),
        float(net.scaler),
    )
    np.save(workdir / "probabilities.npy", prob)
    return {"import_s": import_s, "peak_rss_mb": _peak_rss_mb(), "scaler": float(net.scaler)}


def _worker_random_cfr(req: dict[str, Any]) -> dict[str, Any]:
    import gzip
    import pickle

    import keras

    ReSCUNet, import_s = _import_pyjamas()
    keras.utils.set_random_seed(req["seed"])
    params = dict(req["params"])
    params["train_image_size"] = tuple(params["train_image_size"])
    net = ReSCUNet(params)
    net.build_save_dict()
    d = dict(net.save_dict, classifier_type=net.CLASSIFIER_TYPE)
    if req["keep_level"]:
        d["concatenation_level"] = net.concatenation_level
    with gzip.open(req["path"], "wb") as fh:  # as RUtils.pickle_this (protocol 3)
        pickle.dump(d, fh, 3)
    return {"import_s": import_s}


_WORKERS = {
    "train": _worker_train,
    "predict": _worker_predict,
    "windows": _worker_windows,
    "random_cfr": _worker_random_cfr,
}


def _worker_main(argv: list[str]) -> int:
    task, req_path = argv
    req = json.loads(Path(req_path).read_text())
    result = _WORKERS[task](req)
    out = Path(req["workdir"]) / f"{task}_result.json"
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker_main(sys.argv[1:]))
