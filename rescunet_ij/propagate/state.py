"""The typed session state of one propagation (what SAM 2 keeps in an untyped dict).

A :class:`PropagationState` holds the planes being segmented and, per frame and object, the mask,
where it came from (drawn by the user or predicted), its scores and its outline. The
:class:`~rescunet_ij.propagate.propagator.Propagator` is the only writer; callers read it through
:meth:`PropagationState.objects_at` and :meth:`PropagationState.outlines_at`, or simply consume the
:class:`~rescunet_ij.types.FrameResult` objects the propagation yields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..io.movie import PlaneSeries
from ..types import ObjectMask, Outline

__all__ = ["Origin", "PropagationState"]

Origin = Literal["user", "predicted"]
"""Where a mask came from: drawn/corrected by the user, or predicted by the network."""


@dataclass
class PropagationState:
    """Everything known about one movie's objects while they are propagated.

    Frame indices are the movie's own 0-based indices along time or z (the caller chooses the
    axis; outlines carry ``z = 0``): ``planes[i]`` is frame ``first_frame + i``, so a movie cut to
    frames 10..19 keeps calling them 10..19 and no caller ever shifts results back.

    Attributes
    ----------
    planes
        ``(N, Y, X)`` float32 (or ``(N, C, Y, X)`` for multi-channel models), or a lazy
        :class:`~rescunet_ij.io.movie.PlaneSeries` that reads one plane at a time.
    masks
        ``masks[frame][object_id]`` is the object's mask in that frame.
    origin
        ``origin[(frame, object_id)]`` is ``"user"`` or ``"predicted"``.
    scores
        ``scores[(frame, object_id)] = (confidence, prompt_iou)`` for predicted masks.
    names
        ``names[object_id]``: display name given by the user.
    lost
        ``lost[object_id]``: the frame where the object last vanished.
    outlines
        ``outlines[(frame, object_id)]``: the object's outline in that frame.
    first_frame
        The movie's index of ``planes[0]``.
    """

    # The 2-D series being propagated, float32 so windows need no conversion per frame. In memory
    # for movies that fit (the user can jump anywhere to correct); a lazy PlaneSeries for movies
    # read lazily from disk, which holds only the planes last used (prompt and current frame).
    planes: np.ndarray | PlaneSeries
    # One cropped mask per object and frame (crops keep big movies with many objects small). Both
    # the prompts (user masks) and the results (predicted masks) live here, because a predicted
    # mask is the prompt for the next frame.
    masks: dict[int, dict[int, ObjectMask]] = field(default_factory=dict)
    # Who made each mask. A correction (set_frame) drops later *predicted* masks so they are
    # recomputed, but never the user's own drawings, which are used as prompts when reached.
    origin: dict[tuple[int, int], Origin] = field(default_factory=dict)
    # (confidence, prompt_iou) of each predicted mask: the user can review the least certain
    # frames first, and a sudden drop of prompt_iou flags a jump to a neighbour.
    scores: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict)
    # Display names (ImageJ ROI names) given with the user's outlines, re-used for predictions so
    # the ROIs written back keep the user's naming.
    names: dict[int, str] = field(default_factory=dict)
    # Where each object vanished (its predicted area fell below min_area). Propagation of an object
    # stops there; the record tells the caller which frame to correct, and is cleared when the
    # user corrects that stretch of the movie.
    lost: dict[int, int] = field(default_factory=dict)
    # The outline of each mask: user outlines verbatim (no round trip through pixels), predicted
    # ones as simplified polygons. Kept with the masks so outlines_at() costs nothing.
    outlines: dict[tuple[int, int], Outline] = field(default_factory=dict)
    # The movie's index of planes[0]: callers that copy only part of a movie (the ImageJ bridge
    # pulls just the frames it needs) keep the movie's frame numbers in every result.
    first_frame: int = 0

    # ------------------------------------------------------------------ geometry

    @property
    def num_frames(self) -> int:
        """Number of planes (frames) in the series."""
        return int(self.planes.shape[0])

    @property
    def frame_range(self) -> range:
        """The movie frame indices this state covers: ``first_frame .. first_frame + N - 1``."""
        return range(self.first_frame, self.first_frame + self.num_frames)

    def plane(self, frame: int) -> np.ndarray:
        """The image of movie frame ``frame``."""
        return self.planes[int(frame) - self.first_frame]

    @property
    def plane_shape(self) -> tuple[int, int]:
        """``(Y, X)`` size of one plane."""
        return int(self.planes.shape[-2]), int(self.planes.shape[-1])

    @property
    def object_ids(self) -> list[int]:
        """Every object id that has a mask in some frame, sorted."""
        return sorted({obj for per_frame in self.masks.values() for obj in per_frame})

    # ------------------------------------------------------------------ reading

    def objects_at(self, frame: int) -> dict[int, ObjectMask]:
        """The masks of every object in ``frame``, keyed and sorted by object id."""
        per_frame = self.masks.get(int(frame), {})
        return {obj: per_frame[obj] for obj in sorted(per_frame)}

    def outlines_at(self, frame: int) -> list[Outline]:
        """The outlines of every object in ``frame``, sorted by object id."""
        frame = int(frame)
        return [
            self.outlines[(frame, obj)]
            for obj in sorted(self.masks.get(frame, {}))
            if (frame, obj) in self.outlines
        ]

    def frames_of(self, object_id: int, origin: Origin | None = None) -> list[int]:
        """Sorted frames where ``object_id`` has a mask (only those of ``origin`` if given)."""
        return sorted(
            f
            for f, per_frame in self.masks.items()
            if object_id in per_frame
            and (origin is None or self.origin.get((f, object_id)) == origin)
        )

    def is_user(self, frame: int, object_id: int) -> bool:
        """Whether the user drew ``object_id`` in ``frame`` (not the network)."""
        return self.origin.get((int(frame), int(object_id))) == "user"

    # ------------------------------------------------------------------ writing (Propagator only)

    def put(
        self,
        frame: int,
        object_id: int,
        mask: ObjectMask,
        origin: Origin,
        outline: Outline | None,
        scores: tuple[float, float] | None = None,
    ) -> None:
        """Store one mask with its origin, outline and scores, replacing what was there."""
        key = (int(frame), int(object_id))
        self.masks.setdefault(key[0], {})[key[1]] = mask
        self.origin[key] = origin
        if outline is None:
            self.outlines.pop(key, None)
        else:
            self.outlines[key] = outline
        if scores is None:
            self.scores.pop(key, None)
        else:
            self.scores[key] = scores

    def remove(self, frame: int, object_id: int) -> None:
        """Forget ``object_id`` in ``frame`` (no error when it is not there)."""
        key = (int(frame), int(object_id))
        per_frame = self.masks.get(key[0])
        if per_frame is not None:
            per_frame.pop(key[1], None)
            if not per_frame:
                del self.masks[key[0]]
        self.origin.pop(key, None)
        self.scores.pop(key, None)
        self.outlines.pop(key, None)
