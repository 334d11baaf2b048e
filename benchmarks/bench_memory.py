"""Calibration of rescunet_ij.model.memory: estimated against measured memory of real passes (CPU).

For several architectures (base filters, input size, concatenation level, dropout) and batch
sizes this runs real passes of a :class:`~rescunet_ij.model.ReSCUNet` on the CPU and measures how
much the process's peak resident memory grows during one pass:

* **inference**: ``forward`` under ``torch.inference_mode()`` in eval mode (what propagation does);
* **training**: forward, weighted loss, backward and an Adam step, after ``zero_grad(set_to_none=
  True)`` (what the training loop does), with the optimizer's state already created by a warm-up
  step.

How memory is measured: glibc is told to serve every block above 64 KiB with ``mmap`` and to give
it back on ``free`` (``mallopt``), so the resident set follows the live tensors; the kernel's peak
counter is reset (``/proc/self/clear_refs``) right before the pass and read (``VmHWM``) right
after. The measured total is that growth plus what already exists before the pass (the weights;
in training also the gradients and Adam's two moments). Per-sample bytes are the slope between
the smallest and the largest batch.

Reported per architecture: measured and estimated bytes per sample and their ratio, and for each
batch the ratio of the estimated total (weights and batch) to the measured total. The module's
calibration factors are chosen so that every total ratio is between 1.0 and 2.0 (safe side,
within 2x); with ``--check`` the script exits with status 1 otherwise. Needs Linux with
glibc. Run it with ``OMP_NUM_THREADS=1`` to reproduce the calibration; more threads use a little
more workspace.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_memory.py --check   # calibration grid, ~1-2 min
    python benchmarks/bench_memory.py --markdown out.md --json out.json
    python benchmarks/bench_memory.py --quick --check     # two small architectures (seconds)
    python benchmarks/bench_memory.py --spec '{"base_filters": 32, "input_size": 96}'
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from bench_core import machine_info  # beside this script

from rescunet_ij.config import ModelConfig
from rescunet_ij.io.atomic import atomic_write_text
from rescunet_ij.model import build_model, estimate_memory, parameter_count

GRID: list[dict[str, Any]] = [
    {"base_filters": 8, "input_size": 128, "concatenation_level": 1, "dropout": True},
    {"base_filters": 16, "input_size": 128, "concatenation_level": 1, "dropout": True},
    {"base_filters": 16, "input_size": 128, "concatenation_level": 0, "dropout": False},
    {"base_filters": 16, "input_size": 128, "concatenation_level": 4, "dropout": True},
    {"base_filters": 32, "input_size": 64, "concatenation_level": 1, "dropout": True},
    {"base_filters": 16, "input_size": 256, "concatenation_level": 2, "dropout": True},
    {"base_filters": 64, "input_size": 64, "concatenation_level": 1, "dropout": True},
]
QUICK: list[dict[str, Any]] = [
    {"base_filters": 8, "input_size": 128, "concatenation_level": 1, "dropout": True},
    {"base_filters": 16, "input_size": 64, "concatenation_level": 0, "dropout": False},
]
BATCHES = (1, 8)
_MMAP_THRESHOLD, _TRIM_THRESHOLD = -3, -1  # mallopt parameters (glibc malloc.h)


def prepare_allocator() -> None:
    """Make freed tensor memory leave the resident set at once (glibc only)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError as exc:
        raise SystemExit(f"bench_memory.py needs Linux with glibc ({exc})") from exc
    libc.mallopt(_MMAP_THRESHOLD, 64 * 1024)
    libc.mallopt(_TRIM_THRESHOLD, 128 * 1024)


