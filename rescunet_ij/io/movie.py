"""Movies: TIFF hyperstacks in and out, and the normalised in-memory form.

Inside rescunet-ij a movie is an :class:`xarray.DataArray` with dims exactly
``("t", "z", "c", "y", "x")`` (:data:`rescunet_ij.types.AXES`) and the attrs

========================  ===============================================================
``pixel_size``            float or None: width of one pixel in ``unit``
``unit``                  str or None: spatial unit (``"um"``, ``"µm"``, ``"micron"`` ...)
``frame_interval``        float or None: time between frames in ``time_unit``
``time_unit``             str or None
``z_spacing``             float or None: distance between z-planes in ``unit``
``source``                str or None: the file the movie came from
``rgb``                   bool: the ``c`` axis holds the samples of an RGB image
========================  ===============================================================

:func:`as_movie` turns numpy arrays and DataArrays with other dim names (PyImageJ's ``pln``,
``row``, ``col``, ``ch``; upper-case ``TZCYX``; ``S`` for RGB samples) into this form,
:func:`read_movie`/:func:`write_movie` read and write ImageJ-compatible TIFF files and
:func:`select_plane_series` extracts the 2-D image sequence the engine works on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError, DataError
from ..types import AXES
from .atomic import atomic_write, check_overwrite

__all__ = [
    "MOVIE_ATTRS",
    "PlaneSeriesInfo",
    "as_movie",
    "index_origin",
    "read_movie",
    "select_plane_series",
    "write_movie",
]

MOVIE_ATTRS: dict[str, Any] = {
    "pixel_size": None,
    "unit": None,
    "frame_interval": None,
    "time_unit": None,
    "z_spacing": None,
    "source": None,
    "rgb": False,
}
"""The attrs every movie carries, with their defaults."""

# Accepted dim names (case-insensitive) -> our axis. "s" (samples) marks RGB data.
_DIM_ALIASES: dict[str, str] = {
    "t": "t", "time": "t", "frame": "t", "frames": "t", "q": "t", "i": "t",
    "z": "z", "pln": "z", "plane": "z", "planes": "z", "slice": "z", "slices": "z",
    "c": "c", "ch": "c", "channel": "c", "channels": "c",
    "s": "c", "rgb": "c", "sample": "c", "samples": "c",
    "y": "y", "row": "y", "rows": "y",
    "x": "x", "col": "x", "cols": "x", "column": "x", "columns": "x",
}  # fmt: skip
_RGB_NAMES = {"s", "rgb", "sample", "samples"}
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_FIJI_SAVE_HINT = "in Fiji: File > Save As > Tiff..."


def _float_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DataError(
            f"movie attribute {name!r} must be a number or None; got {value!r}"
        ) from None
    if not np.isfinite(v) or v <= 0:
        return None  # ImageJ writes 0 for "not calibrated"
    return v


def _normalise_attrs(*sources: dict[str, Any]) -> dict[str, Any]:
    attrs = dict(MOVIE_ATTRS)
    for src in sources:
        attrs.update({k: v for k, v in src.items()})
    for key in ("pixel_size", "frame_interval", "z_spacing"):
        attrs[key] = _float_or_none(key, attrs[key])
    for key in ("unit", "time_unit", "source"):
        if attrs[key] is not None:
            attrs[key] = str(attrs[key])
    attrs["rgb"] = bool(attrs["rgb"])
    return attrs


def _parse_dims(dims: str | Sequence[str]) -> list[str]:
    if isinstance(dims, str):
        parts = (
            [p.strip() for p in re.split(r"[,\s]+", dims) if p.strip()]
            if ("," in dims or " " in dims)
            else list(dims)
        )
        return parts
    return [str(d) for d in dims]


def _map_dims(names: Sequence[str]) -> tuple[list[str], bool]:
    """Map dim names to our axes; return (mapped names, rgb flag)."""
    mapped: list[str] = []
    unknown: list[str] = []
    rgb = False
    for name in names:
        key = str(name).strip().lower()
        target = _DIM_ALIASES.get(key)
        if target is None:
            unknown.append(str(name))
            continue
        rgb = rgb or key in _RGB_NAMES
        mapped.append(target)
    if unknown:
        raise DataError(
            f"unknown movie dimension(s) {unknown} in {list(names)}; expected names from "
            "t, z, c, y, x (also upper case), PyImageJ's t, pln, ch, row, col, or S for RGB "
            "samples. "
            "Rename them, e.g. data.rename({'" + unknown[0] + "': 't'})"
        )
    dup = sorted({d for d in mapped if mapped.count(d) > 1})
    if dup:
        raise DataError(
            f"movie dimensions {list(names)} name the axis {dup[0]!r} more than once; "
            "give each of t, z, c, y, x at most once (merge or drop the extra dimension first)"
        )
    if "y" not in mapped or "x" not in mapped:
        raise DataError(
            f"movie dimensions {list(names)} lack y and/or x; a movie needs both image axes"
        )
    return mapped, rgb


def _coord_step(da: xr.DataArray, dim: str) -> float | None:
    """Uniform spacing of a numeric coordinate (PyImageJ stores calibration there)."""
    if dim not in da.coords:
        return None
    values = np.asarray(da.coords[dim].values)
    # Integer labels are frame/plane numbers (ours, or a cut-out's), not a physical calibration.
    if values.ndim != 1 or values.size < 2 or values.dtype.kind != "f":
        return None
    step = float(values[1] - values[0])
    if step <= 0 or not np.allclose(np.diff(values.astype(np.float64)), step, rtol=1e-4):
        return None
    return None if np.isclose(step, 1.0) else step


_NON_NUMERIC: dict[str, tuple[str, str]] = {
    "c": (
        "complex numbers",
        "take the magnitude or the real part first: np.abs(data) or data.real",
    ),
    "O": (
        "Python objects",
        "such arrays come from images of different sizes or from values mixed with None; make "
        "one numeric array first, e.g. np.stack(images).astype(np.float32)",
    ),
    "U": ("text", "convert the values to numbers first, e.g. data.astype(np.float32)"),
    "S": ("bytes", "convert the values to numbers first, e.g. data.astype(np.float32)"),
    "M": ("dates/times", "a movie holds intensities, not time stamps; pass the image data"),
    "m": ("time spans", "a movie holds intensities, not time spans; pass the image data"),
}


def _check_pixel_type(dtype: Any) -> None:
    """Refuse arrays whose values are not bool, integer or float intensities."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biuf":
        return
    what, advice = _NON_NUMERIC.get(
        dtype.kind, ("not plain numbers", "convert them first, e.g. data.astype(np.float32)")
    )
    raise DataError(
        f"the movie's pixels are {what} (dtype {dtype}); rescunet-ij needs bool, integer or "
        f"float pixels -- {advice}"
    )


