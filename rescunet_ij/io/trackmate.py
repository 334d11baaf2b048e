"""TrackMate XML: outlines as spots and tracks (Fiji: Plugins > Tracking > Load a TrackMate file).

The layout follows TrackMate's own writer and reader (``fiji.plugin.trackmate.io.TmXmlWriter`` /
``TmXmlReader`` and ``TmXmlKeys``, checked against TrackMate 8.1 source):

* ``Model`` (space and time units): ``FeatureDeclarations`` (every spot, edge and track feature the
  file uses, with name, short name, dimension and whether it is an integer), ``AllSpots`` (one
  ``SpotsInFrame`` per frame holding ``Spot`` elements), ``AllTracks`` (one ``Track`` per object
  seen on two frames or more, one ``Edge`` between each pair of its consecutive spots) and
  ``FilteredTracks`` (every track is shown).
* ``Settings``: ``ImageData`` (file name, folder, size, calibration), ``BasicSettings`` (the whole
  image), the manual detector and tracker (nothing to re-run), empty filters and analyzer lists.
* ``GUIState`` (open on the display panel) and an empty ``DisplaySettings`` (the user's defaults).

Spots are TrackMate's spots with a ROI (TrackMate 7 and later): ``POSITION_X/Y`` is the centroid of
the pixels the outline covers (the pixels of the label images and CTC masks), ``RADIUS`` the radius
of a disc of that area, and the element's text holds the outline's vertices relative to the centroid
(``ROI_N_POINTS`` pairs ``x y``), all in physical units. TrackMate puts pixel centres on integer
coordinates while ImageJ ROIs put them at ``+0.5``, so every coordinate is shifted by half a pixel
(TrackMate adds it back when it draws). ``QUALITY`` is the network's confidence (1 for the user's
own outlines), and two features of ours link each spot to its ROI: ``OBJECT_ID``, and ``PROMPT_IOU``
(the IoU with the outline it was predicted from).
"""

from __future__ import annotations

import io
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..geometry import polygon_to_mask
from ..types import Outline
from .atomic import atomic_write_bytes, check_overwrite

__all__ = ["TRACKMATE_VERSION", "TrackMateImage", "trackmate_tree", "write_trackmate"]

TRACKMATE_VERSION = "7.0.0"
"""The ``version`` written on the root: the first TrackMate whose reader loads spot ROIs (TrackMate
refuses files older than 2.1.0)."""

# feature -> (name, short name, dimension, is int), as TrackMate declares them.
_SPOT_FEATURES = {
    "QUALITY": ("Quality", "Quality", "QUALITY", False),
    "POSITION_X": ("X", "X", "POSITION", False),
    "POSITION_Y": ("Y", "Y", "POSITION", False),
    "POSITION_Z": ("Z", "Z", "POSITION", False),
    "POSITION_T": ("T", "T", "TIME", False),
    "FRAME": ("Frame", "Frame", "NONE", True),
    "RADIUS": ("Radius", "R", "LENGTH", False),
    "VISIBILITY": ("Visibility", "Visibility", "NONE", True),
    "OBJECT_ID": ("Object id (ROI)", "Object", "NONE", True),
    "PROMPT_IOU": ("IoU with the prompt", "Prompt IoU", "NONE", False),
}
_EDGE_FEATURES = {
    "SPOT_SOURCE_ID": ("Source spot ID", "Source ID", "NONE", True),
    "SPOT_TARGET_ID": ("Target spot ID", "Target ID", "NONE", True),
    "LINK_COST": ("Edge cost", "Cost", "COST", False),
}
_TRACK_FEATURES = {
    "TRACK_INDEX": ("Track index", "Index", "NONE", True),
    "TRACK_ID": ("Track ID", "ID", "NONE", True),
    "NUMBER_SPOTS": ("Number of spots in track", "N spots", "NONE", True),
    "NUMBER_GAPS": ("Number of gaps", "N gaps", "NONE", True),
    "LONGEST_GAP": ("Longest gap", "Lgst gap", "NONE", True),
    "NUMBER_SPLITS": ("Number of split events", "N splits", "NONE", True),
    "NUMBER_MERGES": ("Number of merge events", "N merges", "NONE", True),
    "NUMBER_COMPLEX": ("Number of complex points", "N complex", "NONE", True),
    "TRACK_DURATION": ("Track duration", "Duration", "TIME", False),
    "TRACK_START": ("Track start", "Track start", "TIME", False),
    "TRACK_STOP": ("Track stop", "Track stop", "TIME", False),
}


