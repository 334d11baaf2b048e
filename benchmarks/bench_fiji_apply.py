"""*Apply To Current Frame* from Fiji: the Groovy command's call to the ROIs in the ROI Manager.

Setting: the model file of ``bench_service.py`` (input 64, concatenation level 1, base filters 64,
~31 M parameters; random weights plus a hand-set path so that the masks follow the objects) and
the same 512x512 synthetic movie with 20 objects. A real ``rescunet-ij serve`` process and a real
ImageJ 1.x + Groovy 4 JVM (the runner of ``tests/fiji``, which stands in only for Fiji's SciJava
layer: ``#@`` parameters and ``run(...)``) on the display of ``xvfb-run``. The JVM opens the
movie, sets the frame on screen, loads the previous frame's 20 outlines into the ROI Manager and
runs ``run("Apply To Current Frame")`` (3 warm-up runs: the model's upload and the first calls;
then ``--repeats`` timed runs). Timed per run: from the command's start to its return, the ROIs
in the manager (the runner's clock around the script). For comparison, the same prediction in
process (``api.propagate(..., next_only=True)``) with the same model file.

What the command does on each call: read the settings, hash the model file (the service knows it
by its content), cut the two frames out of the image (Duplicator) and serialize them as TIFF,
encode the ROI Manager's ROIs as a RoiSet, POST /v1/apply, decode the answer's RoiSet and replace
the ROIs in the manager.

Usage::

    xvfb-run -a python benchmarks/bench_fiji_apply.py [--device cpu|cuda] [--repeats 10]
    xvfb-run -a python benchmarks/bench_fiji_apply.py --quick     # 128x128, 4 objects, f=8

Needs java, ``/usr/share/java/ij.jar`` and the Groovy 4 jars in ``.cache/groovy4`` (``bash
scripts/setup.sh test`` installs them). Results go to ``--out`` (default
``benchmarks/results/bench_fiji_apply.json``; ``--quick`` writes only when ``--out`` is given).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "fiji"))  # the runner's harness
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_service  # noqa: E402  (beside this script: the model file, the server, the machine)
from harness import run_plan, settings, skip_reason  # noqa: E402

from rescunet_ij import api  # noqa: E402
from rescunet_ij.config import ModelConfig  # noqa: E402

DEFAULT_OUT = REPO / "benchmarks" / "results" / "bench_fiji_apply.json"


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "median_ms": round(statistics.median(ms), 1),
        "p90_ms": round(ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))], 1),
        "min_ms": round(ms[0], 1),
        "n": len(ms),
    }


def run(args: argparse.Namespace) -> dict:
    """Time the command and the in-process prediction; the report as a dict."""
    reason = skip_reason()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    mc = ModelConfig(
        input_size=args.input_size, base_filters=args.base_filters, concatenation_level=1
    )
    sim = api.synthetic_movie(
        3, (args.size, args.size), n_objects=args.objects, radius=(9.0, 13.0), seed=3
    )
    movie = api.as_movie(sim.images, dims="tyx")
    seeds = api.outlines_from_labels(sim.labels, [1])  # frame 2 (0-based 1) predicts frame 3
    with tempfile.TemporaryDirectory(prefix="bench-fiji-apply-") as tmp_name:
        tmp = Path(tmp_name)
        model_path = bench_service.make_model_file(tmp / "models", mc, "threshold")
        movie_path = api.write_movie(tmp / "movie.tif", movie)
        seeds_path = api.write_outlines(tmp / "seeds.zip", seeds, movie)

        model = api.load_model(model_path, args.device)
        config = api.propagate_config(device=args.device)
        in_process = []
        for i in range(args.warmup + args.repeats):
            t0 = time.perf_counter()
            result = api.propagate(movie, seeds, model, next_only=True, config=config)
            if i >= args.warmup:
                in_process.append(time.perf_counter() - t0)
        n_predicted = len(result.predicted)

        server = bench_service.Server(tmp / "models", args.device, tmp / "server.log")
        try:
            url = server.start()
            steps = [settings(url, model_path), {"op": "open", "path": str(movie_path),
                                                 "position": [1, 1, 3]}]  # fmt: skip
            for _ in range(args.warmup + args.repeats):
                steps.append({"op": "rm_open", "path": str(seeds_path)})
                steps.append({"op": "run", "label": "Apply To Current Frame", "wait": False})
            steps.append({"op": "rm_save", "path": str(tmp / "after.zip")})
            results = run_plan(steps, tmp / "home", timeout=1800)
        finally:
            server.stop()
        runs = [r for s, r in zip(steps, results) if s.get("label") == "Apply To Current Frame"]
        failed = [r for r in runs if not r.get("ok", True)]
        if failed:
            raise SystemExit(f"the command failed: {failed[0].get('error')}\n{failed[0]['log']}")
        command = [r["seconds"] for r in runs[args.warmup :]]
        after = api.read_outlines(tmp / "after.zip", movie)
    in_rm = sorted({o.frame for o in after})
    report = {
        "benchmark": "bench_fiji_apply",
        "date": date.today().isoformat(),
        "machine": bench_service.machine(args.device),
        "setting": {
            "size": args.size,
            "objects": args.objects,
            "model": mc.model_dump(),
            "warmup": args.warmup,
            "repeats": args.repeats,
        },
        "command": _stats(command),
        "in_process": _stats(in_process),
        "overhead_ms": round((statistics.median(command) - statistics.median(in_process)) * 1000),
        "predicted_in_process": n_predicted,
        "rois_after": len(after),
        "frames_after": [f + 1 for f in in_rm],
    }
    return report


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print and save the report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--objects", type=int, default=20)
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--base-filters", type=int, default=64)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="128x128, 4 objects, f=8, 3 repeats")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.objects, args.base_filters, args.repeats, args.warmup = 128, 4, 8, 3, 1
    report = run(args)
    c, a = report["command"], report["in_process"]
    print(f"Apply To Current Frame, {args.objects} objects, {args.size}x{args.size}:")
    print(f"  Fiji command (call -> ROIs in the manager): median {c['median_ms']} ms, "
          f"p90 {c['p90_ms']} ms")  # fmt: skip
    print(f"  in process (api.propagate next_only):     median {a['median_ms']} ms, "
          f"p90 {a['p90_ms']} ms")  # fmt: skip
    print(f"  the command's own cost (medians): {report['overhead_ms']} ms")
    print(f"  ROIs in the manager after the last run: {report['rois_after']} "
          f"(frames {report['frames_after']})")  # fmt: skip
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
