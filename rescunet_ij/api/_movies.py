"""Movies, outlines and the files a user reads and writes (the API's I/O half)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, DataError
from ..types import Identity, Outline
from ._common import _default_z, _extent, _identity, _index, _movie, _offset, _outlines, _planes

if TYPE_CHECKING:
    import xarray as xr


def read_movie(path: str | Path, *, lazy: bool | None = None) -> xr.DataArray:
    """Read a TIFF (ImageJ hyperstack, plain stack, OME-TIFF) or an OME-Zarr as a movie.

    The movie has dims ``(t, z, c, y, x)``. ``lazy=True`` leaves the pixels on disk (a dask array
    read one plane at a time: memory-mapped for plain TIFFs, through tifffile's Zarr store for
    compressed ones, through ``ome-zarr`` for OME-Zarr folders, which are always lazy);
    ``None`` (default) reads TIFFs over 256 MiB lazily and smaller ones into memory. Propagating
    a lazy movie holds only the planes in use (see :func:`rescunet_ij.io.tiff.read_movie`).
    """
    from ..io.tiff import read_movie as _read

    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"read_movie needs a file path; got {type(path).__name__} {path!r}")
    if lazy is not None and not isinstance(lazy, bool):
        raise DataError(f"lazy must be True, False or None; got {lazy!r}")
    return _read(path, lazy=lazy)


def as_movie(data: Any, dims: str | None = None, **attrs: Any) -> xr.DataArray:
    """Wrap a numpy array or DataArray (our, PyImageJ's or tifffile's dim names) as a movie."""
    from ..io.movie import as_movie as _as

    return _as(data, dims=dims, **attrs)


def write_movie(path: str | Path, movie: Any, *, overwrite: bool = False) -> Path:
    """Write a movie as an ImageJ hyperstack TIFF (calibration kept), atomically."""
    from ..io.tiff import write_movie as _write

    return _write(path, _movie(movie), overwrite=overwrite)


def write_omezarr(path: str | Path, movie: Any, *, overwrite: bool = False) -> Path:
    """Write a movie as an OME-Zarr (NGFF 0.5) image folder, one chunk per plane, atomically.

    A lazy movie is copied chunk by chunk (a big TIFF converts without being read whole); needs
    the ``omezarr`` extra.
    """
    from ..io.omezarr import write_omezarr as _write

    return _write(path, _movie(movie), overwrite=overwrite)


def read_outlines(
    path: str | Path, movie: Any, *, identity: Identity | str = Identity.AUTO
) -> list[Outline]:
    """Read an ImageJ ``RoiSet.zip`` (or ``.roi``) as outlines of ``movie``.

    ``movie`` may also be the dimensions ``(t, z, c, y, x)`` of an image that is not in memory
    (e.g. an ImageJ hyperstack of which only one plane series was sent to the service).
    Object identity follows ``identity`` (see :class:`rescunet_ij.types.Identity`).
    """
    from ..io.rois import read_rois

    t, z, c, y, x = _dims(movie)
    return read_rois(
        path,
        n_frames=t,
        n_slices=z,
        n_channels=c,
        image_shape=(y, x),
        identity=_identity(identity).value,
    )


def write_outlines(
    path: str | Path, outlines: Iterable[Outline], movie: Any, *, overwrite: bool = False
) -> Path:
    """Write outlines as an ImageJ ``RoiSet.zip`` that opens in Fiji's ROI Manager.

    ``movie`` may also be the dimensions ``(t, z, c, y, x)`` of the image the ROIs belong to.
    """
    from ..io.rois import write_rois

    t, z, c, _, _ = _dims(movie)
    # hyperstack=None: positions the way ImageJ itself stores them for this movie's dimensions
    # (c/z/t on true hyperstacks, the stack index on a time-only or z-only stack).
    return write_rois(
        path, _outlines(outlines, movie), n_channels=c, n_slices=z, n_frames=t, overwrite=overwrite
    )


def _dims(movie: Any) -> tuple[int, int, int, int, int]:
    """``(t, z, c, y, x)`` of a movie, or the dimensions given as such a tuple."""
    if isinstance(movie, tuple):
        if len(movie) != 5 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in movie):
            raise DataError(
                f"image dimensions must be 5 positive integers (t, z, c, y, x); got {movie!r}"
            )
        t, z, c, y, x = (int(v) for v in movie)
        return t, z, c, y, x
    return _extent(_movie(movie))


def write_labels(
    path: str | Path, outlines: Iterable[Outline], movie: Any, *, overwrite: bool = False
) -> Path:
    """Write a ``(t, y, x)`` uint16 label movie (pixel value = object id) as an ImageJ TIFF."""
    from ..io.labels import write_label_movie

    mv = _movie(movie)
    t, _, _, y, x = _extent(mv)
    return write_label_movie(path, _outlines(outlines, mv), (t, y, x), overwrite=overwrite)


def outlines_from_labels(
    labels: Any, frames: Iterable[int] | None = None, *, name_prefix: str | None = None
) -> list[Outline]:
    """Outlines from a label movie (pixel value = object id, 0 = background).

    Parameters
    ----------
    labels
        ``(t, y, x)`` or ``(y, x)`` integer array, or the path of a label TIFF.
    frames
        Only these 0-based frames (default: all).
    name_prefix
        Names the outlines ``<prefix>-<id>`` (default: no name, shown as ``object-<id>``).

    Returns
    -------
    list of Outline
        One outline per object and frame (its largest part, holes filled), object id = label.
    """
    from ..io.labels import label_movie_to_outlines

    if isinstance(labels, (str, os.PathLike)):
        labels = read_movie(labels).isel(z=0, c=0).values
    return label_movie_to_outlines(np.asarray(labels), frames, name_prefix=name_prefix)


def synthetic_movie(n_frames: int = 24, shape: tuple[int, int] = (128, 128), **kwargs: Any) -> Any:
    """Simulated nuclei that move and deform, with ground-truth labels (tests, demos, tutorials).

    Returns a :class:`rescunet_ij.sample_data.SyntheticMovie` with ``images`` and ``labels``.
    """
    from ..sample_data import synthetic_movie as _synthetic

    return _synthetic(n_frames, shape, **kwargs)


def mean_iou(outlines: Iterable[Outline], labels: Any, frames: Iterable[int]) -> float:
    """Mean IoU of outlines against a ground-truth label movie over ``frames`` (a miss counts 0)."""
    from ..geometry import iou, polygon_to_mask

    labels = np.asarray(labels)
    by_key = {(o.frame, o.object_id): o for o in outlines}
    empty = np.zeros(labels.shape[1:], bool)
    scores = []
    for t in frames:
        for oid in np.unique(labels[t]):
            if oid == 0:
                continue
            o = by_key.get((t, int(oid)))
            pred = empty if o is None else polygon_to_mask(o.polygon, labels.shape[1:])
            scores.append(iou(pred, labels[t] == oid))
    return float(np.mean(scores)) if scores else float("nan")


def write_overlay(
    path: str | Path,
    movie: Any,
    outlines: Iterable[Outline],
    *,
    channel: int | None = None,
    z: int | None = None,
    frames: Sequence[int] | None = None,
    overwrite: bool = True,
) -> Path:
    """A picture of the outlines over the movie: a contact sheet (.png) or an animation (.gif).

    Object colours are the ones the ROIs have in Fiji. ``frames`` picks the frames of a PNG
    (default: 8 evenly spaced).
    """
    from ..io.atomic import check_overwrite
    from ..report import overlay_gif, overlay_png

    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".gif"):
        raise ConfigError(f"an overlay is a .png or .gif file; got {Path(path).name}")
    check_overwrite(path, overwrite)
    mv = _movie(movie)
    planes = _planes(mv, _index(channel, "channel"), _default_z(mv, _index(z, "z"), "t"), "t")
    t0 = _offset(mv, "t")
    shifted = [_shift_frame(o, -t0) for o in _outlines(outlines, mv)]
    if suffix == ".gif":
        return overlay_gif(planes, shifted, path)
    return overlay_png(
        planes, shifted, path, frames=None if frames is None else [f - t0 for f in frames]
    )


def _shift_frame(o: Outline, by: int) -> Outline:
    if by == 0:
        return o
    return Outline(o.object_id, o.frame + by, o.polygon, z=o.z, c=o.c, name=o.name)


def check_outputs(paths: Iterable[str | Path | None], *, overwrite: bool = False) -> list[Path]:
    """Check before any work that every output can be written (``None`` entries are skipped).

    Raises :class:`~rescunet_ij.errors.OutputExistsError` for an existing file without
    ``overwrite``, :class:`~rescunet_ij.errors.WriteError` for a folder that cannot be written,
    and :class:`ConfigError` when one file is named twice.
    """
    from ..io.atomic import check_writable

    out: list[Path] = []
    for p in paths:
        if p is None:
            continue
        path = Path(p)
        if any(path.resolve() == q.resolve() for q in out):
            raise ConfigError(f"{path} is named as two different outputs; give each its own file")
        out.append(check_writable(path, overwrite))
    return out


def write_text(path: str | Path, text: str, *, overwrite: bool = False) -> Path:
    """Write a small text file (a summary, a settings file) atomically, never half-written."""
    from ..io.atomic import atomic_write_text

    return atomic_write_text(path, text, overwrite=overwrite)


def write_bytes(path: str | Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write a file's bytes (an upload, a model) atomically, never half-written."""
    from ..io.atomic import atomic_write_bytes

    return atomic_write_bytes(path, data, overwrite=overwrite)


def output_group() -> Any:
    """A ``with`` block whose outputs are written as one unit: all files, or none of them.

    Every writer of this API writes atomically; inside the block the final renames wait until the
    block ends without an error (:func:`rescunet_ij.io.atomic.atomic_group`).
    """
    from ..io.atomic import atomic_group

    return atomic_group()
