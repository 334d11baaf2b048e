"""TIFF movies: ImageJ hyperstacks, OME-TIFF and plain stacks in, ImageJ hyperstacks out.

:func:`read_movie` gives the normalised movie of :mod:`rescunet_ij.io.movie` (dims ``t, z, c,
y, x`` and calibration attrs); it refuses truncated files (the ImageJ header announces more
images than the file holds) and keeps tifffile's log records off the terminal (:class:`TiffLog`).
:func:`write_movie` writes an ImageJ hyperstack with the calibration, atomically.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import DataError
from ..types import AXES
from .atomic import atomic_write, check_overwrite
from .movie import as_movie, is_lazy

__all__ = ["TiffLog", "read_movie", "write_movie"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_FIJI_SAVE_HINT = "in Fiji: File > Save As > Tiff..."


# --------------------------------------------------------------------------------------- reading


def _unescape(text: Any) -> str | None:
    r"""ImageJ escapes non-ASCII characters in its description as ``\uXXXX``."""
    if text is None:
        return None
    s = str(text)
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), s)


def _escape(text: str) -> str:
    return "".join(c if ord(c) < 128 else f"\\u{ord(c):04X}" for c in text)


def _xresolution(page: Any) -> tuple[float | None, int | None]:
    tag = page.tags.get("XResolution")
    if tag is None:
        return None, None
    value = tag.value
    try:
        xres = float(value[0]) / float(value[1]) if isinstance(value, tuple) else float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None, None
    unit_tag = page.tags.get("ResolutionUnit")
    resunit = int(unit_tag.value) if unit_tag is not None else None
    return (xres if np.isfinite(xres) and xres > 0 else None), resunit


def _ome_calibration(xml: str) -> dict[str, Any]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {}
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "Pixels":
            a = el.attrib
            out: dict[str, Any] = {}
            if "PhysicalSizeX" in a:
                out["pixel_size"] = a["PhysicalSizeX"]
                out["unit"] = a.get("PhysicalSizeXUnit", "µm")
            if "PhysicalSizeZ" in a:
                out["z_spacing"] = a["PhysicalSizeZ"]
            if "TimeIncrement" in a:
                out["frame_interval"] = a["TimeIncrement"]
                out["time_unit"] = a.get("TimeIncrementUnit", "s")
            return out
    return {}


def _calibration(tif: Any) -> dict[str, Any]:
    page = tif.pages.first
    xres, resunit = _xresolution(page)
    ij = tif.imagej_metadata
    out: dict[str, Any] = {}
    if ij is not None:
        unit = _unescape(ij.get("unit"))
        if unit and unit.strip().lower() not in ("pixel", "pixels", "none"):
            out["unit"] = unit
            if xres:
                out["pixel_size"] = 1.0 / xres
            if ij.get("spacing") is not None:
                out["z_spacing"] = ij.get("spacing")
        finterval = ij.get("finterval")
        if finterval is None and ij.get("fps"):
            try:
                finterval = 1.0 / float(ij["fps"])
            except (TypeError, ValueError, ZeroDivisionError):
                finterval = None
        if finterval:
            out["frame_interval"] = finterval
            out["time_unit"] = _unescape(ij.get("tunit")) or "sec"
        return out
    if tif.is_ome and tif.ome_metadata:
        out = _ome_calibration(tif.ome_metadata)
        if out:
            return out
    if xres and resunit == 3:  # pixels per centimetre (TIFF ResolutionUnit CENTIMETER)
        out["pixel_size"] = 1e4 / xres
        out["unit"] = "µm"
    return out


def _check_tiff_path(path: Path) -> None:
    if not path.exists():
        raise DataError(
            f"no such file: {path}; check the path (and the working folder {os.getcwd()})"
        )
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the path of a TIFF movie file inside it")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise DataError(f"cannot open {path}: {exc}") from exc
    if head not in _TIFF_MAGIC:
        raise DataError(
            f"{path.name} is not a TIFF file; rescunet-ij reads movies as TIFF hyperstacks. "
            f"Open it in Fiji and save it as TIFF ({_FIJI_SAVE_HINT})"
        )


# ------------------------------------------------------------------------ tifffile's log records

_PAGE_LIST_BROKEN = re.compile(
    r"invalid page offset|invalid offset to first page|corrupted tag list"
)
_REPR_PREFIX = re.compile(r"^(<[^>]*>\s*)+")


class TiffLog(logging.Filter):
    """Keep tifffile's log records off the terminal while rescunet-ij reads a TIFF.

    tifffile reports problems it works around (a damaged ImageJ header, a page offset past the end
    of the file) through :mod:`logging` (logger ``"tifffile"``) instead of raising; with logging
    not configured Python prints them raw on stderr, into the CLI's output. Used as a context
    manager, this filter collects the records so the reader can turn them into a
    :class:`~rescunet_ij.errors.DataError` or a warning. Records of every thread are collected
    while it is active, because tifffile decodes pages in worker threads. Shared with
    :mod:`rescunet_ij.io.training_set`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        """Collect the record and keep it from every handler."""
        self.records.append(record)
        return False

    def __enter__(self) -> TiffLog:
        logging.getLogger("tifffile").addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("tifffile").removeFilter(self)

    def messages(self) -> list[str]:
        """The warnings and errors recorded, without tifffile's object prefixes, each once."""
        out: list[str] = []
        for rec in self.records:
            if rec.levelno >= logging.WARNING:
                text = _REPR_PREFIX.sub("", rec.getMessage()).strip()
                if text and text not in out:
                    out.append(text)
        return out

    @property
    def page_list_broken(self) -> bool:
        """Whether tifffile met a page offset past the end of the file or a cut directory."""
        return any(_PAGE_LIST_BROKEN.search(rec.getMessage()) for rec in self.records)


