"""Latency of "Apply to current frame" through the HTTP service, against the same work in-process.

Setting: a 512x512 synthetic movie with 20 objects (:func:`rescunet_ij.sample_data.synthetic_movie`)
and a model file of realistic size: network input 64, concatenation level 1, base filters 64
(the paper's architecture, ~31 M parameters), saved with
:func:`rescunet_ij.io.checkpoint.save_model` into a temporary models folder, because the service
loads models from files. The stand-in networks of ``_standins.py`` cannot travel through a model
file (a file holds weights only; the service loads a plain ReSCU-Net, and with random weights it
loses every object after one frame, so the answer would hold no outline). Instead the file holds a
plain ReSCU-Net with random weights except one hand-set path: two channels of the first image
block threshold the (normalised) window and pass it, through the full-resolution skip connection
and the last decoder block, to the head, which reads only those two channels. Every convolution
still runs at full size with random weights (the cost is the real network's, zeros cost as much as
any value), and the masks follow the bright objects, so the answer carries 20 outlines as in real
use. ``--network random`` uses all-random weights instead (every object lost; same network cost).
The in-process and the HTTP runs load the same file and do identical work: the same two frames,
the same outlines, the same motion setting (``--motion``, default ``auto``); the script checks
that they return the same outlines.

The server is a real process (``python -m rescunet_ij serve --port 0 --models-dir TMP --device
...``), started by this script and always stopped at the end (SIGTERM, then kill). The model is
loaded once by its path (``POST /v1/models/load``), warm. Timed, interleaved, after ``--warmup``
(3) unrecorded rounds, ``--repeats`` (20) times each, median and p90 in ms:

* **(a) in-process**: ``api.propagate(two_frames, outlines, model, next_only=True, config=...)``
  with a model loaded once by ``api.load_model``: the engine's cost of predicting one frame;
* **(b) HTTP, raw**: a ``POST /v1/apply`` with ``httpx`` (one kept-alive connection): encoding the
  two frames as TIFF (``api.write_movie``, timed apart as *encode*) and the outlines as JSON, the
  request, the server's decoding, the same propagation and the JSON answer, parsed;
* **(c) client**: ``Client.propagate(movie, outlines, model, next_only=True)``, which cuts the two
  frames out of the movie, encodes and sends them (``POST /v1/propagate``) and parses the answer.

HTTP overhead = (b - a) / a of the medians (target under 20 %). The server-side wire costs are
also timed in-process (``wire.read_upload`` of the TIFF, the outlines' parsing, ``wire.run_json``)
to show where the overhead goes. A payload table justifies TIFF + JSON: bytes and encode + decode
time of the two-frame 16-bit cut-out as TIFF (``api.write_movie``/``read_movie``), as TIFF written
in memory by tifffile, as raw ``.npy`` and as zlib-compressed TIFF, and of the outlines as JSON
against an ImageJ RoiSet.zip (``api.write_outlines``/``read_outlines``).

Usage::

    python benchmarks/bench_service.py                       # CPU, 512x512, 20 objects, f=64
    python benchmarks/bench_service.py --device cuda --out benchmarks/results/service_cuda.json
    python benchmarks/bench_service.py --quick               # tiny settings, seconds (smoke test)

Results go to ``--out`` (default ``benchmarks/results/bench_service.json``; ``--quick`` writes
only when ``--out`` is given), with the machine (CPU model, cores, torch, device).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rescunet_ij import api
from rescunet_ij.config import ModelConfig, NormalizationConfig
from rescunet_ij.io.checkpoint import save_model
from rescunet_ij.model.build import build_model
from rescunet_ij.propagate.propagator import ObjectLostWarning

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "bench_service.json"
LISTENING = re.compile(r"rescunet-ij service listening on (http://\S+)")
TARGET_OVERHEAD_PCT = 20.0
THRESHOLD = 0.35
"""The hand-set network's foreground threshold on the normalised window (objects ~0.5-1)."""
GAIN = 20.0
"""Its logit per unit of intensity above the threshold (sharp, like a trained network)."""


