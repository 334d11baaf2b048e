"""Track exports: the Cell Tracking Challenge result format and TrackMate XML (the API's half).

Both exports take the outlines of one plane series through time (what a propagation along ``t``
produces) and keep the movie's own frame numbers: frame ``f`` of the outlines is frame ``f`` of the
export, and a cut-out of a movie is exported with the frames before it (empty), as
:func:`write_labels` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..propagate.frames import describe_frames
from ..types import Outline
from ._common import _index, _movie, _outlines
from ._movies import _dims


def _movie_or_dims(movie: Any) -> Any:
    """The normalised movie (read once if it is a path), or dimensions given as a tuple."""
    return movie if isinstance(movie, tuple) else _movie(movie)


def _one_plane(outlines: Any, movie: Any, z: int | None, what: str) -> list[Outline]:
    """The outlines of one z-plane, at most one per object and frame."""
    items = _outlines(outlines, movie)
    if z is not None:
        items = [o for o in items if o.z == z]
    else:
        planes = {o.z for o in items}
        if len(planes) > 1:
            raise DataError(
                f"the outlines lie on z-planes {describe_frames(planes)}; {what} exports the "
                "tracks of one plane: pass z= (0-based; CLI: --z, 1-based) to choose it"
            )
    seen: set[tuple[int, int]] = set()
    for o in items:
        key = (o.object_id, o.frame)
        if key in seen:
            raise DataError(
                f"object {o.object_id} has two outlines on frame {o.frame + 1} (one per channel?); "
                f"{what} needs one outline per object and frame: keep one of them"
            )
        seen.add(key)
    return items


def check_ctc_output(
    out_dir: str | os.PathLike[str], movie: Any = None, *, overwrite: bool = False
) -> Path:
    """Check before any work that a Cell Tracking Challenge result folder can be written.

    Parameters
    ----------
    out_dir
        The result folder (created when missing).
    movie
        The movie (or its dimensions ``(t, z, c, y, x)``); when given, an existing folder is also
        checked for ``.tif`` files the export would not replace.
    overwrite
        Whether an earlier result in the folder may be replaced.

    Returns
    -------
    Path
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputExistsError
        If the folder holds files and ``overwrite`` is false, or holds other TIFF files.
    DataError
        If ``out_dir`` is a file.
    WriteError
        If the folder cannot be written.
    """
    from ..io.ctc import check_ctc_folder

    n_frames = None if movie is None else _dims(_movie_or_dims(movie))[0]
    return check_ctc_folder(out_dir, n_frames, overwrite=overwrite)


def write_ctc(
    out_dir: str | os.PathLike[str],
    outlines: Iterable[Outline] | str | os.PathLike[str],
    movie: Any,
    *,
    z: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write outlines as a Cell Tracking Challenge result (``mask###.tif``, ``res_track.txt``).

    Every frame of the movie gets a 16-bit mask (empty where there is nothing); the pixel value is
    the track's label. A track is contiguous, as the challenge requires: an object that is missing
    on some frames (lost, or hidden by another one) continues after the gap as a new track whose
    parent is the one before it. An object's first track keeps its ``object_id`` as label. The
    folder scores with the challenge's metrics, e.g. ``ctc_evaluate --res OUT_DIR --gt 01_GT``
    (``pip install py-ctcmetrics``).

    Parameters
    ----------
    out_dir
        The result folder (the challenge names it ``01_RES``, ``02_RES``...).
    outlines
        The outlines (a list, or a RoiSet path); frames are the movie's own, 0-based.
    movie
        The movie the outlines belong to, or its dimensions ``(t, z, c, y, x)``.
    z
        The z-plane to export (0-based); ``None``: the outlines must all lie on one plane.
    overwrite
        Replace an earlier result in ``out_dir``.

    Returns
    -------
    Path
        The folder. Its files are written all together or not at all (inside
        :func:`output_group` they join the group's other outputs).

    Raises
    ------
    OutputExistsError
        If ``out_dir`` holds files and ``overwrite`` is false (see :func:`check_ctc_output`).
    DataError
        For outlines on several planes without ``z``, two outlines of one object on a frame, an
        outline outside the movie's frames or an object id above 65535.
    """
    from ..io.ctc import write_ctc_result

    movie = _movie_or_dims(movie)
    t, _, _, y, x = _dims(movie)
    items = _one_plane(outlines, movie, _index(z, "z"), "the Cell Tracking Challenge format")
    write_ctc_result(out_dir, items, (t, y, x), overwrite=overwrite)
    return Path(out_dir)


def write_trackmate(
    path: str | os.PathLike[str],
    outlines: Iterable[Outline] | str | os.PathLike[str],
    movie: Any,
    *,
    z: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write outlines as a TrackMate XML file (Fiji: Plugins > Tracking > Load a TrackMate file).

    Each outline becomes a spot with its outline as ROI (centroid, radius of the same area,
    ``QUALITY`` = the network's confidence, 1 for the user's own outlines; features ``OBJECT_ID``
    and ``PROMPT_IOU``); each object seen on two frames or more becomes a track linking its spots
    in frame order (a frame without it is a gap, as TrackMate's gap closing makes). Positions are
    in the movie's calibration; the file names the movie's TIFF so TrackMate opens it too.

    Parameters
    ----------
    path
        Output ``.xml``.
    outlines
        The outlines (a list, or a RoiSet path); frames are the movie's own, 0-based.
    movie
        The movie (calibration and file name come from it), or its dimensions
        ``(t, z, c, y, x)`` (uncalibrated, no image file).
    z
        The z-plane to export (0-based); ``None``: the outlines must all lie on one plane.
    overwrite
        Replace an existing file.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    DataError
        For outlines on several planes without ``z``, two outlines of one object on a frame or
        an outline outside the movie's frames.
    """
    from .. import __version__
    from ..io.trackmate import TrackMateImage
    from ..io.trackmate import write_trackmate as _write

    movie = _movie_or_dims(movie)
    t, nz, _, y, x = _dims(movie)
    items = _one_plane(outlines, movie, _index(z, "z"), "TrackMate")
    image = TrackMateImage(width=x, height=y, n_slices=nz, n_frames=t)
    if not isinstance(movie, tuple):
        attrs = movie.attrs
        if attrs.get("pixel_size"):
            image.pixel_size = float(attrs["pixel_size"])
            image.unit = attrs.get("unit") or "pixel"
        if attrs.get("z_spacing"):
            image.z_spacing = float(attrs["z_spacing"])
        if attrs.get("frame_interval"):
            image.frame_interval = float(attrs["frame_interval"])
            image.time_unit = attrs.get("time_unit") or "frame"
        if attrs.get("source"):
            source = Path(attrs["source"]).resolve()
            image.filename, image.folder = source.name, str(source.parent) + os.sep
    log = f"Exported by rescunet-ij {__version__}: {len(items)} outlines.\n"
    return _write(path, items, image, log=log, overwrite=overwrite)
