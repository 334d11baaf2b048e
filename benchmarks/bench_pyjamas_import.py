"""Equivalence of an imported PyJAMAS model: PyJAMAS's network vs ours on the same windows.

PyJAMAS (``pyjamas-rfglab`` 2026.9.0, in its own venv, see ``_pyjamas.py``) trains a tiny
ReSCU-Net on a synthetic PyJAMAS-layout training set (``ReSCUNet.fit``, which saves
``ckpt_final.cfr``); ``api.import_pyjamas`` opens that ``.cfr`` with the restricted unpickler
and maps its weights. Both networks then get the same windows (cut from a held-out synthetic
movie around each object, the previous frame's mask as the prompt, raw intensities that each
side divides by the model's ``scaler``), and the foreground probabilities are compared: max and
mean absolute difference, and the share of pixels whose class (p > 0.5) differs. Untrained
networks saved by PyJAMAS at every concatenation level 0-4 (level 2 without its
``concatenation_level`` key, as older files) are compared the same way, which checks the weight
order where the image and mask branches alternate.

``--quick`` does not need PyJAMAS: it writes a ``.cfr`` in PyJAMAS's layout from our own
(small) network and checks the import is exact (what the CI test does); with no PyJAMAS venv
the full run says so and exits with status 2.

Usage::

    python benchmarks/bench_pyjamas_import.py                 # needs /tmp/pyjamas-study/venv
    python benchmarks/bench_pyjamas_import.py --build-venv    # build it first (minutes)
    python benchmarks/bench_pyjamas_import.py --json benchmarks/results/pyjamas_import.json
        --markdown benchmarks/results/pyjamas_import.md   (one line)
    python benchmarks/bench_pyjamas_import.py --quick         # seconds, no PyJAMAS
"""

from __future__ import annotations

import argparse
import gzip
import json
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _pyjamas  # noqa: E402 - beside this script
from bench_core import _loadavg, machine_info  # noqa: E402

from rescunet_ij.io.atomic import atomic_write_text  # noqa: E402


