"""The two tables of ``propagate-batch``: the manifest (one movie per row) and the results table.

:func:`read_manifest` reads and checks a manifest CSV (:class:`ManifestRow` per movie, every
problem reported at once); :func:`read_results` reads back an earlier results table and
:func:`write_results` writes one atomically (columns :data:`RESULT_COLUMNS`). Running the movies
is :mod:`rescunet_ij.api._batch`'s business.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from .atomic import atomic_write_text

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "RESULT_COLUMNS",
    "ManifestRow",
    "read_manifest",
    "read_results",
    "write_results",
]

REQUIRED_COLUMNS = ("movie", "seeds", "output")
"""Columns every manifest has: the movie, its seed RoiSet and the RoiSet to write."""

OPTIONAL_COLUMNS = ("first_frame", "last_frame", "channel", "z", "labels", "report")
"""Columns a manifest may have (1-based numbers, as on the command line; empty = default)."""

RESULT_COLUMNS = (
    "row",
    "movie",
    "output",
    "status",
    "seconds",
    "objects",
    "rois",
    "predicted",
    "lost",
    "doubtful",
    "doubtful_frames",
    "worker",
    "error",
)
"""Columns of the results table; ``status`` is ``ok``, ``skipped``, ``failed`` or ``pending``."""

_NUMBER_COLUMNS = ("first_frame", "last_frame", "channel", "z")
_PATH_COLUMNS = ("movie", "seeds", "output", "labels", "report")
_SUFFIXES = {
    "output": (".zip",),
    "labels": (".tif", ".tiff"),
    "report": (".csv",),
}
_MAX_PROBLEMS = 20  # problems listed in one manifest error


@dataclass(frozen=True)
class ManifestRow:
    """One movie of a manifest, checked, with absolute paths and 0-based numbers.

    Attributes
    ----------
    row
        The row's number among the manifest's movies (1 = the first row under the header).
    line
        Its line in the CSV file (for messages).
    movie, seeds, output
        The movie, its seed outlines (RoiSet) and the RoiSet to write.
    first_frame, last_frame, channel, z
        0-based, or ``None`` for the default (as ``rescunet-ij propagate`` chooses).
    labels, report
        Optional label-movie TIFF and per-object CSV report to write as well.
    """

    row: int
    line: int
    movie: Path
    seeds: Path
    output: Path
    first_frame: int | None = None
    last_frame: int | None = None
    channel: int | None = None
    z: int | None = None
    labels: Path | None = None
    report: Path | None = None

    @property
    def outputs(self) -> list[Path]:
        """Every file this row writes."""
        return [p for p in (self.output, self.labels, self.report) if p is not None]

    def finished(self) -> bool:
        """Whether every output of the row exists (written by an earlier run)."""
        return all(p.exists() for p in self.outputs)


# ----------------------------------------------------------------------------------- the manifest
def read_manifest(path: str | os.PathLike[str]) -> list[ManifestRow]:
    """Read and check a manifest: one CSV row per movie.

    Columns (header required, any order, case ignored): ``movie``, ``seeds``, ``output``;
    optionally ``first_frame``, ``last_frame``, ``channel``, ``z`` (1-based, as in ImageJ; empty
    for the default), ``labels`` (a label TIFF to write) and ``report`` (a CSV to write).
    Relative paths are resolved against the manifest's folder. Empty rows and rows whose first
    cell starts with ``#`` are skipped.

    Every row is checked before anything runs: the inputs exist, numbers are whole and start at 1,
    each output is named once in the whole manifest (and is no row's input). All problems are
    reported together, each naming its row and column.

    Parameters
    ----------
    path
        The manifest CSV.

    Returns
    -------
    list of ManifestRow
        The manifest's movies, in file order.

    Raises
    ------
    DataError
        The manifest cannot be read or has problems (all of them listed).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"manifest {path} does not exist (a CSV with one row per movie)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the manifest {path}: {exc}") from exc
    reader = csv.reader(io.StringIO(text))
    header, header_line = None, 0
    for cells in reader:
        if any(c.strip() for c in cells) and not cells[0].strip().startswith("#"):
            header, header_line = [c.strip().lower() for c in cells], reader.line_num
            break
    if header is None:
        raise DataError(f"manifest {path} is empty; its first line names the columns: {_columns()}")
    _check_header(path, header, header_line)
    base = path.parent.resolve()
    rows: list[ManifestRow] = []
    named: list[tuple[int, int, dict[str, Path | None]]] = []  # every row's paths, for clashes
    problems: list[str] = []
    n = 0
    for cells in reader:
        if not any(c.strip() for c in cells) or cells[0].strip().startswith("#"):
            continue
        n += 1
        where = f"row {n} (line {reader.line_num})"
        if len(cells) > len(header):
            problems.append(f"{where}: {len(cells)} cells but the header names {len(header)}")
            continue
        values = {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)}
        before = len(problems)
        paths = _paths(values, base, where, problems)
        named.append((n, reader.line_num, paths))
        numbers = _check_row(values, paths, where, problems)
        if len(problems) == before:
            rows.append(ManifestRow(row=n, line=reader.line_num, **paths, **numbers))
    if n == 0 and not problems:
        raise DataError(f"manifest {path} lists no movies (only its header)")
    problems += _clashes(named)
    if problems:
        shown = problems[:_MAX_PROBLEMS]
        more = len(problems) - len(shown)
        raise DataError(
            f"manifest {path} has {len(problems)} problem(s); nothing was run:\n  "
            + "\n  ".join(shown)
            + (f"\n  ... and {more} more" if more else "")
        )
    return rows


