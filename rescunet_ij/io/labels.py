"""Label images: one integer per pixel naming the object that covers it (0 = background)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..geometry import polygon_to_mask
from ..types import Outline
from .atomic import atomic_write, check_overwrite

__all__ = ["outlines_to_label_movie", "write_label_movie"]


def _check_shape(shape_tyx: tuple[int, int, int]) -> tuple[int, int, int]:
    if len(shape_tyx) != 3 or any(int(s) < 1 for s in shape_tyx):
        raise DataError(
            f"a label movie shape must be (frames, height, width), all >= 1; got {shape_tyx}"
        )
    return int(shape_tyx[0]), int(shape_tyx[1]), int(shape_tyx[2])


def outlines_to_label_movie(
    outlines: Iterable[Outline], shape_tyx: tuple[int, int, int]
) -> np.ndarray:
    """Rasterise outlines into a ``(T, Y, X)`` uint16 label movie.

    Parameters
    ----------
    outlines
        Outlines to paint (0-based frames; ``z`` and ``c`` are ignored: the label movie has one
        plane per frame).
    shape_tyx
        ``(T, Y, X)`` of the output.

    Returns
    -------
    numpy.ndarray
        uint16 array; each object's pixels hold its ``object_id`` (pixel-centre rule of
        :func:`rescunet_ij.geometry.polygon_to_mask`). Where outlines overlap, **the later outline
        in** ``outlines`` **wins**.

    Raises
    ------
    DataError
        For an outline outside the frame range or an object id above 65535.
    """
    t, h, w = _check_shape(shape_tyx)
    labels = np.zeros((t, h, w), dtype=np.uint16)
    for o in outlines:
        if not 0 <= o.frame < t:
            raise DataError(
                f"the outline of object {o.object_id} is on frame {o.frame + 1}, but the label "
                f"movie has {t} frames"
            )
        if not 1 <= o.object_id <= 65535:
            raise DataError(f"object id {o.object_id} does not fit a 16-bit label image (1..65535)")
        labels[o.frame][polygon_to_mask(o.polygon, (h, w))] = o.object_id
    return labels


def write_label_movie(
    path: str | os.PathLike[str],
    outlines: Iterable[Outline],
    shape_tyx: tuple[int, int, int],
    overwrite: bool = False,
) -> Path:
    """Write outlines as a 16-bit ImageJ TIFF label movie (``TYX``), atomically.

    Parameters
    ----------
    path
        Output ``.tif``.
    outlines
        Outlines to paint (see :func:`outlines_to_label_movie`; later outlines win on overlap).
    shape_tyx
        ``(T, Y, X)`` of the movie.
    overwrite
        Replace an existing file.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    import tifffile

    path = check_overwrite(path, overwrite)
    labels = outlines_to_label_movie(outlines, shape_tyx)
    with atomic_write(path, "wb", overwrite=overwrite) as fh:
        handle = tifffile.FileHandle(fh, mode="wb", name=path.name)
        tifffile.imwrite(handle, labels, imagej=True, metadata={"axes": "TYX"})
    return path
