"""Learning from the user's corrections: fine-tune a model, then propagate again with it.

The rule for what counts as a correction, and how a fine-tuning step is recorded, live in
:mod:`rescunet_ij.train.finetune`; this module is the API over it (movies, RoiSets, outputs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError
from ..types import Outline
from ._common import (
    _default_z,
    _index,
    _loaded,
    _movie,
    _offset,
    _outlines,
    _plane_source,
    _relevant,
)

if TYPE_CHECKING:
    from ..config import PropagateConfig
    from ..io.checkpoint import LoadedModel
    from ..train.finetune import Correction
    from ..train.loop import TrainCallbacks
    from ..types import FrameResult
    from ._propagation import PropagationRun


@dataclass
class FinetuneResult:
    """What :func:`finetune` did (frames 0-based, the movie's own numbers).

    Attributes
    ----------
    model
        The fine-tuned model (its ``extra["lineage"]`` records the step).
    model_path
        The file it was written to (``None`` when no output was given).
    corrections
        The corrections it learned from (:func:`find_corrections`).
    n_samples
        Training samples made from them (a correction whose masks are empty makes none).
    n_replay
        Samples of the original training set mixed in.
    replay_source
        The training set they came from, or ``None``.
    history
        One record per fine-tuning epoch.
    outlines
        With ``repropagate``: every outline after propagating again from the first corrected
        frame (the user's outlines kept as given, later predictions replaced); else ``None``.
    runs
        The propagation runs behind ``outlines`` (one per stretch between user outlines).
    rois_path
        The RoiSet written with ``rois_output``, else ``None``.
    """

    model: LoadedModel
    model_path: Path | None
    corrections: list[Correction]
    n_samples: int
    n_replay: int
    replay_source: str | None
    history: list[dict[str, Any]] = field(default_factory=list)
    outlines: list[Outline] | None = None
    runs: list[PropagationRun] = field(default_factory=list)
    rois_path: Path | None = None

    @property
    def first_corrected_frame(self) -> int:
        """The earliest corrected frame (0-based)."""
        return min(c.frame for c in self.corrections)


def _series(
    movie: Any, outlines: Any, channel: int | None, z: int | None
) -> tuple[Any, list[Outline], list[Outline], int | None, int | None]:
    """The movie, all outlines, those of the plane series (z) used, channel and z (0-based)."""
    mv = _movie(movie)
    given = _outlines(outlines, mv)
    channel = _index(channel, "channel")
    z = _default_z(mv, _index(z, "z"), "t")
    if z is None:
        zs = sorted({o.z for o in given})
        if len(zs) != 1:
            raise DataError(
                "this movie has several z-planes and the outlines lie on z-plane(s) "
                f"{', '.join(str(v + 1) for v in zs)}; choose the plane to learn from with z= "
                "(CLI: --z, 1-based)"
            )
        z = zs[0]
    return mv, given, _relevant(given, "t", z, None), channel, z


def find_corrections(outlines: Any, movie: Any = None, *, z: int | None = None) -> list[Correction]:
    """The user's corrections among ``outlines`` (a list, or a RoiSet path with ``movie``).

    A correction is a user's outline (no ``confidence``, or a prediction whose polygon was
    edited after rescunet-ij wrote it) in a frame whose previous frame has an outline of the same
    object (:mod:`rescunet_ij.train.finetune`). ``z`` (0-based) keeps one plane.
    """
    from ..train.finetune import find_corrections as _find

    if isinstance(outlines, (str, os.PathLike)):
        if movie is None:
            raise DataError("reading a RoiSet needs its movie: find_corrections(rois, movie)")
        outlines = _outlines(outlines, _movie(movie))
    items = list(outlines) if isinstance(outlines, list) else _outlines(outlines, None)
    if z is not None:
        items = [o for o in items if o.z == int(z)]
    return _find(items)


def _no_corrections(given: list[Outline]) -> DataError:
    from ..train.finetune import CORRECTION_RULE

    origins = {k: sum(o.origin == k for o in given) for k in ("model", "edited", "user")}
    return DataError(
        f"no corrections found among {len(given)} outline(s) ({origins['model']} unchanged "
        f"prediction(s), {origins['edited']} edited, {origins['user']} drawn by the user); "
        f"{CORRECTION_RULE}"
    )


def finetune(
    model: str | Path | LoadedModel,
    movie: Any,
    outlines: Any,
    output: str | Path | None,
    *,
    replay: str | Path | None = None,
    replay_samples: int = 64,
    epochs: int | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    seed: int = 0,
    channel: int | None = None,
    z: int | None = None,
    repropagate: bool = False,
    rois_output: str | Path | None = None,
    config: PropagateConfig | None = None,
    callbacks: TrainCallbacks | None = None,
    on_frame: Any = None,
    overwrite: bool = False,
) -> FinetuneResult:
    """Fine-tune ``model`` on the user's corrections in ``outlines``; optionally propagate again.

    Parameters
    ----------
    model
        The model that produced the predictions (file or :func:`load_model`).
    movie
        The movie (path, array or :func:`read_movie`'s result).
    outlines
        The corrected outlines: a RoiSet path or a list (from :func:`read_outlines`, which marks
        edited predictions). See :func:`find_corrections` for what counts as a correction.
    output
        The new model file (written atomically, with the lineage in its metadata); ``None``
        keeps it in memory.
    replay
        The model's original training set (folder or zip): ``replay_samples`` of its samples are
        mixed in so the model does not forget. Default: the set recorded in the model
        (``extra["training_data"]``) when it still exists, else none.
    epochs, learning_rate, batch_size, device, seed
        Fine-tuning settings (default: 10 epochs at 1/5 of the model's learning rate; the rest
        as the model was trained; :func:`rescunet_ij.train.finetune.finetune_config`).
    channel, z
        0-based channel and plane (movies with several).
    repropagate
        Then propagate again with the new model from the first corrected frame: the user's
        outlines are kept as given, later predictions replaced (:func:`repropagate`).
        ``rois_output`` implies it.
    rois_output
        RoiSet ``.zip`` to write the repropagated outlines to.
    config
        Propagation settings for the repropagation.
    callbacks
        Training progress (:class:`~rescunet_ij.train.loop.TrainCallbacks`).
    on_frame
        Called with each repropagated frame's result.
    overwrite
        Replace existing outputs (both are checked before any work).

    Returns
    -------
    FinetuneResult

    Raises
    ------
    DataError
        When no correction is found (the message says what counts as one), or the replay set
        does not fit the model.
    OutputExistsError
        When an output exists and ``overwrite`` is false.
    """
    from ..io.training_set import read_training_set
    from ..train.finetune import (
        correction_samples,
        finetune_config,
        finetune_model,
        lineage_entry,
        replay_subset,
    )
    from ._movies import check_outputs, write_outlines

    check_outputs([output, rois_output], overwrite=overwrite)
    mv, given, relevant, channel, z = _series(movie, outlines, channel, z)
    from ..train.finetune import find_corrections as _find

    corrections = _find(relevant)
    if not corrections:
        raise _no_corrections(relevant)
    parent = _loaded(model)
    if replay is None and parent.extra.get("training_data"):
        recorded = Path(str(parent.extra["training_data"]))
        replay = recorded if recorded.exists() else None
    cfg = finetune_config(
        parent,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        device=device,
        seed=seed,
    )
    planes = _plane_source(mv, channel, z, "t")  # plane by plane for a lazy movie
    motion = cfg.prompt_motion or "auto"
    samples = correction_samples(
        planes, corrections, cfg.window_size, first=_offset(mv, "t"), motion=motion
    )
    if not samples:
        raise DataError(
            f"the {len(corrections)} correction(s) made no training sample (their outlines or "
            "the previous ones cover no pixel, or moved out of the frame)"
        )
    replayed = []
    if replay is not None:
        replay_all, _meta = read_training_set(replay)
        n_ch = {s.channels for s in replay_all}
        if n_ch and n_ch != {samples[0].channels}:
            raise DataError(
                f"the replay training set {replay} has {sorted(n_ch)} channel(s) but the movie "
                f"gives {samples[0].channels}; pass the model's own training set"
            )
        replayed = replay_subset(replay_all, replay_samples, seed=seed)
    source = str(mv.attrs.get("source")) if mv.attrs.get("source") else None
    lineage = lineage_entry(
        parent,
        corrections,
        n_samples=len(samples),
        n_replay=len(replayed),
        replay_source=None if replay is None else str(replay),
        config=cfg,
        movie=source,
        rois=str(outlines) if isinstance(outlines, (str, os.PathLike)) else None,
    )
    # The model is saved first: a repropagation that fails does not lose the fine-tuning.
    result = finetune_model(
        parent,
        samples,
        cfg,
        lineage=lineage,
        replay=replayed,
        replay_source=None if replay is None else str(replay),
        output=output,
        callbacks=callbacks,
        overwrite=overwrite,
    )
    out = FinetuneResult(
        model=result.model,
        model_path=result.model_path,
        corrections=corrections,
        n_samples=len(samples),
        n_replay=len(replayed),
        replay_source=None if replay is None else str(replay),
        history=list(result.history),
    )
    if repropagate or rois_output is not None:
        if config is None and device is not None:
            from ._training import propagate_config

            config = propagate_config(device=device)
        merged, runs = _repropagate(
            mv, given, result.model, channel=channel, z=z, config=config, on_frame=on_frame
        )
        out.outlines, out.runs = merged, runs
        if rois_output is not None:
            out.rois_path = write_outlines(rois_output, merged, mv, overwrite=overwrite)
    return out


def repropagate(
    movie: Any,
    outlines: Any,
    model: str | Path | LoadedModel,
    *,
    from_frame: int | None = None,
    channel: int | None = None,
    z: int | None = None,
    config: PropagateConfig | None = None,
    on_frame: Any = None,
) -> tuple[list[Outline], list[PropagationRun]]:
    """Propagate again from the first corrected frame, keeping every user's outline as given.

    The model's predictions after ``from_frame`` (default: the first corrected frame) are
    replaced by new ones. The user's outlines (drawn, or edited predictions) are never replaced:
    propagation runs from one frame holding user outlines to the next, and each stretch starts
    from the user's outlines there (plus the new predictions of the other objects). The user's
    outlines are returned as user outlines (no ``confidence``), so they are recognised again.

    Returns
    -------
    tuple
        Every outline (sorted; other planes untouched) and the propagation runs.
    """
    return _repropagate(
        movie,
        outlines,
        model,
        from_frame=from_frame,
        channel=channel,
        z=z,
        config=config,
        on_frame=on_frame,
    )


def _repropagate(
    movie: Any,
    outlines: Any,
    model: Any,
    *,
    from_frame: int | None = None,
    channel: int | None = None,
    z: int | None = None,
    config: PropagateConfig | None = None,
    on_frame: Any = None,
) -> tuple[list[Outline], list[PropagationRun]]:
    """:func:`repropagate` (named apart: :func:`finetune` has a parameter of that name)."""
    from ._propagation import propagate

    mv, given, relevant, channel, z = _series(movie, outlines, channel, z)
    loaded = _loaded(model)

    def as_user(o: Outline) -> Outline:
        if o.origin == "model":
            return o
        return replace(o, confidence=None, prompt_iou=None, edited=False)

    from ..train.finetune import find_corrections as _find

    user = [as_user(o) for o in relevant if o.origin != "model"]
    if from_frame is None:
        corrections = _find(relevant)
        if not corrections:
            raise _no_corrections(relevant)
        from_frame = min(c.frame for c in corrections)
    from_frame = int(from_frame)
    first = _offset(mv, "t")
    last = first + int(mv.sizes["t"]) - 1
    stops = sorted({o.frame for o in user if o.frame > from_frame} | {last + 1})
    current = [as_user(o) for o in relevant]
    others = [o for o in given if o.z != z]
    runs: list[PropagationRun] = []
    start = from_frame
    for stop in stops:
        end = min(stop, last)
        if start < end:
            run = propagate(
                mv,
                current,
                loaded,
                start_frame=start,
                end_frame=end,
                channel=channel,
                z=z,
                config=config,
                on_frame=_frame_hook(on_frame, end, stop),
            )
            runs.append(run)
            current = list(run.outlines)
        # The user's outlines on the stop frame win over the predictions just made there.
        mine = {o.object_id for o in user if o.frame == end}
        current = [o for o in current if not (o.frame == end and o.object_id in mine)]
        current += [o for o in user if o.frame == end]
        start = end
    merged = sorted(current + others, key=lambda o: o.sort_key)
    return merged, runs


def _frame_hook(on_frame: Any, end: int, stop: int) -> Any:
    """``on_frame`` for one stretch (the stop frame's predictions are replaced: not reported)."""
    if on_frame is None:
        return None

    def hook(fr: FrameResult) -> None:
        if fr.frame != end or stop > end:
            on_frame(fr)

    return hook
