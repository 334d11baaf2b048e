"""Start ImageJ in this Python process, or attach to the one that runs already.

Two ways in:

* **Fiji / ImageJ2 through PyImageJ** (``start_imagej("/path/to/Fiji.app")`` or a Maven endpoint
  such as ``"sc.fiji:fiji"``): :func:`imagej.init` builds the JVM and the ImageJ2 gateway
  (``handle.ij``); the ImageJ 1.x classes the bridge needs stay reachable through
  :data:`rescunet_ij.bridge._java.jc`. Needs the ``fiji`` extra (``pip install
  'rescunet-ij[fiji]'``) and, for a Maven endpoint, network access. Java is chosen first
  (:func:`plan_fiji_java`): an installed Java that is new enough for that Fiji, else scyjava
  downloads Java :data:`FIJI_JAVA_VERSION`; an installed Java that is too old is an error.
* **A plain ImageJ 1.x jar** (``start_imagej()`` finds ``$IJ_JAR`` or Debian's
  ``/usr/share/java/ij.jar``; or ``start_imagej(ij_jar=...)``): scyjava starts a JVM with just
  that jar, never downloading anything. Needs the ``imagej`` extra.

A JVM cannot be restarted in a process (a JPype limit), so :func:`start_imagej` is idempotent:
later calls return the first handle. When some other code (a PyImageJ session, Fiji's Python
mode, a Fiji Python script) already started Java with ImageJ on the class path, the bridge
attaches to it, finding that session's ImageJ2 gateway when there is one (:func:`find_gateway`).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError, ImageJError, MissingExtraError
from ._java import NOT_RUNNING, jc, jvm_running

__all__ = [
    "DEFAULT_IJ_JARS",
    "FIJI_JAVA_VERSION",
    "BridgeWarning",
    "ImageJHandle",
    "JavaPlan",
    "find_gateway",
    "find_ij_jar",
    "get_imagej",
    "imagej_running",
    "java_major_version",
    "plan_fiji_java",
    "start_imagej",
]

Mode = Literal["headless", "interactive", "gui"]
_MODES = ("headless", "interactive", "gui")

DEFAULT_IJ_JARS: tuple[str, ...] = ("/usr/share/java/ij.jar",)
"""Where :func:`find_ij_jar` looks after ``$IJ_JAR`` (Debian/Ubuntu ``libij-java``)."""

FIJI_JAVA_VERSION = 21
"""The Java major version current Fiji is built for (Fiji since 2024 ships and recommends Java
21): what a Maven endpoint, or a Fiji.app whose jars say nothing, needs, and what scyjava
downloads when no Java is installed."""

MIN_JAVA_VERSION = 11
"""The oldest Java JPype/scyjava start (scyjava refuses older ones)."""


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
    java_options
        The JVM options the bridge started Java with.
    java
        For Fiji started through PyImageJ: which Java was chosen (:attr:`JavaPlan.describe`).
    """

    mode: str
    ij1_only: bool
    ij: Any = None
    ij_jar: Path | None = None
    fiji_dir: str | None = None
    attached: bool = False
    headless: bool = False
    java_options: tuple[str, ...] = field(default_factory=tuple)
    java: str | None = None

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


# ----------------------------------------------------------------------------- Java for Fiji

# Fiji.app/java/<platform>/<jdk>/: the Java Fiji's launcher ships (names as in Fiji's
# config/jaunch/fiji.toml, -Dscijava.app.java-root).
_FIJI_JAVA_PLATFORMS = {
    ("linux", "x86_64"): "linux64",
    ("linux", "amd64"): "linux64",
    ("linux", "aarch64"): "linux-arm64",
    ("linux", "arm64"): "linux-arm64",
    ("darwin", "arm64"): "macos-arm64",
    ("darwin", "x86_64"): "macos64",
    ("win32", "amd64"): "win64",
    ("win32", "x86_64"): "win64",
    ("win32", "arm64"): "win-arm64",
}
# Jars whose class files tell which Java a Fiji.app is built for (the SciJava/ImageJ2 core).
_CORE_JAR_PREFIXES = ("scijava-common", "imagej-common", "imagej-legacy", "imagej-2", "fiji-2")