def _windows(size: int, n_objects: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows around each object of a synthetic movie: (images, prev masks, masks), raw."""
    from rescunet_ij.sample_data import synthetic_movie

    sim = synthetic_movie(4, (4 * size, 4 * size), n_objects=n_objects, seed=seed)
    imgs, prevs, masks = [], [], []
    for t in range(1, 4):
        for o in range(1, n_objects + 1):
            prev = sim.labels[t - 1] == o
            if not prev.any():
                continue
            rows, cols = np.nonzero(prev)
            y0 = int(np.clip(rows.mean() - size / 2, 0, sim.labels.shape[1] - size))
            x0 = int(np.clip(cols.mean() - size / 2, 0, sim.labels.shape[2] - size))
            sl = (slice(y0, y0 + size), slice(x0, x0 + size))
            imgs.append(sim.images[t][sl])
            prevs.append(prev[sl])
            masks.append(sim.labels[t][sl] == o)
    return np.stack(imgs), np.stack(prevs), np.stack(masks)


def _ours(model: Any, images: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """Our imported network on the same windows (rescunet-ij's own normalisation path)."""
    import torch

    from rescunet_ij.data.windows import to_network

    x = to_network(images, model.model_config.input_size, normalization=model.normalization)
    m = to_network(prev.astype(np.float32), model.model_config.input_size, is_mask=True)
    with torch.no_grad():
        return torch.softmax(model.network(x, m), 1)[:, 1].numpy()


def _compare(ours: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    if float(ref.max() - ref.min()) < 1e-3:
        print("warning: PyJAMAS's probabilities are constant: a weak comparison", file=sys.stderr)
    return {
        "windows": int(len(ref)),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "class_disagreement": float(((ours > 0.5) != (ref > 0.5)).mean()),
        "ref_range": [float(ref.min()), float(ref.max())],
    }


def run_full(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Train PyJAMAS, import, compare; then untrained networks at levels 0-4."""
    from rescunet_ij import api
    from rescunet_ij.data.samples import samples_from_masks
    from rescunet_ij.io.training_set import write_training_set
    from rescunet_ij.sample_data import synthetic_movie

    py = args.python
    size = args.input_size
    sim = synthetic_movie(args.frames + 1, (4 * size, 4 * size), n_objects=args.objects, seed=1)
    masks = {
        o: {t: sim.labels[t] == o for t in range(len(sim.labels)) if (sim.labels[t] == o).any()}
        for o in range(1, args.objects + 1)
    }
    samples = samples_from_masks(sim.images, masks, size)
    write_training_set(samples, work / "train")
    t0 = time.perf_counter()
    trained = _pyjamas.train_pyjamas(
        work / "train",
        work / "model",
        train_image_size=size,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        mini_batch_size=8,
        validation_split=0.0,
        early_stopping=False,
        lr_scheduler=False,
        checkpoints=False,
        python=py,
    )
    train_wall = time.perf_counter() - t0
    images, prev, truth = _windows(size, args.objects, seed=7)
    t0 = time.perf_counter()
    model = api.import_pyjamas(trained.cfr, work / "model.rescunet")
    import_s = time.perf_counter() - t0
    ref = _pyjamas.window_probabilities(trained.cfr, images, prev, python=py)
    ours = _ours(api.load_model(work / "model.rescunet"), images, prev)
    result: dict[str, Any] = {
        "trained": {
            "samples": trained.n_samples,
            "epochs": trained.epochs_run,
            "input_size": size,
            "concatenation_level": model.model_config.concatenation_level,
            "scaler": model.normalization.max_value,
            "cfr_bytes": trained.cfr.stat().st_size,
            "pyjamas_wall_s": round(train_wall, 1),
            "import_s": round(import_s, 2),
            **_compare(ours, ref),
            "iou_vs_truth_pyjamas": _iou(ref > 0.5, truth),
            "iou_vs_truth_ours": _iou(ours > 0.5, truth),
        },
        "levels": {},
    }
    for level in args.levels:
        cfr = _pyjamas.random_cfr(
            work / f"L{level}.cfr",
            concatenation_level=level,
            train_image_size=size,
            scaler=float(images.max()),
            keep_level=level != 2,
            python=py,
        )
        m = api.import_pyjamas(cfr)
        ref = _pyjamas.window_probabilities(cfr, images, prev, python=py)
        result["levels"][str(level)] = {
            "level_in_file": level != 2,
            "level_found": m.model_config.concatenation_level,
            **_compare(_ours(m, images, prev), ref),
        }
        cfr.unlink()
    return result


def _iou(pred: np.ndarray, truth: np.ndarray) -> float:
    inter = (pred & truth).sum(axis=(1, 2))
    union = (pred | truth).sum(axis=(1, 2))
    return float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0)))


def run_quick(work: Path) -> dict[str, Any]:
    """Without PyJAMAS: a .cfr in PyJAMAS's layout from our own small network, imported back."""
    import torch

    from rescunet_ij import api
    from rescunet_ij.io.pyjamas_cfr import pyjamas_weight_order
    from rescunet_ij.model import ReSCUNet

    torch.manual_seed(0)
    net = ReSCUNet(base_filters=4, concatenation_level=1).eval()
    sd = net.state_dict()
    weights = []
    for name in pyjamas_weight_order(1):
        weights += [sd[f"{name}.weight"].numpy().transpose(2, 3, 1, 0).copy()]
        weights += [sd[f"{name}.bias"].numpy().copy()]
    d = {
        "classifier": weights,
        "classifier_type": "ReSCU-Net",
        "concatenation_level": 1,
        "train_image_size": (32, 32),
        "scaler": np.uint16(3000),
        "step_sz": (8, 8),
        "erosion_width": 0,
    }
    cfr = work / "own.cfr"
    with gzip.open(cfr, "wb") as fh:
        pickle.dump(d, fh, 3)
    model = api.import_pyjamas(cfr)
    images, prev, _ = _windows(32, 3, seed=7)
    with torch.no_grad():
        x = torch.from_numpy(images.astype(np.float32))[:, None] / 3000.0
        ref = torch.softmax(net(x, torch.from_numpy(prev.astype(np.float32))[:, None]), 1)
    return {"own_layout": _compare(_ours(model, images, prev), ref[:, 1].numpy())}


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown."""
    m = report["machine"]
    lines = [
        "# PyJAMAS .cfr import: equivalence with PyJAMAS's own network",
        "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPU(s), torch {m.get('torch')}, "
        f"Python {m['python']}; PyJAMAS {_pyjamas.PYJAMAS_VERSION} (Keras 3, torch backend) in "
        f"its own venv. Date: {report['date']}. Load average before {report['load_before']}, "
        f"after {report['load_after']}.{' **QUICK (no PyJAMAS)**' if report['quick'] else ''}",
        "",
        "| model | windows | PyJAMAS's probabilities (min-max) | max abs diff | mean abs diff "
        "| pixels classified differently |",
        "|---|---|---|---|---|---|",
    ]
    res = report["results"]
    rows = []
    if "own_layout" in res:
        rows.append(("our network written in PyJAMAS's layout", res["own_layout"]))
    if "trained" in res:
        t = res["trained"]
        rows.append(
            (
                f"trained by PyJAMAS ({t['samples']} samples, {t['epochs']} epochs, input "
                f"{t['input_size']}, L={t['concatenation_level']})",
                t,
            )
        )
    for level, r in res.get("levels", {}).items():
        how = "" if r["level_in_file"] else ", level not in the file: found"
        rows.append((f"untrained, saved by PyJAMAS, L={level}{how}", r))
    for name, r in rows:
        lines.append(
            f"| {name} | {r['windows']} | {r['ref_range'][0]:.3f}-{r['ref_range'][1]:.3f} "
            f"| {r['max_abs_diff']:.2e} | {r['mean_abs_diff']:.2e} | "
            f"{r['class_disagreement']:.4%} |"
        )
    if "trained" in res:
        t = res["trained"]
        lines += [
            "",
            f"Trained model: scaler {t['scaler']:g}, .cfr {t['cfr_bytes'] / 1e6:.0f} MB, "
            f"import (restricted unpickling, mapping, safetensors write) {t['import_s']:.1f} s; "
            "IoU with the truth on these windows (p > 0.5): PyJAMAS "
            f"{t['iou_vs_truth_pyjamas']:.3f}, imported {t['iou_vs_truth_ours']:.3f} "
            "(a tiny training: only the agreement matters here).",
        ]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="no PyJAMAS: own-layout round trip only")
    p.add_argument("--build-venv", action="store_true", help="build PyJAMAS's venv if missing")
    p.add_argument("--input-size", type=int, default=32, help="network input (PyJAMAS: 16k)")
    p.add_argument("--objects", type=int, default=4)
    p.add_argument("--frames", type=int, default=6, help="frame pairs of the training movie")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument(
        "--learning-rate",
        type=float,
        default=1e-4,
        help="PyJAMAS's learning rate (1e-4: a tiny training that does not saturate the softmax, "
        "so the comparison is informative)",
    )
    p.add_argument(
        "--levels", type=int, nargs="*", default=[0, 1, 2, 3, 4], help="untrained levels"
    )
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args(argv)
    report: dict[str, Any] = {
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d"),
        "quick": args.quick,
        "load_before": _loadavg(),
    }
    if not args.quick:
        args.python = _pyjamas.pyjamas_python(build=args.build_venv)
        if args.python is None:
            print(
                "PyJAMAS's venv is missing: run ../shared/tools/pyjamas_venv.sh or pass "
                "--build-venv (or --quick for the check without PyJAMAS)",
                file=sys.stderr,
            )
            return 2
    with tempfile.TemporaryDirectory(prefix="bench_pyjamas_import_") as tmp:
        work = Path(tmp)
        report["results"] = run_quick(work) if args.quick else run_full(args, work)
    report["load_after"] = _loadavg()
    md = markdown(report)
    print(md)
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
    if args.markdown:
        atomic_write_text(args.markdown, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
