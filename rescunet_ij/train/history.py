"""The training history beside a model: a CSV table and a PNG plot, both written atomically."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write, atomic_write_bytes

__all__ = ["HISTORY_FIELDS", "history_paths", "plot_history", "write_history_csv"]

HISTORY_FIELDS = ("epoch", "train_loss", "train_iou", "val_loss", "val_iou", "lr", "seconds")
"""The columns of the history CSV, in order (one row per epoch)."""


def history_paths(model_path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The history files that belong to a model file.

    Returns ``(<stem>.history.csv, <stem>.training.png)`` in the model's folder.
    """
    p = Path(model_path)
    return p.with_name(f"{p.stem}.history.csv"), p.with_name(f"{p.stem}.training.png")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def write_history_csv(
    history: Sequence[dict[str, Any]], path: str | os.PathLike[str], *, overwrite: bool = True
) -> Path:
    """Write one row per epoch; missing values (no validation set) are empty cells.

    Parameters
    ----------
    history
        Per-epoch dicts with the keys of :data:`HISTORY_FIELDS` (others are appended as columns).
    path
        The CSV file (replaced atomically).
    overwrite
        If false and ``path`` exists, raise :class:`~rescunet_ij.errors.OutputExistsError`.

    Returns
    -------
    Path
        ``path``.
    """
    fields = list(HISTORY_FIELDS)
    for rec in history:
        fields += [k for k in rec if k not in fields]
    with atomic_write(path, "w", newline="", overwrite=overwrite) as fh:
        writer = csv.writer(fh)
        writer.writerow(fields)
        for rec in history:
            writer.writerow([_cell(rec.get(k)) for k in fields])
    return Path(path)


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for rec in history:
        v = rec.get(key)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            xs.append(int(rec["epoch"]))
            ys.append(float(v))
    return xs, ys


def plot_history(
    history: Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    *,
    best_epoch: int | None = None,
    title: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Plot loss and IoU per epoch (training and validation) to a PNG.

    Uses matplotlib's Agg canvas directly: no pyplot, no global backend change, no display needed.

    Parameters
    ----------
    history
        Per-epoch dicts (:data:`HISTORY_FIELDS`).
    path
        The PNG file (replaced atomically).
    best_epoch
        Marked with a dashed line when given.
    title
        Figure title.
    overwrite
        If false and ``path`` exists, raise :class:`~rescunet_ij.errors.OutputExistsError`.

    Returns
    -------
    Path
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_iou = fig.subplots(1, 2)
    for ax, metric, label in ((ax_loss, "loss", "weighted cross-entropy"), (ax_iou, "iou", "IoU")):
        for split, style in (("train", "-o"), ("val", "-s")):
            xs, ys = _series(history, f"{split}_{metric}")
            if xs:
                ax.plot(
                    xs,
                    ys,
                    style,
                    markersize=3,
                    label="training" if split == "train" else "validation",
                )
        if best_epoch:
            ax.axvline(
                best_epoch,
                color="grey",
                linestyle="--",
                linewidth=1,
                label=f"best (epoch {best_epoch})",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    ax_iou.set_ylim(0, 1.02)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue(), overwrite=overwrite)