# ----------------------------------------------------------------------------- the model file
def threshold_network(mc: ModelConfig, seed: int = 0) -> torch.nn.Module:
    """A plain ReSCU-Net with random weights whose output is ``GAIN * (window - THRESHOLD)``.

    Channels 0 and 1 of the first image block compute ``relu(x - t)`` and ``relu(t - x)`` and pass
    them on unchanged; the last decoder block copies them from the skip connection; the head
    reads only them. Every other weight is random (Kaiming), so the cost is the full network's.
    """
    torch.manual_seed(seed)
    net = build_model(mc)
    f = mc.base_filters
    if f < 2:
        raise SystemExit("the hand-set network needs base filters >= 2")
    centre = (slice(None), slice(None), 1, 1)
    with torch.no_grad():
        enc = net.encoder[0]
        for conv in (enc.conv1, enc.conv2, net.decoder[-1].conv1, net.decoder[-1].conv2):
            conv.weight[:2].zero_()
            conv.bias[:2].zero_()
        # relu(x - t), relu(t - x) from the image (channel 0 of the input)
        enc.conv1.weight[0, 0, 1, 1] = 1.0
        enc.conv1.bias[0] = -THRESHOLD
        enc.conv1.weight[1, 0, 1, 1] = -1.0
        enc.conv1.bias[1] = THRESHOLD
        enc.conv2.weight[centre][:2, :2] = torch.eye(2)
        # The last decoder block sees cat([upsampled, skip]): the skip's channels start at f.
        dec = net.decoder[-1]
        dec.conv1.weight[centre][:2, f : f + 2] = torch.eye(2)
        dec.conv2.weight[centre][:2, :2] = torch.eye(2)
        net.head.weight.zero_()
        net.head.bias.zero_()
        net.head.weight[1, 0, 0, 0] = GAIN
        net.head.weight[1, 1, 0, 0] = -GAIN
    return net.eval()


def make_model_file(folder: Path, mc: ModelConfig, network: str) -> Path:
    """Save the benchmark's network (``threshold`` or ``random``) as a real model file."""
    if network == "threshold":
        net = threshold_network(mc)
    else:
        torch.manual_seed(0)
        net = build_model(mc).eval()
    return save_model(folder / f"bench-{network}.rescunet", net, mc, NormalizationConfig())


# ----------------------------------------------------------------------------- the server
class Server:
    """``rescunet-ij serve`` in a child process; :meth:`stop` always ends it."""

    def __init__(self, models_dir: Path, device: str, log: Path) -> None:
        self.cmd = [
            sys.executable,
            "-m",
            "rescunet_ij",
            "serve",
            "--port",
            "0",
            "--models-dir",
            str(models_dir),
            "--device",
            device,
        ]
        self.log_path = log
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.start_s = 0.0
        self.stopped_by = ""

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def start(self, timeout: float = 180.0) -> str:
        """Start it, wait for its 'listening' line and for /v1/health; return its URL."""
        import httpx

        t0 = time.perf_counter()
        log = self.log_path.open("w")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=REPO
        )
        log.close()
        lines: queue.Queue[str | None] = queue.Queue()

        def drain() -> None:  # keeps reading, so the pipe never fills
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self.url:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not announce its address within {timeout:g} s "
                    f"(exit code {self.proc.poll()}); its log:\n{self._log_tail()}"
                )
            m = LISTENING.search(line or "")
            if m:
                self.url = m.group(1)
        while True:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server never became healthy; its log:\n{self._log_tail()}")
            time.sleep(0.1)
        self.start_s = time.perf_counter() - t0
        return self.url

    def stop(self) -> None:
        """SIGTERM, then kill if it has not ended within 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
            self.stopped_by = "SIGTERM"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
            self.stopped_by = "kill"


# ----------------------------------------------------------------------------- helpers
def tiff_bytes(movie: Any, folder: Path) -> bytes:
    """The movie as ImageJ TIFF bytes, written as the client writes them (``api.write_movie``)."""
    return api.write_movie(folder / "frames.tif", movie, overwrite=True).read_bytes()


def outlines_json(outlines: list) -> bytes:
    """Outlines as the wire's JSON (1-based frames, vertices rounded to 1/1000 px)."""
    items = [
        {"object_id": o.object_id, "frame": o.frame + 1, "polygon": np.round(o.polygon, 3).tolist()}
        for o in outlines
    ]
    return json.dumps(items).encode()


