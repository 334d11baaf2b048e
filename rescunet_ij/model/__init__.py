"""The ReSCU-Net network (:class:`ReSCUNet`) and its config adapter (:func:`build_model`)."""

from __future__ import annotations

from .build import build_model
from .rescunet import ReSCUNet

__all__ = ["ReSCUNet", "build_model"]