@dataclass(frozen=True)
class JavaPlan:
    """Which Java a Fiji start uses, and how scyjava is told (:func:`plan_fiji_java`).

    Attributes
    ----------
    required
        The Java major version this Fiji needs.
    reason
        Why (e.g. "its jars are built for Java 21").
    java
        The installed ``java`` that will run Fiji, or None: scyjava downloads one.
    version
        Its major version (None when downloading).
    source
        Where it was found: ``"JAVA_HOME"``, ``"Fiji.app/java"``, ``"PATH"``, or ``"download"``.
    fetch, fetch_version
        What goes to ``scyjava.config.set_java_constraints(fetch=..., version=...)``.
    java_home
        ``JAVA_HOME`` to set before Java starts (so scyjava picks ``java``), or None to leave it.
    """

    required: int
    reason: str
    java: Path | None
    version: int | None
    source: str
    fetch: str
    fetch_version: str
    java_home: Path | None = None

    @property
    def describe(self) -> str:
        """One line for messages, e.g. ``Java 21 at /usr/lib/jvm/.../bin/java (JAVA_HOME)``."""
        if self.java is None:
            return f"Java {self.fetch_version} downloaded by scyjava (no Java installed)"
        return f"Java {self.version} at {self.java} ({self.source})"


def java_major_version(java: str | os.PathLike[str]) -> int:
    """The major version of a ``java`` executable (runs ``java -version``): 8 for 1.8.0_x.

    Raises
    ------
    ImageJError
        When it cannot be run or its output names no version.
    """
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ImageJError(f"cannot run {java} -version: {exc}") from exc
    text = (out.stderr or "") + (out.stdout or "")
    m = re.search(r'version "(\d+)(?:\.(\d+))?[^"]*"', text)
    if not m:
        raise ImageJError(
            f"cannot tell the Java version of {java}: 'java -version' printed "
            f"{text.strip()[:200]!r}; point JAVA_HOME at a working Java"
        )
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def _java_exe(home: Path) -> Path:
    return home / "bin" / ("java.exe" if os.name == "nt" else "java")


def _fiji_bundled_java(fiji_dir: Path) -> Path | None:
    """The ``java`` Fiji.app ships for this platform (``Fiji.app/java/linux64/<jdk>/``), if any."""
    key = (sys.platform if sys.platform != "cygwin" else "win32", platform.machine().lower())
    sub = _FIJI_JAVA_PLATFORMS.get(key)
    if sub is None or not (fiji_dir / "java" / sub).is_dir():
        return None
    homes = sorted((fiji_dir / "java" / sub).iterdir(), reverse=True)
    for home in homes:
        for h in (home, home / "Contents" / "Home"):  # macOS JDKs: <jdk>/Contents/Home
            if _java_exe(h).is_file():
                return _java_exe(h)
    return None


def _class_java_version(jar: Path) -> int | None:
    """The Java version the first class file of a jar is compiled for (class major - 44)."""
    try:
        with zipfile.ZipFile(jar) as zf:
            for name in zf.namelist():
                if name.endswith(".class") and not name.startswith("META-INF/"):
                    if name.endswith("module-info.class"):
                        continue
                    with zf.open(name) as fh:
                        head = fh.read(8)
                    if len(head) == 8 and head[:4] == b"\xca\xfe\xba\xbe":
                        return int.from_bytes(head[6:8], "big") - 44
                    return None
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    return None


def _fiji_java_requirement(fiji_dir: Path | None) -> tuple[int, str]:
    """(Java major version, reason) a Fiji.app (None: a Maven endpoint) needs."""
    found: list[int] = []
    if fiji_dir is not None:
        jars = sorted((fiji_dir / "jars").glob("*.jar")) if (fiji_dir / "jars").is_dir() else []
        for jar in jars:
            if jar.name.startswith(_CORE_JAR_PREFIXES):
                v = _class_java_version(jar)
                if v is not None and v > 0:
                    found.append(v)
    if found:
        v = max(found)
        need = max(v, MIN_JAVA_VERSION)
        why = f"its ImageJ2/SciJava jars are built for Java {v}"
        if need > v:
            why += f"; Python's JPype needs Java {MIN_JAVA_VERSION}+"
        return need, why
    return FIJI_JAVA_VERSION, f"current Fiji is built for Java {FIJI_JAVA_VERSION}"


