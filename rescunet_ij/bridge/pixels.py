"""Pixels and calibration: ImageJ ``ImagePlus`` <-> rescunet-ij movies.

Movies are ``xarray`` arrays with dims ``t, z, c, y, x``.
Transfers go plane by plane as bulk array copies (``memoryview(short[])`` one way, a new Java
array from a numpy buffer the other way); never element by element through Python.
ImageJ's Java arrays are signed (``byte``/``short``/``int``); the bit patterns are kept and
viewed as unsigned on the Python side, which is how ImageJ itself reads 8- and 16-bit images.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError, ImageJError
from ..types import AXES
from ._java import jc, require_jvm, to_java_array

__all__ = ["imageplus_dims", "imageplus_to_movie", "movie_to_imageplus"]

# ImagePlus.getType() codes
GRAY8, GRAY16, GRAY32, COLOR_256, COLOR_RGB = 0, 1, 2, 3, 4
_UNCALIBRATED = {"", "pixel", "pixels"}


def imageplus_dims(imp: Any) -> tuple[int, int, int, int, int]:
    """``(width, height, channels, slices, frames)`` of an ImagePlus (ImageJ's order)."""
    w, h, c, z, t = (int(v) for v in imp.getDimensions())
    return w, h, c, z, t


def _check_imp(imp: Any) -> None:
    require_jvm()
    if imp is None:
        raise DataError("no image: open a movie in ImageJ first (or pass the ImagePlus)")
    if not isinstance(imp, jc.ImagePlus):
        raise DataError(f"expected an ImageJ ImagePlus; got {type(imp).__name__}")


def _frame_indices(frames: slice | Sequence[int] | None, n_t: int) -> list[int]:
    if frames is None:
        return list(range(n_t))
    if isinstance(frames, slice):
        return list(range(n_t))[frames]
    out = [int(f) for f in frames]
    bad = [f for f in out if not 0 <= f < n_t]
    if bad:
        raise DataError(f"frames {bad} (0-based) are outside the movie (0..{n_t - 1})")
    return out


def _calibration_attrs(imp: Any, n_z: int) -> dict[str, Any]:
    cal = imp.getCalibration()
    unit = str(cal.getUnit() or "")
    calibrated = unit.strip().lower() not in _UNCALIBRATED
    pw, ph, pd = float(cal.pixelWidth), float(cal.pixelHeight), float(cal.pixelDepth)
    if calibrated and abs(pw - ph) > 1e-9 * max(pw, ph):
        warnings.warn(
            f"image '{imp.getTitle()}' has non-square pixels ({pw} x {ph} {unit}); "
            "rescunet-ij uses the pixel width",
            UserWarning,
            stacklevel=3,
        )
    fi = float(cal.frameInterval)
    source = None
    info = imp.getOriginalFileInfo()
    if info is not None and info.fileName:
        directory = str(info.directory or "")
        source = directory + str(info.fileName) if directory else str(info.fileName)
    return {
        "pixel_size": pw if (calibrated or pw != 1.0) else None,
        "unit": unit if calibrated else None,
        "frame_interval": fi if fi > 0 else None,
        "time_unit": str(cal.getTimeUnit()) if fi > 0 else None,
        "z_spacing": pd if (calibrated or pd != 1.0) and (n_z > 1 or calibrated) else None,
        "source": source,
    }


def imageplus_to_movie(
    imp: Any,
    channel: int | None = None,
    *,
    frames: slice | Sequence[int] | None = None,
) -> Any:
    """Copy an ImagePlus (any stack or hyperstack) into a movie.

    Parameters
    ----------
    imp
        An ``ij.ImagePlus``: 8-, 16-, 32-bit or RGB, single image, stack or hyperstack.
    channel
        0-based channel to keep (for RGB: 0 = red, 1 = green, 2 = blue); None keeps all.
    frames
        0-based frames to copy (a slice or indices); None copies all. Useful for big movies
        when only a few frames are needed. The copied frames keep their numbers as the ``t``
        coordinate, which :mod:`rescunet_ij.api` honours.

    Returns
    -------
    xarray.DataArray
        Dims ``("t", "z", "c", "y", "x")``; dtype uint8, uint16 or float32 (RGB: uint8 with
        three channels and ``attrs["rgb"] = True``). Attrs carry the calibration
        (``pixel_size``, ``unit``, ``frame_interval``, ``time_unit``, ``z_spacing``), ``source``
        (the file the image was opened from) and ``title``.

    Raises
    ------
    DataError
        No image, a channel or frame outside the image.
    """
    from ..io.movie import as_movie

    _check_imp(imp)
    w, h, n_c, n_z, n_t = imageplus_dims(imp)
    itype = int(imp.getType())
    rgb = itype == COLOR_RGB
    c_total = 3 * n_c if rgb else n_c
    if channel is not None and not 0 <= int(channel) < c_total:
        what = "RGB has channels 0 (red), 1 (green), 2 (blue)" if rgb else f"{n_c} channel(s)"
        raise DataError(
            f"channel {channel} (0-based) is not in image '{imp.getTitle()}' ({what}); "
            "choose another channel"
        )
    t_idx = _frame_indices(frames, n_t)
    stack = imp.getStack()
    if rgb:
        dtype, view = np.uint8, np.uint32
    else:
        dtype, view = {
            GRAY8: (np.uint8, np.uint8),
            COLOR_256: (np.uint8, np.uint8),
            GRAY16: (np.uint16, np.uint16),
            GRAY32: (np.float32, np.float32),
        }[itype]
    out_c = 1 if channel is not None else c_total
    out = np.empty((len(t_idx), n_z, out_c, h, w), dtype=dtype)
    src_channels = (
        [int(channel) // 3 if rgb else int(channel)] if channel is not None else range(n_c)
    )
    for ti, t in enumerate(t_idx):
        for z in range(n_z):
            for k, c in enumerate(src_channels):
                pix = stack.getPixels(imp.getStackIndex(c + 1, z + 1, t + 1))
                # memoryview: a bulk copy of the Java array (~10x faster than np.asarray on it).
                plane = np.frombuffer(memoryview(pix), dtype=view).reshape(h, w)
                if not rgb:
                    out[ti, z, k] = plane
                    continue
                shifts = (16, 8, 0) if channel is None else (16 - 8 * (int(channel) % 3),)
                for s_i, s in enumerate(shifts):
                    ch = s_i + 3 * k if channel is None else 0
                    out[ti, z, ch] = (plane >> s) & 0xFF
    attrs = _calibration_attrs(imp, n_z)
    movie = as_movie(out, dims="tzcyx", **attrs, rgb=rgb and channel is None)
    movie.attrs["title"] = str(imp.getTitle())
    # Frames keep ImageJ's numbers (0-based) as xarray labels: a cut-out of frames 10..19 is
    # propagated and reported as frames 10..19 by rescunet_ij.api, with no shifting back.
    return movie.assign_coords(t=np.asarray(t_idx, dtype=np.int64))


def _ij_pixels(values: np.ndarray, title: str) -> tuple[np.ndarray, int]:
    """Pixels in a type ImageJ stores natively, and the ImagePlus bit depth."""
    dt = values.dtype
    if dt == np.uint8:
        return values, 8
    if dt == np.bool_:
        return values.astype(np.uint8) * 255, 8
    if dt == np.uint16:
        return values, 16
    if dt == np.float32:
        return values, 32
    if dt.kind in "iu" and values.size and values.min() >= 0 and values.max() <= 65535:
        return values.astype(np.uint16), 16
    if dt.kind in "iuf":
        as32 = values.astype(np.float32)
        if dt.kind in "iu" or dt.itemsize > 4:
            lossy = not np.array_equal(as32.astype(dt), values)
            if lossy:
                warnings.warn(
                    f"'{title}': {dt} pixels are stored as 32-bit float in ImageJ "
                    "and lose precision",
                    UserWarning,
                    stacklevel=3,
                )
        return as32, 32
    raise DataError(
        f"ImageJ cannot show {dt} pixels; convert the movie to uint8, uint16 or float32"
    )


def movie_to_imageplus(movie: Any, title: str | None = None, *, show: bool = False) -> Any:
    """Copy a movie into a new ImageJ ImagePlus (a hyperstack when it has several dimensions).

    Parameters
    ----------
    movie
        A movie (``xarray.DataArray`` with dims ``t, z, c, y, x``) or anything
        :func:`rescunet_ij.io.movie.as_movie` accepts (a 3-D array is taken as ``t, y, x``).
    title
        Window title; default: ``movie.attrs["title"]``, else the source file name, else "movie".
    show
        Open the image window (needs a display).

    Returns
    -------
    ij.ImagePlus
        8-bit (uint8/bool), 16-bit (uint16, or integers within 0..65535) or 32-bit (float32 and
        everything else) with the movie's calibration; a movie with ``attrs["rgb"]`` and three
        uint8 channels becomes an RGB image; several channels become a composite image.
    """
    from ..io.movie import as_movie

    require_jvm()
    mv = as_movie(movie)
    n_t, n_z, n_c, h, w = (int(mv.sizes[d]) for d in AXES)
    attrs = mv.attrs
    if title is None:
        src = attrs.get("source")
        title = attrs.get("title") or (
            str(src).replace("\\", "/").rsplit("/", 1)[-1] if src else "movie"
        )
    values = np.asarray(mv.values)
    rgb = bool(attrs.get("rgb")) and n_c == 3 and values.dtype == np.uint8
    stack = jc.ImageStack(w, h)
    if rgb:
        packed = (
            (0xFF << 24)
            | (values[:, :, 0].astype(np.uint32) << 16)
            | (values[:, :, 1].astype(np.uint32) << 8)
            | values[:, :, 2].astype(np.uint32)
        )  # (t, z, h, w)
        for t in range(n_t):
            for z in range(n_z):
                stack.addSlice(None, to_java_array(packed[t, z].view(np.int32)))
        n_c_ij = 1
    else:
        pixels, _ = _ij_pixels(values, str(title))
        for t in range(n_t):
            for z in range(n_z):
                for c in range(n_c):  # ImageJ's stack order: channel fastest, then z, then t
                    stack.addSlice(None, to_java_array(pixels[t, z, c]))
        n_c_ij = n_c
    imp = jc.ImagePlus(str(title), stack)
    imp.setDimensions(n_c_ij, n_z, n_t)
    if sum(n > 1 for n in (n_c_ij, n_z, n_t)) >= 2 or n_c_ij > 1:
        imp.setOpenAsHyperStack(True)
    if n_c_ij > 1 and not rgb:
        imp = jc.CompositeImage(imp, jc.IJ.COMPOSITE if n_c_ij <= 7 else jc.IJ.GRAYSCALE)
    cal = imp.getCalibration()
    if attrs.get("pixel_size"):
        cal.pixelWidth = cal.pixelHeight = float(attrs["pixel_size"])
        cal.setUnit(str(attrs.get("unit") or "pixel"))
    elif attrs.get("unit"):
        cal.setUnit(str(attrs["unit"]))
    if attrs.get("z_spacing"):
        cal.pixelDepth = float(attrs["z_spacing"])
    if attrs.get("frame_interval"):
        cal.frameInterval = float(attrs["frame_interval"])
        cal.setTimeUnit(str(attrs.get("time_unit") or "sec"))
    if not rgb:
        imp.resetDisplayRange()
    if show:
        if bool(jc.GraphicsEnvironment.isHeadless()):
            raise ImageJError(
                "cannot show the image: Java runs headless (no display); run under a (virtual) "
                "display (xvfb-run) or call movie_to_imageplus(..., show=False)"
            )
        imp.show()
    return imp
