"""Propagation: one checked plan, then the engine frame by frame (the API's propagation half)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import PropagateConfig
from ..errors import DataError, StateError
from ..propagate.frames import resolve_frame_range
from ..types import FrameResult, ObjectStatus, Outline
from ._common import (
    Axis,
    _axis,
    _default_z,
    _index,
    _index_of,
    _loaded,
    _movie,
    _none_relevant,
    _offset,
    _outlines,
    _plane_source,
    _relevant,
)

if TYPE_CHECKING:
    from ..io.checkpoint import LoadedModel


frame_range = resolve_frame_range
"""The one frame rule (:func:`rescunet_ij.propagate.frames.resolve_frame_range`)."""


@dataclass
class PropagationRun:
    """The outcome of :func:`propagate` (frames are the movie's own, 0-based).

    Attributes
    ----------
    outlines
        Every outline of the result, sorted by frame then object id: the input outlines that were
        not recomputed, the seeds, and the predictions.
    predicted
        Only the newly predicted outlines.
    frames
        One :class:`FrameResult` per propagated frame (with confidence and prompt IoU per object).
    lost
        Objects that vanished: object id -> 0-based frame where the network found nothing.
    start_frame
        The seed frame.
    end_frame
        The last frame predicted.
    """

    outlines: list[Outline]
    predicted: list[Outline]
    frames: list[FrameResult] = field(default_factory=list)
    lost: dict[int, int] = field(default_factory=dict)
    start_frame: int = 0
    end_frame: int = 0

    def doubtful(
        self, min_confidence: float = 0.8, min_prompt_iou: float = 0.5
    ) -> list[tuple[int, int, str]]:
        """``(frame, object_id, why)`` for predictions worth a look, in frame order."""
        out = []
        for fr in self.frames:
            for ob in fr.objects:
                if ob.status is ObjectStatus.LOST:
                    why = f"lost: {ob.reason}" if ob.reason else "lost"
                    out.append((fr.frame, ob.object_id, why))
                elif ob.status is ObjectStatus.DOUBTFUL:
                    out.append((fr.frame, ob.object_id, f"doubtful: {ob.reason}"))
                elif ob.confidence < min_confidence:
                    out.append((fr.frame, ob.object_id, f"low confidence {ob.confidence:.2f}"))
                elif ob.prompt_iou < min_prompt_iou:
                    out.append(
                        (
                            fr.frame,
                            ob.object_id,
                            f"large change (IoU {ob.prompt_iou:.2f} with previous)",
                        )
                    )
        return out


@dataclass
class _Plan:
    """A checked propagation request, before any model is loaded or pixel is converted."""

    planes: Any  # (N, Y, X) float32 array, or a lazy PlaneSeries for a lazy movie
    first: int  # the movie's index of planes[0] along the axis
    seeds: list[Outline]  # the outlines on the start frame (of the selected objects)
    outlines: list[Outline]  # every outline given (kept in the result where not recomputed)
    start: int
    end: int
    axis: Axis
    z: int | None  # the plane propagated through time (axis t)
    t: int | None  # the time point of a z-stack (axis z)
    channel: int | None
    reverse: bool
    object_ids: set[int] | None


def _plan(
    movie: Any,
    outlines: Any,
    *,
    start_frame: int | None,
    end_frame: int | None,
    next_only: bool,
    reverse: bool,
    channel: int | None,
    z: int | None,
    axis: Any,
    object_ids: Iterable[int] | None,
) -> _Plan:
    axis = _axis(axis)
    mv = _movie(movie)
    given = _outlines(outlines, mv)
    channel = _index(channel, "channel")
    z = _default_z(mv, _index(z, "z"), axis)
    t = _offset(mv, "t") if axis == "z" else None
    planes = _plane_source(mv, channel, z, axis)  # checks channel and plane against the movie first
    relevant = _relevant(given, axis, z, t)
    wanted = None if object_ids is None else {int(o) for o in object_ids}
    if wanted is not None:
        relevant = [o for o in relevant if o.object_id in wanted]
    if not relevant:
        why = _none_relevant(given, axis, z, t)
        if wanted is not None and given:
            why = f"no outlines of object(s) {sorted(wanted)}"
        raise DataError(f"nothing to propagate: {why}")
    first = _offset(mv, axis)
    start, end = resolve_frame_range(
        range(first, first + planes.shape[0]),
        {_index_of(o, axis) for o in relevant},
        start_frame,
        end_frame,
        next_only=next_only,
        reverse=bool(reverse),
    )
    seeds = [o for o in relevant if _index_of(o, axis) == start]
    return _Plan(
        planes, first, seeds, given, start, end, axis, z, t, channel, bool(reverse), wanted
    )


def _to_engine(o: Outline, axis: Axis) -> Outline:
    if axis == "t":
        return o
    return Outline(o.object_id, o.z, o.polygon, z=0, c=o.c, name=o.name)


def _from_engine(o: Outline, plan: _Plan) -> Outline:
    c = plan.channel if plan.channel is not None else o.c
    frame, z = (o.frame, plan.z or 0) if plan.axis == "t" else (plan.t or 0, o.frame)
    return Outline(
        o.object_id,
        frame,
        o.polygon,
        z=z,
        c=c,
        name=o.name,
        confidence=o.confidence,
        prompt_iou=o.prompt_iou,
    )


def _run(
    plan: _Plan, model: Any, config: PropagateConfig | None
) -> Iterator[tuple[FrameResult, list[Outline]]]:
    from ..propagate import Propagator

    prop = Propagator(_loaded(model), config or PropagateConfig())
    state = prop.init_state(plan.planes, first_frame=plan.first)
    for o in plan.seeds:
        prop.add_outline(state, _to_engine(o, plan.axis))
    for fr in prop.propagate(state, plan.start, plan.end, reverse=plan.reverse):
        for ob in fr.objects:  # engine coordinates -> the movie's (t or z, channel)
            if ob.outline is not None:
                ob.outline = _from_engine(ob.outline, plan)
        yield fr, fr.outlines


def iter_propagate(
    movie: Any,
    outlines: Any,
    model: str | Path | LoadedModel,
    *,
    start_frame: int | None = None,
    end_frame: int | None = None,
    next_only: bool = False,
    reverse: bool = False,
    channel: int | None = None,
    z: int | None = None,
    axis: Axis = "t",
    config: PropagateConfig | None = None,
    object_ids: Iterable[int] | None = None,
) -> Iterator[tuple[FrameResult, list[Outline]]]:
    """Propagate outlines frame by frame; yields ``(FrameResult, outlines of that frame)``.

    ``start_frame`` (0-based, the movie's own number) holds the seed outlines; default: the first
    frame with outlines (the last one when ``reverse``). ``end_frame`` is inclusive; default: the
    end of the movie (its start when ``reverse``). ``next_only`` predicts only the frame after
    ``start_frame``. Along ``axis="z"`` the planes of a z-stack play the role of frames.
    Everything is checked before the first frame is computed
    (:func:`rescunet_ij.propagate.frames.resolve_frame_range`).
    """
    plan = _plan(
        movie,
        outlines,
        start_frame=start_frame,
        end_frame=end_frame,
        next_only=next_only,
        reverse=reverse,
        channel=channel,
        z=z,
        axis=axis,
        object_ids=object_ids,
    )
    return _run(plan, _loaded(model), config)


def propagate(
    movie: Any,
    outlines: Any,
    model: str | Path | LoadedModel,
    *,
    start_frame: int | None = None,
    end_frame: int | None = None,
    next_only: bool = False,
    reverse: bool = False,
    channel: int | None = None,
    z: int | None = None,
    axis: Axis = "t",
    config: PropagateConfig | None = None,
    object_ids: Iterable[int] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
) -> PropagationRun:
    """Propagate the outlines on ``start_frame`` through the movie (see :func:`iter_propagate`).

    The result keeps every input outline of frames that were not recomputed, so re-running from a
    corrected frame ``k`` replaces frames after ``k`` only (before ``k`` when ``reverse``).
    ``on_start(start, end)`` is called once every argument (the model file too) passed its
    checks, and ``on_frame`` with each frame's result: progress for a caller's progress bar.
    """
    plan = _plan(
        movie,
        outlines,
        start_frame=start_frame,
        end_frame=end_frame,
        next_only=next_only,
        reverse=reverse,
        channel=channel,
        z=z,
        axis=axis,
        object_ids=object_ids,
    )
    loaded = _loaded(model)  # a model file that cannot be opened is one more input check
    if on_start is not None:
        on_start(plan.start, plan.end)
    frames: list[FrameResult] = []
    predicted: list[Outline] = []
    lost: dict[int, int] = {}
    for fr, fo in _run(plan, loaded, config):
        frames.append(fr)
        predicted.extend(fo)
        for ob in fr.objects:
            if ob.status is ObjectStatus.LOST:
                lost.setdefault(ob.object_id, fr.frame)
        if on_frame is not None:
            on_frame(fr)
    if not frames:
        raise StateError("nothing was propagated")
    return PropagationRun(
        outlines=_merge(plan, frames, predicted),
        predicted=predicted,
        frames=frames,
        lost=lost,
        start_frame=plan.start,
        end_frame=frames[-1].frame,
    )


def _merge(plan: _Plan, frames: list[FrameResult], predicted: list[Outline]) -> list[Outline]:
    """The input outlines that were not recomputed, plus the predictions, in writing order.

    Every frame visited is recomputed for every seeded object: an object lost on the way loses its
    stale outlines from an earlier run too, so the result never mixes two runs.
    """
    recomputed = {fr.frame for fr in frames}
    propagated_ids = {o.object_id for o in plan.seeds}

    def replaced(o: Outline) -> bool:
        if plan.axis == "t":
            same_series = plan.z is None or o.z == plan.z
        else:
            same_series = o.frame == plan.t
        return (
            same_series and _index_of(o, plan.axis) in recomputed and o.object_id in propagated_ids
        )

    kept = [o for o in plan.outlines if not replaced(o)]
    names = {o.object_id: o.name for o in plan.outlines if o.name}
    for o in predicted:
        if o.name is None and o.object_id in names:
            o.name = names[o.object_id]
    return sorted(kept + predicted, key=lambda o: o.sort_key)


def write_report(path: str | Path, run: PropagationRun, *, overwrite: bool = False) -> Path:
    """A CSV of every predicted object and frame (1-based frames, as in ImageJ).

    Columns: ``frame, object_id, status, confidence, prompt_iou, area_px``.
    """
    from ..io.tables import write_propagation_table

    if not isinstance(run, PropagationRun):
        raise DataError(f"write_report needs a PropagationRun; got {type(run).__name__}")
    return write_propagation_table(path, run.frames, overwrite=overwrite)