def plan_fiji_java(
    fiji_dir: str | os.PathLike[str] | None = None,
    *,
    environ: dict[str, str] | None = None,
) -> JavaPlan:
    """Choose the Java for starting Fiji through PyImageJ (nothing is started or changed).

    Installed Java wins; a download happens only when none is installed:

    1. What the Fiji needs: the newest Java its core jars (``jars/scijava-common-*.jar``,
       ``imagej-*``, ``fiji-*``) are compiled for, at least :data:`MIN_JAVA_VERSION`; for a Maven
       endpoint or a folder whose jars say nothing, :data:`FIJI_JAVA_VERSION`.
    2. The first installed Java that is new enough, looking at ``$JAVA_HOME/bin/java``, then
       the Java inside Fiji.app (``Fiji.app/java/<platform>/<jdk>``), then ``java`` on ``PATH``.
       scyjava is then told ``fetch="auto"`` with that version as the minimum, so it uses this
       Java and downloads nothing (``JAVA_HOME`` is set to it when it is not already there).
       ``fetch="never"`` would say the same, but PyImageJ (1.8.0 and its current source) fails
       with ``UnboundLocalError`` in ``_guess_java_version`` when fetch is ``"never"``.
    3. No Java installed at all: ``fetch="auto"`` with version :data:`FIJI_JAVA_VERSION` (or
       newer when the Fiji needs it): scyjava (cjdk) downloads it, once, into its cache.
       scyjava's own default would download Java 11, too old for current Fiji.

    Parameters
    ----------
    fiji_dir
        The Fiji.app folder, or None for a Maven endpoint.
    environ
        The environment to look in (``JAVA_HOME``, ``PATH``); default ``os.environ``.

    Raises
    ------
    ImageJError
        When Java is installed but every one found is older than the Fiji needs (the message
        names each and how to get a newer one), or one cannot be run.
    """
    env = os.environ if environ is None else environ
    fiji = Path(fiji_dir).expanduser() if fiji_dir is not None else None
    required, reason = _fiji_java_requirement(fiji)
    candidates: list[tuple[Path, str]] = []
    home = env.get("JAVA_HOME")
    if home and _java_exe(Path(home)).is_file():
        candidates.append((_java_exe(Path(home)), "JAVA_HOME"))
    bundled = _fiji_bundled_java(fiji) if fiji is not None else None
    if bundled is not None:
        candidates.append((bundled, "Fiji.app/java"))
    on_path = shutil.which("java", path=env.get("PATH", ""))
    if on_path:
        candidates.append((Path(on_path), "PATH"))
    too_old: list[str] = []
    for java, source in candidates:
        version = java_major_version(java)
        if version >= required:
            java_home = None
            if source != "JAVA_HOME":  # scyjava/jgo look at JAVA_HOME first: make it this Java
                java_home = java.resolve().parent.parent
            return JavaPlan(
                required, reason, java, version, source, "auto", str(required), java_home
            )
        too_old.append(f"Java {version} at {java} ({source})")
    if too_old:
        what = f"Fiji at {fiji}" if fiji is not None else "Fiji"
        raise ImageJError(
            f"{what} needs Java {required} or newer ({reason}), but the installed Java is "
            f"older: {'; '.join(too_old)}. Install Java {required} (conda: conda install -c "
            f"conda-forge openjdk={required}; Debian/Ubuntu: apt-get install "
            f"openjdk-{required}-jdk; or any JDK from https://adoptium.net) and set JAVA_HOME "
            "to it. rescunet-ij downloads Java only when none is installed"
        )
    fetch_version = str(max(required, FIJI_JAVA_VERSION))
    return JavaPlan(required, reason, None, None, "download", "auto", fetch_version)


def _apply_java_plan(plan: JavaPlan) -> None:
    """Tell scyjava, before :func:`imagej.init`, to use the Java :func:`plan_fiji_java` chose.

    scyjava before 1.12 cannot download Java (it has no ``set_java_constraints``): there only
    ``JAVA_HOME`` matters, and no installed Java is an error. scyjava 1.12.0-1.12.2 with
    ``fetch="auto"`` also downloads Maven when ``mvn`` is not on PATH; 1.12.3+ does not.
    """
    import scyjava

    setter = getattr(scyjava.config, "set_java_constraints", None)
    if setter is None and plan.java is None:
        raise ImageJError(
            f"no Java is installed, and scyjava {getattr(scyjava, '__version__', '< 1.12')} "
            f"cannot download one; install Java {plan.fetch_version} (conda install -c "
            f"conda-forge openjdk={plan.fetch_version}) or upgrade scyjava "
            "(pip install 'scyjava>=1.12.3')"
        )
    if plan.java_home is not None:
        os.environ["JAVA_HOME"] = str(plan.java_home)
    if setter is not None:
        setter(fetch=plan.fetch, version=plan.fetch_version)


