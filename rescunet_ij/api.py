"""The Python API of rescunet-ij: the CLI, the ImageJ bridge, the notebook and Fiji scripts call this.

A typical session::

    from rescunet_ij import api
    movie = api.read_movie("movie.tif")                  # xarray (t, z, c, y, x)
    seeds = api.read_outlines("RoiSet.zip", movie)       # ImageJ ROIs -> Outlines (0-based frames)
    api.make_training_set(movie, seeds, "training/")     # PyJAMAS folder layout
    result = api.train("training/", "model.rescunet", epochs=50)
    run = api.propagate(movie, seeds, result.model, start_frame=0)
    api.write_outlines("RoiSet_out.zip", run.outlines, movie)

Frames, planes and channels are 0-based here; the CLI and the ImageJ bridge convert from ImageJ's
1-based numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .config import (
    ModelConfig,
    NormalizationConfig,
    PropagateConfig,
    TrainConfig,
    make_config,
    parse_size,
)
from .errors import ConfigError, DataError, StateError
from .types import FrameResult, Identity, ObjectStatus, Outline

if TYPE_CHECKING:  # heavy imports stay lazy: `import rescunet_ij.api` must be cheap
    import xarray as xr

    from .io.checkpoint import LoadedModel
    from .train.loop import TrainCallbacks, TrainResult

__all__ = [
    "read_movie",
    "as_movie",
    "read_outlines",
    "write_outlines",
    "write_labels",
    "make_training_set",
    "export_training_zip",
    "train",
    "load_model",
    "propagate",
    "iter_propagate",
    "PropagationRun",
    "train_config",
    "parse_size",
]

Axis = Literal["t", "z"]


# --------------------------------------------------------------------------- movies and outlines
def read_movie(path: str | Path) -> "xr.DataArray":
    """Read a TIFF (ImageJ hyperstack, plain stack or OME-TIFF) as a ``(t, z, c, y, x)`` movie."""
    from .io.movie import read_movie as _read

    return _read(path)


def as_movie(data: Any, dims: str | None = None, **attrs: Any) -> "xr.DataArray":
    """Wrap a numpy array or DataArray (any of our, PyImageJ's or tifffile's dim names) as a movie."""
    from .io.movie import as_movie as _as

    return _as(data, dims=dims, **attrs)


def _movie_dims(movie: "xr.DataArray") -> tuple[int, int, int, int, int]:
    return tuple(int(movie.sizes[d]) for d in ("t", "z", "c", "y", "x"))  # type: ignore[return-value]


def read_outlines(
    path: str | Path, movie: "xr.DataArray", *, identity: Identity | str = Identity.AUTO
) -> list[Outline]:
    """Read an ImageJ ``RoiSet.zip`` (or ``.roi``) as outlines of ``movie``.

    Object identity follows ``identity`` (see :class:`rescunet_ij.types.Identity`).
    """
    from .io.rois import read_rois

    t, z, c, y, x = _movie_dims(movie)
    return read_rois(
        path,
        n_frames=t,
        n_slices=z,
        n_channels=c,
        image_shape=(y, x),
        identity=Identity(identity).value,
    )


def write_outlines(
    path: str | Path, outlines: Iterable[Outline], movie: "xr.DataArray", *, overwrite: bool = False
) -> Path:
    """Write outlines as an ImageJ ``RoiSet.zip`` that opens in Fiji's ROI Manager."""
    from .io.rois import write_rois

    t, z, c, _, _ = _movie_dims(movie)
    # hyperstack=None: positions the way ImageJ itself stores them for this movie's dimensions
    # (c/z/t on true hyperstacks, the stack index on a time-only or z-only stack).
    return write_rois(
        path, list(outlines), n_channels=c, n_slices=z, n_frames=t, overwrite=overwrite
    )


def write_labels(
    path: str | Path, outlines: Iterable[Outline], movie: "xr.DataArray", *, overwrite: bool = False
) -> Path:
    """Write a ``(t, y, x)`` uint16 label movie (pixel value = object id) as an ImageJ TIFF."""
    from .io.labels import write_label_movie

    t, _, _, y, x = _movie_dims(movie)
    return write_label_movie(path, list(outlines), (t, y, x), overwrite=overwrite)


