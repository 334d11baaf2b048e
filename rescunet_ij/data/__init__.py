"""Training data: window geometry, samples cut from movies, the torch dataset.

:class:`TrainingSample` and :func:`samples_from_masks` are importable from here; the torch
dataset (:mod:`rescunet_ij.data.dataset`) is not imported, so this package stays free of torch.
Training sets on disk are :mod:`rescunet_ij.io.training_set`.
"""

from __future__ import annotations

from .samples import TrainingSample, samples_from_masks

__all__ = ["TrainingSample", "samples_from_masks"]
