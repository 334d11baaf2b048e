"""How much memory a ReSCU-Net needs, and the largest batch that fits a device.

Pure arithmetic on a :class:`~rescunet_ij.config.ModelConfig`: nothing is allocated and no network
is built, so the trainer and the propagator can ask before they start, and a model whose single
sample cannot fit is refused with a clear message instead of failing (or swapping for minutes)
inside torch.

The estimate
------------
Activations dominate. With ``f`` base filters, a ``H x W`` input and ``P_i = H*W / 4**i`` pixels at
level ``i``, one feature map of level ``i`` holds ``fm_i = f * 2**i * P_i`` numbers (the network
is described in :mod:`rescunet_ij.model.rescunet`). Per sample, in float32 (4 bytes):

* **training** keeps every tensor backward needs: each conv block saves its two convolution
  outputs (ReLU is in place) plus, with dropout, the dropout output and its 1-byte mask
  (``3.25 fm_i`` instead of ``2 fm_i``); each max-pooling its output and int64 indices
  (``0.75 fm_i``); each decoder level its concatenated input (``2 fm_i``); the mask branch the
  same as the image branch for its ``concatenation_level`` blocks; the head and the loss a few
  full-resolution maps; during backward the gradients of the largest maps add about
  ``3 fm_0``.
* **inference** keeps only what is alive at its peak: the four skip connections plus the last
  decoder block's concatenated input and two outputs (``sum fm_0..fm_3 + 4 fm_0``).

The training count agrees with the bytes autograd really saves (counted with
``torch.autograd.graph.saved_tensors_hooks``) to a few percent. Each count is multiplied by a
calibration factor (:data:`TRAINING_FACTOR`, :data:`INFERENCE_FACTOR`) measured on the CPU:
``OMP_NUM_THREADS=1 python benchmarks/bench_memory.py --check`` runs real forward
(``inference_mode``) and forward + backward + Adam passes of seven architectures at batches 1 and
8 and measures the growth of the process's peak resident memory (glibc made to return freed blocks
to the system at once, the kernel's peak counter reset before each pass). The weights (and, in
training, their gradients and Adam's two moments) are a fixed cost on top, with a margin for the
weight copies the convolution libraries keep and the optimizer's temporaries. With the factors
below every estimated total is 1.1 to 1.4 times the measured one (torch 2.13, Xeon, one thread;
``benchmarks/results/memory_cpu.md``): on the safe side and well within 2x.

The estimate assumes float32. Mixed precision (autocast on CUDA) roughly halves the activations,
so the estimate is then safe by that much more; CUDA's convolution workspaces and the caching
allocator's fragmentation are what :data:`SAFE_FRACTION` leaves room for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import ModelConfig
from ..errors import ConfigError
from .rescunet import POOLINGS

__all__ = [
    "INFERENCE_FACTOR",
    "SAFE_FRACTION",
    "TRAINING_FACTOR",
    "MemoryEstimate",
    "available_memory",
    "estimate_memory",
    "fit_batch_size",
    "parameter_count",
]

FLOAT_BYTES = 4
"""Bytes per number: the estimate assumes float32 weights and activations."""

TRAINING_FACTOR = 1.35
"""Measured training memory per sample / counted saved activations (see the module docstring)."""

INFERENCE_FACTOR = 1.6
"""Measured inference peak per sample / counted live activations (see the module docstring)."""

WEIGHT_COPIES_INFERENCE = 1.25
"""Weights, plus a margin for the reordered copies convolution libraries cache."""

WEIGHT_COPIES_TRAINING = 4.25
"""Weights, gradients and Adam's two moments, plus a margin for the optimizer's temporaries."""

SAFE_FRACTION = 0.7
"""Share of the available memory a batch may be planned to fill (the rest is the error margin)."""

_GIB = 2**30
_NUM_CLASSES = 2


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory one forward (and backward) pass needs, split into fixed and per-sample parts.

    Attributes
    ----------
    fixed_bytes
        Independent of the batch: the weights (training: also gradients and Adam moments).
    per_sample_bytes
        Activations of one sample; a batch of ``n`` needs ``n`` times this.
    training
        Whether the estimate is for training (forward + backward) or inference.
    """

    fixed_bytes: int
    per_sample_bytes: int
    training: bool

    def total(self, batch_size: int) -> int:
        """Bytes a batch of ``batch_size`` samples needs, fixed part included."""
        return self.fixed_bytes + batch_size * self.per_sample_bytes


