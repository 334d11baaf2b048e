"""The three things a Fiji user does with rescunet-ij, one call each.

* :func:`export_training_set` - the open movie + its outlined objects -> a training-set folder.
* :func:`propagate_in_imagej` - outlines on one frame -> every later frame, straight into the
  ROI Manager (replacing only the later frames of the propagated objects).
* :func:`apply_to_current_frame` - predict the frame on screen from the previous frame's
  outlines, so a user can step through a movie frame by frame and correct as they go.

``imp`` defaults to the image in front (``WindowManager.getCurrentImage()``) and ``rm`` to the
shared ROI Manager (``RoiManager.getRoiManager()``), which is what the user sees in Fiji. Frame
numbers in these functions are **1-based**, as Fiji shows them. Nothing here loses user data:
problems are reported before the ROI Manager is touched, and only ROIs of the recomputed objects
in the recomputed frames are replaced.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError, ImageJError
from ..types import FrameResult, Identity, Outline
from ._java import jc, require_jvm
from .convert import outlines_to_roimanager, read_roimanager
from .pixels import imageplus_dims, imageplus_to_movie

if TYPE_CHECKING:
    from ..api import PropagationRun
    from ..config import PropagateConfig
    from ..io.checkpoint import LoadedModel

__all__ = [
    "PropagationSummary",
    "apply_to_current_frame",
    "export_training_set",
    "finetune_in_imagej",
    "propagate_in_imagej",
    "show_error",
    "train_in_imagej",
]


@dataclass
class PropagationSummary:
    """What a propagation did in ImageJ (frames 1-based, as Fiji shows them).

    Attributes
    ----------
    image
        Title of the image.
    start_frame, end_frame
        The seed frame and the last predicted frame.
    object_ids
        The propagated objects.
    added, removed
        ROIs added to / removed from the ROI Manager.
    lost
        Object id -> first frame where the network found nothing (propagation of it stopped).
    doubtful
        ``(frame, object id, why)`` for predictions worth a look.
    run
        The full :class:`rescunet_ij.api.PropagationRun` (0-based frames).
    """

    image: str
    start_frame: int
    end_frame: int
    object_ids: list[int]
    added: int
    removed: int
    lost: dict[int, int] = field(default_factory=dict)
    doubtful: list[tuple[int, int, str]] = field(default_factory=list)
    run: Any = None

    def __str__(self) -> str:
        text = (
            f"'{self.image}': {len(self.object_ids)} object(s) propagated from frame "
            f"{self.start_frame} through frame {self.end_frame}; {self.added} ROI(s) added, "
            f"{self.removed} replaced"
        )
        if self.lost:
            text += "; lost: " + ", ".join(
                f"object {o} at frame {f}" for o, f in sorted(self.lost.items())
            )
        if self.doubtful:
            text += f"; {len(self.doubtful)} prediction(s) worth a look"
        return text


def _image(imp: Any) -> Any:
    require_jvm()
    if imp is None:
        imp = jc.WindowManager.getCurrentImage()
    if imp is None:
        raise DataError(
            "no image is open; open the movie in ImageJ (File > Open...) and select its window"
        )
    return imp


def _roi_manager(rm: Any) -> Any:
    if rm is not None:
        return rm
    if bool(jc.GraphicsEnvironment.isHeadless()):
        raise ImageJError(
            "the ROI Manager needs a display, but Java runs headless; run under a (virtual) "
            "display (xvfb-run) or pass a ROI Manager"
        )
    return jc.RoiManager.getRoiManager()


# Stepping through a movie calls apply_to_current_frame once per frame: keep the last models
# loaded (keyed by file identity, so a retrained file is loaded again).
_MODEL_CACHE: dict[tuple[str, int, int], LoadedModel] = {}
_MODEL_CACHE_SIZE = 2


def _model(model: str | os.PathLike[str] | LoadedModel) -> LoadedModel:
    from .. import api

    if isinstance(model, api.LoadedModel):
        return model
    if model is None or str(model).strip() == "":
        raise DataError("no model given; choose a trained model file (.rescunet)")
    path = Path(str(model)).expanduser()
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return api.load_model(path)  # raises the model-file error with its explanation
    if key not in _MODEL_CACHE:
        while len(_MODEL_CACHE) >= _MODEL_CACHE_SIZE:
            _MODEL_CACHE.pop(next(iter(_MODEL_CACHE)))
        _MODEL_CACHE[key] = api.load_model(path)
    return _MODEL_CACHE[key]


def show_error(exc: BaseException, title: str = "ReSCU-Net") -> str:
    """Tell the Fiji user what went wrong (an ImageJ error dialog, or the Log when headless).

    Returns the message, for scripts that also report it as an output.
    """
    message = str(exc) or exc.__class__.__name__
    try:
        if bool(jc.GraphicsEnvironment.isHeadless()):
            jc.IJ.log(f"{title}: {message}")
        else:
            jc.IJ.error(title, message)
    except Exception:  # noqa: BLE001, S110 - no ImageJ to show it in: the caller gets the text
        pass
    return f"error: {message}"


def _frame_arg(value: int | None, imp: Any, what: str) -> int | None:
    if value is None:
        return None
    n_t = imageplus_dims(imp)[4]
    v = int(value)
    if not 1 <= v <= n_t:
        raise DataError(f"{what} {v} is outside the movie '{imp.getTitle()}' (frames 1..{n_t})")
    return v


def _z_arg(z: int | None, imp: Any) -> int | None:
    """0-based plane from a 1-based one; default: the plane on screen for a z-stack."""
    n_z = imageplus_dims(imp)[3]
    if z is None:
        return int(imp.getSlice()) - 1 if n_z > 1 else None
    if not 1 <= int(z) <= n_z:
        raise DataError(f"z-plane {z} is outside the movie '{imp.getTitle()}' (planes 1..{n_z})")
    return int(z) - 1


def _channel_arg(channel: int | None, imp: Any) -> int | None:
    if channel is None:
        return None
    return int(channel) - 1


def export_training_set(
    imp: Any = None,
    rm: Any = None,
    *,
    out_dir: str | os.PathLike[str],
    subimage_size: int | tuple[int, int] | None = None,
    identity: Identity | str = Identity.AUTO,
    channel: int | None = None,
    z: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a training set from the open movie and the outlines in the ROI Manager.

    Parameters
    ----------
    imp, rm
        The movie and the ROI Manager (default: the image in front, the shared ROI Manager).
    out_dir
        Folder to create (PyJAMAS layout, see :func:`rescunet_ij.api.make_training_set`).
    subimage_size
        Window around each object in native pixels (default: chosen from the outlines; see
        :func:`rescunet_ij.api.make_training_set`).
    identity
        How ROIs in different frames are matched to objects.
    channel, z
        1-based channel / z-plane to train on (multi-channel or z movies).
    overwrite
        Replace an existing folder.

    Returns
    -------
    Path
        The training-set folder.
    """
    from .. import api

    imp = _image(imp)
    rm = _roi_manager(rm)
    outlines, _ = read_roimanager(rm, imp, identity)
    movie = imageplus_to_movie(imp)
    return api.make_training_set(
        movie,
        outlines,
        out_dir,
        subimage_size=subimage_size,
        channel=_channel_arg(channel, imp),
        z=_z_arg(z, imp),
        overwrite=overwrite,
    )


