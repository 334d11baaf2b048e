"""Smoke tests of the benchmark scripts: each runs end to end with tiny settings, so none rots.

Nothing here times anything. The accuracy script runs on a small synthetic dataset written in
the Cell Tracking Challenge layout (the real CTC data is not needed). The ImageJ bridge benchmark
needs a real ImageJ under a display and is marked ``ij``. The last tests check that every script
in ``benchmarks/`` is documented, listed in its README and smoke-tested here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # each runs a benchmark script in a subprocess

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"


def _load(name: str):
    """Import a benchmark script as a module (it is not part of the package)."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses look their module up while the class is built
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        return mod
    finally:
        sys.path.remove(str(BENCH))


def _run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    proc = subprocess.run(
        [sys.executable, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )
    return proc


# ----------------------------------------------------------------------------- bench_core
def test_bench_core_quick_measures_everything(tmp_path):
    out_json, out_md = tmp_path / "core.json", tmp_path / "core.md"
    proc = _run(
        [
            "benchmarks/bench_core.py",
            "--quick",
            "--device",
            "cpu",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    report = json.loads(out_json.read_text())
    res = report["results"]["cpu"]
    assert set(res) == {"train_loop", "train_step", "propagate"}
    for task, r in res.items():
        assert "error" not in r, (task, r)
        assert r["peak_rss_mb"] > r["rss_after_imports_mb"] > 0
    assert res["train_loop"]["samples_per_s"] > 0 and res["train_loop"]["timed_batches"] >= 1
    assert res["train_step"]["samples_per_s"] > 0
    prop = res["propagate"]
    # The prompt-echo network keeps every object: all object-frames are predicted, none lost.
    assert prop["object_frames"] == prop["objects"] * prop["timed_frames"] and prop["lost"] == 0
    assert prop["s_per_object_frame"] == pytest.approx(1 / prop["object_frames_per_s"])
    md = out_md.read_text()
    assert "| device | measurement |" in md and "QUICK" in md
    assert md.strip() in proc.stdout
    assert report["machine"]["torch"] and report["machine"]["usable_cpus"] >= 1


def test_bench_core_table_flags_missed_targets():
    core = _load("bench_core")
    res = {
        "train_loop": {"samples_per_s": 9.1 * 2, "peak_rss_mb": 3 * 1024},
        "train_step": {"error": "boom"},
        "propagate": {
            "s_per_object_frame": 3.4 / 10,
            "object_frames_per_s": 10 / 3.4,
            "peak_rss_mb": 512,
        },
    }
    rows = {r[1]: r for r in core.rows_for("cpu", res)}
    assert rows["training samples/s (train_model, with data loading)"][-1] == "yes"
    assert rows["training samples/s (train_model, with data loading)"][4] == "2.00x"
    assert rows["propagation s per object-frame"][-1] == "**no**"  # 10x < 20x
    assert rows["training peak RSS (whole process), GiB"][-1] == "**no**"  # 3 GiB > 1 GiB
    assert rows["propagation peak RSS (whole process), GiB"][-1] == "yes"
    assert "error: boom" in rows["training, network step"][2]


# ----------------------------------------------------------------------------- CTC data
def _write_fake_ctc(
    root: Path, seed: int, seq: str, seg_frames: list[int], n_frames: int = 8
) -> np.ndarray:
    """A synthetic CTC-layout sequence: SEG labels shuffled per frame, TRA = eroded markers."""
    import tifffile
    from scipy import ndimage as ndi

    from rescunet_ij.sample_data import synthetic_movie

    sim = synthetic_movie(n_frames, (96, 96), n_objects=3, radius=(8.0, 11.0), seed=seed)
    img_dir, seg_dir, tra_dir = root / seq, root / f"{seq}_GT" / "SEG", root / f"{seq}_GT" / "TRA"
    for d in (img_dir, seg_dir, tra_dir):
        d.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for t in range(n_frames):
        tifffile.imwrite(img_dir / f"t{t:03d}.tif", sim.images[t])
        lab = sim.labels[t]
        markers = np.zeros_like(lab)
        for o in np.unique(lab[lab > 0]):
            markers[ndi.binary_erosion(lab == o, iterations=3)] = (
                o + 10
            )  # track ids differ from labels
        tifffile.imwrite(tra_dir / f"man_track{t:03d}.tif", markers)
        if t in seg_frames:
            perm = np.r_[0, rng.permutation(np.arange(1, lab.max() + 1)) + 100].astype(np.uint16)
            tifffile.imwrite(seg_dir / f"man_seg{t:03d}.tif", perm[lab])
    (root / f"{seq}_GT" / "TRA" / "man_track.txt").write_text(
        "".join(f"{o + 10} 0 {n_frames - 1} 0\n" for o in range(1, 4))
    )
    return sim.labels


def test_relabel_to_tracks_uses_max_overlap_and_drops_unmarked():
    acc = _load("bench_accuracy_ctc")
    seg = np.zeros((20, 20), np.uint16)
    seg[1:6, 1:6] = 7  # overlaps markers 3 (2 px) and 4 (6 px) -> track 4
    seg[10:15, 10:15] = 2  # no marker -> dropped
    tra = np.zeros_like(seg)
    tra[1, 1:3] = 3
    tra[3:5, 2:5] = 4
    masks, dropped = acc.relabel_to_tracks(seg, tra)
    assert list(masks) == [4] and dropped == 1
    np.testing.assert_array_equal(masks[4].to_full(seg.shape), seg == 7)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero(a & b) / np.count_nonzero(a | b)


def _moved(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``mask`` translated by (dy, dx), what moves out of the frame dropped."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _on_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def test_bench_accuracy_quick_on_synthetic_ctc(tmp_path):
    root = tmp_path / "ctc" / "Fake"
    train_labels = _write_fake_ctc(root, 1, "01", seg_frames=[0, 1, 2, 3, 5, 6])
    test_labels = _write_fake_ctc(root, 2, "02", seg_frames=[1, 2, 3, 6])
    out_json, out_md = tmp_path / "acc.json", tmp_path / "acc.md"
    _run(
        [
            "benchmarks/bench_accuracy_ctc.py",
            "--quick",
            "--data",
            str(tmp_path / "ctc"),
            "--dataset",
            "Fake",
            "--device",
            "cpu",
            "--drift",
            "2:6",
            "--also-object-motion",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    report = json.loads(out_json.read_text())
    exp, synthetic = report["experiments"]
    # Training pairs: frames (0,1), (1,2), (2,3), (5,6) x 3 objects.
    assert exp["training"]["n_available"] == 12
    plain, drift = exp["scenarios"]
    assert (plain["kind"], drift["kind"]) == ("as recorded", "drift")
    offsets = np.asarray(drift["info"]["offsets"])
    assert offsets.shape == (8, 2) and not offsets[0].any() and np.abs(offsets).max() <= 24
    steps = np.hypot(*np.diff(offsets, axis=0).T)
    assert steps.min() >= 2 - 1 and steps.max() <= 6 + 1  # 2-6 px per frame, rounded
    for sc, shift in ((plain, np.zeros_like(offsets)), (drift, offsets)):
        ss, ms = sc["single_step"], sc["multi_step"]
        # Test pairs (1,2), (2,3) x 3 objects, the same for every method; the copy baseline is
        # the IoU of the true masks, both moved by the drift (copying does not follow it).
        # (track ids are the labels + 10)
        assert sorted(map(tuple, ss["auto"]["pairs"])) == [
            (t, o) for t in (1, 2) for o in (11, 12, 13)
        ]
        for m in ("auto", "off", "copy"):
            assert len(ss[m]["iou"]) == 6 and len(ms[m]["iou"]) == 9
            assert all(0.0 <= v <= 1.0 for v in ss[m]["iou"] + ms[m]["iou"])
        expected = [
            _iou(
                _moved(test_labels[t] == o - 10, *shift[t]),
                _moved(test_labels[t + 1] == o - 10, *shift[t + 1]),
            )
            for t, o in ss["auto"]["pairs"]
        ]
        np.testing.assert_allclose(ss["copy"]["iou"], expected, atol=5e-5)  # 4 decimals
        # Multi-step from frame 1, evaluated at frames 2, 3 and 6 for each of the 3 objects.
        assert ms["auto"]["objects"] == 3 and sorted(set(ms["auto"]["steps"])) == [1, 2, 5]
        for m in ("auto", "off"):
            assert ms[m]["lost"] == len(ms[m]["lost_objects"]) == sum(ms[m]["reasons"].values())
            assert ss[m]["lost"] == sum(ss[m]["reasons"].values()) <= 6
            # Every object lost is marked in view or not (the TRA markers say where it is).
            assert all(d["in_view"] in (True, False) for d in ms[m]["lost_objects"])
        # A pair is cut when a true mask touches the border (the fake objects stay inside).
        cut = [
            any(_on_border(_moved(test_labels[f] == o - 10, *shift[f])) for f in (t, t + 1))
            for t, o in ss["auto"]["pairs"]
        ]
        assert ss["auto"]["cut"] == cut
        check = sc["field_shift_check"]
        assert check["frames"] == len(check["rows"]) >= 2
        assert (
            sum(check[k] for k in ("exact", "close", "missed", "false", "wrong")) == check["frames"]
        )
        for f, _, _, tdy, tdx, *_ in check["rows"]:  # the true shift is the simulated step
            assert [tdy, tdx] == (shift[f] - shift[f - 1]).tolist()
    # The synthetic experiment: the same test movie with slow and with fast objects.
    slow, fast = synthetic["scenarios"]
    assert slow["kind"] == fast["kind"] == "object motion"
    assert fast["info"]["displacement_px"]["median"] > 3 * slow["info"]["displacement_px"]["median"]
    for sc in (slow, fast):
        assert len(sc["single_step"]["copy"]["iou"]) == 6  # 3 objects x 2 frame pairs
        assert sc["object_shift_check"]["n"] == 6
    comparison = _load("bench_accuracy_ctc").drift_comparison(plain, drift)
    assert comparison["same_pairs"]["n"] == 6 and comparison["all"]["n"] == [6, 6]
    md = out_md.read_text()
    for text in ("single-step", "multi-step", "QUICK", "motion off", "copy previous", "Targets"):
        assert text in md
    assert "Field shift (`FrameResult.shift`" in md and "drift 2-6 px/frame" in md
    assert train_labels.shape == test_labels.shape
    # The tables can be rebuilt from the JSON alone, without running anything.
    again = tmp_path / "again.md"
    _run(
        ["benchmarks/bench_accuracy_ctc.py", "--from-json", str(out_json), "--markdown", str(again)]
    )
    assert again.read_text() == md


def test_bench_accuracy_drift_moves_images_and_ground_truth_alike():
    acc = _load("bench_accuracy_ctc")
    from rescunet_ij.sample_data import synthetic_movie

    sim = synthetic_movie(6, (80, 80), n_objects=3, radius=(6.0, 8.0), seed=3)
    frames = range(6)
    seq = acc.Sequence("s", sim.images, acc.gt_from_labels(sim.labels, frames), frames)
    moved = acc.drift_sequence(seq, (5.0, 12.0), bound_fraction=0.25, seed=4)
    off = moved.offsets
    assert np.abs(off).max() <= 20 and off[1:].any()
    for t in frames:
        dy, dx = off[t]
        for o, om in moved.gt.get(t, {}).items():
            np.testing.assert_array_equal(om.to_full((80, 80)), _moved(sim.labels[t] == o, dy, dx))
        # The image content moved with the stage (same pixels where both are in view).
        ys, xs = slice(max(dy, 0), 80 + min(dy, 0)), slice(max(dx, 0), 80 + min(dx, 0))
        src = (slice(max(-dy, 0), 80 + min(-dy, 0)), slice(max(-dx, 0), 80 + min(-dx, 0)))
        np.testing.assert_array_equal(moved.images[t][ys, xs], sim.images[t][src])
    assert moved.info["gt_masks"] == sum(len(v) for v in seq.gt.values())
    # Where the objects are (the markers' centres) moves with the stage; out of view: gone.
    seq.centres = {t: acc.label_centres(sim.labels[t]) for t in frames}
    moved = acc.drift_sequence(seq, (5.0, 12.0), bound_fraction=0.25, seed=4)
    for t in frames:
        for o, (y, x) in seq.centres[t].items():
            y1, x1 = y + off[t][0], x + off[t][1]
            inside = 0 <= y1 < 80 and 0 <= x1 < 80
            assert (moved.centres[t].get(o) == (y1, x1)) if inside else o not in moved.centres[t]
    with pytest.raises(SystemExit, match="--drift must look like"):
        acc.parse_step_range("100:10")


def test_bench_accuracy_field_shift_check_classifies_frames():
    acc = _load("bench_accuracy_ctc")
    offsets = np.array([[0, 0], [10, 0], [10, 0], [10, 30], [40, 30], [40, 30]])
    est = {1: [10, 0], 2: [0, 0], 3: [1, 29], 4: [0, 0], 5: [5, 5]}
    check = acc.field_shift_check(est, offsets)
    assert [r[5] for r in check["rows"]] == ["exact", "exact", "close", "missed", "false"]
    assert check["frames"] == 5 and check["missed"] == check["false"] == 1
    assert acc.reason_kind("the network found 0 pixel(s), fewer than min_area=4") == "nothing found"
    assert acc.reason_kind("it left its object: IoU 0.02 with ...") == "left its object"
    assert acc.reason_kind("its area changed 5-fold from the previous frame") == "area jump"


def test_bench_accuracy_reports_a_missing_data_folder(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_accuracy_ctc.py",
            "--quick",
            "--data",
            str(tmp_path / "nope"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode != 0
    assert "no CTC sequence at" in proc.stderr and "--data" in proc.stderr


# ----------------------------------------------------------------------------- the stand-in network
def test_stand_in_network_answers_with_the_prompt_or_the_oracle():
    import torch

    from rescunet_ij.config import ModelConfig

    standins = _load("_standins")
    cfg = ModelConfig(input_size=32, base_filters=4, concatenation_level=1)
    image = torch.zeros(2, 1, 32, 32)
    image[:, :, 8:20, 8:20] = 1.0  # a bright object
    prompt = torch.zeros(2, 1, 32, 32)
    prompt[:, :, 10:18, 10:18] = 1.0  # its previous mask, a little smaller
    net = standins.stand_in_network(cfg, answer="prompt").eval()
    with torch.no_grad():
        fg = net(image, prompt).softmax(dim=1)[:, 1] > 0.5
    assert torch.equal(fg, prompt[:, 0] > 0) and net.network_s > 0  # the network really ran
    oracle = standins.stand_in_network(cfg, answer="oracle", run_network=False).eval()
    with torch.no_grad():
        fg = oracle(image, prompt).softmax(dim=1)[:, 1] > 0.5
    assert torch.equal(fg, image[:, 0] > 0.5) and oracle.network_s == 0.0
    far = torch.zeros_like(prompt)
    far[:, :, 28:, 28:] = 1.0  # a prompt far from the object: the oracle finds nothing
    with torch.no_grad():
        assert not (oracle(image, far).softmax(dim=1)[:, 1] > 0.5).any()
    with pytest.raises(ValueError, match="answer must be"):
        standins.StandInNetwork(answer="echo")


# ----------------------------------------------------------------------------- propagate_engine
def test_bench_propagate_engine_quick():
    proc = _run(["benchmarks/bench_propagate_engine.py", "--quick", "--device", "cpu"])
    lines = proc.stdout.splitlines()
    # 3 objects x 2 frames, all kept by the oracle; the network's share is part of the total.
    (timed,) = [line for line in lines if line.startswith("f=4 L=1 input 32:")]
    assert "6 object-frames in" in timed and "(network " in timed
    assert any(line.startswith("engine overhead alone") for line in lines)


def test_bench_propagate_engine_counts_every_object_frame():
    engine = _load("bench_propagate_engine")
    from rescunet_ij.config import ModelConfig

    mc = ModelConfig(input_size=32, base_filters=4, concatenation_level=1)
    with_net = engine.run("cpu", 2, 2, True, 8, frame_size=96, model_config=mc)
    without = engine.run("cpu", 2, 2, False, 8, frame_size=96, model_config=mc)
    assert with_net.object_frames == without.object_frames == 4
    assert 0 < with_net.network_s <= with_net.total_s and without.network_s == 0.0


# ----------------------------------------------------------------------------- prompt_augment
def test_bench_prompt_augment_quick(tmp_path):
    out_json, out_md = tmp_path / "pa.json", tmp_path / "pa.md"
    proc = _run(
        [
            "benchmarks/bench_prompt_augment.py",
            "--quick",
            "--seeds",
            "0",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    report = json.loads(out_json.read_text())
    # Two trainings, the same seed, with and without prompt augmentation.
    assert [t["prompt_augment"] for t in report["trainings"]] == [True, False]
    assert report["trainings"][0]["prompt_shift"] >= 2
    assert report["trainings"][1]["prompt_shift"] is None
    for key in ("with", "without"):
        res = report["results"][key]
        # QUICK: 2 objects, 3 propagated frames; every IoU is a real number in [0, 1].
        assert list(res["per_distance"]) == ["1", "2", "3"] and res["final"]["n"] == 2
        assert all(0.0 <= d["mean"] <= 1.0 for d in res["per_distance"].values())
    assert report["sizes"]["chosen"] == "rule"
    md = out_md.read_text()
    assert "| **last frame** |" in md and "QUICK" in md and md.strip() in proc.stdout


# ----------------------------------------------------------------------------- bench_finetune
def test_bench_finetune_quick(tmp_path):
    out_json, out_md = tmp_path / "ft.json", tmp_path / "ft.md"
    proc = _run(
        [
            "benchmarks/bench_finetune.py",
            "--quick",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    report = json.loads(out_json.read_text())
    (movie,) = report["movies"]
    n_frames = report["settings"]["test_frames"]
    for key in ("without", "with"):
        res = movie[key]
        # Each correction is a distinct frame after the first; the user stops at the threshold
        # or when every frame has been corrected.
        assert len(set(res["corrected_frames"])) == res["corrections"] <= n_frames - 1
        assert all(2 <= f <= n_frames for f in res["corrected_frames"])
        assert res["final_min_iou"] >= 0.8 or res["corrections"] == n_frames - 1
    assert report["total"] == {k: movie[k]["corrections"] for k in ("without", "with")}
    md = out_md.read_text()
    assert "| **total** |" in md and "QUICK" in md and md.strip() in proc.stdout


# ----------------------------------------------------------------------------- bench_batch
def test_bench_batch_quick(tmp_path):
    pytest.importorskip("distributed")  # the 'cluster' extra
    out_json, out_md = tmp_path / "batch.json", tmp_path / "batch.md"
    proc = _run(
        ["benchmarks/bench_batch.py", "--quick", "--json", str(out_json), "--markdown", str(out_md)]
    )
    report = json.loads(out_json.read_text())
    res = report["results"]
    assert list(res) == ["loop", "in_process", "workers_1", "workers_2"]
    # 2 movies x 2 objects x 2 propagated frames, every object kept (--keep-going)
    assert report["object_frames"] == 8
    for mode, r in res.items():
        assert r["seconds"] > 0 and r["movies_per_s"] > 0 and r["object_frames_per_s"] > 0, mode
        assert 0 <= r["movies_differing_from_loop"] <= 2, mode
    # the same threads as the loop's commands: the same ROIs (Dask workers run one thread, so
    # rounding may differ there)
    assert res["in_process"]["movies_differing_from_loop"] == 0
    assert res["workers_1"]["statuses"] == ["ok"] and len(res["workers_2"]["movie_seconds"]) == 2
    assert len(res["workers_1"]["workers"]) == 1 and len(res["in_process"]["workers"]) == 1
    md = out_md.read_text()
    assert "| `propagate-batch --workers 2` (Dask) |" in md and "QUICK" in md
    assert md.strip() in proc.stdout


# ----------------------------------------------------------------------------- bench_memory
@pytest.mark.skipif(
    sys.platform != "linux" or not Path("/proc/self/clear_refs").exists(),
    reason="measures memory through Linux's /proc and glibc",
)
def test_bench_memory_runs_on_a_tiny_architecture(tmp_path):
    out_json, out_md = tmp_path / "mem.json", tmp_path / "mem.md"
    spec = '{"base_filters": 4, "input_size": [32, 48], "concatenation_level": 0}'
    proc = _run(
        [
            "benchmarks/bench_memory.py",
            "--spec",
            spec,
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    report = json.loads(out_json.read_text())
    assert [r["training"] for r in report["results"]] == [False, True]
    for r in report["results"]:
        assert r["spec"]["input_size"] == [32, 48] and r["spec"]["concatenation_level"] == 0
        for total in r["totals"].values():
            assert total["measured"] > 0 and total["estimated"] > 0
    md = out_md.read_text()
    assert "| inference | 4 | 32x48 | 0 |" in md and md.strip() in proc.stdout
    assert report["machine"]["torch"]


# ----------------------------------------------------------------------------- bench_bridge
def _imagej_missing() -> str | None:
    """Why the real-ImageJ benchmark cannot run here, or None (as tests/ij/conftest.py decides)."""
    for mod in ("jpype", "scyjava"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install 'rescunet-ij[imagej]')"
    from rescunet_ij.bridge.gateway import find_ij_jar
    from rescunet_ij.errors import ImageJError

    try:
        find_ij_jar()
    except ImageJError as exc:
        return str(exc)
    if not os.environ.get("DISPLAY"):
        return "no display: run under Xvfb (pytest-xvfb installed, or xvfb-run)"
    return None


@pytest.mark.ij
def test_bench_bridge_quick():
    reason = _imagej_missing()
    if reason:
        pytest.skip(reason)
    # A fresh process: it starts its own JVM (one per process), whatever this one holds.
    proc = _run(
        [
            "benchmarks/bench_bridge.py",
            "--size",
            "32",
            "--frames",
            "2",
            "--objects",
            "2",
            "--roi-frames",
            "2",
            "--vertices",
            "8",
            "--repeat",
            "1",
        ],
        timeout=240,
    )
    out = proc.stdout
    assert out.startswith("ImageJ ") and "start ImageJ (JVM + ij.jar)" in out
    assert "re-propagation: replace frames 2..2 (2 ROIs)" in out and "2 removed, 2 added" in out
    assert "ROI Manager -> outlines" in out


# ----------------------------------------------------------------------------- bench_service
def test_bench_service_quick(tmp_path):
    for module in ("fastapi", "uvicorn", "multipart", "httpx"):
        pytest.importorskip(module)  # the 'service' extra
    out_json = tmp_path / "service.json"
    proc = _run(
        ["benchmarks/bench_service.py", "--quick", "--device", "cpu", "--out", str(out_json)]
    )
    report = json.loads(out_json.read_text())
    assert report["quick"] and report["machine"]["device"] == "cpu" and report["machine"]["torch"]
    lat = report["latency"]
    for key in ("in_process", "http", "http_encode", "http_request", "client"):
        assert lat[key]["n"] == 3 == len(lat[key]["samples_ms"]), key
        assert 0 < lat[key]["min_ms"] <= lat[key]["median_ms"] <= lat[key]["p90_ms"], key
    for key in ("http_pct", "http_without_encode_pct", "client_pct"):
        assert isinstance(report["overhead"][key], float)
    # The same work on both sides: 4 objects followed, the same outlines in-process and over HTTP.
    cons = report["consistency"]
    assert cons["objects_predicted"] == {"in_process": 4, "http": 4, "client": 4}
    assert cons["http_same_outlines"] and cons["client_same_outlines"]
    assert report["server"]["stopped_by"] == "SIGTERM" and report["answer_bytes"] > 0
    rows = report["payload"]["rows"]
    assert len(rows) == 6 and all(r["bytes"] > 0 and r["encode_ms"] >= 0 for r in rows)
    assert "HTTP overhead (b - a) / a" in proc.stdout and "| movie | raw .npy" in proc.stdout


# ----------------------------------------------------------------------------- bench_fiji_apply
@pytest.mark.ij
def test_bench_fiji_apply_quick(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parent / "fiji"))
    try:
        from harness import skip_reason
    finally:
        sys.path.pop(0)
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    out_json = tmp_path / "fiji_apply.json"
    proc = _run(["benchmarks/bench_fiji_apply.py", "--quick", "--out", str(out_json)], timeout=600)
    report = json.loads(out_json.read_text())
    for key in ("command", "in_process"):
        assert report[key]["n"] == 3 and 0 < report[key]["min_ms"] <= report[key]["median_ms"]
    # the command did the work: the 4 objects of frame 2 and their predictions on frame 3
    assert report["predicted_in_process"] == 4
    assert report["rois_after"] == 8 and report["frames_after"] == [2, 3]
    assert "Fiji command (call -> ROIs in the manager)" in proc.stdout


# ----------------------------------------------------------------------------- PyJAMAS
def test_bench_pyjamas_import_quick(tmp_path):
    out_json = tmp_path / "pj.json"
    proc = _run(["benchmarks/bench_pyjamas_import.py", "--quick", "--json", str(out_json)])
    own = json.loads(out_json.read_text())["results"]["own_layout"]
    assert own["windows"] > 0 and own["max_abs_diff"] == 0.0
    assert "our network written in PyJAMAS's layout" in proc.stdout


def test_bench_core_compares_with_pyjamas_measured_in_the_same_run():
    core = _load("bench_core")
    res = {
        "train_loop": {"samples_per_s": 10.0, "peak_rss_mb": 1024},
        "propagate": {"s_per_object_frame": 0.05, "object_frames_per_s": 20.0, "peak_rss_mb": 600},
        "pyjamas_train": {"samples_per_s": 5.0, "peak_rss_mb": 2048},
        "pyjamas_predict": {"s_per_object_frame": 2.5, "peak_rss_mb": 1536},
    }
    ref = core.measured_pyjamas(res)
    rows = {r[1]: r for r in core.rows_for("cpu", res, ref)}
    train = rows["training samples/s (train_model, with data loading)"]
    assert train[3] == "5" and train[4] == "2.00x" and train[-1] == "yes"
    prop = rows["propagation s per object-frame"]
    assert prop[3] == "2.5" and prop[4] == "50.0x faster" and prop[-1] == "yes"
    assert rows["training peak RSS (whole process), GiB"][4] == "0.50x"
    # without both PyJAMAS runs the quoted figures stay the reference
    assert core.measured_pyjamas({**res, "pyjamas_predict": {"error": "boom"}}) is None
    assert core._task_order(["train_loop", "train_step", "propagate"], True) == [
        "train_loop",
        "pyjamas_train",
        "train_step",
        "propagate",
        "pyjamas_predict",
    ]


def test_bench_large_movie_quick(tmp_path):
    out = tmp_path / "large.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench_large_movie.py", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["lazy"]["lazy"] and not result["in_memory"]["lazy"]
    assert result["lazy"]["object_frames"] == 5 * 4 and result["lazy"]["iou"] > 0.9


# ----------------------------------------------------------------------------- bench_cold_start
def test_bench_cold_start_quick_breaks_the_run_down(tmp_path):
    out = tmp_path / "cold.json"
    _run(["benchmarks/bench_cold_start.py", "--quick", "--json", str(out)])
    report = json.loads(out.read_text())
    phases = report["phases"]
    assert set(phases) == {"startup", "imports", "read", "model load", "predict", "write", "other"}
    assert report["wall_s"]["median"] > 0 and phases["predict"]["s"] > 0
    # every import the run made is attributed to one phase
    total = sum(p["imports_s"] for p in phases.values())
    assert total == pytest.approx(report["imports_total_s"], rel=0.05, abs=0.05)


# ------------------------------------------------------------------------- bench_time_to_accuracy
def test_bench_time_to_accuracy_quick(tmp_path):
    out = tmp_path / "tta.json"
    _run(["benchmarks/bench_time_to_accuracy.py", "--quick", "--json", str(out)])
    report = json.loads(out.read_text())
    names = [r["name"] for r in report["rows"]]
    assert names == ["default", "f16 channels_last bf16 worker"]
    for r in report["rows"]:
        assert len(r["curve"]) == report["epochs"] == 2
        assert 0.0 <= r["final_iou"] <= 1.0 and r["total_s"] > 0
    assert set(report["cpu_flags"]) >= {"avx512_bf16", "amx_bf16"} or not report["cpu_flags"]


def test_time_to_accuracy_is_the_first_epoch_at_the_level():
    tta = _load("bench_time_to_accuracy")
    curve = [(10.0, 0.2), (20.0, 0.75), (30.0, 0.70), (40.0, 0.8)]
    r = tta.summarise(curve, 0.8, 0.95)
    assert r["epoch_reached"] == 4 and r["time_to_target_s"] == 40.0
    r = tta.summarise(curve, 0.78, 0.95)  # 0.741: epoch 2, even though epoch 3 dips below
    assert r["epoch_reached"] == 2 and r["time_to_target_s"] == 20.0
    assert tta.summarise(curve, 0.9, 0.95)["epoch_reached"] is None


# ----------------------------------------------------------------------------- every script covered
SCRIPTS = sorted(p for p in BENCH.glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_script_is_documented_listed_and_smoke_tested(script):
    import ast

    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    assert doc and len(doc.splitlines()) >= 3, f"{script.name} needs a module docstring"
    readme = (BENCH / "README.md").read_text(encoding="utf-8")
    assert f"| `{script.name}` |" in readme, f"{script.name} is not in benchmarks/README.md"
    if script.name.startswith("_"):
        return  # a helper module, tested through the scripts and on its own above
    assert f"python benchmarks/{script.name}" in doc, f"{script.name}: say how to run it"
    this_file = Path(__file__).read_text(encoding="utf-8")
    assert f'"benchmarks/{script.name}"' in this_file, f"{script.name} has no smoke test here"


def test_stand_in_networks_exist_once():
    # One shared stand-in (benchmarks/_standins.py), not a copy per script.
    for script in SCRIPTS:
        text = script.read_text(encoding="utf-8")
        if script.name != "_standins.py":
            assert "(ReSCUNet)" not in text, f"{script.name} defines its own stand-in network"
    for name in ("bench_core.py", "bench_propagate_engine.py"):
        assert "from _standins import stand_in_network" in (BENCH / name).read_text()
