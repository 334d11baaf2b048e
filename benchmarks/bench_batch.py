r"""Throughput of ``rescunet-ij propagate-batch`` (Dask) against a shell loop of ``propagate``.

The same movies (synthetic, :func:`rescunet_ij.sample_data.synthetic_movie`) are propagated four
ways, each into its own output folder, and timed from the command's start to its end:

* **shell loop**: one ``rescunet-ij propagate`` command per movie, one after the other (what a
  lab's script does today: every command starts Python, imports torch and loads the model);
* **propagate-batch --in-process**: every movie in one process, no Dask (what one task of a SLURM
  array does with several rows);
* **propagate-batch --workers 1** and **--workers 2**: a Dask ``LocalCluster`` of that many worker
  processes (its start-up is part of the time), each loading the model once.

Reported: wall seconds, movies/s and object-frames/s (objects x propagated frames), and the
speed-up over the shell loop; whether every way wrote the same ROIs. The model (input 64, base
filters 32, L=1: the CPU-sized network the README recommends) is trained first for a few epochs on
another synthetic movie (not timed; ``--model FILE`` reuses a model file instead), and movies are
propagated with ``--keep-going``, so the objects are followed through every frame. ``--quick``
uses a tiny network with random weights biased towards foreground instead (no training). Threads:
each ``propagate`` command and the in-process run use torch's default threads (all cores); Dask
workers run one thread each (Dask sets ``OMP_NUM_THREADS=1`` in its workers).

Usage::

    python benchmarks/bench_batch.py                       # 8 movies, ~5 min on 2 cores
    python benchmarks/bench_batch.py --markdown benchmarks/results/batch_cpu.md \\
        --json benchmarks/results/batch_cpu.json
    python benchmarks/bench_batch.py --quick --json out.json   # tiny; used by the smoke test
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import _loadavg, machine_info  # noqa: E402  (beside this script)

from rescunet_ij.io.atomic import atomic_write_text  # noqa: E402

FULL: dict[str, Any] = {
    "movies": 8,
    "frames": 16,
    "size": 160,
    "objects": 5,
    "input_size": 64,
    "base_filters": 32,
    "concatenation_level": 1,
    "train_epochs": 6,
}
QUICK: dict[str, Any] = {
    "movies": 2,
    "frames": 3,
    "size": 64,
    "objects": 2,
    "input_size": 32,
    "base_filters": 4,
    "concatenation_level": 1,
    "train_epochs": 0,  # random weights
}
MODES = ("loop", "in_process", "workers_1", "workers_2")
LABELS = {
    "loop": "shell loop of `rescunet-ij propagate`",
    "in_process": "`propagate-batch --in-process`",
    "workers_1": "`propagate-batch --workers 1` (Dask)",
    "workers_2": "`propagate-batch --workers 2` (Dask)",
}


def make_model(root: Path, s: dict[str, Any]) -> Path:
    """A model file: trained for ``train_epochs`` on a synthetic movie, or random weights."""
    from rescunet_ij import api

    architecture = {
        "input_size": s["input_size"],
        "base_filters": s["base_filters"],
        "concatenation_level": s["concatenation_level"],
    }
    if s["train_epochs"]:
        sim = api.synthetic_movie(20, (128, 128), n_objects=5, seed=7)
        mv = api.as_movie(sim.images, dims="tyx")
        tset = api.make_training_set(mv, api.outlines_from_labels(sim.labels), root / "training")
        result = api.train(
            tset,
            root / "model.rescunet",
            epochs=s["train_epochs"],
            seed=0,
            device="cpu",
            **architecture,
        )
        return result.model_path
    import torch

    from rescunet_ij.config import ModelConfig, NormalizationConfig
    from rescunet_ij.io.checkpoint import save_model
    from rescunet_ij.model import build_model

    torch.manual_seed(0)
    mc = ModelConfig(**architecture)
    net = build_model(mc)
    with torch.no_grad():  # random weights, biased towards foreground: objects are followed
        net.head.bias.copy_(torch.tensor([0.0, 0.5]))
    return save_model(root / "model.rescunet", net, mc, NormalizationConfig())


def make_movies(root: Path, s: dict[str, Any]) -> None:
    """The movies and their seed RoiSets (frame 1's true outlines)."""
    from rescunet_ij import api

    for i in range(s["movies"]):
        sim = api.synthetic_movie(
            s["frames"], (s["size"], s["size"]), n_objects=s["objects"], seed=100 + i
        )
        mv = api.as_movie(sim.images, dims="tyx")
        api.write_movie(root / f"movie{i + 1}.tif", mv)
        seeds = api.outlines_from_labels(sim.labels, frames=[0])
        api.write_outlines(root / f"seeds{i + 1}.zip", seeds, mv)


def write_manifest(root: Path, mode: str, n: int) -> Path:
    """One manifest per way of running, each writing into its own folder."""
    lines = ["movie,seeds,output"]
    lines += [f"movie{i}.tif,seeds{i}.zip,out_{mode}/movie{i}.zip" for i in range(1, n + 1)]
    path = root / f"manifest_{mode}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _command() -> list[str]:
    exe = Path(sys.executable).with_name("rescunet-ij")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "rescunet_ij"]


