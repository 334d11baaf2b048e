"""Training ReSCU-Nets: weighted cross-entropy loss, the training loop, the history files.

Plain PyTorch rather than Lightning: the loop is short and fully under our control (early stopping,
best-weight tracking, out-of-memory recovery, throttled atomic checkpoints in the safe safetensors
model format), and users do not need another large dependency or pickled Lightning checkpoints.
"""

from __future__ import annotations

from .history import history_paths, plot_history, write_history_csv
from .loop import TrainCallbacks, TrainResult, config_for_finetune, train_model
from .loss import iou_per_sample, weight_map, weighted_cross_entropy

__all__ = [
    "TrainCallbacks",
    "TrainResult",
    "config_for_finetune",
    "history_paths",
    "iou_per_sample",
    "plot_history",
    "train_model",
    "weight_map",
    "weighted_cross_entropy",
    "write_history_csv",
]
