"""The Python API of rescunet-ij: the CLI, the ImageJ bridge, the notebook and the demo call only this.

A typical session::

    from rescunet_ij import api
    movie = api.read_movie("movie.tif")                  # xarray (t, z, c, y, x)
    seeds = api.read_outlines("RoiSet.zip", movie)       # ImageJ ROIs -> Outlines (0-based frames)
    api.make_training_set(movie, seeds, "training/")     # PyJAMAS folder layout
    result = api.train("training/", "model.rescunet", epochs=50)
    run = api.propagate(movie, seeds, result.model, start_frame=0)
    api.write_outlines("RoiSet_out.zip", run.outlines, movie)

Frames, planes and channels are 0-based here and keep the movie's own numbers: a movie cut to
frames 10..19 (``movie.isel(t=slice(10, 20))``, which keeps xarray's ``t`` labels) is propagated
and reported as frames 10..19. The CLI and the ImageJ bridge convert from ImageJ's 1-based numbers
at their edge. Wrong arguments raise the package's own errors (:mod:`rescunet_ij.errors`) naming
the argument and what to pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
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
from .propagate.frames import describe_frames, frame_index, resolve_frame_range
from .types import FrameResult, Identity, ObjectStatus, Outline

if TYPE_CHECKING:  # heavy imports stay lazy: `import rescunet_ij.api` must be cheap
    import xarray as xr

    from .io.checkpoint import LoadedModel
    from .train.loop import TrainCallbacks, TrainResult

__all__ = [
    "LoadedModel",
    "PropagationRun",
    "TrainCallbacks",
    "TrainResult",
    "TrainingInterrupted",
    "as_movie",
    "check_outputs",
    "export_training_zip",
    "frame_range",
    "iter_propagate",
    "load_model",
    "make_training_set",
    "mean_iou",
    "outlines_from_labels",
    "output_group",
    "parse_size",
    "propagate",
    "propagate_config",
    "read_movie",
    "read_outlines",
    "synthetic_movie",
    "train",
    "train_config",
    "training_set_info",
    "write_labels",
    "write_movie",
    "write_outlines",
    "write_overlay",
    "write_report",
    "write_text",
]

Axis = Literal["t", "z"]

# Classes users meet in the API, imported on first use (PEP 562): they pull in torch, and
# `import rescunet_ij.api` must stay cheap for the CLI's --help and the Fiji scripts.
_LAZY = {
    "LoadedModel": ".io.checkpoint",
    "TrainCallbacks": ".train.loop",
    "TrainResult": ".train.loop",
    "TrainingInterrupted": ".train.loop",
}


def __getattr__(name: str) -> Any:
    """Import the classes of :data:`_LAZY` when first asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# =========================================================================== argument checks
def _index(value: Any, what: str) -> int | None:
    """A 0-based channel/plane/frame argument: ``None`` or a whole number."""
    return frame_index(value, what)


def _axis(axis: Any) -> Axis:
    if axis not in ("t", "z"):
        raise ConfigError(
            f"axis must be 't' (propagate through time) or 'z' (through the planes of a z-stack); "
            f"got {axis!r}"
        )
    return axis  # type: ignore[return-value]


def _identity(identity: Any) -> Identity:
    try:
        return Identity(identity)
    except ValueError:
        options = ", ".join(i.value for i in Identity)
        raise ConfigError(
            f"identity must be one of {options} (how ROIs are matched to objects); got {identity!r}"
        ) from None


def _offset(movie: Any, dim: str) -> int:
    """The movie's own index of its first frame/plane (its integer ``t``/``z`` labels), else 0."""
    if not hasattr(movie, "coords"):
        return 0
    from .io.movie import index_origin

    return index_origin(movie, dim)


