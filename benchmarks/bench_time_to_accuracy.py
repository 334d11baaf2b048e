"""Time to a usable model on a CPU: wall time until validation IoU reaches 0.95 of its final value.

Trains ReSCU-Nets on Cell Tracking Challenge ground truth (default: Fluo-N2DH-SIM+ sequence 01,
frames 0-11, 100 of the samples :func:`bench_accuracy_ctc.training_samples` builds there: one per
object and pair of consecutive frames that both have its SEG mask; windows of 96 native pixels
scaled to the 64x64 network input; 80 train and 20 validation windows) with several settings and
records, after every epoch, the wall time since training started (setup included) and the IoU on
the validation windows (the trainer's own seeded split: the same windows for every setting). For
each setting:

* **final IoU**: the validation IoU of the model training returns (its best epoch by validation
  loss), measured again on the same windows after training;
* **time to 0.95**: the wall time at the end of the first epoch whose validation IoU reached 0.95
  of that final IoU (the model was usable from then on);
* **total**: the wall time of all epochs.

Settings compared (everything else the package's defaults; early stopping off, the same epochs):
the defaults (base filters 64, fp32), base filters 32 and 16, and at 16 filters channels-last
memory layout, bfloat16 autocast on the CPU (``mixed_precision=True``; fast only on CPUs with
AVX512-BF16 or AMX, which the report checks in ``/proc/cpuinfo``), data loading in a worker process
overlapped with compute (``num_workers=1``, ``prefetch_factor=4``) and all three together. With
``--pyjamas`` PyJAMAS's own ReSCU-Net (``benchmarks/_pyjamas.py``, its venv) is trained with its
dialog's defaults (input 96, the window size) on the same training windows (written in the PyJAMAS
folder layout), its model imported with ``api.import_pyjamas`` and measured on the same validation
windows; its per-epoch IoU is computed by the PyJAMAS worker outside its timed epochs.

Usage::

    python benchmarks/bench_time_to_accuracy.py                       # ~30 min on 2 CPU cores
    python benchmarks/bench_time_to_accuracy.py --rows default,f32,f16 --epochs 8
    python benchmarks/bench_time_to_accuracy.py --pyjamas --json benchmarks/results/tta.json \
        --markdown benchmarks/results/tta.md
    python benchmarks/bench_time_to_accuracy.py --quick               # synthetic data, seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from bench_accuracy_ctc import _parse_frames, load_sequence, training_samples  # beside this script
from bench_core import machine_info

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "ctc"

BASE: dict[str, Any] = {
    "input_size": 64,
    "subimage_size": 96,
    "validation_fraction": 0.2,
    "early_stopping_patience": None,
    "seed": 0,
    "device": "cpu",
}
"""Shared by every row: the data decides the window; the split is the same for all."""

ROWS: dict[str, dict[str, Any]] = {
    "default": {},
    "f32": {"base_filters": 32},
    "f16": {"base_filters": 16},
    "f16 channels_last": {"base_filters": 16, "channels_last": True},
    "f16 bf16": {"base_filters": 16, "mixed_precision": True},
    "f16 loader worker": {"base_filters": 16, "num_workers": 1, "prefetch_factor": 4},
    "f16 channels_last bf16 worker": {
        "base_filters": 16,
        "channels_last": True,
        "mixed_precision": True,
        "num_workers": 1,
        "prefetch_factor": 4,
    },
}
"""Row name -> TrainConfig settings on top of :data:`BASE` and the package defaults."""

QUICK_ROWS = ("default", "f16 channels_last bf16 worker")


def cpu_flags() -> dict[str, bool]:
    """Whether this CPU has the instructions that make bfloat16 fast (Linux ``/proc/cpuinfo``)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return {}
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return {f: f in flags for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile")}


def load_samples(args: argparse.Namespace) -> tuple[list, str]:
    """The training samples and a description of where they came from."""
    if args.quick:
        from rescunet_ij.data.samples import samples_from_masks
        from rescunet_ij.sample_data import synthetic_movie

        sim = synthetic_movie(n_frames=6, shape=(96, 96), n_objects=3, seed=3)
        ids = [i for i in np.unique(sim.labels) if i]
        masks = {int(i): {f: sim.labels[f] == i for f in range(6)} for i in ids}
        return samples_from_masks(sim.images, masks, 32), "synthetic movie (quick)"
    seq = load_sequence(args.data, args.dataset, args.seq, _parse_frames(args.frames))
    samples = training_samples(seq, BASE["subimage_size"])
    n = len(samples)
    if args.max_samples and n > args.max_samples:  # evenly over the sequence, as bench_accuracy
        keep = np.linspace(0, n - 1, args.max_samples).round().astype(int)
        samples = [samples[i] for i in keep]
    frames = f"frames {seq.frames.start}-{seq.frames.stop - 1}"
    return samples, f"{args.dataset} {args.seq} {frames}: {len(samples)} of {n} samples"


def _config(settings: dict[str, Any]) -> Any:
    from rescunet_ij.api import train_config

    return train_config(**settings)


def validation_iou(model: Any, samples: list, window: int) -> float:
    """Mean IoU of ``model`` (a LoadedModel) on windows cut from ``samples`` at its own scale."""
    import torch

    from rescunet_ij.config import TrainConfig
    from rescunet_ij.data.dataset import WindowDataset
    from rescunet_ij.train.loss import iou_per_sample

    defaults = TrainConfig()
    ds = WindowDataset(
        samples,
        input_size=model.model_config.input_size,
        window=window,
        normalization=model.normalization,
        augment=False,
        train=False,
        w0=defaults.weight_w0,
        sigma=defaults.weight_sigma,
    )
    net = model.network.eval()
    ious = []
    with torch.inference_mode():
        for start in range(0, len(ds), 16):
            items = [ds[i] for i in range(start, min(start + 16, len(ds)))]
            image = torch.stack([it["image"] for it in items])
            prev = torch.stack([it["prev_mask"] for it in items])
            target = torch.stack([it["target"] for it in items])
            ious.append(iou_per_sample(net(image, prev), target))
    return float(torch.cat(ious).mean())


def raw_windows(samples: list, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The validation windows at native scale, raw intensities (PyJAMAS scales them itself)."""
    from rescunet_ij.config import NormalizationConfig, TrainConfig
    from rescunet_ij.data.dataset import WindowDataset

    d = TrainConfig()
    ds = WindowDataset(
        samples,
        input_size=size,
        window=size,
        normalization=NormalizationConfig(mode="max", max_value=1.0),  # divide by 1: raw
        augment=False,
        train=False,
        w0=d.weight_w0,
        sigma=d.weight_sigma,
    )
    items = [ds[i] for i in range(len(ds))]
    return (
        np.stack([it["image"][0].numpy() for it in items]),
        np.stack([it["prev_mask"][0].numpy() for it in items]),
        np.stack([it["target"].numpy() for it in items]).astype(bool),
    )


def summarise(curve: list[tuple[float, float]], final_iou: float, level: float) -> dict[str, Any]:
    """Time to ``level`` x the final IoU from ``(seconds, val IoU)`` per epoch."""
    target = level * final_iou
    hit = next(((i, t) for i, (t, v) in enumerate(curve, 1) if v >= target), None)
    return {
        "final_iou": final_iou,
        "target_iou": target,
        "epoch_reached": hit[0] if hit else None,
        "time_to_target_s": hit[1] if hit else None,
        "total_s": curve[-1][0] if curve else None,
    }


def run_row(name: str, settings: dict[str, Any], samples: list, val: list, log: Any) -> dict:
    """Train one setting; its per-epoch curve and time to 0.95 of the final IoU."""
    from rescunet_ij.train.loop import TrainCallbacks, train_model

    cfg = _config(settings)
    curve: list[tuple[float, float]] = []
    t0 = time.perf_counter()

    def on_epoch_end(r: dict[str, Any]) -> None:
        curve.append((time.perf_counter() - t0, float(r["val_iou"])))
        log(f"  [{name}] epoch {r['epoch']}: val IoU {r['val_iou']:.3f} ({curve[-1][0]:.0f} s)")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = train_model(
            samples, cfg, output=None, callbacks=TrainCallbacks(on_epoch_end=on_epoch_end)
        )
    wall = time.perf_counter() - t0
    final = validation_iou(result.model, val, cfg.window_size[0])
    row = summarise(curve, final, LEVEL)
    row.update(
        name=name,
        settings=settings,
        wall_s=wall,
        best_epoch=result.best_epoch,
        curve=[[round(t, 2), round(v, 4)] for t, v in curve],
        n_train=result.n_train,
        n_val=result.n_val,
    )
    return row


def run_pyjamas(samples: list, train_idx: list[int], val: list, args: Any, log: Any) -> dict:
    """PyJAMAS with its dialog's defaults on the training windows; IoU on the same validation."""
    try:
        import _pyjamas  # beside this script (benchmarks/_pyjamas.py)
    except ImportError:
        return {"name": "PyJAMAS defaults", "error": "benchmarks/_pyjamas.py is missing"}
    from rescunet_ij import api
    from rescunet_ij.io.training_set import write_training_set

    if _pyjamas.pyjamas_python() is None:
        return {"name": "PyJAMAS defaults", "error": "PyJAMAS's venv is missing (_pyjamas.py)"}
    with tempfile.TemporaryDirectory(prefix="tta_pyjamas_") as tmp:
        folder = write_training_set([samples[i] for i in train_idx], Path(tmp) / "set")
        ev = raw_windows(val, BASE["subimage_size"])
        log(f"  [PyJAMAS] training with its defaults on {len(train_idx)} windows")
        extra = {"epochs": args.pyjamas_epochs} if args.pyjamas_epochs else {}
        t0 = time.perf_counter()
        size = BASE["subimage_size"]  # PyJAMAS's dialog asks for it; ours see the same pixels
        res = _pyjamas.train_pyjamas(
            folder, Path(tmp) / "out", train_image_size=size, eval_windows=ev, **extra
        )
        wall = time.perf_counter() - t0
        cfr = res.best_cfr or res.cfr
        model = api.import_pyjamas(cfr)
        final = validation_iou(model, val, BASE["subimage_size"])
    # epoch end times are measured from the start of fit(); add PyJAMAS's import before it
    start = res.import_s
    curve = [(start + t, v) for t, v in zip(res.epoch_end_s, res.epoch_iou, strict=False)]
    row = summarise(curve, final, LEVEL)
    row.update(
        name="PyJAMAS defaults",
        settings={k: v for k, v in res.params.items() if k not in ("save_folder",)},
        wall_s=wall,
        fit_s=res.fit_s,
        epochs_run=res.epochs_run,
        curve=[[round(t, 2), round(v, 4)] for t, v in curve],
        n_train=res.n_train,
        n_val=res.n_val,
        note="IoU per epoch: PyJAMAS's network on the validation windows at its own input size "
        "(computed outside the timed epochs); final IoU: its saved model imported with "
        "api.import_pyjamas",
    )
    if row["time_to_target_s"] is None and row["total_s"] is not None:
        row["time_to_target_s"] = row["total_s"]
    return row


LEVEL = 0.95


def markdown(report: dict[str, Any]) -> str:
    """The table of a report."""
    m, f, b = report["machine"], report["cpu_flags"], report["base"]
    has = ", ".join(k for k, v in f.items() if v) or "none of them"
    lines = [
        "### Time to a usable model (CPU)",
        "",
        f"Data: {report['data']} (validation: {report['n_val']} windows, the same for every row). "
        f"Every row: input {b['input_size']}, window {b['subimage_size']}, "
        f"{report['epochs']} epochs, no early stopping, batch {report['batch_size']}. "
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable cores, torch {m.get('torch')} "
        f"(bfloat16 flags: {has}; other jobs shared the cores).",
        "",
        "| setting | final val IoU | time to 0.95 of it (s) | epoch | total (s) | s/epoch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        if "error" in r:
            lines.append(f"| {r['name']} | {r['error']} | | | | |")
            continue
        n = len(r["curve"]) or 1
        tt = "-" if r["time_to_target_s"] is None else f"{r['time_to_target_s']:.0f}"
        lines.append(
            f"| {r['name']} | {r['final_iou']:.3f} | {tt} | {r['epoch_reached'] or '-'} | "
            f"{r['total_s']:.0f} | {r['total_s'] / n:.1f} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, train every row, print and save the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA, help="folder with the CTC datasets")
    p.add_argument("--dataset", default="Fluo-N2DH-SIM+")
    p.add_argument("--seq", default="01")
    p.add_argument("--frames", default="0:12", help="frame range start:stop of the sequence")
    p.add_argument("--max-samples", type=int, default=100, help="evenly chosen samples (0: all)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=None, help="default: the package's")
    p.add_argument(
        "--rows", help="comma-separated row names ('' for none; default: all): " + ", ".join(ROWS)
    )
    p.add_argument("--pyjamas", action="store_true", help="add PyJAMAS with its defaults")
    p.add_argument("--pyjamas-epochs", type=int, help="cap PyJAMAS's epochs (default: its 100)")
    p.add_argument("--quick", action="store_true", help="synthetic data, tiny models (smoke test)")
    p.add_argument("--json", type=Path, help="write every number here")
    p.add_argument("--markdown", type=Path, help="write the table here")
    args = p.parse_args(argv)

    from rescunet_ij.config import TrainConfig
    from rescunet_ij.train.trainer import _split

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    default_rows = list(QUICK_ROWS if args.quick else ROWS)
    names = [n for n in args.rows.split(",") if n] if args.rows is not None else default_rows
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    base = dict(BASE, epochs=args.epochs)
    if args.batch_size:
        base["batch_size"] = args.batch_size
    if args.quick:
        base.update(input_size=32, subimage_size=32, epochs=2, base_filters=4)
    samples, where = load_samples(args)
    train_idx, val_idx = _split(len(samples), base["validation_fraction"], base["seed"])
    val = [samples[i] for i in val_idx]
    log(f"{where}; {len(train_idx)} train / {len(val)} validation windows")
    report: dict[str, Any] = {
        "machine": machine_info(),
        "cpu_flags": cpu_flags(),
        "data": where,
        "n_val": len(val),
        "base": base,
        "epochs": base["epochs"],
        "batch_size": base.get("batch_size", TrainConfig().batch_size),
        "level": LEVEL,
        "rows": [],
    }
    for name in names:
        settings = dict(base, **ROWS[name])
        if args.quick and "base_filters" in ROWS[name]:
            settings["base_filters"] = 4
        report["rows"].append(run_row(name, settings, samples, val, log))
        save(report, args)  # after every row: a long run that is cut short keeps what it did
    if args.pyjamas:
        report["rows"].append(run_pyjamas(samples, train_idx, val, args, log))
    print(save(report, args))
    return 0


def save(report: dict[str, Any], args: argparse.Namespace) -> str:
    """Write the JSON and markdown files asked for; returns the markdown."""
    md = markdown(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(md, encoding="utf-8")
    return md


if __name__ == "__main__":
    sys.exit(main())
