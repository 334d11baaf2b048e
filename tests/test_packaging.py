"""Packaging checks that need no build: version, license, changelog, sdist/wheel contents rules,
where install-fiji finds the Fiji files (checkout and wheel layout), the conda recipe and the
update-site layout. scripts/check_dist.sh builds and installs the real distributions."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rescunet_ij
from rescunet_ij import fiji_install
from rescunet_ij.errors import DataError

tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
FIJI_SCRIPTS = REPO / "fiji_scripts"


def fiji_files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for pat in ("*.groovy", "*.ijm")
        for p in root.rglob(pat)
        if p.is_file()
    }


def copy_package(dst: Path) -> Path:
    """A copy of the rescunet_ij package (sources only) at dst/rescunet_ij."""
    return Path(
        shutil.copytree(
            REPO / "rescunet_ij",
            dst / "rescunet_ij",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    )


# ------------------------------------------------------------------------------ version


def test_version_is_written_once():
    project = PYPROJECT["project"]
    assert "version" not in project, "the version lives in rescunet_ij/__init__.py only"
    assert "version" in project["dynamic"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "rescunet_ij.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc|\.dev|\.post)?\d*", rescunet_ij.__version__)


def test_version_attr_is_read_without_importing_the_package():
    """setuptools reads __version__ from the AST: no torch, not even rescunet_ij, is imported."""
    code = (
        "import sys\n"
        "from setuptools.config.expand import read_attr\n"
        f"v = read_attr('rescunet_ij.__version__', root_dir={str(REPO)!r})\n"
        "print(v, 'torch' in sys.modules, 'rescunet_ij' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split()
    assert out == [rescunet_ij.__version__, "False", "False"]


def test_changelog_has_the_current_version():
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(rescunet_ij.__version__)}\b", text, re.M), (
        f"CHANGELOG.md has no '## {rescunet_ij.__version__}' section"
    )


# ------------------------------------------------------------------------------ license


def test_license_file_matches_the_declared_license():
    project = PYPROJECT["project"]
    assert project["license"] == "BSD-3-Clause"  # PEP 639 SPDX expression, not a table
    assert project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License")
    assert "Copyright (c) 2026, the rescunet-ij authors" in text
    assert "Neither the name of the copyright holder" in text  # clause 3
    # PEP 639 metadata needs setuptools >= 77 at build time
    requires = PYPROJECT["build-system"]["requires"]
    assert any(re.fullmatch(r"setuptools>=(\d+)", r) and int(r[12:]) >= 77 for r in requires)
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))


# ------------------------------------------------------------------------------ build rules


def test_sdist_and_build_hook_take_fiji_scripts():
    manifest = (REPO / "MANIFEST.in").read_text().splitlines()
    assert "graft fiji_scripts" in manifest
    assert "include CHANGELOG.md" in manifest
    assert "prune tests" in manifest
    setup = (REPO / "setup.py").read_text()
    assert '"fiji_scripts"' in setup and '"rescunet_ij" / "fiji"' in setup
    assert "build_py" in setup


def test_build_py_copies_fiji_scripts_into_the_package(tmp_path):
    """setup.py's build_py (as python -m build runs it) puts fiji_scripts/ at rescunet_ij/fiji/."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(FIJI_SCRIPTS, src / "fiji_scripts")
    copy_package(src)
    build = tmp_path / "build"
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build)],
        cwd=src,
        check=True,
        capture_output=True,
    )
    fiji = build / "rescunet_ij" / "fiji"
    assert fiji_files(fiji) == fiji_files(FIJI_SCRIPTS)
    assert (build / "rescunet_ij" / "py.typed").is_file()
    assert list((build / "rescunet_ij" / "notebook_cells").glob("*.py"))
    # what install-fiji reads there is the same bytes
    for rel in fiji_files(FIJI_SCRIPTS):
        assert (fiji / rel).read_bytes() == (FIJI_SCRIPTS / rel).read_bytes()
    assert fiji_install.find_source(build / "rescunet_ij") == fiji


def test_test_extra_and_test_command_run_check_dist():
    test_extra = " ".join(PYPROJECT["project"]["optional-dependencies"]["test"])
    assert "build" in test_extra and "twine" in test_extra
    assert "scripts/check_dist.sh" in (REPO / "scripts" / "test.sh").read_text()
    assert (REPO / "scripts" / "check_dist.sh").is_file()


# ------------------------------------------------------------------------------ install-fiji


def test_find_source_in_the_checkout():
    assert fiji_install.find_source() == FIJI_SCRIPTS.resolve()
    assert fiji_install.find_source(REPO / "rescunet_ij") == FIJI_SCRIPTS


