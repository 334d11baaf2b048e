"""Stand-in networks for the speed benchmarks: the real ReSCU-Net cost, predictable masks.

Speed does not depend on the weights, so the benchmarks use random ones; but a random-weight
network loses every object after one frame, and the per-object work of propagation (window
planning, merging, hole filling, outlines) would then never be timed. :class:`StandInNetwork`
runs the full random-weight forward pass (its cost is the real network's), then returns logits of
its own:

* ``answer="prompt"``: the prompt (the previous mask) is the prediction, so every object keeps a
  realistic mask from frame to frame (``bench_core.py``);
* ``answer="oracle"``: bright pixels near the previous mask are foreground, so the masks follow
  the synthetic objects as they move (``bench_propagate_engine.py``).

``run_network=False`` skips the real forward pass, to time the propagation engine alone.
This module is imported by the benchmark scripts beside it; it measures nothing itself.
"""

from __future__ import annotations

import time
from typing import Literal

import torch
import torch.nn.functional as F

from rescunet_ij.config import ModelConfig
from rescunet_ij.model import ReSCUNet

__all__ = ["StandInNetwork", "stand_in_network"]

Answer = Literal["prompt", "oracle"]

PROMPT_LOGIT = 8.0
"""Logit magnitude of the prompt answer: softmax 1 - 3e-4 inside, 3e-4 outside."""

ORACLE_REACH = 6
"""Oracle answer: pixels within this many pixels of the previous mask may be foreground."""


class StandInNetwork(ReSCUNet):
    """A ReSCU-Net that computes its forward pass, then answers with a stand-in mask.

    Parameters
    ----------
    answer
        ``"prompt"`` (the previous mask) or ``"oracle"`` (bright pixels near the previous mask).
    run_network
        Whether to run the real (random-weight) forward pass first; ``False`` times the engine
        around the network alone.
    **network
        Construction arguments of :class:`~rescunet_ij.model.ReSCUNet`.

    Attributes
    ----------
    network_s
        Seconds spent in the real forward passes so far (CUDA synchronised); reset it freely.
    """

    def __init__(
        self, answer: Answer = "prompt", run_network: bool = True, **network: object
    ) -> None:
        super().__init__(**network)  # type: ignore[arg-type]
        if answer not in ("prompt", "oracle"):
            raise ValueError(f"answer must be 'prompt' or 'oracle', got {answer!r}")
        self.answer: Answer = answer
        self.run_network = run_network
        self.network_s = 0.0

    def forward(self, image: torch.Tensor, prev_mask: torch.Tensor) -> torch.Tensor:
        """Run the network (unless ``run_network`` is false) and return the stand-in logits."""
        dtype = image.dtype
        if self.run_network:
            if image.is_cuda:
                torch.cuda.synchronize(image.device)
            t0 = time.perf_counter()
            logits = super().forward(image, prev_mask)
            if logits.is_cuda:
                torch.cuda.synchronize(logits.device)
            self.network_s += time.perf_counter() - t0
            dtype = logits.dtype
        if self.answer == "prompt":
            p = prev_mask.to(dtype) * 2.0 - 1.0  # +1 inside the prompt, -1 outside
            return PROMPT_LOGIT * torch.cat([-p, p], dim=1)
        k = 2 * ORACLE_REACH + 1
        near = F.max_pool2d(prev_mask.float(), k, stride=1, padding=ORACLE_REACH) > 0
        fg = 20.0 * (image[:, :1].float() - 0.5)
        fg = torch.where(near, fg, torch.full_like(fg, -20.0))
        return torch.cat([torch.zeros_like(fg), fg], dim=1).to(dtype)


def stand_in_network(
    model_config: ModelConfig, answer: Answer = "prompt", run_network: bool = True
) -> StandInNetwork:
    """A random-weight :class:`StandInNetwork` with the architecture of ``model_config``.

    Parameters
    ----------
    model_config
        Architecture (channels, base filters, concatenation level, dropout).
    answer
        ``"prompt"`` or ``"oracle"`` (see :class:`StandInNetwork`).
    run_network
        Whether the real forward pass runs before the answer.

    Returns
    -------
    StandInNetwork
        Ready for :func:`rescunet_ij.io.checkpoint.model_from_network` with ``model_config``.
    """
    return StandInNetwork(
        answer=answer,
        run_network=run_network,
        in_channels=model_config.in_channels,
        base_filters=model_config.base_filters,
        concatenation_level=model_config.concatenation_level,
        dropout=model_config.dropout,
    )