@dataclass
class TrackMateImage:
    """The image the spots belong to, as TrackMate's ``ImageData`` describes it.

    Attributes
    ----------
    width, height, n_slices, n_frames
        Size of the image in pixels, planes and frames.
    pixel_size
        Width (and height) of a pixel in ``unit``.
    z_spacing
        Distance between planes in ``unit``.
    frame_interval
        Time between frames in ``time_unit``.
    unit, time_unit
        Physical units (``"pixel"``/``"frame"`` for an uncalibrated image).
    filename, folder
        Where TrackMate finds the image to show the spots on (empty: TrackMate opens an empty
        image of the right size).
    """

    width: int
    height: int
    n_slices: int = 1
    n_frames: int = 1
    pixel_size: float = 1.0
    z_spacing: float = 1.0
    frame_interval: float = 1.0
    unit: str = "pixel"
    time_unit: str = "frame"
    filename: str = ""
    folder: str = ""


@dataclass
class _Spot:
    spot_id: int
    outline: Outline
    cx: float  # centroid, ImageJ pixel coordinates
    cy: float
    area: float  # pixels covered


def _geometry(polygon: np.ndarray, height: int, width: int) -> tuple[float, float, float] | None:
    """Centroid ``(x, y)`` (ImageJ coordinates) and area of the pixels an outline covers.

    The pixels, not the polygon: the same pixels as the label images and CTC masks (an outline's
    polygon may be simplified along the pixel edges). ``None`` when it covers no pixel.
    """
    p = np.asarray(polygon, dtype=np.float64)
    if len(p) < 3:
        return None
    x0, y0 = max(int(np.floor(p[:, 0].min())), 0), max(int(np.floor(p[:, 1].min())), 0)
    x1 = min(int(np.ceil(p[:, 0].max())) + 1, width)
    y1 = min(int(np.ceil(p[:, 1].max())) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    # Rasterised in its bounding box: an integer shift keeps the pixel-centre rule exact.
    rows, cols = np.nonzero(polygon_to_mask(p - (x0, y0), (y1 - y0, x1 - x0)))
    if not len(rows):
        return None
    return float(cols.mean()) + x0 + 0.5, float(rows.mean()) + y0 + 0.5, float(len(rows))


def _num(value: float) -> str:
    """A number as Java's ``Double.valueOf`` (TrackMate's reader) parses it."""
    value = float(value)
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _declare(parent: ET.Element, tag: str, features: dict) -> None:
    group = ET.SubElement(parent, tag)
    for key, (name, short, dim, is_int) in features.items():
        ET.SubElement(
            group,
            "Feature",
            feature=key,
            name=name,
            shortname=short,
            dimension=dim,
            isint=str(is_int).lower(),
        )


def _spot_element(parent: ET.Element, spot: _Spot, image: TrackMateImage) -> None:
    o, s = spot.outline, image.pixel_size
    attrs = {
        "ID": str(spot.spot_id),
        "name": o.display_name,
        "QUALITY": _num(1.0 if o.confidence is None else o.confidence),
        # TrackMate: pixel centres on integers; ImageJ ROIs: at +0.5.
        "POSITION_X": _num((spot.cx - 0.5) * s),
        "POSITION_Y": _num((spot.cy - 0.5) * s),
        "POSITION_Z": _num(o.z * image.z_spacing),
        "POSITION_T": _num(o.frame * image.frame_interval),
        "FRAME": str(o.frame),
        "RADIUS": _num(np.sqrt(spot.area / np.pi) * s),
        "VISIBILITY": "1",
        "OBJECT_ID": str(o.object_id),
        # NaN (TrackMate: "undefined") for the user's outlines: some readers need every feature.
        "PROMPT_IOU": _num(np.nan if o.prompt_iou is None else o.prompt_iou),
        "ROI_N_POINTS": str(len(o.polygon)),
    }
    el = ET.SubElement(parent, "Spot", attrs)
    rel = (o.polygon - np.array([spot.cx, spot.cy])) * s
    el.text = " ".join(f"{_num(x)} {_num(y)}" for x, y in rel)


def _track_element(
    parent: ET.Element, track_id: int, spots: list[_Spot], image: TrackMateImage
) -> None:
    frames = [sp.outline.frame for sp in spots]
    gaps = [b - a - 1 for a, b in zip(frames, frames[1:])]
    start, stop = frames[0] * image.frame_interval, frames[-1] * image.frame_interval
    track = ET.SubElement(
        parent,
        "Track",
        name=f"Track_{spots[0].outline.object_id}",
        TRACK_ID=str(track_id),
        TRACK_INDEX=str(track_id),
        NUMBER_SPOTS=str(len(spots)),
        NUMBER_GAPS=str(sum(g > 0 for g in gaps)),
        LONGEST_GAP=str(max(gaps, default=0)),
        NUMBER_SPLITS="0",
        NUMBER_MERGES="0",
        NUMBER_COMPLEX="0",
        TRACK_DURATION=_num(stop - start),
        TRACK_START=_num(start),
        TRACK_STOP=_num(stop),
    )
    for a, b in zip(spots, spots[1:]):
        ET.SubElement(
            track,
            "Edge",
            SPOT_SOURCE_ID=str(a.spot_id),
            SPOT_TARGET_ID=str(b.spot_id),
            LINK_COST="0.0",
        )


def _settings(root: ET.Element, image: TrackMateImage, radius: float) -> None:
    settings = ET.SubElement(root, "Settings")
    ET.SubElement(
        settings,
        "ImageData",
        filename=image.filename,
        folder=image.folder,
        width=str(image.width),
        height=str(image.height),
        nslices=str(image.n_slices),
        nframes=str(image.n_frames),
        pixelwidth=_num(image.pixel_size),
        pixelheight=_num(image.pixel_size),
        voxeldepth=_num(image.z_spacing),
        timeinterval=_num(image.frame_interval),
    )
    ET.SubElement(
        settings,
        "BasicSettings",
        xstart="0",
        xend=str(image.width - 1),
        ystart="0",
        yend=str(image.height - 1),
        zstart="0",
        zend=str(image.n_slices - 1),
        tstart="0",
        tend=str(image.n_frames - 1),
    )
    # The manual detector and tracker: TrackMate keeps the spots and tracks as they are.
    ET.SubElement(
        settings, "DetectorSettings", DETECTOR_NAME="MANUAL_DETECTOR", RADIUS=_num(radius)
    )
    ET.SubElement(settings, "InitialSpotFilter", feature="QUALITY", value="0.0", isabove="true")
    ET.SubElement(settings, "SpotFilterCollection")
    ET.SubElement(settings, "TrackerSettings", TRACKER_NAME="MANUAL_TRACKER")
    ET.SubElement(settings, "TrackFilterCollection")
    analyzers = ET.SubElement(settings, "AnalyzerCollection")
    for tag in ("SpotAnalyzers", "EdgeAnalyzers", "TrackAnalyzers"):
        ET.SubElement(analyzers, tag)


def trackmate_tree(
    outlines: Iterable[Outline], image: TrackMateImage, *, log: str = ""
) -> ET.ElementTree:
    """The TrackMate XML document of some outlines (see the module's description).

    Parameters
    ----------
    outlines
        At most one outline per object and frame (0-based frames; ``z`` becomes ``POSITION_Z``).
        Outlines covering no pixel are left out. An object's spots are linked in frame order;
        a frame without the object becomes a gap in its track, as TrackMate's gap closing makes.
    image
        The image the outlines belong to.
    log
        Text for TrackMate's log panel.

    Returns
    -------
    xml.etree.ElementTree.ElementTree
        The document.

    Raises
    ------
    DataError
        If an object has two outlines on one frame, or an outline lies outside the image's
        frames.
    """
    spots: list[_Spot] = []
    seen: set[tuple[int, int]] = set()
    for o in sorted(outlines, key=lambda o: (o.frame, o.object_id)):
        if not 0 <= o.frame < image.n_frames:
            raise DataError(
                f"the outline of object {o.object_id} is on frame {o.frame + 1}, but the image "
                f"has {image.n_frames} frames"
            )
        if (o.object_id, o.frame) in seen:
            raise DataError(
                f"object {o.object_id} has two outlines on frame {o.frame + 1} (other planes or "
                "channels?); a track has one spot per frame: export one plane"
            )
        seen.add((o.object_id, o.frame))
        geometry = _geometry(o.polygon, image.height, image.width)
        if geometry is not None:
            spots.append(_Spot(len(spots), o, *geometry))

    root = ET.Element("TrackMate", version=TRACKMATE_VERSION)
    ET.SubElement(root, "Log").text = log
    model = ET.SubElement(root, "Model", spatialunits=image.unit, timeunits=image.time_unit)
    declarations = ET.SubElement(model, "FeatureDeclarations")
    _declare(declarations, "SpotFeatures", _SPOT_FEATURES)
    _declare(declarations, "EdgeFeatures", _EDGE_FEATURES)
    _declare(declarations, "TrackFeatures", _TRACK_FEATURES)

    all_spots = ET.SubElement(model, "AllSpots", nspots=str(len(spots)))
    in_frame: dict[int, ET.Element] = {}
    for sp in spots:  # sorted by frame
        frame = sp.outline.frame
        if frame not in in_frame:
            in_frame[frame] = ET.SubElement(all_spots, "SpotsInFrame", frame=str(frame))
        _spot_element(in_frame[frame], sp, image)

    by_object: dict[int, list[_Spot]] = {}
    for sp in spots:
        by_object.setdefault(sp.outline.object_id, []).append(sp)
    all_tracks = ET.SubElement(model, "AllTracks")
    filtered = ET.SubElement(model, "FilteredTracks")
    track_ids = 0
    for oid in sorted(by_object):
        if len(by_object[oid]) < 2:  # a lone spot is no track (TrackMate writes none either)
            continue
        _track_element(all_tracks, track_ids, by_object[oid], image)
        ET.SubElement(filtered, "TrackID", TRACK_ID=str(track_ids))
        track_ids += 1

    radius = float(np.mean([np.sqrt(sp.area / np.pi) for sp in spots])) if spots else 5.0
    _settings(root, image, radius * image.pixel_size)
    ET.SubElement(root, "GUIState", state="ConfigureViews")
    ET.SubElement(root, "DisplaySettings")  # empty: TrackMate uses the user's defaults
    ET.indent(root)
    return ET.ElementTree(root)


def write_trackmate(
    path: str | os.PathLike[str],
    outlines: Iterable[Outline],
    image: TrackMateImage,
    *,
    log: str = "",
    overwrite: bool = False,
) -> Path:
    """Write outlines as a TrackMate XML file, atomically (see :func:`trackmate_tree`).

    Parameters
    ----------
    path
        Output ``.xml``.
    outlines
        The outlines (one per object and frame).
    image
        The image they belong to.
    log
        Text for TrackMate's log panel.
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
        See :func:`trackmate_tree`.
    """
    check_overwrite(path, overwrite)
    buffer = io.BytesIO()
    buffer.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')  # as TrackMate (JDOM) writes it
    trackmate_tree(outlines, image, log=log).write(buffer, encoding="UTF-8", xml_declaration=False)
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)
