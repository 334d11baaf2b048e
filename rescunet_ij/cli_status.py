"""``propagate --status-file`` and the words ``main()`` gives each error (shared by both).

ImageJ's ``exec()`` returns a program's standard output only, so a macro that runs
``rescunet-ij propagate`` cannot see its error messages; the status file (key=value lines, always
written, also when the command fails) tells it what happened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from . import __version__
from .errors import RescunetError

WRITTEN: set[str] = set()
"""The status files this process wrote (main() writes one only if propagate could not)."""


def one_line(text: object) -> str:
    """``text`` on one line (runs of white space as one space)."""
    return " ".join(str(text).split())


def write_status(
    path: Path,
    *,
    ok: bool,
    error: str = "",
    code: int = 0,
    output: Path | str = "",
    rois: int = 0,
    predicted: int = 0,
    frames: str = "",
    doubtful: list[tuple[int, int, str]] = (),  # type: ignore[assignment]
    console: Any = None,
) -> None:
    """The --status-file of propagate: key=value lines, UTF-8, written atomically.

    A failure to write it while reporting another failure is only shown, so the first error
    stays the one the user sees.
    """
    from . import api

    lines = [
        f"ok={'true' if ok else 'false'}",
        f"error={one_line(error)}",
        f"exit_code={code}",
        f"output={output}",
        f"rois={rois}",
        f"predicted={predicted}",
        f"frames={frames}",
        f"doubtful={len(doubtful)}",
    ]
    lines += [
        f"doubtful.{i}=frame {f + 1}, object {oid}: {one_line(why)}"
        for i, (f, oid, why) in enumerate(doubtful, 1)
    ]
    try:
        api.write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"), overwrite=True)
    except (RescunetError, OSError) as exc:
        if ok:
            raise
        if console is not None:
            console.print(f"[yellow]warning:[/yellow] no status file: {exc}", highlight=False)
        return
    WRITTEN.add(str(path))


def status_file_of(args: list[str]) -> Path | None:
    """The --status-file of a propagate command line (before typer has parsed it)."""
    if "propagate" not in args:
        return None
    for i, a in enumerate(args):
        if a == "--status-file" and i + 1 < len(args):
            return Path(args[i + 1])
        if a.startswith("--status-file="):
            return Path(a.partition("=")[2])
    return None


MEMORY_MESSAGE = (
    "the computer ran out of memory; close other programs, or use a smaller movie (crop it in "
    "Fiji) or smaller settings (batch size, input size)"
)


def os_error_message(exc: OSError) -> str:
    """An operating-system error in words: the path, the reason, what to check."""
    where = f" {exc.filename}" if exc.filename else ""
    return (
        f"cannot access{where}: {exc.strerror or exc}; check the path, the permissions and the "
        "free disk space"
    )


def is_usage_error(exc: BaseException) -> bool:
    """A click error (typer.BadParameter...): typer bundles its own click, so no isinstance."""
    return isinstance(exc, typer.TyperException) and hasattr(exc, "format_message")


def error_text(exc: BaseException) -> str:
    """An error as main() reports it, in words (for --status-file)."""
    if isinstance(exc, RescunetError):
        return str(exc)
    if is_usage_error(exc):
        return exc.format_message()  # type: ignore[attr-defined]
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; outputs are written atomically, so nothing half-written was left"
    if isinstance(exc, MemoryError):
        return MEMORY_MESSAGE
    if isinstance(exc, OSError):
        return os_error_message(exc)
    return (
        f"{type(exc).__name__}: {exc} (a bug in rescunet-ij {__version__}: run the command in a "
        "terminal to see the details, and please report it)"
    )


def exit_code_of(exc: BaseException) -> int:
    """The exit status main() gives ``exc``."""
    if isinstance(exc, RescunetError):
        return exc.exit_code
    if is_usage_error(exc):
        return int(exc.exit_code)  # type: ignore[attr-defined]
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, (MemoryError, OSError)):
        return 2
    return 1
