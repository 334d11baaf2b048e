"""Training sets, training and model files (the API's training half)."""

from __future__ import annotations

import os
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
    _planes,
    _relevant,
)
from ._movies import output_group

if TYPE_CHECKING:
    from ..io.checkpoint import LoadedModel
    from ..train.loop import TrainCallbacks, TrainResult


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
    from ..data.samples import samples_from_masks
    from ..io.training_set import (
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
    from ..io.training_set import write_training_zip

    return write_training_zip(training_dir, zip_path, overwrite=overwrite)


def training_set_info(path: str | Path) -> dict[str, Any]:
    """What a training set (folder or zip) holds: ``samples`` (count), ``window_size``, ``meta``.

    Reads and checks every sample, so a broken set fails here with a message naming the sample.
    """
    from ..io.training_set import read_training_set

    samples, meta = read_training_set(path)
    window = meta.get("window_size")
    return {
        "samples": len(samples),
        "window_size": tuple(window) if window else None,
        "channels": samples[0].channels if samples else None,
        "meta": meta,
    }


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
    from ..errors import ModelFileError
    from ..io.checkpoint import load_model as _load

    if not isinstance(path, (str, os.PathLike)):
        raise ModelFileError(
            f"load_model needs the path of a model file (a str or pathlib.Path); got "
            f"{type(path).__name__} {path!r}"
        )
    return _load(path, device=device)