def _movie(movie: Any) -> xr.DataArray:
    """Any movie the API accepts -> the normalised ``(t, z, c, y, x)`` form, frame numbers kept.

    Accepts a movie from :func:`read_movie`/:func:`as_movie`, any DataArray with known dim names
    (``tyx``, PyImageJ's ...), a 2-D/3-D numpy array (``yx``/``tyx``) or a TIFF path.
    """
    if movie is None:
        raise DataError(
            "movie is None; pass a movie from api.read_movie('movie.tif') or "
            "api.as_movie(array, dims='tyx')"
        )
    if isinstance(movie, (str, os.PathLike)):
        return read_movie(movie)
    from .io.movie import as_movie as _as

    if not hasattr(movie, "dims"):  # numpy arrays and nested lists
        if isinstance(movie, (dict, set)) or np.isscalar(movie):
            raise DataError(
                f"movie must be an image array or a movie from api.read_movie; got "
                f"{type(movie).__name__}"
            )
    return _as(movie)  # keeps the frame/plane numbers of a cut-out (its t/z labels)


def _extent(movie: xr.DataArray) -> tuple[int, int, int, int, int]:
    """``(t, z, c, y, x)`` sizes counted from the movie's frame 0.

    A cut-out counts the frames before it, so the positions written for it are the original
    movie's.
    """
    t = _offset(movie, "t") + int(movie.sizes["t"])
    z = _offset(movie, "z") + int(movie.sizes["z"])
    return t, z, int(movie.sizes["c"]), int(movie.sizes["y"]), int(movie.sizes["x"])


def _outlines(outlines: Any, movie: xr.DataArray) -> list[Outline]:
    """Outlines as given (a list, one outline, or a RoiSet path) -> a checked list."""
    if outlines is None:
        raise DataError(
            "outlines is None; pass the objects' outlines, e.g. "
            "api.read_outlines('RoiSet.zip', movie) or api.outlines_from_labels(labels)"
        )
    if isinstance(outlines, (str, os.PathLike)):
        return read_outlines(outlines, movie)
    if isinstance(outlines, Outline):
        return [outlines]
    try:
        items = list(outlines)
    except TypeError:
        raise DataError(
            f"outlines must be a list of Outline objects; got {type(outlines).__name__}"
        ) from None
    for i, o in enumerate(items):
        if not isinstance(o, Outline):
            raise DataError(
                f"outlines[{i}] is a {type(o).__name__}, not an Outline; build outlines with "
                "api.read_outlines or rescunet_ij.types.Outline(object_id, frame, polygon)"
            )
    return items


def _loaded(model: Any) -> LoadedModel:
    from .io.checkpoint import LoadedModel

    if isinstance(model, LoadedModel):
        return model
    if model is None:
        raise DataError(
            "model is None; pass a model file (.rescunet) or api.load_model(path), or the "
            ".model of api.train's result"
        )
    return load_model(model)


# =========================================================================== movies and outlines
def read_movie(path: str | Path) -> xr.DataArray:
    """Read a TIFF (ImageJ hyperstack, plain stack or OME-TIFF) as a ``(t, z, c, y, x)`` movie."""
    from .io.tiff import read_movie as _read

    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"read_movie needs a file path; got {type(path).__name__} {path!r}")
    return _read(path)


def as_movie(data: Any, dims: str | None = None, **attrs: Any) -> xr.DataArray:
    """Wrap a numpy array or DataArray (any of our, PyImageJ's or tifffile's dim names) as a movie."""
    from .io.movie import as_movie as _as

    return _as(data, dims=dims, **attrs)


def write_movie(path: str | Path, movie: Any, *, overwrite: bool = False) -> Path:
    """Write a movie as an ImageJ hyperstack TIFF (calibration kept), atomically."""
    from .io.tiff import write_movie as _write

    return _write(path, _movie(movie), overwrite=overwrite)


def read_outlines(
    path: str | Path, movie: Any, *, identity: Identity | str = Identity.AUTO
) -> list[Outline]:
    """Read an ImageJ ``RoiSet.zip`` (or ``.roi``) as outlines of ``movie``.

    Object identity follows ``identity`` (see :class:`rescunet_ij.types.Identity`).
    """
    from .io.rois import read_rois

    mv = _movie(movie)
    t, z, c, y, x = _extent(mv)
    return read_rois(
        path,
        n_frames=t,
        n_slices=z,
        n_channels=c,
        image_shape=(y, x),
        identity=_identity(identity).value,
    )


