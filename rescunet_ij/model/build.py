"""The one adapter from a :class:`~rescunet_ij.config.ModelConfig` to a :class:`ReSCUNet`."""

from __future__ import annotations

from ..config import ModelConfig
from .rescunet import ReSCUNet

__all__ = ["build_model"]

NUM_CLASSES = 2
"""Background and foreground: rescunet-ij always segments one object per forward pass."""


def build_model(cfg: ModelConfig) -> ReSCUNet:
    """Build a freshly initialised ReSCU-Net for a model configuration.

    Parameters
    ----------
    cfg
        The architecture (``in_channels``, ``base_filters``, ``concatenation_level``, ``dropout``).
        ``input_size`` does not change the weights; it only fixes the window size callers use.

    Returns
    -------
    ReSCUNet
        A network in training mode with Kaiming-initialised weights, on the current default device.
    """
    return ReSCUNet(
        in_channels=cfg.in_channels,
        base_filters=cfg.base_filters,
        concatenation_level=cfg.concatenation_level,
        dropout=cfg.dropout,
        num_classes=NUM_CLASSES,
    )
