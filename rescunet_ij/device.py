"""Device selection: the only place that probes CUDA or MPS."""

from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a :class:`torch.device`, checking it exists.

    ``auto`` picks CUDA when present, then Apple's MPS, else the CPU.
    """
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device '{name}' was requested but this PyTorch has no CUDA GPU "
                f"(torch {torch.__version__}); use --device cpu or --device auto"
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device '{name}' does not exist: {torch.cuda.device_count()} CUDA device(s) found"
            )
        return dev
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(
                "device 'mps' was requested but Apple MPS is not available; use --device cpu"
            )
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps")


def cuda_device_count() -> int:
    """How many CUDA GPUs this PyTorch sees (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` means the device ran out of memory.

    CUDA raises :class:`torch.OutOfMemoryError`; MPS and the CPU allocator raise plain
    ``RuntimeError`` exceptions whose text says so. Training and propagation both recover by halving
    their batch, so they share this one test.
    """
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def autocast_dtype(device: torch.device, mixed_precision: bool | str) -> torch.dtype | None:
    """The autocast dtype to use, or ``None`` for full precision.

    ``auto`` enables mixed precision on CUDA only (bfloat16 where supported, else float16); on the
    CPU autocast rarely helps convolutions and can hurt accuracy, so it stays off unless forced.
    """
    if mixed_precision is False:
        return None
    if mixed_precision == "auto" and device.type != "cuda":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        return torch.bfloat16
    return None
