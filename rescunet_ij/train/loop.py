"""The training loop (plain PyTorch).

Adam, weighted cross-entropy, ReduceLROnPlateau on the monitored loss, early stopping, the best
weights kept in memory, a seeded validation split, automatic batch halving when the device runs
out of memory, and throttled atomic checkpoints so a crash keeps the progress made. No printing:
progress goes to :class:`TrainCallbacks`, which the CLI and the ImageJ bridge turn into progress
bars.

:func:`train_model` checks its inputs and all output files up front, lets a
:class:`~rescunet_ij.train.trainer.Trainer` run the epochs, then saves model, history CSV and plot
as one unit (:func:`_finish`). Ctrl-C and SIGTERM end in :func:`_interrupted`, which saves the best
weights so far and raises :class:`TrainingInterrupted`; a save that fails puts the weights in the
temporary folder and raises :class:`TrainingSaveError` (:func:`_rescue`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..errors import ConfigError, DataError, OutputExistsError, RescunetError, WriteError
from ..io.checkpoint import LoadedModel, model_from_network
from ..io.training_set import TrainingSample
from .distributed import process_group, signals_deferred
from .interrupt import SIGNAL_EXIT_CODES, signal_name, sigterm_as_interrupt
from .outputs import TrainOutputs
from .trainer import Trainer

__all__ = [
    "ARCHITECTURE_FIELDS",
    "TrainCallbacks",
    "TrainResult",
    "TrainingInterrupted",
    "TrainingSaveError",
    "config_for_finetune",
    "train_model",
]

ARCHITECTURE_FIELDS = ("concatenation_level", "base_filters", "in_channels")
"""ModelConfig fields that shape the weights: a fine-tuned model must keep them."""


@dataclass
class TrainCallbacks:
    """Optional hooks called by :func:`train_model` (all run in the training thread).

    Attributes
    ----------
    on_epoch_end
        Called after every epoch with that epoch's history record plus ``best_epoch``,
        ``improved``, ``epochs`` (the maximum), ``monitor`` and ``batch_size``.
    on_batch_end
        Called after every training batch with ``(batch number, batches in this epoch)``, 1-based.
    should_stop
        Polled after every batch; returning ``True`` cancels training. The best weights so far
        are kept and saved (when at least one epoch finished).

    Under torchrun, ``on_epoch_end`` and ``on_batch_end`` are called on rank 0 only;
    ``should_stop`` is polled on every rank (pass the same callbacks on all of them) and all
    ranks stop when one asks.
    """

    on_epoch_end: Callable[[dict[str, Any]], None] | None = None
    on_batch_end: Callable[[int, int], None] | None = None
    should_stop: Callable[[], bool] | None = None


@dataclass
class TrainResult:
    """What :func:`train_model` produced.

    Attributes
    ----------
    model
        The trained network with the best weights, in eval mode, usable at once.
    history
        One dict per epoch: ``epoch``, ``train_loss``, ``train_iou``, ``val_loss``, ``val_iou``
        (``None`` without validation), ``lr``, ``seconds``.
    best_epoch
        The epoch (1-based) whose weights were kept; 0 if no epoch finished.
    model_path, history_csv, history_png
        The files written (``None`` when ``output`` was ``None`` or nothing was saved).
    stopped_early
        Whether early stopping ended training before ``epochs``.
    cancelled
        Whether ``callbacks.should_stop`` ended training.
    monitor
        ``"val_loss"`` or, without a validation set, ``"train_loss"``.
    batch_size
        The batch size finally used (halved after out-of-memory errors); under torchrun the
        global batch, per-rank batch times ``world_size``.
    n_train, n_val
        Numbers of training and validation samples.
    interrupted
        ``"SIGINT"`` or ``"SIGTERM"`` when a signal ended training (the result then travels in
        :attr:`TrainingInterrupted.result`), else ``None``.
    rank, world_size
        This process's rank and the number of processes under torchrun (0 and 1 otherwise). Only
        rank 0 writes files: elsewhere the paths are ``None``.
    """

    model: LoadedModel
    history: list[dict[str, Any]]
    best_epoch: int
    model_path: Path | None
    history_csv: Path | None
    history_png: Path | None
    stopped_early: bool
    cancelled: bool = False
    monitor: str = "val_loss"
    batch_size: int = 0
    n_train: int = 0
    n_val: int = 0
    interrupted: str | None = None
    rank: int = 0
    world_size: int = 1


class TrainingInterrupted(RescunetError):
    """Ctrl-C (SIGINT) or SIGTERM ended training; the best weights so far were saved if any.

    Not a :class:`KeyboardInterrupt`: the interrupt has been handled (the weights are safe), and
    what is left is a message for the user. The CLI prints it and exits with :attr:`exit_code`.

    Attributes
    ----------
    signal
        ``"SIGINT"`` or ``"SIGTERM"``.
    model_path
        The file holding the best weights so far (marked ``interrupted`` in its metadata), or
        ``None`` when nothing was saved.
    best_epoch
        The epoch of those weights; 0 if no epoch had finished.
    epoch
        The epoch that was running (0: training had not started).
    result
        The :class:`TrainResult` with the best weights in memory, or ``None`` if no epoch finished.
    """

    def __init__(
        self,
        message: str,
        *,
        signal: str,
        model_path: Path | None,
        best_epoch: int,
        epoch: int,
        result: TrainResult | None = None,
    ) -> None:
        super().__init__(message)
        self.signal = signal
        self.model_path = model_path
        self.best_epoch = best_epoch
        self.epoch = epoch
        self.result = result

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by :attr:`signal` (130 SIGINT, 143 SIGTERM)."""
        return SIGNAL_EXIT_CODES[self.signal]


