"""The demo: the whole path on bundled synthetic data, in a few minutes on two CPU cores.

1. Simulate a training movie (fully outlined, as a user would after correcting) and a test movie.
2. Build a training set, train a small ReSCU-Net.
3. Propagate the test movie's frame-1 outlines through all frames.
4. Write the RoiSet.zip, a label image, an overlay PNG and GIF, the training curve, and report the
   IoU against the ground truth next to the copy-the-previous-mask baseline.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OutputExistsError
from .types import Outline

# Small enough for two CPU cores, big enough to beat copying the previous mask clearly.
DEMO_SETTINGS: dict[str, Any] = dict(
    input_size=48,
    base_filters=16,
    concatenation_level=1,
    batch_size=16,
    learning_rate=2e-3,
    validation_fraction=0.15,
    early_stopping_patience=6,
)


def labels_to_outlines(labels: np.ndarray, frames: range | None = None) -> list[Outline]:
    """Ground-truth labels ``(t, y, x)`` -> outlines named ``nucleus-<id>`` (object id = label)."""
    from . import api

    return api.outlines_from_labels(labels, frames, name_prefix="nucleus")


def mean_iou(outlines: list[Outline], labels: np.ndarray, frames: range) -> float:
    """Mean IoU of predicted outlines against the ground truth over ``frames`` (missing = 0)."""
    from . import api

    return api.mean_iou(outlines, labels, frames)


def copy_previous_iou(labels: np.ndarray, frames: range) -> float:
    """The baseline: the outlines of the frame before ``frames`` copied forward through them."""
    from dataclasses import replace

    from . import api

    first = api.outlines_from_labels(labels, [frames.start - 1])
    copies = [replace(o, frame=t) for t in frames for o in first]
    return api.mean_iou(copies, labels, frames)


def _simulate(out: Path, n_frames: int, size: int) -> tuple[Any, Any, Any, Any, list, list]:
    """Step 1: a fully outlined training movie and a test movie with its frame-1 seeds."""
    from . import api

    train_sim = api.synthetic_movie(n_frames, (size, size), n_objects=5, seed=11)
    test_sim = api.synthetic_movie(n_frames, (size, size), n_objects=5, seed=22)
    attrs = dict(pixel_size=0.5, unit="micron", frame_interval=60.0, time_unit="s")
    train_movie = api.as_movie(train_sim.images, dims="tyx", **attrs)
    test_movie = api.as_movie(test_sim.images, dims="tyx", **attrs)
    api.write_movie(out / "train_movie.tif", train_movie, overwrite=True)
    api.write_movie(out / "movie.tif", test_movie, overwrite=True)
    train_outlines = labels_to_outlines(train_sim.labels)
    seeds = labels_to_outlines(test_sim.labels, range(0, 1))
    api.write_outlines(out / "train_RoiSet.zip", train_outlines, train_movie, overwrite=True)
    api.write_outlines(out / "seeds_RoiSet.zip", seeds, test_movie, overwrite=True)
    return train_movie, test_movie, train_sim, test_sim, train_outlines, seeds


def _train(
    out: Path, train_movie: Any, train_outlines: list, epochs: int, device: str, say: Any
) -> Any:
    """Steps 2 and 3: the training set and a small ReSCU-Net, reporting every epoch."""
    from . import api

    say("2/4 building the training set")
    tset = api.make_training_set(
        train_movie,
        train_outlines,
        out / "training_set",
        subimage_size=DEMO_SETTINGS["input_size"],
        overwrite=True,
    )
    say(f"3/4 training a small ReSCU-Net ({epochs} epochs max, {device})")

    def on_epoch_end(stats: dict) -> None:
        val = stats.get("val_iou")
        extra = f", validation IoU {val:.3f}" if val is not None else ""
        say(f"    epoch {stats['epoch']}: loss {stats['train_loss']:.4f}{extra}")

    return api.train(
        tset,
        out / "model.rescunet",
        epochs=epochs,
        device=device,
        overwrite=True,
        callbacks=api.TrainCallbacks(on_epoch_end=on_epoch_end),
        **DEMO_SETTINGS,
    )


def _report(out: Path, summary: dict[str, Any], n_frames: int, say: Any) -> None:
    from . import api

    api.write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n", overwrite=True)
    say(
        f"\nmean IoU vs ground truth over frames 2-{n_frames}: "
        f"{summary['mean_iou_propagated']:.3f} (copying the frame-1 outline: "
        f"{summary['mean_iou_copy_first_frame']:.3f})"
    )
    say(f"done in {summary['seconds']} s. Files in {out.resolve()}:")
    for k, v in summary["files"].items():
        say(f"  {k:<17} {v}")
    say(
        "Open movie.tif in Fiji, then RoiSet.zip in the ROI Manager (More > Open...) to see "
        "the outlines."
    )


def run_demo(
    output: str | Path = "rescunet_demo",
    *,
    epochs: int = 12,
    device: str = "auto",
    overwrite: bool = False,
    console: Any = None,
    n_frames: int = 24,
    size: int = 128,
) -> dict[str, Any]:
    """Run the demo and return a summary dict (also written to ``summary.json``)."""
    from . import api

    say = console.print if console is not None else print
    out = Path(output)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"demo folder {out} is not empty; choose another with -o or pass --overwrite"
        )
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    say("1/4 simulating a training movie and a test movie (moving, deforming nuclei)")
    train_movie, test_movie, _, test_sim, train_outlines, seeds = _simulate(out, n_frames, size)
    result = _train(out, train_movie, train_outlines, epochs, device, say)

    say("4/4 propagating the frame-1 outlines through the test movie")
    run = api.propagate(test_movie, seeds, result.model, start_frame=0)
    with api.output_group():
        api.write_outlines(out / "RoiSet.zip", run.outlines, test_movie, overwrite=True)
        api.write_labels(out / "labels.tif", run.outlines, test_movie, overwrite=True)
        api.write_overlay(out / "overlay.png", test_movie, run.outlines)
        api.write_overlay(out / "overlay.gif", test_movie, run.outlines)

    frames = range(1, n_frames)
    summary = {
        "mean_iou_propagated": round(mean_iou(run.outlines, test_sim.labels, frames), 4),
        "mean_iou_copy_first_frame": round(copy_previous_iou(test_sim.labels, frames), 4),
        "frames": n_frames,
        "objects": int(len(seeds)),
        "lost": {str(k): v + 1 for k, v in run.lost.items()},
        "best_epoch": result.best_epoch,
        "seconds": round(time.perf_counter() - t0, 1),
        "files": {
            "movie": str(out / "movie.tif"),
            "seed_rois": str(out / "seeds_RoiSet.zip"),
            "result_rois": str(out / "RoiSet.zip"),
            "labels": str(out / "labels.tif"),
            "overlay_png": str(out / "overlay.png"),
            "overlay_gif": str(out / "overlay.gif"),
            "model": str(result.model_path),
            "training_curve": str(result.history_png),
            "training_history": str(result.history_csv),
        },
    }
    _report(out, summary, n_frames, say)
    return summary