def stats_ms(seconds: list[float]) -> dict[str, float]:
    """Median, p90, min and max in ms."""
    ms = np.asarray(seconds) * 1000.0
    return {
        "median_ms": round(float(np.median(ms)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "min_ms": round(float(ms.min()), 2),
        "max_ms": round(float(ms.max()), 2),
        "n": int(ms.size),
        "samples_ms": [round(float(v), 2) for v in ms],
    }


def paired_ms(b: list[float], a: list[float]) -> float:
    """Median of the per-round differences ``b - a``, in ms."""
    return round(float(np.median(np.subtract(b, a))) * 1000.0, 2)


def time_median(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls (after one unrecorded call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def polygons(outlines: list) -> dict[int, np.ndarray]:
    """Object id -> polygon of the predicted outlines (rounded as on the wire)."""
    return {o.object_id: np.round(np.asarray(o.polygon, dtype=float), 3) for o in outlines}


def same_outlines(a: dict[int, np.ndarray], b: dict[int, np.ndarray]) -> bool:
    """Whether two predictions have the same objects and (to 1/1000 px) the same polygons."""
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and np.allclose(a[k], b[k], atol=2e-3) for k in a
    )


def machine(device: str) -> dict[str, Any]:
    """CPU model, cores, torch, device and load, for the result file."""
    model_name = platform.processor()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        found = re.search(r"^Model name:\s*(.+)$", out, re.M)
        if found:
            model_name = found.group(1).strip()
    except (OSError, subprocess.SubprocessError):
        pass
    gpu = None
    if device.startswith("cuda") and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(torch.device(device))
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": model_name,
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "gpu": gpu,
    }


# ----------------------------------------------------------------------------- payloads
def payload_table(cut: Any, seeds: list, folder: Path, repeats: int) -> dict[str, Any]:
    """Bytes and encode + decode ms of the two-frame cut-out and of the outlines, per format."""
    import tifffile

    arr = np.ascontiguousarray(cut.values.reshape(-1, *cut.shape[-2:]))  # (2, Y, X) uint16

    def api_tiff() -> tuple[Callable[[], bytes], Callable[[bytes], Any]]:
        def enc() -> bytes:
            return tiff_bytes(cut, folder)

        def dec(data: bytes) -> Any:
            path = folder / "decode.tif"
            path.write_bytes(data)
            return api.read_movie(path).values

        return enc, dec

    def mem_tiff(**kw: Any) -> tuple[Callable[[], bytes], Callable[[bytes], Any]]:
        def enc() -> bytes:
            buf = io.BytesIO()
            tifffile.imwrite(buf, arr, imagej=not kw, **kw)
            return buf.getvalue()

        return enc, lambda data: tifffile.imread(io.BytesIO(data))

    def npy() -> tuple[Callable[[], bytes], Callable[[bytes], Any]]:
        def enc() -> bytes:
            buf = io.BytesIO()
            np.save(buf, arr)
            return buf.getvalue()

        return enc, lambda data: np.load(io.BytesIO(data))

    rows = []
    for name, (enc, dec) in (
        ("TIFF (api.write_movie / read_movie)", api_tiff()),
        ("TIFF (tifffile, in memory)", mem_tiff()),
        ("raw .npy (numpy save / load)", npy()),
        ("TIFF zlib (tifffile compression='zlib')", mem_tiff(compression="zlib")),
    ):
        data = enc()
        back = np.asarray(dec(data)).reshape(arr.shape)
        assert np.array_equal(back, arr), name
        rows.append(
            {
                "what": "movie",
                "format": name,
                "bytes": len(data),
                "encode_ms": round(time_median(enc, repeats) * 1000, 2),
                "decode_ms": round(time_median(lambda d=data, f=dec: f(d), repeats) * 1000, 2),
            }
        )

    json_data = outlines_json(seeds)
    roiset = folder / "RoiSet.zip"

    def write_roiset() -> bytes:
        return api.write_outlines(roiset, seeds, cut, overwrite=True).read_bytes()

    def read_roiset(data: bytes) -> Any:
        roiset.write_bytes(data)
        return api.read_outlines(roiset, cut)

    for name, enc, dec in (
        ("JSON (the wire's)", lambda: outlines_json(seeds), json.loads),
        ("ImageJ RoiSet.zip (api.write_outlines)", write_roiset, read_roiset),
    ):
        data = enc()
        rows.append(
            {
                "what": f"{len(seeds)} outlines",
                "format": name,
                "bytes": len(data),
                "encode_ms": round(time_median(enc, repeats) * 1000, 2),
                "decode_ms": round(time_median(lambda d=data, f=dec: f(d), repeats) * 1000, 2),
            }
        )
    return {"pixels_bytes": int(arr.nbytes), "json_outlines_bytes": len(json_data), "rows": rows}


# ----------------------------------------------------------------------------- the benchmark
def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, time (a), (b), (c) and the payloads; the report as a dict."""
    import httpx

    from rescunet_ij.service.client import Client
    from rescunet_ij.service.wire import (
        ApplyParams,
        parse_outlines,
        read_upload,
        run_json,
        to_outlines,
    )

    mc = ModelConfig(
        input_size=args.input_size, base_filters=args.base_filters, concatenation_level=1
    )
    n_frames = 4
    sim = api.synthetic_movie(
        n_frames, (args.size, args.size), n_objects=args.objects, radius=(9.0, 13.0), seed=3
    )
    movie = api.as_movie(sim.images, dims="tyx")
    prev, target = n_frames - 2, n_frames - 1  # predict the last frame from the one before
    cut = movie.isel(t=slice(prev, target + 1))  # keeps the movie's frame numbers
    seeds = api.outlines_from_labels(sim.labels, [prev])
    if len(seeds) != args.objects:
        raise SystemExit(f"the synthetic movie has {len(seeds)} objects, not {args.objects}")
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp_name:
        tmp = Path(tmp_name)
        models_dir = tmp / "models"
        work = tmp / "work"
        work.mkdir()
        model_path = make_model_file(models_dir, mc, args.network)
        model = api.load_model(model_path, args.device)
        config = api.propagate_config(device=args.device, motion=args.motion)

        def apply_in_process() -> Any:
            return api.propagate(cut, seeds, model, next_only=True, config=config)

        server = Server(models_dir, args.device, tmp / "server.log")
        http = client = None
        try:
            url = server.start()
            print(f"server: {url} (ready after {server.start_s:.1f} s)", flush=True)
            http = httpx.Client(base_url=url + "/v1", timeout=600)
            client = Client(url)
            t0 = time.perf_counter()
            model_id = client.load_model(model_path)
            load_s = time.perf_counter() - t0
            params = json.dumps({"model": model_id, "first_index": prev + 1, "motion": args.motion})
            last_answer: dict[str, Any] = {}

            def apply_http() -> tuple[float, float, float]:
                t0 = time.perf_counter()
                tiff = tiff_bytes(cut, work)
                seeds_json = outlines_json(seeds)
                t1 = time.perf_counter()
                r = http.post(
                    "/apply",
                    files={
                        "movie": ("frames.tif", tiff, "image/tiff"),
                        "outlines": ("outlines.json", seeds_json, "application/json"),
                    },
                    data={"params": params},
                )
                if r.status_code != 200:
                    raise RuntimeError(f"POST /v1/apply answered {r.status_code}: {r.text}")
                last_answer["body"] = r.json()
                last_answer["bytes"] = len(r.content)
                t2 = time.perf_counter()
                return t2 - t0, t1 - t0, t2 - t1

            def apply_client() -> Any:
                return client.propagate(movie, seeds, model_id, next_only=True, motion=args.motion)

            times: dict[str, list[float]] = {
                k: [] for k in ("a", "b", "b_encode", "b_request", "c")
            }
            for i in range(args.warmup + args.repeats):
                t0 = time.perf_counter()
                local = apply_in_process()
                a = time.perf_counter() - t0
                b, b_enc, b_req = apply_http()
                t0 = time.perf_counter()
                remote = apply_client()
                c = time.perf_counter() - t0
                if i >= args.warmup:
                    for k, v in zip(times, (a, b, b_enc, b_req, c)):
                        times[k].append(v)
            load_after = os.getloadavg()

            # Where the overhead goes: the server's wire steps, timed here (same code).
            tiff = tiff_bytes(cut, work)
            raw_outlines = outlines_json(seeds)
            ap = ApplyParams.model_validate_json(params)
            mv = read_upload(tiff, prev + 1, "t", "frames.tif")
            pp = ap.as_propagate(int(mv.sizes["t"]))
            wire = {
                "read_upload_ms": time_median(
                    lambda: read_upload(tiff, prev + 1, "t", "frames.tif"), 10
                )
                * 1000,
                "parse_outlines_ms": time_median(
                    lambda: to_outlines(parse_outlines(raw_outlines), mv, pp), 10
                )
                * 1000,
                "run_json_ms": time_median(lambda: run_json(local, pp, mv), 10) * 1000,
            }
            wire = {k: round(v, 2) for k, v in wire.items()}
        finally:
            if http is not None:
                http.close()
            if client is not None:
                client.close()
            server.stop()

        answer = last_answer["body"]
        ref = polygons(local.predicted)
        http_polys = {
            o["object_id"]: np.round(np.asarray(o["polygon"], dtype=float), 3)
            for o in answer["outlines"]
        }
        consistent = {
            "objects_predicted": {
                "in_process": len(local.predicted),
                "http": len(answer["outlines"]),
                "client": len(remote.predicted),
            },
            "lost": {
                "in_process": len(local.lost),
                "http": len(answer["lost"]),
                "client": len(remote.lost),
            },
            "http_same_outlines": same_outlines(ref, http_polys),
            "client_same_outlines": same_outlines(ref, polygons(remote.predicted)),
            "predicted_frame": {
                "in_process": local.end_frame,
                "http": answer["end_frame"] - 1,
                "client": remote.end_frame,
            },
        }
        payload = payload_table(cut, seeds, work, args.payload_repeats)

    lat = {
        "in_process": stats_ms(times["a"]),
        "http": stats_ms(times["b"]),
        "http_encode": stats_ms(times["b_encode"]),
        "http_request": stats_ms(times["b_request"]),
        "client": stats_ms(times["c"]),
    }
    a_med = lat["in_process"]["median_ms"]
    overhead = {
        "http_pct": round((lat["http"]["median_ms"] - a_med) / a_med * 100, 1),
        "http_without_encode_pct": round(
            (lat["http_request"]["median_ms"] - a_med) / a_med * 100, 1
        ),
        "client_pct": round((lat["client"]["median_ms"] - a_med) / a_med * 100, 1),
        "http_ms": round(lat["http"]["median_ms"] - a_med, 2),
        "client_ms": round(lat["client"]["median_ms"] - a_med, 2),
        # The rounds are interleaved (a, b, c): the median of each round's difference is less
        # sensitive to the machine's load drifting than the difference of the medians.
        "http_paired_median_ms": paired_ms(times["b"], times["a"]),
        "client_paired_median_ms": paired_ms(times["c"], times["a"]),
        "target_pct": TARGET_OVERHEAD_PCT,
    }
    overhead["met"] = overhead["http_pct"] < TARGET_OVERHEAD_PCT
    return {
        "benchmark": "bench_service",
        "date": date.today().isoformat(),
        "quick": args.quick,
        "machine": machine(args.device),
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in load_after],
        },  # fmt: skip
        "settings": {
            "size": args.size,
            "objects": args.objects,
            "network": args.network,
            "model": mc.model_dump(mode="json"),
            "parameters": sum(p.numel() for p in build_model(mc).parameters()),
            "motion": args.motion,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "frames": [prev + 1, target + 1],
        },
        "server": {
            "ready_s": round(server.start_s, 2),
            "model_load_s": round(load_s, 3),
            "stopped_by": server.stopped_by,
        },
        "latency": lat,
        "overhead": overhead,
        "server_wire_steps": wire,
        "answer_bytes": last_answer["bytes"],
        "consistency": consistent,
        "payload": payload,
    }


def print_report(r: dict[str, Any]) -> None:
    """The report as markdown tables."""
    m, s, lat = r["machine"], r["settings"], r["latency"]
    print(
        f"\nMachine: {m['cpu']}, {m['usable_cpus']} CPU(s), torch {m['torch']} "
        f"({m['torch_threads']} threads), device {m['device']}"
        + (f" ({m['gpu']})" if m["gpu"] else "")
    )
    print(
        f"Setting: {s['size']}x{s['size']} frames, {s['objects']} objects, network input "
        f"{s['model']['input_size'][0]}, f={s['model']['base_filters']}, L=1 "
        f"({s['parameters'] / 1e6:.1f} M parameters, '{s['network']}' weights), motion "
        f"{s['motion']}; predict frame {s['frames'][1]} from frame {s['frames'][0]}; "
        f"{s['repeats']} repeats after {s['warmup']} warm-ups"
    )
    print("\n| path | median ms | p90 ms | overhead vs in-process |")
    print("|---|---|---|---|")
    a = lat["in_process"]["median_ms"]
    for key, label in (
        ("in_process", "(a) in-process `api.propagate`"),
        ("http", "(b) HTTP `POST /v1/apply` (httpx), total"),
        ("http_encode", "    of which: encode 2-frame TIFF + outlines JSON"),
        ("http_request", "    of which: request + server + answer parsed"),
        ("client", "(c) `Client.propagate(next_only=True)`"),
    ):
        v = lat[key]
        over = "" if key in ("in_process", "http_encode") else (
            f"{v['median_ms'] - a:+.1f} ms ({(v['median_ms'] - a) / a * 100:+.1f} %)"
        )  # fmt: skip
        print(f"| {label} | {v['median_ms']:.1f} | {v['p90_ms']:.1f} | {over} |")
    o = r["overhead"]
    print(
        f"\nHTTP overhead (b - a) / a = {o['http_pct']:.1f} % (target < {o['target_pct']:g} %: "
        f"{'met' if o['met'] else 'NOT met'}); without the TIFF encode "
        f"{o['http_without_encode_pct']:.1f} %; client {o['client_pct']:.1f} %. Median of the "
        f"per-round differences: HTTP {o['http_paired_median_ms']:+.1f} ms, client "
        f"{o['client_paired_median_ms']:+.1f} ms"
    )
    w = r["server_wire_steps"]
    print(
        f"Server-side wire steps (timed in-process): read_upload {w['read_upload_ms']:.1f} ms, "
        f"outlines parse {w['parse_outlines_ms']:.1f} ms, run_json {w['run_json_ms']:.1f} ms; "
        f"answer {r['answer_bytes']} bytes"
    )
    c = r["consistency"]
    print(
        f"Objects predicted (in-process/HTTP/client): {c['objects_predicted']['in_process']}/"
        f"{c['objects_predicted']['http']}/{c['objects_predicted']['client']}, lost "
        f"{c['lost']['in_process']}/{c['lost']['http']}/{c['lost']['client']}; same outlines: "
        f"HTTP {c['http_same_outlines']}, client {c['client_same_outlines']}"
    )
    print(
        f"Server ready after {r['server']['ready_s']:.1f} s; model load by path "
        f"{r['server']['model_load_s'] * 1000:.0f} ms"
    )
    p = r["payload"]
    print(f"\nPayload (pixels: {p['pixels_bytes']} bytes)\n")
    print("| what | format | bytes | encode ms | decode ms |")
    print("|---|---|---|---|---|")
    for row in p["rows"]:
        print(
            f"| {row['what']} | {row['format']} | {row['bytes']} | {row['encode_ms']:.2f} | "
            f"{row['decode_ms']:.2f} |"
        )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the tables and writes the result JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the server's and in-process)")
    ap.add_argument("--objects", type=int, default=20)
    ap.add_argument("--size", type=int, default=512, help="frame width and height, px")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--base-filters", type=int, default=64)
    ap.add_argument("--input-size", type=int, default=64)
    ap.add_argument("--motion", choices=("auto", "off", "global", "object"), default="auto")
    ap.add_argument(
        "--network",
        choices=("threshold", "random"),
        default="threshold",
        help="threshold: random weights plus a hand-set path that follows the objects; "
        "random: all weights random (every object lost, same cost)",
    )
    ap.add_argument("--payload-repeats", type=int, default=20)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="tiny settings (128x128, 4 objects, base filters 8, 3 repeats): checks it runs",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"result JSON (default {DEFAULT_OUT.relative_to(REPO)}; --quick: none unless given)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.objects, args.repeats, args.warmup = 128, 4, 3, 1
        args.base_filters, args.payload_repeats = 8, 3
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)
    warnings.simplefilter("ignore", ObjectLostWarning)  # counted in the report instead
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {args.device}",
        flush=True,
    )
    report = run(args)
    print_report(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
