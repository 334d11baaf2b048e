"""Movies in memory: the normalised form every part of rescunet-ij works on.

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
``row``, ``col``, ``ch``; upper-case ``TZCYX``; ``S`` for RGB samples) into this form and
:func:`select_plane_series` extracts the 2-D image sequence the engine works on. TIFF files are
read and written by :mod:`rescunet_ij.io.tiff`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError, DataError
from ..types import AXES

__all__ = [
    "MOVIE_ATTRS",
    "PlaneSeries",
    "PlaneSeriesInfo",
    "as_movie",
    "index_origin",
    "is_lazy",
    "lazy_plane_series",
    "select_plane_series",
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
        values = data if is_lazy(data) else np.asarray(data)  # a dask array stays lazy
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


def _pick(name: str, value: int, size: int, flag: str, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer index; got {value!r}")
    if not 0 <= int(value) < size:
        has = f"1 {name}" if size == 1 else f"{size} {name}s"
        raise DataError(
            f"{name} {int(value) + 1} (1-based; {int(value)} 0-based) does not exist: the movie "
            f"has {has}; pick one with {flag} 1..{size} (1-based; {arg}=0..{size - 1} "
            "in Python)"
        )
    return int(value)


def is_lazy(movie: Any) -> bool:
    """Whether a movie's pixels are read on demand (a dask array) rather than held in memory."""
    data = movie.data if isinstance(movie, xr.DataArray) else movie
    return type(data).__module__.split(".")[0] == "dask"


class PlaneSeries:
    """The planes of a lazy movie, read one at a time (what the engine holds of a big movie).

    Behaves like the ``(N, Y, X)`` float32 array :func:`select_plane_series` returns as far as the
    engine needs (``shape``, ``ndim``, ``dtype``, ``len``, integer indexing), but reads a plane only
    when it is indexed and keeps the last ``cache`` planes read (the prompt frame and the current
    frame of a propagation), so memory stays constant in movie length.

    Parameters
    ----------
    data
        A DataArray whose first dim runs over the planes (``(N, Y, X)`` or ``(N, C, Y, X)``),
        usually backed by a dask array.
    cache
        How many planes to keep.
    check
        Called with ``(index, plane)`` for every plane read (e.g. to refuse NaN pixels).
    """

    def __init__(
        self,
        data: xr.DataArray,
        cache: int = 2,
        check: Any = None,
    ) -> None:
        self.data = data
        self.cache = max(1, int(cache))
        self.check = check
        self._planes: dict[int, np.ndarray] = {}
        self.reads = 0  # planes read from the source (tests and benchmarks look at it)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(N, Y, X)`` (or ``(N, C, Y, X)``)."""
        return tuple(int(s) for s in self.data.shape)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def dtype(self) -> np.dtype:
        """Always float32: planes are converted as they are read."""
        return np.dtype(np.float32)

    @property
    def source_dtype(self) -> np.dtype:
        """The movie's own pixel type."""
        return np.dtype(self.data.dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            i = int(index)
            if i < 0:
                i += len(self)
            if not 0 <= i < len(self):
                raise IndexError(f"plane {index} is outside 0..{len(self) - 1}")
            return self._plane(i)
        return np.stack([self._plane(i) for i in range(len(self))[index]])

    def __iter__(self) -> Any:
        return (self._plane(i) for i in range(len(self)))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """Every plane in memory (only for callers that really need the whole series)."""
        out = np.stack([self._plane(i) for i in range(len(self))])
        return out if dtype is None else out.astype(dtype, copy=False)

    def _plane(self, i: int) -> np.ndarray:
        hit = self._planes.pop(i, None)
        if hit is None:
            source = self.data.attrs.get("source") or "the movie"
            try:
                values = self.data[i].values
            except (DataError, MemoryError):
                raise
            except Exception as exc:  # a decoder's error, deep inside a lazy read
                raise DataError(
                    f"cannot read plane {i + 1} of {source}: {exc}. The file may be truncated or "
                    "corrupted; open it in Fiji and save it again"
                ) from exc
            hit = np.ascontiguousarray(values, dtype=np.float32)
            hit.setflags(write=False)
            self.reads += 1
            if self.check is not None:
                self.check(i, hit)
        self._planes[i] = hit
        while len(self._planes) > self.cache:
            self._planes.pop(next(iter(self._planes)))
        return hit


def _selected_planes(
    movie: xr.DataArray, channel: int | None, z: int | None, axis: str
) -> tuple[xr.DataArray, int | None, int | None]:
    """The chosen plane series as a (lazy when the movie is) DataArray, with the checks."""
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
    c_idx = _pick("channel", channel, n_c, "--channel", "channel") if channel is not None else 0
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
        z_idx = _pick("z-plane", z, n_z, "--z", "z") if z is not None else 0
        planes = movie.isel(z=z_idx, c=c_idx)
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
        planes = movie.isel(t=0, c=c_idx)
    planes.attrs = dict(movie.attrs)
    return planes, c_idx, z_idx


def _series_info(
    movie: xr.DataArray, shape: tuple[int, ...], axis: str, c_idx: int, z_idx: int | None
) -> PlaneSeriesInfo:
    a = movie.attrs
    n_z, n_c = int(movie.sizes["z"]), int(movie.sizes["c"])
    return PlaneSeriesInfo(
        axis=axis,
        channel=c_idx if n_c > 1 else None,
        z=(z_idx if n_z > 1 else None) if axis == "t" else None,
        n_planes=int(shape[0]),
        height=int(shape[-2]),
        width=int(shape[-1]),
        dtype=str(movie.dtype),
        pixel_size=a.get("pixel_size"),
        unit=a.get("unit"),
        frame_interval=a.get("frame_interval"),
        time_unit=a.get("time_unit"),
        z_spacing=a.get("z_spacing"),
        source=a.get("source"),
    )


def lazy_plane_series(
    movie: Any,
    channel: int | None = None,
    z: int | None = None,
    axis: str = "t",
    *,
    cache: int = 2,
) -> tuple[PlaneSeries, PlaneSeriesInfo]:
    """Like :func:`select_plane_series`, but the planes are read one at a time when indexed.

    The checks (channel, plane, axis) are the same and happen at once; no pixel is read here.
    The propagation engine uses this for lazy movies (:func:`is_lazy`), so it holds only the
    planes it works on.
    """
    movie = as_movie(movie)
    planes, c_idx, z_idx = _selected_planes(movie, channel, z, axis)
    series = PlaneSeries(planes, cache=cache)
    return series, _series_info(movie, series.shape, axis, c_idx, z_idx)


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
    planes, c_idx, z_idx = _selected_planes(movie, channel, z, axis)
    images = np.ascontiguousarray(planes.values, dtype=np.float32)
    return images, _series_info(movie, images.shape, axis, c_idx, z_idx)
