"""Plain data types shared by every layer (no torch, no Java).

Conventions
-----------
* Indices (frame ``t``, plane ``z``, channel ``c``) are **0-based** everywhere in Python.
  ImageJ's 1-based positions appear only in :mod:`rescunet_ij.io.rois` and
  :mod:`rescunet_ij.bridge`.
* Polygon vertices are ``(x, y)`` float pairs in **ImageJ pixel coordinates**: pixel ``(row r,
  column c)`` covers the square ``[c, c+1) x [r, r+1)``, so its centre is ``(c + 0.5, r + 0.5)``.
* A movie is an :class:`xarray.DataArray` with dims ``("t", "z", "c", "y", "x")`` (see
  :func:`rescunet_ij.io.movie.as_movie`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

AXES = ("t", "z", "c", "y", "x")
"""The dimension order of every movie inside rescunet-ij."""


def plane_key(frame: int, z: int, c: int | None) -> tuple[int, int, int]:
    """Sort key of a plane position: frame, then z, then channel (``None`` = all channels first)."""
    return (int(frame), int(z), -1 if c is None else int(c))


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)`` of the true pixels of a 2-D mask (half-open), or ``None`` if empty."""
    mask = np.asarray(mask)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


class Identity(str, Enum):
    """How the object identity of an input ROI is decided (see :func:`assign_identities`)."""

    AUTO = "auto"
    PROPERTY = "property"
    GROUP = "group"
    NAME = "name"
    ORDER = "order"


@dataclass
class Outline:
    """One object's outline in one plane.

    Attributes
    ----------
    object_id
        Stable identity of the object across frames (>= 1).
    frame
        0-based time index.
    polygon
        ``(n, 2)`` float64 array of ``(x, y)`` vertices in ImageJ pixel coordinates, n >= 3.
    z
        0-based z-plane.
    c
        0-based channel, or ``None`` when the ROI applies to all channels.
    name
        Display name (ImageJ ROI name); ``None`` lets writers choose ``"object-<id>"``.
    confidence
        Mean foreground probability inside the predicted mask (``None`` for user outlines).
    prompt_iou
        IoU between this outline's mask and the prompt it was predicted from (``None`` for user
        outlines).
    edited
        ``True`` for a prediction (it has a ``confidence``) whose polygon was changed after
        rescunet-ij wrote it: the stored geometry hash no longer matches (see
        :func:`rescunet_ij.io.provenance.outline_hash`). An edited outline is the user's, like one
        without ``confidence`` (:attr:`origin`); writers store it as a user outline.
    """

    object_id: int
    frame: int
    polygon: np.ndarray
    z: int = 0
    c: int | None = None
    name: str | None = None
    confidence: float | None = None
    prompt_iou: float | None = None
    edited: bool = False

    def __post_init__(self) -> None:
        self.polygon = np.asarray(self.polygon, dtype=np.float64).reshape(-1, 2)
        self.object_id = int(self.object_id)
        self.frame = int(self.frame)
        self.z = int(self.z)

    @property
    def sort_key(self) -> tuple[int, int, int, int]:
        """Frame, z, channel (``None`` first), then object id: the order outlines are written in."""
        return (*plane_key(self.frame, self.z, self.c), self.object_id)

    @property
    def origin(self) -> str:
        """Who made this outline: ``"model"``, ``"edited"`` or ``"user"``.

        ``"edited"`` is a prediction the user changed (:attr:`edited`); ``"user"`` an outline
        without ``confidence`` (drawn by the user, or by another tool).
        """
        if self.confidence is None:
            return "user"
        return "edited" if self.edited else "model"

    @property
    def display_name(self) -> str:
        """The name to show in ImageJ: the given name or ``object-<id>``."""
        return self.name if self.name else f"object-{self.object_id}"


@dataclass
class ObjectMask:
    """A binary mask stored as a crop of the full plane (keeps memory small for big movies).

    ``mask[i, j]`` is pixel ``(y0 + i, x0 + j)`` of the full plane.
    """

    y0: int
    x0: int
    mask: np.ndarray  # bool (h, w)

    @property
    def area(self) -> int:
        """Number of pixels in the mask."""
        return int(self.mask.sum())

    def to_full(self, shape: tuple[int, int]) -> np.ndarray:
        """Paste into a full ``shape`` boolean plane (clipped to the plane)."""
        out = np.zeros(shape, dtype=bool)
        h, w = self.mask.shape
        ys, xs = max(self.y0, 0), max(self.x0, 0)
        ye, xe = min(self.y0 + h, shape[0]), min(self.x0 + w, shape[1])
        if ye > ys and xe > xs:
            out[ys:ye, xs:xe] = self.mask[ys - self.y0 : ye - self.y0, xs - self.x0 : xe - self.x0]
        return out

    @classmethod
    def from_full(cls, mask: np.ndarray, pad: int = 0) -> "ObjectMask":
        """Crop a full-plane boolean mask to its bounding box (plus ``pad`` pixels, clipped)."""
        mask = np.asarray(mask, dtype=bool)
        box = bounding_box(mask)
        if box is None:
            return cls(0, 0, np.zeros((0, 0), dtype=bool))
        y0, y1, x0, x1 = box
        y0, x0 = max(y0 - pad, 0), max(x0 - pad, 0)
        y1, x1 = min(y1 + pad, mask.shape[0]), min(x1 + pad, mask.shape[1])
        return cls(y0, x0, mask[y0:y1, x0:x1].copy())


class ObjectStatus(str, Enum):
    """What happened to one object in one propagated frame."""

    OK = "ok"
    # The prediction failed a sanity check (it left the object, a very low confidence, an area
    # jump) but propagation goes on because the user asked for it (keep_going): worth a look.
    DOUBTFUL = "doubtful"
    # Nothing usable was found, or a sanity check failed: propagation of this object stops here.
    LOST = "lost"


@dataclass
class ObjectResult:
    """The prediction for one object in one frame.

    Attributes
    ----------
    object_id
        The object.
    status
        OK, DOUBTFUL (kept, but failed a sanity check) or LOST (propagation stops).
    mask, outline
        The prediction (``None`` when lost).
    confidence
        Mean foreground probability inside the mask.
    prompt_iou
        IoU with the prompt, after the prompt was moved by ``shift``.
    shift
        ``(dy, dx)``: how far the prompt was moved before its windows were cut (the estimated
        motion of the object from the previous frame).
    reason
        Why the object is DOUBTFUL or LOST (``None`` when OK).
    """

    object_id: int
    status: ObjectStatus
    mask: ObjectMask | None
    outline: Outline | None
    confidence: float
    prompt_iou: float
    shift: tuple[int, int] = (0, 0)
    reason: str | None = None


@dataclass
class FrameResult:
    """Everything predicted for one frame, yielded by the propagation generator."""

    frame: int
    objects: list[ObjectResult] = field(default_factory=list)
    # The estimated motion of the whole field from the previous frame ((dy, dx) pixels).
    shift: tuple[int, int] = (0, 0)

    @property
    def outlines(self) -> list[Outline]:
        """The outlines of this frame's objects, skipping objects without one."""
        return [o.outline for o in self.objects if o.outline is not None]
