"""The Python API of rescunet-ij: the CLI, the bridge, the notebook and the demo call only this.

A typical session::

    from rescunet_ij import api
    movie = api.read_movie("movie.tif")                  # xarray (t, z, c, y, x)
    seeds = api.read_outlines("RoiSet.zip", movie)       # ImageJ ROIs -> Outlines (0-based frames)
    api.make_training_set(movie, seeds, "training/")     # PyJAMAS folder layout
    result = api.train("training/", "model.rescunet", epochs=50)
    run = api.propagate(movie, seeds, result.model, start_frame=0)
    api.write_outlines("RoiSet_out.zip", run.outlines, movie)

Frames, planes and channels are 0-based here and keep the movie's own numbers: a movie cut to
frames 10..19 (``movie.isel(t=slice(10, 20))``, which keeps xarray's ``t`` labels) is propagated
and reported as frames 10..19. The CLI and the ImageJ bridge convert from ImageJ's 1-based numbers
at their edge. Wrong arguments raise the package's own errors (:mod:`rescunet_ij.errors`) naming
the argument and what to pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import format_validation_error, parse_size
from ._batch import (
    BatchResult,
    ManifestRow,
    MovieResult,
    local_cluster,
    propagate_batch,
    read_manifest,
)
from ._bioimageio import check_bioimageio, export_bioimageio
from ._distributed import launch_training
from ._finetune import FinetuneResult, find_corrections, finetune, repropagate
from ._movies import (
    as_movie,
    check_outputs,
    mean_iou,
    outlines_from_labels,
    output_group,
    read_movie,
    read_outlines,
    synthetic_movie,
    write_bytes,
    write_labels,
    write_movie,
    write_omezarr,
    write_outlines,
    write_overlay,
    write_text,
)
from ._propagation import PropagationRun, frame_range, iter_propagate, propagate, write_report
from ._pyjamas import import_pyjamas
from ._system import device_info, model_info
from ._tracks import check_ctc_output, write_ctc, write_trackmate
from ._training import (
    export_training_zip,
    load_model,
    make_training_set,
    propagate_config,
    train,
    train_config,
    training_set_info,
    training_set_sizes,
)

if TYPE_CHECKING:
    from ..io.checkpoint import LoadedModel
    from ..train.loop import TrainCallbacks, TrainingInterrupted, TrainResult

__all__ = [
    "BatchResult",
    "FinetuneResult",
    "LoadedModel",
    "ManifestRow",
    "MovieResult",
    "PropagationRun",
    "TrainCallbacks",
    "TrainResult",
    "TrainingInterrupted",
    "as_movie",
    "check_bioimageio",
    "check_ctc_output",
    "check_outputs",
    "device_info",
    "export_bioimageio",
    "export_training_zip",
    "find_corrections",
    "finetune",
    "format_validation_error",
    "frame_range",
    "import_pyjamas",
    "iter_propagate",
    "launch_training",
    "load_model",
    "local_cluster",
    "make_training_set",
    "mean_iou",
    "model_info",
    "outlines_from_labels",
    "output_group",
    "parse_size",
    "propagate",
    "propagate_batch",
    "propagate_config",
    "read_manifest",
    "read_movie",
    "read_outlines",
    "repropagate",
    "synthetic_movie",
    "train",
    "train_config",
    "training_set_info",
    "training_set_sizes",
    "write_bytes",
    "write_ctc",
    "write_labels",
    "write_movie",
    "write_omezarr",
    "write_outlines",
    "write_overlay",
    "write_report",
    "write_text",
    "write_trackmate",
]

# Classes users meet in the API, imported on first use (PEP 562): they pull in torch, and
# `import rescunet_ij.api` must stay cheap for the CLI's --help and the Fiji scripts.
_LAZY = {
    "LoadedModel": ".io.checkpoint",
    "TrainCallbacks": ".train.loop",
    "TrainResult": ".train.loop",
    "TrainingInterrupted": ".train.loop",
}


def __getattr__(name: str) -> Any:
    """Import the classes of :data:`_LAZY` when first asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__.rpartition(".")[0]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