def find_gateway() -> Any:
    """The ImageJ2 gateway (``net.imagej.ImageJ``) of the Fiji running in this JVM, or None.

    Looks, in this order, at PyImageJ's module attribute ``imagej.gateway`` (PyImageJ sets it
    while ``imagej.init(mode="gui")`` blocks), then at the running ImageJ2 itself: its one active
    ``net.imagej.legacy.LegacyService.getInstance()`` (the service that ties ImageJ 1.x to
    ImageJ2, a static singleton) gives the SciJava context, and ``net.imagej.ImageJ(context)``
    wraps it in a gateway. That is how the bridge finds Fiji when it runs in **Fiji's Python
    mode**: Fiji's launcher script calls ``imagej.init(app_dir, mode="interactive:force")`` and
    keeps the gateway in a local variable, so no Python name holds it (Fiji scripts get it as a
    ``#@ ImageJ ij`` parameter, and may pass it as ``start_imagej(gateway=ij)``). PyImageJ's
    Python attributes (``ij.py``, ``ij.legacy`` ...) apply to any ``net.imagej.ImageJ`` object.

    Returns None on a JVM without ImageJ2 (plain ij.jar) or without an active legacy layer.
    Not tested here: there is no Fiji/ImageJ2 on the test machines.
    """
    mod = sys.modules.get("imagej")
    gateway = getattr(mod, "gateway", None) if mod is not None else None
    if gateway is not None:
        return gateway
    if not jvm_running():
        return None
    import jpype

    try:
        legacy_service = jpype.JClass("net.imagej.legacy.LegacyService")
        imagej2 = jpype.JClass("net.imagej.ImageJ")
    except Exception:  # noqa: BLE001 - JPype raises several types for a missing class
        return None
    legacy = legacy_service.getInstance()
    if legacy is None:
        return None
    return imagej2(legacy.getContext())


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
    if gateway is None:
        gateway = find_gateway()
    headless = _headless_now()
    if headless:
        found = "headless"
    else:
        found = "gui" if jc.IJ.getInstance() is not None else "interactive"
    fiji_dir = None
    if gateway is not None:
        system = jc.System
        where = system.getProperty("fiji.dir") or system.getProperty("imagej.dir")
        fiji_dir = str(where) if where is not None else None
    _HANDLE = ImageJHandle(
        mode=found,
        ij1_only=gateway is None,
        ij=gateway,
        fiji_dir=fiji_dir,
        attached=True,
        headless=headless,
    )
    return _HANDLE


def _start_pyimagej(target: str, mode: str, java_options: Sequence[str]) -> ImageJHandle:
    """Fiji/ImageJ2 through PyImageJ (not testable without Fiji; kept deliberately thin).

    Java is chosen first (:func:`plan_fiji_java`, tested) and given to scyjava; then
    :func:`imagej.init` starts Fiji (``target``: a Fiji.app folder or a Maven endpoint).
    """
    global _HANDLE
    if importlib.util.find_spec("imagej") is None:
        raise MissingExtraError("pyimagej", "fiji", "Starting Fiji from Python")
    plan = plan_fiji_java(target if Path(target).is_dir() else None)
    import imagej
    import scyjava

    _apply_java_plan(plan)
    for opt in java_options:
        scyjava.config.add_option(opt)
    # PyImageJ's "gui" mode blocks until the window closes (Linux/Windows); start interactive and
    # show the UI instead so that Python keeps control. On macOS only "gui"/"headless" work.
    init_mode = "interactive" if (mode == "gui" and sys.platform != "darwin") else mode
    try:
        ij = imagej.init(target, mode=init_mode, add_legacy=True)
    except Exception as exc:
        raise ImageJError(
            f"PyImageJ could not start Fiji/ImageJ2 from {target!r} in {mode} mode with "
            f"{plan.describe}: {exc}. Check that the folder is a Fiji.app (with jars/ and "
            "plugins/), or that the Maven endpoint (and, without an installed Java, the Java "
            "download) is reachable; see https://py.imagej.net/en/latest/Initialization.html"
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
        java=plan.describe,
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
        ``"2.14.0"``): starts Fiji/ImageJ2 through :func:`imagej.init` (extra ``fiji``). Java:
        an installed one new enough for that Fiji (``JAVA_HOME``, the Java inside Fiji.app,
        ``java`` on PATH), else scyjava downloads Java 21 (:func:`plan_fiji_java`).
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
        Without it, attaching to a running JVM finds the gateway itself (:func:`find_gateway`;
        e.g. in Fiji's Python mode).

    Returns
    -------
    ImageJHandle
        The session; the same object on every later call.

    Raises
    ------
    ImageJError
        No jar/installation found, Java cannot start, the installed Java is too old for the
        Fiji, a JVM without ImageJ runs already, or a display-needing mode without a display.
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
