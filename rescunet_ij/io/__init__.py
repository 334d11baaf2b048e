"""All file formats of rescunet-ij.

Submodules (import them directly; this package imports only the light training-set module, so
``import rescunet_ij.io`` stays cheap):

* :mod:`rescunet_ij.io.movie` - TIFF hyperstacks <-> ``xarray.DataArray`` movies
  (``t, z, c, y, x``)
* :mod:`rescunet_ij.io.rois` - ImageJ ``.roi``/RoiSet ``.zip`` <->
  :class:`~rescunet_ij.types.Outline`; the only place (besides the ImageJ bridge) where ImageJ's
  1-based positions appear
* :mod:`rescunet_ij.io.identity` - which ROIs in different frames are the same object (shared with
  the ImageJ bridge)
* :mod:`rescunet_ij.io.labels` - label-image TIFFs (one integer id per object)
* :mod:`rescunet_ij.io.training_set` - training sets in the PyJAMAS folder layout, as a folder or
  a ``.zip``; its public names are re-exported here
* :mod:`rescunet_ij.io.checkpoint` - model files
* :mod:`rescunet_ij.io.atomic` - atomic writes used by every writer
"""

from __future__ import annotations

from .training_set import (
    META_FILE,
    SUBFOLDERS,
    TrainingSample,
    check_training_set_output,
    check_training_zip_output,
    read_training_set,
    write_training_set,
    write_training_zip,
)

__all__ = [
    "META_FILE",
    "SUBFOLDERS",
    "TrainingSample",
    "check_training_set_output",
    "check_training_zip_output",
    "read_training_set",
    "write_training_set",
    "write_training_zip",
]