# --------------------------------------------------------------------------- planes and masks
def _planes(movie: "xr.DataArray", channel: int | None, z: int | None, axis: Axis) -> np.ndarray:
    from .io.movie import select_plane_series

    planes, _info = select_plane_series(movie, channel=channel, z=z, axis=axis)
    return planes


def _index_of(outline: Outline, axis: Axis) -> int:
    """The position of an outline along the propagation axis."""
    return outline.frame if axis == "t" else outline.z


def _relevant(
    outlines: Iterable[Outline], axis: Axis, z: int | None, frame: int | None
) -> list[Outline]:
    """Outlines that lie in the plane series being processed (the chosen z for t, the frame for z)."""
    out = []
    for o in outlines:
        if axis == "t" and z is not None and o.z != z:
            continue
        if axis == "z" and frame is not None and o.frame != frame:
            continue
        out.append(o)
    return out


def _masks_by_object(
    outlines: Iterable[Outline], shape: tuple[int, int], axis: Axis
) -> dict[int, dict[int, np.ndarray]]:
    from .geometry import polygon_to_mask

    masks: dict[int, dict[int, np.ndarray]] = {}
    for o in outlines:
        masks.setdefault(o.object_id, {})[_index_of(o, axis)] = polygon_to_mask(o.polygon, shape)
    return masks


def _default_z(movie: "xr.DataArray", z: int | None, axis: Axis) -> int | None:
    if axis == "t" and z is None and int(movie.sizes["z"]) == 1:
        return 0
    return z


# --------------------------------------------------------------------------- training sets
def make_training_set(
    movie: "xr.DataArray",
    outlines: Iterable[Outline],
    out_dir: str | Path,
    *,
    subimage_size: int | tuple[int, int] | None = None,
    channel: int | None = None,
    z: int | None = None,
    axis: Axis = "t",
    overwrite: bool = False,
) -> Path:
    """Build a training set (PyJAMAS folder layout) from a movie and its outlined objects.

    One sample per (object, frame whose previous frame also has that object's outline). The crops
    are cut around the object at the scale training and propagation share: ``subimage_size``
    native pixels (default 64, i.e. no rescaling at the default input size).
    """
    from .data.training_set import samples_from_masks, write_training_set

    z = _default_z(movie, z, axis)
    planes = _planes(movie, channel, z, axis)
    outlines = _relevant(outlines, axis, z, 0 if axis == "z" else None)
    if not outlines:
        raise DataError(
            "no outlines to build a training set from; outline objects in at least two consecutive frames"
        )
    window = make_config(TrainConfig, subimage_size=subimage_size or 64).window_size
    masks = _masks_by_object(outlines, planes.shape[1:], axis)
    samples = samples_from_masks(planes, masks, window)
    if not samples:
        raise DataError(
            "no training samples: each sample needs the same object outlined in two consecutive frames "
            f"({len(masks)} object(s) found, but never in frame t and t-1); outline the objects in more frames"
        )
    meta = {
        "window_size": list(window),
        "source": movie.attrs.get("source"),
        "pixel_size": movie.attrs.get("pixel_size"),
        "unit": movie.attrs.get("unit"),
        "axis": axis,
        "channel": channel,
        "z": z,
    }
    return write_training_set(samples, out_dir, meta=meta, overwrite=overwrite)


def export_training_zip(
    training_dir: str | Path, zip_path: str | Path, *, overwrite: bool = False
) -> Path:
    """Pack a training-set folder into ``testtrain.zip`` (the layout the Colab notebook expects)."""
    from .data.training_set import write_training_zip

    return write_training_zip(training_dir, zip_path, overwrite=overwrite)


# --------------------------------------------------------------------------- training
def train_config(**params: Any) -> TrainConfig:
    """Build a validated :class:`TrainConfig` from flat parameters (the seed's dialog names).

    Model parameters (``input_size``, ``concatenation_level``, ``base_filters``) and the
    normalisation mode (``normalization``) may be given flat; ``None`` values are ignored.
    """
    params = {k: v for k, v in params.items() if v is not None}
    model_keys = set(ModelConfig.model_fields)
    model = {k: params.pop(k) for k in list(params) if k in model_keys}
    if isinstance(params.get("normalization"), str):
        params["normalization"] = NormalizationConfig(mode=params["normalization"])  # type: ignore[arg-type]
    try:
        model_cfg = make_config(ModelConfig, **model)
    except ConfigError as exc:
        raise ConfigError(str(exc)) from None
    return make_config(TrainConfig, model=model_cfg, **params)