class TrainingSaveError(WriteError):
    """Training ended but the model could not be written to the requested file.

    The message names the reason and where the weights went instead.

    Attributes
    ----------
    fallback_path
        The model file written in the temporary folder instead, or ``None`` if that failed too.
    result
        The :class:`TrainResult`, with the trained network in memory.
    """

    def __init__(self, message: str, *, fallback_path: Path | None, result: TrainResult) -> None:
        super().__init__(message)
        self.fallback_path = fallback_path
        self.result = result


def config_for_finetune(config: TrainConfig, loaded: LoadedModel) -> TrainConfig:
    """Training settings for fine-tuning ``loaded``: its network input, settings from ``config``.

    The loaded model's :class:`~rescunet_ij.config.ModelConfig` (architecture, input size,
    dropout), its normalisation (including a ``max`` value) and, when ``config`` sets none, its
    subimage (window) size replace those of ``config``; the optimisation settings (learning rate,
    epochs, batch size, augmentation, ...) stay as in ``config``. The CLI uses this when the user
    fine-tunes (``--init-from``) without giving an architecture.

    Parameters
    ----------
    config
        The requested training settings.
    loaded
        The model to fine-tune.

    Returns
    -------
    TrainConfig
        A new, validated config.
    """
    values = config.model_dump()
    values["model"] = loaded.model_config.model_dump()
    values["normalization"] = loaded.normalization.model_dump()
    if config.subimage_size is None and loaded.train_config is not None:
        values["subimage_size"] = loaded.train_config.subimage_size
    return TrainConfig.model_validate(values)


# ----------------------------------------------------------------------------- checks


def _check_architecture(config: TrainConfig, loaded: LoadedModel) -> None:
    diffs = [
        f"{f.replace('_', ' ')}: the model has {getattr(loaded.model_config, f)}, "
        f"the settings ask for {getattr(config.model, f)}"
        for f in ARCHITECTURE_FIELDS
        if getattr(loaded.model_config, f) != getattr(config.model, f)
    ]
    if diffs:
        source = f" ({loaded.path})" if loaded.path else ""
        raise ConfigError(
            f"cannot fine-tune the model{source}: its architecture differs from the training "
            "settings ("
            + "; ".join(diffs)
            + "). --init-from keeps the original architecture: leave the architecture options out "
            "(they are then taken from the model) or set them to the model's values"
        )


