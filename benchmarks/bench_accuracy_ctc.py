r"""Accuracy benchmark on Cell Tracking Challenge data: train on one sequence, propagate on another.

For each experiment a ReSCU-Net is trained (:func:`rescunet_ij.train.loop.train_model`) on the
ground-truth masks of one sequence (or frame range) and evaluated on another with the propagation
engine (:class:`rescunet_ij.propagate.Propagator`, masks given with ``add_mask``):

* **single-step**: for every test object with ground truth in frames t and t+1, the prompt is the
  true mask at t; the IoU of the prediction at t+1 with the truth is reported. Baseline: the true
  mask at t copied to t+1 (IoU of the two true masks).
* **multi-step**: from the first ground-truth frame of each test object, the engine propagates its
  own predictions frame after frame; the IoU is evaluated at every later frame with ground truth
  (an object the engine lost scores 0 there). Baseline: the first mask copied forward.

Ground truth. CTC ``SEG`` masks (``man_segNNN.tif``) carry labels that are arbitrary per frame;
each SEG object is relabelled with the track id of the ``TRA`` marker (``man_trackNNN.tif``, same
frame) it overlaps most, so one object can be followed over time. SEG objects that overlap no
marker are dropped, and when two SEG objects pick the same track the one with the larger overlap
keeps it. Training uses only SEG masks (GOWT1's TRA markers cover about half a nucleus, so they are
no masks): one sample per object and pair of consecutive frames that both have its SEG mask.

Usage::

    python benchmarks/bench_accuracy_ctc.py             # GOWT1 01 -> 02, ~15 min on 2 CPU cores
    python benchmarks/bench_accuracy_ctc.py --also-sim  # plus SIM+ 01 split in time
    python benchmarks/bench_accuracy_ctc.py --dataset Fluo-N2DH-SIM+ --train-seq 01 --test-seq 01 \
        --train-frames 0:40 --test-frames 40:65
    python benchmarks/bench_accuracy_ctc.py --quick     # seconds; checks the script runs

The data folder (default ``../shared/data/ctc`` relative to the repository) is only read.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rescunet_ij.io.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ctc"
for _p in (REPO, Path(__file__).resolve().parent):  # this checkout's package, and bench_core
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from rescunet_ij.types import ObjectMask  # noqa: E402 - after this checkout joins sys.path

# Settings for GOWT1 nuclei (about 60 px across) on 2 CPU cores: a 96 px native window (the
# nucleus plus a margin) rescaled to a 64 px network input, 32 base filters. A 128 px window was
# tried too: same validation IoU, lower multi-step test IoU (see benchmarks/README.md).
DEFAULTS: dict[str, Any] = {
    "input_size": 64,
    "subimage": 96,
    "base_filters": 32,
    "concatenation_level": 1,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "epochs": 150,
    "validation_fraction": 0.15,
    "patience": 25,
    "seed": 0,
}
QUICK: dict[str, Any] = {
    "input_size": 32,
    "subimage": 64,
    "base_filters": 4,
    "concatenation_level": 1,
    "batch_size": 8,
    "learning_rate": 1e-3,
    "epochs": 1,
    "validation_fraction": 0.0,
    "patience": None,
    "seed": 0,
}


# =============================================================================== CTC data
@dataclass
class Sequence:
    """One CTC sequence: images and ground-truth masks keyed by track id."""

    name: str
    images: np.ndarray  # (T, Y, X)
    gt: dict[int, dict[int, ObjectMask]]  # gt[frame][track id]
    frames: range  # the frames of the sequence this object covers (a time split)
    dropped: int = 0  # SEG objects without a TRA marker, or losing a track to another object
    info: dict[str, Any] = field(default_factory=dict)

    def tracks(self) -> dict[int, list[int]]:
        """Track id -> sorted frames (within ``frames``) that have its SEG mask."""
        out: dict[int, list[int]] = defaultdict(list)
        for f in sorted(self.gt):
            for o in self.gt[f]:
                out[o].append(f)
        return dict(out)


def _imread(path: Path) -> np.ndarray:
    import tifffile

    try:
        return tifffile.imread(path)
    except Exception as exc:  # tifffile raises several types; the LZW codec needs imagecodecs
        raise SystemExit(
            f"cannot read {path}: {exc} (CTC TIFFs are LZW-compressed: install imagecodecs)"
        ) from exc


def relabel_to_tracks(seg: np.ndarray, tra: np.ndarray) -> tuple[dict[int, ObjectMask], int]:
    """SEG instance labels -> masks keyed by the TRA track id each overlaps most.

    Returns the masks and the number of SEG objects dropped (no marker, or a duplicate track).
    """
    from scipy import ndimage as ndi

    best: dict[int, tuple[int, ObjectMask]] = {}
    dropped = 0
    for label, sl in enumerate(ndi.find_objects(seg), start=1):
        if sl is None:
            continue
        m = seg[sl] == label
        under = tra[sl][m]
        under = under[under > 0]
        if under.size == 0:
            dropped += 1
            continue
        counts = np.bincount(under)
        track = int(counts.argmax())
        om = ObjectMask(int(sl[0].start), int(sl[1].start), m)
        if track in best:
            dropped += 1
            if best[track][0] >= counts[track]:
                continue
        best[track] = (int(counts[track]), om)
    return {t: om for t, (_, om) in sorted(best.items())}, dropped


def load_sequence(data: Path, dataset: str, seq: str, frames: slice | None = None) -> Sequence:
    """Read a CTC sequence (images and relabelled SEG ground truth) for ``frames`` (default all)."""
    img_dir = data / dataset / seq
    gt_dir = data / dataset / f"{seq}_GT"
    if not img_dir.is_dir() or not (gt_dir / "SEG").is_dir() or not (gt_dir / "TRA").is_dir():
        raise SystemExit(
            f"no CTC sequence at {img_dir} (with {gt_dir}/SEG and TRA); give the folder that holds "
            f"<dataset>/<seq>/tNNN.tif with --data (got --data {data})"
        )
    files = sorted(img_dir.glob("t*.tif"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not files:
        raise SystemExit(f"{img_dir} holds no tNNN.tif images")
    n = int(re.sub(r"\D", "", files[-1].stem)) + 1
    rng = range(n)[frames] if frames is not None else range(n)
    first = _imread(files[0])
    images = np.zeros((n, *first.shape), dtype=first.dtype)
    for p in files:
        t = int(re.sub(r"\D", "", p.stem))
        if t in rng:
            images[t] = _imread(p)
    gt: dict[int, dict[int, ObjectMask]] = {}
    dropped = 0
    for p in sorted((gt_dir / "SEG").glob("man_seg*.tif")):
        t = int(re.sub(r"\D", "", p.stem))
        if t not in rng:
            continue
        tra_path = gt_dir / "TRA" / f"man_track{p.stem[len('man_seg') :]}.tif"
        if not tra_path.exists():
            raise SystemExit(f"{p} has no TRA marker image {tra_path}; the CTC layout needs both")
        seg = _imread(p)
        if seg.ndim != 2:
            raise SystemExit(
                f"{p} is not a 2-D label image (shape {seg.shape}); only 2-D CTC data is supported"
            )
        masks, d = relabel_to_tracks(seg, _imread(tra_path))
        dropped += d
        if masks:
            gt[t] = masks
    return Sequence(f"{dataset}/{seq}", images, gt, rng, dropped)


def _parse_frames(text: str | None) -> slice | None:
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", text)
    if not m:
        raise SystemExit(
            f"frame range must look like 0:40 (start:stop, 0-based, stop excluded), got {text!r}"
        )
    a, b = (int(v) if v else None for v in m.groups())
    return slice(a, b)


# =============================================================================== training
def training_samples(seq: Sequence, window: int) -> list:
    """One sample per object and consecutive pair of frames that both have its SEG mask."""
    from rescunet_ij.data.samples import samples_from_masks

    shape = seq.images.shape[1:]
    samples = []
    for obj, frames in sorted(seq.tracks().items()):
        keep = sorted(
            {f for f in frames if f - 1 in frames} | {f - 1 for f in frames if f - 1 in frames}
        )
        if len(keep) < 2:
            continue
        masks = {obj: {f: seq.gt[f][obj].to_full(shape) for f in keep}}
        samples.extend(samples_from_masks(seq.images, masks, window))
    return samples


def train(samples: list, s: dict[str, Any], device: str, log: Any) -> Any:
    """Train on ``samples`` with settings ``s``; returns the TrainResult."""
    from rescunet_ij.api import train_config
    from rescunet_ij.train.loop import TrainCallbacks, train_model

    cfg = train_config(
        input_size=s["input_size"],
        subimage_size=s["subimage"],
        base_filters=s["base_filters"],
        concatenation_level=s["concatenation_level"],
        batch_size=s["batch_size"],
        learning_rate=s["learning_rate"],
        epochs=s["epochs"],
        validation_fraction=s["validation_fraction"],
        early_stopping_patience=s["patience"],
        seed=s["seed"],
        device=device,
    )

    def on_epoch_end(r: dict[str, Any]) -> None:
        e = r["epoch"]
        if e == 1 or e % 10 == 0 or r.get("epochs", 0) <= 20:
            val = (
                ""
                if r.get("val_loss") is None
                else f" val loss {r['val_loss']:.4f} val IoU {r['val_iou']:.3f}"
            )
            log(
                f"    epoch {e}: loss {r['train_loss']:.4f} IoU {r['train_iou']:.3f}{val} "
                f"({r['seconds']:.1f} s)"
            )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "no validation set" in quick mode
        return train_model(
            samples, cfg, output=None, callbacks=TrainCallbacks(on_epoch_end=on_epoch_end)
        )


# =============================================================================== evaluation
def mask_iou(a: ObjectMask | None, b: ObjectMask | None) -> float:
    """IoU of two cropped masks (``None`` or empty = no object); 1.0 when both are empty."""
    ea = a is None or a.area == 0
    eb = b is None or b.area == 0
    if ea or eb:
        return 1.0 if ea and eb else 0.0
    y0, x0 = min(a.y0, b.y0), min(a.x0, b.x0)
    y1 = max(a.y0 + a.mask.shape[0], b.y0 + b.mask.shape[0])
    x1 = max(a.x0 + a.mask.shape[1], b.x0 + b.mask.shape[1])
    shape = (y1 - y0, x1 - x0)
    fa = ObjectMask(a.y0 - y0, a.x0 - x0, a.mask).to_full(shape)
    fb = ObjectMask(b.y0 - y0, b.x0 - x0, b.mask).to_full(shape)
    return float(np.count_nonzero(fa & fb) / np.count_nonzero(fa | fb))


def _propagator(model: Any, device: str) -> Any:
    from rescunet_ij.config import PropagateConfig
    from rescunet_ij.propagate import Propagator

    return Propagator(model, PropagateConfig(device=device))


def _selected_objects(seq: Sequence, max_objects: int | None) -> set[int]:
    """All track ids, or the ``max_objects`` with the most ground-truth frames (then lowest id)."""
    tracks = seq.tracks()
    ids = sorted(tracks, key=lambda o: (-len(tracks[o]), o))
    return set(ids[:max_objects] if max_objects else ids)


def single_step(
    model: Any, seq: Sequence, device: str, max_objects: int | None
) -> dict[str, list[float]]:
    """IoU of one propagation step from the true mask, and of copying the true mask."""
    prop = _propagator(model, device)
    objs = _selected_objects(seq, max_objects)
    ours, copy = [], []
    for t in sorted(seq.gt):
        if t + 1 not in seq.gt:
            continue
        pairs = sorted(o for o in seq.gt[t] if o in seq.gt[t + 1] and o in objs)
        if not pairs:
            continue
        state = prop.init_state(seq.images[t : t + 2])
        for o in pairs:
            prop.add_mask(state, 0, o, seq.gt[t][o])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lost objects are scored 0 below
            (result,) = list(prop.propagate(state, 0, 1))
        pred = {ob.object_id: ob.mask for ob in result.objects}
        for o in pairs:
            ours.append(mask_iou(pred.get(o), seq.gt[t + 1][o]))
            copy.append(mask_iou(seq.gt[t][o], seq.gt[t + 1][o]))
    return {"ours": ours, "copy": copy}


def multi_step(model: Any, seq: Sequence, device: str, max_objects: int | None) -> dict[str, Any]:
    """Propagate own predictions from each object's first true mask.

    The IoU is taken at every later frame with a true mask.
    """
    prop = _propagator(model, device)
    objs = _selected_objects(seq, max_objects)
    tracks = {o: f for o, f in seq.tracks().items() if o in objs and len(f) >= 2}
    by_start: dict[int, list[int]] = defaultdict(list)
    for o, frames in tracks.items():
        by_start[frames[0]].append(o)
    ours, copy, steps = [], [], []
    lost = 0
    for start in sorted(by_start):
        group = sorted(by_start[start])
        end = max(tracks[o][-1] for o in group)
        state = prop.init_state(seq.images[start : end + 1])
        for o in group:
            prop.add_mask(state, 0, o, seq.gt[start][o])
        pred: dict[tuple[int, int], ObjectMask | None] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for result in prop.propagate(state, 0, end - start):
                f = start + result.frame
                for ob in result.objects:
                    pred[(f, ob.object_id)] = ob.mask
        for o in group:
            lost += any(pred.get((f, o)) is None for f in tracks[o][1:])
            for f in tracks[o][1:]:
                ours.append(mask_iou(pred.get((f, o)), seq.gt[f][o]))
                copy.append(mask_iou(seq.gt[start][o], seq.gt[f][o]))
                steps.append(f - start)
    return {"ours": ours, "copy": copy, "steps": steps, "objects": len(tracks), "lost": lost}


# =============================================================================== report
def _stats(v: list[float]) -> dict[str, Any]:
    if not v:
        return {"n": 0, "mean": None, "median": None}
    a = np.asarray(v, dtype=float)
    return {"n": int(a.size), "mean": float(a.mean()), "median": float(np.median(a))}


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def table_rows(exp: dict[str, Any]) -> list[str]:
    """Markdown rows (ours vs copy) for one experiment."""
    rows = []
    name = exp["name"]

    def row(what: str, ours: list[float], copy: list[float], extra: str = "") -> None:
        a, b = _stats(ours), _stats(copy)
        better = "n/a" if a["n"] == 0 else ("yes" if a["mean"] > b["mean"] else "**no**")
        rows.append(
            f"| {name} | {what} | {a['n']} | {_f(a['mean'])} | {_f(a['median'])} | "
            f"{_f(b['mean'])} | {_f(b['median'])} | {better} | {extra} |"
        )

    ss, ms = exp["single_step"], exp["multi_step"]
    row("single-step (prompt = true mask at t)", ss["ours"], ss["copy"])
    row(
        "multi-step (prompt = own prediction)",
        ms["ours"],
        ms["copy"],
        f"{ms['objects']} objects, {ms['lost']} lost on the way",
    )
    steps = np.asarray(ms["steps"], dtype=int)
    for lo, hi in ((1, 5), (6, 20), (21, 10**6)):
        sel = (steps >= lo) & (steps <= hi)
        if sel.any() and len(steps) > sel.sum():  # a breakdown only when there is more than one bin
            label = f"{lo}-{hi}" if hi < 10**6 else f">{lo - 1}"
            row(
                f"  multi-step, {label} frames after the prompt",
                list(np.asarray(ms["ours"])[sel]),
                list(np.asarray(ms["copy"])[sel]),
            )
    return rows


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown."""
    m = report["machine"]
    out = [
        "# rescunet-ij accuracy on Cell Tracking Challenge data",
        "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} CPU(s), torch {m.get('torch')}, "
        f"GPU: {m.get('gpu') or 'none'}; "
        f"device used: {report['device']}. Date: {report['date']}."
        + (" **QUICK settings (not a benchmark)**" if report["quick"] else ""),
        "",
        "IoU of the predicted mask with the ground truth; "
        "the copy baseline reuses the mask of the prompt frame.",
        "",
        "| experiment | evaluation | n | mean IoU | median IoU | copy mean | copy median "
        "| beats copy | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for exp in report["experiments"]:
        out.extend(table_rows(exp))
    out += ["", "Settings and training:"]
    for exp in report["experiments"]:
        s, t = exp["settings"], exp["training"]
        out.append(
            f"* **{exp['name']}**: train {exp['train']}, test {exp['test']}; "
            f"{t['n_samples']} training samples "
            + (
                f"(an evenly spread subset of {t['n_available']}) "
                if t["n_available"] > t["n_samples"]
                else ""
            )
            + f"({t['n_train']} train / {t['n_val']} validation) "
            "from SEG masks in consecutive frames; "
            f"input {s['input_size']} px, subimage {s['subimage']} px, "
            f"base filters {s['base_filters']}, "
            f"L={s['concatenation_level']}, batch {s['batch_size']}, lr {s['learning_rate']}, "
            f"{t['epochs_run']} of max {s['epochs']} epochs (best {t['best_epoch']}, "
            f"patience {s['patience']}), {t['seconds']:.0f} s training, "
            f"{exp['eval_seconds']:.0f} s evaluation; "
            f"final train IoU {_f(t.get('train_iou'))}, val IoU {_f(t.get('val_iou'))} "
            "(network windows); "
            f"SEG objects dropped in relabelling: {exp['dropped']}."
        )
    out.append("")
    return "\n".join(out)


# =============================================================================== main
def run_experiment(
    name: str,
    data: Path,
    dataset: str,
    train_seq: str,
    test_seq: str,
    train_frames: slice | None,
    test_frames: slice | None,
    s: dict[str, Any],
    device: str,
    max_objects: int | None,
    max_train: int | None,
    log: Any,
) -> dict[str, Any]:
    """Load, train, evaluate one experiment; returns its result dict."""
    log(f"[{name}] loading {dataset} {train_seq} (train) and {test_seq} (test)")
    tr = load_sequence(data, dataset, train_seq, train_frames)
    te = load_sequence(data, dataset, test_seq, test_frames)
    samples = training_samples(tr, s["subimage"])
    if not samples:
        raise SystemExit(
            f"{tr.name} frames {tr.frames.start}-{tr.frames.stop - 1} give no training pairs "
            "(no object has SEG masks in two consecutive frames); "
            "choose another sequence or frame range"
        )
    n_available = len(samples)
    if max_train and len(samples) > max_train:
        keep = np.linspace(0, len(samples) - 1, max_train).round().astype(int)
        samples = [samples[i] for i in keep]
    log(f"[{name}] {len(samples)} training samples; training ({s['epochs']} epochs max)")
    t0 = time.perf_counter()
    result = train(samples, s, device, log)
    train_s = time.perf_counter() - t0
    last = result.history[-1] if result.history else {}
    log(f"[{name}] trained in {train_s:.0f} s (best epoch {result.best_epoch}); evaluating")
    t0 = time.perf_counter()
    ss = single_step(result.model, te, device, max_objects)
    ms = multi_step(result.model, te, device, max_objects)
    eval_s = time.perf_counter() - t0

    def span(seq: Sequence) -> str:
        return f"{seq.name} frames {seq.frames.start}-{seq.frames.stop - 1}"

    return {
        "name": name,
        "train": span(tr),
        "test": span(te),
        "settings": s,
        "training": {
            "n_samples": len(samples),
            "n_available": n_available,
            "n_train": result.n_train,
            "n_val": result.n_val,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "seconds": train_s,
            "train_iou": last.get("train_iou"),
            "val_iou": last.get("val_iou"),
            "stopped_early": result.stopped_early,
        },
        "single_step": ss,
        "multi_step": ms,
        "eval_seconds": eval_s,
        "dropped": tr.dropped + te.dropped,
    }


def _parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="CTC folder (default: %(default)s)"
    )
    p.add_argument("--dataset", default="Fluo-N2DH-GOWT1")
    p.add_argument("--train-seq", default="01")
    p.add_argument("--test-seq", default="02")
    p.add_argument(
        "--train-frames", help="frame range start:stop of the training sequence (default: all)"
    )
    p.add_argument(
        "--test-frames", help="frame range start:stop of the test sequence (default: all)"
    )
    p.add_argument(
        "--also-sim",
        action="store_true",
        help="add the experiment Fluo-N2DH-SIM+ 01: train frames 0-39, test frames 40-64",
    )
    p.add_argument("--epochs", type=int, help="maximum epochs (default 150; 1 with --quick)")
    p.add_argument(
        "--sim-epochs", type=int, default=8, help="maximum epochs of the --also-sim experiment"
    )
    p.add_argument(
        "--sim-max-train-samples",
        type=int,
        default=480,
        help="training samples of the --also-sim experiment (of about 1,400; CPU time)",
    )
    p.add_argument(
        "--max-train-samples",
        type=int,
        help="train on at most this many samples (evenly spread over the set; default all)",
    )
    p.add_argument(
        "--max-objects",
        type=int,
        help="evaluate at most this many test objects (those with the most ground-truth frames)",
    )
    p.add_argument("--input-size", type=int)
    p.add_argument(
        "--subimage", type=int, help="native window in pixels (rescaled to the input size)"
    )
    p.add_argument("--base-filters", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
    p.add_argument(
        "--quick", action="store_true", help="tiny settings (seconds): checks the script runs"
    )
    p.add_argument("--json", type=Path, help="write the results (with every IoU) to this JSON file")
    p.add_argument("--markdown", type=Path, help="write the markdown table to this file")
    return p


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """Training settings: the defaults (or quick ones), overridden by the options given."""
    s = dict(QUICK if args.quick else DEFAULTS)
    for key in (
        "epochs",
        "input_size",
        "subimage",
        "base_filters",
        "batch_size",
        "learning_rate",
        "patience",
    ):
        v = getattr(args, key)
        if v is not None:
            s[key] = v
    return s


def _experiments(args: argparse.Namespace) -> list[tuple[Any, ...]]:
    """(name, dataset, train seq, test seq, train frames, test frames) of each experiment."""
    experiments: list[tuple[Any, ...]] = [
        (
            f"{args.dataset} {args.train_seq}->{args.test_seq}",
            args.dataset,
            args.train_seq,
            args.test_seq,
            _parse_frames(args.train_frames),
            _parse_frames(args.test_frames),
        )
    ]
    if args.also_sim:
        experiments.append(
            (
                "Fluo-N2DH-SIM+ 01 (time split)",
                "Fluo-N2DH-SIM+",
                "01",
                "01",
                slice(0, 40),
                slice(40, 65),
            )
        )
    return experiments


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = _parser().parse_args(argv)

    from bench_core import machine_info  # same folder

    from rescunet_ij.device import resolve_device

    s = _settings(args)
    max_objects = args.max_objects if args.max_objects is not None else (3 if args.quick else None)
    max_train = (
        args.max_train_samples
        if args.max_train_samples is not None
        else (24 if args.quick else None)
    )
    device = resolve_device(args.device).type
    report: dict[str, Any] = {
        "machine": machine_info(),
        "device": device,
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d"),
        "data": str(args.data),
        "experiments": [],
    }
    for k, (name, ds, trs, tes, trf, tef) in enumerate(_experiments(args)):
        es, mt = dict(s), max_train
        if k == 1 and not args.quick:  # the SIM+ split: many samples, so a subset and few epochs
            es.update(epochs=args.sim_epochs, patience=min(s["patience"] or 3, 3))
            mt = args.sim_max_train_samples
        report["experiments"].append(
            run_experiment(
                name, args.data, ds, trs, tes, trf, tef, es, device, max_objects, mt, _log
            )
        )
    md = markdown(report)
    print(md)
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")
    if args.markdown:
        atomic_write_text(args.markdown, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