def _conv_block_parameters(c_in: int, c_out: int) -> int:
    return 9 * c_in * c_out + c_out + 9 * c_out * c_out + c_out


def parameter_count(model_config: ModelConfig) -> int:
    """The number of weights of the ReSCU-Net ``model_config`` describes, without building it.

    Parameters
    ----------
    model_config
        The architecture.

    Returns
    -------
    int
        Parameters (weights and biases), exactly as ``build_model(model_config)`` has them.
    """
    f, level = model_config.base_filters, model_config.concatenation_level
    c = model_config.in_channels
    widths = [f * 2**i for i in range(POOLINGS + 1)]
    total = 0
    for i in range(POOLINGS + 1):  # image branch: encoder blocks, then the bottleneck
        c_in = (c + (1 if level == 0 else 0)) if i == 0 else widths[i - 1]
        if level > 0 and i == level:
            c_in *= 2
        total += _conv_block_parameters(c_in, widths[i])
    for i in range(level):  # the mask branch's own encoder blocks
        total += _conv_block_parameters(1 if i == 0 else widths[i - 1], widths[i])
    for i in range(POOLINGS):  # decoder: 2x2 transposed convolution, then a block
        total += 4 * widths[i + 1] * widths[i] + widths[i]
        total += _conv_block_parameters(2 * widths[i], widths[i])
    return total + f * _NUM_CLASSES + _NUM_CLASSES  # 1x1 head


def _feature_maps(model_config: ModelConfig) -> tuple[list[float], float]:
    """Numbers in one feature map per level (``fm_i``) and pixels at full resolution."""
    h, w = model_config.input_size
    f = model_config.base_filters
    return [f * 2**i * h * w / 4**i for i in range(POOLINGS + 1)], float(h * w)


def _training_numbers(model_config: ModelConfig) -> float:
    """Numbers (float32 equivalents) one sample keeps for backward."""
    fm, pixels = _feature_maps(model_config)
    level, c = model_config.concatenation_level, model_config.in_channels
    block = 3.25 if model_config.dropout else 2.0  # conv outputs (+ dropout output and mask)
    pool = 0.75  # pooled output + int64 indices, a quarter of the pixels
    n = (c + 1) * pixels  # the batch itself
    n += sum(block * fm[i] for i in range(POOLINGS + 1))  # encoder blocks and bottleneck
    n += sum(pool * fm[i] for i in range(POOLINGS))
    n += sum((block + pool) * fm[i] for i in range(level))  # mask branch
    n += fm[level - 1] / 2 if level > 0 else (c + 1) * pixels  # where image and mask join
    n += sum((2 + block) * fm[i] for i in range(POOLINGS))  # decoder: concatenation + block
    n += 6 * pixels  # logits, softmax, loss terms
    return n + 3 * fm[0]  # transient gradients of the largest maps during backward


def _inference_numbers(model_config: ModelConfig) -> float:
    """Numbers (float32 equivalents) alive at the peak of one sample's forward pass."""
    fm, pixels = _feature_maps(model_config)
    inputs = (model_config.in_channels + 1) * pixels
    skips = sum(fm[:POOLINGS])
    return inputs + skips + 4 * fm[0] + 2 * pixels  # last decoder block, then the logits


