"""Starting/attaching ImageJ, lazy imports, and the no-JVM errors (several in fresh processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from rescunet_ij.errors import ConfigError, ImageJError

pytestmark = pytest.mark.ij


def _run(
    code: str, *, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def test_imports_start_no_jvm_and_load_no_java_packages():
    r = _run(
        """
        import sys
        import rescunet_ij, rescunet_ij.api, rescunet_ij.bridge, rescunet_ij.bridge.operations
        loaded = sorted(m for m in ("jpype", "scyjava", "imagej", "imglyb") if m in sys.modules)
        print("LOADED", loaded)
        from rescunet_ij.bridge._java import jc
        from rescunet_ij.errors import ImageJError
        try:
            jc.ImagePlus
        except ImageJError as exc:
            print("ERR", exc)
        from rescunet_ij.bridge import propagate_in_imagej, imageplus_to_movie
        for f in (lambda: propagate_in_imagej("m.rescunet"), lambda: imageplus_to_movie(None)):
            try:
                f()
            except ImageJError as exc:
                print("ERR2", type(exc).__name__)
        import jpype
        print("JVM", jpype.isJVMStarted())
        """
    )
    assert r.returncode == 0, r.stderr
    assert "LOADED []" in r.stdout
    assert "ERR ImageJ is not running; call rescunet_ij.bridge.start_imagej() first" in r.stdout
    assert r.stdout.count("ERR2 ImageJError") == 2
    assert "JVM False" in r.stdout


def test_start_twice_returns_the_same_session(imagej):
    from rescunet_ij.bridge import BridgeWarning, get_imagej, imagej_running, start_imagej

    assert imagej_running()
    assert start_imagej() is imagej
    assert get_imagej() is imagej
    with pytest.warns(BridgeWarning, match="already runs"):
        assert start_imagej(ij_jar="/nonexistent/ij.jar") is imagej
    assert imagej.ij1_only and imagej.ij is None and not imagej.headless
    assert imagej.version.startswith("1.5")
    assert imagej.jc.ImagePlus is not None
    assert imagej.current_image() is None or imagej.current_image().getTitle()
    with pytest.raises(ConfigError, match="unknown ImageJ mode"):
        start_imagej(mode="fancy")


def test_find_ij_jar_errors(tmp_path, monkeypatch):
    from rescunet_ij.bridge import find_ij_jar, gateway

    with pytest.raises(ImageJError, match="ImageJ jar not found"):
        find_ij_jar(tmp_path / "ij.jar")
    monkeypatch.setenv("IJ_JAR", str(tmp_path / "missing.jar"))
    monkeypatch.setattr(gateway, "DEFAULT_IJ_JARS", ())
    with pytest.raises(ImageJError, match="libij-java"):
        find_ij_jar()
    jar = tmp_path / "my-ij.jar"
    jar.write_bytes(b"PK")
    monkeypatch.setenv("IJ_JAR", str(jar))
    assert find_ij_jar() == jar


def test_no_display_runs_headless_with_a_warning():
    r = _run(
        """
        import warnings, numpy as np
        from rescunet_ij.bridge import start_imagej, movie_to_imageplus, imageplus_to_movie
        from rescunet_ij.io.movie import as_movie
        from rescunet_ij.errors import ImageJError
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            h = start_imagej()
        print("WARN", [str(x.message)[:40] for x in w])
        print("HEADLESS", h.headless)
        a = np.arange(2 * 5 * 6, dtype=np.uint16).reshape(2, 5, 6)
        back = imageplus_to_movie(movie_to_imageplus(as_movie(a)))
        print("PIXELS", bool((back.values[:, 0, 0] == a).all()))
        try:
            h.roi_manager()
        except ImageJError as exc:
            print("RM", str(exc)[:40])
        try:
            movie_to_imageplus(as_movie(a), show=True)
        except ImageJError as exc:
            print("SHOW", str(exc)[:60])
        try:
            start_imagej(mode="gui")
        except Exception as exc:
            print("unexpected", exc)
        """,
        env={"DISPLAY": None, "WAYLAND_DISPLAY": None},
    )
    assert r.returncode == 0, r.stderr
    assert "WARN ['no display (DISPLAY is not set): ImageJ " in r.stdout
    assert "HEADLESS True" in r.stdout and "PIXELS True" in r.stdout
    assert "RM the ROI Manager needs a display" in r.stdout
    assert "SHOW cannot show the image: Java runs headless" in r.stdout


def test_gui_mode_needs_a_display():
    r = _run(
        """
        from rescunet_ij.bridge import start_imagej
        from rescunet_ij.errors import ImageJError
        try:
            start_imagej(mode="interactive")
        except ImageJError as exc:
            print("ERR", exc)
        import jpype; print("JVM", jpype.isJVMStarted())
        """,
        env={"DISPLAY": None, "WAYLAND_DISPLAY": None},
    )
    assert "ERR mode='interactive' needs a display" in r.stdout, r.stderr
    assert "JVM False" in r.stdout


def test_attach_to_a_jvm_started_elsewhere():
    from rescunet_ij.bridge import find_ij_jar

    jar = str(find_ij_jar())
    r = _run(
        f"""
        import jpype
        jpype.startJVM("-Djava.awt.headless=true", classpath=[{jar!r}])  # e.g. what PyImageJ did
        from rescunet_ij.bridge import start_imagej, get_imagej
        h = start_imagej()
        print("ATTACHED", h.attached, h.mode, h.headless, get_imagej() is h)
        """
    )
    assert r.returncode == 0, r.stderr
    assert "ATTACHED True headless True True" in r.stdout


def test_jvm_without_imagej_is_refused():
    r = _run(
        """
        import jpype
        jpype.startJVM("-Djava.awt.headless=true")
        from rescunet_ij.bridge import start_imagej
        from rescunet_ij.errors import ImageJError
        try:
            start_imagej()
        except ImageJError as exc:
            print("ERR", exc)
        """
    )
    assert "ERR a JVM already runs in this process but without ImageJ 1.x" in r.stdout, r.stderr


def test_process_with_open_windows_exits(tmp_path):
    """A shown stack window keeps a non-daemon Java thread; start_imagej() closes it at exit."""
    if not os.environ.get("DISPLAY"):
        pytest.skip("needs a display")
    r = _run(
        """
        from rescunet_ij.bridge import start_imagej
        h = start_imagej(mode="gui")  # the ImageJ tool bar window too
        imp = h.jc.IJ.createHyperStack("t", 32, 32, 1, 1, 4, 8)
        imp.show()
        h.roi_manager()
        print("SHOWN", h.mode, h.jc.IJ.getInstance() is not None)
        """,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "SHOWN gui True" in r.stdout


def test_fiji_path_errors_without_starting_java(tmp_path):
    """The PyImageJ path (not runnable here: no Fiji, no Maven) fails early and clearly."""
    r = _run(
        f"""
        from rescunet_ij.bridge import start_imagej
        from rescunet_ij.errors import ImageJError, MissingExtraError, ConfigError
        for kwargs in ({{"fiji_dir": "/nonexistent/Fiji.app"}}, {{"fiji_dir": {str(tmp_path)!r}}},
                       {{"fiji_dir": {str(tmp_path)!r}, "ij_jar": "/x/ij.jar"}}):
            try:
                start_imagej(**kwargs)
            except (ImageJError, MissingExtraError, ConfigError) as exc:
                print(type(exc).__name__, str(exc)[:90])
        import sys
        print("JVM", "jpype" in sys.modules and sys.modules["jpype"].isJVMStarted())
        """
    )
    assert "ImageJError Fiji folder not found: /nonexistent/Fiji.app" in r.stdout, r.stderr
    import importlib.util

    if importlib.util.find_spec("imagej") is None:
        assert (
            "MissingExtraError Starting Fiji from Python needs the Python package 'pyimagej'"
            in r.stdout
        )
    assert "ConfigError give either fiji_dir" in r.stdout
    assert "JVM False" in r.stdout
