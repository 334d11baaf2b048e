"""Window (subimage) and network input sizes chosen from the training data.

When the user gives no ``subimage_size``, the training set is cut at a window chosen from the
outlined objects, and training uses the network input size chosen with it:

**Window** (native pixels around each object): the smallest multiple of 16 that is at least

* 1.5 x the object size (:data:`EXTENT_PERCENTILE`-th percentile of the larger bounding-box side
  over every outline), so the object and a margin of a quarter of its size on each side are in
  view, and
* the object size + 2 x the motion left after motion compensation
  (:data:`RESIDUAL_PERCENTILE`-th percentile of how far the object's bounding-box centre lies
  from its moved previous outline's, larger axis), so a window centred on the prompt holds the
  object where it went,

clipped to 32..4096 pixels. The factor 1.5 (not 2) comes from ``benchmarks/bench_accuracy_ctc.py``:
for ~60 px nuclei a 96 px window propagated better than a 128 px one on both CTC data sets (GOWT1
multi-step IoU 0.88 vs 0.82, SIM+ 0.80 vs 0.78) at the same validation IoU: the extra context
cost resolution and bought nothing.

**Network input**: the window itself up to 96 pixels (no rescaling: the network sees native
pixels, as PyJAMAS users expect); above that, half the window rounded to 16, within 96..128
pixels. An object thus never gets fewer network pixels than a smaller one, the downscale stays
at most 2x up to 256 px windows, and memory stays bounded (128x128 trains on a small GPU).

Warnings say when the choice loses detail (the network sees the objects more than
:data:`MAX_DOWNSCALE`-fold reduced), when objects move further than the window can hold (more
than :data:`OUTSIDE_TOLERANCE` of the samples), and when the objects are too large for the
largest window. :func:`suggest_sizes` is pure (masks and shifts in, a :class:`SizeChoice` out);
:func:`choose_sizes` also estimates the motion, as the training set and propagation do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..config import INPUT_MULTIPLE, MAX_INPUT_SIZE, MAX_SUBIMAGE_SIZE
from ..errors import DataError
from ..types import ObjectMask, bounding_box
from .motion import NO_SHIFT, Shift, search_radius, shift_mask
from .samples import SampleKey, frame_shifts, sample_shifts

__all__ = [
    "SizeChoice",
    "SizeStatistics",
    "centre_offset",
    "choose_sizes",
    "input_for_window",
    "prompt_shift_for",
    "scale_warning",
    "size_statistics",
    "suggest_sizes",
    "window_for",
]

EXTENT_PERCENTILE = 90
"""Percentile of the object sizes the window is made for."""
RESIDUAL_PERCENTILE = 95
"""Percentile of the residual displacements the window must hold."""
WINDOW_FACTOR = 1.5
"""Window side per object size (the object plus a quarter of its size on each side)."""
MIN_WINDOW = 32
"""Smallest chosen window side, pixels (the network needs some context around tiny objects)."""
NO_RESCALE_UP_TO = 96
"""Windows up to this side are not rescaled: the network input is the window."""
INPUT_RANGE = (96, 128)
"""Network input sides chosen for larger windows (half the window, clipped to this range)."""
MAX_DOWNSCALE = 3.0
"""A window more than this many times the input side loses detail: warned about."""
OUTSIDE_TOLERANCE = 0.05
"""Share of samples whose object may leave the window before that is warned about."""
PROMPT_SHIFT_PERCENTILE = 90
"""Percentile of the training displacements used as the largest random prompt shift."""
MIN_PROMPT_SHIFT = 2
"""Smallest default prompt shift, pixels (even still objects get slightly misplaced prompts)."""


@dataclass(frozen=True)
class SizeStatistics:
    """What the sizes were chosen from (pixels, to 0.01; percentiles over outlines or samples).

    Attributes
    ----------
    objects, outlines, samples
        Objects, non-empty outlines (object-frames) and samples (object in frame t and t-1).
    extent_p50, extent_p90, extent_max
        The larger bounding-box side of the outlines.
    residual_p50, residual_p95, residual_max
        How far each sample's object lies from its motion-compensated previous outline: the
        larger axis of the distance between their bounding-box centres (0 without samples).
    motion_p95
        95th percentile of the compensated motion itself (the length of the shifts).
    """

    objects: int
    outlines: int
    samples: int
    extent_p50: float
    extent_p90: float
    extent_max: float
    residual_p50: float
    residual_p95: float
    residual_max: float
    motion_p95: float
    # per sample: (extent along y, along x, |centre offset| along y, along x); not in the metadata
    needs: tuple[tuple[int, int, float, float], ...] = field(default=(), repr=False, compare=False)

    def to_meta(self) -> dict[str, Any]:
        """The statistics as JSON-ready values (without the per-sample table)."""
        out = asdict(self)
        out.pop("needs")
        return out


@dataclass(frozen=True)
class SizeChoice:
    """The window and network input sizes for a training set, and why.

    Attributes
    ----------
    subimage_size
        Window ``(h, w)`` around each object, native pixels.
    input_size
        Network input ``(h, w)``, a multiple of 16.
    chosen
        ``"rule"`` when the window was chosen from the data, ``"given"`` when the user gave it
        (the input size then follows the input rule for that window).
    reason
        One line: the rule and the numbers it was applied to.
    warnings
        What may go wrong with these sizes (detail lost, objects leaving the window).
    statistics
        The statistics used (``None`` for a choice read from metadata without them).
    """

    subimage_size: tuple[int, int]
    input_size: tuple[int, int]
    chosen: str
    reason: str
    warnings: tuple[str, ...] = ()
    statistics: SizeStatistics | None = None

    @property
    def downscale(self) -> float:
        """How many times smaller the network sees the window (< 1: enlarged)."""
        return max(w / i for w, i in zip(self.subimage_size, self.input_size))

    def to_meta(self) -> dict[str, Any]:
        """The choice as JSON-ready values, for the training set's metadata."""
        return {
            "subimage_size": list(self.subimage_size),
            "input_size": list(self.input_size),
            "chosen": self.chosen,
            "reason": self.reason,
            "warnings": list(self.warnings),
            "statistics": self.statistics.to_meta() if self.statistics else None,
        }

    @classmethod
    def from_meta(cls, meta: Any) -> SizeChoice | None:
        """The choice stored by :meth:`to_meta`, or ``None`` when ``meta`` holds none."""
        if not isinstance(meta, Mapping):
            return None
        try:
            window = tuple(int(v) for v in meta["subimage_size"])
            inp = tuple(int(v) for v in meta["input_size"])
            stats = meta.get("statistics")
            return cls(
                subimage_size=window,  # type: ignore[arg-type]
                input_size=inp,  # type: ignore[arg-type]
                chosen=str(meta.get("chosen", "rule")),
                reason=str(meta.get("reason", "")),
                warnings=tuple(str(w) for w in meta.get("warnings") or ()),
                statistics=SizeStatistics(**stats) if isinstance(stats, Mapping) else None,
            )
        except (KeyError, TypeError, ValueError):
            return None


