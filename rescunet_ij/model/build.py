"""The one adapter from a :class:`~rescunet_ij.config.ModelConfig` to a :class:`ReSCUNet`."""

from __future__ import annotations

import torch

from ..config import ModelConfig
from .rescunet import ReSCUNet

__all__ = ["build_model"]

NUM_CLASSES = 2
"""Background and foreground: rescunet-ij always segments one object per forward pass."""


def build_model(cfg: ModelConfig, *, for_loading: bool = False) -> ReSCUNet:
    """Build a ReSCU-Net for a model configuration.

    Parameters
    ----------
    cfg
        The architecture (``in_channels``, ``base_filters``, ``concatenation_level``, ``dropout``).
        ``input_size`` does not change the weights; it only fixes the window size callers use.
    for_loading
        Build an empty network whose weights will be replaced by saved ones: its tensors are on
        the ``meta`` device (shapes only: no memory, no random draws, the random number generator
        untouched); give it weights with ``load_state_dict(tensors, assign=True)``. Default: a
        freshly initialised network for training.

    Returns
    -------
    ReSCUNet
        A network in training mode: Kaiming-initialised weights on the current default device, or
        with ``for_loading`` uninitialised weights on the ``meta`` device.
    """
    args = {
        "in_channels": cfg.in_channels,
        "base_filters": cfg.base_filters,
        "concatenation_level": cfg.concatenation_level,
        "dropout": cfg.dropout,
        "num_classes": NUM_CLASSES,
    }
    if for_loading:
        with torch.device("meta"):
            return ReSCUNet(**args)
    return ReSCUNet(**args)
