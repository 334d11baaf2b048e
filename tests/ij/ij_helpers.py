"""Helpers shared by the ImageJ bridge tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import numpy as np


def square(x: float, y: float, size: float = 10.0) -> np.ndarray:
    """A sub-pixel square polygon (x, y) with its top-left corner at (x, y)."""
    return np.array([[x, y], [x + size, y], [x + size, y + size], [x, y + size]], dtype=np.float64)


def java_polygon_roi(poly, *, name=None, position=None, cztp=None):
    """A PolygonRoi built with ImageJ's own API (as a user's ROI would be)."""
    import jpype

    from rescunet_ij.bridge._java import jc

    PolygonRoi, Roi, FloatPolygon = jc.PolygonRoi, jc.Roi, jc.FloatPolygon

    p = np.asarray(poly, dtype=np.float32)
    roi = PolygonRoi(
        FloatPolygon(jpype.JArray(jpype.JFloat)(p[:, 0]), jpype.JArray(jpype.JFloat)(p[:, 1])),
        Roi.POLYGON,
    )
    if name is not None:
        roi.setName(name)
    if position is not None:
        roi.setPosition(int(position))
    if cztp is not None:
        roi.setPosition(*[int(v) for v in cztp])
    return roi


def run_macro(code: str, arg: str | None = None) -> str | None:
    """Run ImageJ macro code; a macro error raises RuntimeError instead of opening a dialog."""
    import jpype

    from rescunet_ij.bridge._java import jc

    interp = jc.Interpreter()
    interp.setIgnoreErrors(True)
    try:
        out = interp.run(code, arg)
    except jpype.JException as exc:  # exit("...") in the macro cancels it
        raise RuntimeError(f"macro stopped: {exc}") from exc
    if interp.getErrorMessage() is not None:
        raise RuntimeError(f"macro error: {interp.getErrorMessage()}")
    return None if out is None else str(out)