def train(
    training_data: str | Path,
    output: str | Path | None,
    *,
    config: TrainConfig | None = None,
    init_from: "str | Path | LoadedModel | None" = None,
    callbacks: "TrainCallbacks | None" = None,
    overwrite: bool = False,
    **params: Any,
) -> "TrainResult":
    """Train a ReSCU-Net on a training-set folder (or ``testtrain.zip``) and save it to ``output``.

    Parameters may come as a :class:`TrainConfig` or as flat keyword arguments (see
    :func:`train_config`). ``subimage_size`` defaults to the one the training set was made with.
    With ``init_from`` the model starts from an existing model (fine-tuning) and keeps its
    architecture unless one is given explicitly.
    """
    from .data.training_set import read_training_set
    from .io.checkpoint import LoadedModel
    from .train.loop import config_for_finetune, train_model

    if output is not None:
        output = Path(output)
        if output.exists() and not overwrite:
            from .errors import OutputExistsError

            raise OutputExistsError(
                f"model file {output} already exists; choose another name or pass --overwrite"
            )
    samples, meta = read_training_set(training_data)
    explicit_arch = config is not None or any(
        params.get(k) is not None for k in ModelConfig.model_fields
    )
    if config is None:
        if "subimage_size" not in params and meta.get("window_size"):
            params["subimage_size"] = tuple(meta["window_size"])
        config = train_config(**params)
    elif params:
        raise ConfigError("pass either config= or individual parameters, not both")
    loaded = None
    if init_from is not None:
        loaded = init_from if isinstance(init_from, LoadedModel) else load_model(init_from)
        if not explicit_arch:
            # Fine-tuning keeps the original architecture, normalisation and window; an architecture
            # given explicitly is checked against the model's by train_model (clear ConfigError).
            config = config_for_finetune(config, loaded)
    return train_model(
        samples, config, output=output, init_from=loaded, callbacks=callbacks, overwrite=overwrite
    )


def load_model(path: str | Path, device: str = "cpu") -> "LoadedModel":
    """Open a model file safely (safetensors + JSON; never runs code)."""
    from .io.checkpoint import load_model as _load

    return _load(path, device=device)


# --------------------------------------------------------------------------- propagation
@dataclass
class PropagationRun:
    """The outcome of :func:`propagate`.

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
                    out.append((fr.frame, ob.object_id, "lost"))
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


def _as_loaded(model: "str | Path | LoadedModel", device: str) -> "LoadedModel":
    from .io.checkpoint import LoadedModel

    return model if isinstance(model, LoadedModel) else load_model(model, device="cpu")


def iter_propagate(
    movie: "xr.DataArray",
    outlines: Iterable[Outline],
    model: "str | Path | LoadedModel",
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

    ``start_frame`` (0-based) holds the seed outlines; default: the first frame with outlines
    (the last one when ``reverse``). ``end_frame`` is inclusive; default: the end of the movie
    (frame 0 when ``reverse``). ``next_only`` predicts only the frame after ``start_frame``.
    Along ``axis="z"`` the planes of a z-stack play the role of frames.
    """
    from .propagate import Propagator

    config = config or PropagateConfig()
    loaded = _as_loaded(model, config.device)
    z = _default_z(movie, z, axis)
    planes = _planes(movie, channel, z, axis)
    n = planes.shape[0]
    fixed_frame = 0 if axis == "z" else None
    outlines = _relevant(list(outlines), axis, z, fixed_frame)
    if not outlines:
        raise DataError(
            "no outlines to propagate: outline the objects on the first frame (or pass --first-frame)"
        )
    present = sorted({_index_of(o, axis) for o in outlines})
    if start_frame is None:
        start_frame = present[-1] if reverse else present[0]
    if not 0 <= start_frame < n:
        raise DataError(f"start frame {start_frame + 1} is outside the movie (1..{n})")
    seeds = [o for o in outlines if _index_of(o, axis) == start_frame]
    if object_ids is not None:
        wanted = set(object_ids)
        seeds = [o for o in seeds if o.object_id in wanted]
    if not seeds:
        raise DataError(
            f"no outlines on frame {start_frame + 1} to start from (outlines exist on frames "
            f"{', '.join(str(p + 1) for p in present[:10])}{'...' if len(present) > 10 else ''}); "
            "pass that frame as the first frame"
        )
    if next_only:
        end_frame = start_frame - 1 if reverse else start_frame + 1
    if end_frame is None:
        end_frame = 0 if reverse else n - 1
    if not 0 <= end_frame < n:
        raise DataError(f"last frame {end_frame + 1} is outside the movie (1..{n})")
    if (end_frame < start_frame and not reverse) or (end_frame > start_frame and reverse):
        raise DataError(
            f"last frame {end_frame + 1} is {'before' if not reverse else 'after'} the first frame "
            f"{start_frame + 1}; use --reverse to propagate backwards"
        )
    prop = Propagator(loaded, config)
    state = prop.init_state(planes)
    for o in seeds:
        prop.add_outline(state, _to_engine(o, axis))
    for fr in prop.propagate(state, start_frame, end_frame, reverse=reverse):
        for ob in fr.objects:  # engine coordinates -> the movie's (t or z, channel)
            if ob.outline is not None:
                ob.outline = _from_engine(
                    ob.outline, axis, z, seeds_fixed=fixed_frame, channel=channel
                )
        yield fr, fr.outlines


