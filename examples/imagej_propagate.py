"""Propagate outlines inside ImageJ from Python (plain ImageJ 1.x jar; runs on a server too).

    xvfb-run -a python examples/imagej_propagate.py                  # trains a tiny model first
    xvfb-run -a python examples/imagej_propagate.py --model cells.rescunet --out results/

What it does, as a Fiji user would by hand:

1. start ImageJ in this Python process (``$IJ_JAR`` or Debian's ``/usr/share/java/ij.jar``),
2. open a movie (here a synthetic one) as an ImageJ hyperstack window,
3. outline the objects on frame 1 in the ROI Manager (here from the ground truth),
4. propagate the outlines through the movie with a trained model, straight into the ROI Manager,
5. save the ROI Manager as RoiSet.zip (Fiji opens it on the movie, every ROI on its frame).

``xvfb-run`` provides the virtual display the ROI Manager needs; on a desktop run plain ``python``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def train_tiny_model(folder: Path) -> Path:
    """A small model trained on a synthetic movie (a minute or two on a laptop CPU)."""
    from rescunet_ij import api
    from rescunet_ij.demo import labels_to_outlines
    from rescunet_ij.sample_data import synthetic_movie

    sim = synthetic_movie(24, (96, 96), n_objects=4, radius=(7.0, 10.0), seed=101)
    movie = api.as_movie(sim.images, dims="tyx")
    tset = api.make_training_set(
        movie,
        labels_to_outlines(sim.labels),
        folder / "training_set",
        subimage_size=32,
        overwrite=True,
    )
    result = api.train(
        tset,
        folder / "tiny.rescunet",
        epochs=25,
        input_size=32,
        base_filters=8,
        batch_size=16,
        learning_rate=3e-3,
        device="cpu",
        overwrite=True,
    )
    return result.model_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, help="trained model (.rescunet); default: train a tiny one"
    )
    parser.add_argument("--out", type=Path, default=Path("imagej_example"), help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from rescunet_ij import bridge
    from rescunet_ij.demo import labels_to_outlines
    from rescunet_ij.io.movie import as_movie
    from rescunet_ij.sample_data import synthetic_movie

    model = args.model or train_tiny_model(args.out)

    ij = bridge.start_imagej()  # once per process; later calls return the same session
    print(f"ImageJ {ij.version} running (headless={ij.headless})")

    # 2. a movie in an ImageJ window (with a real file: imp = ij.jc.IJ.openImage("movie.tif"))
    sim = synthetic_movie(10, (96, 96), n_objects=3, radius=(7.0, 10.0), seed=7)
    imp = bridge.movie_to_imageplus(
        as_movie(sim.images, dims="tyx", pixel_size=0.65, unit="um"), "cells", show=True
    )

    # 3. the seed outlines on frame 1, as if drawn and added with "t"
    rm = ij.roi_manager()
    rm.reset()
    bridge.outlines_to_roimanager(labels_to_outlines(sim.labels, range(1)), rm, imp)

    # 4. propagate from frame 1 (1-based, as Fiji shows frames) to the end
    t0 = time.perf_counter()
    summary = bridge.propagate_in_imagej(model, imp, rm, start_frame=1)
    print(summary, f"({time.perf_counter() - t0:.1f} s)")
    for frame, object_id, why in summary.doubtful:
        print(f"  check frame {frame}, object {object_id}: {why}")

    # 5. what the user would do with ROI Manager > More > Save...
    roiset = args.out / "RoiSet.zip"
    if not rm.runCommand("Save", str(roiset)):
        print(f"could not save {roiset}", file=sys.stderr)
        return 1
    print(f"{rm.getCount()} ROIs in the ROI Manager, saved to {roiset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
