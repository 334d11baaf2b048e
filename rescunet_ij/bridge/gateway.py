"""Start ImageJ in this Python process, or attach to the one that runs already.

Two ways in:

* **Fiji / ImageJ2 through PyImageJ** (``start_imagej("/path/to/Fiji.app")`` or a Maven endpoint
  such as ``"sc.fiji:fiji"``): :func:`imagej.init` builds the JVM and the ImageJ2 gateway
  (``handle.ij``); the ImageJ 1.x classes the bridge needs stay reachable through
  :data:`rescunet_ij.bridge._java.jc`. Needs the ``fiji`` extra (``pip install
  'rescunet-ij[fiji]'``) and, for a Maven endpoint, network access.
* **A plain ImageJ 1.x jar** (``start_imagej()`` finds ``$IJ_JAR`` or Debian's
  ``/usr/share/java/ij.jar``; or ``start_imagej(ij_jar=...)``): scyjava starts a JVM with just
  that jar, never downloading anything. Needs the ``imagej`` extra.

A JVM cannot be restarted in a process (a JPype limit), so :func:`start_imagej` is idempotent:
later calls return the first handle. When some other code (a PyImageJ session, a Fiji Python
script) already started Java with ImageJ on the class path, the bridge attaches to it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError, ImageJError, MissingExtraError
from ._java import NOT_RUNNING, jc, jvm_running

__all__ = [
    "DEFAULT_IJ_JARS",
    "BridgeWarning",
    "ImageJHandle",
    "find_ij_jar",
    "get_imagej",
    "imagej_running",
    "start_imagej",
]

Mode = Literal["headless", "interactive", "gui"]
_MODES = ("headless", "interactive", "gui")

DEFAULT_IJ_JARS: tuple[str, ...] = ("/usr/share/java/ij.jar",)
"""Where :func:`find_ij_jar` looks after ``$IJ_JAR`` (Debian/Ubuntu ``libij-java``)."""


class BridgeWarning(UserWarning):
    """Something about the ImageJ session or the ROIs that the user should know."""


@dataclass
class ImageJHandle:
    """The ImageJ session of this process (one per process).

    Attributes
    ----------
    mode
        ``"headless"``, ``"interactive"`` or ``"gui"`` as requested (or found when attaching).
    ij1_only
        True for a plain ImageJ 1.x JVM (no ImageJ2/SciJava, no PyImageJ gateway).
    ij
        The PyImageJ ImageJ2 gateway (``net.imagej.ImageJ``), or None on a plain ImageJ 1.x JVM.
    ij_jar
        The ImageJ 1.x jar on the class path (plain-jar sessions).
    fiji_dir
        The Fiji/ImageJ2 installation or Maven endpoint PyImageJ was started with.
    attached
        True when the JVM was started by someone else and the bridge attached to it.
    headless
        True when Java runs without a display (``java.awt.headless``): the ROI Manager, image
        windows and macros that open windows do not work then.
    """

    mode: str
    ij1_only: bool
    ij: Any = None
    ij_jar: Path | None = None
    fiji_dir: str | None = None
    attached: bool = False
    headless: bool = False
    java_options: tuple[str, ...] = field(default_factory=tuple)

    @property
    def jc(self) -> Any:
        """The lazy Java class registry (``handle.jc.ImagePlus``, ``handle.jc.RoiManager`` ...)."""
        return jc

    @property
    def version(self) -> str:
        """The ImageJ 1.x version, e.g. ``"1.53t"``."""
        return str(jc.IJ.getFullVersion())

    def current_image(self) -> Any:
        """The ImagePlus Fiji shows in front (``WindowManager.getCurrentImage()``), or None."""
        return jc.WindowManager.getCurrentImage()

    def roi_manager(self) -> Any:
        """The shared ROI Manager the user sees (opened when needed); needs a display."""
        if self.headless:
            raise ImageJError(
                "the ROI Manager needs a display, but Java runs headless; on a server start "
                "Python under a virtual display (xvfb-run python ...) so that DISPLAY is set "
                "before start_imagej(), or work with RoiSet.zip files instead (rescunet_ij.api)"
            )
        return jc.RoiManager.getRoiManager()


# One JVM per process (JPype cannot restart it): the handle mirrors that process-wide fact.
_HANDLE: ImageJHandle | None = None


def imagej_running() -> bool:
    """True when a JVM with ImageJ 1.x runs in this process."""
    if not jvm_running():
        return False
    import jpype

    try:
        jpype.JClass("ij.ImagePlus")
    except Exception:  # noqa: BLE001 - JPype raises several types for a missing class
        return False
    return True


def get_imagej() -> ImageJHandle:
    """The running session's handle (attaching to a JVM started elsewhere).

    Raises
    ------
    ImageJError
        When no JVM runs (call :func:`start_imagej`) or the JVM has no ImageJ 1.x classes.
    """
    if _HANDLE is not None and jvm_running():
        return _HANDLE
    if not jvm_running():
        raise ImageJError(NOT_RUNNING)
    return _attach(gateway=None)


def find_ij_jar(ij_jar: str | os.PathLike[str] | None = None) -> Path:
    """The ImageJ 1.x jar to use: ``ij_jar``, else ``$IJ_JAR``, else :data:`DEFAULT_IJ_JARS`.

    Raises
    ------
    ImageJError
        When none exists (the message lists where it looked and how to get one).
    """
    if ij_jar is not None:
        p = Path(ij_jar).expanduser()
        if not p.is_file():
            raise ImageJError(
                f"ImageJ jar not found: {p}; give the path of ij.jar "
                "(e.g. Fiji.app/jars/ij-1.54p.jar) or the Fiji.app folder as fiji_dir"
            )
        return p
    tried = []
    env = os.environ.get("IJ_JAR")
    candidates = ([env] if env else []) + list(DEFAULT_IJ_JARS)
    for c in candidates:
        tried.append(c)
        p = Path(c).expanduser()
        if p.is_file():
            return p
    raise ImageJError(
        f"no ImageJ 1.x jar found (looked at {', '.join(tried)}); install one "
        "(Debian/Ubuntu: apt-get install libij-java), set IJ_JAR=/path/to/ij.jar, pass "
        "ij_jar=..., or start Fiji through PyImageJ with start_imagej('/path/to/Fiji.app')"
    )


def _display_available() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _close_images_at_exit() -> None:
    """Close image windows before the JVM stops.

    A shown stack window runs a non-daemon thread ("zSelector") that only ImageWindow.close()
    ends; merely disposing windows (what scyjava does at exit) leaves it waiting and the Python
    process never exits.
    """
    try:
        wm = jc.WindowManager
        for image_id in list(wm.getIDList() or []):
            imp = wm.getImage(image_id)
            if imp is not None:
                imp.changes = False
                imp.close()
    except Exception:  # noqa: BLE001, S110 - the JVM is going away; nothing to report to
        pass


def _group_color_dir() -> Path | None:
    """A folder to use as ImageJ's folder whose ``luts/Glasbey.lut`` holds our object colours.

    ImageJ colours a ROI with group k by entry k of ``<ImageJ folder>/luts/Glasbey.lut``. A plain
    ij.jar has no such file (ImageJ then logs "LUT not found" for every grouped ROI and draws them
    yellow); with this table a group-k ROI gets :func:`rescunet_ij.io.rois.object_color` (k),
    the colour the bridge and :func:`rescunet_ij.io.rois.write_rois` use anyway. Returns None
    when the cache folder cannot be written (ImageJ then just logs).
    """
    from ..io.atomic import atomic_write_bytes
    from ..io.rois import object_color

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = cache / "rescunet-ij" / "imagej"
    lut = root / "luts" / "Glasbey.lut"
    table = bytearray(768)
    for k in range(1, 256):
        rgb = bytes.fromhex(object_color(k)[1:])
        table[k], table[256 + k], table[512 + k] = rgb
    try:
        if not lut.is_file() or lut.read_bytes() != bytes(table):
            lut.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(lut, bytes(table), overwrite=True)
    except OSError:
        return None
    return root


def _headless_now() -> bool:
    return bool(jc.GraphicsEnvironment.isHeadless())


def _attach(gateway: Any) -> ImageJHandle:
    global _HANDLE
    if not imagej_running():
        raise ImageJError(
            "a JVM already runs in this process but without ImageJ 1.x (class ij.ImagePlus not "
            "found), and a JVM cannot be restarted; start a new Python process and call "
            "rescunet_ij.bridge.start_imagej() before anything else starts Java"
        )
    if gateway is None and "imagej" in sys.modules:
        gateway = getattr(sys.modules["imagej"], "gateway", None)
    headless = _headless_now()
    if headless:
        found = "headless"
    else:
        found = "gui" if jc.IJ.getInstance() is not None else "interactive"
    _HANDLE = ImageJHandle(
        mode=found,
        ij1_only=gateway is None,
        ij=gateway,
        attached=True,
        headless=headless,
    )
    return _HANDLE


def _start_pyimagej(target: str, mode: str, java_options: Sequence[str]) -> ImageJHandle:
    """Fiji/ImageJ2 through PyImageJ (not testable without Fiji; kept deliberately thin)."""
    global _HANDLE
    if importlib.util.find_spec("imagej") is None:
        raise MissingExtraError("pyimagej", "fiji", "Starting Fiji from Python")
    import imagej
    import scyjava

    for opt in java_options:
        scyjava.config.add_option(opt)
    # PyImageJ's "gui" mode blocks until the window closes (Linux/Windows); start interactive and
    # show the UI instead so that Python keeps control. On macOS only "gui"/"headless" work.
    init_mode = "interactive" if (mode == "gui" and sys.platform != "darwin") else mode
    try:
        ij = imagej.init(target, mode=init_mode, add_legacy=True)
    except Exception as exc:
        raise ImageJError(
            f"PyImageJ could not start Fiji/ImageJ2 from {target!r} in {mode} mode: {exc}. "
            "Check that the folder is a Fiji.app (with jars/ and plugins/), or that the Maven "
            "endpoint is reachable; see https://py.imagej.net/en/latest/Initialization.html"
        ) from exc
    if ij is None:  # macOS GUI mode returns only when Fiji closes
        raise ImageJError("Fiji was closed; start_imagej(mode='gui') returns only then on macOS")
    if mode == "gui" and init_mode == "interactive":
        ij.ui().showUI()
    legacy = getattr(ij, "legacy", None)
    if legacy is None or not legacy.isActive():
        raise ImageJError(
            "Fiji/ImageJ2 started without the original ImageJ (legacy layer inactive), which the "
            "ROI Manager bridge needs; use a Fiji.app installation (it includes imagej-legacy)"
        )
    _HANDLE = ImageJHandle(
        mode=mode,
        ij1_only=False,
        ij=ij,
        fiji_dir=target,
        headless=_headless_now(),
        java_options=tuple(java_options),
    )
    return _HANDLE


def _start_ij1(jar: Path, mode: str, java_options: Sequence[str]) -> ImageJHandle:
    """A JVM holding only ImageJ 1.x, started through scyjava without any download."""
    global _HANDLE
    import jpype.imports  # noqa: F401  ("from ij import IJ" works once Java runs)
    import scyjava

    display = _display_available()
    if mode in ("interactive", "gui") and not display:
        raise ImageJError(
            f"mode={mode!r} needs a display but DISPLAY is not set; start Python under a "
            "(virtual) display, e.g. xvfb-run python script.py, or use mode='headless'"
        )
    if not display:
        warnings.warn(
            "no display (DISPLAY is not set): ImageJ runs headless, so the ROI Manager, image "
            "windows and macros that use them will not work; run under xvfb-run for those",
            BridgeWarning,
            stacklevel=3,
        )
    # 'never': the default 'always' tries to download a JDK, which fails offline.
    scyjava.config.set_java_constraints(fetch="never")
    scyjava.config.add_classpath(str(jar))
    options = [f"-Djava.awt.headless={'false' if display else 'true'}", *java_options]
    if not any(str(o).startswith(("-Dplugins.dir=", "-Dij.dir=")) for o in java_options):
        ij_dir = _group_color_dir()
        if ij_dir is not None:  # ImageJ 1.x takes its folder (luts/, plugins/) from plugins.dir
            options.append(f"-Dplugins.dir={ij_dir}")
    for opt in options:
        scyjava.config.add_option(opt)
    try:
        scyjava.start_jvm()
    except Exception as exc:
        raise ImageJError(
            f"could not start Java with {jar}: {exc}. Install Java 11+ (e.g. apt-get install "
            "openjdk-17-jre) or set JAVA_HOME"
        ) from exc
    scyjava.when_jvm_stops(_close_images_at_exit)
    if not imagej_running():
        raise ImageJError(f"{jar} does not contain ImageJ 1.x (ij.ImagePlus not found)")
    if any(str(o).startswith("-Dplugins.dir=") for o in options):
        # ImageJ loads the group colour table once and keeps it; load it now, before the menus
        # (first IJ.run/open) can move ImageJ's idea of its folder elsewhere.
        jc.Roi(0, 0, 1, 1).setGroup(1)
    if mode == "gui" and jc.IJ.getInstance() is None:
        jc.ImageJ(jc.ImageJ.EMBEDDED)  # the tool bar window; EMBEDDED: quitting never exits Python
    _HANDLE = ImageJHandle(
        mode=mode,
        ij1_only=True,
        ij_jar=jar,
        headless=_headless_now(),
        java_options=tuple(options),
    )
    return _HANDLE


def start_imagej(
    fiji_dir: str | os.PathLike[str] | None = None,
    *,
    ij_jar: str | os.PathLike[str] | None = None,
    mode: Mode = "headless",
    java_options: Sequence[str] = (),
    gateway: Any = None,
) -> ImageJHandle:
    """Start ImageJ in this process (once), or attach to the ImageJ that runs already.

    Parameters
    ----------
    fiji_dir
        A Fiji.app folder, or a Maven endpoint/version for PyImageJ (``"sc.fiji:fiji"``,
        ``"2.14.0"``): starts Fiji/ImageJ2 through :func:`imagej.init` (extra ``fiji``).
    ij_jar
        A plain ImageJ 1.x jar. Default when neither is given: ``$IJ_JAR``, then
        ``/usr/share/java/ij.jar``.
    mode
        ``"headless"`` (no ImageJ window; with a plain jar Java still uses the display when
        DISPLAY is set, because the ROI Manager is a window), ``"interactive"`` (GUI support,
        nothing shown) or ``"gui"`` (show the ImageJ/Fiji main window).
    java_options
        Extra JVM options, e.g. ``["-Xmx8g"]``; only effective when this call starts the JVM.
    gateway
        An existing PyImageJ gateway to attach to (when your code called ``imagej.init``).

    Returns
    -------
    ImageJHandle
        The session; the same object on every later call.

    Raises
    ------
    ImageJError
        No jar/installation found, Java cannot start, a JVM without ImageJ runs already, or a
        display-needing mode without a display.
    MissingExtraError
        Without jpype1/scyjava (``pip install 'rescunet-ij[imagej]'``) or, for Fiji, pyimagej.
    ConfigError
        For an unknown mode.
    """
    if mode not in _MODES:
        raise ConfigError(f"unknown ImageJ mode {mode!r}; choose one of {', '.join(_MODES)}")
    if importlib.util.find_spec("jpype") is None or importlib.util.find_spec("scyjava") is None:
        raise MissingExtraError("jpype1/scyjava", "imagej", "The ImageJ bridge")
    if jvm_running():
        if _HANDLE is not None:
            asked = fiji_dir is not None or ij_jar is not None or java_options
            if asked:
                warnings.warn(
                    "ImageJ already runs in this process; start_imagej() returns the running "
                    "session and ignores fiji_dir/ij_jar/java_options (a JVM cannot be restarted)",
                    BridgeWarning,
                    stacklevel=2,
                )
            if gateway is not None and _HANDLE.ij is None:
                _HANDLE.ij, _HANDLE.ij1_only = gateway, False
            return _HANDLE
        return _attach(gateway)
    if fiji_dir is not None and ij_jar is not None:
        raise ConfigError("give either fiji_dir (Fiji through PyImageJ) or ij_jar, not both")
    if fiji_dir is not None:
        target = str(fiji_dir)
        p = Path(target).expanduser()
        if p.is_file() and p.suffix == ".jar":
            return _start_ij1(p, mode, java_options)
        looks_like_path = os.sep in target or target.startswith((".", "~")) or p.exists()
        if looks_like_path and not p.is_dir():
            raise ImageJError(
                f"Fiji folder not found: {p}; give the Fiji.app folder (the one holding jars/ "
                "and plugins/), a Maven endpoint such as 'sc.fiji:fiji', or ij_jar=..."
            )
        return _start_pyimagej(str(p) if p.is_dir() else target, mode, java_options)
    return _start_ij1(find_ij_jar(ij_jar), mode, java_options)
