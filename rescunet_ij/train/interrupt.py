"""Ctrl-C and SIGTERM while training: one path for both, so the best weights are saved either way.

Python turns SIGINT (Ctrl-C) into :class:`KeyboardInterrupt` in the main thread. A cluster job
that reaches its time limit gets SIGTERM instead, which by default ends the process at once and
loses the run. While training runs, :func:`sigterm_as_interrupt` makes SIGTERM raise
:class:`SigtermInterrupt`, a :class:`KeyboardInterrupt`, so the training loop handles both signals
in one ``except KeyboardInterrupt`` and :func:`signal_name` tells them apart.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["SIGNAL_EXIT_CODES", "SigtermInterrupt", "signal_name", "sigterm_as_interrupt"]

SIGNAL_EXIT_CODES = {"SIGINT": 128 + int(signal.SIGINT), "SIGTERM": 128 + int(signal.SIGTERM)}
"""The shell's exit code for a process ended by each signal (130 and 143 on POSIX)."""


class SigtermInterrupt(KeyboardInterrupt):
    """SIGTERM received while training ran (raised by the handler of :func:`sigterm_as_interrupt`).

    A :class:`KeyboardInterrupt` on purpose: ``except Exception`` in user callbacks must not
    swallow it, exactly as with Ctrl-C.
    """


def signal_name(exc: BaseException) -> str:
    """``"SIGTERM"`` for a :class:`SigtermInterrupt`, else ``"SIGINT"`` (Ctrl-C)."""
    return "SIGTERM" if isinstance(exc, SigtermInterrupt) else "SIGINT"


def _raise_sigterm(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler signature
    raise SigtermInterrupt(f"received signal {signum} (SIGTERM)")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[bool]:
    """Make SIGTERM raise :class:`SigtermInterrupt` inside the block; restore the old handler after.

    Signal handlers can only be set in the main thread: elsewhere (the ImageJ bridge, a notebook
    worker thread) the block runs with SIGTERM left as it was.

    Yields
    ------
    bool
        Whether the handler was installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    try:
        previous = signal.signal(signal.SIGTERM, _raise_sigterm)
    except (ValueError, OSError):  # an embedding interpreter that does not allow it
        yield False
        return
    try:
        yield True
    finally:
        # None: the old handler was not set from Python; the default is the closest we can restore.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
