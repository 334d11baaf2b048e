"""The machine and the models as plain data: what the service's health and model pages show."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._common import _loaded

if TYPE_CHECKING:
    from ..io.checkpoint import LoadedModel


def device_info(device: str = "auto") -> dict[str, Any]:
    """The device ``device`` resolves to, with the GPU's name and memory when it is a CUDA GPU.

    Returns ``{"device": "cuda:0", "gpu": {"name", "memory_total_bytes", "memory_free_bytes",
    "memory_allocated_bytes"}, "torch": version}``; ``gpu`` is ``None`` on a CPU or MPS device.
    Raises :class:`~rescunet_ij.errors.ConfigError` for a device this machine does not have.
    """
    import torch

    from ..device import resolve_device

    dev = resolve_device(device)
    gpu = None
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        free, total = torch.cuda.mem_get_info(index)
        gpu = {
            "name": torch.cuda.get_device_name(index),
            "memory_total_bytes": int(total),
            "memory_free_bytes": int(free),
            "memory_allocated_bytes": int(torch.cuda.memory_allocated(index)),
        }
        dev = torch.device("cuda", index)
    return {"device": str(dev), "gpu": gpu, "torch": torch.__version__}


def model_info(model: Any) -> dict[str, Any]:
    """What a model holds, as JSON-ready data (what ``rescunet-ij info`` prints).

    ``model`` is a model file or a :class:`LoadedModel`. Keys: ``package_version``,
    ``model_config``, ``normalization``, ``window_size``, ``erosion_width``, ``epochs_trained``,
    ``best_epoch`` (the record of the epoch with the lowest validation, else training, loss),
    ``train_config`` (``None`` when unknown), ``lineage`` (one record per fine-tuning step of
    :func:`~rescunet_ij.api.finetune`, oldest first; empty for a model trained from scratch)
    and ``path``.
    """
    m: LoadedModel = _loaded(model)
    best = None
    if m.history:
        best = min(
            m.history,
            key=lambda h: h.get("val_loss") if h.get("val_loss") is not None else h["train_loss"],
        )
    return {
        "package_version": m.package_version,
        "model_config": m.model_config.model_dump(mode="json"),
        "normalization": m.normalization.model_dump(mode="json"),
        "window_size": list(m.window_size),
        "erosion_width": m.erosion_width,
        "epochs_trained": len(m.history),
        "best_epoch": best,
        "train_config": None if m.train_config is None else m.train_config.model_dump(mode="json"),
        "lineage": list(m.extra.get("lineage") or []),
        "path": None if m.path is None else str(m.path),
    }
