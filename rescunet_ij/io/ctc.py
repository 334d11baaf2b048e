"""The Cell Tracking Challenge (CTC) result format: one label image per frame + a track table.

A CTC result folder (``01_RES`` in the challenge's layout) holds, for a 2-D time-lapse of ``T``
frames:

* ``mask000.tif`` ... ``mask{T-1}.tif``: one 16-bit label image per frame, **every** frame of the
  movie, empty where nothing was found. Three digits, four when the movie has 1000 frames or
  more (as the challenge's own data). The pixel value is the label of the track the object
  belongs to (0 = background).
* ``res_track.txt``: one line ``L B E P`` per track: its label, first and last frame (0-based)
  and the label of its parent track (0 = none).

The challenge's rules, which its evaluation tools check (py-ctcmetrics' ``valid``): a label is
present in exactly the frames ``B..E`` of its line, so **a track is contiguous**. An object that
disappears and comes back (lost and found again, or hidden by another object) therefore continues
as a new track whose parent is the track before the gap; the evaluation merges such one-child
chains back into one trajectory. Our objects never divide, so no track has two children.

Labels: the first track of an object keeps the object's id (the ROI's ``object_id``), so the
label images and the RoiSet name the same objects; a continuation after a gap gets the next label
above every object id.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, OutputExistsError
from ..types import Outline
from .atomic import atomic_group, atomic_write, atomic_write_text, check_writable
from .labels import iter_label_frames

__all__ = ["CtcTrack", "check_ctc_folder", "ctc_file_names", "mask_name", "write_ctc_result"]

TRACK_FILE = "res_track.txt"
_MAX_LABEL = 65535  # 16-bit label images


@dataclass
class CtcTrack:
    """One line of ``res_track.txt``: a contiguous piece of one object's trajectory.

    Attributes
    ----------
    label
        The pixel value of this track in the mask images (``L``).
    begin, end
        First and last 0-based frame (``B``, ``E``), inclusive.
    parent
        Label of the track this one continues after a gap, 0 for none (``P``).
    object_id
        The object (ROI ``object_id``) this track belongs to.
    """

    label: int
    begin: int
    end: int
    parent: int
    object_id: int

    def line(self) -> str:
        """The track as a line of ``res_track.txt`` (``L B E P``)."""
        return f"{self.label} {self.begin} {self.end} {self.parent}"


def mask_name(frame: int, n_frames: int) -> str:
    """The CTC file name of one frame's mask: ``mask007.tif`` (``mask0007.tif`` from 1000 frames).

    Parameters
    ----------
    frame
        0-based frame.
    n_frames
        Number of frames of the movie (decides the number of digits).

    Returns
    -------
    str
        The file name.
    """
    digits = 4 if n_frames >= 1000 else 3
    return f"mask{frame:0{digits}d}.tif"


def ctc_file_names(n_frames: int) -> list[str]:
    """Every file name of a CTC result folder for a movie of ``n_frames`` frames."""
    return [mask_name(t, n_frames) for t in range(n_frames)] + [TRACK_FILE]


def check_ctc_folder(
    out_dir: str | os.PathLike[str], n_frames: int | None = None, *, overwrite: bool = False
) -> Path:
    """Check, before any work, that a CTC result folder can be written.

    Parameters
    ----------
    out_dir
        The result folder (created if missing, with its parents).
    n_frames
        Frames of the movie; when given, an existing folder is also checked for ``.tif`` files
        this export would not replace (the CTC tools read every ``.tif`` of the folder as a
        frame, so a longer earlier result would spoil the new one).
    overwrite
        Whether an earlier result in ``out_dir`` may be replaced.

    Returns
    -------
    Path
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputExistsError
        If ``out_dir`` holds files and ``overwrite`` is false, or holds ``.tif`` files this
        export would not replace.
    DataError
        If ``out_dir`` is a file.
    WriteError
        If the folder cannot be created or written to.
    """
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise DataError(
            f"{folder} is a file; a Cell Tracking Challenge result is a folder (e.g. 01_RES): "
            "give a folder name"
        )
    # Hidden files (temporary files of a killed writer, .DS_Store) are no earlier result.
    existing = (
        []
        if not folder.is_dir()
        else sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    )
    if existing and not overwrite:
        raise OutputExistsError(
            f"the folder {folder} already holds files ({_some(existing)}) and was not replaced; "
            "pass overwrite=True (CLI: --overwrite) to replace an earlier result, or choose "
            "another folder"
        )
    if existing and n_frames is not None:
        ours = set(ctc_file_names(n_frames))
        strangers = [n for n in existing if n.lower().endswith((".tif", ".tiff")) and n not in ours]
        if strangers:
            raise OutputExistsError(
                f"the folder {folder} holds TIFF files this export would not replace "
                f"({_some(strangers)}); the CTC tools read every .tif there as a frame, so "
                "delete them or choose an empty folder"
            )
    # Creates the folder and proves a file can be written there (disk, permissions).
    check_writable(folder / TRACK_FILE, overwrite=True)
    return folder


def _some(names: list[str], n: int = 3) -> str:
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


class _TrackBook:
    """Assigns CTC track labels frame by frame, splitting trajectories at their gaps."""

    def __init__(self, first_new_label: int) -> None:
        self.tracks: list[CtcTrack] = []
        self._open: dict[int, CtcTrack] = {}  # object id -> its track running in this frame
        self._last: dict[int, int] = {}  # object id -> label of its latest track (the parent)
        self._next = first_new_label  # label of the next continuation after a gap

    def step(self, frame: int, present: Iterable[int]) -> dict[int, int]:
        """Record the objects seen in ``frame``; returns object id -> track label there."""
        present = set(present)
        for oid in [o for o in self._open if o not in present]:
            del self._open[oid]  # the object is gone: its track ended on the previous frame
        for oid in sorted(present):
            track = self._open.get(oid)
            if track is not None:
                track.end = frame
                continue
            if oid in self._last:  # back after a gap: a new track, child of the previous one
                if self._next > _MAX_LABEL:
                    raise DataError(
                        f"too many gaps in the tracks: the continuation of object {oid} on frame "
                        f"{frame + 1} would need label {self._next}, above the 16-bit limit "
                        f"{_MAX_LABEL} of CTC label images"
                    )
                label, parent = self._next, self._last[oid]
                self._next += 1
            else:
                label, parent = oid, 0
            track = CtcTrack(label, frame, frame, parent, oid)
            self.tracks.append(track)
            self._open[oid] = track
            self._last[oid] = label
        return {oid: t.label for oid, t in self._open.items()}


def _relabel(painted: np.ndarray, labels: dict[int, int]) -> np.ndarray:
    out = painted
    for oid, label in labels.items():
        if label != oid:
            if out is painted:
                out = painted.copy()
            out[painted == oid] = label
    return out


def write_ctc_result(
    out_dir: str | os.PathLike[str],
    outlines: Iterable[Outline],
    shape_tyx: tuple[int, int, int],
    *,
    overwrite: bool = False,
) -> list[CtcTrack]:
    """Write outlines as a Cell Tracking Challenge result folder, all files or none.

    Parameters
    ----------
    out_dir
        The result folder (e.g. ``.../01_RES``).
    outlines
        One plane's outlines (0-based frames; ``z`` and ``c`` are ignored). They are painted as
        :func:`rescunet_ij.io.labels.outlines_to_label_movie` paints them (later outlines win where
        they overlap); an object covered entirely is absent from that frame, and its track breaks
        there.
    shape_tyx
        ``(T, Y, X)``: every one of the ``T`` frames gets a mask, empty where there is nothing.
    overwrite
        Replace an earlier result in ``out_dir``.

    Returns
    -------
    list of CtcTrack
        The tracks written to ``res_track.txt``, sorted by label.

    Raises
    ------
    OutputExistsError, DataError, WriteError
        See :func:`check_ctc_folder`; :class:`DataError` also for an outline outside the frames
        or an object id above 65535.

    Notes
    -----
    Frames are painted and written one at a time, so memory holds one frame's labels whatever
    the movie's length. Each file is written atomically inside
    :func:`rescunet_ij.io.atomic.atomic_group` (joining the caller's group when there is one):
    nothing in ``out_dir`` changes unless every mask and the track table were written.
    """
    import tifffile

    items = list(outlines)
    n_frames, height, width = (int(s) for s in shape_tyx)
    for o in items:  # checked before the first file is written
        if not 0 <= o.frame < n_frames:
            raise DataError(
                f"the outline of object {o.object_id} is on frame {o.frame + 1}, but the movie "
                f"has {n_frames} frames"
            )
        if not 1 <= o.object_id <= _MAX_LABEL:
            raise DataError(
                f"object id {o.object_id} does not fit a 16-bit CTC label image (1..{_MAX_LABEL})"
            )
    # One label plane at a time, painted as io.labels paints label movies: memory stays that of
    # one frame however long the movie.
    planes = iter_label_frames(items, (n_frames, height, width)) if n_frames else iter(())
    folder = check_ctc_folder(out_dir, n_frames, overwrite=overwrite)
    book = _TrackBook(max((o.object_id for o in items), default=0) + 1)
    with atomic_group():
        for t, painted in enumerate(planes):
            present = np.unique(painted)
            labels = book.step(t, (int(v) for v in present[present > 0]))
            mask = _relabel(painted, labels)
            path = folder / mask_name(t, n_frames)
            with atomic_write(path, "wb", overwrite=overwrite) as fh:
                handle = tifffile.FileHandle(fh, mode="wb", name=path.name)
                tifffile.imwrite(handle, mask)
        tracks = sorted(book.tracks, key=lambda tr: tr.label)
        text = "".join(tr.line() + "\n" for tr in tracks)
        atomic_write_text(folder / TRACK_FILE, text, overwrite=overwrite)
    return tracks
