"""Atomic writes when the disk says no: full disk, read-only folder, impossible path, leftovers."""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import time
from pathlib import Path

import pytest

from rescunet_ij.errors import DataError, OutputExistsError, WriteError
from rescunet_ij.io.atomic import (
    atomic_group,
    atomic_write,
    atomic_write_bytes,
    check_writable,
)


@pytest.fixture
def small_disk(tmp_path):
    """A real 64 KiB file system (tmpfs), so 'disk full' is the kernel's own ENOSPC."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------ check_writable


def test_check_writable_accepts_new_path_and_leaves_nothing(tmp_path):
    target = tmp_path / "new" / "deeper" / "out.zip"
    assert check_writable(target) == target
    assert target.parent.is_dir() and _names(target.parent) == []


def test_check_writable_refuses_existing_unless_overwrite(tmp_path):
    target = tmp_path / "out.zip"
    target.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_writable(target)
    assert check_writable(target, overwrite=True) == target
    assert target.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/proc/x.zip", "No such file"),  # the impossible path
        ("/sys/rescunet-test.zip", "Permission denied"),  # a read-only file system
    ],
)
def test_check_writable_names_path_and_reason(path, reason):
    with pytest.raises(WriteError) as info:
        check_writable(path)
    text = str(info.value)
    assert path in text and reason in text
    assert isinstance(info.value, OSError) and isinstance(info.value, DataError)
    assert info.value.errno in (errno.ENOENT, errno.EACCES, errno.EROFS, errno.EPERM)


def test_check_writable_file_used_as_folder(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(WriteError, match="not_a_folder"):
        check_writable(blocker / "model.rescunet")


def test_check_writable_refuses_a_folder(tmp_path):
    with pytest.raises(DataError, match="folder"):
        check_writable(tmp_path)


# ------------------------------------------------------------------------------ full disk


def test_disk_full_gives_write_error_and_keeps_old_file(small_disk):
    target = small_disk / "labels.tif"
    target.write_bytes(b"old")
    with pytest.raises(WriteError) as info:
        atomic_write_bytes(target, b"x" * 200_000)
    assert "labels.tif" in str(info.value) and "disk is full" in str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old"
    assert _names(small_disk) == ["labels.tif"]  # no temp file left


def test_group_on_full_disk_changes_nothing(small_disk):
    """The issue's case: the RoiSet was replaced, then the label file failed. Now: neither."""
    rois, labels = small_disk / "RoiSet.zip", small_disk / "labels.tif"
    rois.write_bytes(b"old rois")
    with pytest.raises(WriteError, match="labels.tif"):
        with atomic_group():
            atomic_write_bytes(rois, b"new rois")
            atomic_write_bytes(labels, b"y" * 200_000)
    assert rois.read_bytes() == b"old rois"
    assert not labels.exists()
    assert _names(small_disk) == ["RoiSet.zip"]


def test_injected_oserror_at_rename_is_a_write_error(tmp_path, monkeypatch):
    target = tmp_path / "m.rescunet"
    target.write_bytes(b"old")

    def no_space(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("rescunet_ij.io.atomic.os.replace", no_space)
    with pytest.raises(WriteError, match="No space left"):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["m.rescunet"]


# ------------------------------------------------------------------------------ groups


def test_group_commits_all_at_the_end(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    with atomic_group():
        atomic_write_bytes(a, b"A")
        assert not a.exists()  # not yet: the group is still open
        with atomic_group():  # nested groups join the outer one
            atomic_write_bytes(b, b"B")
        assert not b.exists()
    assert a.read_bytes() == b"A" and b.read_bytes() == b"B"
    assert _names(tmp_path) == ["a.txt", "b.txt"]


def test_group_error_between_writes_discards_everything(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"old A")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_group():
            atomic_write_bytes(a, b"new A")
            raise RuntimeError("crash")
    assert a.read_bytes() == b"old A" and not b.exists()
    assert _names(tmp_path) == ["a.txt"]


def test_group_keeps_the_overwrite_rule_at_commit(tmp_path):
    a = tmp_path / "a.txt"
    with pytest.raises(OutputExistsError):
        with atomic_group():
            atomic_write_bytes(a, b"mine", overwrite=False)
            a.write_bytes(b"someone else's")  # appeared while we worked
    assert a.read_bytes() == b"someone else's"
    assert _names(tmp_path) == ["a.txt"]


# ------------------------------------------------------------------------------ leftovers


def test_stale_temp_files_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "RoiSet.zip"
    stale = tmp_path / ".RoiSet.zip.k1ll3d.tmp"
    stale.write_bytes(b"half written by a killed process")
    old = time.time() - 600
    os.utime(stale, (old, old))
    fresh = tmp_path / ".RoiSet.zip.fresh1.tmp"  # may belong to a writer that is still running
    fresh.write_bytes(b"in progress")
    other = tmp_path / ".other.zip.abc.tmp"  # not ours to judge
    other.write_bytes(b"x")
    os.utime(other, (old, old))
    atomic_write_bytes(target, b"new")
    assert _names(tmp_path) == [".RoiSet.zip.fresh1.tmp", ".other.zip.abc.tmp", "RoiSet.zip"]


def test_locked_temp_file_of_a_live_writer_is_kept(tmp_path):
    target = tmp_path / "model.rescunet"
    live = tmp_path / ".model.rescunet.live.tmp"
    live.write_bytes(b"being written")
    old = time.time() - 600
    os.utime(live, (old, old))
    with open(live, "rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        atomic_write_bytes(target, b"new")
        assert live.exists()


def test_sigkill_during_a_write_leaves_old_file_and_next_write_cleans_up(tmp_path):
    """A real process killed in the middle of an atomic write."""
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    code = (
        "import sys, time\n"
        "from rescunet_ij.io.atomic import atomic_write\n"
        f"with atomic_write({str(target)!r}) as fh:\n"
        "    fh.write(b'partial'); fh.flush(); print('writing', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(["python", "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait()
    temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(temps) == 1 and target.read_bytes() == b"old"
    old = time.time() - 600
    os.utime(temps[0], (old, old))
    with atomic_write(target) as fh:
        fh.write(b"new")
    assert _names(tmp_path) == ["out.bin"] and target.read_bytes() == b"new"
