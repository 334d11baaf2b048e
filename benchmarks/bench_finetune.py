r"""Corrections a user needs with and without fine-tuning after each one (``rescunet-ij finetune``).

A small ReSCU-Net is trained briefly on one synthetic movie (the base model). On held-out
synthetic movies (other seeds, objects moving faster and deforming more than in training, so the
base model makes mistakes) a simulated user propagates the first frame's true outlines, then,
while any object in any frame has an IoU with the ground truth below ``--threshold`` (0.8),
corrects the worst frame (the frame with the lowest IoU: every object's outline there replaced by
the truth, as drawn by hand) and propagates again. Two users are compared on the same movies:

* **without fine-tuning**: the base model propagates again from the corrected frame;
* **with fine-tuning**: after each correction the current model is fine-tuned on all the
  corrections so far (``api.finetune``: the corrections plus a replay sample of the base model's
  training set; 4 epochs and 24 replayed samples instead of the defaults 10 and 64, to fit the
  run in minutes on 2 cores: ``--finetune-epochs``, ``--replay-samples``) and the new model
  propagates again from the first corrected frame (``api.repropagate``; the user's outlines are
  kept).

Reported per test movie and in total: the corrections needed until every frame of every object
reaches the threshold, and the mean IoU of the first propagation.

Usage::

    python benchmarks/bench_finetune.py [--seeds 0 1 2 3 4 5] [--device cpu]   # ~8 min
    python benchmarks/bench_finetune.py --markdown benchmarks/results/finetune.md \
        --json benchmarks/results/finetune.json
    python benchmarks/bench_finetune.py --quick       # tiny settings, seconds (smoke test)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Settings:
    """What is simulated and how the base model is trained."""

    train_frames: int = 24
    test_frames: int = 16
    size: int = 96
    objects: int = 3
    train_speed: float = 2.0
    train_deformation: float = 0.2
    test_speed: float = 4.0
    test_deformation: float = 0.45
    epochs: int = 6
    base_filters: int = 8
    input_size: int = 32
    subimage_size: int = 40
    batch_size: int = 16
    learning_rate: float = 3e-3
    threshold: float = 0.8
    finetune_epochs: int | None = 4  # None: api.finetune's default (10)
    replay_samples: int = 24  # api.finetune's default: 64
    device: str = "cpu"


QUICK = Settings(
    train_frames=5,
    test_frames=4,
    size=64,
    objects=2,
    epochs=1,
    base_filters=4,
    subimage_size=32,
    finetune_epochs=1,
    replay_samples=4,
)


def _movie(s: Settings, n: int, seed: int, speed: float, deformation: float) -> Any:
    from rescunet_ij.sample_data import synthetic_movie

    return synthetic_movie(
        n,
        (s.size, s.size),
        n_objects=s.objects,
        radius=(8.0, 12.0),
        speed=speed,
        deformation=deformation,
        seed=seed,
    )


def _base_model(s: Settings, root: Path) -> tuple[Any, Path, dict[str, Any]]:
    from rescunet_ij import api

    sim = _movie(s, s.train_frames, 1000, s.train_speed, s.train_deformation)
    movie = api.as_movie(sim.images, dims="tyx")
    tset = api.make_training_set(
        movie, api.outlines_from_labels(sim.labels), root / "set", subimage_size=s.subimage_size
    )
    t0 = time.perf_counter()
    result = api.train(
        tset,
        root / "base.rescunet",
        epochs=s.epochs,
        input_size=s.input_size,
        base_filters=s.base_filters,
        batch_size=s.batch_size,
        learning_rate=s.learning_rate,
        validation_fraction=0.15,
        device=s.device,
    )
    info = {"seconds": round(time.perf_counter() - t0, 1), "epochs": len(result.history)}
    return result.model, tset, info


def _ious(outlines: list[Any], labels: np.ndarray) -> dict[tuple[int, int], float]:
    """IoU with the truth of every object in every frame after the first (missing: 0)."""
    from rescunet_ij.geometry import iou, polygon_to_mask

    shape = labels.shape[1:]
    by_key = {(o.frame, o.object_id): o for o in outlines}
    out = {}
    for t in range(1, labels.shape[0]):
        for oid in np.unique(labels[t]):
            if oid == 0:
                continue
            o = by_key.get((t, int(oid)))
            pred = np.zeros(shape, bool) if o is None else polygon_to_mask(o.polygon, shape)
            out[t, int(oid)] = float(iou(pred, labels[t] == oid))
    return out


def simulate(s: Settings, base: Any, tset: Path, sim: Any, finetune: bool) -> dict[str, Any]:
    """One simulated user on one movie: corrections until every IoU reaches the threshold."""
    from rescunet_ij import api

    movie = api.as_movie(sim.images, dims="tyx")
    truth = api.outlines_from_labels(sim.labels)
    cfg = api.propagate_config(device=s.device)
    seeds = [o for o in truth if o.frame == 0]
    outlines = api.propagate(movie, seeds, base, start_frame=0, config=cfg).outlines
    first = _ious(outlines, sim.labels)
    model, frames, seconds = base, [], 0.0
    while True:
        ious = _ious(outlines, sim.labels)
        worst = min(ious.values())
        if worst >= s.threshold or len(frames) >= sim.labels.shape[0] - 1:
            break
        per_frame: dict[int, float] = {}
        for (t, _), v in ious.items():
            per_frame[t] = min(per_frame.get(t, 1.0), v)
        frame = min(per_frame, key=lambda t: (per_frame[t], t))
        frames.append(frame)
        outlines = [o for o in outlines if o.frame != frame]
        outlines += [o for o in truth if o.frame == frame]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if finetune:
                model = api.finetune(
                    model,
                    movie,
                    outlines,
                    None,
                    replay=tset,
                    replay_samples=s.replay_samples,
                    epochs=s.finetune_epochs,
                    device=s.device,
                    seed=len(frames),
                ).model
                outlines, _ = api.repropagate(movie, outlines, model, config=cfg)
            else:
                outlines, _ = api.repropagate(movie, outlines, model, from_frame=frame, config=cfg)
        seconds += time.perf_counter() - t0
        print(
            f"  {'with' if finetune else 'without'} fine-tuning: corrected frame {frame + 1} "
            f"(worst IoU {worst:.3f}), {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    final = _ious(outlines, sim.labels)
    return {
        "corrections": len(frames),
        "corrected_frames": [f + 1 for f in frames],
        "first_mean_iou": float(np.mean(list(first.values()))),
        "first_below": int(sum(v < s.threshold for v in first.values())),
        "final_min_iou": float(min(final.values())),
        "seconds": round(seconds, 1),
    }


def run(s: Settings, seeds: list[int]) -> dict[str, Any]:
    """Train the base model, then simulate both users on every test movie."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base, tset, training = _base_model(s, Path(tmp))
        print(f"base model trained in {training['seconds']} s", file=sys.stderr, flush=True)
        movies = []
        for seed in seeds:
            sim = _movie(s, s.test_frames, 2000 + seed, s.test_speed, s.test_deformation)
            movies.append(
                {
                    "seed": seed,
                    "without": simulate(s, base, tset, sim, finetune=False),
                    "with": simulate(s, base, tset, sim, finetune=True),
                }
            )
    total = {k: sum(m[k]["corrections"] for m in movies) for k in ("without", "with")}
    return {"settings": s.__dict__, "seeds": seeds, "training": training, "movies": movies,
            "total": total}  # fmt: skip


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
    """The report as markdown: settings, one row per test movie, the totals."""
    s, m = report["settings"], report["machine"]
    lines = [
        "# Corrections needed with and without fine-tuning"
        + (" (QUICK settings)" if report["quick"] else ""),
        "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPU(s) (shared with other jobs), torch "
        f"{m['torch']} ({m['torch_threads']} threads), Python {m['python']}; device "
        f"{s['device']}. Date: {m['date']}. Total time {report['seconds']:.0f} s.",
        "",
        f"Base model: base filters {s['base_filters']}, input {s['input_size']}, window "
        f"{s['subimage_size']} px, {report['training']['epochs']} epochs "
        f"({report['training']['seconds']} s) on one synthetic movie ({s['train_frames']} frames, "
        f"{s['size']}x{s['size']} px, {s['objects']} objects, speed {s['train_speed']} px/frame, "
        f"deformation {s['train_deformation']}). Test movies: {s['test_frames']} frames, speed "
        f"{s['test_speed']}, deformation {s['test_deformation']}, seeds {report['seeds']}. A "
        f"frame is corrected (replaced by the truth) while any object's IoU is below "
        f"{s['threshold']}; fine-tuning: api.finetune with "
        f"{s['finetune_epochs'] or 10} epochs at 1/5 of the base learning rate, "
        f"{s['replay_samples']} replayed training samples (the defaults are 10 epochs and 64 "
        "samples; fewer here to fit the benchmark in minutes on 2 cores).",
        "",
        "| test movie | first run: mean IoU | object-frames below | corrections without "
        "fine-tuning | corrections with fine-tuning | frames corrected (without / with) |",
        "|---|---|---|---|---|---|",
    ]
    for mv in report["movies"]:
        wo, w = mv["without"], mv["with"]
        lines.append(
            f"| seed {mv['seed']} | {wo['first_mean_iou']:.3f} | {wo['first_below']} | "
            f"{wo['corrections']} | {w['corrections']} | {wo['corrected_frames']} / "
            f"{w['corrected_frames']} |"
        )
    t = report["total"]
    lines += [
        f"| **total** | | | **{t['without']}** | **{t['with']}** | |",
        "",
        "Seconds spent on repropagation (and fine-tuning): "
        + ", ".join(
            f"seed {mv['seed']}: {mv['without']['seconds']} / {mv['with']['seconds']}"
            for mv in report["movies"]
        )
        + " (without / with).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the markdown table and write the requested files."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--finetune-epochs", type=int, default=None, help="default: 4 (quick: 1)")
    ap.add_argument("--replay-samples", type=int, default=None, help="default: 24 (quick: 4)")
    ap.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args(argv)
    s = Settings(**QUICK.__dict__) if args.quick else Settings()
    s.device = args.device
    if args.finetune_epochs is not None:
        s.finetune_epochs = args.finetune_epochs
    if args.replay_samples is not None:
        s.replay_samples = args.replay_samples
    seeds = args.seeds[:1] if args.quick else args.seeds
    t0 = time.perf_counter()
    report = run(s, seeds)
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