# ---------------------------------------------------------------------------- truncated files


@dataclass(frozen=True)
class _ImageJHeader:
    """What the ImageJ description of a TIFF announces."""

    images: int  # TIFF images (pages) the file should hold; 0 when the header is invalid
    parts: str  # e.g. "20 frames x 2 channels"
    fields: str  # the raw numbers, e.g. "images=40 frames=20 channels=2"

    @classmethod
    def from_tiff(cls, tif: Any) -> _ImageJHeader | None:
        meta = tif.imagej_metadata
        if not meta:
            return None
        keys = ("images", "frames", "slices", "channels")
        fields = " ".join(f"{k}={meta[k]}" for k in keys if k in meta)
        try:
            images, frames, slices, channels = (int(meta.get(k, 1)) for k in keys)
        except (TypeError, ValueError):
            return cls(0, "", fields)
        if min(images, frames, slices, channels) < 1:
            return cls(0, "", fields)
        # RGB pages, or Bio-Formats' separate samples, hold all channels in one page.
        shaped = tuple(getattr(tif.pages.first, "shaped", (1, 1, 1, 1, 1)))
        in_page = channels > 1 and channels in (shaped[0], shaped[-1])
        planes = frames * slices * (1 if in_page else channels)
        named = [(frames, "frames"), (slices, "slices"), (1 if in_page else channels, "channels")]
        parts = " x ".join(f"{n} {what}" for n, what in named if n > 1)
        return cls(planes if planes > 1 else images, parts, fields)

    def describe(self) -> str:
        """``"40 images (20 frames x 2 channels)"``."""
        return f"{self.images} images" + (f" ({self.parts})" if self.parts else "")


def _complete_images(tif: Any, wanted: int | None) -> tuple[int, bool]:
    """Count the images whose data lie wholly inside the file, from the start.

    Parameters
    ----------
    tif
        The open ``tifffile.TiffFile``.
    wanted
        The number of images the ImageJ header announces (None without a header).

    Returns
    -------
    count : int
        Complete images (at most ``wanted``).
    past_end : bool
        Whether some image data reach past the end of the file.
    """
    size = int(tif.filehandle.size)
    pages: list[Any] = []
    with contextlib.suppress(*_DECODE_ERRORS):  # a cut page list just ends (tifffile logs it)
        pages.extend(tif.pages)
    complete, past_end = 0, False
    for page in pages:
        spans = list(zip(page.dataoffsets, page.databytecounts))
        if not spans or any(o + n > size for o, n in spans):
            past_end = bool(spans)
            break
        complete += 1
    if wanted is None:
        return complete, past_end
    first = tif.pages.first
    stored = sum(first.databytecounts)
    if first.compression == 1 and len(first.dataoffsets) == 1 and stored > 0:
        # ImageJ stores the pixels of all images in one block after the first page directory;
        # the other directories follow the block (and are lost first when the file is cut).
        start = first.dataoffsets[0]
        if all(p.offset >= start + wanted * stored for p in pages[1:]):
            block = (size - start) // stored
            past_end = past_end or block < wanted
            complete = max(complete, block)
    return min(complete, wanted), past_end