def _check_seeds(imp: Any, in_plane: list[Outline], seed_frame: int, z0: int | None) -> None:
    """The Fiji user's view of "no outlines here": which frames do have some, and what to do."""
    if any(o.frame == seed_frame for o in in_plane):
        return
    present = sorted({o.frame + 1 for o in in_plane})
    shown = ", ".join(str(f) for f in present[:12]) + ("..." if len(present) > 12 else "")
    raise DataError(
        f"no outlines on frame {seed_frame + 1} of '{imp.getTitle()}'"
        + (f" (z-plane {z0 + 1})" if z0 is not None else "")
        + (f"; the ROI Manager has outlines on frames {shown}" if present else "")
        + ". Go to a frame with outlines (or outline the objects on this frame) and try again"
    )


def _run_and_push(
    *,
    model: Any,
    imp: Any,
    rm: Any,
    seed_frame: int,
    end_frame: int | None,
    next_only: bool,
    reverse: bool,
    identity: Identity | str,
    config: PropagateConfig | None,
    channel: int | None,
    z: int | None,
    on_frame: Callable[[FrameResult], None] | None,
) -> PropagationSummary:
    """Shared by the two propagation operations (``seed_frame``/``end_frame`` 0-based).

    Frame numbers stay ImageJ's (0-based) throughout: only the frames needed are copied out of
    ImageJ, and the copy keeps their numbers, so nothing is shifted back afterwards.
    """
    from .. import api

    n_t = imageplus_dims(imp)[4]
    outlines, _ = read_roimanager(rm, imp, identity)
    z0 = _z_arg(z, imp)
    in_plane = [o for o in outlines if z0 is None or o.z == z0]
    _check_seeds(imp, in_plane, seed_frame, z0)
    try:
        start, last = api.frame_range(
            range(n_t),
            {o.frame for o in in_plane},
            seed_frame,
            end_frame,
            next_only=next_only,
            reverse=reverse,
        )
    except DataError as exc:
        raise DataError(f"'{imp.getTitle()}': {exc}") from None
    loaded = _model(model)  # only after every check of the user's input
    lo, hi = min(start, last), max(start, last)
    movie = imageplus_to_movie(imp, frames=range(lo, hi + 1))
    names = {o.object_id: o.name for o in outlines if o.name}
    window = [
        replace(o, name=o.name or names.get(o.object_id)) for o in in_plane if lo <= o.frame <= hi
    ]
    run: PropagationRun = api.propagate(
        movie,
        window,
        loaded,
        start_frame=start,
        end_frame=last,
        reverse=reverse,
        channel=channel,
        z=z0,
        config=config,
        on_frame=on_frame,
    )
    seeds = [o for o in in_plane if o.frame == start]
    seed_c = {o.object_id: o.c for o in seeds}  # predictions show on the channels their seed does
    to_push = [
        replace(o, z=o.z if z0 is None else z0, c=seed_c.get(o.object_id)) for o in run.predicted
    ]
    seed_ids = sorted({o.object_id for o in seeds})
    push = outlines_to_roimanager(
        to_push,
        rm,
        imp,
        replace_frames={fr.frame for fr in run.frames},
        object_ids=seed_ids,
        replace_z={0 if z0 is None else z0},
        identity=identity,
    )
    try:
        rm.runCommand("Show All")
    except Exception:  # noqa: BLE001, S110 - a hidden ROI Manager has no display to update
        pass
    return PropagationSummary(
        image=str(imp.getTitle()),
        start_frame=start + 1,
        end_frame=run.end_frame + 1,
        object_ids=seed_ids,
        added=push.added,
        removed=push.removed,
        lost={oid: f + 1 for oid, f in run.lost.items()},
        doubtful=[(f + 1, oid, why) for f, oid, why in run.doubtful()],
        run=run,
    )


