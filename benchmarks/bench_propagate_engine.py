"""Micro-benchmark of the propagation engine: seconds per object-frame, and the engine's overhead.

Setting: 10 objects x 10 frames of a 256x256 synthetic movie
(:func:`rescunet_ij.sample_data.synthetic_movie`), a ReSCU-Net with network input 64, concatenation
level 1 and 64 base filters (~31 M parameters, random weights). So that tracking stays realistic
whatever the random weights predict, the network's output is replaced by an oracle (bright pixels
near the previous mask; ``_standins.StandInNetwork``, ``answer="oracle"``) *after* the full
ReSCU-Net forward pass has run: the cost is the real network's, the masks are the oracle's.

Reported: total seconds per object-frame, the share spent in the network's forward passes, and
the engine's own overhead (windows, normalisation, merging, clean-up, outlines) measured with the
oracle alone. The PyJAMAS reference is 3.4 s per object per 256x256 frame on 2 CPU cores.

Usage::

    python benchmarks/bench_propagate_engine.py [--device cpu|cuda] [--objects 10] [--frames 10]
    python benchmarks/bench_propagate_engine.py --quick     # tiny settings, seconds (smoke test)
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch
from _standins import stand_in_network  # beside this script

from rescunet_ij.config import ModelConfig, NormalizationConfig, PropagateConfig
from rescunet_ij.io.checkpoint import model_from_network
from rescunet_ij.propagate import Propagator
from rescunet_ij.sample_data import synthetic_movie

PYJAMAS_S_PER_OBJECT_FRAME = 3.4
"""PyJAMAS on 2 CPU cores, as quoted in the issue (not re-measured here)."""


@dataclass
class Timing:
    """One propagation run: total and network seconds, and the object-frames predicted."""

    total_s: float
    network_s: float
    object_frames: int


def run(
    device: str,
    n_objects: int,
    n_frames: int,
    run_network: bool,
    batch_size: int,
    *,
    frame_size: int = 256,
    model_config: ModelConfig | None = None,
    motion: str | None = None,
) -> Timing:
    """Propagate ``n_objects`` through ``n_frames`` frames after one warm-up run; time it."""
    sim = synthetic_movie(
        n_frames + 1, (frame_size, frame_size), n_objects=n_objects, radius=(9.0, 13.0), seed=3
    )
    mc = model_config or ModelConfig(
        input_size=64, base_filters=64, concatenation_level=1, dropout=True
    )
    torch.manual_seed(0)
    net = stand_in_network(mc, answer="oracle", run_network=run_network)
    model = model_from_network(net, mc, NormalizationConfig())
    settings = {"device": device, "batch_size": batch_size}
    if motion is not None:  # left out: the engine's default (also for engines without the option)
        settings["motion"] = motion
    prop = Propagator(model, PropagateConfig(**settings))
    state = prop.init_state(sim.images)
    for k in range(1, n_objects + 1):
        prop.add_mask(state, 0, k, sim.labels[0] == k)
    # Warm-up (first-call allocations, cuDNN autotuning) on a throw-away state.
    warm = prop.init_state(sim.images[:2])
    prop.add_mask(warm, 0, 1, sim.labels[0] == 1)
    list(prop.propagate(warm, 0))
    net.network_s = 0.0
    t0 = time.perf_counter()
    object_frames = sum(len(r.objects) for r in prop.propagate(state, 0, n_frames))
    return Timing(time.perf_counter() - t0, net.network_s, object_frames)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the two measurements."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--objects", type=int, default=10)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument(
        "--motion",
        choices=("auto", "off", "global", "object"),
        default=None,
        help="motion compensation (default: the engine's default, auto): its cost is part of the "
        "engine's overhead",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="tiny settings (3 objects, 2 frames, 96x96, base filters 4, input 32): checks it runs",
    )
    args = ap.parse_args(argv)
    size, mc = 256, None
    if args.quick:
        args.objects, args.frames, size = 3, 2, 96
        mc = ModelConfig(input_size=32, base_filters=4, concatenation_level=1)
    arch = mc or ModelConfig(input_size=64, base_filters=64, concatenation_level=1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {args.device}")
    t = run(
        args.device,
        args.objects,
        args.frames,
        True,
        args.batch_size,
        frame_size=size,
        model_config=mc,
        motion=args.motion,
    )
    n = t.object_frames
    print(
        f"f={arch.base_filters} L={arch.concatenation_level} input {arch.input_size[0]}: "
        f"{n} object-frames in {t.total_s:.2f} s = {t.total_s / n:.3f} s/object-frame "
        f"(network {t.network_s / n:.3f}, rest {(t.total_s - t.network_s) / n:.3f}); "
        f"{PYJAMAS_S_PER_OBJECT_FRAME / (t.total_s / n):.0f}x faster than PyJAMAS' "
        f"{PYJAMAS_S_PER_OBJECT_FRAME} s"
    )
    t = run(
        args.device,
        args.objects,
        args.frames,
        False,
        args.batch_size,
        frame_size=size,
        model_config=mc,
        motion=args.motion,
    )
    print(
        "engine overhead alone (oracle, no U-Net): "
        f"{t.total_s / t.object_frames * 1000:.1f} ms/object-frame"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
