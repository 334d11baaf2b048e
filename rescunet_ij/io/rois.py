"""ImageJ ROIs (``.roi`` files, ROI Manager ``RoiSet.zip``) <-> :class:`~rescunet_ij.types.Outline`.

This module (with :mod:`rescunet_ij.bridge`) is the only place where ImageJ's **1-based**
stack positions appear; everything it returns is 0-based.

Reading happens in two steps so the ImageJ bridge can reuse the second one:

1. :func:`read_raw_rois` decodes a file (with ``roifile``) into :class:`RawRoi` records: the area
   outline as a polygon plus ImageJ's name, group, properties and 1-based positions.
2. :func:`raw_rois_to_outlines` turns records into outlines: positions -> 0-based frame/z/c,
   clipping, degenerate ROIs, object identities (:func:`assign_identities`).

:func:`read_rois` does both. :func:`write_rois` writes outlines as a RoiSet that Fiji's ROI
Manager opens on the movie with every ROI on its frame, and that :func:`read_rois` reads back
unchanged.

Problems that leave the result usable (a line ROI skipped, a vertex clipped) are reported with
:class:`RoiWarning`; problems that do not (no usable ROI, missing positions, two outlines for one
object in one frame) raise :class:`~rescunet_ij.errors.DataError`.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..geometry import clip_polygon, mask_to_polygon, polygon_area, polygon_to_mask
from ..types import Identity, Outline, plane_key
from .atomic import atomic_write, atomic_write_bytes, check_overwrite
from .identity import (
    OBJECT_ID_PROPERTY,
    RoiRecord,
    assign_identities,
    describe_roi,
    is_default_imagej_name,
    resolve_identities,
    short_list,
)
from .provenance import OUTLINE_HASH_PROPERTY, float_property, outline_hash, prediction_edited

__all__ = [
    "OBJECT_ID_PROPERTY",
    "OUTLINE_HASH_PROPERTY",
    "PALETTE",
    "RawRoi",
    "RoiRecord",
    "RoiWarning",
    "assign_identities",
    "composite_part",
    "is_default_imagej_name",
    "object_color",
    "outline_hash",
    "prediction_edited",
    "raw_rois_to_outlines",
    "read_raw_rois",
    "read_rois",
    "resolve_identities",
    "roi_labels",
    "write_rois",
]

PALETTE: tuple[str, ...] = (
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
    "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#aaffc3", "#ffd8b1",
)  # fmt: skip
"""Distinct, bright stroke colours; object ``k`` gets ``PALETTE[(k - 1) % len(PALETTE)]``."""

_AREA_KINDS = {"polygon", "freehand", "traced", "rectangle", "oval", "composite"}


class RoiWarning(UserWarning):
    """A ROI was skipped, clipped or simplified while reading."""


@dataclass
class RawRoi:
    """One ImageJ ROI, independent of where it came from (file or the running ImageJ).

    Attributes
    ----------
    name
        ROI name ('' when unnamed).
    kind
        ``polygon``, ``freehand``, ``traced``, ``rectangle``, ``oval``, ``composite`` (these have
        an area) or the type of a ROI without area (``line``, ``point`` ...), for messages.
    polygon
        ``(n, 2)`` float64 ``(x, y)`` outline in ImageJ pixel coordinates; None when the ROI has
        no area.
    group, properties
        ImageJ's ROI group (0 = none) and properties (``key: value`` pairs).
    position
        Stack index (1-based, 0 = unset) as ImageJ stores it for non-hyperstacks.
    c_position, z_position, t_position
        Hyperstack position (1-based, 0 = unset/all).
    index_in_file
        Order of the ROI in its file or ROI Manager.
    note
        Something the reader should be told about this ROI (e.g. a dropped composite part).
    """

    name: str
    kind: str
    polygon: np.ndarray | None
    group: int = 0
    properties: dict[str, Any] = field(default_factory=dict)
    position: int = 0
    c_position: int = 0
    z_position: int = 0
    t_position: int = 0
    index_in_file: int = 0
    note: str | None = None


def object_color(object_id: int) -> str:
    """The stroke colour (``#rrggbb``) rescunet-ij uses for an object."""
    return PALETTE[(int(object_id) - 1) % len(PALETTE)]


def composite_part(rings: Sequence[np.ndarray]) -> tuple[np.ndarray | None, str | None]:
    """The part of a composite (ShapeRoi) ROI that rescunet-ij uses; a note when parts are dropped.

    The largest ring by area is the object's outline; holes and other parts are dropped (one
    outline per object and frame). Shared by the file reader and the ImageJ bridge.
    """
    rings = [np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in rings]
    rings = [r for r in rings if len(r) >= 3]
    if not rings:
        return None, None
    polygon = rings[int(np.argmax([polygon_area(r) for r in rings]))]
    note = None
    if len(rings) > 1:
        note = (
            f"is a composite ROI with {len(rings)} parts; only its largest part is used "
            "(holes and other parts are dropped)"
        )
    return polygon, note


def _warn(msg: str) -> None:
    warnings.warn(msg, RoiWarning, stacklevel=3)


# --------------------------------------------------------------------------------------- reading


def _bezier(p0: np.ndarray, ctrl: Sequence[np.ndarray], n: int = 8) -> list[np.ndarray]:
    t = np.linspace(0.0, 1.0, n + 1)[1:, None]
    if len(ctrl) == 2:  # quadratic
        c, p = ctrl
        pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t**2 * p
    else:  # cubic
        c1, c2, p = ctrl
        pts = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t**2 * c2 + t**3 * p
    return list(pts)


def _path_rings(path: np.ndarray) -> list[np.ndarray]:
    """Closed sub-paths of a java.awt PathIterator array (ImageJ ShapeRoi), curves flattened."""
    d = [float(v) for v in np.asarray(path).ravel()]
    rings: list[np.ndarray] = []
    pts: list[np.ndarray] = []
    i = 0
    while i < len(d):
        op = int(d[i])
        if op == 0:  # MOVETO
            if len(pts) >= 3:
                rings.append(np.array(pts))
            pts = [np.array(d[i + 1 : i + 3])]
            i += 3
        elif op == 1:  # LINETO
            pts.append(np.array(d[i + 1 : i + 3]))
            i += 3
        elif op in (2, 3):  # QUADTO, CUBICTO
            k = 2 if op == 2 else 3
            ctrl = [np.array(d[i + 1 + 2 * j : i + 3 + 2 * j]) for j in range(k)]
            pts.extend(_bezier(pts[-1] if pts else ctrl[0], ctrl))
            i += 1 + 2 * k
        elif op == 4:  # CLOSE
            if len(pts) >= 3:
                rings.append(np.array(pts))
            pts = []
            i += 1
        else:
            raise ValueError(f"invalid path segment type {op}")
    if len(pts) >= 3:
        rings.append(np.array(pts))
    return rings


def _oval_polygon(x: float, y: float, w: float, h: float) -> np.ndarray:
    """Outline of the pixels ImageJ's OvalRoi contains (centre inside the inscribed ellipse)."""
    if w <= 0 or h <= 0:
        return np.zeros((0, 2))
    c0, r0 = int(np.floor(x)), int(np.floor(y))
    c1, r1 = int(np.ceil(x + w)), int(np.ceil(y + h))
    a, b = w / 2.0, h / 2.0
    cols = np.arange(c0, c1) + 0.5 - (x + a)
    rows = np.arange(r0, r1) + 0.5 - (y + b)
    inside = (cols[None, :] / a) ** 2 + (rows[:, None] / b) ** 2 <= 1.0
    poly = mask_to_polygon(inside)
    return poly + np.array([c0, r0], dtype=np.float64) if len(poly) else poly


def _rect_polygon(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


def _decode(roi: Any, index: int) -> RawRoi:
    """One roifile.ImagejRoi -> RawRoi."""
    from roifile import ROI_OPTIONS, ROI_SUBTYPE, ROI_TYPE

    rt, st = roi.roitype, roi.subtype
    polygon: np.ndarray | None = None
    note = None
    if st in (ROI_SUBTYPE.TEXT, ROI_SUBTYPE.IMAGE, ROI_SUBTYPE.ARROW):
        kind = st.name.lower()
    elif roi.composite:
        kind = "composite"
        try:
            rings = _path_rings(roi.multi_coordinates if roi.multi_coordinates is not None else [])
        except (ValueError, IndexError):
            rings = []
        polygon, note = composite_part(rings)
    elif rt == ROI_TYPE.RECT:
        kind = "rectangle"
        if roi.subpixelrect:
            polygon = _rect_polygon(roi.xd, roi.yd, roi.widthd, roi.heightd)
        else:
            polygon = _rect_polygon(roi.left, roi.top, roi.right - roi.left, roi.bottom - roi.top)
        if roi.rounded_rect_arc_size > 0:
            note = "is a rounded rectangle; its corners are taken as square"
    elif rt == ROI_TYPE.OVAL:
        kind = "oval"
        if roi.subpixelrect:
            polygon = _oval_polygon(roi.xd, roi.yd, roi.widthd, roi.heightd)
        else:
            polygon = _oval_polygon(roi.left, roi.top, roi.right - roi.left, roi.bottom - roi.top)
    elif rt in (ROI_TYPE.POLYGON, ROI_TYPE.FREEHAND, ROI_TYPE.TRACED):
        kind = {ROI_TYPE.POLYGON: "polygon", ROI_TYPE.FREEHAND: "freehand"}.get(rt, "traced")
        polygon = np.asarray(roi.coordinates(), dtype=np.float64).reshape(-1, 2)
        if roi.options & ROI_OPTIONS.SPLINE_FIT:
            note = "is spline-fitted; its control points are used as the outline"
    else:
        kind = rt.name.lower() if isinstance(rt, ROI_TYPE) else str(rt)
    return RawRoi(
        name=roi.name or "",
        kind=kind,
        polygon=polygon,
        group=int(roi.group),
        properties=dict(roi.properties),
        position=int(roi.position),
        c_position=int(roi.c_position),
        z_position=int(roi.z_position),
        t_position=int(roi.t_position),
        index_in_file=index,
        note=note,
    )


def read_raw_rois(path: str | os.PathLike[str]) -> list[RawRoi]:
    """Decode a ``.roi`` file or a RoiSet ``.zip`` into :class:`RawRoi` records (file order).

    Raises
    ------
    DataError
        If the file is missing, not a ROI file or a ZIP holding no readable ``.roi`` entry.
    """
    from roifile import ImagejRoi

    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}; check the path of the ROI set")
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the path of a RoiSet .zip or a .roi file")
    expected = (
        "expected an ImageJ ROI file: a RoiSet .zip (ROI Manager > More > Save...) or a single .roi"
    )
    data = path.read_bytes()
    entries: list[tuple[str, bytes]] = []
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    if info.filename.lower().endswith(".roi") and not info.is_dir():
                        entries.append((info.filename, zf.read(info)))
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataError(
                f"cannot read {path.name}: {exc}; the ZIP file may be corrupted"
            ) from exc
    elif data[:4] == b"Iout":
        entries.append((path.name, data))
    else:
        raise DataError(f"{path.name} is not an ImageJ ROI file; {expected}")
    raws: list[RawRoi] = []
    for index, (entry, blob) in enumerate(entries):
        try:
            roi = ImagejRoi.frombytes(blob)
        except (ValueError, struct.error, IndexError, TypeError) as exc:
            raise DataError(
                f"{path.name}: the ROI {entry!r} is corrupted ({exc}); remove it from the set"
            ) from exc
        stem = Path(entry).name[:-4] if entry.lower().endswith(".roi") else entry
        raw = _decode(roi, index)
        if not raw.name:
            raw.name = stem  # ImageJ names such ROIs after their file/zip entry
        raws.append(raw)
    if not raws:
        raise DataError(f"{path.name} holds no ROIs; {expected}")
    return raws


def _resolve_position(
    raw: RawRoi, n_c: int, n_z: int, n_t: int
) -> tuple[int | None, int | None, int | None]:
    """1-based ImageJ positions -> 0-based (frame, z, c); None where unset."""
    label = describe_roi(raw.name, raw.index_in_file)
    if raw.c_position > 0 or raw.z_position > 0 or raw.t_position > 0:
        frame = raw.t_position - 1 if raw.t_position > 0 else None
        z = raw.z_position - 1 if raw.z_position > 0 else None
        c = raw.c_position - 1 if raw.c_position > 0 else None
    elif raw.position > 0:
        # ImageJ's stack order: channel fastest, then z, then t.
        idx = raw.position - 1
        if idx >= n_c * n_z * n_t:
            raise DataError(
                f"ROI {label} is on stack position {raw.position}, but the movie has only "
                f"{n_c * n_z * n_t} images ({n_t} frames x {n_z} planes x {n_c} channels); "
                "are these ROIs from another movie?"
            )
        c = idx % n_c if n_c > 1 else None
        z = (idx // n_c) % n_z
        frame = idx // (n_c * n_z)
    else:
        return None, None, None
    for what, value, size in (("frame", frame, n_t), ("z-plane", z, n_z), ("channel", c, n_c)):
        if value is not None and value >= size:
            raise DataError(
                f"ROI {label} is on {what} {value + 1}, but the movie has {size} {what}s; "
                "are these ROIs from another movie (or were its dimensions changed)?"
            )
    return frame, z, c


def _no_position_error(
    source: str, labels: list[str], axis: str, size: int, plural: str, parameter: str
) -> DataError:
    """ROIs without a frame (or z) position on a movie that has several: how to fix that."""
    place = "frame" if axis == "frame" else "plane"
    return DataError(
        f"{source}: {len(labels)} ROI(s) have no {axis} position but the movie has {size} "
        f"{plural}: {short_list(labels)}. Fix it in Fiji: show the ROI's {place}, select the "
        "ROI and set its position with ROI Manager > More > Properties... (or delete it and "
        f"press 'Add' again while the movie shows that {place}); then save the ROIs again (ROI "
        "Manager > More > Save...). The rescunet-ij command line has no option to assign a "
        f"position to such ROIs; in Python, pass the 0-based {place} as {parameter}= to "
        "rescunet_ij.io.rois.read_rois or rescunet_ij.bridge.roimanager_to_outlines"
    )


def _in_movie(value: int | None, size: int, default: int | None) -> int | None:
    """A resolved 0-based position; on a one-plane axis 0, else ``default`` (None: unknown)."""
    if value is not None:
        return value
    if size == 1:
        return 0
    return None if default is None else int(default)


def _usable_polygon(
    raw: RawRoi, image_shape: tuple[int, int] | None
) -> tuple[np.ndarray | None, str]:
    """The ROI's polygon, clipped to the image; the verdict is ok/clipped/degenerate/outside."""
    poly = np.asarray(raw.polygon, dtype=np.float64).reshape(-1, 2)
    if len(poly) > 1 and np.array_equal(poly[0], poly[-1]):
        poly = poly[:-1]
    if len(np.unique(poly, axis=0)) < 3 or polygon_area(poly) <= 1e-9:
        return None, "degenerate"
    verdict = "ok"
    if image_shape is not None:
        h, w = int(image_shape[0]), int(image_shape[1])
        x, y = poly[:, 0], poly[:, 1]
        if (x < 0).any() or (x > w).any() or (y < 0).any() or (y > h).any():
            poly = clip_polygon(poly, (h, w))
            if polygon_area(poly) <= 1e-9 or not polygon_to_mask(poly, (h, w)).any():
                return None, "outside"
            verdict = "clipped"
    # An outline that contains no pixel centre would be an empty mask: useless as a prompt.
    x0, y0 = np.floor(poly.min(axis=0))
    x1, y1 = np.ceil(poly.max(axis=0))
    if not polygon_to_mask(poly - [x0, y0], (int(y1 - y0) + 1, int(x1 - x0) + 1)).any():
        return None, "degenerate"
    return poly, verdict


_DROPPED = {
    "skipped": "skipped {n} ROI(s) without an area (only area ROIs such as polygons, freehand, "
    "rectangles and ovals are outlines)",
    "degenerate": "skipped {n} degenerate ROI(s) (fewer than 3 distinct points, zero area or no "
    "pixel inside)",
    "outside": "skipped {n} ROI(s) entirely outside the image",
    "clipped": "clipped {n} ROI(s) reaching outside the image",
}


_Kept = tuple[RawRoi, np.ndarray, int, int, "int | None"]


def _outlines(kept: list[_Kept], identity: Identity | str) -> list[Outline]:
    records = [
        RoiRecord(
            name=raw.name,
            group=raw.group,
            properties=raw.properties,
            frame=frame,
            z=z,
            index_in_file=raw.index_in_file,
            c=c,
        )
        for raw, _, frame, z, c in kept
    ]
    _, ids = resolve_identities(records, identity)
    outlines: list[Outline] = []
    for (raw, poly, frame, z, c), oid in zip(kept, ids):
        name = raw.name.strip() or None
        if name is not None and (is_default_imagej_name(name) or name == f"object-{oid}"):
            name = None  # positions and our own default names are not worth keeping
        confidence = float_property(raw.properties, "confidence")
        edited = prediction_edited(raw.properties, raw.polygon)
        outlines.append(
            Outline(
                object_id=oid,
                frame=frame,
                polygon=poly,
                z=z,
                c=c,
                name=name,
                confidence=confidence,
                prompt_iou=float_property(raw.properties, "prompt_iou"),
                edited=edited,
            )
        )
    outlines.sort(key=lambda o: o.sort_key)
    return outlines


def raw_rois_to_outlines(
    raws: Iterable[RawRoi],
    *,
    n_frames: int,
    n_slices: int = 1,
    n_channels: int = 1,
    image_shape: tuple[int, int] | None = None,
    identity: Identity | str = Identity.AUTO,
    default_frame: int | None = None,
    default_z: int | None = None,
    source: str = "the ROI set",
) -> list[Outline]:
    """Turn decoded ROIs into outlines (see :func:`read_rois` for the rules)."""
    for name, v in (("n_frames", n_frames), ("n_slices", n_slices), ("n_channels", n_channels)):
        if int(v) < 1:
            raise ConfigError(f"{name} must be >= 1; got {v}")
    raws = list(raws)
    dropped: dict[str, list[str]] = {key: [] for key in _DROPPED}
    no_frame: list[str] = []
    no_z: list[str] = []
    kept: list[_Kept] = []
    for raw in raws:
        label = describe_roi(raw.name, raw.index_in_file)
        if raw.kind not in _AREA_KINDS or raw.polygon is None:
            dropped["skipped"].append(f"{label} ({raw.kind})")
            continue
        frame, z, c = _resolve_position(raw, n_channels, n_slices, n_frames)
        if n_channels == 1:
            c = None  # one channel: "this channel" and "all channels" are the same
        frame = _in_movie(frame, n_frames, default_frame)
        z = _in_movie(z, n_slices, default_z)
        if frame is None or z is None:
            (no_frame if frame is None else no_z).append(label)
            continue
        poly, verdict = _usable_polygon(raw, image_shape)
        if verdict != "ok":
            dropped[verdict].append(label)
        if poly is None:
            continue
        if raw.note:
            _warn(f"{source}: ROI {label} {raw.note}")
        kept.append((raw, poly, frame, z, c))
    for key, labels in dropped.items():
        if labels:
            _warn(f"{source}: {_DROPPED[key].format(n=len(labels))}: {short_list(labels)}")
    if no_frame:
        raise _no_position_error(source, no_frame, "frame", n_frames, "frames", "default_frame")
    if no_z:
        raise _no_position_error(source, no_z, "z", n_slices, "z-planes", "default_z")
    if not kept:
        raise DataError(
            f"{source} holds no usable outline ({len(raws)} ROI(s) read, none an area ROI on the "
            "movie); draw the objects with the polygon, freehand, oval or wand tool and add them "
            "to the ROI Manager"
        )
    return _outlines(kept, identity)


def read_rois(
    path: str | os.PathLike[str],
    *,
    n_frames: int,
    n_slices: int = 1,
    n_channels: int = 1,
    image_shape: tuple[int, int] | None = None,
    identity: Identity | str = Identity.AUTO,
    default_frame: int | None = None,
    default_z: int | None = None,
) -> list[Outline]:
    """Read outlines from an ImageJ RoiSet ``.zip`` or a single ``.roi`` file.

    Parameters
    ----------
    path
        The ROI file.
    n_frames, n_slices, n_channels
        Dimensions of the movie the ROIs belong to (to decode stack positions and check ranges).
    image_shape
        ``(H, W)`` of the movie; when given, vertices outside the image are clipped (with a
        :class:`RoiWarning`) and ROIs entirely outside are skipped.
    identity
        How object identities are decided (:func:`assign_identities`).
    default_frame, default_z
        0-based frame/plane for ROIs without that position (otherwise such ROIs are an error
        on a movie with several frames/planes).

    Returns
    -------
    list[Outline]
        Sorted by frame, z, channel, object id. Polygon, rectangle, oval, freehand, traced and
        composite ROIs (largest part) are read with their sub-pixel coordinates; ovals become the
        outline of the pixels ImageJ's oval contains. ``name`` keeps custom ROI names;
        ``confidence``/``prompt_iou`` come from ROI properties written by :func:`write_rois`;
        ``edited`` is set for a prediction whose polygon no longer matches its stored
        :func:`outline_hash` (predictions without a hash count as unedited).

    Raises
    ------
    DataError
        Missing/unreadable file, no usable ROI, ROIs without the needed position, positions
        outside the movie, or two ROIs of one object in one frame.
    ConfigError
        For an unknown identity rule or non-positive dimensions.

    Notes
    -----
    Positions: a hyperstack position (c, z, t) wins; otherwise ImageJ's stack index is decoded
    with channel fastest, then z, then t (for a time-only stack the index is the frame). Line,
    point, angle, text and image ROIs are skipped with a :class:`RoiWarning`.
    """
    raws = read_raw_rois(path)
    return raw_rois_to_outlines(
        raws,
        n_frames=n_frames,
        n_slices=n_slices,
        n_channels=n_channels,
        image_shape=image_shape,
        identity=identity,
        default_frame=default_frame,
        default_z=default_z,
        source=Path(path).name,
    )


# --------------------------------------------------------------------------------------- writing


def _is_hyperstack(n_channels: int, n_slices: int, n_frames: int) -> bool:
    """ImageJ's rule: a stack with only T (or only Z) > 1 is a plain stack, not a hyperstack."""
    return n_channels > 1 or (n_slices > 1 and n_frames > 1)


def _encode(outline: Outline, *, hyperstack: bool, dims: tuple[int, int, int]) -> Any:
    from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi

    n_c, n_z, n_t = dims
    poly = np.asarray(outline.polygon, dtype=np.float64)
    roi = ImagejRoi.frompoints(poly, name=outline.display_name)
    roi.roitype = ROI_TYPE.POLYGON  # frompoints makes FREEHAND
    roi.options = ROI_OPTIONS.SUB_PIXEL_RESOLUTION
    if n_c * n_z * n_t > 1:
        if hyperstack:
            roi.c_position = 0 if outline.c is None else outline.c + 1
            roi.z_position = outline.z + 1
            roi.t_position = outline.frame + 1
            roi.position = 0
        else:
            c = 0 if outline.c is None else outline.c
            roi.position = outline.frame * n_c * n_z + outline.z * n_c + c + 1
    roi.group = outline.object_id if outline.object_id <= 255 else 0
    rgb = bytes.fromhex(object_color(outline.object_id)[1:])
    roi.stroke_color = b"\xff" + rgb
    props: dict[str, Any] = {OBJECT_ID_PROPERTY: outline.object_id}
    if outline.confidence is not None and not outline.edited:  # an edited one is the user's
        props["confidence"] = repr(float(outline.confidence))
        if outline.prompt_iou is not None:
            props["prompt_iou"] = repr(float(outline.prompt_iou))
        props[OUTLINE_HASH_PROPERTY] = outline_hash(poly)
    roi.properties = props
    return roi


def roi_labels(
    outlines: Sequence[Outline],
    *,
    n_slices: int = 1,
    n_channels: int = 1,
    taken: Iterable[str] = (),
) -> list[str]:
    """The ROI Manager label of each outline (in the given order): unique and readable.

    A label is the 1-based frame, ``-z0002`` when the movie has several planes, ``-c01`` when
    it has several channels and the outline belongs to one, then the outline's
    :attr:`~rescunet_ij.types.Outline.display_name`: ``t0003-nucleus-1``,
    ``t0003-z0002-object-4``.
    When two outlines of one frame/plane share a name (or the label is in ``taken``, e.g. the
    labels already in a ROI Manager), the object id is added: ``t0003-cell-id2``. Slashes and
    backslashes in names become ``_`` (a zip entry name must not make folders).

    This is the RoiSet ``.zip`` entry name (plus ``.roi``) written by :func:`write_rois` (the ROI
    Manager lists a RoiSet under its entry names) and the label the ImageJ bridge gives its ROIs
    in the live ROI Manager, so ImageJ never has to rename duplicates when it saves the set.
    Labels identify nothing: readers take identities from the ``object_id`` property, the
    group, the ROI's own name (the object's name) or the order, never from labels.
    """
    items = list(outlines)
    bases = []
    for o in items:
        label = f"t{o.frame + 1:04d}"
        if n_slices > 1:
            label += f"-z{o.z + 1:04d}"
        if o.c is not None and n_channels > 1:
            label += f"-c{o.c + 1:02d}"
        name = " ".join(o.display_name.replace("/", "_").replace("\\", "_").split())
        bases.append(f"{label}-{name or f'object-{o.object_id}'}")
    used = set(taken)
    counts: dict[str, int] = {}
    for b in bases:
        counts[b] = counts.get(b, 0) + 1
    labels: list[str] = []
    for o, base in zip(items, bases):
        label = base
        if counts[base] > 1 or label in used:
            label = f"{base}-id{o.object_id}"
        k = 2
        while label in used:  # still taken (the same object twice): number it
            label = f"{base}-id{o.object_id}-{k}"
            k += 1
        used.add(label)
        labels.append(label)
    return labels


def write_rois(
    path: str | os.PathLike[str],
    outlines: Iterable[Outline],
    *,
    n_frames: int,
    n_slices: int = 1,
    n_channels: int = 1,
    hyperstack: bool | None = None,
    overwrite: bool = False,
) -> Path:
    """Write outlines as an ImageJ RoiSet ``.zip`` (or one outline as a ``.roi``), atomically.

    Parameters
    ----------
    path
        ``.zip`` (ROI Manager RoiSet) or ``.roi`` (exactly one outline).
    outlines
        The outlines (0-based frame/z/c).
    n_frames, n_slices, n_channels
        Dimensions of the movie the ROIs belong to.
    hyperstack
        Store hyperstack positions (c, z, t) instead of a stack index. Default (None): as ImageJ
        does for that movie: hyperstack positions when it has several channels, or several
        planes *and* frames; the stack index for a plain time-only or z-only stack (ImageJ does
        not treat those as hyperstacks, and its ROI Manager uses only the stack index there).
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
        For an outline outside the movie's dimensions, with fewer than 3 vertices, or a second
        outline of one object in one frame/plane.

    Notes
    -----
    Every ROI is a sub-pixel POLYGON named ``outline.display_name`` (zip entries, which the
    ROI Manager lists as labels, are named by :func:`roi_labels`, e.g. ``t0003-nucleus-1.roi``,
    unique within the set), with group = object id (when
    <= 255), a stroke colour per object (:func:`object_color`) and the properties
    ``object_id`` (plus ``confidence``/``prompt_iou`` when set), so :func:`read_rois` recovers
    the identities. ROIs are sorted by frame, z, channel, then object id.

    A prediction (an outline with ``confidence``) also gets :data:`OUTLINE_HASH_PROPERTY`, the
    :func:`outline_hash` of its polygon: :func:`read_rois` marks a prediction whose polygon no
    longer matches it as :attr:`~rescunet_ij.types.Outline.edited` (a user's correction). An
    outline already marked ``edited`` is written as a user outline (no ``confidence``,
    ``prompt_iou`` or hash), so it stays the user's when read again.
    """
    path = check_overwrite(path, overwrite)
    dims = (int(n_channels), int(n_slices), int(n_frames))
    if min(dims) < 1:
        raise ConfigError(
            f"n_frames, n_slices, n_channels must be >= 1; got {n_frames}, {n_slices}, {n_channels}"
        )
    items = sorted(outlines, key=lambda o: o.sort_key)
    if not items:
        raise DataError(f"no outlines to write to {path.name}; ImageJ cannot open an empty ROI set")
    seen: set[tuple[int, int, int, int]] = set()
    for o in items:
        what = f"outline of object {o.object_id} in frame {o.frame + 1}"
        if o.object_id < 1:
            raise DataError(f"{what}: object ids must be >= 1; got {o.object_id}")
        if not (0 <= o.frame < n_frames and 0 <= o.z < n_slices) or (
            o.c is not None and not 0 <= o.c < n_channels
        ):
            raise DataError(
                f"{what} (z {o.z + 1}, channel {'all' if o.c is None else o.c + 1}) lies outside "
                f"the movie ({n_frames} frames, {n_slices} planes, {n_channels} channels)"
            )
        if len(o.polygon) < 3:
            raise DataError(f"{what} has {len(o.polygon)} vertices; a polygon ROI needs at least 3")
        key = (o.object_id, *plane_key(o.frame, o.z, o.c))
        if key in seen:
            raise DataError(
                f"{what} appears twice; each object has one outline per frame and plane"
            )
        seen.add(key)
    hyper = _is_hyperstack(*dims) if hyperstack is None else bool(hyperstack)
    rois = [_encode(o, hyperstack=hyper, dims=dims) for o in items]
    if path.suffix.lower() == ".roi":
        if len(rois) != 1:
            raise DataError(
                f"a .roi file holds one ROI, but there are {len(rois)} outlines; "
                f"write a RoiSet instead ({path.with_suffix('.zip').name})"
            )
        return atomic_write_bytes(path, rois[0].tobytes(), overwrite=overwrite)
    if path.suffix.lower() != ".zip":
        raise DataError(f"ROI sets are written as .zip (or .roi for one outline); got {path.name}")
    with (
        atomic_write(path, "wb", overwrite=overwrite) as fh,
        zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf,
    ):
        labels = roi_labels(items, n_slices=dims[1], n_channels=dims[0])
        for label, roi in zip(labels, rois):
            zf.writestr(label + ".roi", roi.tobytes())
    return path