def _centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
    return (box[0] + box[1]) / 2, (box[2] + box[3]) / 2


def centre_offset(
    box: tuple[int, int, int, int], prev_box: tuple[int, int, int, int]
) -> tuple[float, float]:
    """``(|dy|, |dx|)`` between the centres of two bounding boxes: how far an object moved.

    This is the displacement every rule here measures (window sizes, prompt augmentation): a
    window centred on the previous outline holds the object when its extent plus twice this
    offset fits, along each axis.
    """
    (cy, cx), (py, px) = _centre(box), _centre(prev_box)
    return abs(cy - py), abs(cx - px)


def prompt_shift_for(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]], window: tuple[int, int]
) -> int:
    """The largest random prompt shift for training: how far the training objects move.

    Parameters
    ----------
    pairs
        ``(mask, prev_mask)`` of each training sample, in the same crop (the stored prompt is
        already motion-compensated, so this is the motion left after compensation).
    window
        The training window ``(h, w)``, native pixels.

    Returns
    -------
    int
        The :data:`PROMPT_SHIFT_PERCENTILE`-th percentile of :func:`centre_offset` (larger axis)
        rounded up, at least :data:`MIN_PROMPT_SHIFT`, at most a quarter of the smaller window
        side (a larger shift would move the prompt away from the object it belongs to).
    """
    offsets = []
    for mask, prev in pairs:
        box, prev_box = bounding_box(np.asarray(mask, bool)), bounding_box(np.asarray(prev, bool))
        if box is not None and prev_box is not None:
            offsets.append(max(centre_offset(box, prev_box)))
    found = math.ceil(_percentile(offsets, PROMPT_SHIFT_PERCENTILE) - 1e-9)
    return int(min(max(found, MIN_PROMPT_SHIFT), max(MIN_PROMPT_SHIFT, min(window) // 4)))


def _moved_box(prev: np.ndarray, shift: Shift) -> tuple[int, int, int, int] | None:
    """Bounding box (full-frame coordinates) of ``prev`` moved by ``shift``."""
    moved = shift_mask(ObjectMask.from_full(prev), shift, prev.shape)
    box = bounding_box(moved.mask)
    if box is None:
        return None
    return moved.y0 + box[0], moved.y0 + box[1], moved.x0 + box[2], moved.x0 + box[3]


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def size_statistics(
    masks: Mapping[int, Mapping[int, np.ndarray]],
    shifts: Mapping[SampleKey, Shift] | None = None,
) -> SizeStatistics:
    """Object sizes and residual displacements of outlined objects.

    Parameters
    ----------
    masks
        ``masks[object_id][frame]``: full-frame ``(Y, X)`` bool masks.
    shifts
        ``{(object id, frame): Shift}`` the previous outlines are moved by
        (:func:`~rescunet_ij.data.samples.sample_shifts`); missing ones count as no motion.

    Returns
    -------
    SizeStatistics
        The statistics.

    Raises
    ------
    DataError
        If no mask holds an object.
    """
    shifts = shifts or {}
    extents: list[float] = []
    residuals: list[float] = []
    motions: list[float] = []
    needs: list[tuple[int, int, float, float]] = []
    for obj in sorted(masks):
        frames = masks[obj]
        for t in sorted(frames):
            box = bounding_box(np.asarray(frames[t], dtype=bool))
            if box is None:
                continue
            extents.append(float(max(box[1] - box[0], box[3] - box[2])))
            if t - 1 not in frames:
                continue
            shift = shifts.get((obj, t), NO_SHIFT)
            prev_box = _moved_box(np.asarray(frames[t - 1], dtype=bool), shift)
            if prev_box is None:
                continue
            oy, ox = centre_offset(box, prev_box)
            residuals.append(max(oy, ox))
            motions.append(shift.magnitude)
            needs.append((box[1] - box[0], box[3] - box[2], oy, ox))
    if not extents:
        raise DataError("no outlined objects to choose sizes from: every mask is empty")
    return SizeStatistics(
        objects=sum(1 for o in masks if any(np.any(m) for m in masks[o].values())),
        outlines=len(extents),
        samples=len(residuals),
        extent_p50=round(_percentile(extents, 50), 2),
        extent_p90=round(_percentile(extents, EXTENT_PERCENTILE), 2),
        extent_max=max(extents),
        residual_p50=round(_percentile(residuals, 50), 2),
        residual_p95=round(_percentile(residuals, RESIDUAL_PERCENTILE), 2),
        residual_max=max(residuals, default=0.0),
        motion_p95=round(_percentile(motions, 95), 2),
        needs=tuple(needs),
    )


def _ceil16(x: float) -> int:
    return INPUT_MULTIPLE * max(1, math.ceil(x / INPUT_MULTIPLE - 1e-9))


def window_for(stats: SizeStatistics) -> int:
    """The window side of the rule: see the module docstring."""
    need = max(WINDOW_FACTOR * stats.extent_p90, stats.extent_p90 + 2 * stats.residual_p95)
    return int(min(max(_ceil16(need), MIN_WINDOW), MAX_SUBIMAGE_SIZE))


def input_for_window(window: tuple[int, int]) -> tuple[int, int]:
    """The network input of the rule for a window: the window up to 96 px, else half of it.

    Each side: up to :data:`NO_RESCALE_UP_TO` the window side rounded up to a multiple of 16
    (at least 16); above it half the window rounded to 16, within :data:`INPUT_RANGE`.
    """

    def side(n: int) -> int:
        if n <= NO_RESCALE_UP_TO:
            return _ceil16(n)  # never smaller than the window: no detail lost
        half = INPUT_MULTIPLE * round(n / (2 * INPUT_MULTIPLE))
        return int(min(max(half, INPUT_RANGE[0]), INPUT_RANGE[1]))

    return side(int(window[0])), side(int(window[1]))


def scale_warning(window: tuple[int, int], input_size: tuple[int, int]) -> str | None:
    """A warning when the network sees windows more than :data:`MAX_DOWNSCALE`-fold reduced."""
    factor = max(w / i for w, i in zip(window, input_size))
    if factor <= MAX_DOWNSCALE:
        return None
    better = tuple(min(MAX_INPUT_SIZE, _ceil16(w / 2)) for w in window)
    return (
        f"the network sees the objects {factor:.1f}-fold reduced ({window[0]}x{window[1]} px "
        f"windows -> {input_size[0]}x{input_size[1]} px input): fine detail may be lost; "
        f"consider input_size {better[0]}x{better[1]} (CLI: --input-size; more memory and time) "
        "or a smaller subimage size"
    )


def _outside_warning(stats: SizeStatistics, window: tuple[int, int]) -> str | None:
    """A warning when too many samples' objects reach outside a window centred on the prompt."""
    if not stats.samples:
        return None
    out = sum(
        1 for eh, ew, oy, ox in stats.needs if eh + 2 * oy > window[0] or ew + 2 * ox > window[1]
    )
    if out <= OUTSIDE_TOLERANCE * stats.samples:
        return None
    need = _ceil16(stats.extent_p90 + 2 * stats.residual_p95)
    return (
        f"in {out} of {stats.samples} samples ({100 * out / stats.samples:.0f}%) the object "
        f"moved further than a {window[0]}x{window[1]} px window centred on its previous outline "
        f"can hold (motion left after compensation: 95th percentile {stats.residual_p95:.0f} "
        f"px, objects {stats.extent_p90:.0f} px): the network cannot see where they went; use "
        f"a subimage size of at least {need} (CLI: --subimage-size) or motion compensation "
        "(--motion object)"
    )


def _reason(stats: SizeStatistics, window: int, input_size: tuple[int, int]) -> str:
    inp = (
        "the window (no rescaling up to 96 px)"
        if window <= NO_RESCALE_UP_TO
        else f"half the window rounded to 16, within {INPUT_RANGE[0]}..{INPUT_RANGE[1]}"
    )
    return (
        f"subimage {window} px = smallest multiple of 16 >= max(1.5 x object size "
        f"{stats.extent_p90:.0f} px, object size + 2 x residual motion "
        f"{stats.residual_p95:.1f} px) within {MIN_WINDOW}..{MAX_SUBIMAGE_SIZE}; input "
        f"{input_size[0]} px = {inp} (object size: {EXTENT_PERCENTILE}th percentile of "
        f"{stats.outlines} outlines; residual motion: {RESIDUAL_PERCENTILE}th percentile of "
        f"{stats.samples} samples after motion compensation)"
    )


def _decide(
    stats: SizeStatistics,
    window: tuple[int, int] | None,
    input_size: tuple[int, int] | None,
    given: bool,
) -> SizeChoice:
    """The choice for ``stats``: the rule's window unless ``window`` is set, then the input."""
    notes: list[str] = []
    if window is None:
        side = window_for(stats)
        window = (side, side)
    if not given and WINDOW_FACTOR * stats.extent_p90 > MAX_SUBIMAGE_SIZE:
        notes.append(
            f"the objects ({stats.extent_p90:.0f} px) are too large for the largest window "
            f"({MAX_SUBIMAGE_SIZE} px); downscale the movie first (Fiji: Image > Scale)"
        )
    inp = (
        (int(input_size[0]), int(input_size[1]))
        if input_size is not None
        else input_for_window(window)
    )
    if given:
        how = "as given" if input_size is not None else "by the input rule"
        reason = f"subimage {window[0]}x{window[1]} px as given; input {inp[0]}x{inp[1]} px {how}"
    else:
        reason = _reason(stats, window[0], inp)
    for note in (scale_warning(window, inp), _outside_warning(stats, window)):
        if note:
            notes.append(note)
    return SizeChoice(window, inp, "given" if given else "rule", reason, tuple(notes), stats)


def suggest_sizes(
    masks: Mapping[int, Mapping[int, np.ndarray]],
    shifts: Mapping[SampleKey, Shift] | None = None,
    *,
    subimage_size: tuple[int, int] | None = None,
    input_size: tuple[int, int] | None = None,
) -> SizeChoice:
    """The window and input sizes for training on these outlines (the rule of this module).

    Parameters
    ----------
    masks
        ``masks[object_id][frame]``: full-frame ``(Y, X)`` bool masks.
    shifts
        The motion the previous outlines are moved by (see :func:`size_statistics`).
    subimage_size, input_size
        Sizes the user chose: kept as they are (and checked for the warnings).

    Returns
    -------
    SizeChoice
        The sizes, the one-line reason, the warnings and the statistics.

    Raises
    ------
    DataError
        If no mask holds an object.
    """
    window = None if subimage_size is None else (int(subimage_size[0]), int(subimage_size[1]))
    return _decide(size_statistics(masks, shifts), window, input_size, window is not None)


def choose_sizes(
    planes: np.ndarray,
    masks: Mapping[int, Mapping[int, np.ndarray]],
    motion: str = "auto",
    *,
    subimage_size: tuple[int, int] | None = None,
) -> tuple[SizeChoice, dict[SampleKey, Shift]]:
    """Sizes for a training set and the prompt shifts to cut it with.

    The motion search radius depends on the window and the window on the motion, so: a first
    window from the object sizes alone, the shifts searched with it, the window of the rule,
    and, while that window differs, the object shifts searched again with it (at most three
    rounds; the global shifts are estimated once). The returned shifts are those propagation
    with the returned window will use.

    Parameters
    ----------
    planes, masks
        As for :func:`~rescunet_ij.data.samples.samples_from_masks`.
    motion
        One of :data:`~rescunet_ij.data.motion.MOTION_MODES`.
    subimage_size
        A window the user chose (then kept, and the shifts searched with it).

    Returns
    -------
    tuple
        The :class:`SizeChoice` and ``{(object id, frame): Shift}``.
    """
    global_shifts = frame_shifts(planes, masks, motion)
    given = None if subimage_size is None else (int(subimage_size[0]), int(subimage_size[1]))
    window = given or (window_for(size_statistics(masks)),) * 2
    for _ in range(3):
        shifts = sample_shifts(planes, masks, window, motion, global_shifts=global_shifts)
        choice = suggest_sizes(masks, shifts, subimage_size=given)
        if given is not None or search_radius(choice.subimage_size) == search_radius(window):
            return choice, shifts
        window = choice.subimage_size
    # Not settled (the rule's window keeps changing the object shifts): keep the last window.
    shifts = sample_shifts(planes, masks, window, motion, global_shifts=global_shifts)
    return _decide(size_statistics(masks, shifts), window, None, given=False), shifts
