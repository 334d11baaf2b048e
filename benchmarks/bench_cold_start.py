"""Cold start of ``rescunet-ij propagate --next-frame-only``: total wall time and its breakdown.

A macro or a script that propagates frame by frame starts a fresh ``rescunet-ij`` process for every
frame, so each run pays for Python's start, the imports, opening the model and reading the movie
before the one frame of prediction. This script runs the real command line in subprocesses on a
256x256 synthetic movie with 5 objects (``rescunet_ij.sample_data.synthetic_movie``, seeds on
frame 1) and a model file with the default architecture (base filters 64, 31.1 M parameters,
random weights: speed does not depend on them; the objects are then lost, which skips a little
outline work).

Two kinds of runs, each repeated (``--repeats``), medians reported:

* **wall**: ``python -m rescunet_ij propagate movie.tif seeds.zip --model m.rescunet -o out.zip
  --next-frame-only --overwrite`` timed from spawn to exit (what the user waits for).
* **breakdown**: the same command line through ``rescunet_ij.cli.main`` under ``python -X
  importtime``, with the api functions the command calls wrapped by timers: ``startup`` (spawn
  until the driver runs: interpreter and site), ``imports`` (``rescunet_ij.cli`` and
  ``rescunet_ij.api``), ``read`` (``read_movie`` + ``read_outlines``), ``model load``
  (``load_model``), ``predict`` (``propagate`` without the model load), ``write``
  (``write_outlines``) and ``other`` (argument checks, progress bar, exit). Every import that
  happens inside a phase is summed from the ``-X importtime`` lines and reported as that phase's
  ``of which imports``.

``--tree DIR`` runs the command from another checkout (``PYTHONPATH=DIR``), e.g. a ``git worktree``
of an older commit, to measure before/after with the same script and the same files.

Usage::

    python benchmarks/bench_cold_start.py                     # 5 repetitions, ~1 min
    python benchmarks/bench_cold_start.py --repeats 7 --json benchmarks/results/cold_start.json \
        --markdown benchmarks/results/cold_start.md
    python benchmarks/bench_cold_start.py --tree /tmp/coldstart-before --label before
    python benchmarks/bench_cold_start.py --quick   # tiny model, 1 repetition (smoke test)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_core import machine_info  # beside this script

REPO = Path(__file__).resolve().parents[1]
PHASES = ("startup", "imports", "read", "model load", "predict", "write", "other")

# Writes the movie, the seed outlines and a model file with the tree under test.
_FIXTURE = r"""
import sys, torch
from pathlib import Path
from rescunet_ij import api
from rescunet_ij.config import ModelConfig, NormalizationConfig
from rescunet_ij.demo import labels_to_outlines
from rescunet_ij.io.checkpoint import save_model
from rescunet_ij.io.tiff import write_movie
from rescunet_ij.model import build_model
from rescunet_ij.sample_data import synthetic_movie
out, size, n_obj, base = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sim = synthetic_movie(n_frames=4, shape=(size, size), n_objects=n_obj, seed=1)
movie = api.as_movie(sim.images, dims="tyx")
write_movie(out / "movie.tif", movie)
api.write_outlines(out / "seeds.zip", labels_to_outlines(sim.labels, range(0, 1)), movie)
cfg = ModelConfig(base_filters=base)
torch.manual_seed(0)
save_model(out / "model.rescunet", build_model(cfg), cfg, NormalizationConfig())
"""

# Runs the real CLI with the api functions it calls wrapped by timers; markers go to stderr,
# interleaved with the -X importtime lines so imports can be attributed to phases.
_DRIVER = r"""
import sys, time
def mark(what):
    print(f"@@mark {what} {time.time():.6f}", file=sys.stderr, flush=True)
mark("driver")
import rescunet_ij.cli as cli
from rescunet_ij import api
import rescunet_ij.api._training as training
mark("imported")
def timed(name, fn):
    def wrapper(*a, **k):
        mark("begin " + name)
        try:
            return fn(*a, **k)
        finally:
            mark("end " + name)
    return wrapper
for name in ("read_movie", "read_outlines", "propagate", "write_outlines"):
    setattr(api, name, timed(name, getattr(api, name)))
