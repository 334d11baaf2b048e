"""The ReSCU-Net network (:class:`ReSCUNet`), its config adapter and its memory needs.

:func:`build_model` turns a config into a network; :mod:`.memory` estimates what a batch needs
(:func:`estimate_memory`) and the largest batch that fits a device (:func:`fit_batch_size`).
"""

from __future__ import annotations

from .build import build_model
from .memory import (
    MemoryEstimate,
    available_memory,
    estimate_memory,
    fit_batch_size,
    parameter_count,
)
from .rescunet import ReSCUNet

__all__ = [
    "MemoryEstimate",
    "ReSCUNet",
    "available_memory",
    "build_model",
    "estimate_memory",
    "fit_batch_size",
    "parameter_count",
]
