"""Old home of the training-set names, kept so imports keep working while callers move.

The disk format moved to :mod:`rescunet_ij.io.training_set` (with the other file formats) and the
sample building to :mod:`rescunet_ij.data.samples`. Import from there; this module only
re-exports them and goes away once ``api.py``, ``train/loop.py``, ``notebook.py``, the benchmarks
and the tests import from the new homes.
"""

from __future__ import annotations

from ..io.training_set import (
    META_FILE,
    SUBFOLDERS,
    TrainingSample,
    read_training_set,
    write_training_set,
    write_training_zip,
)
from .samples import samples_from_masks

__all__ = [
    "META_FILE",
    "SUBFOLDERS",
    "TrainingSample",
    "read_training_set",
    "samples_from_masks",
    "write_training_set",
    "write_training_zip",
]