def _to_engine(o: Outline, axis: Axis) -> Outline:
    if axis == "t":
        return o
    return Outline(o.object_id, o.z, o.polygon, z=0, c=o.c, name=o.name)


def _from_engine(
    o: Outline, axis: Axis, z: int | None, *, seeds_fixed: int | None, channel: int | None
) -> Outline:
    c = channel if channel is not None else o.c
    if axis == "t":
        return Outline(
            o.object_id,
            o.frame,
            o.polygon,
            z=z or 0,
            c=c,
            name=o.name,
            confidence=o.confidence,
            prompt_iou=o.prompt_iou,
        )
    return Outline(
        o.object_id,
        seeds_fixed or 0,
        o.polygon,
        z=o.frame,
        c=c,
        name=o.name,
        confidence=o.confidence,
        prompt_iou=o.prompt_iou,
    )


def propagate(
    movie: "xr.DataArray",
    outlines: Iterable[Outline],
    model: "str | Path | LoadedModel",
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
    on_frame: Callable[[FrameResult], None] | None = None,
) -> PropagationRun:
    """Propagate the outlines on ``start_frame`` through the movie (see :func:`iter_propagate`).

    The result keeps every input outline of frames that were not recomputed, so re-running from a
    corrected frame ``k`` replaces frames after ``k`` only (before ``k`` when ``reverse``).
    """
    outlines = list(outlines)
    frames: list[FrameResult] = []
    predicted: list[Outline] = []
    lost: dict[int, int] = {}
    it = iter_propagate(
        movie,
        outlines,
        model,
        start_frame=start_frame,
        end_frame=end_frame,
        next_only=next_only,
        reverse=reverse,
        channel=channel,
        z=z,
        axis=axis,
        config=config,
        object_ids=object_ids,
    )
    for fr, fo in it:
        frames.append(fr)
        predicted.extend(fo)
        for ob in fr.objects:
            if ob.status is ObjectStatus.LOST:
                lost.setdefault(ob.object_id, fr.frame)
        if on_frame is not None:
            on_frame(fr)
    if not frames:
        raise StateError("nothing was propagated")
    # Every frame visited is recomputed for every seeded object: an object lost on the way loses its
    # stale outlines from an earlier run too, so the result never mixes two runs.
    recomputed = {fr.frame for fr in frames}
    first_seen = frames[0].frame - (1 if not reverse else -1)
    propagated_ids = {o.object_id for o in outlines if _index_of(o, axis) == first_seen}
    if object_ids is not None:
        propagated_ids &= set(object_ids)
    zz = _default_z(movie, z, axis)

    def replaced(o: Outline) -> bool:
        same_plane = axis != "t" or zz is None or o.z == zz
        return same_plane and _index_of(o, axis) in recomputed and o.object_id in propagated_ids

    kept = [o for o in outlines if not replaced(o)]
    names = {o.object_id: o.name for o in outlines if o.name}
    for o in predicted:
        if o.name is None and o.object_id in names:
            o.name = names[o.object_id]
    merged = sorted(kept + predicted, key=lambda o: (o.frame, o.z, o.object_id))
    return PropagationRun(
        outlines=merged,
        predicted=predicted,
        frames=frames,
        lost=lost,
        start_frame=first_seen,
        end_frame=frames[-1].frame,
    )