def write_outlines(
    path: str | Path, outlines: Iterable[Outline], movie: Any, *, overwrite: bool = False
) -> Path:
    """Write outlines as an ImageJ ``RoiSet.zip`` that opens in Fiji's ROI Manager."""
    from .io.rois import write_rois

    mv = _movie(movie)
    t, z, c, _, _ = _extent(mv)
    # hyperstack=None: positions the way ImageJ itself stores them for this movie's dimensions
    # (c/z/t on true hyperstacks, the stack index on a time-only or z-only stack).
    return write_rois(
        path, _outlines(outlines, mv), n_channels=c, n_slices=z, n_frames=t, overwrite=overwrite
    )


def write_labels(
    path: str | Path, outlines: Iterable[Outline], movie: Any, *, overwrite: bool = False
) -> Path:
    """Write a ``(t, y, x)`` uint16 label movie (pixel value = object id) as an ImageJ TIFF."""
    from .io.labels import write_label_movie

    mv = _movie(movie)
    t, _, _, y, x = _extent(mv)
    return write_label_movie(path, _outlines(outlines, mv), (t, y, x), overwrite=overwrite)


def outlines_from_labels(
    labels: Any, frames: Iterable[int] | None = None, *, name_prefix: str | None = None
) -> list[Outline]:
    """Outlines from a label movie (pixel value = object id, 0 = background).

    Parameters
    ----------
    labels
        ``(t, y, x)`` or ``(y, x)`` integer array, or the path of a label TIFF.
    frames
        Only these 0-based frames (default: all).
    name_prefix
        Names the outlines ``<prefix>-<id>`` (default: no name, shown as ``object-<id>``).

    Returns
    -------
    list of Outline
        One outline per object and frame (its largest part, holes filled), object id = label.
    """
    from .io.labels import label_movie_to_outlines

    if isinstance(labels, (str, os.PathLike)):
        labels = read_movie(labels).isel(z=0, c=0).values
    return label_movie_to_outlines(np.asarray(labels), frames, name_prefix=name_prefix)


def synthetic_movie(n_frames: int = 24, shape: tuple[int, int] = (128, 128), **kwargs: Any) -> Any:
    """Simulated nuclei that move and deform, with ground-truth labels (tests, demos, tutorials).

    Returns a :class:`rescunet_ij.sample_data.SyntheticMovie` with ``images`` and ``labels``.
    """
    from .sample_data import synthetic_movie as _synthetic

    return _synthetic(n_frames, shape, **kwargs)


def mean_iou(outlines: Iterable[Outline], labels: Any, frames: Iterable[int]) -> float:
    """Mean IoU of outlines against a ground-truth label movie over ``frames`` (a miss counts 0)."""
    from .geometry import iou, polygon_to_mask

    labels = np.asarray(labels)
    by_key = {(o.frame, o.object_id): o for o in outlines}
    empty = np.zeros(labels.shape[1:], bool)
    scores = []
    for t in frames:
        for oid in np.unique(labels[t]):
            if oid == 0:
                continue
            o = by_key.get((t, int(oid)))
            pred = empty if o is None else polygon_to_mask(o.polygon, labels.shape[1:])
            scores.append(iou(pred, labels[t] == oid))
    return float(np.mean(scores)) if scores else float("nan")


def write_overlay(
    path: str | Path,
    movie: Any,
    outlines: Iterable[Outline],
    *,
    channel: int | None = None,
    z: int | None = None,
    frames: Sequence[int] | None = None,
    overwrite: bool = True,
) -> Path:
    """A picture of the outlines over the movie: a contact sheet (``.png``) or an animation (``.gif``).

    Object colours are the ones the ROIs have in Fiji. ``frames`` picks the frames of a PNG
    (default: 8 evenly spaced).
    """
    from .io.atomic import check_overwrite
    from .report import overlay_gif, overlay_png

    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".gif"):
        raise ConfigError(f"an overlay is a .png or .gif file; got {Path(path).name}")
    check_overwrite(path, overwrite)
    mv = _movie(movie)
    planes = _planes(mv, _index(channel, "channel"), _default_z(mv, _index(z, "z"), "t"), "t")
    t0 = _offset(mv, "t")
    shifted = [_shift_frame(o, -t0) for o in _outlines(outlines, mv)]
    if suffix == ".gif":
        return overlay_gif(planes, shifted, path)
    return overlay_png(
        planes, shifted, path, frames=None if frames is None else [f - t0 for f in frames]
    )