def _array_and_names(data: Any, dims: str | Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """A numpy array of ``data`` and the names of its dims (YX for 2-D, TYX for 3-D by default)."""
    try:
        values = np.asarray(data)
    except ValueError as exc:  # e.g. a list of images of different sizes
        raise DataError(
            f"cannot make one array of the movie data ({exc}); give a numpy array, or a "
            "list of images that all have the same size"
        ) from exc
    if dims is None:
        if values.ndim == 2:
            names = ["y", "x"]
        elif values.ndim == 3:
            names = ["t", "y", "x"]
        else:
            raise DataError(
                f"a {values.ndim}-D array needs dims= to say what its axes are, e.g. "
                "dims='TZCYX' or dims='TYXC' (2-D arrays are taken as YX, 3-D as TYX)"
            )
    else:
        names = _parse_dims(dims)
    if len(names) != values.ndim:
        raise DataError(
            f"dims {''.join(names) if all(len(n) == 1 for n in names) else names} has "
            f"{len(names)} axes but the array has {values.ndim} (shape {values.shape})"
        )
    return values, names


def as_movie(data: Any, dims: str | Sequence[str] | None = None, **attrs: Any) -> xr.DataArray:
    """Normalise an array or DataArray to a rescunet-ij movie (dims ``t, z, c, y, x``).

    Parameters
    ----------
    data
        A numpy array (or anything :func:`numpy.asarray` accepts) or an
        :class:`xarray.DataArray`.
    dims
        Names of ``data``'s dimensions in order, as a string (``"ZYX"``, ``"TYXC"``,
        ``"t,pln,row,col"``) or a sequence. Default for arrays: ``"YX"`` for 2-D, ``"TYX"`` for
        3-D; other arrays need ``dims``. Default for DataArrays: their own dim names. Accepted
        names (any case): t/time/frame, z/pln/plane/slice, c/ch/channel, y/row, x/col, and
        S/rgb/sample for RGB samples (mapped to ``c`` with ``attrs["rgb"] = True``); Q and I
        (tifffile's generic axes) count as ``t``.
    **attrs
        Movie attributes (see the module docstring) that override those of ``data``.

    Returns
    -------
    xarray.DataArray
        A view (no copy when possible) with dims ``("t", "z", "c", "y", "x")``, missing dims
        added with size 1, and all movie attrs present. ``t`` and ``z`` carry the frame and
        plane numbers (0-based) as integer coordinates: taken over from an integer ``t``/``z``
        coordinate of ``data`` (so ``movie.isel(t=slice(10, 20))`` stays frames 10..19), else
        counted from 0. Other coordinates are dropped; a uniform numeric ``x``/``z``/``t``
        coordinate (as PyImageJ provides) fills ``pixel_size``, ``z_spacing`` or
        ``frame_interval`` when those are not set.

    Raises
    ------
    DataError
        For unknown or repeated dim names, a missing y or x axis, an array whose number of
        dimensions does not match ``dims``, or pixels that are not bool, integer or float
        (complex, object, text, date/time arrays).
    """
    if isinstance(data, xr.DataArray):
        names = list(data.dims) if dims is None else _parse_dims(dims)
        if len(names) != data.ndim:
            raise DataError(
                f"dims {names} has {len(names)} names but the DataArray has {data.ndim} dimensions"
            )
        mapped, rgb = _map_dims(names)
        inferred: dict[str, Any] = {}
        steps = {m: _coord_step(data, str(orig)) for orig, m in zip(data.dims, mapped)}
        if steps.get("x"):
            inferred["pixel_size"] = steps["x"]
        if steps.get("z"):
            inferred["z_spacing"] = steps["z"]
        if steps.get("t"):
            inferred["frame_interval"] = steps["t"]
        base = {**inferred, **{k: v for k, v in data.attrs.items() if v is not None}}
        firsts = {m: index_origin(data, str(orig)) for orig, m in zip(data.dims, mapped)}
        values = data.data
    else:
        values, names = _array_and_names(data, dims)
        mapped, rgb = _map_dims(names)
        base = {}
        firsts = {}
    _check_pixel_type(values.dtype)
    if values.ndim and 0 in values.shape:
        raise DataError(
            f"the movie is empty (shape {tuple(values.shape)}); it needs at least one pixel"
        )
    extra: dict[str, Any] = {"rgb": True} if rgb else {}
    out = xr.DataArray(values, dims=mapped)
    missing = [d for d in AXES if d not in mapped]
    if missing:
        out = out.expand_dims(missing)
    out = out.transpose(*AXES)
    out.attrs = _normalise_attrs(base, extra, attrs)
    t0, z0 = firsts.get("t", 0), firsts.get("z", 0)
    return out.assign_coords(
        t=np.arange(t0, t0 + out.sizes["t"]), z=np.arange(z0, z0 + out.sizes["z"])
    )


def index_origin(da: xr.DataArray, dim: str) -> int:
    """The number of the first frame/plane of ``da`` along ``dim`` (0 without an index coordinate).

    An integer, consecutive, non-negative coordinate holds the frame/plane numbers (what
    :func:`as_movie` writes and ``isel`` keeps); anything else (calibrated or irregular labels)
    counts from 0.
    """
    if dim not in da.coords:
        return 0
    values = np.asarray(da.coords[dim].values)
    if (
        values.ndim == 1
        and values.size
        and values.dtype.kind in "iu"
        and values[0] >= 0
        and np.all(np.diff(values) == 1)
    ):
        return int(values[0])
    return 0  # calibrated (seconds, microns) or irregular labels are not frame numbers


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


def _read_tiff(path: Path, log: TiffLog) -> tuple[np.ndarray, str, int, dict[str, Any]]:
    """Pixels, tifffile's axes codes, the photometric tag and the calibration of series 0."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise DataError(
                f"{path.name} holds no image data; save the movie again ({_FIJI_SAVE_HINT})"
            )
        series = tif.series[0]
        header = _ImageJHeader.from_tiff(tif)
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
            log.records.clear()  # the warning below says it all
            warnings.warn(
                f"{path.name}: ignored its invalid ImageJ header ({header.fields}) and read its "
                f"{len(tif.pages)} image(s) as frames; if they are z-planes or channels, set "
                "the order in Fiji (Image > Hyperstacks > Stack to Hyperstack...) and save again",
                stacklevel=3,
            )
        photometric = int(getattr(series.keyframe, "photometric", 1) or 1)
        return data, str(series.axes).upper(), photometric, _calibration(tif)


def read_movie(path: str | os.PathLike[str]) -> xr.DataArray:
    """Read a TIFF movie (ImageJ hyperstack, OME-TIFF or plain multi-page TIFF).

    Parameters
    ----------
    path
        The TIFF file.

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
    _check_tiff_path(path)
    try:
        with TiffLog() as log:
            data, axes, photometric, attrs = _read_tiff(path, log)
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
    data: np.ndarray, axes: str, photometric: int, name: str
) -> tuple[np.ndarray, list[str], bool]:
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


