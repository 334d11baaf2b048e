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


# --- Java for Fiji through PyImageJ: the decisions, on real files and real scyjava config ---
# PyImageJ cannot start here (no Fiji, no Maven), so these test what happens before
# imagej.init: which Java, which scyjava fetch policy, which message.

needs_posix = pytest.mark.skipif(os.name == "nt", reason="fake java is a shell script")


@pytest.fixture
def scyjava_config():
    """scyjava's Java constraints, restored after the test (they are process-wide)."""
    import scyjava

    cfg = scyjava.config
    saved = (cfg.get_fetch_java(), cfg.get_java_vendor(), cfg.get_java_version())
    yield cfg
    cfg.set_java_constraints(fetch=saved[0], vendor=saved[1], version=saved[2])


def _fake_java(home, version_line):
    """A JAVA_HOME folder whose bin/java prints `version_line` like `java -version` does."""
    java = home / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\necho 'OpenJDK Runtime' >&2\n")
    java.chmod(0o755)
    return java


def _fiji_app(root, class_major):
    """A Fiji.app with jars/ whose core jar holds a class compiled for class-file `class_major`."""
    import zipfile

    (root / "jars").mkdir(parents=True)
    with zipfile.ZipFile(root / "jars" / "scijava-common-2.99.0.jar", "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        zf.writestr(
            "org/scijava/Context.class", b"\xca\xfe\xba\xbe\x00\x00" + bytes([0, class_major])
        )
    (root / "jars" / "other-1.0.jar").write_bytes(b"not a zip")  # ignored: not a core jar
    return root


@needs_posix
def test_java_major_version_parses_real_version_lines(tmp_path):
    import shutil

    from rescunet_ij.bridge.gateway import java_major_version

    lines = {
        'openjdk version "21.0.4" 2024-07-16 LTS': 21,
        'openjdk version "17.0.2" 2022-01-18': 17,
        'java version "1.8.0_292"': 8,
        'openjdk version "21" 2023-09-19': 21,
        'openjdk version "22-ea" 2024-03-19': 22,
    }
    for i, (line, major) in enumerate(lines.items()):
        assert java_major_version(_fake_java(tmp_path / f"j{i}", line)) == major
    with pytest.raises(ImageJError, match="cannot tell the Java version"):
        java_major_version(_fake_java(tmp_path / "bad", "hello"))
    with pytest.raises(ImageJError, match="cannot run"):
        java_major_version(tmp_path / "missing" / "java")
    real = shutil.which("java")
    if real:  # the Java installed on this machine
        assert java_major_version(real) >= 11


@needs_posix
def test_installed_java_is_used_and_nothing_is_downloaded(tmp_path, monkeypatch, scyjava_config):
    import scyjava

    from rescunet_ij.bridge.gateway import _apply_java_plan, plan_fiji_java

    java = _fake_java(tmp_path / "jdk21", 'openjdk version "21.0.4" 2024-07-16')
    env = {"JAVA_HOME": str(tmp_path / "jdk21"), "PATH": str(tmp_path / "empty")}
    plan = plan_fiji_java(None, environ=env)  # a Maven endpoint: current Fiji, Java 21
    assert (plan.java, plan.version, plan.source, plan.required) == (java, 21, "JAVA_HOME", 21)
    # "auto" with the installed version as the minimum: jgo takes JAVA_HOME's java, no download
    assert (plan.fetch, plan.fetch_version, plan.java_home) == ("auto", "21", None)
    assert plan.describe == f"Java 21 at {java} (JAVA_HOME)"

    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk21"))
    _apply_java_plan(plan)
    assert scyjava.config.get_fetch_java() == "auto"
    assert scyjava.config.get_java_version() == "21"
    assert os.environ["JAVA_HOME"] == str(tmp_path / "jdk21")  # left alone