def _status_bytes(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise SystemExit(f"/proc/self/status has no {key} line: bench_memory.py needs Linux")


def peak_growth(step) -> int:
    """Bytes the resident set grew to, above its level before ``step()``, during ``step()``."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")  # reset the peak (VmHWM) to the current resident set
    before = _status_bytes("VmRSS:")
    step()
    return _status_bytes("VmHWM:") - before


def _pass(cfg: ModelConfig, batch: int, training: bool):
    """A function running one pass of a fresh network, ready (warmed up) to be measured."""
    torch.manual_seed(0)
    net = build_model(cfg)
    h, w = cfg.input_size
    image = torch.rand(batch, cfg.in_channels, h, w)
    mask = (torch.rand(batch, 1, h, w) > 0.5).float()
    target = mask[:, 0].long()
    weight = torch.rand(batch, h, w)
    if not training:
        net.eval()

        def infer() -> None:
            with torch.inference_mode():
                net(image, mask)

        infer()
        return infer
    net.train()
    try:  # fused Adam, as the training loop uses where torch has it
        opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)
    except (RuntimeError, TypeError, ValueError):
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(image, mask), target, reduction="none")
        (loss * weight).mean().backward()
        opt.step()

    train_step()  # creates Adam's moments, as any step after the first finds them
    return train_step


def measure(spec: dict[str, Any], training: bool) -> dict[str, Any]:
    """Measured and estimated memory of one architecture, for inference or training."""
    cfg = ModelConfig(**spec)
    est = estimate_memory(cfg, training=training)
    weights = parameter_count(cfg) * 4
    # Before the pass: the weights (training: also the warm-up step's gradients, freed and
    # allocated again during the pass, and Adam's two moments).
    resident = weights * (4 if training else 1)
    grown, totals = {}, {}
    for b in BATCHES:
        step = _pass(cfg, b, training)
        grown[b] = peak_growth(step)
        del step
        totals[b] = {"measured": resident + grown[b], "estimated": est.total(b)}
        totals[b]["ratio"] = totals[b]["estimated"] / totals[b]["measured"]
    lo, hi = min(BATCHES), max(BATCHES)
    per_sample = (grown[hi] - grown[lo]) / (hi - lo)
    return {
        "spec": cfg.model_dump(mode="json"),
        "training": training,
        "parameters": parameter_count(cfg),
        "measured_growth_bytes": grown,
        "measured_per_sample": per_sample,
        "estimated_per_sample": est.per_sample_bytes,
        "per_sample_ratio": est.per_sample_bytes / per_sample if per_sample > 0 else None,
        "totals": totals,
    }


def total_ratios(results: list[dict[str, Any]]) -> list[float]:
    """Every estimated / measured total (the calibration criterion: all within 1.0..2.0)."""
    return [t["ratio"] for r in results for t in r["totals"].values()]


def markdown(results: list[dict[str, Any]], quick: bool, machine: dict[str, Any]) -> str:
    """The results as a markdown table, under a line naming the machine."""
    lo, hi = min(BATCHES), max(BATCHES)
    lines = [
        "# rescunet-ij memory estimate against measurement (CPU)",
        "",
        f"Machine: {machine['cpu']}, torch {torch.__version__}, Python {machine['python']}; "
        f"{torch.get_num_threads()} thread(s), batches {lo} and {hi}. "
        f"Date: {time.strftime('%Y-%m-%d')}." + (" **QUICK settings**" if quick else ""),
        "",
        "| pass | f | input | L | dropout | measured MiB/sample | estimated MiB/sample "
        f"| ratio | total ratio, batch {lo} | total ratio, batch {hi} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s, ratio = r["spec"], r["per_sample_ratio"]
        h, w = s["input_size"]
        lines.append(
            f"| {'training' if r['training'] else 'inference'} | {s['base_filters']} "
            f"| {h if h == w else f'{h}x{w}'} | {s['concatenation_level']} | {s['dropout']} "
            f"| {r['measured_per_sample'] / 2**20:.2f} | {r['estimated_per_sample'] / 2**20:.2f} "
            f"| {'n/a' if ratio is None else f'{ratio:.2f}'} "
            f"| {r['totals'][lo]['ratio']:.2f} | {r['totals'][hi]['ratio']:.2f} |"
        )
    ratios = total_ratios(results)
    lines += [
        "",
        f"Total (weights + batch) estimate / measured: {min(ratios):.2f} .. {max(ratios):.2f} "
        "(target 1.0 .. 2.0). The per-sample slope is only indicative: where the weights' "
        "gradients or the optimizer step set the peak, small batches hide part of the "
        "activations.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; with ``--check``, returns 1 if a total ratio is outside 1..2."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="two small architectures (seconds)")
    p.add_argument(
        "--spec",
        action="append",
        type=json.loads,
        help="measure this architecture instead: ModelConfig fields as JSON, e.g. "
        '\'{"base_filters": 32, "input_size": 96}\' (repeatable)',
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 if an estimate / measured total is outside 1.0..2.0",
    )
    p.add_argument("--json", type=Path, help="write all results to this JSON file")
    p.add_argument("--markdown", type=Path, help="write the markdown table to this file")
    args = p.parse_args(argv)
    prepare_allocator()
    t0 = time.perf_counter()
    results = []
    for spec in args.spec or (QUICK if args.quick else GRID):
        for training in (False, True):
            results.append(measure(spec, training))
    machine = machine_info()
    md = markdown(results, args.quick, machine)
    print(md)
    print(f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    if args.json:
        report = {"machine": machine, "quick": args.quick, "results": results}
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
    if args.markdown:
        atomic_write_text(args.markdown, md)
    within = all(1.0 <= v <= 2.0 for v in total_ratios(results))
    return 1 if args.check and not within else 0


if __name__ == "__main__":
    raise SystemExit(main())
