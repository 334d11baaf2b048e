"""Training ReSCU-Nets: weighted cross-entropy loss, the training loop, the history files.

Plain PyTorch rather than Lightning: the loop is short and fully under our control (early stopping,
best-weight tracking, out-of-memory recovery, throttled atomic checkpoints in the safe safetensors
model format, the best weights saved on Ctrl-C and SIGTERM), and users do not need another large
dependency or pickled Lightning checkpoints.

Modules: ``loop`` (the public entry :func:`train_model`, its result and exceptions), ``trainer``
(one run: setup, epochs, validation, checkpoints), ``outputs`` (the model and history files, checked
up front and written as one unit), ``interrupt`` (SIGTERM handled like Ctrl-C), ``history``,
``loss``.
"""

from __future__ import annotations

from .history import history_paths, plot_history, write_history_csv
from .loop import (
    TrainCallbacks,
    TrainingInterrupted,
    TrainingSaveError,
    TrainResult,
    config_for_finetune,
    train_model,
)
from .loss import iou_per_sample, weight_map, weighted_cross_entropy

__all__ = [
    "TrainCallbacks",
    "TrainResult",
    "TrainingInterrupted",
    "TrainingSaveError",
    "config_for_finetune",
    "history_paths",
    "iou_per_sample",
    "plot_history",
    "train_model",
    "weight_map",
    "weighted_cross_entropy",
    "write_history_csv",
]
