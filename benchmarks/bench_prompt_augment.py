r"""Multi-step drift with and without prompt augmentation (training on imperfect prompts).

A small ReSCU-Net is trained twice on the same synthetic training movie, with the same seed and
settings, once with prompt augmentation (``TrainConfig.prompt_augment``: a share of the training
prompts shifted, dilated/eroded and with boundary pixels flipped) and once on exact prompts only.
Each model then propagates the frame-1 outlines of a separate synthetic test movie through the
following frames, every frame from its own previous prediction, so errors can compound. Reported:
the IoU with the ground truth per object and frame distance from the seed (mean and median; a
lost object counts 0 from where it was lost), over all frames, and at the last frame. With
several ``--seeds`` both trainings are repeated per seed and the figures pooled.

The sizes are the training set's own choice (``make_training_set`` without ``subimage_size``,
``train`` without ``input_size``); the motion mode of the training set is ``auto``.

Usage::

    python benchmarks/bench_prompt_augment.py [--seeds 0 1 2] [--epochs 40] [--device cpu]
    python benchmarks/bench_prompt_augment.py --seeds 0 1 2 3 4 \
        --markdown benchmarks/results/prompt_augment.md \
        --json benchmarks/results/prompt_augment.json
    python benchmarks/bench_prompt_augment.py --quick       # tiny settings, seconds (smoke test)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Settings:
    """What is simulated and how the models are trained."""

    train_frames: int = 30
    test_frames: int = 21  # the seed frame plus 20 propagated frames
    size: int = 160
    objects: int = 6
    speed: float = 2.5
    deformation: float = 0.25
    epochs: int = 40
    patience: int = 8
    base_filters: int = 8
    batch_size: int = 16
    learning_rate: float = 3e-3
    device: str = "cpu"


QUICK = Settings(
    train_frames=5, test_frames=4, size=64, objects=2, epochs=1, patience=1, base_filters=4
)


def _movies(s: Settings, seed: int) -> tuple[Any, Any]:
    from rescunet_ij.sample_data import synthetic_movie

    kw = dict(n_objects=s.objects, radius=(8.0, 12.0), speed=s.speed, deformation=s.deformation)
    train = synthetic_movie(s.train_frames, (s.size, s.size), seed=1000 + seed, **kw)
    test = synthetic_movie(s.test_frames, (s.size, s.size), seed=2000 + seed, **kw)
    return train, test


def _train(s: Settings, tset: Path, seed: int, augment: bool) -> tuple[Any, dict[str, Any]]:
    from rescunet_ij import api

    t0 = time.perf_counter()
    result = api.train(
        tset,
        None,
        epochs=s.epochs,
        early_stopping_patience=s.patience,
        base_filters=s.base_filters,
        batch_size=s.batch_size,
        learning_rate=s.learning_rate,
        validation_fraction=0.15,
        prompt_augment=augment,
        seed=seed,
        device=s.device,
    )
    best = result.history[result.best_epoch - 1] if result.best_epoch else {}
    info = {
        "seconds": round(time.perf_counter() - t0, 1),
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "val_iou": best.get("val_iou"),
        "prompt_shift": result.model.train_config.prompt_shift,
        "window": list(result.model.window_size),
        "input_size": list(result.model.model_config.input_size),
    }
    return result.model, info


def _ious(model: Any, test: Any, s: Settings) -> dict[int, list[float]]:
    """IoU per frame distance from the seed frame: ``{distance: [one value per object]}``."""
    from rescunet_ij import api
    from rescunet_ij.geometry import iou, polygon_to_mask

    movie = api.as_movie(test.images, dims="tyx")
    seeds = api.outlines_from_labels(test.labels, range(1))
    run = api.propagate(
        movie, seeds, model, start_frame=0, config=api.propagate_config(device=s.device)
    )
    by_key = {(o.frame, o.object_id): o for o in run.predicted}
    shape = test.labels.shape[1:]
    out: dict[int, list[float]] = {}
    for t in range(1, s.test_frames):
        for oid in range(1, s.objects + 1):
            truth = test.labels[t] == oid
            o = by_key.get((t, oid))
            pred = np.zeros(shape, bool) if o is None else polygon_to_mask(o.polygon, shape)
            out.setdefault(t, []).append(float(iou(pred, truth)))
    return out


def _summary(ious: dict[int, list[float]]) -> dict[str, Any]:
    every = [v for vals in ious.values() for v in vals]
    last = ious[max(ious)]
    return {
        "per_distance": {
            str(d): {"mean": float(np.mean(v)), "median": float(np.median(v)), "n": len(v)}
            for d, v in sorted(ious.items())
        },
        "all": {"mean": float(np.mean(every)), "median": float(np.median(every)), "n": len(every)},
        "final": {"mean": float(np.mean(last)), "median": float(np.median(last)), "n": len(last)},
        "lost_at_end": int(sum(v == 0.0 for v in last)),
    }


def run(s: Settings, seeds: list[int]) -> dict[str, Any]:
    """Train with and without prompt augmentation per seed; pool the IoUs per frame distance."""
    from rescunet_ij import api

    pooled: dict[str, dict[int, list[float]]] = {"with": {}, "without": {}}
    trainings: list[dict[str, Any]] = []
    sizes = None
    for seed in seeds:
        train, test = _movies(s, seed)
        with tempfile.TemporaryDirectory() as tmp:
            movie = api.as_movie(train.images, dims="tyx")
            outlines = api.outlines_from_labels(train.labels)
            tset = api.make_training_set(movie, outlines, Path(tmp) / "set")
            sizes = api.training_set_sizes(tset)
            for label, augment in (("with", True), ("without", False)):
                model, info = _train(s, tset, seed, augment)
                trainings.append({"seed": seed, "prompt_augment": augment, **info})
                for d, vals in _ious(model, test, s).items():
                    pooled[label].setdefault(d, []).extend(vals)
    return {
        "settings": s.__dict__,
        "seeds": seeds,
        "sizes": sizes.to_meta() if sizes else None,
        "trainings": trainings,
        "results": {k: _summary(v) for k, v in pooled.items()},
    }


def machine() -> dict[str, Any]:
    """CPU model, usable cores, torch and Python versions."""
    import os

    import torch

    try:
        model = (
            subprocess.run(["lscpu"], capture_output=True, text=True, check=False)
            .stdout.split("Model name:")[1]
            .splitlines()[0]
            .strip()
        )
    except (OSError, IndexError):
        model = platform.processor() or "unknown"
    return {
        "cpu": model,
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown: settings, one row per frame distance, the summary rows."""
    s, m, res = report["settings"], report["machine"], report["results"]
    w, wo = res["with"], res["without"]
    lines = [
        "# Prompt augmentation: multi-step drift"
        + (" (QUICK settings)" if report["quick"] else ""),
        "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPU(s), torch {m['torch']} "
        f"({m['torch_threads']} threads), Python {m['python']}; device {s['device']}. "
        f"Date: {m['date']}. Total time {report['seconds']:.0f} s.",
        "",
        f"Data: synthetic movies ({s['size']}x{s['size']} px, {s['objects']} objects of radius "
        f"8-12 px, speed {s['speed']} px/frame, deformation {s['deformation']}); training movie "
        f"{s['train_frames']} frames, test movie {s['test_frames']} frames (seeded from frame 1, "
        f"{s['test_frames'] - 1} propagated frames); seeds {report['seeds']} (a new pair of "
        "movies and a training seed each).",
        "",
        f"Training: base filters {s['base_filters']}, L=1, batch {s['batch_size']}, lr "
        f"{s['learning_rate']}, at most {s['epochs']} epochs (early stopping patience "
        f"{s['patience']}), 15% validation; sizes chosen by the training set: "
        f"{(report['sizes'] or {}).get('reason', 'n/a')}.",
        "",
        "| run | seed | epochs (best) | val IoU | prompt shift | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for t in report["trainings"]:
        name = "with prompt augmentation" if t["prompt_augment"] else "without"
        val = f"{t['val_iou']:.3f}" if t["val_iou"] is not None else "n/a"
        lines.append(
            f"| {name} | {t['seed']} | {t['epochs']} ({t['best_epoch']}) | {val} | "
            f"{t['prompt_shift'] if t['prompt_shift'] is not None else '-'} | {t['seconds']} |"
        )
    lines += [
        "",
        "IoU with the ground truth (object x seed values per row; a lost object counts 0):",
        "",
        "| frames after the seed | n | with: mean | with: median | without: mean | "
        "without: median | mean difference |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in w["per_distance"]:
        a, b = w["per_distance"][d], wo["per_distance"][d]
        lines.append(
            f"| {d} | {a['n']} | {a['mean']:.3f} | {a['median']:.3f} | {b['mean']:.3f} | "
            f"{b['median']:.3f} | {a['mean'] - b['mean']:+.3f} |"
        )
    for key, label in (("all", "all frames"), ("final", "last frame")):
        a, b = w[key], wo[key]
        lines.append(
            f"| **{label}** | {a['n']} | **{a['mean']:.3f}** | {a['median']:.3f} | "
            f"**{b['mean']:.3f}** | {b['median']:.3f} | {a['mean'] - b['mean']:+.3f} |"
        )
    lines += [
        "",
        f"Objects lost by the last frame: with {w['lost_at_end']}, without {wo['lost_at_end']} "
        f"(of {w['final']['n']}).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the markdown table and write the requested files."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args(argv)
    s = Settings(**QUICK.__dict__) if args.quick else Settings()
    s.device = args.device
    if args.epochs is not None:
        s.epochs = args.epochs
    t0 = time.perf_counter()
    report = run(s, args.seeds)
    report.update(quick=args.quick, machine=machine(), seconds=time.perf_counter() - t0)
    md = markdown(report)
    print(md)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(md, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
