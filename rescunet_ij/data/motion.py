"""Motion between two frames: where each object went before its windows are cut.

A ReSCU-Net looks only inside windows around an object's previous mask; an object that moved by
more than about half a window (stage drift, a growing colony, a moving embryo) has left them.
So before windows are cut, every prompt is moved by the estimated motion:

1. **Global** (:func:`estimate_global_shift`): the frame-to-frame translation of the whole field.
   Candidates from phase correlation (:func:`skimage.registration.phase_cross_correlation`) and
   from the peaks of the linear cross-correlation (frames block-averaged when large, the winner
   refined at full resolution) are judged by the normalised cross-correlation of the frames'
   overlap; the shift is kept only when the frames really match better there than unmoved, and
   (:func:`confirm_field_shift`) when the objects themselves agree.
2. **Per object** (:func:`estimate_object_shift`): the previous frame's crop around the object is
   searched for in the new frame, within a radius around the global shift, by normalised
   cross-correlation (:func:`skimage.feature.match_template`); kept when the match is good and
   clearly better than the global shift, so objects that move on their own are followed.

Shifts are ``(dy, dx)`` in pixels, positive when the content moved down/right from the previous
frame to the new one.

**The rule** (one owner): :func:`global_motion` (once per frame pair) and :func:`object_motion`
(per object, searching :func:`search_radius` pixels around the global shift) apply a mode of
:data:`MOTION_MODES` to :func:`motion_plane` of each frame. The propagation engine and the
training samples (:func:`rescunet_ij.data.samples.samples_from_masks`) both call them, so a model
is trained on prompts moved exactly as they will be moved when it is used. This module lives in
``data/`` (below ``propagate/``) for that reason; :mod:`rescunet_ij.propagate.motion` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import ConfigError
from ..types import ObjectMask, bounding_box

__all__ = [
    "MIN_SEARCH_RADIUS",
    "MOTION_MODES",
    "NO_SHIFT",
    "MotionMode",
    "Shift",
    "check_motion_mode",
    "confirm_field_shift",
    "estimate_global_shift",
    "estimate_object_shift",
    "global_motion",
    "motion_plane",
    "object_motion",
    "search_radius",
    "shift_mask",
]

MotionMode = Literal["auto", "off", "global", "object"]
MOTION_MODES: tuple[str, ...] = ("auto", "off", "global", "object")
"""``off``: no compensation; ``global``: one translation per frame pair; ``object``: global, then
every object refined on its own; ``auto`` (default): as ``object``, but a shift is used only where
the images say it clearly (a global shift of at least one pixel that matches better than none, an
object shift that matches clearly better than the global one)."""

_MAX_SIDE = 512  # larger frames are block-averaged to at most this side for the global estimate
_MIN_GAIN = 0.02  # how much better a shift must match than the alternative to be used in auto
_MIN_FIELD_SCORE = 0.3  # the same field seen twice correlates far better than this when moved
_STILL_THERE = 0.8  # an object whose crop matches this well unmoved has not moved with the field
MIN_SEARCH_RADIUS = 8
"""The smallest radius (pixels) an object is searched for in (:func:`search_radius`)."""


@dataclass(frozen=True)
class Shift:
    """A translation between two frames.

    Attributes
    ----------
    dy, dx
        Whole pixels the content moved (down, right) from the previous frame to the new one.
    score
        Normalised cross-correlation of the matched images at this shift (-1..1; 0 = unknown).
    source
        ``"none"``, ``"global"`` or ``"object"``: which estimate this shift is.
    """

    dy: int = 0
    dx: int = 0
    score: float = 0.0
    source: str = "none"

    @property
    def magnitude(self) -> float:
        """Length of the shift in pixels."""
        return float(np.hypot(self.dy, self.dx))


NO_SHIFT = Shift()


def _normalised(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    return (a - a.mean()) / (a.std() + 1e-6)


def _overlap_ncc(ref: np.ndarray, mov: np.ndarray, dy: int, dx: int) -> float:
    """Normalised cross-correlation of ``ref`` and ``mov``, ``mov`` being ``ref`` moved by (dy, dx).

    Only the overlapping part counts; 0 when it is too small to judge.
    """
    h, w = ref.shape
    ys, ye = max(0, -dy), min(h, h - dy)
    xs, xe = max(0, -dx), min(w, w - dx)
    if ye - ys < 8 or xe - xs < 8:
        return 0.0
    a = ref[ys:ye, xs:xe].astype(np.float64)
    b = mov[ys + dy : ye + dy, xs + dx : xe + dx].astype(np.float64)
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def estimate_global_shift(
    previous: np.ndarray, current: np.ndarray, *, max_shift: int | None = None
) -> Shift:
    """The translation of the whole field from ``previous`` to ``current`` (2-D planes).

    Parameters
    ----------
    previous, current
        The two frames (same shape; any real dtype).
    max_shift
        Shifts longer than this (pixels) are not believed; ``None``: up to half the frame.

    Returns
    -------
    Shift
        ``source="global"`` with the normalised cross-correlation of the overlap at that shift,
        or :data:`NO_SHIFT` when the frames match no better shifted than unmoved (or the shift
        would leave too little overlap to tell).
    """
    from skimage.transform import downscale_local_mean

    prev = np.asarray(previous, dtype=np.float32)
    cur = np.asarray(current, dtype=np.float32)
    if prev.shape != cur.shape or prev.ndim != 2 or min(prev.shape) < 16:
        return NO_SHIFT
    if float(prev.std()) < 1e-6 or float(cur.std()) < 1e-6:
        return NO_SHIFT  # a blank frame shows no motion (and phase correlation would warn)
    factor = max(1, int(np.ceil(max(prev.shape) / _MAX_SIDE)))
    small_prev, small_cur = prev, cur
    if factor > 1:
        small_prev = downscale_local_mean(prev, (factor, factor))
        small_cur = downscale_local_mean(cur, (factor, factor))
    # Candidates from two estimators, judged by how well the frames agree at each: phase
    # correlation (sharp on textured fields) and the strongest peaks of the plain linear
    # cross-correlation (robust on sparse, noisy frames with few objects).
    candidates = _candidates(small_prev, small_cur)
    best, best_score = (0, 0), -np.inf
    for cy, cx in candidates:
        score = _overlap_ncc(small_prev, small_cur, cy, cx)
        if score > best_score:
            best, best_score = (cy, cx), score
    dy, dx = best[0] * factor, best[1] * factor
    steps = [(dy, dx)]
    if factor > 1:  # refine the block-averaged estimate at full resolution
        steps.append(_refine(prev, cur, *steps[-1]))
    # Objects also move on their own, so a peak can sit a pixel or two off the offset where the
    # frames agree best: settle on the best overlap correlation nearby.
    steps.append(_polish(prev, cur, *steps[-1]))
    # Each step may only improve how well the whole frames agree (a refinement judged on a crop
    # can be worse for the frame).
    dy, dx = max(steps, key=lambda s: _overlap_ncc(prev, cur, *s))
    limit = max_shift if max_shift is not None else int(0.75 * min(prev.shape))
    if (dy == 0 and dx == 0) or np.hypot(dy, dx) > limit:
        return NO_SHIFT
    moved = _overlap_ncc(prev, cur, dy, dx)
    still = _overlap_ncc(prev, cur, 0, 0)
    if moved < max(still + _MIN_GAIN, _MIN_FIELD_SCORE):
        return NO_SHIFT
    return Shift(dy, dx, moved, "global")


def _candidates(prev: np.ndarray, cur: np.ndarray, peaks: int = 5) -> list[tuple[int, int]]:
    """Content motions worth judging: the phase correlation's and the cross-correlation's peaks."""
    from skimage.registration import phase_cross_correlation

    a, b = _normalised(prev), _normalised(cur)
    found, _, _ = phase_cross_correlation(a, b, normalization="phase")
    out = [(-int(round(found[0])), -int(round(found[1])))]  # registration shift -> motion
    h, w = a.shape
    spectrum = np.conj(np.fft.rfft2(a, s=(2 * h, 2 * w))) * np.fft.rfft2(b, s=(2 * h, 2 * w))
    cc = np.fft.irfft2(spectrum, s=(2 * h, 2 * w))  # cc[dy, dx] = sum a[y, x] * b[y+dy, x+dx]
    dys = np.r_[np.arange(h), np.arange(-h, 0)][:, None]
    dxs = np.r_[np.arange(w), np.arange(-w, 0)][None, :]
    overlap = (h - np.abs(dys)) * (w - np.abs(dxs))
    cc[overlap < 0.25 * h * w] = -np.inf  # too little overlap to tell
    for i in np.argsort(cc, axis=None)[::-1][: peaks * 9]:
        iy, ix = np.unravel_index(int(i), cc.shape)
        cand = (int(dys[iy, 0]), int(dxs[0, ix]))
        if all(max(abs(cand[0] - c[0]), abs(cand[1] - c[1])) > 2 for c in out[1:]):
            out.append(cand)  # a new peak, not a neighbour of one already taken
        if len(out) > peaks:
            break
    return out


def _polish(prev: np.ndarray, cur: np.ndarray, dy: int, dx: int, reach: int = 2) -> tuple[int, int]:
    """The offset within ``reach`` pixels of ``(dy, dx)`` where the frames' overlap agrees best."""
    if (
        max(prev.shape) > _MAX_SIDE
    ):  # judge on a central crop: the same answer, a fraction of the work
        h, w = prev.shape
        y0, x0 = max(0, (h - _MAX_SIDE) // 2), max(0, (w - _MAX_SIDE) // 2)
        prev = prev[y0 : y0 + _MAX_SIDE, x0 : x0 + _MAX_SIDE]
        cur = cur[y0 : y0 + _MAX_SIDE, x0 : x0 + _MAX_SIDE]
    candidates = [
        (dy + i, dx + j) for i in range(-reach, reach + 1) for j in range(-reach, reach + 1)
    ]
    return max(candidates, key=lambda c: _overlap_ncc(prev, cur, *c))


def _refine(prev: np.ndarray, cur: np.ndarray, dy: int, dx: int) -> tuple[int, int]:
    """A coarse shift made exact: phase correlation of matching full-resolution crops."""
    from skimage.registration import phase_cross_correlation

    h, w = prev.shape
    c = min(_MAX_SIDE, h - abs(dy), w - abs(dx))
    if c < 32:
        return dy, dx
    # A c x c square inside the overlap, centred; the same content in `cur` sits (dy, dx) away.
    ys = max(0, -dy) + (h - abs(dy) - c) // 2
    xs = max(0, -dx) + (w - abs(dx) - c) // 2
    a = prev[ys : ys + c, xs : xs + c]
    b = cur[ys + dy : ys + dy + c, xs + dx : xs + dx + c]
    residual, _, _ = phase_cross_correlation(_normalised(a), _normalised(b), normalization="phase")
    ry, rx = (-int(round(v)) for v in residual)
    return dy + ry, dx + rx


def _template_box(prompt: ObjectMask, shape: tuple[int, int], margin: int | None):
    """The crop around an object used to match it: its bounding box plus context, in the plane."""
    box = bounding_box(prompt.mask)
    if box is None:
        return None
    y0, y1 = prompt.y0 + box[0], prompt.y0 + box[1]
    x0, x1 = prompt.x0 + box[2], prompt.x0 + box[3]
    m = margin if margin is not None else max(4, (max(y1 - y0, x1 - x0) + 3) // 4)
    H, W = shape
    return max(y0 - m, 0), min(y1 + m, H), max(x0 - m, 0), min(x1 + m, W)


def match_template(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``template`` at every position where it fits in ``image``.

    The result equals :func:`skimage.feature.match_template` (``pad_input=False``): shape
    ``image.shape - template.shape + 1``, values in [-1, 1], 0 where the image window is flat.
    It is written here over :mod:`numpy.fft` because scikit-image's imports ``scipy.signal``
    (0.6-0.9 s per command on 2 cores), which every ``--next-frame-only`` run of a macro paid once
    per frame; ``tests/test_motion.py`` checks it against scikit-image's.
    """
    img = np.asarray(image, dtype=np.float64)
    tpl = np.asarray(template, dtype=np.float64)
    th, tw = tpl.shape
    oh, ow = img.shape[0] - th + 1, img.shape[1] - tw + 1
    if oh < 1 or ow < 1:
        raise ValueError("the template must fit inside the image")

    # Sums of the image and its square over every template-sized window (integral images).
    def window_sums(a: np.ndarray) -> np.ndarray:
        c = np.zeros((a.shape[0] + 1, a.shape[1] + 1))
        c[1:, 1:] = a.cumsum(0).cumsum(1)
        return c[th:, tw:] - c[:-th, tw:] - c[th:, :-tw] + c[:-th, :-tw]

    s1, s2 = window_sums(img), window_sums(img * img)
    # Cross-correlation by FFT (convolution with the flipped template), the 'valid' part.
    shape = (img.shape[0] + th - 1, img.shape[1] + tw - 1)
    full = np.fft.irfft2(np.fft.rfft2(img, shape) * np.fft.rfft2(tpl[::-1, ::-1], shape), shape)
    xcorr = full[th - 1 : th - 1 + oh, tw - 1 : tw - 1 + ow]
    n = th * tw
    t_centered = tpl - tpl.mean()
    numerator = xcorr - s1 * tpl.mean()
    image_var = np.maximum(s2 - s1 * s1 / n, 0.0)
    denominator = np.sqrt(image_var * (t_centered * t_centered).sum())
    out = np.zeros_like(numerator)
    ok = denominator > np.finfo(np.float32).eps
    out[ok] = numerator[ok] / denominator[ok]
    return out


def _crop_ncc(template: np.ndarray, current: np.ndarray, y0: int, x0: int) -> float | None:
    """NCC of ``template`` with ``current`` at ``(y0, x0)``, over the part inside the frame.

    ``None`` when less than half the template would lie inside the frame (no fair comparison).
    """
    h, w = template.shape
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + h, current.shape[0]), min(x0 + w, current.shape[1])
    if ye <= ys or xe <= xs or 2 * (ye - ys) * (xe - xs) < h * w:
        return None
    a = template[ys - y0 : ye - y0, xs - x0 : xe - x0].astype(np.float64)
    b = current[ys:ye, xs:xe].astype(np.float64)
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def confirm_field_shift(
    previous: np.ndarray,
    current: np.ndarray,
    prompts: list[ObjectMask],
    field: Shift,
    *,
    margin: int | None = None,
) -> Shift:
    """Keep the field's shift only if the objects themselves agree.

    Phase correlation of whole frames can be fooled where objects appear, vanish or divide: an
    object may match another one far away. Each object's crop from ``previous`` is compared with
    ``current`` unmoved and moved by ``field``; the shift stands when more than half the objects
    match better moved than unmoved (a tie keeps the objects where they were). An object the shift
    would take out of view votes against it only if it clearly is still where it was.

    Returns
    -------
    Shift
        ``field``, or :data:`NO_SHIFT` when the objects say otherwise (or ``field`` is none).
    """
    if field.source == "none" or not prompts:
        return field
    prev = np.asarray(previous, dtype=np.float32)
    cur = np.asarray(current, dtype=np.float32)
    votes = 0
    counted = 0
    for prompt in prompts:
        box = _template_box(prompt, prev.shape, margin)
        if box is None:
            continue
        ty0, ty1, tx0, tx1 = box
        template = prev[ty0:ty1, tx0:tx1]
        if template.size < 16 or template.std() < 1e-6:
            continue
        moved = _crop_ncc(template, cur, ty0 + field.dy, tx0 + field.dx)
        still = _crop_ncc(template, cur, ty0, tx0)
        if moved is None:  # the shift would take it out of view: only a clear "still here" counts
            if still is not None and still >= _STILL_THERE:
                counted += 1
            continue
        counted += 1
        votes += still is None or moved > still
    return field if counted == 0 or 2 * votes > counted else NO_SHIFT


def estimate_object_shift(
    previous: np.ndarray,
    current: np.ndarray,
    prompt: ObjectMask,
    *,
    start: Shift = NO_SHIFT,
    radius: int = 32,
    margin: int | None = None,
    min_score: float = 0.7,
    min_gain: float = _MIN_GAIN,
) -> Shift:
    """Where one object went: its previous-frame crop matched in the new frame.

    Parameters
    ----------
    previous, current
        The two frames (2-D, same shape).
    prompt
        The object's mask in ``previous``.
    start
        The shift to search around (usually the global one).
    radius
        Search this many pixels around ``start`` (a plausible displacement).
    margin
        Context around the object's bounding box in the template; default a quarter of its size
        (at least 4 pixels), so the match sees the object's surroundings too.
    min_score
        A match below this normalised cross-correlation is not believed. 0.7 keeps almost all
        good matches of real nuclei while refusing most jumps onto a look-alike neighbour: on
        CTC Fluo-N2DH-SIM+ (422 objects, frames 41-59) 0.5 let 9 objects jump more than 10 px off
        their true displacement, 0.7 three, with the same median error (1.6 px).
    min_gain
        The match must beat the correlation at ``start`` by this much (0: take the best match).

    Returns
    -------
    Shift
        ``source="object"`` when a better, believable match was found; otherwise ``start``.
    """
    prev = np.asarray(previous, dtype=np.float32)
    cur = np.asarray(current, dtype=np.float32)
    box = _template_box(prompt, prev.shape, margin) if prev.shape == cur.shape else None
    if box is None:
        return start
    ty0, ty1, tx0, tx1 = box
    template = prev[ty0:ty1, tx0:tx1]
    if template.size < 16 or template.std() < 1e-6:
        return start
    H, W = prev.shape
    r = int(radius)
    cy0, cx0 = max(ty0 + start.dy - r, 0), max(tx0 + start.dx - r, 0)
    cy1, cx1 = min(ty1 + start.dy + r, H), min(tx1 + start.dx + r, W)
    if cy1 - cy0 < template.shape[0] or cx1 - cx0 < template.shape[1]:
        return start  # the search area left the frame: nothing to compare
    scores = match_template(cur[cy0:cy1, cx0:cx1], template)
    iy, ix = np.unravel_index(int(np.argmax(scores)), scores.shape)
    best = float(scores[iy, ix])
    dy, dx = cy0 + int(iy) - ty0, cx0 + int(ix) - tx0
    baseline = _crop_ncc(template, cur, ty0 + start.dy, tx0 + start.dx)
    if baseline is None:
        # Mostly out of view at `start`: the template can only be matched fully inside the frame,
        # so any match found is somewhere else; keep the field's shift.
        return start
    if best < min_score or best < baseline + min_gain or (dy, dx) == (start.dy, start.dx):
        return start
    return Shift(dy, dx, best, "object")


def shift_mask(prompt: ObjectMask, shift: Shift, plane_shape: tuple[int, int]) -> ObjectMask:
    """``prompt`` moved by ``shift`` and clipped to the plane (empty when it left the plane)."""
    if shift.dy == 0 and shift.dx == 0:
        return prompt
    H, W = plane_shape
    y0, x0 = prompt.y0 + shift.dy, prompt.x0 + shift.dx
    h, w = prompt.mask.shape
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + h, H), min(x0 + w, W)
    if ye <= ys or xe <= xs:
        return ObjectMask(0, 0, np.zeros((0, 0), dtype=bool))
    crop = prompt.mask[ys - y0 : ye - y0, xs - x0 : xe - x0]
    clipped = ObjectMask.from_full(crop)
    return ObjectMask(ys + clipped.y0, xs + clipped.x0, clipped.mask)


# ----------------------------------------------------------------------------- the rule


def check_motion_mode(mode: str) -> str:
    """``mode`` when it is one of :data:`MOTION_MODES`; otherwise a :class:`ConfigError`."""
    if mode not in MOTION_MODES:
        raise ConfigError(
            f"motion must be one of {', '.join(MOTION_MODES)}; got {mode!r} (auto: follow the "
            "whole field and each object where the images show it clearly; off: no compensation)"
        )
    return str(mode)


def search_radius(window: int | tuple[int, int], radius: int | None = None) -> int:
    """How far (pixels) an object is searched for around the global shift.

    ``radius`` when given; otherwise half the larger window side, at least
    :data:`MIN_SEARCH_RADIUS`: an object that moved further than that on its own would have left
    its window anyway.
    """
    if radius is not None:
        return int(radius)
    side = max(window) if isinstance(window, tuple) else int(window)
    return max(MIN_SEARCH_RADIUS, int(side) // 2)


def motion_plane(plane: np.ndarray) -> np.ndarray:
    """The 2-D image motion is estimated on: the plane itself, or the mean of its channels.

    Parameters
    ----------
    plane
        ``(Y, X)`` or ``(C, Y, X)``.

    Returns
    -------
    numpy.ndarray
        ``(Y, X)`` (float32 when channels were averaged).
    """
    a = np.asarray(plane)
    return a if a.ndim == 2 else a.astype(np.float32).mean(axis=0)


def global_motion(
    previous: np.ndarray,
    current: np.ndarray,
    mode: str,
    prompts: list[ObjectMask] | None = None,
) -> Shift:
    """The field's shift between two frames under ``mode`` (:data:`NO_SHIFT` for ``off``).

    Parameters
    ----------
    previous, current
        The two frames, ``(Y, X)`` or ``(C, Y, X)`` (see :func:`motion_plane`).
    mode
        One of :data:`MOTION_MODES`.
    prompts
        The objects' masks in ``previous``: the field's shift stands only if they agree
        (:func:`confirm_field_shift`).

    Returns
    -------
    Shift
        :func:`estimate_global_shift` of the two planes (confirmed by the objects), or
        :data:`NO_SHIFT`.
    """
    if check_motion_mode(mode) == "off":
        return NO_SHIFT
    before, after = motion_plane(previous), motion_plane(current)
    field = estimate_global_shift(before, after)
    if prompts:
        field = confirm_field_shift(before, after, prompts, field)
    return field


def object_motion(
    previous: np.ndarray,
    current: np.ndarray,
    prompt: ObjectMask,
    mode: str,
    *,
    start: Shift,
    window: int | tuple[int, int],
    radius: int | None = None,
) -> Shift:
    """One object's shift between two frames under ``mode``: the shift its prompt is moved by.

    Parameters
    ----------
    previous, current
        The two frames, ``(Y, X)`` or ``(C, Y, X)`` (see :func:`motion_plane`).
    prompt
        The object's mask in ``previous``.
    mode
        One of :data:`MOTION_MODES`: ``off`` and ``global`` return ``start``; ``object`` takes
        the best match around ``start`` (``min_gain=0``); ``auto`` takes it only when it matches
        clearly better than ``start``.
    start
        The frame pair's :func:`global_motion`.
    window
        The model's window (subimage) size in native pixels; sets the search radius.
    radius
        Search radius in pixels; ``None``: :func:`search_radius` of ``window``.

    Returns
    -------
    Shift
        The object's shift (``start`` when no better one was found).
    """
    if check_motion_mode(mode) in ("off", "global"):
        return start
    gain = {"min_gain": 0.0} if mode == "object" else {}
    return estimate_object_shift(
        motion_plane(previous),
        motion_plane(current),
        prompt,
        start=start,
        radius=search_radius(window, radius),
        **gain,
    )