training.load_model = timed("load_model", training.load_model)
rc = cli.main(sys.argv[1:])
mark("done")
sys.exit(rc)
"""


def _env(tree: Path, threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env["OMP_NUM_THREADS"] = str(threads)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def make_fixture(folder: Path, tree: Path, *, size: int, objects: int, base_filters: int) -> None:
    """Write ``movie.tif``, ``seeds.zip`` and ``model.rescunet`` into ``folder``."""
    subprocess.run(
        [sys.executable, "-c", _FIXTURE, str(folder), str(size), str(objects), str(base_filters)],
        check=True,
        env=_env(tree, 2),
        cwd=folder,
    )


def _cli_args(folder: Path) -> list[str]:
    return [
        "propagate",
        str(folder / "movie.tif"),
        str(folder / "seeds.zip"),
        "--model",
        str(folder / "model.rescunet"),
        "-o",
        str(folder / "out.zip"),
        "--next-frame-only",
        "--overwrite",
    ]


def run_wall(folder: Path, tree: Path, threads: int) -> float:
    """Seconds from spawn to exit of one real ``python -m rescunet_ij propagate`` run."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rescunet_ij", *_cli_args(folder)],
        capture_output=True,
        text=True,
        env=_env(tree, threads),
        cwd=folder,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"the command failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall


def parse_breakdown(stderr: str, t_spawn: float, t_exit: float) -> dict[str, Any]:
    """Phase times (s) and the import time (s) inside each phase from a driver run's stderr."""
    marks: list[tuple[str, float]] = []
    imports_between: list[float] = []  # import seconds since the previous mark
    top_modules: list[tuple[float, str]] = []
    pending = 0.0
    for line in stderr.splitlines():
        if line.startswith("@@mark "):
            what, stamp = line[7:].rsplit(" ", 1)
            marks.append((what, float(stamp)))
            imports_between.append(pending)
            pending = 0.0
        elif line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|", 2)
            if name.strip() and not name[1:].startswith(" ") and cumulative.strip().isdigit():
                us = int(cumulative)  # a top-level import: it holds all nested ones
                pending += us / 1e6
                top_modules.append((us / 1e6, name.strip()))
    imports_between.append(pending)  # after the last mark (exit)
    at = dict((w, t) for w, t in marks)

    def span(a: str, b: str) -> tuple[float, float]:
        i, j = [w for w, _ in marks].index(a), [w for w, _ in marks].index(b)
        return at[b] - at[a], sum(imports_between[i + 1 : j + 1])

    phases: dict[str, dict[str, float]] = {}
    phases["startup"] = {"s": at["driver"] - t_spawn, "imports_s": imports_between[0]}
    s, i = span("driver", "imported")
    phases["imports"] = {"s": s, "imports_s": i}
    read = [
        span("begin read_movie", "end read_movie"),
        span("begin read_outlines", "end read_outlines"),
    ]
    phases["read"] = {"s": sum(x[0] for x in read), "imports_s": sum(x[1] for x in read)}
    load = span("begin load_model", "end load_model")
    phases["model load"] = {"s": load[0], "imports_s": load[1]}
    prop = span("begin propagate", "end propagate")
    phases["predict"] = {"s": prop[0] - load[0], "imports_s": prop[1] - load[1]}
    write = span("begin write_outlines", "end write_outlines")
    phases["write"] = {"s": write[0], "imports_s": write[1]}
    total = t_exit - t_spawn
    known = sum(p["s"] for p in phases.values())
    all_imports = sum(imports_between)
    phases["other"] = {
        "s": total - known,
        "imports_s": all_imports - sum(p["imports_s"] for p in phases.values()),
    }
    first_call = min(t for w, t in marks if w.startswith("begin "))
    other_parts = {  # where "other" goes: checks and set-up, gaps between calls, printing, exit
        "before_first_call_s": first_call - at["imported"],
        "after_last_call_s": at["done"] - at["end write_outlines"],
        "exit_s": t_exit - at["done"],
    }
    top_modules.sort(reverse=True)
    return {
        "total_s": total,
        "phases": phases,
        "other_parts": other_parts,
        "imports_total_s": all_imports,
        "top_imports": top_modules[:12],
    }