# ----------------------------------------------------------------------------- results and saving


def _result(trainer: Trainer, extra: dict[str, Any]) -> TrainResult:
    """The result of ``trainer``'s run, with the best weights loaded and ``extra`` as metadata."""
    loaded = model_from_network(
        trainer.best_network(),
        trainer.eff.model,
        trainer.eff.normalization,
        train_config=trainer.eff,
        history=list(trainer.history),
        extra=extra,
    )
    return TrainResult(
        model=loaded,
        history=list(trainer.history),
        best_epoch=trainer.best.epoch,
        model_path=None,
        history_csv=None,
        history_png=None,
        stopped_early=trainer.stopped_early,
        cancelled=trainer.cancelled,
        monitor=trainer.data.monitor,
        batch_size=trainer.global_batch_size,
        n_train=len(trainer.data.train_idx),
        n_val=len(trainer.data.val_idx),
        interrupted=extra.get("interrupted"),
        rank=trainer.dist.rank if trainer.dist is not None else 0,
        world_size=trainer.world_size,
    )


def _save(trainer: Trainer, outputs: TrainOutputs, result: TrainResult) -> None:
    """Write model, history CSV and plot as one unit; fill in the paths of ``result``.

    Raises
    ------
    TrainingSaveError
        If that fails; the weights are then in a file in the temporary folder.
    """
    model = result.model
    try:
        outputs.write(
            model.network, trainer.eff, history=result.history, extra=model.extra, plot=True
        )
    except (WriteError, OutputExistsError) as exc:
        raise _rescue(trainer, outputs, result, exc) from exc
    model.path = result.model_path = outputs.model
    result.history_csv, result.history_png = outputs.history_csv, outputs.history_png


def _rescue(
    trainer: Trainer, outputs: TrainOutputs, result: TrainResult, error: Exception
) -> TrainingSaveError:
    """Save the weights to the temporary folder after ``error``; returns the error to raise."""
    what = f"the trained weights (best epoch {trainer.best.epoch})"
    if result.interrupted:
        what = f"the best weights so far (epoch {trainer.best.epoch}, marked interrupted)"
    model = result.model
    fallback: Path | None
    try:
        fallback = outputs.save_fallback(
            model.network, trainer.eff, history=result.history, extra=model.extra
        )
    except (WriteError, OutputExistsError) as again:
        fallback = None
        message = (
            f"{error}. Saving {what} to the temporary folder failed too ({again}): they exist "
            "only in memory (TrainingSaveError.result); free some disk space and save them with "
            "rescunet_ij.io.checkpoint.save_model"
        )
    else:
        model.path = result.model_path = fallback
        message = (
            f"{error}. {what[0].upper()}{what[1:]} were saved to {fallback} instead (the training "
            f"history is inside it); free some space, then move it: mv {fallback} {outputs.model}"
        )
    err = TrainingSaveError(message, fallback_path=fallback, result=result)
    err.errno = getattr(error, "errno", None)
    err.filename = str(outputs.model)
    return err


def _finish(trainer: Trainer) -> TrainResult:
    """The result of a run that ended normally (last epoch, early stopping, cancelled), saved."""
    info = trainer.extra(
        training_complete=not trainer.cancelled and trainer.best.state is not None,
        stopped_early=trainer.stopped_early,
        cancelled=trainer.cancelled,
    )
    result = _result(trainer, info)
    if trainer.outputs is not None and trainer.best.state is not None:
        _save(trainer, trainer.outputs, result)
    return result


# ----------------------------------------------------------------------------- interrupts