_CUT_OFF = (
    "the file was probably cut off while copying or saving -- copy it again or re-save it in "
    "Fiji (File > Save As > Tiff...)"
)


def _truncation_error(
    tif: Any, header: _ImageJHeader | None, name: str, log: TiffLog
) -> DataError | None:
    """A DataError when the file holds fewer images than its header or page list announce."""
    if header is not None and header.images > 0:
        readable, past_end = _complete_images(tif, header.images)
        if readable >= header.images:
            return None
        if past_end or log.page_list_broken:
            return DataError(
                f"{name} is truncated: its ImageJ header announces {header.describe()} but only "
                f"{readable} can be read; {_CUT_OFF}"
            )
        return DataError(
            f"{name} does not match its ImageJ header: the header announces {header.describe()} "
            f"but the file holds {readable}; another program may have changed the file -- open "
            f"it in Fiji, check Image > Properties... and save it again ({_FIJI_SAVE_HINT})"
        )
    readable, past_end = _complete_images(tif, None)
    if past_end:
        return DataError(
            f"{name} is truncated: the file ends inside the data of image {readable + 1}, so "
            f"only {readable} complete image(s) can be read; {_CUT_OFF}"
        )
    if log.page_list_broken:
        return DataError(
            f"{name} is truncated: the file ends after image {readable} but its list of images "
            f"goes on; {_CUT_OFF}"
        )
    return None


# ------------------------------------------------------------------------------------ read_movie

_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, struct.error, IndexError, KeyError, TypeError, RuntimeError,
)  # fmt: skip


LAZY_BYTES = 256 * 2**20
"""With ``lazy=None``, :func:`read_movie` reads a TIFF lazily when its pixels exceed this size."""


