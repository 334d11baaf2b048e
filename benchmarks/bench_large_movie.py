r"""Larger-than-memory movies: peak RSS and object-frames/s propagating a big BigTIFF lazily.

Setting (the issue's): a 2048x2048 x 1000-frame uint16 movie (8 GB) with 50 objects, written frame
by frame as an uncompressed BigTIFF into a temporary folder (``--dir``, default the system's
temporary folder), read with :func:`rescunet_ij.api.read_movie` (lazy: memory-mapped one page at
a time) and propagated with :func:`rescunet_ij.api.propagate` from the true outlines of frame 0
through every frame. The comparison is the same propagation of an in-memory movie of the first
``--ref-frames`` (50) frames (a numpy array, the eager path).

The objects are bright disks moving on a noisy background (:func:`write_big_movie`). The network
is a tiny random-weight ReSCU-Net (input 32, 8 base filters) whose forward pass runs in full
before its output is replaced by an oracle (bright pixels near the previous mask;
``_standins.StandInNetwork``): the measure is memory and throughput, and the oracle keeps every
object tracked so every object-frame is real work. Each propagation runs in its own subprocess:
peak RSS is that process's ``ru_maxrss``, reported with the RSS it had before propagating
(Python, torch, the model).

Usage::

    python benchmarks/bench_large_movie.py                     # 2048x2048 x 1000 frames, 50 objects
    python benchmarks/bench_large_movie.py --frames 300 --size 2048 --objects 50
    python benchmarks/bench_large_movie.py --json benchmarks/results/large_movie.json \\
        --markdown benchmarks/results/large_movie.md
    python benchmarks/bench_large_movie.py --quick             # tiny, in one process: a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RADIUS = 12.0
"""Disk radius of the synthetic objects, in pixels."""


# ------------------------------------------------------------------------------- the movie


def object_tracks(n_frames: int, size: int, n_objects: int, seed: int = 0) -> np.ndarray:
    """``(n_frames, n_objects, 2)`` disk centres ``(y, x)``: straight slow drifts, no collisions.

    Objects sit on a grid (so they never touch) and drift by up to 0.3 px per frame, bouncing
    back inside their grid cell.
    """
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_objects)))
    cell = size / side
    margin = RADIUS + 4
    centres = np.array(
        [((i // side + 0.5) * cell, (i % side + 0.5) * cell) for i in range(n_objects)]
    )
    velocity = rng.uniform(-0.3, 0.3, (n_objects, 2))
    reach = max(cell / 2 - margin, 0.0)
    out = np.empty((n_frames, n_objects, 2))
    pos = np.zeros((n_objects, 2))
    for t in range(n_frames):
        out[t] = centres + pos
        pos += velocity
        flip = np.abs(pos) > reach
        velocity[flip] *= -1
        pos = np.clip(pos, -reach, reach)
    return out


def disk_mask(shape: tuple[int, int], cy: float, cx: float, r: float = RADIUS) -> np.ndarray:
    """Boolean disk (pixel centres within ``r`` of ``(cy, cx)``)."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2 <= r * r


def frame_image(tracks: np.ndarray, t: int, size: int, noise: np.ndarray) -> np.ndarray:
    """Frame ``t``: background 1000 with noise, disks at 3000 (uint16)."""
    img = np.roll(noise, (7 * t, 13 * t), axis=(0, 1)).copy()
    reach = int(np.ceil(RADIUS)) + 1
    for cy, cx in tracks[t]:
        y0, x0 = max(int(cy) - reach, 0), max(int(cx) - reach, 0)
        y1, x1 = min(int(cy) + reach + 1, size), min(int(cx) + reach + 1, size)
        m = disk_mask((y1 - y0, x1 - x0), cy - y0, cx - x0)
        img[y0:y1, x0:x1][m] += 2000
    return img


def write_big_movie(
    path: str | os.PathLike[str], n_frames: int, size: int, n_objects: int, seed: int = 0
) -> np.ndarray:
    """Write the synthetic movie as an uncompressed BigTIFF, one page per frame; its tracks.

    Only one frame is ever in memory, so movies far larger than memory can be made.
    """
    import tifffile

    tracks = object_tracks(n_frames, size, n_objects, seed)
    rng = np.random.default_rng(seed + 1)
    noise = (1000 + rng.normal(0, 40, (size, size))).clip(0, 65535).astype(np.uint16)
    frames = (frame_image(tracks, t, size, noise) for t in range(n_frames))
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(
            frames,
            shape=(n_frames, size, size),
            dtype=np.uint16,
            photometric="minisblack",
            metadata={"axes": "TYX"},
        )
    return tracks


