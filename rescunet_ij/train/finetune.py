"""Fine-tuning a model on the user's corrections (the engine half of ``rescunet-ij finetune``).

What counts as a correction
---------------------------
An outline is the **user's** when the model did not produce it or the user changed it after the
model did (:attr:`rescunet_ij.types.Outline.origin`):

* ``"user"``: it has no ``confidence`` (drawn in Fiji, or by another tool);
* ``"edited"``: it is a prediction (it has a ``confidence``) whose polygon no longer matches the
  geometry hash :func:`rescunet_ij.io.rois.write_rois` stored with it
  (:data:`~rescunet_ij.io.provenance.OUTLINE_HASH_PROPERTY`). Predictions written without a hash
  (older RoiSets) count as the model's output.

A user's outline is a **correction** when the same object has an outline (anyone's) in the
previous frame of the same plane: that outline is what the network would have been prompted with,
and the user's outline is the answer it should have given. A user's outline without one there (the
seeds of the first frame, an object outlined where it appears) is a seed, not a correction.

Each correction becomes a training sample: the previous outline (moved by the motion the
propagation engine estimates, as in :mod:`rescunet_ij.data.samples`) -> the corrected outline, on
the image of the corrected frame, cut at the model's window. The model is then fine-tuned from its
own weights at a lower learning rate on the corrections (repeated so that each epoch shows them
enough) plus a replay sample of its original training set when one is available, so it does not
forget what it knew. The new model records its lineage (:func:`lineage_entry`).
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TrainConfig
from ..errors import DataError
from ..geometry import polygon_to_mask
from ..io.checkpoint import LoadedModel, save_model
from ..io.training_set import TrainingSample
from ..types import Outline
from .loop import TrainCallbacks, TrainResult, config_for_finetune, train_model

__all__ = [
    "CORRECTION_RULE",
    "Correction",
    "correction_samples",
    "find_corrections",
    "finetune_config",
    "finetune_model",
    "lineage_entry",
    "replay_subset",
    "root_learning_rate",
    "weights_hash",
]

CORRECTION_RULE = (
    "a correction is an outline the model did not produce (a ROI without the 'confidence' "
    "property rescunet-ij writes on its predictions) or a prediction whose polygon was changed "
    "after rescunet-ij wrote it, in a frame whose previous frame has an outline of the same "
    "object (the first frame's seeds are not corrections). Correct a predicted ROI in Fiji (move "
    "its vertices, or delete it and draw the object again on the same frame), save the ROI "
    "Manager as a RoiSet .zip and pass that file"
)
"""What counts as a correction, in the words the "no corrections" error uses."""

DEFAULT_EPOCHS = 10
LR_FACTOR = 0.2
"""The fine-tuning learning rate is the parent's times this (by default)."""
MIN_WINDOWS = 16
"""Each epoch shows the corrections at least this many times (they are repeated)."""
MAX_REPEATS = 32


@dataclass(frozen=True)
class Correction:
    """One user's outline that corrects what the model would have predicted.

    Attributes
    ----------
    outline
        The user's outline (the target).
    previous
        The outline of the same object in the previous frame (the prompt).
    """

    outline: Outline
    previous: Outline

    @property
    def object_id(self) -> int:
        """The object corrected."""
        return self.outline.object_id

    @property
    def frame(self) -> int:
        """The corrected frame (0-based, the movie's own number)."""
        return self.outline.frame

    @property
    def origin(self) -> str:
        """``"edited"`` (a prediction the user changed) or ``"user"`` (drawn by the user)."""
        return self.outline.origin


def _plane(o: Outline) -> tuple[int, int]:
    return (o.z, -1 if o.c is None else o.c)


def find_corrections(outlines: Iterable[Outline]) -> list[Correction]:
    """The corrections among ``outlines`` (see the module's rule), sorted by frame then object.

    Parameters
    ----------
    outlines
        Outlines as read from a RoiSet (:func:`rescunet_ij.io.rois.read_rois`), with their
        ``confidence`` and ``edited`` fields.

    Returns
    -------
    list of Correction
        Empty when there is none.
    """
    items = list(outlines)
    by_key = {(o.object_id, o.frame, _plane(o)): o for o in items}
    found = []
    for o in items:
        if o.origin == "model":
            continue
        prev = by_key.get((o.object_id, o.frame - 1, _plane(o)))
        if prev is not None:
            found.append(Correction(o, prev))
    found.sort(key=lambda c: c.outline.sort_key)
    return found


