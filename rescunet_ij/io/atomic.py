"""Atomic file writes: never leave a half-written output or destroy the previous version.

Data go to a temporary file in the destination's folder (so the final rename stays on one file
system), which is flushed, fsync'ed and then moved over the destination with :func:`os.replace`.
If anything fails before the rename, the temporary file is removed and an existing destination is
left exactly as it was.

Three more guarantees a command needs:

* :func:`check_writable` tells *before* the work starts whether an output can be written (the
  overwrite rule, the folder, permission, a read-only disk), so a long training run never ends
  with "cannot write".
* :func:`atomic_group` makes every atomic write inside it one unit: all temporary files are
  written first, then all renamed. A full disk while writing the second output leaves the first
  one untouched too.
* Operating-system errors become :class:`~rescunet_ij.errors.WriteError` naming the file and the
  reason; temporary files left by a killed process (``.NAME.*.tmp``) are removed by the next write
  to the same path.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import DataError, OutputExistsError, RescunetError, WriteError

__all__ = [
    "atomic_group",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_overwrite",
    "check_writable",
    "write_error",
]

_MODES = ("w", "wb", "wt")
_STALE_AFTER_S = 5.0  # a temp file untouched this long, with no live writer, is a leftover

try:  # POSIX: a writer holds a lock on its temp file, so a cleaner can tell live from dead
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def check_overwrite(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse an existing output unless overwriting was asked for.

    Parameters
    ----------
    path
        The output file.
    overwrite
        Whether replacing an existing file is allowed.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    DataError
        If ``path`` is an existing folder.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"cannot write to {path}: it is a folder; give a file name instead")
    if not overwrite and path.exists():
        raise OutputExistsError(
            f"{path} already exists and was not replaced; pass overwrite=True "
            "(CLI: --overwrite) to replace it, or choose another file name"
        )
    return path


def write_error(path: str | os.PathLike[str], exc: OSError) -> WriteError:
    """A :class:`WriteError` naming ``path``, the system's reason and what to do about it."""
    code = exc.errno
    reason = exc.strerror or str(exc) or type(exc).__name__
    if code is None and _disk_is_full(Path(path)):
        # Some writers (tifffile: "110592 requested and 20304 written") report a short write
        # without the system's error number; the free space tells what happened.
        code = errno.ENOSPC
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG):
        hint = "the disk is full (or the file too large for it); free some space or write elsewhere"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "the folder is read-only or you may not write there; choose another folder"
    elif code in (errno.ENOENT, errno.ENOTDIR):
        hint = "a part of the path does not exist or is not a folder; check the path"
    elif code == errno.ENAMETOOLONG:
        hint = "the name is too long; choose a shorter path"
    else:
        hint = "check the path and the disk, or write elsewhere"
    err = WriteError(f"cannot write {path}: {reason}; {hint}")
    err.errno = code
    err.strerror = exc.strerror
    err.filename = str(path)
    return err


def _disk_is_full(path: Path, below: int = 1 << 20) -> bool:
    """Whether the file system that would hold ``path`` has less than ``below`` bytes free."""
    import shutil

    for folder in (path.parent, *path.parent.parents):
        try:
            return shutil.disk_usage(folder).free < below
        except OSError:
            continue
    return False


def _folder_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _make_folder(path: Path) -> Path:
    folder = _folder_of(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path, exc) from exc
    return folder