# ------------------------------------------------------------------------------- plane selection


@dataclass(frozen=True)
class PlaneSeriesInfo:
    """What :func:`select_plane_series` extracted (0-based indices)."""

    axis: str  # "t": propagate through time; "z": through the planes of a z-stack
    channel: int | None  # the channel used; None when the movie has one channel
    z: int | None  # the plane used when axis == "t" (None when the movie has one plane)
    n_planes: int
    height: int
    width: int
    dtype: str  # dtype of the movie before the float32 conversion
    pixel_size: float | None
    unit: str | None
    frame_interval: float | None
    time_unit: str | None
    z_spacing: float | None
    source: str | None


def _pick(name: str, value: int, size: int, flag: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer index; got {value!r}")
    if not 0 <= int(value) < size:
        raise DataError(
            f"{name} {int(value) + 1} (1-based; {int(value)} 0-based) does not exist: the movie "
            f"has {size} {name}s; pick one with {flag} 1..{size} (1-based; {name}=0..{size - 1} "
            "in Python)"
        )
    return int(value)


def select_plane_series(
    movie: Any,
    channel: int | None = None,
    z: int | None = None,
    axis: str = "t",
) -> tuple[np.ndarray, PlaneSeriesInfo]:
    """Extract the sequence of 2-D images the engine propagates through.

    Parameters
    ----------
    movie
        A movie (anything :func:`as_movie` accepts).
    channel
        0-based channel; required when the movie has more than one channel (or is RGB).
    z
        0-based plane; required with ``axis="t"`` when the movie has more than one z-plane.
        Must be None with ``axis="z"``.
    axis
        ``"t"`` to propagate through time (default), ``"z"`` to propagate through the planes of
        a single-time-point z-stack.

    Returns
    -------
    images : numpy.ndarray
        ``(N, Y, X)`` float32 copy of the chosen planes.
    info : PlaneSeriesInfo
        The choices made and the movie's calibration.

    Raises
    ------
    DataError
        When a channel or plane must be chosen but was not, an index is out of range, or
        ``axis="z"`` is used on a movie with several time points.
    ConfigError
        For an unknown ``axis`` or a non-integer index.
    """
    movie = as_movie(movie)
    if axis not in ("t", "z"):
        raise ConfigError(f"axis must be 't' (through time) or 'z' (through planes); got {axis!r}")
    n_t, n_z, n_c = (int(movie.sizes[d]) for d in ("t", "z", "c"))
    rgb = bool(movie.attrs.get("rgb"))
    if n_c > 1 and channel is None:
        kind = "an RGB image with 3 colour channels" if rgb else f"{n_c} channels"
        extra = " (or convert it to grey in Fiji: Image > Type > 8-bit)" if rgb else ""
        raise DataError(
            f"the movie has {kind}; pick one with --channel 1..{n_c} (1-based; "
            f"channel=0..{n_c - 1} in Python){extra}"
        )
    c_idx = _pick("channel", channel, n_c, "--channel") if channel is not None else 0
    if axis == "t":
        if n_z > 1 and z is None:
            raise DataError(
                f"the movie has {n_t} frame(s) and {n_z} z-planes; pick a plane with --z 1..{n_z} "
                f"(1-based; z=0..{n_z - 1} in Python)"
                + (
                    ", or propagate through the planes with --axis z (in Python: axis='z'). If the "
                    "planes are really time points, fix the order in Fiji (Image > Properties...: "
                    "swap Slices and Frames) and save again"
                    if n_t == 1
                    else ""
                )
            )
        z_idx = _pick("z-plane", z, n_z, "--z") if z is not None else 0
        planes = movie.isel(z=z_idx, c=c_idx).values
    else:
        if n_t > 1:
            raise DataError(
                f"propagating through z needs a movie with one time point; this one has {n_t} "
                "frames. Use axis='t' (--axis t) with a chosen plane, or make a single-frame "
                "substack in Fiji (Image > Duplicate...)"
            )
        if z is not None:
            raise ConfigError("z must be None with axis='z' (all planes are used)")
        z_idx = None
        planes = movie.isel(t=0, c=c_idx).values
    images = np.ascontiguousarray(planes, dtype=np.float32)
    a = movie.attrs
    info = PlaneSeriesInfo(
        axis=axis,
        channel=c_idx if n_c > 1 else None,
        z=(z_idx if n_z > 1 else None) if axis == "t" else None,
        n_planes=int(images.shape[0]),
        height=int(images.shape[1]),
        width=int(images.shape[2]),
        dtype=str(movie.dtype),
        pixel_size=a.get("pixel_size"),
        unit=a.get("unit"),
        frame_interval=a.get("frame_interval"),
        time_unit=a.get("time_unit"),
        z_spacing=a.get("z_spacing"),
        source=a.get("source"),
    )
    return images, info


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
    data = _imagej_dtype(np.asarray(mv.values))
    a = mv.attrs
    rgb = bool(a.get("rgb")) and mv.sizes["c"] in (3, 4) and data.dtype == np.uint8
    if rgb:
        data = np.moveaxis(data, 2, -1)  # T Z Y X S
        axes = "TZYXS"
    else:
        axes = "TZCYX"
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