def _interrupted(trainer: Trainer, signal: str) -> TrainingInterrupted:
    """Save the best weights so far after Ctrl-C or SIGTERM; returns the exception to raise.

    A second interrupt while saving stops the save; the atomic writes then leave every file as
    it was before.
    """
    if not trainer.epoch:
        where = "before the first epoch"
    elif len(trainer.history) < trainer.epoch:
        where = f"in epoch {trainer.epoch}"
    else:
        where = f"after epoch {trainer.epoch}"
    head = f"training interrupted by {signal} {where}"
    kw: dict[str, Any] = {
        "signal": signal,
        "best_epoch": trainer.best.epoch,
        "epoch": trainer.epoch,
    }
    if trainer.dist is not None and not trainer.dist.is_main:
        return TrainingInterrupted(
            f"{head} (rank {trainer.dist.rank}; rank 0 saves the weights)", model_path=None, **kw
        )
    if trainer.best.state is None:
        return TrainingInterrupted(
            f"{head}, before any epoch finished; nothing was saved", model_path=None, **kw
        )
    monitor = "validation loss" if trainer.data.monitor == "val_loss" else "training loss"
    best = (
        f"the best weights so far (epoch {trainer.best.epoch}, {monitor} {trainer.best.value:.4f})"
    )
    outputs = trainer.outputs
    try:
        result = _result(
            trainer, trainer.extra(interrupted=signal, cancelled=False, stopped_early=False)
        )
        if outputs is None:
            return TrainingInterrupted(
                f"{head}; {best} are in the exception's result (no output file was given)",
                model_path=None,
                result=result,
                **kw,
            )
        _save(trainer, outputs, result)
    except KeyboardInterrupt as again:
        if outputs is not None and outputs.saved_epoch:
            kept = f"{outputs.model} still holds the checkpoint of epoch {outputs.saved_epoch}"
            path: Path | None = outputs.model
        else:
            kept, path = "nothing was written", None
        return TrainingInterrupted(
            f"{head}; a second {signal_name(again)} stopped the saving of {best}: {kept}",
            model_path=path,
            **kw,
        )
    except TrainingSaveError as exc:
        return TrainingInterrupted(
            f"{head}; {exc}", model_path=exc.fallback_path, result=exc.result, **kw
        )
    path = result.model_path
    return TrainingInterrupted(
        f"{head}; {best} were saved to {path} (marked interrupted); continue training with "
        f"--init-from {path}",
        model_path=path,
        result=result,
        **kw,
    )


# ----------------------------------------------------------------------------- entry point


def _checked_samples(
    samples: Sequence[TrainingSample], config: TrainConfig, init_from: LoadedModel | None
) -> list[TrainingSample]:
    """The samples as a list, after checking they fit ``config`` and ``init_from``."""
    samples = list(samples)
    if not samples:
        raise DataError(
            "no training samples; a training set needs outlines of the same object in at least two "
            "consecutive frames"
        )
    channels = {s.channels for s in samples}
    if len(channels) > 1:
        raise DataError(
            f"the training images have different channel counts {sorted(channels)}; use one"
        )
    n_channels = channels.pop()
    if n_channels != config.model.in_channels:
        raise ConfigError(
            f"the training images have {n_channels} channel(s) but the model is set up for "
            f"in_channels={config.model.in_channels}; set in_channels (CLI: --channels) to "
            f"{n_channels}"
        )
    if init_from is not None:
        _check_architecture(config, init_from)
        if init_from.normalization.mode != config.normalization.mode:
            warnings.warn(
                f"fine-tuning with '{config.normalization.mode}' normalization, but the model was "
                f"trained with '{init_from.normalization.mode}'; the network will see differently "
                "scaled images (config_for_finetune keeps the model's normalization)",
                stacklevel=3,
            )
    return samples