def _columns() -> str:
    return ", ".join(REQUIRED_COLUMNS) + " (optional: " + ", ".join(OPTIONAL_COLUMNS) + ")"


def _check_header(path: Path, header: list[str], line: int) -> None:
    known = set(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
    unknown = [h for h in header if h not in known]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    twice = sorted({h for h in header if header.count(h) > 1})
    problems = []
    if unknown:
        problems.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if twice:
        problems.append(f"column(s) named twice: {', '.join(twice)}")
    if problems:
        raise DataError(
            f"manifest {path}, header (line {line}): {'; '.join(problems)}. The columns are: "
            f"{_columns()}"
        )


def _paths(
    values: dict[str, str], base: Path, where: str, problems: list[str]
) -> dict[str, Path | None]:
    """The row's files, absolute; a problem for each required one left empty."""
    paths: dict[str, Path | None] = {}
    for col in _PATH_COLUMNS:
        raw = values.get(col, "")
        if not raw:
            if col in REQUIRED_COLUMNS:
                problems.append(f"{where}, column {col}: empty; give a file path")
            paths[col] = None
            continue
        p = Path(raw).expanduser()
        paths[col] = p if p.is_absolute() else base / p
    return paths


def _check_row(
    values: dict[str, str], paths: dict[str, Path | None], where: str, problems: list[str]
) -> dict[str, int | None]:
    """Check the row's files and numbers; returns the numbers, 0-based."""
    for col in ("movie", "seeds"):
        p = paths[col]
        if p is not None and not p.is_file():
            what = "is a folder, not a file" if p.is_dir() else "does not exist"
            problems.append(f"{where}, column {col}: {p} {what}")
    for col, suffixes in _SUFFIXES.items():
        p = paths[col]
        if p is not None:
            if p.suffix.lower() not in suffixes:
                problems.append(
                    f"{where}, column {col}: {p.name} should end in {' or '.join(suffixes)}"
                )
            elif p.is_dir():
                problems.append(f"{where}, column {col}: {p} is a folder, not a file")
    numbers: dict[str, int | None] = {}
    for col in _NUMBER_COLUMNS:
        raw = values.get(col, "")
        numbers[col] = None
        if not raw:
            continue
        try:
            value = int(raw)
        except ValueError:
            problems.append(f"{where}, column {col}: {raw!r} is not a whole number")
            continue
        if value < 1:
            what = "frame" if col.endswith("frame") else col.replace("z", "z-plane")
            problems.append(
                f"{where}, column {col}: {what} numbers start at 1 (as in ImageJ); got {value}"
            )
            continue
        numbers[col] = value - 1
    return numbers


def _clashes(named: list[tuple[int, int, dict[str, Path | None]]]) -> list[str]:
    """Outputs named twice in the manifest, or naming another row's input."""
    problems = []
    written: dict[Path, str] = {}
    for n, line, paths in named:
        for col in ("output", "labels", "report"):
            p = paths[col]
            if p is None:
                continue
            key = p.resolve()
            here = f"row {n} (line {line}), column {col}"
            if key in written:
                problems.append(f"{here}: {p.name} is also written by {written[key]}")
            else:
                written[key] = here
    for n, line, paths in named:
        for col in ("movie", "seeds"):
            p = paths[col]
            if p is not None and p.resolve() in written:
                problems.append(
                    f"row {n} (line {line}), column {col}: {p.name} is an input here but is "
                    f"written by {written[p.resolve()]}"
                )
    return problems


# ------------------------------------------------------------------------------ the results table
def read_results(path: str | os.PathLike[str]) -> list[dict[str, str]] | None:
    """Read an earlier results table back, one dict per row (column -> text).

    Parameters
    ----------
    path
        An existing file.

    Returns
    -------
    list of dict or None
        The rows, or ``None`` when the file cannot be read or is not a results table (its header
        is not :data:`RESULT_COLUMNS`): whoever asked decides whether it may be replaced.
    """
    try:
        with Path(path).open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != RESULT_COLUMNS:
                return None
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def write_results(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write the results table atomically (replacing it), ordered by ``row``.

    Parameters
    ----------
    path
        The CSV to write.
    rows
        One mapping per movie with (at least) every column of :data:`RESULT_COLUMNS`; other keys
        are not written.

    Returns
    -------
    Path
        The file written.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(RESULT_COLUMNS)
    for r in sorted(rows, key=lambda r: int(r["row"])):
        writer.writerow(r[c] for c in RESULT_COLUMNS)
    return atomic_write_text(path, buf.getvalue(), overwrite=True)
