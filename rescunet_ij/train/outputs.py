"""The files a training run writes: the model, ``<stem>.history.csv`` and ``<stem>.training.png``.

All three are checked before any training work (:meth:`TrainOutputs.prepare`: the never-overwrite
rule and a real write probe), and every save writes them inside one
:func:`~rescunet_ij.io.atomic.atomic_group`, so the history beside a model always belongs to it.
When the final save fails after all (the disk filled up while training ran),
:meth:`TrainOutputs.save_fallback` puts the weights in the temporary folder instead of losing them.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..config import TrainConfig
from ..io.atomic import atomic_group, check_writable
from ..io.checkpoint import save_model
from .history import history_paths, plot_history, write_history_csv

__all__ = ["TrainOutputs"]


@dataclass
class TrainOutputs:
    """The output files of one training run and which of them this run has written.

    Attributes
    ----------
    model
        The model file.
    history_csv, history_png
        ``<stem>.history.csv`` and ``<stem>.training.png`` beside it.
    overwrite
        Whether files that existed before the run may be replaced.
    saved_epoch
        The best epoch whose weights this run last wrote to ``model`` (0: none yet), so a
        checkpoint is written only when there is something new to keep.
    """

    model: Path
    history_csv: Path
    history_png: Path
    overwrite: bool
    saved_epoch: int = 0
    # Files this run wrote itself: later checkpoints may replace them even without overwrite.
    _written: set[Path] = field(default_factory=set, repr=False)

    @classmethod
    def prepare(cls, output: str | os.PathLike[str], overwrite: bool) -> TrainOutputs:
        """Check all three outputs before training (overwrite rule and disk), creating folders.

        Parameters
        ----------
        output
            The model file.
        overwrite
            Whether existing files may be replaced.

        Returns
        -------
        TrainOutputs
            The checked paths.

        Raises
        ------
        OutputExistsError
            If one of the files exists and ``overwrite`` is false.
        WriteError
            If the folder cannot be created or written to.
        DataError
            If ``output`` is a folder.
        """
        model = check_writable(output, overwrite)
        csv_path, png_path = history_paths(model)
        check_writable(csv_path, overwrite)
        check_writable(png_path, overwrite)
        return cls(model, csv_path, png_path, overwrite)

    def _replace(self, path: Path) -> bool:
        return self.overwrite or path in self._written

    def write(
        self,
        network: nn.Module,
        config: TrainConfig,
        *,
        history: list[dict[str, Any]],
        extra: dict[str, Any],
        plot: bool,
    ) -> None:
        """Write the model and its history CSV (and with ``plot`` the PNG) as one unit.

        Parameters
        ----------
        network
            The weights to save (on any device).
        config
            The effective training settings (architecture and normalisation are taken from it).
        history
            The per-epoch records; stored in the model and written as the CSV.
        extra
            Model metadata; ``extra["best_epoch"]`` becomes :attr:`saved_epoch`.
        plot
            Also draw the training curve (the final save; checkpoints skip it to stay cheap).

        Raises
        ------
        WriteError
            If a file cannot be written; then none of them changed.
        OutputExistsError
            If a file appeared meanwhile and may not be replaced; then none of them changed.
        """
        files = [self.model, self.history_csv] + ([self.history_png] if plot else [])
        best_epoch = int(extra.get("best_epoch", 0))
        with atomic_group():
            save_model(
                self.model,
                network,
                config.model,
                config.normalization,
                train_config=config,
                history=history,
                extra=extra,
                overwrite=self._replace(self.model),
            )
            write_history_csv(history, self.history_csv, overwrite=self._replace(self.history_csv))
            if plot:
                plot_history(
                    history,
                    self.history_png,
                    best_epoch=best_epoch,
                    title=f"{self.model.name} (best epoch {best_epoch})",
                    overwrite=self._replace(self.history_png),
                )
        self._written.update(files)
        self.saved_epoch = best_epoch

    def fallback_path(self) -> Path:
        """A new file in the temporary folder, named after the model, for homeless weights."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        suffix = self.model.suffix or ".rescunet"
        name = f"{self.model.stem}.unsaved-{stamp}-{os.getpid()}{suffix}"
        return Path(tempfile.gettempdir()) / name

    def save_fallback(
        self,
        network: nn.Module,
        config: TrainConfig,
        *,
        history: list[dict[str, Any]],
        extra: dict[str, Any],
    ) -> Path:
        """Save the weights (history included in the metadata) to :meth:`fallback_path`, atomically.

        Returns
        -------
        Path
            The file written.

        Raises
        ------
        WriteError, OutputExistsError
            If that fails too.
        """
        return save_model(
            self.fallback_path(),
            network,
            config.model,
            config.normalization,
            train_config=config,
            history=history,
            extra=extra,
            overwrite=False,
        )
