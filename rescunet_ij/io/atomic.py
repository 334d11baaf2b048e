"""Atomic file writes: never leave a half-written output or destroy the previous version.

Data go to a temporary file in the destination's folder (so the final rename stays on one file
system), which is flushed, fsync'ed and then moved over the destination with :func:`os.replace`.
If anything fails before the rename, the temporary file is removed and an existing destination is
left exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import DataError, OutputExistsError

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "check_overwrite"]

_MODES = ("w", "wb", "wt")


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
    DataError
        If ``path`` is a folder or its folder cannot be created.
    ValueError
        If ``mode`` is not a write mode listed above.

    Notes
    -----
    On an exception inside the block, the temporary file is deleted, the destination is untouched
    and the exception propagates.

    Examples
    --------
    >>> with atomic_write("out.bin") as fh:  # doctest: +SKIP
    ...     fh.write(b"data")
    """
    if mode not in _MODES:
        raise ValueError(f"atomic_write mode must be one of {_MODES}, got {mode!r}")
    path = check_overwrite(path, overwrite)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the folder {folder} for {path.name}: {exc}") from exc
    if path.exists():
        target_mode = stat.S_IMODE(path.stat().st_mode)
    else:
        target_mode = _default_mode()

    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    binary = "b" in mode
    try:
        if binary:
            fh: IO[Any] = os.fdopen(fd, "wb")
        else:
            fh = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline=newline)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, target_mode)
        if not overwrite and path.exists():  # appeared while we were writing
            check_overwrite(path, overwrite)
        os.replace(tmp, path)
    except BaseException:
        # Any failure (including KeyboardInterrupt) leaves the destination as it was.
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)


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