def run_breakdown(folder: Path, tree: Path, threads: int) -> dict[str, Any]:
    """One driver run under ``-X importtime``: phase times and the imports inside them."""
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _DRIVER, *_cli_args(folder)],
        capture_output=True,
        text=True,
        env=_env(tree, threads),
        cwd=folder,
    )
    t1 = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"the driver failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return parse_breakdown(proc.stderr, t0, t1)


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the fixture, then interleaved wall and breakdown runs; medians per phase."""
    tree = Path(args.tree).resolve() if args.tree else REPO
    with tempfile.TemporaryDirectory(prefix="bench_cold_start_") as tmp:
        folder = Path(tmp)
        make_fixture(
            folder, tree, size=args.size, objects=args.objects, base_filters=args.base_filters
        )
        model_mb = (folder / "model.rescunet").stat().st_size / 1e6
        # one untimed run warms the page cache (model file, shared libraries)
        run_wall(folder, tree, args.threads)
        walls, breakdowns = [], []
        for _ in range(args.repeats):  # interleaved, so a busy spell hits both kinds alike
            walls.append(run_wall(folder, tree, args.threads))
            breakdowns.append(run_breakdown(folder, tree, args.threads))
    phases = {
        name: {
            "s": _median([b["phases"][name]["s"] for b in breakdowns]),
            "imports_s": _median([b["phases"][name]["imports_s"] for b in breakdowns]),
        }
        for name in PHASES
    }
    last_imports = breakdowns[-1]["top_imports"]
    return {
        "label": args.label,
        "tree": str(tree),
        "machine": machine_info(),
        "load_average_at_end": os.getloadavg(),
        "settings": {
            "movie": f"{args.size}x{args.size}, 4 frames, {args.objects} objects",
            "model_base_filters": args.base_filters,
            "model_file_mb": round(model_mb, 1),
            "repeats": args.repeats,
            "omp_threads": args.threads,
        },
        "wall_s": {"median": _median(walls), "min": min(walls), "all": walls},
        "breakdown_total_s": _median([b["total_s"] for b in breakdowns]),
        "imports_total_s": _median([b["imports_total_s"] for b in breakdowns]),
        "phases": phases,
        "other_parts": {
            k: _median([b["other_parts"][k] for b in breakdowns])
            for k in breakdowns[0]["other_parts"]
        },
        "top_imports_last_run": [[round(s, 3), name] for s, name in last_imports],
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table."""
    m, s = report["machine"], report["settings"]
    lines = [
        f"### Cold start: `propagate --next-frame-only` ({report['label']})",
        "",
        f"{s['movie']}; model base filters {s['model_base_filters']} ({s['model_file_mb']} MB); "
        f"median of {s['repeats']} runs, OMP_NUM_THREADS={s['omp_threads']}. Machine: {m['cpu']}, "
        f"{m['usable_cpus']} usable cores, torch {m.get('torch')}; load average at the end "
        f"{report['load_average_at_end'][0]:.2f} (other jobs share the cores).",
        "",
        f"**Wall (spawn to exit): {report['wall_s']['median']:.2f} s** "
        f"(min {report['wall_s']['min']:.2f} s)",
        "",
        "| phase | s | of which imports (s) |",
        "|---|---:|---:|",
    ]
    for name in PHASES:
        p = report["phases"][name]
        lines.append(f"| {name} | {p['s']:.2f} | {p['imports_s']:.2f} |")
    lines.append(
        f"| **total (under -X importtime)** | **{report['breakdown_total_s']:.2f}** | "
        f"**{report['imports_total_s']:.2f}** |"
    )
    o = report["other_parts"]
    lines += [
        "",
        f"other = {o['before_first_call_s']:.2f} s before the first api call (argument checks), "
        f"{o['after_last_call_s']:.2f} s after the write (messages), {o['exit_s']:.2f} s "
        "interpreter exit, and the gaps between calls.",
    ]
    lines += [
        "",
        "Slowest top-level imports (last run): "
        + ", ".join(f"`{n}` {t:.2f} s" for t, n in report["top_imports_last_run"][:8]),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, measure, print and save the report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each kind")
    p.add_argument("--size", type=int, default=256, help="frame height and width")
    p.add_argument("--objects", type=int, default=5)
    p.add_argument("--base-filters", type=int, default=64, help="model architecture")
    p.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the command")
    p.add_argument("--tree", help="checkout to run the command from (PYTHONPATH); default: this")
    p.add_argument("--label", default="this tree", help="name of the measured version")
    p.add_argument("--quick", action="store_true", help="tiny model, 1 repetition (smoke test)")
    p.add_argument("--json", type=Path, help="write every number here")
    p.add_argument("--markdown", type=Path, help="write the table here")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.size, args.base_filters = 1, 64, 4
    report = measure(args)
    md = markdown(report)
    print(md)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(md, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