def seed_outlines(tracks: np.ndarray, size: int) -> list[Any]:
    """The true outlines of frame 0 (object ids 1..n)."""
    from rescunet_ij.geometry import mask_to_polygon
    from rescunet_ij.types import Outline

    out = []
    reach = int(np.ceil(RADIUS)) + 1
    for k, (cy, cx) in enumerate(tracks[0], start=1):
        y0, x0 = max(int(cy) - reach, 0), max(int(cx) - reach, 0)
        m = disk_mask((2 * reach + 1, 2 * reach + 1), cy - y0, cx - x0)
        out.append(Outline(k, 0, mask_to_polygon(m) + [x0, y0]))
    del size
    return out


def tracking_iou(outlines: list[Any], tracks: np.ndarray, size: int) -> float:
    """Mean IoU of the predicted outlines against the true disks (a missing object counts 0)."""
    from rescunet_ij.geometry import iou, polygon_to_mask

    reach = int(np.ceil(RADIUS)) + 8
    by_key = {(o.frame, o.object_id): o for o in outlines}
    scores = []
    for t in range(1, tracks.shape[0]):
        for k, (cy, cx) in enumerate(tracks[t], start=1):
            y0, x0 = max(int(cy) - reach, 0), max(int(cx) - reach, 0)
            y1, x1 = min(int(cy) + reach + 1, size), min(int(cx) + reach + 1, size)
            truth = disk_mask((y1 - y0, x1 - x0), cy - y0, cx - x0)
            o = by_key.get((t, k))
            if o is None:
                scores.append(0.0)
                continue
            pred = polygon_to_mask(o.polygon - [x0, y0], (y1 - y0, x1 - x0))
            scores.append(iou(pred, truth))
    return float(np.mean(scores)) if scores else float("nan")


# ------------------------------------------------------------------------------- measuring


