"""OME-Zarr (NGFF) movies, read lazily through the ``ome-zarr`` reader.

Why ``ome-zarr`` (ome-zarr-py): it is the reference implementation of the NGFF specification,
maintained by the OME team that writes the specification, it reads every released NGFF version
(0.1 to 0.5, Zarr v2 and v3 stores) and hands out the image levels as dask arrays with the axes
and coordinate transformations as metadata. That is exactly what a lazily indexed movie needs,
and no more: ``bioio`` would add a plugin stack (bioio-ome-zarr, bioio-base) for the same dask
array, and ``ngff-zarr`` focuses on writing and transforming multiscales. It is an optional
extra (``pip install 'rescunet-ij[omezarr]'``).

Only the full-resolution level (``s0`` or the first dataset) of the first image in the store is
read; its chunks are read when a plane is used, so a movie far bigger than memory can be
propagated. Frames keep their numbers (0-based) as in a TIFF movie.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import xarray as xr

from ..errors import DataError, MissingExtraError
from .atomic import check_overwrite
from .movie import as_movie

__all__ = ["is_omezarr", "read_omezarr", "write_omezarr"]

_ZARR_MARKERS = ("zarr.json", ".zattrs", ".zgroup")

# NGFF units (UDUNITS-2 names) -> the short forms ImageJ shows.
_SPACE_UNITS = {
    "micrometer": "µm",
    "nanometer": "nm",
    "millimeter": "mm",
    "centimeter": "cm",
    "meter": "m",
    "angstrom": "Å",
}
_TIME_UNITS = {"second": "s", "millisecond": "ms", "minute": "min", "hour": "h", "day": "d"}
_TO_NGFF_SPACE = {"µm": "micrometer", "um": "micrometer", "micron": "micrometer", "nm": "nanometer"}
_TO_NGFF_SPACE.update({"mm": "millimeter", "cm": "centimeter", "m": "meter"})
_TO_NGFF_TIME = {"s": "second", "sec": "second", "ms": "millisecond", "min": "minute", "h": "hour"}


def is_omezarr(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a Zarr store (a folder named ``*.zarr`` or holding Zarr files)."""
    p = Path(path)
    if not p.is_dir():
        return p.suffix.lower() == ".zarr" and not p.exists()
    return p.suffix.lower() == ".zarr" or any((p / m).exists() for m in _ZARR_MARKERS)


def _require() -> None:
    try:
        import ome_zarr  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            "ome-zarr", "omezarr", "Reading or writing OME-Zarr movies"
        ) from exc


def _axis_names(axes: Any) -> list[str]:
    return [str(a["name"] if isinstance(a, dict) else a) for a in axes]


def _calibration(axes: Any, transforms: Any) -> dict[str, Any]:
    names = _axis_names(axes)
    units = {str(a["name"]): a.get("unit") for a in axes if isinstance(a, dict) and a.get("unit")}
    scale = None
    for tr in transforms or []:
        if tr.get("type") == "scale" and len(tr.get("scale", [])) == len(names):
            scale = [float(v) for v in tr["scale"]]
    out: dict[str, Any] = {}
    if scale is None:
        return out
    by = dict(zip(names, scale))
    if "x" in units:
        out["pixel_size"] = by.get("x")
        out["unit"] = _SPACE_UNITS.get(str(units["x"]), str(units["x"]))
        if "z" in by and "z" in units:
            out["z_spacing"] = by["z"]
    if "t" in by and "t" in units:
        out["frame_interval"] = by["t"]
        out["time_unit"] = _TIME_UNITS.get(str(units["t"]), str(units["t"]))
    return out