def propagate_in_imagej(
    model: str | os.PathLike[str] | LoadedModel,
    imp: Any = None,
    rm: Any = None,
    *,
    start_frame: int | None = None,
    end_frame: int | None = None,
    reverse: bool = False,
    identity: Identity | str = Identity.AUTO,
    config: PropagateConfig | None = None,
    channel: int | None = None,
    z: int | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
) -> PropagationSummary:
    """Propagate the outlines on ``start_frame`` through the movie into the ROI Manager.

    Parameters
    ----------
    model
        A trained model file (``.rescunet``) or a loaded model (:func:`rescunet_ij.api.load_model`).
    imp, rm
        The movie and the ROI Manager (default: the image in front, the shared ROI Manager).
    start_frame
        1-based frame holding the seed outlines; default: the frame on screen.
    end_frame
        1-based last frame to predict (inclusive); default: the last frame (the first when
        ``reverse``).
    reverse
        Propagate backwards in time.
    identity
        How ROIs are matched to objects (``auto``, ``property``, ``group``, ``name``, ``order``).
    config
        Propagation settings (:class:`rescunet_ij.config.PropagateConfig`).
    channel, z
        1-based channel / z-plane of a multi-channel or z movie (default: all channels / the
        plane on screen).
    on_frame
        Called with each :class:`~rescunet_ij.types.FrameResult` as it is predicted (progress).

    Returns
    -------
    PropagationSummary
        What was done (``str()`` gives a one-line report).

    Raises
    ------
    DataError
        No image, an empty ROI Manager, no outlines on the start frame, ROIs without frame
        positions or from another image, frames outside the movie.
    """
    imp = _image(imp)
    rm = _roi_manager(rm)
    start = _frame_arg(start_frame, imp, "start frame")
    seed = (start if start is not None else int(imp.getFrame())) - 1
    end = _frame_arg(end_frame, imp, "end frame")
    return _run_and_push(
        model=model,
        imp=imp,
        rm=rm,
        seed_frame=seed,
        end_frame=None if end is None else end - 1,
        next_only=False,
        reverse=reverse,
        identity=identity,
        config=config,
        channel=_channel_arg(channel, imp),
        z=z,
        on_frame=on_frame,
    )


def apply_to_current_frame(
    model: str | os.PathLike[str] | LoadedModel,
    imp: Any = None,
    rm: Any = None,
    *,
    reverse: bool = False,
    identity: Identity | str = Identity.AUTO,
    config: PropagateConfig | None = None,
    channel: int | None = None,
    z: int | None = None,
) -> PropagationSummary:
    """Predict the frame on screen from the outlines on the previous frame.

    Step through a movie: correct the outlines on frame k, move to frame k+1, call this, check,
    correct, repeat. Only the current frame's ROIs of the objects outlined on the previous frame
    are replaced. With ``reverse`` the "previous" frame is the next one (frame k+1 -> k).
    """
    imp = _image(imp)
    rm = _roi_manager(rm)
    current = int(imp.getFrame()) - 1
    n_t = imageplus_dims(imp)[4]
    seed = current + 1 if reverse else current - 1
    if not 0 <= seed < n_t:
        raise DataError(
            f"frame {current + 1} of '{imp.getTitle()}' has no "
            f"{'next' if reverse else 'previous'} frame to predict it from; outline the objects "
            f"on this frame and move to frame {current + (0 if reverse else 2)}"
        )
    return _run_and_push(
        model=model,
        imp=imp,
        rm=rm,
        seed_frame=seed,
        end_frame=current,
        next_only=True,
        reverse=reverse,
        identity=identity,
        config=config,
        channel=_channel_arg(channel, imp),
        z=z,
        on_frame=None,
    )