def test_find_source_in_a_wheel_layout(tmp_path):
    """Installed from a wheel: site-packages/rescunet_ij/fiji/, no fiji_scripts/ beside it."""
    site = tmp_path / "site-packages"
    package = copy_package(site)
    shutil.copytree(FIJI_SCRIPTS, package / "fiji")
    (site / "fiji_scripts").mkdir()  # a stray folder of that name that is not ours: not taken
    assert fiji_install.find_source(package) == package / "fiji"
    # the real module, imported from that copy, finds it on its own and plans the full install
    fiji = tmp_path / "Fiji.app"
    for d in ("jars", "scripts/Plugins", "macros", "lib"):
        (fiji / d).mkdir(parents=True)
    (fiji / "ImageJ-linux64").write_bytes(b"")
    code = (
        "import sys\n"
        "from rescunet_ij import fiji_install\n"
        "assert fiji_install.__file__.startswith(sys.argv[1]), fiji_install.__file__\n"
        "r = fiji_install.install(sys.argv[2], dry_run=True)\n"
        "print(r.source)\n"
        "print('\\n'.join(c.target.relative_to(r.fiji).as_posix() for c in r.copies))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(site), str(fiji)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
    ).stdout.splitlines()
    assert Path(out[0]) == package / "fiji"
    expected = {
        f"{dst}/{Path(rel).name}"
        for src_dir, pattern, dst in fiji_install.LAYOUT
        for rel in fiji_files(FIJI_SCRIPTS)
        if Path(rel).parent.as_posix() == src_dir and Path(rel).match(pattern)
    }
    assert set(out[1:]) == expected
    assert "scripts/Plugins/ReSCU-Net/Apply_To_Current_Frame.groovy" in expected
    assert not (tmp_path / "home").exists()  # a dry run writes no preferences


def test_find_source_says_when_the_files_are_missing(tmp_path):
    package = tmp_path / "site-packages" / "rescunet_ij"
    package.mkdir(parents=True)
    with pytest.raises(DataError, match="not part of this installation"):
        fiji_install.find_source(package)


# ------------------------------------------------------------------------------ conda recipe


def _recipe() -> str:
    return (REPO / "recipe" / "meta.yaml").read_text()


def test_conda_recipe_matches_pyproject():
    text = _recipe()
    assert f'{{% set version = "{rescunet_ij.__version__}" %}}' in text
    python_min = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert f'{{% set python_min = "{python_min}" %}}' in text
    assert "noarch: python" in text
    assert "license: BSD-3-Clause" in text and "license_file: LICENSE" in text
    assert "rescunet-ij = rescunet_ij.cli:main" in text
    assert "- rescunet-ij --help" in text
    run = text.split("\n  run:\n", 1)[1].split("\n  run_constrained:", 1)[0]
    pins = dict(re.findall(r"^\s+- ([\w.-]+) (>=[\w.]+)\s*$", run, re.M))
    conda_name = {"torch": "pytorch", "matplotlib": "matplotlib-base", "dask": "dask-core"}
    for dep in PYPROJECT["project"]["dependencies"]:
        name, bound = re.fullmatch(r"([\w.-]+)(?:\[[\w,]+\])?(>=[\w.]+)", dep).groups()
        assert pins.get(conda_name.get(name, name)) == bound, f"recipe run: {dep}"
    assert len(pins) == len(PYPROJECT["project"]["dependencies"])
    constrained = text.split("\n  run_constrained:\n", 1)[1].split("\n\n", 1)[0]
    for dep in PYPROJECT["project"]["optional-dependencies"]["service"]:
        name, bound = re.fullmatch(r"([\w.-]+)(>=[\w.]+)", dep).groups()
        assert f"- {name} {bound}" in constrained, f"recipe run_constrained: {dep}"


# ------------------------------------------------------------------------------ update site


def test_make_update_site_lays_out_what_install_fiji_installs(tmp_path):
    out = tmp_path / "site"
    home = tmp_path / "home"
    env = {**os.environ, "PYTHON": sys.executable, "HOME": str(home), "TMPDIR": str(tmp_path)}
    res = subprocess.run(
        ["bash", str(REPO / "scripts" / "make_update_site.sh"), str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    got = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    expected = {
        f"{dst}/{Path(rel).name}"
        for src_dir, pattern, dst in fiji_install.LAYOUT
        for rel in fiji_files(FIJI_SCRIPTS)
        if Path(rel).parent.as_posix() == src_dir and Path(rel).match(pattern)
    }
    assert got == expected
    assert {p.name for p in out.iterdir()} == {"scripts", "lib", "macros"}
    for rel in got:
        src = next(p for p in FIJI_SCRIPTS.rglob(Path(rel).name))
        assert (out / rel).read_bytes() == src.read_bytes()
    assert not home.exists()  # no ImageJ preferences written
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("rescunet-")] == []
    assert f"rescunet-ij {rescunet_ij.__version__}: {len(expected)} files" in res.stdout

    again = subprocess.run(
        ["bash", str(REPO / "scripts" / "make_update_site.sh"), str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert again.returncode == 2 and "not empty" in again.stderr
