"""Micro-benchmark of the propagation engine: seconds per object-frame, and the engine's overhead.

Setting: 10 objects x 10 frames of a 256x256 synthetic movie
(:func:`rescunet_ij.sample_data.synthetic_movie`), a ReSCU-Net with network input 64, concatenation
level 1 and 64 base filters (~31 M parameters, random weights). So that tracking stays realistic
whatever the random weights predict, the network's output is replaced by an oracle (bright pixels
near the previous mask) *after* the full ReSCU-Net forward pass has run: the cost is the real
network's, the masks are the oracle's.

Reported: total seconds per object-frame, the share spent in the network's forward passes, and
the engine's own overhead (windows, normalisation, merging, clean-up, outlines) measured with the
oracle alone. The PyJAMAS reference is 3.4 s per object per 256x256 frame on 2 CPU cores.

Usage::

    python benchmarks/bench_propagate_engine.py [--device cpu|cuda] [--objects 10] [--frames 10]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from rescunet_ij.config import ModelConfig, NormalizationConfig, PropagateConfig
from rescunet_ij.io.checkpoint import model_from_network
from rescunet_ij.model import ReSCUNet
from rescunet_ij.propagate import Propagator
from rescunet_ij.sample_data import synthetic_movie


class TimedOracleNet(ReSCUNet):
    """Runs the real ReSCU-Net (unless ``skip_network``), then returns oracle logits."""

    def __init__(self, skip_network: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.skip_network = skip_network
        self.network_s = 0.0

    def forward(self, image: torch.Tensor, prev_mask: torch.Tensor) -> torch.Tensor:
        if not self.skip_network:
            if image.is_cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = super().forward(image, prev_mask)
            if out.is_cuda:
                torch.cuda.synchronize()
            self.network_s += time.perf_counter() - t0
        near = F.max_pool2d(prev_mask.float(), 13, stride=1, padding=6) > 0
        fg = 20.0 * (image[:, :1].float() - 0.5)
        fg = torch.where(near, fg, torch.full_like(fg, -20.0))
        return torch.cat([torch.zeros_like(fg), fg], dim=1)


def run(
    device: str, n_objects: int, n_frames: int, skip_network: bool, batch_size: int
) -> tuple[float, float, int]:
    sim = synthetic_movie(n_frames + 1, (256, 256), n_objects=n_objects, radius=(9.0, 13.0), seed=3)
    mc = ModelConfig(input_size=64, base_filters=64, concatenation_level=1, dropout=True)
    torch.manual_seed(0)
    net = TimedOracleNet(
        skip_network, in_channels=1, base_filters=64, concatenation_level=1, dropout=True
    )
    model = model_from_network(net, mc, NormalizationConfig())
    prop = Propagator(model, PropagateConfig(device=device, batch_size=batch_size))
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
    return time.perf_counter() - t0, net.network_s, object_frames


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--objects", type=int, default=10)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {args.device}")
    total, network, n = run(args.device, args.objects, args.frames, False, args.batch_size)
    print(
        f"f=64 L=1 input 64: {n} object-frames in {total:.2f} s = {total / n:.3f} s/object-frame "
        f"(network {network / n:.3f}, rest {(total - network) / n:.3f}); "
        f"{3.4 / (total / n):.0f}x faster than PyJAMAS' 3.4 s"
    )
    total, _, n = run(args.device, args.objects, args.frames, True, args.batch_size)
    print(f"engine overhead alone (oracle, no U-Net): {total / n * 1000:.1f} ms/object-frame")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
