"""Training samples cut from a movie and per-object masks (the PyJAMAS crop rule).

A sample is one object in frame t: a crop of the frame, the object's mask in frame t (the target)
and in frame t-1 (the prompt). Crops are larger than the network window (about twice its size)
so the training dataset can move the window around the object
(:class:`rescunet_ij.data.dataset.WindowDataset`). How samples are stored on disk is
:mod:`rescunet_ij.io.training_set`'s business.

The prompt is **motion-compensated** exactly as propagation will do it
(:mod:`rescunet_ij.data.motion`): the previous mask is moved by the frame pair's global shift and
the object's own refinement before the crop is cut, so the network learns from the prompts it
will be given (:func:`sample_shifts` says by how much each one moved).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from ..errors import DataError
from ..io.movie import PlaneSeries
from ..io.training_set import TrainingSample, warn_skipped
from ..types import ObjectMask, bounding_box
from .motion import NO_SHIFT, Shift, check_motion_mode, global_motion, object_motion, shift_mask

__all__ = ["SampleKey", "TrainingSample", "frame_shifts", "sample_shifts", "samples_from_masks"]

SampleKey = tuple[int, int]
"""``(object id, frame)``: the sample of that object in that frame (its prompt is frame - 1)."""


def _crop_range(p0: int, p1: int, u0: int, u1: int, size_w: int, length: int) -> tuple[int, int]:
    """Crop along one axis: ~2x the window, at least the union extent + window, centred on prev."""
    size = max(2 * size_w, (u1 - u0) + size_w)
    lo = int(np.floor((p0 + p1) / 2 - size / 2))
    hi = lo + size
    # Centring on the previous mask may leave too little room on the side the object moved to.
    lo = min(lo, u0 - size_w // 2)
    hi = max(hi, u1 + (size_w - size_w // 2))
    return max(lo, 0), min(hi, length)


def _window(window: int | tuple[int, int]) -> tuple[int, int]:
    wh, ww = (
        (window, window) if isinstance(window, (int, np.integer)) else tuple(int(v) for v in window)
    )
    if wh < 1 or ww < 1:
        raise DataError(f"window must be positive, got {(wh, ww)}")
    return int(wh), int(ww)


def _checked_planes(planes: np.ndarray | PlaneSeries) -> np.ndarray | PlaneSeries:
    """The planes as an array, or a lazy series left on disk (read a frame at a time)."""
    if not isinstance(planes, PlaneSeries):
        planes = np.asarray(planes)
    if planes.ndim not in (3, 4):
        raise DataError(
            "planes must be (frames, Y, X) or (frames, C, Y, X), got an array of shape "
            f"{planes.shape}"
        )
    return planes


def _pairs(
    planes: np.ndarray | PlaneSeries, masks: Mapping[int, Mapping[int, np.ndarray]]
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """``(frame, object, mask, previous mask)`` of every sample, checked, by frame then object.

    Frame by frame, so a lazy series reads each plane (and the one before) once.
    """
    n, (height, width) = planes.shape[0], planes.shape[-2:]
    order = sorted((t, obj) for obj in masks for t in masks[obj])
    for t, obj in order:
        frames = masks[obj]
        if not 0 <= t < n:
            raise DataError(
                f"object {obj} has a mask in frame {t + 1} but the movie has {n} frame(s); "
                "masks must belong to frames of this movie"
            )
        cur = np.asarray(frames[t], dtype=bool)
        if cur.shape != (height, width):
            raise DataError(
                f"the mask of object {obj} in frame {t + 1} is {cur.shape[0]}x{cur.shape[1]} "
                f"pixels but the movie is {height}x{width}; masks must cover the whole frame"
            )
        if t - 1 in frames:
            yield t, obj, cur, np.asarray(frames[t - 1], dtype=bool)


def frame_shifts(
    planes: np.ndarray, masks: Mapping[int, Mapping[int, np.ndarray]], motion: str = "auto"
) -> dict[int, Shift]:
    """The global shift of every frame pair that has a sample, keyed by the later frame.

    Parameters
    ----------
    planes, masks
        As for :func:`samples_from_masks`.
    motion
        One of :data:`~rescunet_ij.data.motion.MOTION_MODES` (``off``: no shift).

    Returns
    -------
    dict
        ``{frame: Shift}``: :func:`~rescunet_ij.data.motion.global_motion` from ``frame - 1``
        to ``frame``, confirmed by the frame's objects.
    """
    check_motion_mode(motion)
    planes = _checked_planes(planes)
    prompts: dict[int, list[ObjectMask]] = {}
    for t, _obj, _cur, prev in _pairs(planes, masks):
        if prev.any():  # the objects confirm the field's shift, as in propagation
            prompts.setdefault(t, []).append(ObjectMask.from_full(prev))
    return {t: global_motion(planes[t - 1], planes[t], motion, prompts[t]) for t in sorted(prompts)}


def sample_shifts(
    planes: np.ndarray,
    masks: Mapping[int, Mapping[int, np.ndarray]],
    window: int | tuple[int, int],
    motion: str = "auto",
    *,
    global_shifts: Mapping[int, Shift] | None = None,
) -> dict[SampleKey, Shift]:
    """The shift each sample's prompt is moved by, as the propagation engine would move it.

    The global shift is estimated once per frame pair (:func:`frame_shifts`), then refined per
    object (:func:`~rescunet_ij.data.motion.object_motion`, searching half the larger window
    side around it) for the ``object`` and ``auto`` modes.

    Parameters
    ----------
    planes, masks, window
        As for :func:`samples_from_masks`.
    motion
        One of :data:`~rescunet_ij.data.motion.MOTION_MODES`.
    global_shifts
        :func:`frame_shifts` when already computed for this ``motion``.

    Returns
    -------
    dict
        ``{(object id, frame): Shift}`` for every object and frame ``t`` with masks in ``t`` and
        ``t - 1`` (:data:`~rescunet_ij.data.motion.NO_SHIFT` when its previous mask is empty).

    Raises
    ------
    ConfigError
        If ``motion`` is not a motion mode.
    DataError
        If a mask's size differs from the planes' or a frame index is outside the movie.
    """
    check_motion_mode(motion)
    planes, win = _checked_planes(planes), _window(window)
    if global_shifts is None:
        global_shifts = frame_shifts(planes, masks, motion)
    out: dict[SampleKey, Shift] = {}
    for t, obj, _cur, prev in _pairs(planes, masks):
        prompt = ObjectMask.from_full(prev)
        if motion == "off" or prompt.area == 0:
            out[obj, t] = NO_SHIFT
            continue
        start = global_shifts.get(t, NO_SHIFT)
        out[obj, t] = object_motion(
            planes[t - 1], planes[t], prompt, motion, start=start, window=win
        )
    return out


def _sample(
    planes: np.ndarray,
    t: int,
    obj: int,
    cur: np.ndarray,
    prev: np.ndarray,
    window: tuple[int, int],
) -> TrainingSample | str:
    """The sample of object ``obj`` in frame ``t``, or why it was skipped."""
    pb, cb = bounding_box(prev), bounding_box(cur)
    if pb is None or cb is None:
        which = "its mask in the previous frame" if pb is None else "its mask"
        return f"object {obj} frame {t + 1} ({which} is empty)"
    (wh, ww), (height, width) = window, cur.shape
    u = (min(pb[0], cb[0]), max(pb[1], cb[1]), min(pb[2], cb[2]), max(pb[3], cb[3]))
    y0, y1 = _crop_range(pb[0], pb[1], u[0], u[1], wh, height)
    x0, x1 = _crop_range(pb[2], pb[3], u[2], u[3], ww, width)
    return TrainingSample(
        image=np.array(planes[t][..., y0:y1, x0:x1]),
        mask=cur[y0:y1, x0:x1].copy(),
        prev_mask=prev[y0:y1, x0:x1].copy(),
        name=f"t{t + 1:04d}_obj{obj:04d}",
    )


def _moved(prev: np.ndarray, shift: Shift) -> np.ndarray:
    """The full-frame previous mask moved by ``shift`` (clipped to the frame)."""
    if shift.dy == 0 and shift.dx == 0:
        return prev
    return shift_mask(ObjectMask.from_full(prev), shift, prev.shape).to_full(prev.shape)


def samples_from_masks(
    planes: np.ndarray,
    masks: Mapping[int, Mapping[int, np.ndarray]],
    window: int | tuple[int, int],
    *,
    motion: str = "auto",
    shifts: Mapping[SampleKey, Shift] | None = None,
) -> list[TrainingSample]:
    """Cut training samples from a movie and per-object masks.

    One sample is made for every object and frame ``t`` that has masks of that object in frames
    ``t`` and ``t - 1``. The previous mask is first moved by the motion the propagation engine
    would estimate (``motion``; see :func:`sample_shifts`), so the stored ``prev_mask`` is the
    motion-compensated prompt. The crop is about twice the window (at least the bounding box of
    both masks plus one window), centred on that prompt and clipped to the image.

    Parameters
    ----------
    planes
        ``(N, Y, X)`` or ``(N, C, Y, X)`` movie planes (frames), 0-based frame index first.
    masks
        ``masks[object_id][frame]`` is the ``(Y, X)`` bool mask of that object in that frame.
    window
        The native-pixel window size ``(h, w)`` (or one int) the network will see.
    motion
        Motion compensation of the prompts, one of
        :data:`~rescunet_ij.data.motion.MOTION_MODES` (``off``: the previous mask as it is).
        Use the mode the model will propagate with.
    shifts
        The shifts of :func:`sample_shifts` when already computed (``motion`` is then not
        used); missing samples are not moved.

    Returns
    -------
    list of TrainingSample
        Named ``t<frame>_obj<id>`` with the 1-based frame, e.g. ``t0003_obj0002``; sorted by
        frame, then object.

    Raises
    ------
    ConfigError
        If ``motion`` is not a motion mode.
    DataError
        If a mask's size differs from the planes' or a frame index is outside the movie.

    Warns
    -----
    UserWarning
        Once, naming each (object, 1-based frame) skipped because its mask or previous mask is
        empty (or its moved previous mask left the frame).
    """
    planes, win = _checked_planes(planes), _window(window)
    if shifts is None:
        shifts = sample_shifts(planes, masks, win, motion)
    out: list[tuple[int, int, TrainingSample]] = []
    skipped: list[str] = []
    for t, obj, cur, prev in _pairs(planes, masks):
        moved = _moved(prev, shifts.get((obj, t), NO_SHIFT))
        if prev.any() and not moved.any():
            skipped.append(f"object {obj} frame {t + 1} (its moved previous mask left the frame)")
            continue
        made = _sample(planes, t, obj, cur, moved, win)
        if isinstance(made, str):
            skipped.append(made)
        else:
            out.append((t, obj, made))
    warn_skipped(skipped, "sample(s) with empty masks")
    out.sort(key=lambda x: (x[0], x[1]))
    return [s for _, _, s in out]