class _MappedPlanes:
    """The pixels of an uncompressed, contiguous TIFF series, memory-mapped per read.

    Indexed by dask, one chunk (one TIFF page) at a time: each read maps the file, copies the
    requested pixels and unmaps it again, so the pages read do not stay resident (a mapping kept
    open would count every page ever touched in the process's memory).
    """

    def __init__(self, path: Path, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.offset = path, int(offset)
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        mapped = np.memmap(self.path, self.dtype, mode="r", offset=self.offset, shape=self.shape)
        try:
            return np.array(mapped[key])  # a copy: the mapping is closed below
        finally:
            mm = getattr(mapped, "_mmap", None)
            del mapped
            if mm is not None:
                with contextlib.suppress(BufferError):
                    mm.close()


def _lazy_pixels(path: Path, tif: Any, series: Any) -> Any:
    """A dask array over series 0, one chunk per TIFF page, nothing read yet.

    Uncompressed contiguous data (what ImageJ and tifffile write by default) is memory-mapped;
    anything else (compressed, tiled, OME-TIFF with scattered pages) goes through tifffile's Zarr
    store, which decodes one page per chunk.
    """
    import dask.array as da

    shape = tuple(int(v) for v in series.shape)
    page_shape = tuple(int(v) for v in series.keyframe.shape)
    page_ndim = len(page_shape) if shape[-len(page_shape) :] == page_shape else 2
    chunks = (1,) * (len(shape) - page_ndim) + shape[len(shape) - page_ndim :]
    if series.dataoffset is not None and int(series.keyframe.compression) == 1:
        dtype = np.dtype(series.dtype).newbyteorder(tif.byteorder)
        mapped = _MappedPlanes(path, series.dataoffset, shape, dtype)
        arr = da.from_array(mapped, chunks=chunks, lock=False, asarray=False, name=False)
        return arr.astype(np.dtype(series.dtype).newbyteorder("="))
    import zarr

    store = series.aszarr(level=0)
    z = zarr.open_array(store, mode="r")
    return da.from_zarr(z, lock=True, name=False)


def _read_tiff(
    path: Path, log: TiffLog, lazy: bool | None = None
) -> tuple[Any, str, int, dict[str, Any]]:
    """Pixels, tifffile's axes codes, the photometric tag and the calibration of series 0.

    The pixels are a numpy array, or a dask array when read lazily (``lazy``, or ``None`` and
    more than :data:`LAZY_BYTES` of pixels). A lazy read checks for truncation at once, from the
    page list, since no page is decoded here.
    """
    import tifffile

    tif = tifffile.TiffFile(path)
    keep_open = False
    try:
        if not tif.series:
            raise DataError(
                f"{path.name} holds no image data; save the movie again ({_FIJI_SAVE_HINT})"
            )
        series = tif.series[0]
        header = _ImageJHeader.from_tiff(tif)
        if lazy is None:
            lazy = int(series.nbytes) > LAZY_BYTES
        if lazy:
            error = _truncation_error(tif, header, path.name, log)
            if error is not None:
                raise error
            data = _lazy_pixels(path, tif, series)
            keep_open = series.dataoffset is None or int(series.keyframe.compression) != 1
            if header is not None and header.images == 0:
                _warn_invalid_header(path, tif, header, log)
            photometric = int(getattr(series.keyframe, "photometric", 1) or 1)
            return data, str(series.axes).upper(), photometric, _calibration(tif)
        return _read_eager(path, tif, series, header, log)
    finally:
        if not keep_open:  # the Zarr store of a lazy compressed movie reads through tif
            tif.close()


def _warn_invalid_header(path: Path, tif: Any, header: _ImageJHeader, log: TiffLog) -> None:
    log.records.clear()  # the warning below says it all
    warnings.warn(
        f"{path.name}: ignored its invalid ImageJ header ({header.fields}) and read its "
        f"{len(tif.pages)} image(s) as frames; if they are z-planes or channels, set "
        "the order in Fiji (Image > Hyperstacks > Stack to Hyperstack...) and save again",
        stacklevel=5,
    )


def _read_eager(
    path: Path, tif: Any, series: Any, header: _ImageJHeader | None, log: TiffLog
) -> tuple[np.ndarray, str, int, dict[str, Any]]:
    import tifffile

    try:
        data = series.asarray()
    except (tifffile.TiffFileError, *_DECODE_ERRORS) as exc:
        error = _truncation_error(tif, header, path.name, log)
        if error is not None:
            raise error from exc
        raise
    dropped = header is not None and series.kind in ("generic", "uniform")
    if dropped or log.page_list_broken or tuple(data.shape) != tuple(series.shape):
        error = _truncation_error(tif, header, path.name, log)
        if error is not None:
            raise error
    if header is not None and header.images == 0:
        _warn_invalid_header(path, tif, header, log)
    photometric = int(getattr(series.keyframe, "photometric", 1) or 1)
    return data, str(series.axes).upper(), photometric, _calibration(tif)


def read_movie(path: str | os.PathLike[str], *, lazy: bool | None = None) -> xr.DataArray:
    """Read a TIFF movie (ImageJ hyperstack, OME-TIFF or plain multi-page TIFF) or an OME-Zarr.

    Parameters
    ----------
    path
        The TIFF file, or an OME-Zarr (NGFF) image folder (``*.zarr``, read lazily by
        :func:`rescunet_ij.io.omezarr.read_omezarr`).
    lazy
        Read the pixels on demand (a dask array, one chunk per TIFF page) instead of into
        memory: uncompressed contiguous TIFFs through memory mapping, compressed or scattered
        ones (OME-TIFF, tiled) through tifffile's Zarr store. ``None`` (default): lazily when
        the pixels exceed :data:`LAZY_BYTES` (256 MiB), in memory otherwise. Truncated files are
        refused either way, at once.

    Returns
    -------
    xarray.DataArray
        The movie with dims ``("t", "z", "c", "y", "x")`` (see :func:`as_movie`). The first
        image series is read. Axes map as: T, and tifffile's generic Q and I (plain stacks) -> t;
        Z -> z; C and S (RGB samples, ``attrs["rgb"] = True``) -> c. Calibration comes from the
        ImageJ metadata (``unit``, ``spacing``, ``finterval``, ``tunit``) and the XResolution
        tag (``pixel_size = 1 / XResolution`` when a unit is set), or from OME-XML.

    Raises
    ------
    DataError
        If the file does not exist, is not a TIFF, cannot be decoded, is truncated (it holds
        fewer images than its ImageJ header or its page list announce), or has extra axes that
        cannot be mapped to t, z, c.

    Warns
    -----
    UserWarning
        When tifffile reported a problem it worked around (its log records are caught and never
        printed raw), e.g. an invalid ImageJ header that was ignored.
    """
    import tifffile

    path = Path(path)
    from .omezarr import is_omezarr, read_omezarr

    if is_omezarr(path):
        return read_omezarr(path)
    _check_tiff_path(path)
    try:
        with TiffLog() as log:
            data, axes, photometric, attrs = _read_tiff(path, log, lazy)
    except DataError:
        raise
    except MemoryError as exc:
        raise DataError(
            f"{path.name} is too large to load into memory; crop it in Fiji first"
        ) from exc
    except (tifffile.TiffFileError, *_DECODE_ERRORS) as exc:
        raise DataError(
            f"cannot read {path.name}: {exc}. The file may be truncated or corrupted; "
            f"open it in Fiji and save it again ({_FIJI_SAVE_HINT})"
        ) from exc
    data, keep, rgb = _tiff_axes_to_movie(data, axes, photometric, path.name)
    attrs.update(source=str(path), rgb=rgb)
    movie = as_movie(data, dims=keep, **attrs)
    if log.messages():
        t, z, c, y, x = (int(movie.sizes[d]) for d in AXES)
        warnings.warn(
            f"{path.name}: the TIFF reader reported: {'; '.join(log.messages())}. It was read "
            f"as {t} frame(s) x {z} z-plane(s) x {c} channel(s) of {x}x{y} pixels; if that looks "
            f"wrong, open it in Fiji and save it again ({_FIJI_SAVE_HINT})",
            stacklevel=2,
        )
    return movie


def _tiff_axes_to_movie(
    data: Any, axes: str, photometric: int, name: str
) -> tuple[Any, list[str], bool]:
    """Map tifffile's axes codes to ours; drop unknown singleton axes, refuse the others."""
    codes = {"T": "t", "Q": "t", "I": "t", "Z": "z", "C": "c", "S": "c", "Y": "y", "X": "x"}
    by_target: dict[str, list[int]] = {}
    squeeze: list[int] = []
    for i, ax in enumerate(axes):
        target = codes.get(ax)
        if target is None:
            if data.shape[i] == 1:
                squeeze.append(i)
                continue
            raise DataError(
                f"{name} has an axis {ax!r} of size {data.shape[i]} (axes {axes}) that is "
                "not time, z, channel, y or x; make it a time or z axis in Fiji "
                "(Image > Hyperstacks > Re-order Hyperstack...) and save again"
            )
        by_target.setdefault(target, []).append(i)
    chosen: dict[int, str] = {}
    for target, idx in by_target.items():
        big = [i for i in idx if data.shape[i] > 1]
        if len(big) > 1:
            raise DataError(
                f"{name} has axes {axes} with shape {data.shape}: two axes of size > 1 "
                f"both mean {target!r}; combine or split them in Fiji first"
            )
        keep_i = big[0] if big else idx[0]
        chosen[keep_i] = target
        squeeze.extend(i for i in idx if i != keep_i)
    rgb = any(axes[i] == "S" and data.shape[i] > 1 for i in chosen) and photometric == 2
    if squeeze:
        data = data.squeeze(axis=tuple(sorted(squeeze)))
    return data, [chosen[i] for i in sorted(chosen)], rgb


# --------------------------------------------------------------------------------------- writing


def _imagej_dtype(data: np.ndarray) -> np.ndarray:
    """Convert to a type ImageJ opens (8-bit, 16-bit, 32-bit float)."""
    if data.dtype in (np.uint8, np.uint16, np.float32):
        return data
    if data.dtype == bool:
        return data.astype(np.uint8) * np.uint8(255)  # ImageJ's binary convention
    if data.dtype.kind in "iu" and data.size and data.min() >= 0 and data.max() <= 65535:
        return data.astype(
            np.uint8 if data.max() <= 255 and data.dtype.itemsize == 1 else np.uint16
        )
    converted = data.astype(np.float32)
    if data.dtype.kind in "iuf" and data.dtype.itemsize >= 4:
        with np.errstate(invalid="ignore"):
            exact = np.array_equal(converted, data, equal_nan=data.dtype.kind == "f")
        if not exact:
            warnings.warn(
                f"writing {data.dtype} data as 32-bit float (ImageJ's widest pixel type) "
                "rounds some values",
                stacklevel=3,
            )
    return converted


def write_movie(path: str | os.PathLike[str], movie: Any, overwrite: bool = False) -> Path:
    """Write a movie as an ImageJ hyperstack TIFF (atomically).

    Parameters
    ----------
    path
        Output file (``.tif``).
    movie
        Anything :func:`as_movie` accepts.
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
    Axes are written as TZCYX (TZYXS for RGB 8-bit movies), with the calibration (pixel size,
    unit, z spacing, frame interval, time unit) in ImageJ's metadata and resolution tags, so
    Fiji opens it as a hyperstack with the right scale. Pixel types ImageJ cannot show are
    converted: bool -> 8-bit 0/255, non-negative integers up to 65535 -> 16-bit, anything else
    -> 32-bit float.
    """
    import tifffile

    path = check_overwrite(path, overwrite)
    mv = as_movie(movie)
    a = mv.attrs
    if is_lazy(mv) and mv.dtype in (np.uint8, np.uint16, np.float32) and not a.get("rgb"):
        return _write_planes(path, mv, _imagej_metadata(a, "TZCYX"), overwrite)
    data = _imagej_dtype(np.asarray(mv.values))
    rgb = bool(a.get("rgb")) and mv.sizes["c"] in (3, 4) and data.dtype == np.uint8
    if rgb:
        data = np.moveaxis(data, 2, -1)  # T Z Y X S
        axes = "TZYXS"
    else:
        axes = "TZCYX"
    metadata, resolution = _imagej_metadata(a, axes)
    with atomic_write(path, "wb", overwrite=overwrite) as fh:
        # tifffile wants a file name for streams; the temporary file's descriptor has none.
        handle = tifffile.FileHandle(fh, mode="wb", name=path.name)
        tifffile.imwrite(
            handle,
            data,
            imagej=True,
            resolution=resolution,
            metadata=metadata,
            photometric="rgb" if rgb else "minisblack",
        )
    return path


def _imagej_metadata(a: dict[str, Any], axes: str) -> tuple[dict[str, Any], Any]:
    """ImageJ's metadata and the resolution tag for a movie's calibration attrs."""
    metadata: dict[str, Any] = {"axes": axes}
    resolution = None
    if a.get("unit"):
        metadata["unit"] = _escape(str(a["unit"]))
        if a.get("pixel_size"):
            resolution = (1.0 / float(a["pixel_size"]), 1.0 / float(a["pixel_size"]))
        if a.get("z_spacing"):
            metadata["spacing"] = float(a["z_spacing"])
    if a.get("frame_interval"):
        metadata["finterval"] = float(a["frame_interval"])
        if a.get("time_unit"):
            metadata["tunit"] = _escape(str(a["time_unit"]))
    return metadata, resolution


_BIGTIFF_BYTES = 2**32 - 2**25


def _write_planes(
    path: Path, mv: xr.DataArray, meta: tuple[dict[str, Any], Any], overwrite: bool
) -> Path:
    """Write a lazy movie one plane at a time (ImageJ hyperstack; BigTIFF past 4 GiB)."""
    import tifffile

    metadata, resolution = meta
    t, z, c, y, x = (int(mv.sizes[d]) for d in AXES)
    big = mv.nbytes > _BIGTIFF_BYTES  # ImageJ's own format ends at 4 GiB; Fiji reads BigTIFF

    def planes() -> Any:
        for ti in range(t):
            for zi in range(z):
                for ci in range(c):
                    yield np.asarray(mv.isel(t=ti, z=zi, c=ci).values)

    with atomic_write(path, "wb", overwrite=overwrite) as fh:
        handle = tifffile.FileHandle(fh, mode="wb", name=path.name)
        with tifffile.TiffWriter(handle, bigtiff=big, imagej=not big) as tw:
            tw.write(
                planes(),
                shape=(t, z, c, y, x),
                dtype=mv.dtype,
                resolution=resolution,
                metadata=metadata,
                photometric="minisblack",
            )
    return path
