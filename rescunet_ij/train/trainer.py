"""The machinery of one training run: setup, epochs, validation, best weights, checkpoints.

:class:`Trainer` is driven by :func:`~rescunet_ij.train.loop.train_model`, which owns the public
side (input checks, results, the final save, interrupts). Everything a run changes lives in the
trainer's fields, so an interrupt at any point finds the best weights so far and the history that
belongs to them.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..config import NormalizationConfig, TrainConfig
from ..data.dataset import EpochSampler, PromptAugment, WindowDataset
from ..data.settings import prompt_shift_for
from ..device import autocast_dtype, is_out_of_memory, resolve_device
from ..errors import ConfigError, DataError, OutputExistsError, WriteError
from ..io.checkpoint import LoadedModel
from ..io.training_set import TrainingSample
from ..model import build_model
from ..model.memory import fit_batch_size
from .distributed import (
    DistContext,
    ShardedEpochSampler,
    per_rank_batch,
    rank_seed,
    shard_indices,
)
from .loss import iou_per_sample, weighted_cross_entropy
from .outputs import TrainOutputs

if TYPE_CHECKING:
    from .loop import TrainCallbacks

__all__ = ["Best", "TrainData", "Trainer"]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train/validation split; at least one validation sample when possible."""
    if fraction <= 0 or n < 2:
        return list(range(n)), []
    n_val = min(max(1, round(n * fraction)), n - 1)
    perm = np.random.default_rng([seed, 1]).permutation(n)
    return sorted(int(i) for i in perm[n_val:]), sorted(int(i) for i in perm[:n_val])


def _cpu_state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in network.state_dict().items()}


def _max_normalization(
    norm: NormalizationConfig, samples: Sequence[TrainingSample]
) -> NormalizationConfig:
    if norm.mode != "max" or norm.max_value is not None:
        return norm
    top = max(float(np.max(s.image)) for s in samples)
    if not math.isfinite(top) or top <= 0:
        raise DataError(
            f"normalization 'max' divides by the training set's maximum intensity, which is {top}; "
            "check the training images, or use percentile normalization"
        )
    return norm.model_copy(update={"max_value": top})


def _float(x: torch.Tensor | float) -> float:
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


class _Stop(Exception):
    """Raised inside an epoch when the user cancels."""