def _rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def tiny_model(base_filters: int = 8, input_size: int = 32) -> Any:
    """A random-weight ReSCU-Net answering with the oracle (see ``_standins``)."""
    import torch

    sys.path.insert(0, str(HERE))
    from _standins import stand_in_network

    from rescunet_ij.config import ModelConfig, NormalizationConfig
    from rescunet_ij.io.checkpoint import model_from_network

    mc = ModelConfig(input_size=input_size, base_filters=base_filters, concatenation_level=1)
    torch.manual_seed(0)
    return model_from_network(stand_in_network(mc, answer="oracle"), mc, NormalizationConfig())


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One propagation, in this (fresh) process: lazy from the file, or a movie in memory."""
    import torch

    from rescunet_ij import api

    torch.set_num_threads(max(1, args.threads))
    model = tiny_model()
    tracks = np.load(args.tracks)
    size = int(args.size)
    if args.mode in ("lazy", "lazy-head"):
        movie = api.read_movie(args.movie, lazy=True)  # what the default picks for big files
        n = int(movie.sizes["t"]) if args.mode == "lazy" else int(args.ref_frames)
    else:
        n = int(args.ref_frames)
        movie = api.read_movie(args.movie, lazy=True).isel(t=slice(0, n))
        movie = api.as_movie(np.asarray(movie.values), dims="tzcyx")  # in memory (numpy)
    lazy = type(movie.data).__module__.split(".")[0] == "dask"
    seeds = seed_outlines(tracks, size)
    # Warm-up (first-call allocations) on two frames, excluded from the timing.
    api.propagate(movie, seeds, model, end_frame=1, config=api.propagate_config(device="cpu"))
    base = _rss_mb()
    t0 = time.perf_counter()
    run = api.propagate(
        movie, seeds, model, end_frame=n - 1, config=api.propagate_config(device="cpu")
    )
    seconds = time.perf_counter() - t0
    object_frames = sum(len(fr.objects) for fr in run.frames)
    return {
        "mode": args.mode,
        "lazy": lazy,
        "frames": n,
        "object_frames": object_frames,
        "seconds": seconds,
        "object_frames_per_s": object_frames / seconds,
        "rss_before_mb": base,
        "peak_rss_mb": _rss_mb(),
        "iou": tracking_iou(run.predicted, tracks[:n], size),
        "lost": len(run.lost),
    }


def _run_child(mode: str, args: argparse.Namespace, movie: Path, tracks: Path) -> dict[str, Any]:
    if args.quick:  # a smoke test: in this process (its RSS figures are not separate then)
        here = argparse.Namespace(**{**vars(args), "mode": mode})
        here.movie, here.tracks = str(movie), str(tracks)
        return child(here)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--movie",
        str(movie),
        "--tracks",
        str(tracks),
        "--size",
        str(args.size),
        "--ref-frames",
        str(args.ref_frames),
        "--threads",
        str(args.threads),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine_info() -> dict[str, Any]:
    """CPU model, usable cores, Python and torch versions."""
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
    except AttributeError:
        usable = os.cpu_count() or 0
    import torch

    return {
        "cpu": cpu,
        "usable_cpus": usable,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def markdown(result: dict[str, Any]) -> str:
    """The results as a markdown table."""
    s = result["settings"]
    lazy, ref = result["lazy"], result["in_memory"]
    gb = result["file_bytes"] / 1e9
    rows = [
        "| movie | frames | object-frames/s | peak RSS (MB) | RSS before (MB) | tracking IoU |",
        "|---|---|---|---|---|---|",
        f"| {s['size']}x{s['size']} uint16 BigTIFF, {gb:.1f} GB, lazy (memory-mapped) | "
        f"{lazy['frames']} | {lazy['object_frames_per_s']:.0f} | {lazy['peak_rss_mb']:.0f} | "
        f"{lazy['rss_before_mb']:.0f} | {lazy['iou']:.3f} |",
        f"| the first {ref['frames']} frames in memory (numpy) | {ref['frames']} | "
        f"{ref['object_frames_per_s']:.0f} | {ref['peak_rss_mb']:.0f} | "
        f"{ref['rss_before_mb']:.0f} | {ref['iou']:.3f} |",
    ]
    head = result["head_object_frames_per_s"]
    pairs = "; ".join(
        f"{p['mode'].replace('lazy-head', 'lazy')} {p['object_frames_per_s']:.1f}"
        for p in result["pairs"]
    )
    same_load = (
        f"\n\nThroughput under the same load (the first {ref['frames']} frames, lazy and in "
        f"memory alternated): median {head['lazy-head']:.1f} object-frames/s lazy vs "
        f"{head['memory']:.1f} in memory (ratio {result['throughput_ratio']:.2f}; runs in order: "
        f"{pairs})."
    )
    m = result["machine"]
    return (
        f"Propagating {s['objects']} objects through a {s['size']}x{s['size']} x "
        f"{s['frames']}-frame movie ({gb:.1f} GB); written in {result['write_s']:.0f} s.\n\n"
        + "\n".join(rows)
        + same_load
        + f"\n\nMachine: {m['cpu']}, {m['usable_cpus']} usable cores (shared with other jobs; "
        f"load average {m['load_average']}), torch {m['torch']}, {s['threads']} thread(s). "
        "Tiny random-weight ReSCU-Net (input 32, 8 base filters) answering with an oracle; "
        "default propagation settings (motion auto).\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--objects", type=int, default=50)
    ap.add_argument("--ref-frames", type=int, default=50, help="frames of the in-memory run")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per run")
    ap.add_argument("--dir", default=None, help="folder for the movie (default: temporary)")
    ap.add_argument("--keep", action="store_true", help="keep the movie file")
    ap.add_argument("--json", default=None, help="write every number here")
    ap.add_argument("--markdown", default=None, help="write the table here")
    ap.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    ap.add_argument(
        "--pairs",
        type=int,
        default=2,
        help="lazy/in-memory runs over the first --ref-frames frames, alternated (throughput "
        "under the same load)",
    )
    ap.add_argument(
        "--child", choices=("lazy", "lazy-head", "memory"), default=None, help=argparse.SUPPRESS
    )
    ap.add_argument("--movie", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tracks", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        args.mode = args.child
        print(json.dumps(child(args)))
        return 0
    if args.quick:
        args.frames, args.size, args.objects, args.ref_frames, args.pairs = 6, 128, 4, 3, 1
        args.threads = 1
    args.ref_frames = min(args.ref_frames, args.frames)
    folder = Path(tempfile.mkdtemp(prefix="rescunet-large-", dir=args.dir))
    try:
        movie, tracks_file = folder / "movie.tif", folder / "tracks.npy"
        t0 = time.perf_counter()
        tracks = write_big_movie(movie, args.frames, args.size, args.objects)
        write_s = time.perf_counter() - t0
        np.save(tracks_file, tracks)
        size = movie.stat().st_size
        print(f"wrote {movie} ({size / 1e9:.2f} GB) in {write_s:.1f} s", flush=True)
        lazy = _run_child("lazy", args, movie, tracks_file)
        print(f"lazy: {lazy}", flush=True)
        pairs: list[dict[str, Any]] = []
        for _ in range(max(1, args.pairs)):  # alternated: both see the same machine load
            for mode in ("lazy-head", "memory"):
                pairs.append(_run_child(mode, args, movie, tracks_file))
                print(f"{mode}: {pairs[-1]}", flush=True)
        ref = max((p for p in pairs if p["mode"] == "memory"), key=lambda p: p["peak_rss_mb"])
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    result = {
        "settings": {
            "frames": args.frames,
            "size": args.size,
            "objects": args.objects,
            "ref_frames": args.ref_frames,
            "threads": args.threads,
            "quick": args.quick,
        },
        "file_bytes": size,
        "write_s": write_s,
        "lazy": lazy,
        "in_memory": ref,
        "pairs": pairs,
        "head_object_frames_per_s": {
            mode: float(np.median([p["object_frames_per_s"] for p in pairs if p["mode"] == mode]))
            for mode in ("lazy-head", "memory")
        },
        "machine": machine_info(),
    }
    head = result["head_object_frames_per_s"]
    result["throughput_ratio"] = head["lazy-head"] / head["memory"]
    table = markdown(result)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