def correction_samples(
    planes: np.ndarray,
    corrections: Sequence[Correction],
    window: tuple[int, int],
    *,
    first: int = 0,
    motion: str = "auto",
) -> list[TrainingSample]:
    """Training samples of the corrections: previous outline -> corrected outline.

    Parameters
    ----------
    planes
        ``(N, Y, X)`` or ``(N, C, Y, X)`` frames of the plane series the corrections lie in.
    corrections
        From :func:`find_corrections` (all in that plane series).
    window
        The model's native-pixel window (:attr:`LoadedModel.window_size`).
    first
        The movie's frame number of ``planes[0]``.
    motion
        How the prompts are moved before the crop is cut, as the model propagates
        (:func:`rescunet_ij.data.samples.samples_from_masks`).

    Returns
    -------
    list of TrainingSample
        One per correction whose masks are not empty, named ``t<frame>_obj<id>`` (1-based frame
        of ``planes``).
    """
    from ..data.samples import samples_from_masks

    shape = tuple(int(v) for v in planes.shape[-2:])
    masks: dict[int, dict[int, np.ndarray]] = {}
    wanted = set()
    for c in corrections:
        t = c.frame - first
        if not 1 <= t < planes.shape[0]:
            raise DataError(
                f"the correction of object {c.object_id} is on frame {c.frame + 1}, outside the "
                f"movie's frames {first + 1}..{first + planes.shape[0]}"
            )
        obj = masks.setdefault(c.object_id, {})
        obj[t] = polygon_to_mask(c.outline.polygon, shape)
        obj.setdefault(t - 1, polygon_to_mask(c.previous.polygon, shape))
        wanted.add(f"t{t + 1:04d}_obj{c.object_id:04d}")
    samples = samples_from_masks(planes, masks, window, motion=motion)
    # Two corrections of one object two frames apart also pair up the frame between them (the
    # model's own outline): only the corrections' samples are kept.
    return [s for s in samples if s.name in wanted]


def replay_subset(
    samples: Sequence[TrainingSample], n: int, *, seed: int = 0
) -> list[TrainingSample]:
    """A seeded random subset of ``n`` samples (all of them when there are fewer)."""
    samples = list(samples)
    if n <= 0:
        return []
    if len(samples) <= n:
        return samples
    idx = np.random.default_rng([seed, 11]).choice(len(samples), size=n, replace=False)
    return [samples[int(i)] for i in sorted(idx)]


def finetune_config(
    parent: LoadedModel,
    *,
    epochs: int | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    seed: int = 0,
) -> TrainConfig:
    """Training settings for fine-tuning ``parent``: its own, at a lower learning rate.

    The architecture, normalisation, window, augmentation and motion mode are the parent's; the
    learning rate is :data:`LR_FACTOR` times the one the model was first trained with (not the
    rate of an earlier fine-tuning, so a chain of fine-tunings does not shrink it step by step)
    unless given; ``epochs`` defaults to
    :data:`DEFAULT_EPOCHS`; there is no validation split (the corrections are few and are what
    the model must learn) and no early stopping.
    """
    base = parent.train_config if parent.train_config is not None else TrainConfig()
    updates: dict[str, Any] = {
        "epochs": int(epochs) if epochs is not None else DEFAULT_EPOCHS,
        "learning_rate": (
            float(learning_rate)
            if learning_rate is not None
            else root_learning_rate(parent) * LR_FACTOR
        ),
        "validation_fraction": 0.0,
        "early_stopping_patience": None,
        "seed": int(seed),
        "num_workers": 0,
    }
    if batch_size is not None:
        updates["batch_size"] = int(batch_size)
    if device is not None:
        updates["device"] = device
    values = {**base.model_dump(), **updates}
    return config_for_finetune(TrainConfig.model_validate(values), parent)


def root_learning_rate(model: LoadedModel) -> float:
    """The learning rate ``model``'s first ancestor was trained with (its own when not tuned)."""
    lineage = model.extra.get("lineage") or []
    if lineage and isinstance(lineage[0], dict) and lineage[0].get("base_learning_rate"):
        return float(lineage[0]["base_learning_rate"])
    base = model.train_config if model.train_config is not None else TrainConfig()
    return float(base.learning_rate)


