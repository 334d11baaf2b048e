"""Core speed and memory benchmark: training samples/s, propagation object-frames/s, peak memory.

Settings of the issue: network input 64x64, concatenation level L=1, base filters 64 (the paper's
architecture, about 31 million parameters), batch 8 for training, 256x256 frames. Every measurement
runs in its own subprocess so its peak resident memory (``ru_maxrss``) is clean; on CUDA the peak
of ``torch.cuda.max_memory_allocated`` is reported too.

* **training (train_model)**: the real training loop (:func:`rescunet_ij.train.loop.train_model`,
  :class:`~rescunet_ij.data.dataset.WindowDataset`, augmentation, weighted cross-entropy, the
  loop's optimizer) on samples cut from a synthetic 256x256 movie
  (:func:`rescunet_ij.sample_data.synthetic_movie`). Batches are timed through the loop's
  ``on_batch_end`` callback; the first ``--warmup`` batches are excluded.
* **training (network step)**: forward + loss + backward + optimizer step on batches prepared
  in advance by the same WindowDataset: the network's share of the cost, no data loading.
* **propagation**: one :class:`~rescunet_ij.propagate.Propagator` run over the movie from the
  true masks of frame 0, all objects batched, first frame excluded (warm-up). The network has
  *random weights* (speed does not depend on them); its full forward pass is computed, but its
  output is replaced by the prompt (``_standins.StandInNetwork``, ``answer="prompt"``) so objects
  are not lost and the per-object work (window planning, merging, hole filling, outlines) is
  timed as in real use.

Without ``--pyjamas`` the PyJAMAS reference figures are those quoted in the issue (2 CPU cores).
With ``--pyjamas`` PyJAMAS itself (``pyjamas-rfglab`` 2026.9.0 with ``torch==2.13.0`` CPU, in its
own venv, built by ``../shared/tools/pyjamas_venv.sh`` if missing; see ``_pyjamas.py``) is
measured on the same machine, its runs between ours (training right after our training, prediction
right after our propagation, CPU only):

* **PyJAMAS training**: ``ReSCUNet.fit`` on the *same* training samples (written in the PyJAMAS
  layout; PyJAMAS resizes each sample image to the network input), same input size, level and
  batch size, base filters 64 (PyJAMAS's only width), no validation or callbacks; samples/s of
  its last epoch (steady state), plus the whole ``fit()`` and whole-command rates;
* **PyJAMAS prediction**: ``ReSCUNet.predict`` on each object of frame 1 of the same movie, from
  its true mask in frame 0, with the trained ``.cfr``, tile step ``pyjamas_step`` (first call
  excluded): s per object-frame;
* peak RSS of each PyJAMAS process.

Usage::

    python benchmarks/bench_core.py                      # CPU (+ CUDA when present), full settings
    python benchmarks/bench_core.py --device cpu --markdown benchmarks/results/core_cpu.md
    python benchmarks/bench_core.py --quick --json out.json   # seconds; used by the smoke test
    python benchmarks/bench_core.py --device cpu --pyjamas    # + PyJAMAS measured here (~10 min)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rescunet_ij.io.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
RESULT_TAG = "BENCH_CORE_RESULT "
PYJAMAS_VERSION = "2026.9.0"

# PyJAMAS on 2 CPU cores, as quoted in the issue (not re-measured here).
PYJAMAS = {
    "train_samples_per_s": 9.1,
    "predict_s_per_object_frame": 3.4,
    "train_peak_gb": 2.0,
    "predict_peak_gb": 1.7,
}
# Targets of the issue, as ratios to PyJAMAS.
TARGETS = {"train_speedup": 1.5, "predict_speedup": 20.0, "memory_fraction": 0.5}

FULL: dict[str, Any] = {
    "input_size": 64,
    "concatenation_level": 1,
    "base_filters": 64,
    "batch_size": 8,
    "frame_size": 256,
    "train_objects": 10,
    "train_frames": 21,
    "warmup": 3,
    "step_batches": 12,
    "prop_objects": 10,
    "prop_frames": 10,
    "prop_warmup_frames": 1,
    "prop_batch_size": 64,
    # --pyjamas: PyJAMAS trains on the same samples for this many epochs (the last one is timed)
    # and predicts each object of frame 1 of the propagation movie (tile step below; the first
    # call is a warm-up, excluded).
    "pyjamas_epochs": 2,
    "pyjamas_step": 16,
}
QUICK: dict[str, Any] = {
    "input_size": 32,
    "concatenation_level": 1,
    "base_filters": 4,
    "batch_size": 4,
    "frame_size": 96,
    "train_objects": 3,
    "train_frames": 4,
    "warmup": 1,
    "step_batches": 2,
    "prop_objects": 3,
    "prop_frames": 3,
    "prop_warmup_frames": 1,
    "prop_batch_size": 64,
    "pyjamas_epochs": 1,
    "pyjamas_step": 16,
}


# =============================================================================== machine and memory
def machine_info() -> dict[str, Any]:
    """CPU model, core counts, Python/torch versions and the GPU (if any) of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    info: dict[str, Any] = {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception as exc:  # noqa: BLE001 - a broken torch must still let the table name the machine
        info["torch"] = f"unavailable ({exc})"
        info["gpu"] = None
    return info


def _loadavg() -> list[float] | None:
    """1/5/15-minute load averages: other work on the machine distorts the timings."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _rss_now_mb() -> float | None:
    """Current resident memory of this process in MiB (psutil if installed, else /proc)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        pass
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB.

    ``ru_maxrss`` is in KiB on Linux and in bytes on macOS.
    """
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


# =============================================================================== child measurements
def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _synthetic_samples(s: dict[str, Any]) -> list:
    """Training samples (one per object and frame with a previous frame) from a synthetic movie."""
    import numpy as np

    from rescunet_ij.data.samples import samples_from_masks
    from rescunet_ij.sample_data import synthetic_movie

    n = s["frame_size"]
    sim = synthetic_movie(s["train_frames"], (n, n), n_objects=s["train_objects"], seed=1)
    masks = {
        int(o): {
            t: sim.labels[t] == o for t in range(sim.labels.shape[0]) if (sim.labels[t] == o).any()
        }
        for o in np.unique(sim.labels)
        if o
    }
    return samples_from_masks(sim.images, masks, s["input_size"])


def _train_config(s: dict[str, Any], device: str, epochs: int = 1):
    from rescunet_ij.api import train_config

    return train_config(
        input_size=s["input_size"],
        concatenation_level=s["concatenation_level"],
        base_filters=s["base_filters"],
        batch_size=s["batch_size"],
        epochs=epochs,
        validation_fraction=0.0,
        early_stopping_patience=None,
        device=device,
        seed=0,
    )


def child_train_loop(s: dict[str, Any], device_name: str) -> dict[str, Any]:
    """Time batches of the real training loop (one epoch; warm-up batches excluded)."""
    import torch

    from rescunet_ij.device import resolve_device
    from rescunet_ij.train.loop import TrainCallbacks, train_model

    device = resolve_device(device_name)
    rss_imports = _rss_now_mb()
    samples = _synthetic_samples(s)
    cfg = _train_config(s, device.type)
    stamps: list[float] = []

    def on_batch_end(i: int, n: int) -> None:
        _sync(device)
        stamps.append(time.perf_counter())

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    train_model(samples, cfg, output=None, callbacks=TrainCallbacks(on_batch_end=on_batch_end))
    total = time.perf_counter() - t0
    warm = max(1, int(s["warmup"]))
    if len(stamps) < warm + 1:
        raise RuntimeError(
            f"only {len(stamps)} batches were reported by on_batch_end; need at least {warm + 1} "
            f"(warm-up {warm}); give more training samples"
        )
    timed = len(stamps) - warm  # batches after the warm-up ones
    seconds = stamps[-1] - stamps[warm - 1]
    # The last batch of an epoch may be short: count the samples actually in the timed batches.
    n_samples = len(samples)
    bs = s["batch_size"]
    sizes = [min(bs, n_samples - b * bs) for b in range(len(stamps))]
    timed_samples = sum(sizes[warm:])
    out = {
        "samples": n_samples,
        "batches": len(stamps),
        "timed_batches": timed,
        "timed_samples": timed_samples,
        "seconds": seconds,
        "total_seconds": total,
        "samples_per_s": timed_samples / seconds,
        "rss_after_imports_mb": rss_imports,
    }
    if device.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def child_train_step(s: dict[str, Any], device_name: str) -> dict[str, Any]:
    """Time forward + loss + backward + optimizer steps on batches prepared in advance."""
    import torch
    from torch.utils.data import DataLoader

    from rescunet_ij.data.dataset import WindowDataset
    from rescunet_ij.device import resolve_device
    from rescunet_ij.model import build_model
    from rescunet_ij.train.loss import weighted_cross_entropy

    device = resolve_device(device_name)
    torch.manual_seed(0)
    rss_imports = _rss_now_mb()
    samples = _synthetic_samples(s)
    cfg = _train_config(s, device.type)
    ds = WindowDataset(
        samples,
        input_size=cfg.model.input_size,
        window=cfg.window_size,
        normalization=cfg.normalization,
        augment=True,
        w0=cfg.weight_w0,
        sigma=cfg.weight_sigma,
        seed=0,
        train=True,
    )
    loader = DataLoader(ds, batch_size=s["batch_size"], shuffle=True, drop_last=True)
    batches = []
    while len(batches) < s["warmup"] + s["step_batches"]:
        batches.extend(loader)
    batches = [
        {k: v.to(device) for k, v in b.items()} for b in batches[: s["warmup"] + s["step_batches"]]
    ]
    net = build_model(cfg.model).to(device).train()
    # Adam, as in PyJAMAS (and rescunet-ij's training loop).
    opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_start = 0.0
    for i, b in enumerate(batches):
        if i == s["warmup"]:
            _sync(device)
            t_start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = weighted_cross_entropy(net(b["image"], b["prev_mask"]), b["target"], b["weight"])
        loss.backward()
        opt.step()
    _sync(device)
    seconds = time.perf_counter() - t_start
    n = s["step_batches"] * s["batch_size"]
    out = {
        "timed_batches": s["step_batches"],
        "timed_samples": n,
        "seconds": seconds,
        "samples_per_s": n / seconds,
        "parameters": sum(p.numel() for p in net.parameters()),
        "rss_after_imports_mb": rss_imports,
    }
    if device.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def child_propagate(s: dict[str, Any], device_name: str) -> dict[str, Any]:
    """Time one Propagator run over the movie, all objects batched (first frame excluded)."""
    import numpy as np
    import torch
    from _standins import stand_in_network  # beside this script

    from rescunet_ij.config import ModelConfig, NormalizationConfig, PropagateConfig
    from rescunet_ij.device import resolve_device
    from rescunet_ij.io.checkpoint import model_from_network
    from rescunet_ij.propagate import Propagator
    from rescunet_ij.sample_data import synthetic_movie
    from rescunet_ij.types import ObjectMask, ObjectStatus

    device = resolve_device(device_name)
    torch.manual_seed(0)
    rss_imports = _rss_now_mb()
    n = s["frame_size"]
    warm = s["prop_warmup_frames"]
    frames = s["prop_frames"] + warm
    sim = synthetic_movie(frames + 1, (n, n), n_objects=s["prop_objects"], seed=2)
    mcfg = ModelConfig(
        input_size=(s["input_size"], s["input_size"]),
        concatenation_level=s["concatenation_level"],
        base_filters=s["base_filters"],
    )
    # Random weights; the full forward pass runs, then the prompt is the prediction.
    network = stand_in_network(mcfg, answer="prompt")
    loaded = model_from_network(network, mcfg, NormalizationConfig())
    prop = Propagator(loaded, PropagateConfig(device=device.type, batch_size=s["prop_batch_size"]))
    state = prop.init_state(sim.images)
    ids = [int(o) for o in np.unique(sim.labels[0]) if o]
    for o in ids:
        prop.add_mask(state, 0, o, ObjectMask.from_full(sim.labels[0] == o))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    gen = prop.propagate(state, 0, frames)
    seconds = 0.0
    object_frames = lost = 0
    for k in range(frames):
        _sync(device)
        t0 = time.perf_counter()
        result = next(gen)
        _sync(device)
        dt = time.perf_counter() - t0
        if k >= warm:
            seconds += dt
            object_frames += sum(ob.status is ObjectStatus.OK for ob in result.objects)
            lost += sum(ob.status is ObjectStatus.LOST for ob in result.objects)
    gen.close()
    out = {
        "objects": len(ids),
        "timed_frames": s["prop_frames"],
        "object_frames": object_frames,
        "lost": lost,
        "seconds": seconds,
        "object_frames_per_s": object_frames / seconds,
        "s_per_object_frame": seconds / object_frames,
        "rss_after_imports_mb": rss_imports,
    }
    if device.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


CHILDREN = {
    "train_loop": child_train_loop,
    "train_step": child_train_step,
    "propagate": child_propagate,
}


def run_child(task: str, settings: dict[str, Any], device: str) -> None:
    """Entry point of a measurement subprocess: print one tagged JSON line."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    result = CHILDREN[task](settings, device)
    result["peak_rss_mb"] = _peak_rss_mb()
    print(RESULT_TAG + json.dumps(result), flush=True)


def measure(task: str, settings: dict[str, Any], device: str, timeout: float) -> dict[str, Any]:
    """Run one measurement in a fresh Python process; returns its result or ``{"error": ...}``."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        task,
        "--device",
        device,
        "--settings",
        json.dumps(settings),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=str(REPO),
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}


# ============================================================================ PyJAMAS (--pyjamas)
def pyjamas_train(s: dict[str, Any], work: Path) -> dict[str, Any]:
    """Train PyJAMAS's ReSCU-Net (``ReSCUNet.fit`` in its venv) on the same training samples.

    The samples of :func:`_synthetic_samples` are written in the PyJAMAS layout; PyJAMAS resizes
    each sample image to the network input (``input_size``), trains ``pyjamas_epochs`` epochs at
    the same batch size, without validation, early stopping, LR scheduler or checkpoints (the
    final model is still pickled once, as PyJAMAS always does). ``samples_per_s`` is the last
    epoch's (steady state, as ours excludes warm-up batches); the whole-``fit()`` and
    whole-command rates are reported too.
    """
    import _pyjamas  # beside this script

    from rescunet_ij.io.training_set import write_training_set

    samples = _synthetic_samples(s)
    folder = work / "training_set"
    if not folder.exists():
        write_training_set(samples, folder)
    tr = _pyjamas.train_pyjamas(
        folder,
        work / "pyjamas_model",
        train_image_size=s["input_size"],
        step_sz=s["pyjamas_step"],
        mini_batch_size=s["batch_size"],
        epochs=s["pyjamas_epochs"],
        validation_split=0.0,
        concatenation_level=s["concatenation_level"],
        early_stopping=False,
        lr_scheduler=False,
        checkpoints=False,
    )
    ends = tr.epoch_end_s
    last = ends[-1] - ends[-2] if len(ends) >= 2 else ends[-1]
    return {
        "samples": tr.n_samples,
        "epochs": tr.epochs_run,
        "last_epoch_s": last,
        "samples_per_s": tr.n_train / last,
        "samples_per_s_fit": tr.samples_per_s,
        "samples_per_s_command": tr.n_train * tr.epochs_run / tr.wall_s,
        "fit_s": tr.fit_s,
        "wall_s": tr.wall_s,
        "import_s": tr.import_s,
        "peak_rss_mb": tr.peak_rss_mb,
        "cfr": str(tr.cfr),
    }


def pyjamas_predict(s: dict[str, Any], cfr: str) -> dict[str, Any]:
    """PyJAMAS's ``ReSCUNet.predict`` on the objects of frame 1 of the propagation movie.

    The same synthetic movie as :func:`child_propagate` (seed 2); each call segments one object
    in one frame from its true mask in the frame before, tiling the whole frame with the model's
    window at ``pyjamas_step`` and skipping tiles whose prompt is empty (PyJAMAS's rule). The
    first call is a warm-up and is excluded.
    """
    import _pyjamas  # beside this script
    import numpy as np

    from rescunet_ij.sample_data import synthetic_movie

    n = s["frame_size"]
    frames = s["prop_frames"] + s["prop_warmup_frames"]
    sim = synthetic_movie(frames + 1, (n, n), n_objects=s["prop_objects"], seed=2)
    ids = [int(o) for o in np.unique(sim.labels[0]) if o]
    ids = [ids[0], *ids]  # the first object twice: its first call is the warm-up
    images = np.stack([sim.images[1] for _ in ids])
    prev = np.stack([sim.labels[0] == o for o in ids])
    pr = _pyjamas.predict_pyjamas(cfr, images, prev, step_sz=s["pyjamas_step"])
    timed = pr.seconds[1:]
    win, step = s["input_size"], s["pyjamas_step"]
    return {
        "object_frames": len(timed),
        "s_per_object_frame": sum(timed) / len(timed),
        "object_frames_per_s": len(timed) / sum(timed),
        "warmup_s": pr.seconds[0],
        "tiles_per_object_frame": float(np.mean([_pyjamas_tiles(p, win, step) for p in prev[1:]])),
        "found": int(pr.masks[1:].any(axis=(1, 2)).sum()),
        "load_s": pr.load_s,
        "import_s": pr.import_s,
        "wall_s": pr.wall_s,
        "peak_rss_mb": pr.peak_rss_mb,
    }


def _pyjamas_tiles(prev: Any, win: int, step: int) -> int:
    """Tiles PyJAMAS's ``predict`` runs for one prompt (those whose prompt part is not empty)."""
    h, w = prev.shape
    return sum(
        bool(prev[r : r + win, c : c + win].any())
        for r in range(0, h - win + 1, step)
        for c in range(0, w - win + 1, step)
    )


def _pyjamas_lines(device: str, res: dict[str, dict[str, Any]], s: dict[str, Any]) -> list[str]:
    """What PyJAMAS did in this run, in words (none without ``--pyjamas``)."""
    tr, pr = res.get("pyjamas_train"), res.get("pyjamas_predict")
    if not tr and not pr:
        return []
    out = ["", f"PyJAMAS {PYJAMAS_VERSION} measured here ({device}, its own venv):"]
    for name, r in (("training", tr), ("prediction", pr)):
        if r and "error" in r:
            out.append(f"* {name}: error: {r['error']}")
    if tr and "error" not in tr:
        out.append(
            f"* training: {tr['samples']} samples (the same as ours, resized by PyJAMAS to "
            f"{s['input_size']}x{s['input_size']}), batch {s['batch_size']}, {tr['epochs']} "
            f"epoch(s): last epoch {tr['samples_per_s']:.2f} samples/s; whole `fit()` "
            f"{tr['samples_per_s_fit']:.2f} samples/s (data loading, weight maps); whole command "
            f"{tr['samples_per_s_command']:.2f} samples/s ({tr['wall_s']:.0f} s: imports "
            f"{tr['import_s']:.0f} s, pickling the final .cfr); peak RSS "
            f"{tr['peak_rss_mb'] / 1024:.2f} GiB"
        )
    if pr and "error" not in pr:
        out.append(
            f"* prediction: {pr['object_frames']} `ReSCUNet.predict` calls (one object in one "
            f"{s['frame_size']}x{s['frame_size']} frame each, tile step {s['pyjamas_step']}, "
            f"{pr['tiles_per_object_frame']:.1f} tiles per call on average, one at a time) after "
            f"one warm-up call ({pr['warmup_s']:.1f} s): {pr['s_per_object_frame']:.2f} s per "
            f"object-frame; opening the .cfr {pr['load_s']:.1f} s; peak RSS "
            f"{pr['peak_rss_mb'] / 1024:.2f} GiB"
        )
    return out


# =============================================================================== report
def _fmt(v: float | None, nd: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def _ok(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "**no**")


def _training_row(
    device: str,
    r: dict[str, Any],
    label: str,
    error_label: str,
    ref: dict[str, float] | None = None,
) -> list[list[str]]:
    """The samples/s row of one training measurement (none if it did not run)."""
    ref = ref or PYJAMAS
    if not r:
        return []
    if "error" in r:
        return [[device, error_label, f"error: {r['error']}", "", "", "", ""]]
    sp = r["samples_per_s"] / ref["train_samples_per_s"]
    return [
        [
            device,
            label,
            _fmt(r["samples_per_s"]),
            _ref(ref["train_samples_per_s"]),
            f"{sp:.2f}x",
            ">= 1.5x",
            _ok(sp >= TARGETS["train_speedup"]),
        ]
    ]


def _propagation_rows(
    device: str, pr: dict[str, Any], ref: dict[str, float] | None = None
) -> list[list[str]]:
    """The speed rows of the propagation measurement (none if it did not run)."""
    ref = ref or PYJAMAS
    if not pr:
        return []
    if "error" in pr:
        return [[device, "propagation", f"error: {pr['error']}", "", "", "", ""]]
    sp = ref["predict_s_per_object_frame"] / pr["s_per_object_frame"]
    return [
        [
            device,
            "propagation s per object-frame",
            f"{pr['s_per_object_frame']:.4f}",
            _ref(ref["predict_s_per_object_frame"]),
            f"{sp:.1f}x faster",
            ">= 20x",
            _ok(sp >= TARGETS["predict_speedup"]),
        ],
        [
            device,
            "propagation object-frames/s",
            _fmt(pr["object_frames_per_s"]),
            _fmt(1 / ref["predict_s_per_object_frame"], 3),
            "",
            "",
            "",
        ],
    ]


def _memory_rows(
    device: str, res: dict[str, dict[str, Any]], pj: dict[str, float] | None = None
) -> list[list[str]]:
    """Peak memory rows: RSS on the CPU, ``max_memory_allocated`` on CUDA."""
    pj = pj or PYJAMAS
    on_gpu = device.startswith("cuda")
    what = "peak GPU memory (max_memory_allocated)" if on_gpu else "peak RSS (whole process)"
    rows = []
    for label, task, ref in (
        ("training", "train_loop", "train_peak_gb"),
        ("training, network step", "train_step", "train_peak_gb"),
        ("propagation", "propagate", "predict_peak_gb"),
    ):
        r = res.get(task, {})
        m = None if not r or "error" in r else r.get("cuda_peak_mb" if on_gpu else "peak_rss_mb")
        if m is None:
            continue
        gb = m / 1024
        frac = gb / pj[ref]
        rows.append(
            [
                device,
                f"{label} {what}, GiB",
                f"{gb:.2f}",
                _ref(pj[ref]),
                f"{frac:.2f}x",
                "<= 0.5x",
                _ok(frac <= TARGETS["memory_fraction"]),
            ]
        )
    return rows


def _ref(v: float) -> str:
    """A PyJAMAS figure: quoted ones as given, measured ones rounded."""
    return str(v) if v in PYJAMAS.values() else f"{v:.3g}"


def measured_pyjamas(res: dict[str, dict[str, Any]]) -> dict[str, float] | None:
    """PyJAMAS's figures measured in this run (``--pyjamas``), in :data:`PYJAMAS`'s keys.

    Training: the samples/s of PyJAMAS's last timed epoch inside ``fit()`` (steady state, like
    ours after its warm-up batches); prediction: the mean s per ``ReSCUNet.predict`` call after
    the first. ``None`` unless both PyJAMAS measurements ran.
    """
    tr, pr = res.get("pyjamas_train", {}), res.get("pyjamas_predict", {})
    if not tr or not pr or "error" in tr or "error" in pr:
        return None
    return {
        "train_samples_per_s": tr["samples_per_s"],
        "predict_s_per_object_frame": pr["s_per_object_frame"],
        "train_peak_gb": tr["peak_rss_mb"] / 1024,
        "predict_peak_gb": pr["peak_rss_mb"] / 1024,
    }


def rows_for(
    device: str, res: dict[str, dict[str, Any]], ref: dict[str, float] | None = None
) -> list[list[str]]:
    """Table rows for one device's results, against ``ref`` (default: the quoted PyJAMAS)."""
    return (
        _training_row(
            device,
            res.get("train_loop", {}),
            "training samples/s (train_model, with data loading)",
            "training, train_model",
            ref,
        )
        + _training_row(
            device,
            res.get("train_step", {}),
            "training samples/s (network step only)",
            "training, network step",
            ref,
        )
        + _propagation_rows(device, res.get("propagate", {}), ref)
        + _memory_rows(device, res, ref)
    )


def markdown(report: dict[str, Any]) -> str:
    """The whole report as markdown: machine, settings, table, notes."""
    m, s = report["machine"], report["settings"]
    lines = [
        "# rescunet-ij core benchmark",
        "",
        (
            f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPU(s) of {m['logical_cpus']}, "
            f"torch {m.get('torch')} ({m.get('torch_threads')} threads), Python {m['python']}, "
            f"GPU: {m.get('gpu') or 'none'}. Date: {report['date']}. "
            f"Load average (1/5/15 min) before "
            f"{report.get('load_before')}, after {report.get('load_after')}."
            f"{' **QUICK settings (not a benchmark)**' if report['quick'] else ''}"
        ),
        "",
        (
            f"Settings: input {s['input_size']}x{s['input_size']}, "
            f"concatenation level {s['concatenation_level']}, "
            f"base filters {s['base_filters']}, training batch {s['batch_size']}, "
            f"{s['frame_size']}x{s['frame_size']} frames; "
            f"training on {s['train_objects']} objects x "
            f"{s['train_frames'] - 1} frame pairs of a synthetic movie "
            f"(warm-up {s['warmup']} batches excluded); "
            f"propagation of {s['prop_objects']} objects x {s['prop_frames']} frames "
            f"(after {s['prop_warmup_frames']} "
            f"warm-up frame), all objects batched, random weights."
        ),
        "",
    ]
    measured = {dev: measured_pyjamas(res) for dev, res in report["results"].items()}
    pj_head = (
        "PyJAMAS (measured here, same run)"
        if any(measured.values())
        else "PyJAMAS (2 CPU cores, quoted)"
    )
    lines += [
        f"| device | measurement | rescunet-ij | {pj_head} | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for dev, res in report["results"].items():
        for row in rows_for(dev, res, measured[dev]):
            lines.append("| " + " | ".join(row) + " |")
    for dev, res in report["results"].items():
        lines += _pyjamas_lines(dev, res, s)
    lines += ["", "Details:"]
    for dev, res in report["results"].items():
        for task, r in res.items():
            if "error" in r:
                continue
            keep = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
            lines.append(f"* {dev} {task}: `{json.dumps(keep)}`")
    if any(measured.values()):
        pj_note = (
            "Notes: PyJAMAS was measured in this run on the same machine (`--pyjamas`; its "
            "measurements ran between ours; details above). "
        )
    else:
        pj_note = (
            "Notes: PyJAMAS figures are those quoted in the issue (2 CPU cores; prediction tiles "
            "the whole 256x256 frame, ~25 tiles one at a time); they were not re-measured on "
            "this machine (`--pyjamas` measures them). "
        )
    lines += [
        "",
        (
            pj_note + "Propagation uses random weights (speed does not depend on them); "
            "the network's output is replaced "
            "by its prompt after the full forward pass so that objects are not lost "
            "and their clean-up and "
            "outlines are timed too; accuracy is measured by "
            "`bench_accuracy_ctc.py`. Peak RSS is the whole measurement process "
            "(Python, torch, data); "
            "`rss_after_imports_mb` is its size before any work."
        ),
        "",
    ]
    return "\n".join(lines)


def _task_order(ours: list[str], with_pyjamas: bool) -> list[str]:
    """Our measurements, with PyJAMAS's between them: each PyJAMAS run follows ours of its kind."""
    if not with_pyjamas:
        return ours
    order = []
    for task in ours:
        order.append(task)
        if task == "train_loop":
            order.append("pyjamas_train")
        if task == "propagate":
            order.append("pyjamas_predict")
    for task in ("pyjamas_train", "pyjamas_predict"):  # --only without ours of that kind
        if task not in order:
            order.insert(0 if task == "pyjamas_train" else len(order), task)
    return order


def _measure_pyjamas(
    task: str, settings: dict[str, Any], work: Path, done: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One PyJAMAS measurement (``pyjamas_train`` / ``pyjamas_predict``), errors as a result."""
    import _pyjamas  # beside this script

    try:
        if _pyjamas.pyjamas_python(build=True) is None:
            return {"error": "PyJAMAS's venv could not be built (../shared/tools/pyjamas_venv.sh)"}
        if task == "pyjamas_train":
            return pyjamas_train(settings, work)
        cfr = done.get("pyjamas_train", {}).get("cfr")
        if not cfr:
            return {"error": "no PyJAMAS model to predict with (its training failed)"}
        return pyjamas_predict(settings, cfr)
    except Exception as exc:  # noqa: BLE001 - a failed PyJAMAS run must not lose our figures
        return {"error": f"{type(exc).__name__}: {str(exc)[-1500:]}"}


def devices_for(choice: str) -> list[str]:
    """``auto`` = the CPU, plus CUDA when present; ``cpu`` / ``cuda`` = just that one."""
    if choice == "cpu":
        return ["cpu"]
    import torch

    has_cuda = torch.cuda.is_available()
    if choice == "cuda":
        if not has_cuda:
            raise SystemExit(
                f"--device cuda: this torch ({torch.__version__}) sees no CUDA GPU; "
                "use --device cpu"
            )
        return ["cuda"]
    return ["cpu", "cuda"] if has_cuda else ["cpu"]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 if a measurement failed)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="auto = CPU, plus CUDA when present",
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny settings (seconds): checks the script runs"
    )
    p.add_argument("--json", type=Path, help="write all results to this JSON file")
    p.add_argument("--markdown", type=Path, help="write the markdown report to this file")
    p.add_argument(
        "--only",
        choices=sorted(CHILDREN),
        action="append",
        help="run only this measurement (repeatable)",
    )
    p.add_argument("--timeout", type=float, default=900, help="seconds per measurement subprocess")
    p.add_argument(
        "--pyjamas",
        action="store_true",
        help="also measure PyJAMAS 2026.9.0 (its own venv, built if missing) on the same "
        "training samples and movie, its measurements interleaved with ours (CPU only)",
    )
    p.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    p.add_argument("--settings", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        run_child(args.child, json.loads(args.settings), args.device)
        return 0

    settings = dict(QUICK if args.quick else FULL)
    report: dict[str, Any] = {
        "machine": machine_info(),
        "settings": settings,
        "quick": args.quick,
        "pyjamas": PYJAMAS,
        "targets": TARGETS,
        "date": time.strftime("%Y-%m-%d"),
        "results": {},
    }
    report["load_before"] = _loadavg()
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench_core_") as tmp:
        for dev in devices_for(args.device):
            report["results"][dev] = {}
            for task in _task_order(args.only or list(CHILDREN), args.pyjamas and dev == "cpu"):
                print(f"[{dev}] {task} ...", file=sys.stderr, flush=True)
                load = _loadavg()
                if task.startswith("pyjamas_"):
                    r = _measure_pyjamas(task, settings, Path(tmp), report["results"][dev])
                else:
                    r = measure(task, settings, dev, args.timeout)
                r["load_before"] = load
                if "error" in r:
                    failed = True
                    print(f"[{dev}] {task} FAILED: {r['error']}", file=sys.stderr)
                report["results"][dev][task] = r
    report["load_after"] = _loadavg()
    md = markdown(report)
    print(md)
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
    if args.markdown:
        atomic_write_text(args.markdown, md)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
