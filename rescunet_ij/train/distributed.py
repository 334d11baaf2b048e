"""Training on several devices: DistributedDataParallel under ``torchrun``.

``torchrun --nproc-per-node N -m rescunet_ij train ...`` starts N copies of the ``train`` command
and tells each its place through the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``). :func:`process_group` reads them, picks the device of this
process (GPU ``LOCAL_RANK`` with NCCL, or the CPU with gloo) and joins the process group; without
them (``WORLD_SIZE`` unset or 1) training runs on one device exactly as before.

How a run is shared out (the :class:`~rescunet_ij.train.trainer.Trainer` does the rest):

- every rank makes the same seeded train/validation split and the same initial weights;
- the training windows are sharded by :class:`ShardedEpochSampler` (PyTorch's
  :class:`~torch.utils.data.distributed.DistributedSampler`, reshuffled each epoch): each rank
  sees a disjoint part, padded to equal length so every rank runs the same number of steps;
- the validation windows are split without padding (:func:`shard_indices`) and the loss sums are
  added up over the ranks (:meth:`DistContext.sum`), so every rank sees the same validation loss
  and takes the same learning-rate and early-stopping decisions; the decision to stop is also
  broadcast from rank 0 (:meth:`DistContext.from_main`);
- ``batch_size`` stays the *global* batch: each rank takes ``ceil(batch_size / world_size)``;
- rank 0 alone writes the model, its checkpoints and the history.

:func:`launch` runs ``torch.distributed.run`` (the code behind ``torchrun``) for the CLI's
``rescunet-ij train --nproc-per-node N``.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data.distributed import DistributedSampler

from ..data.dataset import EpochSampler
from ..device import resolve_device
from ..errors import ConfigError

__all__ = [
    "DistContext",
    "ShardedEpochSampler",
    "env_world",
    "launch",
    "per_rank_batch",
    "process_group",
    "rank_seed",
    "shard_indices",
    "signals_deferred",
]


@dataclass(frozen=True)
class DistContext:
    """The place of this process in a distributed training run.

    Attributes
    ----------
    rank, world_size, local_rank
        From torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``.
    backend
        ``"nccl"`` (CUDA) or ``"gloo"`` (CPU).
    device
        The device of this process: ``cuda:LOCAL_RANK`` or the CPU.
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the one process that writes files and reports progress."""
        return self.rank == 0

    def _tensor(self, values: Sequence[float]) -> torch.Tensor:
        # NCCL reduces CUDA tensors only; gloo works on CPU tensors.
        return torch.tensor(list(values), dtype=torch.float64, device=self.device)

    def sum(self, values: Sequence[float]) -> list[float]:
        """``values`` added element-wise over all ranks (every rank gets the same result)."""
        t = self._tensor(values)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return [float(v) for v in t.tolist()]

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on at least one rank (the same answer on every rank)."""
        t = self._tensor([1.0 if flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def min(self, value: int) -> int:
        """The smallest ``value`` over all ranks."""
        t = self._tensor([float(value)])
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return int(t.item())

    def from_main(self, flag: bool) -> bool:
        """Rank 0's ``flag``, on every rank (a decision all ranks must take together)."""
        t = self._tensor([1.0 if flag else 0.0])
        dist.broadcast(t, src=0)
        return bool(t.item() > 0)


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(
            f"the environment variable {name}={raw!r} is not a whole number; it is set by "
            "torchrun: start distributed training with torchrun (or rescunet-ij train "
            "--nproc-per-node N) and do not set it yourself"
        ) from None


def env_world() -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` when torchrun started more than one process, else None.

    Raises
    ------
    ConfigError
        If the variables are inconsistent (e.g. ``RANK`` missing, or not below ``WORLD_SIZE``).
    """
    world = _env_int("WORLD_SIZE")
    if world is None or world <= 1:
        return None
    rank, local = _env_int("RANK"), _env_int("LOCAL_RANK")
    if rank is None or not 0 <= rank < world:
        raise ConfigError(
            f"WORLD_SIZE={world} but RANK={os.environ.get('RANK')!r}: the distributed environment "
            "is incomplete; start training with torchrun, which sets both"
        )
    return rank, world, rank if local is None else local


def _device(requested: str, local_rank: int) -> torch.device:
    """The device of the process with ``local_rank``, from the ``--device`` the user asked for."""
    name = (requested or "auto").lower()
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if name == "mps":
        raise ConfigError(
            "distributed training (torchrun) does not support Apple MPS; use --device cpu, or "
            "train in one process"
        )
    dev = resolve_device(name)  # a clear error for a missing GPU or an unknown device name
    if dev.type != "cuda":
        return torch.device("cpu")
    if dev.index is not None and dev.index != local_rank:
        raise ConfigError(
            f"--device {name} cannot be used with torchrun: each process trains on the GPU of its "
            f"LOCAL_RANK (this one: cuda:{local_rank}); use --device cuda or auto, and choose the "
            "GPUs with CUDA_VISIBLE_DEVICES"
        )
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ConfigError(
            f"torchrun started more processes on this machine than it has GPUs (LOCAL_RANK "
            f"{local_rank}, {count} GPU(s) visible); lower --nproc-per-node to {count}"
        )
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def process_group(requested_device: str) -> Iterator[DistContext | None]:
    """Join torchrun's process group for the duration of the block; ``None`` outside torchrun.

    The backend is NCCL on CUDA and gloo on the CPU. A group that the caller initialised already
    is used as it is and left alone afterwards; one initialised here is destroyed on the way out,
    whatever happens in the block.

    Parameters
    ----------
    requested_device
        The training ``device`` setting (``auto``, ``cpu``, ``cuda``).

    Yields
    ------
    DistContext or None
        This process's rank, world size and device.
    """
    world = env_world()
    if world is None:
        yield None
        return
    rank, size, local = world
    device = _device(requested_device, local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    owned = not dist.is_initialized()
    if owned:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        # device_id binds NCCL to this process's GPU at once (no guessing at the first call).
        dev_id = device if device.type == "cuda" else None
        dist.init_process_group(backend=backend, rank=rank, world_size=size, device_id=dev_id)
    elif dist.get_world_size() != size or dist.get_rank() != rank:
        raise ConfigError(
            "a process group is already initialised with another rank or world size than "
            "torchrun's RANK and WORLD_SIZE; destroy it before training"
        )
    else:
        backend = dist.get_backend()
    try:
        yield DistContext(rank, size, local, backend, device)
    finally:
        if owned and dist.is_initialized():
            dist.destroy_process_group()


@contextlib.contextmanager
def signals_deferred(active: bool) -> Iterator[None]:
    """Ignore SIGINT and SIGTERM inside the block when ``active`` (rank 0 saving after one).

    A terminal's Ctrl-C reaches every process of the job, and ``torchrun`` then forwards the signal
    to its workers once more: without this the second copy would stop rank 0's save of the best
    weights. ``torchrun`` still ends a save that hangs (SIGKILL after its grace period); the atomic
    writes then leave every file as it was.
    """
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, signal.SIG_IGN)
    except (ValueError, OSError):  # an embedding interpreter that does not allow it
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def rank_seed(seed: int, rank: int) -> int:
    """The torch seed of ``rank`` after the network is built (dropout differs between ranks).

    Rank 0 keeps ``seed`` itself, so its random stream is that of single-device training.
    """
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1)[0])


def shard_indices(n: int, rank: int, world_size: int) -> list[int]:
    """Rank ``rank``'s share of ``range(n)``, without padding (every index on exactly one rank)."""
    return list(range(rank, n, world_size))


class ShardedEpochSampler(EpochSampler):
    """:class:`~rescunet_ij.data.dataset.EpochSampler` over this rank's shard of the windows.

    The shard is drawn by PyTorch's :class:`~torch.utils.data.distributed.DistributedSampler`
    (shuffled with ``seed`` and the epoch, the same permutation on every rank; padded by
    repeating windows so all ranks run the same number of steps). Indices come as
    ``(epoch, index)`` pairs, as from the single-device sampler, so every window gets the
    augmentations it would get in single-device training.
    """

    def __init__(self, n: int, *, rank: int, world_size: int, seed: int = 0) -> None:
        super().__init__(n, shuffle=True, seed=seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self._inner = DistributedSampler(
            range(self.n),  # type: ignore[arg-type]  # only its length is used
            num_replicas=self.world_size,
            rank=self.rank,
            shuffle=True,
            seed=self.seed,
            drop_last=False,
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch: its shuffle, its shard and its augmentations."""
        super().set_epoch(epoch)
        self._inner.set_epoch(self.epoch)

    def __len__(self) -> int:
        return len(self._inner)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter((self.epoch, int(i)) for i in self._inner)


def per_rank_batch(global_batch: int, world_size: int) -> int:
    """Each rank's batch for a global ``batch_size`` (the effective batch is this x world size)."""
    return max(1, math.ceil(global_batch / world_size))


def launch(worker_args: Sequence[str], nproc_per_node: int) -> int:
    """Run ``python -m rescunet_ij <worker_args>`` in ``nproc_per_node`` processes via torchrun.

    This is ``torchrun --standalone --nproc-per-node N -m rescunet_ij ...``: one machine, a free
    port picked for the rendezvous, the workers stopped together when one fails or on Ctrl-C.

    Parameters
    ----------
    worker_args
        The command line of each worker, after ``rescunet-ij`` (e.g. ``["train", ...]``).
    nproc_per_node
        The number of processes (one per GPU; on the CPU, each takes its share of the cores).

    Returns
    -------
    int
        The exit status: 0, the first failed worker's status, or 128 + the signal number when
        the launcher itself was interrupted.

    Raises
    ------
    ConfigError
        If ``nproc_per_node`` is below 1 or this process already runs under torchrun.
    """
    if nproc_per_node < 1:
        raise ConfigError(f"--nproc-per-node must be at least 1, got {nproc_per_node}")
    if env_world() is not None:
        raise ConfigError(
            "--nproc-per-node was given inside a distributed run (torchrun already started this "
            "process); leave it out of the command torchrun runs"
        )
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(
        ["--standalone", "--nproc-per-node", str(nproc_per_node), "-m", "rescunet_ij"]
        + list(worker_args)
    )
    try:
        run(args)
    except ChildFailedError as exc:
        codes = [f.exitcode for f in exc.failures.values() if f.exitcode]
        code = codes[0] if codes else 1
        return code if code > 0 else 128 - code  # a negative code: killed by signal -code
    except SignalException as exc:
        return 128 + int(exc.sigval)
    return 0
