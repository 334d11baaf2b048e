"""Lazy registry of the ImageJ 1.x Java classes the bridge uses.

``jc.ImagePlus`` and friends resolve (through :func:`scyjava.jimport`) the first time they are
used, and only once a JVM runs: unlike ``scyjava.jimport`` itself, the registry never starts a JVM
silently. Call :func:`rescunet_ij.bridge.start_imagej` first.

Nothing here is imported at module import time except the standard library, so importing
:mod:`rescunet_ij.bridge` stays cheap and side-effect free.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ImageJError, MissingExtraError

__all__ = ["JavaClasses", "jc", "jvm_running", "require_jvm", "to_java_array"]

NOT_RUNNING = "ImageJ is not running; call rescunet_ij.bridge.start_imagej() first"

# Short name -> fully qualified Java class name (ImageJ 1.x plus the AWT classes we need).
_CLASSES: dict[str, str] = {
    "IJ": "ij.IJ",
    "ImageJ": "ij.ImageJ",
    "ImagePlus": "ij.ImagePlus",
    "ImageStack": "ij.ImageStack",
    "CompositeImage": "ij.CompositeImage",
    "WindowManager": "ij.WindowManager",
    "Prefs": "ij.Prefs",
    "Calibration": "ij.measure.Calibration",
    "Roi": "ij.gui.Roi",
    "PolygonRoi": "ij.gui.PolygonRoi",
    "ShapeRoi": "ij.gui.ShapeRoi",
    "OvalRoi": "ij.gui.OvalRoi",
    "Line": "ij.gui.Line",
    "PointRoi": "ij.gui.PointRoi",
    "TextRoi": "ij.gui.TextRoi",
    "Overlay": "ij.gui.Overlay",
    "FloatPolygon": "ij.process.FloatPolygon",
    "ByteProcessor": "ij.process.ByteProcessor",
    "ShortProcessor": "ij.process.ShortProcessor",
    "FloatProcessor": "ij.process.FloatProcessor",
    "ColorProcessor": "ij.process.ColorProcessor",
    "RoiManager": "ij.plugin.frame.RoiManager",
    "RoiEncoder": "ij.io.RoiEncoder",
    "RoiDecoder": "ij.io.RoiDecoder",
    "Interpreter": "ij.macro.Interpreter",
    "Color": "java.awt.Color",
    "GraphicsEnvironment": "java.awt.GraphicsEnvironment",
    "Window": "java.awt.Window",
    "System": "java.lang.System",
}


def jvm_running() -> bool:
    """True when a JVM runs in this process (a JVM in this process means JPype is imported)."""
    import sys

    jpype = sys.modules.get("jpype")
    return bool(jpype is not None and jpype.isJVMStarted())


def require_jvm() -> None:
    """Raise :class:`ImageJError` unless a JVM runs; :class:`MissingExtraError` without JPype."""
    import importlib.util

    if importlib.util.find_spec("jpype") is None or importlib.util.find_spec("scyjava") is None:
        raise MissingExtraError("jpype1/scyjava", "imagej", "The ImageJ bridge")
    if not jvm_running():
        raise ImageJError(NOT_RUNNING)


class JavaClasses:
    """Attribute access to Java classes, resolved lazily once the JVM runs.

    Examples
    --------
    >>> from rescunet_ij.bridge._java import jc
    >>> imp = jc.ImagePlus()          # doctest: +SKIP (needs a running ImageJ)
    """

    def __init__(self, classes: dict[str, str]) -> None:
        self._names = dict(classes)
        self._cache: dict[str, Any] = {}

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._names))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._cache[name]
        except KeyError:
            pass
        qualified = self._names.get(name)
        if qualified is None:
            raise AttributeError(
                f"the Java class registry has no {name!r}; known: {', '.join(sorted(self._names))}"
            )
        require_jvm()
        import scyjava

        try:
            cls = scyjava.jimport(qualified)
        except Exception as exc:  # JPype raises TypeError/ImportError subclasses here
            raise ImageJError(
                f"the Java class {qualified} is not on the running JVM's class path ({exc}); "
                "was the JVM started without ImageJ 1.x (ij.jar)? Start Python anew and call "
                "rescunet_ij.bridge.start_imagej() before anything else starts Java"
            ) from exc
        self._cache[name] = cls
        return cls


jc = JavaClasses(_CLASSES)
"""The registry every bridge module uses (``jc.ImagePlus``, ``jc.RoiManager``, ...)."""


def to_java_array(values: np.ndarray) -> Any:
    """A new Java primitive array with the contents of a 1-D numpy array (fast bulk copy).

    ``uint8``/``int8`` -> ``byte[]``, ``uint16``/``int16`` -> ``short[]``, ``int32``/``uint32`` ->
    ``int[]``, ``float32`` -> ``float[]``, ``float64`` -> ``double[]``. Unsigned data keep their
    bit pattern (ImageJ reads them as unsigned).
    """
    import jpype

    a = np.ascontiguousarray(values).ravel()
    kinds = {
        "u1": (np.int8, jpype.JByte),
        "i1": (np.int8, jpype.JByte),
        "u2": (np.int16, jpype.JShort),
        "i2": (np.int16, jpype.JShort),
        "u4": (np.int32, jpype.JInt),
        "i4": (np.int32, jpype.JInt),
        "f4": (np.float32, jpype.JFloat),
        "f8": (np.float64, jpype.JDouble),
    }
    key = f"{a.dtype.kind}{a.dtype.itemsize}"
    if key not in kinds:
        raise TypeError(f"no Java array type for numpy dtype {a.dtype}")
    np_type, j_type = kinds[key]
    return jpype.JArray(j_type)(a.view(np_type))
