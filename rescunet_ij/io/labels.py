"""Label images: one integer per pixel naming the object that covers it (0 = background)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..geometry import mask_to_polygon, polygon_to_mask
from ..types import Outline
from .atomic import atomic_write, check_overwrite

__all__ = [
    "iter_label_frames",
    "label_movie_to_outlines",
    "outlines_to_label_movie",
    "write_label_movie",
]


def _check_shape(shape_tyx: tuple[int, int, int]) -> tuple[int, int, int]:
    if len(shape_tyx) != 3 or any(int(s) < 1 for s in shape_tyx):
        raise DataError(
            f"a label movie shape must be (frames, height, width), all >= 1; got {shape_tyx}"
        )
    return int(shape_tyx[0]), int(shape_tyx[1]), int(shape_tyx[2])


def _by_frame(outlines: Iterable[Outline], t: int) -> dict[int, list[Outline]]:
    """The outlines of each frame, in the order given; checks frames and ids first."""
    frames: dict[int, list[Outline]] = {}
    for o in outlines:
        if not 0 <= o.frame < t:
            raise DataError(
                f"the outline of object {o.object_id} is on frame {o.frame + 1}, but the label "
                f"movie has {t} frames"
            )
        if not 1 <= o.object_id <= 65535:
            raise DataError(f"object id {o.object_id} does not fit a 16-bit label image (1..65535)")
        frames.setdefault(o.frame, []).append(o)
    return frames


def _paint(plane: np.ndarray, outlines: Iterable[Outline]) -> np.ndarray:
    """Paint outlines into one label plane (later outlines win), each within its bounding box."""
    h, w = plane.shape
    for o in outlines:
        poly = np.asarray(o.polygon, dtype=np.float64)
        if poly.ndim != 2 or len(poly) < 3:
            continue
        x0 = max(int(np.floor(poly[:, 0].min())) - 1, 0)
        y0 = max(int(np.floor(poly[:, 1].min())) - 1, 0)
        x1 = min(int(np.ceil(poly[:, 0].max())) + 1, w)
        y1 = min(int(np.ceil(poly[:, 1].max())) + 1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        # An integer shift keeps the pixel-centre rule exact: the same pixels as a full plane.
        inside = polygon_to_mask(poly - [x0, y0], (y1 - y0, x1 - x0))
        plane[y0:y1, x0:x1][inside] = o.object_id
    return plane


def iter_label_frames(
    outlines: Iterable[Outline], shape_tyx: tuple[int, int, int]
) -> Iterator[np.ndarray]:
    """The frames of the label movie of ``outlines``, one ``(Y, X)`` uint16 plane at a time.

    Every outline is checked before the first frame is made (see
    :func:`outlines_to_label_movie`), so a writer never stops half-way on bad input.
    """
    t, h, w = _check_shape(shape_tyx)
    frames = _by_frame(outlines, t)

    def planes() -> Iterator[np.ndarray]:
        for f in range(t):
            yield _paint(np.zeros((h, w), dtype=np.uint16), frames.get(f, ()))

    return planes()


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
    for f, plane in enumerate(iter_label_frames(outlines, (t, h, w))):
        labels[f] = plane
    return labels


BIGTIFF_BYTES = 2**32 - 2**25
"""Label movies larger than this are written as BigTIFF (classic TIFF ends at 4 GiB)."""


def write_label_movie(
    path: str | os.PathLike[str],
    outlines: Iterable[Outline],
    shape_tyx: tuple[int, int, int],
    overwrite: bool = False,
) -> Path:
    """Write outlines as a 16-bit ImageJ TIFF label movie (``TYX``), atomically, frame by frame.

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

    Notes
    -----
    One TIFF page per frame is made and written at a time, so only one frame is ever in memory.
    Up to 4 GiB of labels the file is an ImageJ hyperstack (as Fiji writes it); beyond, it is a
    BigTIFF (Fiji opens those through Bio-Formats), since ImageJ's own TIFF format cannot grow
    past 4 GiB.
    """
    import tifffile

    path = check_overwrite(path, overwrite)
    t, h, w = _check_shape(shape_tyx)
    frames = iter_label_frames(outlines, (t, h, w))  # checks every outline first
    big = t * h * w * 2 > BIGTIFF_BYTES
    with atomic_write(path, "wb", overwrite=overwrite) as fh:
        handle = tifffile.FileHandle(fh, mode="wb", name=path.name)
        with tifffile.TiffWriter(handle, bigtiff=big, imagej=not big) as tw:
            tw.write(
                frames,
                shape=(t, h, w),
                dtype=np.uint16,
                metadata={"axes": "TYX"},
                photometric="minisblack",
            )
    return path


def label_movie_to_outlines(
    labels: np.ndarray, frames: Iterable[int] | None = None, *, name_prefix: str | None = None
) -> list[Outline]:
    """Outlines of every object in a label movie (pixel value = object id, 0 = background).

    Parameters
    ----------
    labels
        ``(T, Y, X)`` (or one ``(Y, X)`` frame) of non-negative integers.
    frames
        Only these 0-based frames (default: all).
    name_prefix
        Names outlines ``<prefix>-<id>``; ``None`` leaves them unnamed (``object-<id>`` in ImageJ).

    Returns
    -------
    list[Outline]
        Sorted by frame and id; each object's largest 8-connected part, holes filled
        (:func:`rescunet_ij.geometry.mask_to_polygon`), so the outline covers its pixels.

    Raises
    ------
    DataError
        If ``labels`` is not a 2-D/3-D integer array or holds negative values.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.ndim != 3 or labels.dtype.kind not in "iub":
        raise DataError(
            f"a label image must be a (frames, height, width) integer array; got shape "
            f"{labels.shape} and dtype {labels.dtype}"
        )
    if labels.size and labels.min() < 0:
        raise DataError("a label image holds object ids >= 1 and 0 for background; found negatives")
    out = []
    for t in range(labels.shape[0]) if frames is None else frames:
        for oid in np.unique(labels[t]):
            if oid == 0:
                continue
            poly = mask_to_polygon(labels[t] == oid)
            if len(poly) >= 3:
                name = f"{name_prefix}-{int(oid)}" if name_prefix else None
                out.append(Outline(int(oid), int(t), poly, name=name))
    return out