def _env(threads: int | None) -> dict[str, str]:
    """The commands' environment: ``OMP_NUM_THREADS`` set when ``--threads`` is given."""
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_loop(root: Path, model: Path, n: int, threads: int | None) -> float:
    """A bash ``for`` loop of ``rescunet-ij propagate`` commands; its wall seconds."""
    cmd = " ".join(_command())
    script = (
        "set -e\n"
        f"for i in $(seq 1 {n}); do\n"
        f'  {cmd} propagate movie$i.tif seeds$i.zip --model "{model}" '
        "-o out_loop/movie$i.zip --keep-going --device cpu\n"
        "done\n"
    )
    (root / "out_loop").mkdir()
    start = time.perf_counter()
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env=_env(threads),
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"the shell loop failed:\n{proc.stderr[-3000:]}")
    return seconds


def run_batch(
    root: Path, model: Path, mode: str, n: int, threads: int | None
) -> tuple[float, list[dict[str, str]]]:
    """``rescunet-ij propagate-batch`` as a user runs it; wall seconds and its results table."""
    manifest = write_manifest(root, mode, n)
    where = ["--in-process"] if mode == "in_process" else ["--workers", mode.split("_")[1]]
    args = [*_command(), "propagate-batch", str(manifest), "--model", str(model)]
    start = time.perf_counter()
    proc = subprocess.run(
        [*args, *where, "--keep-going", "--device", "cpu"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env=_env(threads),
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"propagate-batch ({mode}) failed:\n{proc.stderr[-3000:]}")
    with manifest.with_name(f"{manifest.stem}.results.csv").open(newline="") as fh:
        return seconds, list(csv.DictReader(fh))


def same_rois(root: Path, mode: str, n: int) -> int:
    """How many movies' ROIs differ from the shell loop's (0: all the same)."""
    import numpy as np

    from rescunet_ij import api

    differ = 0
    for i in range(1, n + 1):
        mv = api.read_movie(root / f"movie{i}.tif")
        a = api.read_outlines(root / "out_loop" / f"movie{i}.zip", mv)
        b = api.read_outlines(root / f"out_{mode}" / f"movie{i}.zip", mv)
        if [(o.object_id, o.frame) for o in a] != [(o.object_id, o.frame) for o in b] or any(
            not np.array_equal(x.polygon, y.polygon) for x, y in zip(a, b)
        ):
            differ += 1
    return differ


def measure(
    s: dict[str, Any],
    modes: tuple[str, ...],
    keep: Path | None,
    model: Path | None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Every way of running, on the same data; seconds, rates and consistency per way."""
    from rescunet_ij import api

    root = Path(tempfile.mkdtemp(prefix="bench-batch-")) if keep is None else keep
    root.mkdir(parents=True, exist_ok=True)
    try:
        model = make_model(root, s) if model is None else model.resolve()
        info = api.model_info(model)
        make_movies(root, s)
        n = s["movies"]
        results: dict[str, Any] = {}
        object_frames = None
        for mode in modes:
            if mode == "loop":
                seconds, rows = run_loop(root, model, n, threads), None
            else:
                seconds, rows = run_batch(root, model, mode, n, threads)
                done = sum(int(r["predicted"]) for r in rows)
                object_frames = done if object_frames is None else object_frames
            results[mode] = {"seconds": round(seconds, 3)}
            if rows is not None:
                results[mode]["movie_seconds"] = [float(r["seconds"]) for r in rows]
                results[mode]["workers"] = sorted({r["worker"] for r in rows})
                results[mode]["statuses"] = sorted({r["status"] for r in rows})
            print(f"{LABELS[mode]}: {seconds:.1f} s", flush=True)
        for mode, r in results.items():
            r["movies_per_s"] = round(n / r["seconds"], 4)
            if object_frames is not None:
                r["object_frames_per_s"] = round(object_frames / r["seconds"], 3)
            if "loop" in results:
                r["speedup_vs_loop"] = round(results["loop"]["seconds"] / r["seconds"], 3)
                r["movies_differing_from_loop"] = same_rois(root, mode, n) if mode != "loop" else 0
        return {
            "object_frames": object_frames,
            "results": results,
            "model": {k: info[k] for k in ("model_config", "epochs_trained")},
        }
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


def markdown(report: dict[str, Any]) -> str:
    """The results as a markdown table with the settings and the machine."""
    s, m, mc = report["settings"], report["machine"], report["model"]["model_config"]
    size = mc["input_size"]
    size = "x".join(map(str, size)) if isinstance(size, list) else size
    lines = [
        "# propagate-batch throughput" + (" (QUICK settings)" if report["quick"] else ""),
        "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPU(s), torch {m.get('torch')}, "
        f"GPU: {m.get('gpu') or 'none'}; shared with other jobs. Date: {report['date']}. "
        f"Load average (1/5/15 min) before {report['load_before']}, after "
        f"{report['load_after']}.",
        "",
        f"Work: {s['movies']} movies of {s['frames']} frames, {s['size']}x{s['size']} px, "
        f"{s['objects']} objects each ({report['object_frames']} object-frames predicted); "
        f"network input {size}, base filters {mc['base_filters']}, "
        f"L={mc['concatenation_level']}, "
        + (
            f"trained {report['model']['epochs_trained']} epochs"
            if report["model"]["epochs_trained"]
            else "random weights"
        )
        + "; --keep-going, CPU.",
        "",
        "| way | wall s | movies/s | object-frames/s | vs shell loop | same ROIs as the loop |",
        "|---|---|---|---|---|---|",
    ]
    for mode, r in report["results"].items():
        differ = r.get("movies_differing_from_loop")
        same = (
            ""
            if mode == "loop" or differ is None
            else ("yes" if not differ else f"{differ} differ")
        )
        lines.append(
            f"| {LABELS[mode]} | {r['seconds']:.1f} | {r['movies_per_s']:.3f} | "
            f"{r.get('object_frames_per_s', float('nan')):.1f} | "
            f"{r.get('speedup_vs_loop', float('nan')):.2f}x | {same} |"
        )
    lines += [
        "",
        "Wall time from the command's start to its end: Python start-up, torch import, model "
        "loading, cluster start-up (Dask) and writing are included. The shell loop pays the "
        "start-up once per movie; propagate-batch once per worker. Each `propagate` command and "
        "the in-process run use "
        + (
            f"{report['threads']} thread(s) (OMP_NUM_THREADS)"
            if report.get("threads")
            else "torch's default threads (all cores)"
        )
        + "; Dask workers one thread each. Per GPU: not measured (no GPU on this machine).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table and optionally save it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    parser.add_argument("--movies", type=int, help="number of movies")
    parser.add_argument("--frames", type=int, help="frames per movie")
    parser.add_argument(
        "--only", action="append", choices=MODES, help="run only these ways (repeatable)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="OMP_NUM_THREADS for the loop's commands and --in-process (default: torch's own)",
    )
    parser.add_argument("--model", type=Path, help="use this model file (default: train one)")
    parser.add_argument("--keep", type=Path, help="keep the movies and outputs in this folder")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    args = parser.parse_args(argv)
    s = dict(QUICK if args.quick else FULL)
    for key in ("movies", "frames"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    modes = tuple(m for m in MODES if not args.only or m in args.only)
    report: dict[str, Any] = {
        "quick": args.quick,
        "settings": s,
        "machine": machine_info(),
        "date": date.today().isoformat(),
        "load_before": _loadavg(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "threads": args.threads,
    }
    report.update(measure(s, modes, args.keep, args.model, args.threads))
    report["load_after"] = _loadavg()
    table = markdown(report)
    print(table)
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
    if args.markdown:
        atomic_write_text(args.markdown, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