def _shift_frame(o: Outline, by: int) -> Outline:
    if by == 0:
        return o
    return Outline(o.object_id, o.frame + by, o.polygon, z=o.z, c=o.c, name=o.name)


def check_outputs(paths: Iterable[str | Path | None], *, overwrite: bool = False) -> list[Path]:
    """Check before any work that every output can be written (``None`` entries are skipped).

    Raises :class:`~rescunet_ij.errors.OutputExistsError` for an existing file without
    ``overwrite``, :class:`~rescunet_ij.errors.WriteError` for a folder that cannot be written,
    and :class:`ConfigError` when one file is named twice.
    """
    from .io.atomic import check_writable

    out: list[Path] = []
    for p in paths:
        if p is None:
            continue
        path = Path(p)
        if any(path.resolve() == q.resolve() for q in out):
            raise ConfigError(f"{path} is named as two different outputs; give each its own file")
        out.append(check_writable(path, overwrite))
    return out


def write_text(path: str | Path, text: str, *, overwrite: bool = False) -> Path:
    """Write a small text file (a summary, a settings file) atomically, never half-written."""
    from .io.atomic import atomic_write_text

    return atomic_write_text(path, text, overwrite=overwrite)


def output_group() -> Any:
    """A ``with`` block whose outputs are written as one unit: all files, or none of them.

    Every writer of this API writes atomically; inside the block the final renames wait until the
    block ends without an error (:func:`rescunet_ij.io.atomic.atomic_group`).
    """
    from .io.atomic import atomic_group

    return atomic_group()


# =========================================================================== planes and masks
def _planes(movie: xr.DataArray, channel: int | None, z: int | None, axis: Axis) -> np.ndarray:
    from .io.movie import select_plane_series

    # select_plane_series counts planes from the cut-out's first one.
    local_z = None if z is None else z - _offset(movie, "z")
    if local_z is not None and local_z < 0:
        raise DataError(
            f"z-plane {z + 1} is not in this movie (its planes start at {z - local_z + 1})"
        )
    planes, _info = select_plane_series(movie, channel=channel, z=local_z, axis=axis)
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


def _none_relevant(outlines: list[Outline], axis: Axis, z: int | None, frame: int | None) -> str:
    """Why no outline lies in the chosen plane series, and what to pass instead."""
    if not outlines:
        return "there are no outlines; outline the objects on the first frame"
    if axis == "t" and z is not None:
        planes = describe_frames({o.z for o in outlines})
        return (
            f"no outlines on z-plane {z + 1}; the outlines are on z-plane(s) {planes}: pick one "
            f"of those with --z (Python: z=, 0-based)"
        )
    frames = describe_frames({o.frame for o in outlines})
    return (
        f"no outlines on frame {(frame or 0) + 1}, the time point of this z-stack; the outlines "
        f"are on frame(s) {frames}"
    )


def _masks_by_object(
    outlines: Iterable[Outline], shape: tuple[int, int], axis: Axis, first: int
) -> dict[int, dict[int, np.ndarray]]:
    """``{object: {plane index counted from the series' first plane: mask}}``."""
    from .geometry import polygon_to_mask

    masks: dict[int, dict[int, np.ndarray]] = {}
    for o in outlines:
        masks.setdefault(o.object_id, {})[_index_of(o, axis) - first] = polygon_to_mask(
            o.polygon, shape
        )
    return masks


def _default_z(movie: xr.DataArray, z: int | None, axis: Axis) -> int | None:
    if axis == "t" and z is None and int(movie.sizes["z"]) == 1:
        return _offset(movie, "z")
    return z


