"""One object's work in one frame: its windows, their merged probabilities, its neighbours.

:class:`ObjectJob` holds an object's (motion-moved) prompt, the windows cut around it and a
canvas on which the windows' probabilities are averaged. :func:`share_pixels` then gives every
pixel claimed by two objects to the one the network is surest of, before each object is
thresholded and checked by the propagator.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..data.motion import NO_SHIFT, Shift
from ..types import ObjectMask, bounding_box

__all__ = ["ObjectJob", "at_edge", "share_pixels", "touches_border"]


class ObjectJob:
    """One object to predict in the current frame: its prompt, windows and probability canvas."""

    __slots__ = (
        "count",
        "cut",
        "object_id",
        "origins",
        "prob",
        "prompt",
        "shift",
        "total",
        "x0",
        "y0",
    )

    def __init__(
        self,
        object_id: int,
        prompt: ObjectMask,
        origins: list[tuple[int, int]],
        window: tuple[int, int],
        plane_shape: tuple[int, int],
        shift: Shift = NO_SHIFT,
    ) -> None:
        self.object_id = object_id
        self.prompt = prompt  # already moved by `shift`: where the object should be now
        self.shift = shift
        self.cut = False  # the object is partly out of view (its area may change for that)
        self.prob: np.ndarray | None = None  # probabilities after neighbours took their pixels
        self.origins = origins
        H, W = plane_shape
        wh, ww = window
        if not origins:  # an empty prompt: nothing to look at, the object will count as lost
            self.y0 = self.x0 = 0
            self.total = self.count = np.zeros((0, 0), dtype=np.float32)
            return
        ys = [o[0] for o in origins]
        xs = [o[1] for o in origins]
        # The canvas covers the union of the windows, clipped to the plane (windows of an image
        # smaller than the window stick out of it; the padding is not part of the result).
        self.y0, self.x0 = max(min(ys), 0), max(min(xs), 0)
        y1, x1 = min(max(ys) + wh, H), min(max(xs) + ww, W)
        self.total = np.zeros((y1 - self.y0, x1 - self.x0), dtype=np.float32)
        self.count = np.zeros((y1 - self.y0, x1 - self.x0), dtype=np.float32)

    def add(self, origin: tuple[int, int], prob: np.ndarray) -> None:
        """Accumulate one window's native-scale probabilities on the canvas."""
        h, w = self.total.shape
        wy, wx = origin[0] - self.y0, origin[1] - self.x0
        ys, xs = max(wy, 0), max(wx, 0)
        ye, xe = min(wy + prob.shape[0], h), min(wx + prob.shape[1], w)
        if ye <= ys or xe <= xs:
            return
        self.total[ys:ye, xs:xe] += prob[ys - wy : ye - wy, xs - wx : xe - wx]
        self.count[ys:ye, xs:xe] += 1.0

    def probabilities(self) -> np.ndarray:
        """Average of the overlapping windows (0 where no window reached)."""
        return np.divide(
            self.total, self.count, out=np.zeros_like(self.total), where=self.count > 0
        )

    def prompt_on_canvas(self) -> np.ndarray:
        """The prompt as a boolean array in canvas coordinates (clipped to the canvas)."""
        p = self.prompt
        shifted = ObjectMask(p.y0 - self.y0, p.x0 - self.x0, p.mask)
        return shifted.to_full(self.total.shape)


def touches_border(m: ObjectMask, shape: tuple[int, int]) -> bool:
    """Whether a mask reaches the image border (the object may be partly out of view)."""
    if m.area == 0:
        return False
    box = bounding_box(m.mask)
    y0, y1, x0, x1 = m.y0 + box[0], m.y0 + box[1], m.x0 + box[2], m.x0 + box[3]
    return y0 <= 0 or x0 <= 0 or y1 >= shape[0] or x1 >= shape[1]


def at_edge(job: ObjectJob, plane_shape: tuple[int, int]) -> np.ndarray:
    """The job's canvas pixels that lie on the border of the image."""
    h, w = job.total.shape
    H, W = plane_shape
    edge = np.zeros((h, w), dtype=bool)
    if job.y0 == 0:
        edge[0, :] = True
    if job.x0 == 0:
        edge[:, 0] = True
    if job.y0 + h == H:
        edge[-1, :] = True
    if job.x0 + w == W:
        edge[:, -1] = True
    return edge


def share_pixels(jobs: list[ObjectJob], drawn: Mapping[int, ObjectMask], threshold: float) -> None:
    """Give every pixel to at most one object: the one the network is surest of there.

    Neighbours' windows see each other; where two objects' probabilities both pass the
    threshold, the lower one is set to 0, so an object cannot swallow (or jump onto) a touching
    neighbour. Pixels the user drew as another object in this frame belong to that object.
    Sets ``job.prob`` for every job.
    """
    for job in jobs:
        job.prob = job.probabilities()
    for i, a in enumerate(jobs):
        h, w = a.prob.shape
        for obj, mask in drawn.items():
            if obj == a.object_id:
                continue
            sl_a, sl_m = _intersection((a.y0, a.x0, h, w), (mask.y0, mask.x0, *mask.mask.shape))
            if sl_a is not None:
                a.prob[sl_a][mask.mask[sl_m]] = 0.0
        for b in jobs[i + 1 :]:
            sl_a, sl_b = _intersection((a.y0, a.x0, h, w), (b.y0, b.x0, *b.prob.shape))
            if sl_a is None:
                continue
            pa, pb = a.prob[sl_a], b.prob[sl_b]  # views: edited in place
            both = (pa > threshold) & (pb > threshold)
            if both.any():
                a_wins = pa >= pb
                pb[both & a_wins] = 0.0
                pa[both & ~a_wins] = 0.0


def _intersection(a: tuple[int, int, int, int], b: tuple[int, int, int, int]):
    """Slices into two (y0, x0, h, w) boxes of the plane for their common part, or (None, None)."""
    y0, x0 = max(a[0], b[0]), max(a[1], b[1])
    y1, x1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    if y1 <= y0 or x1 <= x0:
        return None, None
    sa = (slice(y0 - a[0], y1 - a[0]), slice(x0 - a[1], x1 - a[1]))
    sb = (slice(y0 - b[0], y1 - b[0]), slice(x0 - b[1], x1 - b[1]))
    return sa, sb
