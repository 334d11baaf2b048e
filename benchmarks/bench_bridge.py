"""Throughput of the ImageJ bridge: pixels ImagePlus <-> xarray, and ROIs <-> ROI Manager.

    xvfb-run -a python benchmarks/bench_bridge.py         # 512x512x200 16-bit, 50 x 100 ROIs
    xvfb-run -a python benchmarks/bench_bridge.py --frames 50 --objects 20 --repeat 5

Prints a table (median of ``--repeat`` runs; the first run of each also warms up the JIT).
Needs ImageJ 1.x (``$IJ_JAR`` or ``/usr/share/java/ij.jar``), Java, JPype/scyjava and a display.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np


def _time(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512, help="image width and height")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--objects", type=int, default=50, help="objects per frame for the ROI test")
    p.add_argument("--roi-frames", type=int, default=100, help="frames for the ROI test")
    p.add_argument("--vertices", type=int, default=40, help="vertices per outline")
    p.add_argument("--repeat", type=int, default=3)
    return p


Row = tuple[str, str, str]


def pixel_rows(bridge: Any, a: argparse.Namespace) -> list[Row]:
    """Time a random 16-bit movie xarray -> ImagePlus -> xarray (and check the round trip)."""
    from rescunet_ij.io.movie import as_movie

    rng = np.random.default_rng(0)
    data = rng.integers(0, 65535, (a.frames, a.size, a.size), dtype=np.uint16)
    movie = as_movie(data, dims="tyx")
    mb = data.nbytes / 1e6
    sec, imp = _time(lambda: bridge.movie_to_imageplus(movie, "bench"), a.repeat)
    rows = [
        (
            f"xarray -> ImagePlus ({a.size}x{a.size}x{a.frames} 16-bit, {mb:.0f} MB)",
            f"{sec:.3f} s",
            f"{mb / sec:,.0f} MB/s",
        )
    ]
    sec, back = _time(lambda: bridge.imageplus_to_movie(imp), a.repeat)
    rows.append(("ImagePlus -> xarray", f"{sec:.3f} s", f"{mb / sec:,.0f} MB/s"))
    assert np.array_equal(back.values[:, 0, 0], data)
    return rows


def _outlines(a: argparse.Namespace) -> list[Any]:
    """``a.objects`` circles per frame on a grid, drifting a little from frame to frame."""
    from rescunet_ij.types import Outline

    angles = np.linspace(0, 2 * np.pi, a.vertices, endpoint=False)
    return [
        Outline(
            k,
            f,
            np.column_stack(
                [
                    40 * (k % 40) + 20 + 8 * np.cos(angles) + f * 0.1,
                    40 * (k // 40) + 20 + 8 * np.sin(angles),
                ]
            ),
        )
        for f in range(a.roi_frames)
        for k in range(1, a.objects + 1)
    ]


def roi_rows(bridge: Any, ij: Any, a: argparse.Namespace) -> list[Row]:
    """Time outlines <-> Roi objects and the ROI Manager: fill, partial replacement, read back."""
    n_roi = a.objects * a.roi_frames
    small = ij.jc.IJ.createHyperStack("rois", 2048, 2048, 1, 1, a.roi_frames, 8)
    outlines = _outlines(a)
    sec, rois = _time(lambda: bridge.outlines_to_rois(outlines, small), a.repeat)
    rows = [
        (
            f"outlines -> Roi objects ({a.objects} objects x {a.roi_frames} frames = {n_roi})",
            f"{sec:.3f} s",
            f"{n_roi / sec:,.0f} ROI/s",
        )
    ]
    sec, _ = _time(lambda: bridge.rois_to_outlines(rois, small), a.repeat)
    rows.append(
        (
            "Roi objects -> outlines (positions, identities)",
            f"{sec:.3f} s",
            f"{n_roi / sec:,.0f} ROI/s",
        )
    )
    rm = ij.roi_manager() if not ij.headless else ij.jc.RoiManager(True)

    def push_all() -> Any:
        rm.reset()
        return bridge.outlines_to_roimanager(outlines, rm, small)

    sec, _ = _time(push_all, a.repeat)
    rows.append(
        ("outlines -> ROI Manager (empty manager)", f"{sec:.3f} s", f"{n_roi / sec:,.0f} ROI/s")
    )
    half = a.roi_frames // 2
    later = [o for o in outlines if o.frame >= half]
    sec, summary = _time(lambda: bridge.outlines_to_roimanager(later, rm, small), a.repeat)
    rows.append(
        (
            f"re-propagation: replace frames {half + 1}..{a.roi_frames} ({len(later)} ROIs)",
            f"{sec:.3f} s",
            f"{summary.removed} removed, {summary.added} added",
        )
    )
    sec, _ = _time(lambda: bridge.roimanager_to_outlines(rm, small), a.repeat)
    rows.append(("ROI Manager -> outlines", f"{sec:.3f} s", f"{n_roi / sec:,.0f} ROI/s"))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: start ImageJ, time each operation, print the table."""
    a = _parser().parse_args(argv)

    from rescunet_ij import bridge

    t0 = time.perf_counter()
    ij = bridge.start_imagej()
    t_start = time.perf_counter() - t0
    rows: list[Row] = [("start ImageJ (JVM + ij.jar)", f"{t_start:.2f} s", "")]
    rows += pixel_rows(bridge, a)
    rows += roi_rows(bridge, ij, a)

    width = max(len(r[0]) for r in rows)
    print(f"ImageJ {ij.version}, Python {sys.version.split()[0]}, median of {a.repeat}")
    print(f"{'operation':<{width}}  {'time':>9}  rate")
    print("-" * (width + 30))
    for name, t, rate in rows:
        print(f"{name:<{width}}  {t:>9}  {rate}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