# =========================================================================== training sets
def make_training_set(
    movie: Any,
    outlines: Iterable[Outline],
    out_dir: str | Path,
    *,
    subimage_size: int | tuple[int, int] | None = None,
    channel: int | None = None,
    z: int | None = None,
    axis: Axis = "t",
    zip_path: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Build a training set (PyJAMAS folder layout) from a movie and its outlined objects.

    One sample per (object, frame whose previous frame also has that object's outline). The crops
    are cut around the object at the scale training and propagation share: ``subimage_size``
    native pixels (default 64, i.e. no rescaling at the default input size). With ``zip_path``
    the set is also packed as a zip for the Colab notebook. Both outputs are checked before any
    work and written completely or not at all.
    """
    from .data.samples import samples_from_masks
    from .io.training_set import (
        check_training_set_output,
        check_training_zip_output,
        write_training_set,
        write_training_zip,
    )

    axis = _axis(axis)
    check_training_set_output(out_dir, overwrite)
    if zip_path is not None:
        check_training_zip_output(zip_path, overwrite)
    mv = _movie(movie)
    outlines = _outlines(outlines, mv)
    channel = _index(channel, "channel")
    z = _default_z(mv, _index(z, "z"), axis)
    planes = _planes(mv, channel, z, axis)
    fixed = _offset(mv, "t") if axis == "z" else None
    relevant = _relevant(outlines, axis, z, fixed)
    if not relevant:
        raise DataError(
            "no outlines to build a training set from: " + _none_relevant(outlines, axis, z, fixed)
        )
    window = make_config(TrainConfig, subimage_size=parse_size(subimage_size) or 64).window_size
    masks = _masks_by_object(relevant, planes.shape[1:], axis, _offset(mv, axis))
    samples = samples_from_masks(planes, masks, window)
    if not samples:
        raise DataError(
            "no training samples: each sample needs the same object outlined in two consecutive "
            f"frames ({len(masks)} object(s) found, but never in frame t and t-1); outline the "
            "objects in more frames"
        )
    meta = {
        "window_size": list(window),
        "source": mv.attrs.get("source"),
        "pixel_size": mv.attrs.get("pixel_size"),
        "unit": mv.attrs.get("unit"),
        "axis": axis,
        "channel": channel,
        "z": z,
    }
    if zip_path is None:
        return write_training_set(samples, out_dir, meta=meta, overwrite=overwrite)
    with output_group():  # the zip's rename waits for the folder: both or neither
        write_training_zip(samples, zip_path, overwrite=overwrite, meta=meta)
        return write_training_set(samples, out_dir, meta=meta, overwrite=overwrite)


def export_training_zip(
    training_dir: str | Path, zip_path: str | Path, *, overwrite: bool = False
) -> Path:
    """Pack a training-set folder into ``testtrain.zip`` (the layout the Colab notebook expects)."""
    from .io.training_set import write_training_zip

    return write_training_zip(training_dir, zip_path, overwrite=overwrite)


def training_set_info(path: str | Path) -> dict[str, Any]:
    """What a training set (folder or zip) holds: ``samples`` (count), ``window_size``, ``meta``.

    Reads and checks every sample, so a broken set fails here with a message naming the sample.
    """
    from .io.training_set import read_training_set

    samples, meta = read_training_set(path)
    window = meta.get("window_size")
    return {
        "samples": len(samples),
        "window_size": tuple(window) if window else None,
        "channels": samples[0].channels if samples else None,
        "meta": meta,
    }


# =========================================================================== training
def train_config(**params: Any) -> TrainConfig:
    """Build a validated :class:`TrainConfig` from flat parameters (the seed's dialog names).

    Model parameters (``input_size``, ``concatenation_level``, ``base_filters``) and the
    normalisation mode (``normalization``) may be given flat; sizes may be text (``"96x64"``);
    ``None`` values are ignored.
    """
    params = {k: v for k, v in params.items() if v is not None}
    for key in ("input_size", "subimage_size"):
        if key in params:
            params[key] = parse_size(params[key])
    model_keys = set(ModelConfig.model_fields)
    model = {k: params.pop(k) for k in list(params) if k in model_keys}
    if isinstance(params.get("normalization"), str):
        params["normalization"] = make_config(NormalizationConfig, mode=params["normalization"])
    return make_config(TrainConfig, model=make_config(ModelConfig, **model), **params)


def propagate_config(**params: Any) -> PropagateConfig:
    """Build a validated :class:`PropagateConfig` from flat parameters (``None`` values ignored)."""
    return make_config(PropagateConfig, **params)


def train(
    training_data: str | Path,
    output: str | Path | None,
    *,
    config: TrainConfig | None = None,
    init_from: str | Path | LoadedModel | None = None,
    callbacks: TrainCallbacks | None = None,
    overwrite: bool = False,
    **params: Any,
) -> TrainResult:
    """Train a ReSCU-Net on a training-set folder (or ``testtrain.zip``) and save it to ``output``.

    Parameters may come as a :class:`TrainConfig` or as flat keyword arguments (see
    :func:`train_config`). The window (``subimage_size``) defaults to the fine-tuned model's,
    then to the one the training set was made with. With ``init_from`` the model starts from an
    existing model (fine-tuning) and keeps its architecture unless one is given explicitly.
    ``output`` (with its ``.history.csv`` and ``.training.png``) is checked before any work.
    """
    from .io.training_set import read_training_set
    from .io.atomic import check_writable
    from .train.loop import config_for_finetune, train_model

    if output is not None:
        output = check_writable(output, overwrite)
    if config is not None and params:
        raise ConfigError("pass either config= or individual parameters, not both")
    if config is not None and not isinstance(config, TrainConfig):
        raise ConfigError(
            f"config must be a TrainConfig (api.train_config(...)); got {type(config).__name__}"
        )
    explicit_arch = config is not None or any(
        params.get(k) is not None for k in ModelConfig.model_fields
    )
    config = config if config is not None else train_config(**params)
    samples, meta = read_training_set(training_data)
    loaded = None
    if init_from is not None:
        loaded = _loaded(init_from)
        if not explicit_arch:
            # Fine-tuning keeps the original architecture, normalisation and window; an architecture
            # given explicitly is checked against the model's by train_model (clear ConfigError).
            config = config_for_finetune(config, loaded)
    if config.subimage_size is None and meta.get("window_size"):
        # Cut windows at the scale the training set was made with.
        config = config.model_copy(update={"subimage_size": tuple(meta["window_size"])})
    return train_model(
        samples, config, output=output, init_from=loaded, callbacks=callbacks, overwrite=overwrite
    )


def load_model(path: str | Path, device: str = "cpu") -> LoadedModel:
    """Open a model file safely (safetensors + JSON; never runs code)."""
    from .errors import ModelFileError
    from .io.checkpoint import load_model as _load

    if not isinstance(path, (str, os.PathLike)):
        raise ModelFileError(
            f"load_model needs the path of a model file (a str or pathlib.Path); got "
            f"{type(path).__name__} {path!r}"
        )
    return _load(path, device=device)


# =========================================================================== propagation
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


@dataclass
class _Plan:
    """A checked propagation request, before any model is loaded or pixel is converted."""

    planes: np.ndarray
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
    planes = _planes(mv, channel, z, axis)
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
    from .propagate import Propagator

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
    return _run(plan, model, config)


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
    ``on_start(start, end)`` is called once the frames are known (before the model works) and
    ``on_frame`` with each frame's result: progress for a caller's progress bar.
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
    if on_start is not None:
        on_start(plan.start, plan.end)
    frames: list[FrameResult] = []
    predicted: list[Outline] = []
    lost: dict[int, int] = {}
    for fr, fo in _run(plan, model, config):
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
    from .io.tables import write_propagation_table

    if not isinstance(run, PropagationRun):
        raise DataError(f"write_report needs a PropagationRun; got {type(run).__name__}")
    return write_propagation_table(path, run.frames, overwrite=overwrite)