def _adam(network: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam, fused into one kernel per step where this torch supports it on ``device``.

    Measured on a 2-core Xeon (f=64, L=1, input 64, batch 8, one thread): 4.8 -> 5.2 samples/s and
    about 60 MB less peak memory than the default multi-tensor Adam; the update is the same maths.
    """
    params = list(network.parameters())
    if device.type in ("cpu", "cuda"):
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):  # older torch: no fused Adam on this device
            pass
    return torch.optim.Adam(params, lr=lr)


@dataclass(frozen=True)
class Best:
    """The best epoch so far. Replaced as a whole, so an interrupt never sees half an update."""

    value: float = math.inf
    epoch: int = 0  # 0: no epoch finished yet
    state: dict[str, torch.Tensor] | None = None  # CPU copy of the weights


@dataclass
class TrainData:
    """The seeded train/validation split and the datasets built from it."""

    train_idx: list[int]
    val_idx: list[int]
    train: WindowDataset
    val: WindowDataset | None
    sampler: EpochSampler  # seeded shuffle per epoch, shared by every train loader

    @property
    def monitor(self) -> str:
        """The loss picking the best epoch: ``val_loss``, or ``train_loss`` without validation."""
        return "val_loss" if self.val_idx else "train_loss"


@dataclass
class Trainer:
    """One training run: :meth:`setup`, then :meth:`run` (the epochs).

    Afterwards (or after an interrupt at any point) :attr:`best`, :attr:`history` and
    :meth:`best_network` hold what the run achieved; :func:`~rescunet_ij.train.loop.train_model`
    saves it. Checkpoints during the run are written here (:meth:`_checkpoint`).
    """

    samples: list[TrainingSample]
    config: TrainConfig
    outputs: TrainOutputs | None  # None: write nothing
    init_from: LoadedModel | None
    callbacks: TrainCallbacks
    checkpoint_interval_s: float
    dist: DistContext | None = None  # under torchrun: this rank's place (distributed.py)
    metadata: dict[str, Any] = field(default_factory=dict)  # the caller's, kept in the model

    # Set by setup():
    eff: TrainConfig = field(init=False)  # config with the computed max normalisation filled in
    device: torch.device = field(init=False)
    amp: torch.dtype | None = field(init=False)  # autocast dtype, None: full precision
    data: TrainData = field(init=False)
    network: torch.nn.Module = field(init=False)  # the bare network (never DDP-wrapped)
    ddp: torch.nn.Module | None = field(init=False, default=None)  # its DDP wrapper (torchrun)
    optimizer: torch.optim.Optimizer = field(init=False)
    scheduler: Any = field(init=False)  # ReduceLROnPlateau on the monitored loss
    scaler: torch.amp.GradScaler | None = field(init=False)  # only for float16 autocast
    batch_size: int = field(init=False)  # per rank; halved after out-of-memory errors
    train_loader: DataLoader = field(init=False)
    val_loader: DataLoader | None = field(init=False)

    # Progress, read by the interrupt handler:
    epoch: int = 0  # the epoch running or last run (1-based; 0 before the first)
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per finished epoch
    best: Best = field(default_factory=Best)
    bad_epochs: int = 0  # epochs since the last improvement (early stopping)
    next_checkpoint: float = math.inf  # time.monotonic() when a checkpoint may be written again
    stopped_early: bool = False
    cancelled: bool = False

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        """Seed, pick the device, split the samples, build the network and the optimiser."""
        config = self.config
        _seed_everything(config.seed)
        self.device = self.dist.device if self.dist else resolve_device(config.device)
        self.amp = autocast_dtype(self.device, config.mixed_precision)
        norm = _max_normalization(config.normalization, self.samples)
        self.eff = config.model_copy(update={"normalization": norm})
        self.data = self._setup_data()
        self.network = build_model(config.model)
        if self.init_from is not None:
            self.network.load_state_dict(self.init_from.network.state_dict())
        self.network.to(self.device)
        if config.channels_last:
            self.network.to(memory_format=torch.channels_last)
        if self.dist is not None:
            self._wrap_ddp()
        self.optimizer = _adam(self.network, config.learning_rate, self.device)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer,
            mode="min",
            factor=config.lr_plateau_factor,
            patience=config.lr_plateau_patience,
        )
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp == torch.float16 else None
        self.batch_size = self._initial_batch_size()
        self._make_loaders()
        self.next_checkpoint = time.monotonic() + self.checkpoint_interval_s

    def _wrap_ddp(self) -> None:
        """Wrap the network in DistributedDataParallel; reseed dropout per rank.

        Every rank built the same weights from the same seed (DDP broadcasts rank 0's anyway).
        ``self.network`` stays the bare network, so validation, the best weights and the saved
        model never see DDP's ``module.`` prefix.
        """
        from torch.nn.parallel import DistributedDataParallel

        dist = self.dist
        assert dist is not None
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        self.ddp = DistributedDataParallel(self.network, device_ids=ids)
        torch.manual_seed(rank_seed(self.config.seed, dist.rank))

    @property
    def world_size(self) -> int:
        """The number of processes training together (1 without torchrun)."""
        return self.dist.world_size if self.dist is not None else 1

    @property
    def global_batch_size(self) -> int:
        """The effective batch of one step: the per-rank batch times the world size."""
        return self.batch_size * self.world_size

    def _setup_data(self) -> TrainData:
        config, samples = self.config, self.samples
        train_idx, val_idx = _split(len(samples), config.validation_fraction, config.seed)
        if not val_idx:
            why = (
                "validation_fraction is 0"
                if config.validation_fraction <= 0
                else f"there is only {len(samples)} sample"
            )
            warnings.warn(
                f"training without a validation set ({why}): the best epoch and early stopping "
                "follow the training loss, which does not show overfitting; use more samples for "
                "a validation set",
                stacklevel=4,
            )
        common = {
            "input_size": config.model.input_size,
            "window": config.window_size,
            "normalization": self.eff.normalization,
            "w0": config.weight_w0,
            "sigma": config.weight_sigma,
            "seed": config.seed,
        }
        train_samples = [samples[i] for i in train_idx]
        train = WindowDataset(
            train_samples,
            augment=config.augment,
            train=True,
            prompt_augment=self._prompt_augment(train_samples),
            **common,
        )
        val = None
        if val_idx:
            val = WindowDataset(
                [samples[i] for i in val_idx],
                augment=False,
                train=False,
                fg_fraction=train.fg_fraction,
                **common,
            )
        if self.dist is None:
            sampler = EpochSampler(len(train), shuffle=True, seed=config.seed)
        else:
            sampler = ShardedEpochSampler(
                len(train), rank=self.dist.rank, world_size=self.dist.world_size, seed=config.seed
            )
        return TrainData(train_idx, val_idx, train, val, sampler)

    def _prompt_augment(self, train_samples: Sequence[TrainingSample]) -> PromptAugment | None:
        """The imperfect-prompt settings; a prompt shift left to the data is stored in ``eff``."""
        config = self.config
        if not config.prompt_augment or config.prompt_augment_fraction <= 0:
            return None
        shift = config.prompt_shift
        if shift is None:
            pairs = ((s.mask, s.prev_mask) for s in train_samples)
            shift = prompt_shift_for(pairs, config.window_size)
            self.eff = self.eff.model_copy(update={"prompt_shift": shift})
        return PromptAugment(max_shift=shift, fraction=config.prompt_augment_fraction)

    def _initial_batch_size(self) -> int:
        """The batch size training starts with: the one place where it is decided.

        The requested size, but never more than the training samples nor than the device's
        memory holds (:func:`rescunet_ij.model.memory.fit_batch_size`: a network that cannot
        train even one sample fails here, at once, with what to lower); out-of-memory errors
        still halve it later. Under torchrun ``batch_size`` is the global batch: each rank takes
        its share (rounded up), and all ranks agree on the smallest that fits.
        """
        wanted = min(self.config.batch_size, len(self.data.train))
        if self.dist is not None:
            wanted = min(
                per_rank_batch(self.config.batch_size, self.world_size), len(self.data.sampler)
            )
        fitted = fit_batch_size(self.config.model, self.device, wanted, training=True)
        if self.dist is not None:
            fitted = self.dist.min(fitted)
        if fitted < wanted:
            warnings.warn(
                f"a training batch of {wanted} would not fit the {self.device.type}'s free "
                f"memory at input size {self.config.model.input_size[0]}x"
                f"{self.config.model.input_size[1]}; training with batches of {fitted} "
                "(lower batch_size to silence this, or free memory)",
                stacklevel=4,
            )
        return fitted

    def _make_loaders(self) -> None:
        workers = self.config.num_workers
        kw: dict[str, Any] = {
            "num_workers": workers,
            "pin_memory": self.device.type == "cuda",
            "persistent_workers": workers > 0,
        }
        if workers > 0:
            kw["prefetch_factor"] = self.config.prefetch_factor
        bs = self.batch_size
        self.train_loader = DataLoader(
            self.data.train, batch_size=bs, sampler=self.data.sampler, **kw
        )
        self.val_loader = None
        if self.data.val is not None:
            if self.dist is None:
                self.val_loader = DataLoader(self.data.val, batch_size=bs, shuffle=False, **kw)
            else:  # this rank's share of the validation windows, each window on one rank
                mine = shard_indices(len(self.data.val), self.dist.rank, self.world_size)
                self.val_loader = DataLoader(self.data.val, batch_size=bs, sampler=mine, **kw)

    # ------------------------------------------------------------------ one epoch

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp)

    def _to_device(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        keys = ("image", "prev_mask", "target", "weight")
        out = tuple(batch[k].to(self.device, non_blocking=True) for k in keys)
        if self.config.channels_last:  # the network's inputs in the network's layout
            cl = torch.channels_last
            out = (
                out[0].contiguous(memory_format=cl),
                out[1].contiguous(memory_format=cl),
                *out[2:],
            )
        return out

    def _stop_requested(self) -> bool:
        if self.callbacks.should_stop is None:
            return False
        stop = bool(self.callbacks.should_stop())
        # Under torchrun all ranks stop together (pass the same callbacks on every rank).
        return self.dist.any(stop) if self.dist is not None else stop

    def _totals(self, *sums: torch.Tensor | float) -> list[float]:
        """The sums of this rank, added up over all ranks under torchrun."""
        values = [_float(v) for v in sums]
        return self.dist.sum(values) if self.dist is not None else values

    def _train_epoch(self) -> tuple[float, float]:
        """One pass over the training windows; returns the mean loss and IoU."""
        network, optimizer, scaler = self.ddp or self.network, self.optimizer, self.scaler
        network.train()  # dropout on
        main = self.dist is None or self.dist.is_main
        n_batches = len(self.train_loader)
        loss_sum = torch.zeros((), device=self.device)
        iou_sum = torch.zeros((), device=self.device)
        count = 0
        for i, batch in enumerate(self.train_loader, start=1):
            image, prev, target, weight = self._to_device(batch)
            with self._autocast():
                logits = network(image, prev)
            loss = weighted_cross_entropy(logits, target, weight)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            b = image.shape[0]
            loss_sum += loss.detach() * b
            iou_sum += iou_per_sample(logits.detach(), target).sum()
            count += b
            if main and self.callbacks.on_batch_end is not None:
                self.callbacks.on_batch_end(i, n_batches)
            if self._stop_requested():
                raise _Stop
        loss_total, iou_total, n = self._totals(loss_sum, iou_sum, count)
        return loss_total / max(n, 1), iou_total / max(n, 1)

    @torch.inference_mode()
    def _validate(self) -> tuple[float | None, float | None]:
        """Mean loss and IoU on the validation windows; ``(None, None)`` without validation."""
        if self.val_loader is None:
            return None, None
        self.network.eval()  # dropout off
        loss_sum = torch.zeros((), device=self.device)
        iou_sum = torch.zeros((), device=self.device)
        count = 0
        for batch in self.val_loader:
            image, prev, target, weight = self._to_device(batch)
            with self._autocast():
                logits = self.network(image, prev)
            b = image.shape[0]
            loss_sum += weighted_cross_entropy(logits, target, weight) * b
            iou_sum += iou_per_sample(logits, target).sum()
            count += b
        loss_total, iou_total, n = self._totals(loss_sum, iou_sum, count)
        return loss_total / max(n, 1), iou_total / max(n, 1)

    def _run_epoch(self, epoch: int) -> dict[str, Any] | None:
        """Train and validate once; the history record, or ``None`` after out-of-memory."""
        self.data.sampler.set_epoch(epoch)
        lr = float(self.optimizer.param_groups[0]["lr"])
        t0 = time.perf_counter()
        gpu_error = None
        try:
            train_loss, train_iou = self._train_epoch()
            val_loss, val_iou = self._validate()
        except RuntimeError as exc:  # torch.OutOfMemoryError is one too
            if not is_out_of_memory(exc):
                raise
            if self.dist is not None:
                # The other ranks wait in DDP's gradient exchange: no retry can agree with them.
                raise ConfigError(
                    f"rank {self.dist.rank} ran out of memory on {self.device} in epoch {epoch} "
                    f"with {self.batch_size} windows per rank (global batch "
                    f"{self.global_batch_size}); lower --batch-size, the input size or the base "
                    "filters"
                ) from None
            gpu_error = isinstance(exc, torch.OutOfMemoryError)
        if gpu_error is not None:
            # Outside the except block, so the failed batch's tensors can be freed.
            self._smaller_batch(epoch, gpu_error)
            return None
        self._check_finite(epoch, lr, train_loss, val_loss)
        return {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_iou": train_iou,
            "val_loss": val_loss,
            "val_iou": val_iou,
            "lr": lr,
            "seconds": time.perf_counter() - t0,
        }

    def _smaller_batch(self, epoch: int, gpu_error: bool) -> None:
        """Halve the batch after an out-of-memory error, or give up at a batch of 1."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        gpu = gpu_error or self.device.type != "cpu"
        if self.batch_size <= 1:
            model = self.config.model
            hint = (
                "or train on the CPU (--device cpu)"
                if gpu
                else "or close other programs to free memory"
            )
            raise ConfigError(
                f"the {self.device} device ran out of memory even with a batch of 1 "
                f"(input size {model.input_size}, base filters {model.base_filters}); "
                f"lower the input size or base filters, {hint}"
            )
        self.batch_size = max(1, self.batch_size // 2)
        warnings.warn(
            f"out of {'GPU ' if gpu else ''}memory in epoch {epoch}: retrying the epoch with "
            f"batch size {self.batch_size}",
            stacklevel=5,
        )
        self._make_loaders()

    def _check_finite(self, epoch: int, lr: float, *losses: float | None) -> None:
        bad = next((v for v in losses if v is not None and not math.isfinite(v)), None)
        if bad is None:
            return
        kept = ""
        if self.outputs is not None and self.outputs.saved_epoch:
            kept = (
                f"; the best weights so far (epoch {self.outputs.saved_epoch}) are in "
                f"{self.outputs.model}"
            )
        raise ConfigError(
            f"training diverged in epoch {epoch}: the loss became {bad} "
            f"(learning rate {lr:g}). Lower the learning rate (e.g. {lr / 10:g}) and check the "
            f"images for NaN values{kept}"
        )

    # ------------------------------------------------------------------ the epochs

    def run(self) -> None:
        """Run epochs until the last one, early stopping or cancellation."""
        epoch = 1
        while epoch <= self.config.epochs:
            self.epoch = epoch
            try:
                record = self._run_epoch(epoch)
            except _Stop:
                self.cancelled = True
                return
            if record is None:  # out of memory: the same epoch again, with a smaller batch
                continue
            self._end_epoch(record)
            patience = self.config.early_stopping_patience
            stop = patience is not None and self.bad_epochs >= patience
            if self.dist is not None:  # identical losses give identical decisions; rank 0 rules
                stop = self.dist.from_main(stop)
            if stop and epoch < self.config.epochs:
                self.stopped_early = True
                return
            if self._stop_requested():
                self.cancelled = True
                return
            epoch += 1

    def _end_epoch(self, record: dict[str, Any]) -> None:
        """Book an epoch: history, best weights, checkpoint, learning rate, callback."""
        self.history.append(record)
        value = record["val_loss"] if record["val_loss"] is not None else record["train_loss"]
        improved = value < self.best.value
        if improved:
            self.best = Best(value, record["epoch"], _cpu_state(self.network))
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        self._checkpoint(record["epoch"])
        self.scheduler.step(value)
        main = self.dist is None or self.dist.is_main
        if main and self.callbacks.on_epoch_end is not None:
            self.callbacks.on_epoch_end(
                dict(
                    record,
                    best_epoch=self.best.epoch,
                    improved=improved,
                    epochs=self.config.epochs,
                    monitor=self.data.monitor,
                    batch_size=self.global_batch_size,
                )
            )

    def _checkpoint(self, epoch: int) -> None:
        """Write the best weights so far when they are new and the interval has passed.

        The final save follows the last epoch, so no checkpoint is written then. Saving must
        stay a small part of training time, whatever the model size: the interval grows to 20
        times the time a save took. A failed checkpoint is a warning; training goes on.
        """
        outputs = self.outputs
        if outputs is None or epoch >= self.config.epochs or self.best.state is None:
            return
        if self.best.epoch <= outputs.saved_epoch or time.monotonic() < self.next_checkpoint:
            return
        t_save = time.monotonic()
        try:
            outputs.write(
                self._network_with(self.best.state),
                self.eff,
                history=list(self.history),
                extra=self.extra(),
                plot=False,
            )
        except (WriteError, OutputExistsError) as exc:
            warnings.warn(
                f"could not write the checkpoint after epoch {epoch}: {exc}. Training goes on; "
                "the final save will try again",
                stacklevel=5,
            )
        spent = time.monotonic() - t_save
        self.next_checkpoint = time.monotonic() + max(self.checkpoint_interval_s, 20 * spent)

    # ------------------------------------------------------------------ results

    def _network_with(self, state: dict[str, torch.Tensor]) -> torch.nn.Module:
        """A CPU network holding ``state`` without copying it, leaving the trained one alone."""
        with torch.device("meta"):  # no memory, no random initialisation (the RNG is untouched)
            network = build_model(self.config.model)
        network.load_state_dict(state, assign=True)
        return network

    def best_network(self) -> torch.nn.Module:
        """The trained network with the best weights loaded (training is over), in eval mode."""
        if self.best.state is not None:
            self.network.load_state_dict(self.best.state)
        if self.config.channels_last:  # hand back the ordinary layout, as a loaded model has
            self.network.to(memory_format=torch.contiguous_format)
        self.network.eval()
        return self.network

    def extra(self, **updates: Any) -> dict[str, Any]:
        """Model metadata besides the configs and the history."""
        init = self.init_from
        return {
            "training_complete": False,
            "best_epoch": self.best.epoch,
            "monitor": self.data.monitor,
            "n_train": len(self.data.train_idx),
            "n_val": len(self.data.val_idx),
            "fg_fraction": self.data.train.fg_fraction,
            "batch_size_used": self.global_batch_size,
            "world_size": self.world_size,
            "init_from": str(init.path) if init is not None and init.path else None,
            **self.metadata,
            **updates,
        }