def weights_hash(model: LoadedModel) -> str:
    """SHA-256 (first 16 hex digits) of a model's weights, independent of its file's metadata."""
    h = hashlib.sha256()
    for key, value in sorted(model.network.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def lineage_entry(
    parent: LoadedModel,
    corrections: Sequence[Correction],
    *,
    n_samples: int,
    n_replay: int,
    replay_source: str | None,
    config: TrainConfig,
    movie: str | None = None,
    rois: str | None = None,
) -> dict[str, Any]:
    """The record of one fine-tuning step (stored in the new model's ``extra["lineage"]``).

    Keys: ``parent`` (file), ``parent_weights_sha256``, ``corrections`` (count), ``frames``
    (0-based corrected frames), ``objects``, ``edited``/``drawn`` (how many of each origin),
    ``samples``, ``replay_samples``, ``replay_source``, ``epochs``, ``learning_rate``,
    ``base_learning_rate`` (:func:`root_learning_rate`), ``movie``, ``rois`` and ``created``
    (UTC).
    """
    return {
        "parent": str(parent.path) if parent.path else None,
        "parent_weights_sha256": weights_hash(parent),
        "corrections": len(corrections),
        "frames": sorted({c.frame for c in corrections}),
        "objects": sorted({c.object_id for c in corrections}),
        "edited": sum(c.origin == "edited" for c in corrections),
        "drawn": sum(c.origin == "user" for c in corrections),
        "samples": int(n_samples),
        "replay_samples": int(n_replay),
        "replay_source": replay_source,
        "epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "base_learning_rate": root_learning_rate(parent),
        "movie": movie,
        "rois": rois,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def finetune_model(
    parent: LoadedModel,
    samples: Sequence[TrainingSample],
    config: TrainConfig,
    *,
    lineage: dict[str, Any],
    replay: Sequence[TrainingSample] = (),
    replay_source: str | None = None,
    output: str | Path | None = None,
    callbacks: TrainCallbacks | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Fine-tune ``parent`` on correction samples (+ replay) and save it with its lineage.

    Parameters
    ----------
    parent
        The model the user corrected.
    samples
        :func:`correction_samples`; repeated so that each epoch shows them at least
        :data:`MIN_WINDOWS` times and at least as often as the replay samples.
    config
        :func:`finetune_config`.
    lineage
        :func:`lineage_entry`; appended to the parent's ``extra["lineage"]``.
    replay
        Samples of the parent's training set (:func:`replay_subset`).
    replay_source
        Where they came from; recorded as ``extra["training_data"]`` so a later fine-tuning of
        the new model replays the same set.
    output
        The new model file (written atomically), or ``None``.
    callbacks, overwrite
        As for :func:`~rescunet_ij.train.loop.train_model`.

    Returns
    -------
    TrainResult
        With ``model.extra["lineage"]`` and ``model_path`` set.
    """
    samples = list(samples)
    if not samples:
        raise DataError(f"no correction to learn from; {CORRECTION_RULE}")
    replay = list(replay)
    repeats = max(math.ceil(MIN_WINDOWS / len(samples)), math.ceil(len(replay) / len(samples)), 1)
    repeats = min(repeats, MAX_REPEATS)
    mixed = samples * repeats + replay
    with warnings.catch_warnings():
        # No validation split on purpose (finetune_config): not worth a warning.
        warnings.filterwarnings("ignore", message="training without a validation set")
        result = train_model(mixed, config, output=None, init_from=parent, callbacks=callbacks)
    model = result.model
    extra = dict(model.extra)
    extra["lineage"] = [*parent.extra.get("lineage", []), {**lineage, "repeats": repeats}]
    training_data = replay_source or parent.extra.get("training_data")
    if training_data:
        extra["training_data"] = str(training_data)
    model.extra = extra
    if output is not None and result.best_epoch:
        path = save_model(
            output,
            model.network,
            model.model_config,
            model.normalization,
            train_config=model.train_config,
            history=result.history,
            extra=extra,
            overwrite=overwrite,
        )
        model.path = result.model_path = Path(path)
    return result