@needs_posix
def test_too_old_installed_java_is_a_clear_error(tmp_path):
    from rescunet_ij.bridge.gateway import plan_fiji_java

    _fake_java(tmp_path / "jdk17", 'openjdk version "17.0.2" 2022-01-18')
    path_java = _fake_java(tmp_path / "usr", 'java version "1.8.0_292"')
    env = {"JAVA_HOME": str(tmp_path / "jdk17"), "PATH": str(path_java.parent)}
    with pytest.raises(ImageJError) as err:
        plan_fiji_java(None, environ=env)
    msg = str(err.value)
    assert "Fiji needs Java 21 or newer (current Fiji is built for Java 21)" in msg
    assert f"Java 17 at {tmp_path / 'jdk17' / 'bin' / 'java'} (JAVA_HOME)" in msg
    assert f"Java 8 at {path_java} (PATH)" in msg
    assert "conda install -c conda-forge openjdk=21" in msg and "set JAVA_HOME" in msg
    # a Fiji.app whose jars are built for Java 8 runs on that Java 17 (JPype needs 11+)
    fiji = _fiji_app(tmp_path / "Fiji.app", 52)
    plan = plan_fiji_java(fiji, environ=env)
    assert (plan.required, plan.version, plan.source) == (11, 17, "JAVA_HOME")
    assert "built for Java 8" in plan.reason and "JPype needs Java 11+" in plan.reason
    assert plan.fetch_version == "11"  # the minimum jgo checks the installed Java against
    # ... and one built for Java 21 does not
    with pytest.raises(ImageJError, match=r"Fiji at .*Fiji21.app needs Java 21.*built for Java 21"):
        plan_fiji_java(_fiji_app(tmp_path / "Fiji21.app", 65), environ=env)


@needs_posix
def test_newer_java_on_path_wins_over_an_old_java_home(tmp_path, monkeypatch, scyjava_config):
    import scyjava

    from rescunet_ij.bridge.gateway import _apply_java_plan, plan_fiji_java

    _fake_java(tmp_path / "jdk17", 'openjdk version "17.0.2" 2022-01-18')
    java21 = _fake_java(tmp_path / "jdk21", 'openjdk version "21.0.4" 2024-07-16')
    env = {"JAVA_HOME": str(tmp_path / "jdk17"), "PATH": str(java21.parent)}
    plan = plan_fiji_java(None, environ=env)
    assert (plan.java, plan.source) == (java21, "PATH")
    assert plan.java_home == (tmp_path / "jdk21").resolve()  # so scyjava/jgo pick it too
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk17"))
    _apply_java_plan(plan)
    assert os.environ["JAVA_HOME"] == str((tmp_path / "jdk21").resolve())
    assert (scyjava.config.get_fetch_java(), scyjava.config.get_java_version()) == ("auto", "21")


@needs_posix
def test_java_inside_fiji_app_is_preferred_to_path(tmp_path):
    import platform
    import sys

    from rescunet_ij.bridge.gateway import _FIJI_JAVA_PLATFORMS, plan_fiji_java

    sub = _FIJI_JAVA_PLATFORMS.get((sys.platform, platform.machine().lower()))
    if sub is None:
        pytest.skip(f"no Fiji Java folder name known for {sys.platform}/{platform.machine()}")
    fiji = _fiji_app(tmp_path / "Fiji.app", 65)
    bundled = _fake_java(
        fiji / "java" / sub / "zulu21.42.19-ca-jdk21.0.7", 'openjdk version "21.0.7"'
    )
    other = _fake_java(tmp_path / "jdk22", 'openjdk version "22.0.1" 2024-04-16')
    plan = plan_fiji_java(fiji, environ={"PATH": str(other.parent)})
    assert (plan.java, plan.source, plan.version) == (bundled, "Fiji.app/java", 21)
    assert plan.java_home == bundled.resolve().parent.parent


def test_no_java_installed_downloads_java_21(tmp_path):
    from rescunet_ij.bridge.gateway import FIJI_JAVA_VERSION, plan_fiji_java

    (tmp_path / "empty").mkdir()
    env = {"PATH": str(tmp_path / "empty"), "JAVA_HOME": str(tmp_path / "nothing-here")}
    plan = plan_fiji_java(None, environ=env)
    assert FIJI_JAVA_VERSION == 21
    assert (plan.java, plan.source, plan.fetch, plan.fetch_version) == (
        None,
        "download",
        "auto",
        "21",
    )
    assert plan.describe == "Java 21 downloaded by scyjava (no Java installed)"
    # an old Fiji.app without Java around: still Java 21 is fetched (scyjava's default is 11)
    plan = plan_fiji_java(_fiji_app(tmp_path / "Fiji.app", 52), environ=env)
    assert (plan.required, plan.fetch_version) == (11, "21")


def test_no_gateway_on_a_plain_imagej1_jvm(imagej):
    from rescunet_ij.bridge.gateway import find_gateway

    assert find_gateway() is None  # no net.imagej.legacy.LegacyService on a plain ij.jar JVM
    assert imagej.ij is None and imagej.ij1_only
