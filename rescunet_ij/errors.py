"""One exception hierarchy for rescunet-ij.

Every error says what was wrong and what to do next. The CLI prints these without a
traceback; the service (if any) maps them to HTTP 4xx.
"""

from __future__ import annotations


class RescunetError(Exception):
    """Base class of every error rescunet-ij raises on purpose."""

    exit_code: int = 2
    """The command line's exit status for this error (2: a problem with the input or setup)."""


class ConfigError(RescunetError, ValueError):
    """A parameter is outside its allowed range or inconsistent with another one."""


class DataError(RescunetError, ValueError):
    """An input file or array is missing, malformed or does not fit the task."""


class ModelFileError(RescunetError):
    """A model file is corrupted, from a newer version, or not a rescunet-ij model."""


class WriteError(DataError, OSError):
    """An output could not be written (disk full, read-only folder, impossible path).

    The message names the file and the reason; an existing file of that name is left as it was.
    ``errno`` holds the operating system's error number when there is one.
    """

    def __str__(self) -> str:  # OSError would print "[Errno n] ..." once errno is set
        return str(self.args[0]) if self.args else ""


class StateError(RescunetError, RuntimeError):
    """An operation was called in the wrong order (e.g. propagate before adding outlines)."""


class OutputExistsError(RescunetError, FileExistsError):
    """An output file already exists and overwriting was not requested."""


class ImageJError(RescunetError, RuntimeError):
    """ImageJ (the JVM side) is not available or not in the expected state."""


class MissingExtraError(RescunetError, ImportError):
    """An optional dependency group is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed. "
            f"Install it with: pip install 'rescunet-ij[{extra}]'"
        )
        self.package = package
        self.extra = extra
