"""Where a ROI came from: the model's prediction as written, or the user's (drawn or edited).

A prediction is written with a short hash of its polygon (:data:`OUTLINE_HASH_PROPERTY`) beside
its ``confidence``; read back, a prediction whose polygon no longer matches the hash was edited
by the user. The RoiSet files (:mod:`rescunet_ij.io.rois`) and the live ROI Manager
(:mod:`rescunet_ij.bridge.convert`) share these rules, and fine-tuning
(:mod:`rescunet_ij.train.finetune`) learns from the outlines they call the user's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["OUTLINE_HASH_PROPERTY", "float_property", "outline_hash", "prediction_edited"]

OUTLINE_HASH_PROPERTY = "outline_hash"
"""ROI property holding :func:`outline_hash` of a prediction's polygon as written.

A prediction read back with a polygon that no longer matches it was edited by the user
(:attr:`rescunet_ij.types.Outline.edited`). Predictions written before this property existed carry
none and count as the model's output.
"""


def float_property(props: dict[str, Any], key: str) -> float | None:
    """A ROI property read as a number (``None`` when it is missing, a bool or not a number)."""
    value = props.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def outline_hash(polygon: np.ndarray) -> str:
    """A short hash (12 hex digits) of a polygon's geometry, as an ImageJ ROI stores it.

    The vertices are taken at the float32 precision of a sub-pixel ROI, rounded to 1/1000 pixel,
    without a closing vertex that repeats the first, so the hash of a polygon written by
    :func:`rescunet_ij.io.rois.write_rois` equals the hash of the polygon read back, and moving,
    adding or deleting any vertex changes it. Renaming a ROI or recolouring it does not.
    """
    import hashlib

    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if len(poly) > 1 and np.array_equal(poly[0], poly[-1]):
        poly = poly[:-1]
    grid = np.round(poly.astype(np.float32).astype(np.float64) * 1000.0).astype("<i8")
    return hashlib.blake2b(grid.tobytes(), digest_size=6).hexdigest()


def prediction_edited(properties: dict[str, Any], polygon: np.ndarray | None) -> bool:
    """Whether a ROI is a prediction the user edited: its polygon no longer matches its hash.

    ``properties`` are the ROI's (from a file or a live ImageJ ROI) and ``polygon`` its outline
    as read, before any clipping. A ROI without ``confidence`` is no prediction; a prediction
    without :data:`OUTLINE_HASH_PROPERTY` (written before hashes existed) counts as unedited.
    """
    stored = properties.get(OUTLINE_HASH_PROPERTY)
    return (
        float_property(properties, "confidence") is not None
        and stored is not None
        and polygon is not None
        and str(stored).strip() != outline_hash(polygon)
    )