def check_writable(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written: by the rules and by the disk.

    Applies :func:`check_overwrite`, creates missing parent folders, and creates and removes a
    temporary file next to ``path`` (the same kind of file :func:`atomic_write` will write).

    Parameters
    ----------
    path
        The output file.
    overwrite
        Whether replacing an existing file is allowed.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    WriteError
        If the folder cannot be created or written to (read-only, no permission, not a folder).
    DataError
        If ``path`` is a folder.
    """
    path = check_overwrite(path, overwrite)
    folder = _make_folder(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise write_error(path, exc) from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return path


def _default_mode() -> int:
    # mkstemp creates files readable by the owner only; give new files the usual permissions.
    # Reading the umask means setting it, so restore it at once.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable (POSIX only; Windows cannot open folders).
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temps(path: Path, folder: Path) -> None:
    """Delete ``.NAME.*.tmp`` files a killed writer of ``path`` left behind.

    A live writer holds an exclusive lock on its temp file and keeps it fresh; a file that is
    unlocked and older than a few seconds belongs to no one.
    """
    now = time.time()
    for tmp in folder.glob(f".{glob_escape(path.name)}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime < _STALE_AFTER_S:
                continue
            if fcntl is not None:
                with open(tmp, "rb") as fh:
                    try:
                        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue  # a live writer holds it
            tmp.unlink()
        except OSError:
            continue


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters escaped (``[``, ``*``, ``?``)."""
    return "".join(f"[{c}]" if c in "[]*?" else c for c in name)


# ------------------------------------------------------------------------------ groups of outputs


@dataclass
class _Pending:
    tmp: Path
    path: Path
    mode: int
    overwrite: bool


@dataclass
class _Group:
    pending: list[_Pending] = field(default_factory=list)


_GROUP: contextvars.ContextVar[_Group | None] = contextvars.ContextVar("atomic_group", default=None)


def _commit(item: _Pending) -> None:
    with contextlib.suppress(OSError):
        os.chmod(item.tmp, item.mode)
    if not item.overwrite and item.path.exists():  # appeared while we were writing
        check_overwrite(item.path, item.overwrite)
    try:
        os.replace(item.tmp, item.path)
    except OSError as exc:
        raise write_error(item.path, exc) from exc
    _fsync_dir(_folder_of(item.path))


@contextlib.contextmanager
def atomic_group() -> Iterator[None]:
    """Make every :func:`atomic_write` inside the block one unit: all files or none.

    Each write goes to its temporary file as usual, but the renames wait until the block ends
    without error; then they run one after the other (renames need no disk space, so a full disk
    cannot stop them half way). On an error inside the block every temporary file is removed and
    no destination changes. Nested groups join the outermost one.

    Examples
    --------
    >>> with atomic_group():  # doctest: +SKIP
    ...     write_rois("RoiSet.zip", outlines, n_frames=10)
    ...     write_label_movie("labels.tif", outlines, (10, 256, 256))
    """
    if _GROUP.get() is not None:  # join the enclosing group
        yield
        return
    group = _Group()
    token = _GROUP.set(group)
    try:
        yield
    except BaseException:
        for item in group.pending:
            item.tmp.unlink(missing_ok=True)
        raise
    finally:
        _GROUP.reset(token)
    done = 0
    try:
        for item in group.pending:
            _commit(item)
            done += 1
    finally:
        for item in group.pending[done:]:
            item.tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------ single writes


def _open_temp(path: Path, folder: Path, mode: str, encoding: str | None, newline: str | None):
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise write_error(path, exc) from exc
    tmp = Path(tmp_name)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if "b" in mode:
            fh: IO[Any] = os.fdopen(fd, "wb")
        else:
            fh = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline=newline)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return tmp, fh


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    overwrite: bool = True,
    encoding: str | None = None,
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the ``with`` block ends without error.

    Parameters
    ----------
    path
        Destination file. Missing parent folders are created.
    mode
        ``"wb"`` (binary, default) or ``"w"``/``"wt"`` (text).
    overwrite
        If false and ``path`` exists, raise :class:`~rescunet_ij.errors.OutputExistsError`
        before writing anything.
    encoding, newline
        Passed to :func:`open` in text mode (``encoding`` defaults to UTF-8).

    Yields
    ------
    IO
        The open temporary file; write to it as to ``open(path, mode)``.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    WriteError
        If the file cannot be written (disk full, read-only folder, impossible path): the
        message names ``path`` and the reason.
    DataError
        If ``path`` is a folder.
    ValueError
        If ``mode`` is not a write mode listed above.

    Notes
    -----
    On an exception inside the block, the temporary file is deleted, the destination is untouched
    and the exception propagates (an :class:`OSError` as a :class:`WriteError`). Inside
    :func:`atomic_group` the final rename waits for the end of the group.

    Examples
    --------
    >>> with atomic_write("out.bin") as fh:  # doctest: +SKIP
    ...     fh.write(b"data")
    """
    if mode not in _MODES:
        raise ValueError(f"atomic_write mode must be one of {_MODES}, got {mode!r}")
    path = check_overwrite(path, overwrite)
    folder = _make_folder(path)
    _remove_stale_temps(path, folder)
    target_mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else _default_mode()
    tmp, fh = _open_temp(path, folder, mode, encoding, newline)
    item = _Pending(tmp, path, target_mode, overwrite)
    try:
        try:
            with fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            if isinstance(exc, RescunetError):
                raise
            raise write_error(path, exc) from exc
        group = _GROUP.get()
        if group is not None:
            group.pending.append(item)
            return
        _commit(item)
    except BaseException:
        # Any failure (including KeyboardInterrupt) leaves the destination as it was.
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    Parameters
    ----------
    path
        Destination file.
    data
        The complete new file content.
    overwrite
        If false and ``path`` exists, raise :class:`~rescunet_ij.errors.OutputExistsError`.

    Returns
    -------
    Path
        The written file.
    """
    with atomic_write(path, "wb", overwrite=overwrite) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(
    path: str | os.PathLike[str],
    text: str,
    *,
    overwrite: bool = True,
    encoding: str = "utf-8",
    newline: str | None = None,
) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`).

    Parameters
    ----------
    path
        Destination file.
    text
        The complete new file content.
    overwrite
        If false and ``path`` exists, raise :class:`~rescunet_ij.errors.OutputExistsError`.
    encoding, newline
        As for :func:`open`.

    Returns
    -------
    Path
        The written file.
    """
    with atomic_write(path, "w", overwrite=overwrite, encoding=encoding, newline=newline) as fh:
        fh.write(text)
    return Path(path)