def train_model(
    samples: Sequence[TrainingSample],
    config: TrainConfig,
    *,
    output: str | Path | None,
    init_from: LoadedModel | None = None,
    callbacks: TrainCallbacks | None = None,
    overwrite: bool = False,
    metadata: dict[str, Any] | None = None,
    _checkpoint_interval_s: float = 60.0,
) -> TrainResult:
    """Train (or fine-tune) a ReSCU-Net on training samples.

    Parameters
    ----------
    samples
        Training samples (:func:`~rescunet_ij.io.training_set.read_training_set` or
        :func:`~rescunet_ij.data.samples.samples_from_masks`); a seeded
        ``config.validation_fraction`` of them is held out for validation.
    config
        Training settings. With ``normalization.mode == "max"`` and no ``max_value``, the
        training-set maximum is computed and stored with the model.
    output
        Model file to write (``.rescunet`` recommended), with ``<stem>.history.csv`` and
        ``<stem>.training.png`` (plot) beside it; ``None`` writes nothing. All three are checked
        before training starts and always written together (atomically, as one unit).
    init_from
        A model to fine-tune; its architecture must match ``config.model`` (see
        :func:`config_for_finetune`).
    callbacks
        Progress hooks and cancellation (:class:`TrainCallbacks`).
    overwrite
        Replace an existing model file, history CSV or plot.
    metadata
        JSON-ready values kept in the model's ``extra`` metadata (e.g. ``training_data``, the
        training set's path, which :func:`rescunet_ij.api.finetune` replays).

    Returns
    -------
    TrainResult
        The model with the best weights (monitored loss), the history and the written files.

    Raises
    ------
    OutputExistsError
        If the model file, its history CSV or its plot exists and ``overwrite`` is false
        (checked before training).
    WriteError
        If an output folder cannot be written (checked before training).
    TrainingSaveError
        A :class:`~rescunet_ij.errors.WriteError`: training finished but ``output`` could not be
        written (e.g. the disk filled up); the message says where the weights were saved instead.
    TrainingInterrupted
        On Ctrl-C (SIGINT) or, in the main thread, SIGTERM: the best weights so far were saved
        to ``output`` (metadata ``interrupted``, ``training_complete: false``) when an epoch had
        finished; the message says where.
    ConfigError
        If the samples' channels do not fit ``config.model.in_channels``, ``init_from`` has
        another architecture, the device is unavailable, the device runs out of memory even with
        a batch of 1, or training diverges (non-finite loss).
    DataError
        If there are no samples or they are inconsistent, or ``output`` is a folder.

    Warns
    -----
    UserWarning
        When no validation set is used (the training loss is monitored instead), when the
        batch size is halved after an out-of-memory error, and when a checkpoint cannot be
        written (training goes on).

    Notes
    -----
    While training runs in the main thread, SIGTERM (a cluster job's time limit) is handled like
    Ctrl-C; the previous SIGTERM handler is restored afterwards.

    Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) every process calls this function
    with the same arguments; they train one DistributedDataParallel network together
    (:mod:`rescunet_ij.train.distributed`: NCCL on GPUs, gloo on the CPU), ``config.batch_size``
    being the global batch. Rank 0 alone checks and writes ``output`` and calls the progress
    callbacks; the other ranks return the same model with no paths, and their warnings are
    silenced. The process group is destroyed on return.
    """
    samples = _checked_samples(samples, config, init_from)
    with process_group(config.device) as dist, warnings.catch_warnings():
        if dist is not None and not dist.is_main:
            warnings.simplefilter("ignore")  # rank 0 says it once
        main = dist is None or dist.is_main
        prepare = output is not None and main
        outputs = TrainOutputs.prepare(output, overwrite) if prepare else None
        trainer = Trainer(
            samples,
            config,
            outputs,
            init_from,
            callbacks or TrainCallbacks(),
            _checkpoint_interval_s,
            dist,
            dict(metadata or {}),
        )
        with sigterm_as_interrupt():
            try:
                trainer.setup()
                trainer.run()
                return _finish(trainer)
            except KeyboardInterrupt as exc:
                with signals_deferred(dist is not None and dist.is_main):
                    raise _interrupted(trainer, signal_name(exc)) from None
