"""PyJAMAS interoperability: open a PyJAMAS ReSCU-Net (``.cfr``) safely, keep it as a model."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import ModelFileError

if TYPE_CHECKING:
    from ..io.checkpoint import LoadedModel


def import_pyjamas(
    cfr: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
) -> LoadedModel:
    """Open a PyJAMAS ReSCU-Net ``.cfr`` without running code, and save it as a rescunet-ij model.

    The ``.cfr`` (a gzip-compressed pickle) is read by a restricted unpickler that builds only
    numpy arrays, dtypes, scalars and plain containers; anything else in it is refused and
    nothing is executed (:mod:`rescunet_ij.io.pyjamas_cfr`). Its weights are mapped onto the same
    ReSCU-Net (base width and concatenation level read from the weights; a file without
    ``concatenation_level`` is tried at levels 0-4 until the weights fit, as PyJAMAS does).
    PyJAMAS's preprocessing is kept: images are divided by the file's ``scaler``
    (``normalization.mode = "max"``, ``max_value = scaler``), windows are the network input
    size (PyJAMAS predicts at native scale), and its erosion width is the model's. The source
    file, its SHA-256 and PyJAMAS's settings are recorded in the model's metadata
    (``extra["imported_from"]``).

    Parameters
    ----------
    cfr
        The PyJAMAS model file (e.g. ``ckpt_final.cfr``).
    output
        The rescunet-ij model file to write (``.rescunet``); ``None`` = only return the model.
    overwrite
        Replace an existing ``output``.

    Returns
    -------
    LoadedModel
        The imported model (in eval mode, on the CPU; ``path`` is ``output``).

    Raises
    ------
    ModelFileError
        If the file is not a PyJAMAS ReSCU-Net ``.cfr``, is damaged, asks its unpickler for
        anything but numpy arrays and plain data (possibly malicious), or its settings are
        outside what rescunet-ij supports.
    OutputExistsError
        If ``output`` exists and ``overwrite`` is false (checked before anything is read).
    """
    import torch
    from pydantic import ValidationError

    from ..config import ModelConfig, NormalizationConfig, TrainConfig, validation_problems
    from ..io.checkpoint import model_from_network, save_model
    from ..io.pyjamas_cfr import load_cfr
    from ..model import build_model
    from ._movies import check_outputs

    if output is not None:
        check_outputs([output], overwrite=overwrite)
    pm = load_cfr(cfr)
    try:
        model_config = ModelConfig(
            input_size=pm.input_size,
            concatenation_level=pm.concatenation_level,
            base_filters=pm.base_filters,
            in_channels=pm.in_channels,
            dropout=True,
        )
        normalization = NormalizationConfig(mode="max", max_value=pm.scaler)
    except ValidationError as exc:
        raise ModelFileError(
            f"cannot import PyJAMAS model {cfr}: its settings are outside what rescunet-ij "
            "supports: " + "; ".join(validation_problems(exc))
        ) from None
    train_config = _train_config(pm, model_config, normalization, TrainConfig)
    with torch.device("meta"):
        network = build_model(model_config)
    tensors = {k: torch.from_numpy(v) for k, v in pm.state_dict.items()}
    network.load_state_dict(tensors, strict=True, assign=True)
    network.eval()
    extra: dict[str, Any] = {
        "imported_from": {
            "format": "PyJAMAS ReSCU-Net .cfr",
            "file": str(pm.source),
            "sha256": pm.sha256,
            "concatenation_level_inferred": pm.level_inferred,
            "pyjamas_settings": pm.settings,
        }
    }
    if output is not None:
        path = save_model(
            output,
            network,
            model_config,
            normalization,
            train_config=train_config,
            history=[],
            extra=extra,
            overwrite=overwrite,
        )
    loaded = model_from_network(network, model_config, normalization, train_config, [], extra=extra)
    if output is not None:
        loaded.path = path
    return loaded


def _train_config(pm: Any, model_config: Any, normalization: Any, cls: type) -> Any:
    """PyJAMAS's training settings as a TrainConfig (what the file does not say: defaults).

    The erosion width and the window (the input size: PyJAMAS predicts at native scale) are
    always kept; learning rate, batch size, epochs and patience values are copied when they are
    within rescunet-ij's bounds. PyJAMAS does no augmentation and no motion compensation.
    """
    from pydantic import ValidationError

    s = pm.settings
    base = {
        "model": model_config,
        "normalization": normalization,
        "erosion_width": pm.erosion_width,
        "augment": False,
        "prompt_augment": False,
        "prompt_motion": "off",
        "lr_plateau_factor": 0.1,  # PyJAMAS's ReduceLROnPlateau factor
    }
    try:
        config = cls(**base)
    except ValidationError as exc:
        from ..config import validation_problems

        raise ModelFileError(
            f"cannot import PyJAMAS model {pm.source}: " + "; ".join(validation_problems(exc))
        ) from None
    early = s.get("early_stopper") if isinstance(s.get("early_stopper"), dict) else {}
    sched = s.get("lr_scheduler") if isinstance(s.get("lr_scheduler"), dict) else {}
    optional = {
        "learning_rate": s.get("learning_rate"),
        "batch_size": s.get("mini_batch_size"),
        "epochs": s.get("epochs"),
        "early_stopping_patience": (
            (early.get("kwargs") or {}).get("patience") if early.get("active") else None
        ),
        "lr_plateau_patience": (sched.get("kwargs") or {}).get("patience"),
    }
    for key, value in optional.items():
        try:
            config = cls.model_validate({**config.model_dump(), key: value})
        except ValidationError:
            pass  # missing or outside rescunet-ij's bounds: keep the default
    return config