def finetune_in_imagej(
    model: str | os.PathLike[str] | LoadedModel,
    imp: Any = None,
    rm: Any = None,
    *,
    output: str | os.PathLike[str],
    repropagate: bool = True,
    replay: str | os.PathLike[str] | None = None,
    identity: Identity | str = Identity.AUTO,
    channel: int | None = None,
    z: int | None = None,
    config: PropagateConfig | None = None,
    overwrite: bool = False,
    **params: Any,
) -> Any:
    """Fine-tune ``model`` on the corrections in the ROI Manager, then propagate again.

    The corrections are the user's ROIs (drawn, or predictions whose outline was edited) in a
    frame whose previous frame has an outline of the same object (see
    :func:`rescunet_ij.api.finetune`). The new model goes to ``output``; with ``repropagate``
    the new predictions replace the model's ROIs after the first corrected frame, while the
    user's ROIs stay untouched. ``params`` are :func:`rescunet_ij.api.finetune`'s settings
    (``epochs``, ``learning_rate``, ``batch_size``, ``device``, ``replay_samples``, ``seed``);
    ``channel`` and ``z`` are 1-based. Returns the :class:`rescunet_ij.api.FinetuneResult`.
    """
    from .. import api

    imp = _image(imp)
    rm = _roi_manager(rm)
    outlines, _ = read_roimanager(rm, imp, identity)
    z0 = _z_arg(z, imp)
    movie = imageplus_to_movie(imp)
    jc.IJ.showStatus("ReSCU-Net: fine-tuning on the corrections...")
    result = api.finetune(
        model,
        movie,
        outlines,
        output,
        replay=replay,
        channel=_channel_arg(channel, imp),
        z=z0,
        repropagate=repropagate,
        config=config,
        overwrite=overwrite,
        **params,
    )
    if repropagate and result.outlines is not None:
        final = {(o.frame, o.object_id): o for o in result.outlines if o.z == (z0 or 0)}
        # Per predicted frame, the objects whose ROIs are replaced: those the run predicted,
        # except where the user has an outline (never replaced).
        groups: dict[frozenset[int], set[int]] = {}
        for run in result.runs:
            for fr in run.frames:
                ids = frozenset(
                    ob.object_id
                    for ob in fr.objects
                    if (fr.frame, ob.object_id) not in final
                    or final[fr.frame, ob.object_id].origin == "model"
                )
                if ids:
                    groups.setdefault(ids, set()).add(fr.frame)
        for ids, frames in groups.items():
            outlines_to_roimanager(
                [o for (f, oid), o in final.items() if f in frames and oid in ids],
                rm,
                imp,
                replace_frames=frames,
                object_ids=ids,
                replace_z={0 if z0 is None else z0},
                identity=identity,
            )
    jc.IJ.showStatus(f"ReSCU-Net: fine-tuned model saved to {result.model_path}")
    return result


def train_in_imagej(
    training_set: str | os.PathLike[str],
    model_file: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    **params: Any,
) -> Any:
    """Train a model from a training-set folder, reporting progress in ImageJ's status bar and Log.

    A thin wrapper of :func:`rescunet_ij.api.train` (``params`` are its flat parameters:
    ``epochs``, ``input_size``, ``base_filters``, ``concatenation_level``, ``device`` ...) for
    the Fiji script *ReSCU-Net > Train Model*. Returns the :class:`TrainResult`.
    """
    from .. import api

    require_jvm()
    IJ = jc.IJ

    def on_epoch_end(rec: dict[str, Any]) -> None:
        val = rec.get("val_iou")
        IJ.log(
            f"ReSCU-Net epoch {rec.get('epoch')}/{rec.get('epochs')}: "
            f"loss {rec.get('train_loss', 0):.4f}"
            + (f", validation IoU {val:.3f}" if val is not None else "")
        )

    def on_batch_end(i: int, n: int) -> None:
        IJ.showProgress(i, n)

    IJ.showStatus("ReSCU-Net: training...")
    result = api.train(
        training_set,
        model_file,
        overwrite=overwrite,
        callbacks=api.TrainCallbacks(on_epoch_end=on_epoch_end, on_batch_end=on_batch_end),
        **params,
    )
    IJ.showProgress(1.0)
    IJ.showStatus(f"ReSCU-Net: model saved to {result.model_path}")
    return result