def estimate_memory(model_config: ModelConfig, *, training: bool) -> MemoryEstimate:
    """Estimate the memory of a forward pass (``training``: forward + backward + Adam step).

    Parameters
    ----------
    model_config
        The architecture and network input size.
    training
        Forward + backward with gradients and Adam state, or inference only.

    Returns
    -------
    MemoryEstimate
        Fixed and per-sample bytes; calibrated on the CPU to lie within about 1-1.6x of the
        measured memory (see the module docstring).
    """
    params = parameter_count(model_config) * FLOAT_BYTES
    if training:
        fixed = params * WEIGHT_COPIES_TRAINING
        per_sample = _training_numbers(model_config) * FLOAT_BYTES * TRAINING_FACTOR
    else:
        fixed = params * WEIGHT_COPIES_INFERENCE
        per_sample = _inference_numbers(model_config) * FLOAT_BYTES * INFERENCE_FACTOR
    return MemoryEstimate(int(fixed), int(per_sample), training)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    """Room left under this process's cgroup memory limit (containers, batch jobs), if any."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),  # cgroup v1
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" or a huge number = no limit
            return max(0, int(limit) - usage)
    return None


def _cpu_available() -> int:
    found = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if not found:
        try:  # not Linux: free physical pages
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            try:
                found.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2)
            except (ValueError, OSError, AttributeError):
                found.append(4 * _GIB)  # nothing to ask: assume a small machine
    return int(min(found))


def available_memory(device: torch.device | str) -> int:
    """Bytes this process can still allocate on ``device``.

    Parameters
    ----------
    device
        ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (a :class:`torch.device` or its name; resolve
        ``auto`` first with :func:`rescunet_ij.device.resolve_device`).

    Returns
    -------
    int
        CPU: the kernel's ``MemAvailable`` (``/proc/meminfo``), lowered to the room left under a
        cgroup memory limit (containers), or free physical pages from ``os.sysconf`` elsewhere.
        CUDA: free device memory (``torch.cuda.mem_get_info``) plus what PyTorch's caching
        allocator holds unused. MPS: the recommended working set minus what is allocated.

    Raises
    ------
    ConfigError
        If ``device`` is not a device name, or is CUDA on a machine without it.
    """
    dev = _as_device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {str(dev)!r} was given but this PyTorch sees no CUDA GPU "
                f"(torch {torch.__version__}); use cpu"
            )
        free, _total = torch.cuda.mem_get_info(dev)
        cached = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
        return int(free + max(0, cached))
    if dev.type == "mps":
        mps = getattr(torch, "mps", None)
        if mps is not None and hasattr(mps, "recommended_max_memory"):
            return int(max(0, mps.recommended_max_memory() - mps.driver_allocated_memory()))
    return _cpu_available()  # CPU, and MPS without the query (unified memory)


def _as_device(device: torch.device | str) -> torch.device:
    if isinstance(device, torch.device):
        return device
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"unknown device {device!r}; use cpu, cuda, cuda:N or mps "
            "(resolve 'auto' with rescunet_ij.device.resolve_device first)"
        ) from exc
    return dev


def _gib(n: float) -> str:
    return f"{n / _GIB:.2f}" if n < 10 * _GIB else f"{n / _GIB:.0f}"


def fit_batch_size(
    model_config: ModelConfig,
    device: torch.device | str,
    wanted: int,
    training: bool,
    *,
    available: int | None = None,
) -> int:
    """The largest batch, at most ``wanted``, whose estimated memory fits the device.

    Parameters
    ----------
    model_config
        The architecture and network input size.
    device
        Where the batch will run (see :func:`available_memory`).
    wanted
        The batch size asked for (the setting); the result never exceeds it.
    training
        Forward + backward + Adam step, or inference only.
    available
        Bytes available, instead of asking the device (tests, or a caller that knows better).

    Returns
    -------
    int
        ``1 <= n <= wanted`` with ``estimate.total(n) <= SAFE_FRACTION * available``.

    Raises
    ------
    ConfigError
        If ``wanted`` is below 1, or even a batch of 1 does not fit; the message gives both
        sizes and what to lower.
    """
    if wanted < 1:
        raise ConfigError(f"the batch size must be at least 1, got {wanted}")
    dev = _as_device(device)
    room = available_memory(dev) if available is None else int(available)
    budget = SAFE_FRACTION * room
    est = estimate_memory(model_config, training=training)
    if est.total(1) > budget:
        h, w = model_config.input_size
        what = "training" if training else "propagation"
        raise ConfigError(
            f"a batch of 1 at input size {h}x{w} (base filters {model_config.base_filters}) "
            f"needs ~{_gib(est.total(1))} GiB for {what} but the {dev.type} has "
            f"{_gib(room)} GiB available (planned use at most {SAFE_FRACTION:.0%} of it); "
            "lower input_size (cut the objects with a larger subimage_size instead) or "
            "base_filters, close other programs, or use a device with more memory"
        )
    fits = int((budget - est.fixed_bytes) // max(1, est.per_sample_bytes))
    return max(1, min(wanted, fits))