def read_omezarr(path: str | os.PathLike[str]) -> xr.DataArray:
    """Read the first image of an OME-Zarr store as a lazy movie (dims ``t, z, c, y, x``).

    Parameters
    ----------
    path
        The ``.zarr`` folder (the image group, or a store whose first node is an image).

    Returns
    -------
    xarray.DataArray
        Backed by the full-resolution level as a dask array: nothing is read until planes are
        used. Calibration comes from the axes' units and the level's scale transformation.

    Raises
    ------
    DataError
        If the folder does not exist or holds no NGFF image (no ``multiscales``), or its axes
        cannot be mapped to t, z, c, y, x.
    MissingExtraError
        If ``ome-zarr`` is not installed.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(
            f"no such OME-Zarr folder: {p}; check the path (working folder {os.getcwd()})"
        )
    _require()
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    try:
        location = parse_url(str(p), mode="r")
        nodes = list(Reader(location)()) if location is not None else []
    except Exception as exc:  # the reader raises a variety of errors on foreign folders
        raise DataError(f"cannot read {p.name} as OME-Zarr: {exc}") from exc
    images = [n for n in nodes if any(isinstance(s, Multiscales) for s in n.specs)]
    if not images or not images[0].data:
        raise DataError(
            f"{p.name} holds no OME-Zarr (NGFF) image (no 'multiscales' metadata); give the "
            "folder of an image written by an NGFF writer (e.g. Fiji's OME-Zarr export, "
            "bioformats2raw, ome-zarr-py)"
        )
    node = images[0]
    data = node.data[0]
    meta = node.metadata
    axes = meta.get("axes") or ["t", "c", "z", "y", "x"][-data.ndim :]
    names = _axis_names(axes)
    if len(names) != data.ndim:
        raise DataError(
            f"{p.name}: its axes {names} do not match its {data.ndim}-D data; rewrite it with an "
            "NGFF writer"
        )
    transforms = (meta.get("coordinateTransformations") or [[]])[0]
    attrs = _calibration(axes, transforms)
    arr = xr.DataArray(data, dims=names)
    return as_movie(arr, source=str(p), **attrs)


def write_omezarr(path: str | os.PathLike[str], movie: Any, *, overwrite: bool = False) -> Path:
    """Write a movie as a single-resolution OME-Zarr image (NGFF 0.5, one chunk per plane).

    Frames are written one chunk at a time, so a lazy movie is never held in memory. The image
    is written into a hidden temporary folder beside ``path`` and renamed into place at the end:
    an interrupted write leaves no half-written image.

    Parameters
    ----------
    path
        The ``.zarr`` folder to create.
    movie
        Anything :func:`rescunet_ij.io.movie.as_movie` accepts (a lazy movie too).
    overwrite
        Replace an existing folder.

    Returns
    -------
    Path
        The written folder.
    """
    _require()
    import dask.array as da
    import zarr

    with warnings.catch_warnings():  # ome-zarr 0.18 warns about its own default argument
        warnings.filterwarnings("ignore", message=".*Scaler.*", category=DeprecationWarning)
        from ome_zarr.writer import write_image

    out = Path(path)
    if out.exists() and not (overwrite and is_omezarr(out)):
        if out.is_dir() and overwrite:
            raise DataError(f"{out} is a folder but not an OME-Zarr image; it was not replaced")
        check_overwrite(out, overwrite)
    mv = as_movie(movie)
    data = mv.transpose("t", "c", "z", "y", "x").data
    chunks = (1, 1, 1, int(mv.sizes["y"]), int(mv.sizes["x"]))
    data = data.rechunk(chunks) if isinstance(data, da.Array) else da.from_array(data, chunks)
    a = mv.attrs
    scale = {"t": 1.0, "c": 1.0, "z": 1.0, "y": 1.0, "x": 1.0}
    units: dict[str, str] = {}
    if a.get("pixel_size"):
        scale["x"] = scale["y"] = float(a["pixel_size"])
    if a.get("z_spacing"):
        scale["z"] = float(a["z_spacing"])
    if a.get("unit"):
        unit = _TO_NGFF_SPACE.get(str(a["unit"]).lower(), None)
        if unit:
            units.update(x=unit, y=unit)
            if a.get("z_spacing"):
                units["z"] = unit
    if a.get("frame_interval"):
        scale["t"] = float(a["frame_interval"])
        unit = _TO_NGFF_TIME.get(str(a.get("time_unit") or "s").lower())
        if unit:
            units["t"] = unit
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        group = zarr.open_group(str(tmp), mode="w")
        write_image(
            data,
            group,
            axes="tczyx",
            scale_factors=(),
            scale=scale,
            axes_units=units or None,
            storage_options={"chunks": chunks},
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
