"""Training sets, training and model files (the API's training half)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import (
    ModelConfig,
    NormalizationConfig,
    PropagateConfig,
    TrainConfig,
    make_config,
    parse_size,
)
from ..errors import ConfigError, DataError
from ..types import Outline
from ._common import (
    Axis,
    _axis,
    _default_z,
    _index,
    _loaded,
    _masks_by_object,
    _movie,
    _none_relevant,
    _offset,
    _outlines,
    _plane_source,
    _relevant,
)
from ._movies import output_group

if TYPE_CHECKING:
    from ..data.settings import SizeChoice
    from ..io.checkpoint import LoadedModel
    from ..train.loop import TrainCallbacks, TrainResult


def make_training_set(
    movie: Any,
    outlines: Iterable[Outline],
    out_dir: str | Path,
    *,
    subimage_size: int | tuple[int, int] | None = None,
    motion: str = "auto",
    channel: int | None = None,
    z: int | None = None,
    axis: Axis = "t",
    zip_path: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Build a training set (PyJAMAS folder layout) from a movie and its outlined objects.

    One sample per (object, frame whose previous frame also has that object's outline). The crops
    are cut around the object at the scale training and propagation share: ``subimage_size``
    native pixels, by default chosen from the outlines (object sizes and the motion left after
    compensation; see :mod:`rescunet_ij.data.settings`), together with the network input size
    that ``train`` then uses. The previous outline of each sample (the prompt) is moved by the
    motion propagation will estimate (``motion``: ``auto``, ``off``, ``global`` or ``object``;
    propagate with the same mode). The choice, its reason and statistics and the motion mode
    are stored in the set's metadata (:func:`training_set_sizes` reads them back). With
    ``zip_path`` the set is also packed as a zip for the Colab notebook. Both outputs are checked
    before any work and written completely or not at all.

    Warns when the sizes lose detail (a large downscale) or the windows cannot hold the
    observed motion.
    """
    from ..data.motion import check_motion_mode
    from ..data.samples import samples_from_masks
    from ..data.settings import choose_sizes
    from ..io.training_set import (
        check_training_set_output,
        check_training_zip_output,
        write_training_set,
        write_training_zip,
    )

    axis = _axis(axis)
    motion = check_motion_mode(motion)
    given = parse_size(subimage_size)
    if given is not None:
        given = make_config(TrainConfig, subimage_size=given).subimage_size
    check_training_set_output(out_dir, overwrite)
    if zip_path is not None:
        check_training_zip_output(zip_path, overwrite)
    mv = _movie(movie)
    outlines = _outlines(outlines, mv)
    channel = _index(channel, "channel")
    z = _default_z(mv, _index(z, "z"), axis)
    planes = _plane_source(mv, channel, z, axis)  # plane by plane for a lazy movie
    fixed = _offset(mv, "t") if axis == "z" else None
    relevant = _relevant(outlines, axis, z, fixed)
    if not relevant:
        raise DataError(
            "no outlines to build a training set from: " + _none_relevant(outlines, axis, z, fixed)
        )
    masks = _masks_by_object(relevant, planes.shape[1:], axis, _offset(mv, axis))
    choice, shifts = choose_sizes(planes, masks, motion, subimage_size=given)
    samples = samples_from_masks(planes, masks, choice.subimage_size, shifts=shifts)
    if not samples:
        raise DataError(
            "no training samples: each sample needs the same object outlined in two consecutive "
            f"frames ({len(masks)} object(s) found, but never in frame t and t-1); outline the "
            "objects in more frames"
        )
    for note in choice.warnings:
        warnings.warn(note, stacklevel=2)
    meta = {
        "window_size": list(choice.subimage_size),
        "motion": motion,
        "sizes": choice.to_meta(),
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
    from ..io.training_set import write_training_zip

    return write_training_zip(training_dir, zip_path, overwrite=overwrite)


def training_set_info(path: str | Path) -> dict[str, Any]:
    """What a training set (folder or zip) holds: ``samples`` (count), ``window_size``, ``meta``.

    ``sizes`` is the window/input choice stored by :func:`make_training_set` (a
    :class:`~rescunet_ij.data.settings.SizeChoice`), ``None`` for older or PyJAMAS sets.

    Reads and checks every sample, so a broken set fails here with a message naming the sample.
    """
    from ..io.training_set import read_training_set

    samples, meta = read_training_set(path)
    window = meta.get("window_size")
    from ..data.settings import SizeChoice

    return {
        "samples": len(samples),
        "window_size": tuple(window) if window else None,
        "channels": samples[0].channels if samples else None,
        "sizes": SizeChoice.from_meta(meta.get("sizes")),
        "meta": meta,
    }


def training_set_sizes(path: str | Path) -> SizeChoice | None:
    """The window and input sizes a training set was made with, and why (no samples are read).

    Returns the :class:`~rescunet_ij.data.settings.SizeChoice` stored by
    :func:`make_training_set` (``subimage_size``, ``input_size``, ``reason``, ``warnings``,
    ``statistics``), or ``None`` for sets made without one (older rescunet-ij, PyJAMAS).
    """
    from ..data.settings import SizeChoice
    from ..io.training_set import read_training_set_meta

    return SizeChoice.from_meta(read_training_set_meta(path).get("sizes"))


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
    then to the one the training set was made with. When neither ``input_size`` nor
    ``subimage_size`` is given (and no ``config`` nor ``init_from``), the network input is the
    one chosen with the training set's window (:func:`training_set_sizes`; sets without a choice
    keep the default). The set's motion mode is recorded with the model
    (``train_config.prompt_motion``). With ``init_from`` the model starts from an existing model
    (fine-tuning) and keeps its architecture unless one is given explicitly. ``output`` (with its
    ``.history.csv`` and ``.training.png``) is checked before any work. Warns when the network
    sees the windows more than 3-fold reduced.
    """
    from ..data.motion import MOTION_MODES
    from ..data.settings import scale_warning
    from ..io.atomic import check_writable
    from ..io.training_set import read_training_set
    from ..train.loop import config_for_finetune, train_model

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
    config_given = config
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
    if config_given is None and loaded is None and not any(params.get(k) for k in _SIZES):
        config = _input_from_set(config, meta)
    if config.prompt_motion is None and meta.get("motion") in MOTION_MODES:
        config = config.model_copy(update={"prompt_motion": meta["motion"]})
    note = scale_warning(config.window_size, config.model.input_size)
    if note:
        warnings.warn(note, stacklevel=2)
    # The set's path goes with the model, so a later api.finetune can replay it (not forget).
    where = Path(training_data).resolve()
    return train_model(
        samples,
        config,
        output=output,
        init_from=loaded,
        callbacks=callbacks,
        overwrite=overwrite,
        metadata={"training_data": str(where)},
    )


_SIZES = ("input_size", "subimage_size")


def _input_from_set(config: TrainConfig, meta: dict[str, Any]) -> TrainConfig:
    """``config`` with the network input chosen with the training set's window, if it has one."""
    from ..data.settings import SizeChoice

    choice = SizeChoice.from_meta(meta.get("sizes"))
    if choice is None or choice.subimage_size != config.window_size:
        return config  # an older set, or a window that is not the set's
    model = make_config(
        ModelConfig, **{**config.model.model_dump(), "input_size": choice.input_size}
    )
    return config.model_copy(update={"model": model})


def load_model(path: str | Path, device: str = "cpu") -> LoadedModel:
    """Open a model file safely (safetensors + JSON; never runs code)."""
    from ..errors import ModelFileError
    from ..io.checkpoint import load_model as _load

    if not isinstance(path, (str, os.PathLike)):
        raise ModelFileError(
            f"load_model needs the path of a model file (a str or pathlib.Path); got "
            f"{type(path).__name__} {path!r}"
        )
    return _load(path, device=device)
