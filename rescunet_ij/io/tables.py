"""Tables people open in a spreadsheet: the per-object, per-frame propagation report (CSV)."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

from ..types import FrameResult
from .atomic import atomic_write

__all__ = ["PROPAGATION_COLUMNS", "write_propagation_table"]

PROPAGATION_COLUMNS = (
    "frame",
    "object_id",
    "status",
    "confidence",
    "prompt_iou",
    "area_px",
    "shift_y",
    "shift_x",
    "field_shift_y",
    "field_shift_x",
    "reason",
)
"""Columns of the propagation report; ``frame`` is 1-based, as ImageJ numbers frames.

``shift_y``/``shift_x``: how far (pixels, down/right) the object's previous outline was moved by
motion compensation before it was looked for; ``field_shift_*``: the whole field's estimated
motion in that frame; ``reason``: why an object is doubtful or lost."""


def write_propagation_table(
    path: str | os.PathLike[str], frames: Iterable[FrameResult], *, overwrite: bool = False
) -> Path:
    """Write one row per object and propagated frame, atomically.

    Parameters
    ----------
    path
        The CSV file.
    frames
        The propagation's frame results (0-based frames; written 1-based).
    overwrite
        Replace an existing file.

    Returns
    -------
    Path
        The written file.
    """
    with atomic_write(path, "w", overwrite=overwrite, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(PROPAGATION_COLUMNS)
        for fr in frames:
            for ob in fr.objects:
                area = ob.mask.area if ob.mask is not None else 0
                writer.writerow(
                    [
                        fr.frame + 1,
                        ob.object_id,
                        ob.status.value,
                        f"{ob.confidence:.4f}",
                        f"{ob.prompt_iou:.4f}",
                        area,
                        *ob.shift,
                        *fr.shift,
                        ob.reason or "",
                    ]
                )
    return Path(path)
