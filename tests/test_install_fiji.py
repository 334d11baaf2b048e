"""``rescunet-ij install-fiji``: a real (fake) Fiji.app and a real IJ_Prefs.txt in a temp HOME."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rescunet_ij import fiji_install
from rescunet_ij.cli import main


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A temporary home folder: the real user's ImageJ preferences are never touched."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.setenv("USERPROFILE", str(h))
    return h


@pytest.fixture
def fiji(tmp_path):
    app = tmp_path / "Fiji.app"
    for d in ("jars", "scripts/Plugins", "macros", "lib"):
        (app / d).mkdir(parents=True)
    (app / "ImageJ-linux64").write_bytes(b"")
    return app


@pytest.fixture
def source(tmp_path):
    """A source tree like fiji_scripts/ (the real one may change while we test)."""
    src = tmp_path / "src"
    files = {
        "Plugins/ReSCU-Net/Apply_To_Current_Frame.groovy": "// apply\n",
        "Plugins/ReSCU-Net/Propagate_Outlines.groovy": "// propagate\n",
        "lib/rescunet-ij/RescunetClient.groovy": "// client\n",
        "macros/propagate_batch.ijm": "// macro\n",
        "macros/Batch_Propagate.ijm": "// batch\n",
        "Plugins/ReSCU-Net/notes.txt": "not installed\n",
    }
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    return src


@pytest.fixture
def use_source(source, monkeypatch):
    monkeypatch.setattr(fiji_install, "find_source", lambda: source)
    return source


def prefs_file(home: Path) -> Path:
    if sys.platform == "darwin":
        return home / "Library" / "Preferences" / "IJ_Prefs.txt"
    return home / ".imagej" / "IJ_Prefs.txt"


EXPECTED = [
    "lib/rescunet-ij/RescunetClient.groovy",
    "macros/ReSCU-Net/Batch_Propagate.ijm",
    "macros/ReSCU-Net/propagate_batch.ijm",
    "scripts/Plugins/ReSCU-Net/Apply_To_Current_Frame.groovy",
    "scripts/Plugins/ReSCU-Net/Propagate_Outlines.groovy",
]


def installed(fiji: Path) -> list[str]:
    return sorted(
        str(p.relative_to(fiji))
        for p in fiji.rglob("*")
        if p.is_file() and p.name != "ImageJ-linux64"
    )


def test_install_copies_the_files_and_writes_the_prefs(fiji, home, use_source, capsys):
    prefs = prefs_file(home)
    prefs.parent.mkdir(parents=True)
    other = "#ImageJ 1.54p Preferences\n.other.key=C\\:\\\\Users\\\\me\nfcolor=ffffff\n"
    prefs.write_bytes(other.encode("latin-1"))
    assert main(["install-fiji", str(fiji)]) == 0
    assert installed(fiji) == EXPECTED
    src = use_source / "Plugins/ReSCU-Net/Apply_To_Current_Frame.groovy"
    dst = fiji / "scripts/Plugins/ReSCU-Net/Apply_To_Current_Frame.groovy"
    assert dst.read_bytes() == src.read_bytes()
    text = prefs.read_text(encoding="latin-1")
    assert text.startswith(other)  # every other line kept as it was
    assert f".rescunet.env={sys.prefix}\n" in text  # ij.Prefs.set adds the "." prefix
    assert ".rescunet.url=http\\://127.0.0.1\\:8765\n" in text  # java.util.Properties escapes
    entries = fiji_install.read_prefs(prefs)
    assert entries[".other.key"] == "C:\\Users\\me" and entries["fcolor"] == "ffffff"
    assert entries[".rescunet.url"] == "http://127.0.0.1:8765"
    out = capsys.readouterr().out
    assert "Plugins > Shortcuts > Add Shortcut..." in out
    assert 'macro "Apply To Current Frame [A]" { run("Apply To Current Frame"); }' in out
    assert "serve" in out and "quit Fiji" in out and "update site" in out


def test_an_existing_url_is_kept_unless_given(fiji, home, use_source):
    prefs = prefs_file(home)
    prefs.parent.mkdir(parents=True)
    prefs.write_text(".rescunet.url=http\\://example\\:9000\n.rescunet.env=/old/env\n")
    assert main(["install-fiji", str(fiji)]) == 0
    entries = fiji_install.read_prefs(prefs)
    assert entries[".rescunet.url"] == "http://example:9000"
    assert entries[".rescunet.env"] == sys.prefix
    assert prefs.read_text().count(".rescunet.env") == 1
    assert main(["install-fiji", str(fiji), "--url", "http://127.0.0.1:9999"]) == 0
    assert fiji_install.read_prefs(prefs)[".rescunet.url"] == "http://127.0.0.1:9999"


def test_prefs_in_the_fiji_folder_win(fiji, home, use_source):
    """ImageJ (1.53o+) uses Fiji.app/IJ_Prefs.txt when that file exists."""
    (fiji / "IJ_Prefs.txt").write_text("a.b=1\n")
    assert main(["install-fiji", str(fiji)]) == 0
    assert fiji_install.read_prefs(fiji / "IJ_Prefs.txt")[".rescunet.env"] == sys.prefix
    assert not prefs_file(home).exists()


def test_dry_run_writes_nothing(fiji, home, use_source, capsys):
    assert main(["install-fiji", str(fiji), "--dry-run"]) == 0
    assert installed(fiji) == []
    assert not prefs_file(home).exists()
    out = capsys.readouterr().out
    assert "Dry run: nothing written" in out
    assert "copy    scripts/Plugins/ReSCU-Net/Apply_To_Current_Frame.groovy" in out


def test_a_different_file_is_refused_without_overwrite(fiji, home, use_source, capsys):
    assert main(["install-fiji", str(fiji)]) == 0
    assert main(["install-fiji", str(fiji)]) == 0  # identical files: fine
    changed = fiji / "macros/ReSCU-Net/propagate_batch.ijm"
    changed.write_text("// edited by the user\n")
    (use_source / "Plugins/ReSCU-Net/New_Command.groovy").write_text("// new\n")
    capsys.readouterr()
    assert main(["install-fiji", str(fiji)]) == 2
    err = capsys.readouterr().err
    assert "propagate_batch.ijm" in err and "--overwrite" in err and "Traceback" not in err
    assert changed.read_text() == "// edited by the user\n"
    assert not (fiji / "scripts/Plugins/ReSCU-Net/New_Command.groovy").exists()  # all or nothing
    assert main(["install-fiji", str(fiji), "--overwrite"]) == 0
    assert changed.read_text() == "// macro\n"
    assert (fiji / "scripts/Plugins/ReSCU-Net/New_Command.groovy").is_file()


def test_old_python_scripts_are_pointed_out(fiji, home, use_source, capsys):
    old = fiji / "scripts/Plugins/ReSCU-Net/Apply_To_Current_Frame.py"
    old.parent.mkdir(parents=True)
    old.write_text("# old\n")
    assert main(["install-fiji", str(fiji)]) == 0
    assert "Apply_To_Current_Frame.py (a Python-mode script" in capsys.readouterr().out
    assert old.exists()  # pointed out, not deleted


@pytest.mark.parametrize("what", ["missing", "file", "empty", "parent"])
def test_not_a_fiji_folder_is_refused(tmp_path, home, use_source, fiji, capsys, what):
    target = {
        "missing": tmp_path / "nowhere",
        "file": tmp_path / "src" / "macros" / "propagate_batch.ijm",
        "empty": tmp_path / "home",
        "parent": tmp_path,
    }[what]
    assert main(["install-fiji", str(target)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err
    expected = {
        "missing": "does not exist",
        "file": "is not a folder",
        "empty": "is not a Fiji.app folder (no jars/ folder)",
        "parent": f"did you mean {fiji}",
    }[what]
    assert expected in "".join(err.split()) or expected in err, err
    assert not prefs_file(home).exists()


def test_the_real_source_tree_is_found():
    src = fiji_install.find_source()
    assert src.name == "fiji_scripts" and (src / "macros" / "propagate_batch.ijm").is_file()


def test_properties_escaping_round_trips():
    values = {".k": "C:\\Program Files\\env", ".u": "http://h:1/ä=x#y!", ".s": " lead"}
    text = fiji_install.update_prefs_text("x=1\n#c\\\n  y = 2 \\\n   3\n", values)
    assert text.startswith("x=1\n#c\\\n  y = 2 \\\n   3\n")
    entries = {k: v for _, k, v in fiji_install._logical_lines(text) if k is not None}
    assert entries == {"x": "1", "y": "2 3", **values}
    assert "\\u00E4" in text
