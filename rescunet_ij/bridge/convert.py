"""Converters between ImageJ objects and rescunet-ij values (named ``x_to_y``).

* Pixels: :func:`imageplus_to_movie`, :func:`movie_to_imageplus` (implemented in
  :mod:`rescunet_ij.bridge.pixels`, re-exported here).
* ROIs: :func:`rois_to_outlines`, :func:`outlines_to_rois`, :func:`roimanager_to_outlines`,
  :func:`outlines_to_roimanager`.

ImageJ's positions are 1-based (0 = unset) and live only here; outlines are 0-based. ROIs are read
through the same rules as RoiSet files (:func:`rescunet_ij.io.rois.raw_rois_to_outlines` and
:func:`rescunet_ij.io.identity.assign_identities`), so a ROI means the same thing whether it comes
from the live ROI Manager or from a saved ``RoiSet.zip``.

One refinement for live ROI sets: with ``identity="auto"``, a ROI that carries the ``object_id``
property (every ROI this bridge writes does) keeps that identity even when other ROIs (say the
user's seed outlines) have none; the rules then number only the ROIs without it. Applying the
file rules to the mixed set instead would let ``order`` renumber our own ROIs whenever an object
was lost in some frame.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import DataError, ImageJError
from ..io.identity import OBJECT_ID_PROPERTY, RoiRecord, describe_roi, resolve_identities
from ..io.provenance import (
    OUTLINE_HASH_PROPERTY,
    float_property,
    outline_hash,
    prediction_edited,
)
from ..io.rois import (
    RawRoi,
    composite_part,
    is_default_imagej_name,
    object_color,
    raw_rois_to_outlines,
    roi_labels,
)
from ..types import Identity, Outline, plane_key
from ._java import jc, require_jvm
from .pixels import imageplus_dims, imageplus_to_movie, movie_to_imageplus

__all__ = [
    "MARKER_PROPERTY",
    "RoiPushSummary",
    "imageplus_to_movie",
    "movie_to_imageplus",
    "outlines_to_roimanager",
    "outlines_to_rois",
    "roi_to_raw",
    "roimanager_to_outlines",
    "rois_to_outlines",
]

MARKER_PROPERTY = "rescunet_ij"
"""ROI property set on every ROI the bridge writes (value: the package version)."""

# ij.gui.Roi.getType() codes -> the kinds rescunet_ij.io.rois understands
_KINDS = {0: "rectangle", 1: "oval", 2: "polygon", 3: "freehand", 4: "traced", 9: "composite"}
_NOT_AREA_CLASSES = {"TextRoi": "text", "ImageRoi": "image", "Arrow": "arrow"}


# ----------------------------------------------------------------------------------- reading


def _float_polygon(fp: Any) -> np.ndarray:
    n = int(fp.npoints)
    xs = np.asarray(fp.xpoints, dtype=np.float64)[:n]
    ys = np.asarray(fp.ypoints, dtype=np.float64)[:n]
    return np.column_stack([xs, ys])


def _properties(roi: Any) -> dict[str, str]:
    text = roi.getProperties()
    props: dict[str, str] = {}
    if text is None:
        return props
    for line in str(text).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            props[key.strip()] = value.strip()
    return props


def roi_to_raw(roi: Any, index: int, label: str | None = None) -> RawRoi:
    """Describe one ImageJ ``Roi`` as a neutral :class:`~rescunet_ij.io.rois.RawRoi`.

    Parameters
    ----------
    roi
        Any ``ij.gui.Roi``.
    index
        Its 0-based place in the ROI Manager / overlay (used by the ``order`` identity rule).
    label
        The ROI Manager label, used as the name when the ROI itself has none.
    """
    name = roi.getName()
    name = str(name) if name is not None else (label or "")
    simple = str(roi.getClass().getSimpleName())
    rtype = int(roi.getType())
    note = None
    polygon: np.ndarray | None = None
    if simple in _NOT_AREA_CLASSES:
        kind = _NOT_AREA_CLASSES[simple]
    elif rtype in _KINDS and roi.isArea():
        kind = _KINDS[rtype]
        if rtype == 9:  # ShapeRoi: the largest of its polygons (outer boundary; holes dropped)
            parts = [r for r in roi.getRois() if r is not None]
            polygon, note = composite_part([_float_polygon(r.getFloatPolygon()) for r in parts])
        else:
            polygon = _float_polygon(roi.getFloatPolygon())
    else:
        kind = str(roi.getTypeAsString()).lower() or f"type {rtype}"
    if roi.hasHyperStackPosition():
        position, c, z, t = (
            0,
            int(roi.getCPosition()),
            int(roi.getZPosition()),
            int(roi.getTPosition()),
        )
    else:
        position, c, z, t = int(roi.getPosition()), 0, 0, 0
    return RawRoi(
        name=name,
        kind=kind,
        polygon=polygon,
        group=int(roi.getGroup()),
        properties=_properties(roi),
        position=position,
        c_position=c,
        z_position=z,
        t_position=t,
        index_in_file=int(index),
        note=note,
    )


@dataclass
class _Located:
    """Where one usable ROI lies (0-based) and its outline without identity yet."""

    frame: int
    z: int
    c: int | None
    polygon: np.ndarray
    raw: RawRoi


def _prop_object_id(props: dict[str, Any]) -> int | None:
    value = props.get(OBJECT_ID_PROPERTY)
    try:
        f = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() and f >= 1 else None


def _token(index: int) -> str:
    return f"\u27e8roi {index}\u27e9"


def _untoken(text: str, raws: Sequence[RawRoi]) -> str:
    """Put the real ROI names back into a message about token-named ROIs."""
    import re

    def real(m: re.Match[str]) -> str:
        k = int(m.group(1))
        return (
            describe_roi(raws[k].name, raws[k].index_in_file) if 0 <= k < len(raws) else m.group(0)
        )

    return re.sub("'\u27e8roi (\\d+)\u27e9'", real, text)


def _locate_strict(
    raws: Sequence[RawRoi], dims: dict[str, Any], source: str
) -> list[_Located | None]:
    """Position and clipped polygon of each ROI (None: skipped), by the RoiSet-file rules.

    One call of :func:`raw_rois_to_outlines` checks the whole set (its warnings and errors, e.g.
    ROIs without positions, are the file reader's). To know which outline came from which ROI,
    the ROIs go in under unique token names that messages translate back.
    """
    tokened = [replace(raw, name=_token(k)) for k, raw in enumerate(raws)]
    error: DataError | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outs = raw_rois_to_outlines(tokened, identity=Identity.ORDER, source=source, **dims)
        except DataError as exc:
            error = DataError(_untoken(str(exc), raws))
    for w in caught:
        warnings.warn(_untoken(str(w.message), raws), w.category, stacklevel=4)
    if error is not None:
        raise error
    located: list[_Located | None] = [None] * len(raws)
    for o in outs:
        k = int(str(o.name)[len("\u27e8roi ") : -1])
        located[k] = _Located(o.frame, o.z, o.c, o.polygon, raws[k])
    return located


def _locate_tolerant(raws: Sequence[RawRoi], dims: dict[str, Any]) -> list[_Located | None]:
    """Like :func:`_locate_strict` but silent, with None for ROIs the strict rules reject."""
    n_t, n_z = int(dims["n_frames"]), int(dims["n_slices"])

    def placed(r: RawRoi) -> bool:  # ROIs without a needed position apply to every frame/plane
        if r.position > 0:
            return True
        return (n_t == 1 or r.t_position > 0) and (n_z == 1 or r.z_position > 0)

    keep = [k for k, r in enumerate(raws) if placed(r)]
    out: list[_Located | None] = [None] * len(raws)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = _locate_strict([raws[k] for k in keep], dims, "")
            for k, loc in zip(keep, found):
                out[k] = loc
        except DataError:  # e.g. one ROI beyond the movie: judge the ROIs one by one
            for k in keep:
                try:
                    out[k] = _locate_strict([raws[k]], dims, "")[0]
                except DataError:
                    pass
    return out


def _plane(loc: _Located) -> tuple[int, int, int]:
    return plane_key(loc.frame, loc.z, loc.c)


def _identities(locs: Sequence[_Located], identity: Identity | str) -> list[int]:
    records = [
        RoiRecord(
            name=loc.raw.name,
            group=loc.raw.group,
            properties=loc.raw.properties,
            frame=loc.frame,
            z=loc.z,
            index_in_file=loc.raw.index_in_file,
            c=loc.c,
        )
        for loc in locs
    ]
    auto = str(getattr(identity, "value", identity)).lower() == Identity.AUTO.value
    prop_ids = [_prop_object_id(loc.raw.properties) for loc in locs]
    have = [p is not None for p in prop_ids]
    if not auto or all(have) or not any(have):
        return resolve_identities(records, identity)[1]
    # Mixed live set: ROIs with an object_id keep it; the rules number the others.
    rest = [i for i, h in enumerate(have) if not h]
    _, rest_ids = resolve_identities([records[i] for i in rest], Identity.AUTO)
    ids: list[int] = [p if p is not None else 0 for p in prop_ids]
    taken: dict[tuple[int, int, int], set[int]] = defaultdict(set)
    for i, p in enumerate(prop_ids):
        if p is not None:
            taken[_plane(locs[i])].add(p)
    next_free = max([p for p in prop_ids if p is not None] + list(rest_ids)) + 1
    for i, rid in zip(rest, rest_ids):
        if rid in taken[_plane(locs[i])]:  # a new object drawn beside ours: give it a fresh id
            rid, next_free = next_free, next_free + 1
        taken[_plane(locs[i])].add(rid)
        ids[i] = rid
    return ids


def _outline(loc: _Located, oid: int) -> Outline:
    name = loc.raw.name.strip() or None
    if name is not None and (is_default_imagej_name(name) or name == f"object-{oid}"):
        name = None
    props = loc.raw.properties
    return Outline(
        object_id=oid,
        frame=loc.frame,
        polygon=loc.polygon,
        z=loc.z,
        c=loc.c,
        name=name,
        confidence=float_property(props, "confidence"),
        prompt_iou=float_property(props, "prompt_iou"),
        # a prediction whose polygon no longer matches its stored hash was edited by the user
        edited=prediction_edited(props, loc.raw.polygon),
    )


def _dims(imp: Any, default_frame: int | None, default_z: int | None) -> dict[str, Any]:
    w, h, n_c, n_z, n_t = imageplus_dims(imp)
    return {
        "n_frames": n_t,
        "n_slices": n_z,
        "n_channels": n_c,
        "image_shape": (h, w),
        "default_frame": default_frame,
        "default_z": default_z,
    }


def _read(
    raws: list[RawRoi],
    imp: Any,
    identity: Identity | str,
    default_frame: int | None,
    default_z: int | None,
    source: str,
) -> tuple[list[Outline], list[tuple[_Located, int] | None]]:
    dims = _dims(imp, default_frame, default_z)
    locs = _locate_strict(raws, dims, source)
    usable = [loc for loc in locs if loc is not None]
    ids = iter(_identities(usable, identity))
    table: list[tuple[_Located, int] | None] = [
        None if loc is None else (loc, next(ids)) for loc in locs
    ]
    outlines = [_outline(loc, oid) for loc, oid in (e for e in table if e is not None)]
    _check_unique(outlines, identity)
    outlines.sort(key=lambda o: o.sort_key)
    return outlines, table


def _check_unique(outlines: Sequence[Outline], identity: Identity | str) -> None:
    seen: dict[tuple[int, int, int, int], int] = {}
    for o in outlines:
        key = (o.object_id, *plane_key(o.frame, o.z, o.c))
        if key in seen:
            raise DataError(
                f"object {o.object_id} has two ROIs in frame {o.frame + 1} (1-based; identity "
                f"rule {getattr(identity, 'value', identity)}); delete the extra ROI or give it "
                f"another '{OBJECT_ID_PROPERTY}' property / group"
            )
        seen[key] = 1


def rois_to_outlines(
    rois: Iterable[Any],
    imp: Any,
    identity: Identity | str = Identity.AUTO,
    *,
    default_frame: int | None = None,
    default_z: int | None = None,
    labels: Sequence[str] | None = None,
    source: str = "the ROIs",
) -> list[Outline]:
    """ImageJ ROIs (a ``Roi[]`` from the ROI Manager or an ``Overlay``) -> outlines.

    Parameters
    ----------
    rois
        ``ij.gui.Roi`` objects in their list order (the order matters for ``identity="order"``).
    imp
        The ImagePlus they belong to (for dimensions, stack positions and bounds).
    identity
        How object identities are decided (see the module docstring and
        :func:`rescunet_ij.io.identity.assign_identities`).
    default_frame, default_z
        0-based frame/plane for ROIs without that position; otherwise such ROIs on a movie with
        several frames/planes are an error.
    labels
        ROI Manager labels, used as names for ROIs without a name.
    source
        How messages name the ROI set.

    Returns
    -------
    list[Outline]
        Sorted by frame, z, channel, object id; 0-based positions; sub-pixel polygons (any area
        ROI; composite ROIs give their largest part). Line, point, text ROIs are skipped with a
        warning naming them.

    Raises
    ------
    DataError
        No usable ROI, ROIs without positions on a movie, positions outside the image, or two
        ROIs for one object in one frame.
    """
    require_jvm()
    if imp is None:
        raise DataError("no image: open the movie the ROIs belong to (or pass the ImagePlus)")
    rois = [r for r in rois if r is not None]
    if not rois:
        raise DataError(f"{source}: there are no ROIs; outline the objects and add them (press t)")
    raws = [
        roi_to_raw(r, i, None if labels is None else str(labels[i])) for i, r in enumerate(rois)
    ]
    return _read(raws, imp, identity, default_frame, default_z, source)[0]


# ----------------------------------------------------------------------------------- writing


def _java_color(hex_color: str) -> Any:
    return jc.Color(int(hex_color.lstrip("#"), 16))


def outline_to_roi(outline: Outline, imp: Any, *, hyperstack: bool | None = None) -> Any:
    """One outline -> an ``ij.gui.PolygonRoi`` positioned on ``imp`` the way ImageJ does it."""
    import jpype

    from .. import __version__

    poly = np.asarray(outline.polygon, dtype=np.float64).reshape(-1, 2)
    if len(poly) < 3:
        raise DataError(
            f"outline of object {outline.object_id} in frame {outline.frame + 1} has "
            f"{len(poly)} vertices; a polygon ROI needs at least 3"
        )
    fp = jc.FloatPolygon(
        jpype.JArray(jpype.JFloat)(poly[:, 0].astype(np.float32)),
        jpype.JArray(jpype.JFloat)(poly[:, 1].astype(np.float32)),
    )
    roi = jc.PolygonRoi(fp, jc.Roi.POLYGON)
    hyper = bool(imp.isHyperStack()) if hyperstack is None else hyperstack
    c1 = 0 if outline.c is None else outline.c + 1
    if hyper:  # what the ROI Manager stores for a ROI added on a hyperstack
        roi.setPosition(c1, outline.z + 1, outline.frame + 1)
    elif int(imp.getStackSize()) > 1:  # plain stack (e.g. time-only): the stack index
        roi.setPosition(int(imp.getStackIndex(max(c1, 1), outline.z + 1, outline.frame + 1)))
    roi.setName(outline.display_name)
    if outline.object_id <= 255:
        roi.setGroup(outline.object_id)  # before the colour: setGroup replaces the stroke colour
    roi.setStrokeColor(_java_color(object_color(outline.object_id)))
    roi.setProperty(OBJECT_ID_PROPERTY, str(outline.object_id))
    roi.setProperty(MARKER_PROPERTY, __version__)
    if outline.confidence is not None and not outline.edited:  # an edited one is the user's
        roi.setProperty("confidence", repr(float(outline.confidence)))
        if outline.prompt_iou is not None:
            roi.setProperty("prompt_iou", repr(float(outline.prompt_iou)))
        # as write_rois does: a later edit of this ROI in ImageJ is recognised as a correction
        roi.setProperty(OUTLINE_HASH_PROPERTY, outline_hash(poly))
    return roi


def _check_fits(outlines: Sequence[Outline], imp: Any) -> None:
    _, _, n_c, n_z, n_t = imageplus_dims(imp)
    for o in outlines:
        if not (0 <= o.frame < n_t and 0 <= o.z < n_z) or (o.c is not None and not 0 <= o.c < n_c):
            raise DataError(
                f"outline of object {o.object_id} (frame {o.frame + 1}, z {o.z + 1}, channel "
                f"{'all' if o.c is None else o.c + 1}, 1-based) lies outside image "
                f"'{imp.getTitle()}' ({n_t} frames, {n_z} planes, {n_c} channels); "
                "were the outlines made for another movie?"
            )


def outlines_to_rois(outlines: Iterable[Outline], imp: Any) -> list[Any]:
    """Outlines -> sub-pixel ``PolygonRoi`` objects for ``imp`` (sorted by frame, z, object).

    Each ROI is named ``outline.display_name`` (the same in every frame; the ROI Manager label
    that :func:`outlines_to_roimanager` gives it adds the frame), has group = object id
    (when <= 255), a stroke colour per object, the properties ``object_id`` and
    ``rescunet_ij`` (plus ``confidence``/``prompt_iou`` for predictions) and the position
    ImageJ itself uses on that image: ``(c, z, t)`` on a hyperstack (channel 0 = all channels),
    the stack index on a plain stack (e.g. time-only), none on a single image.
    """
    require_jvm()
    items = sorted(outlines, key=lambda o: o.sort_key)
    _check_fits(items, imp)
    hyper = bool(imp.isHyperStack())
    return [outline_to_roi(o, imp, hyperstack=hyper) for o in items]


# ------------------------------------------------------------------------------ ROI Manager


def _check_rm(rm: Any) -> None:
    require_jvm()
    if rm is None:
        raise ImageJError("no ROI Manager; open one (Analyze > Tools > ROI Manager) or pass it")


def _rm_labels(rm: Any) -> list[str]:
    return [str(rm.getName(i)) for i in range(int(rm.getCount()))]


def _rm_raws(rm: Any) -> tuple[list[Any], list[RawRoi]]:
    rois = list(rm.getRoisAsArray())
    labels = _rm_labels(rm)
    return rois, [roi_to_raw(r, i, labels[i]) for i, r in enumerate(rois)]


def roimanager_to_outlines(
    rm: Any,
    imp: Any,
    identity: Identity | str = Identity.AUTO,
    *,
    default_frame: int | None = None,
    default_z: int | None = None,
) -> list[Outline]:
    """All area ROIs of a ROI Manager -> outlines (see :func:`rois_to_outlines`)."""
    return read_roimanager(rm, imp, identity, default_frame=default_frame, default_z=default_z)[0]


def read_roimanager(
    rm: Any,
    imp: Any,
    identity: Identity | str = Identity.AUTO,
    *,
    default_frame: int | None = None,
    default_z: int | None = None,
) -> tuple[list[Outline], list[tuple[int, int, int | None, int] | None]]:
    """Like :func:`roimanager_to_outlines`, also returning ``(frame, z, c, object_id)`` per ROI.

    The second list is parallel to ``rm.getRoisAsArray()``; None marks ROIs that are not
    outlines (lines, points, ROIs without a needed position or outside the image).
    """
    _check_rm(rm)
    if imp is None:
        raise DataError("no image: open the movie the ROIs belong to (or pass the ImagePlus)")
    if int(rm.getCount()) == 0:
        raise DataError(
            "the ROI Manager is empty; outline the objects (polygon, freehand, oval or wand tool) "
            "on the first frame and add each one to the ROI Manager (press t)"
        )
    _, raws = _rm_raws(rm)
    outlines, table = _read(raws, imp, identity, default_frame, default_z, "the ROI Manager")
    keys = [None if e is None else (e[0].frame, e[0].z, e[0].c, e[1]) for e in table]
    return outlines, keys


@dataclass
class RoiPushSummary:
    """What :func:`outlines_to_roimanager` changed in the ROI Manager."""

    added: int
    removed: int
    total: int


def _rm_table(
    rm: Any, imp: Any, identity: Identity | str
) -> list[tuple[int, int, int | None, int] | None]:
    """``(frame, z, c, object_id)`` per existing ROI (None: not an outline we can place)."""
    _, raws = _rm_raws(rm)
    if not raws:
        return []
    dims = _dims(imp, None, None)
    locs = _locate_tolerant(raws, dims)
    usable = [loc for loc in locs if loc is not None]
    ids = iter(_identities(usable, identity)) if usable else iter(())
    return [None if loc is None else (loc.frame, loc.z, loc.c, next(ids)) for loc in locs]


def _rm_append(rm: Any, roi: Any, label: str) -> None:
    """Append a ROI under exactly ``label``, storing a copy of ``roi`` as it is.

    ``RoiManager.addRoi`` would drop a ROI equal in bounds to the previous one (a still object
    in consecutive frames) and rename unnamed ROIs; ``add(roi, n)`` + ``rename`` + ``setRoi``
    avoid both.
    """
    rm.add(roi.clone(), -1)
    k = int(rm.getCount()) - 1
    rm.rename(k, label)
    if str(roi.getName() or "") != label:
        rm.setRoi(roi, k)


def _rm_rebuild(rm: Any, entries: list[tuple[Any, str, int | None]]) -> None:
    """Make the ROI Manager hold ``entries`` = (roi, label, index it has now or None) in order."""
    import jpype

    count = int(rm.getCount())
    keep = 0
    while keep < len(entries) and keep < count and entries[keep][2] == keep:
        keep += 1
    if keep < count:
        if keep == 0:
            rm.reset()
        else:
            rm.setSelectedIndexes(jpype.JArray(jpype.JInt)(list(range(keep, count))))
            rm.runCommand("Delete")
            if int(rm.getCount()) != keep:  # selection did not take: rebuild from scratch
                rm.reset()
                keep = 0
    for roi, label, _ in entries[keep:]:
        _rm_append(rm, roi, label)
    rm.deselect()


def outlines_to_roimanager(
    outlines: Iterable[Outline],
    rm: Any,
    imp: Any,
    *,
    replace_frames: Iterable[int] | None = None,
    replace_all: bool = False,
    object_ids: Iterable[int] | None = None,
    replace_z: Iterable[int] | None = None,
    identity: Identity | str = Identity.AUTO,
) -> RoiPushSummary:
    """Put outlines into a ROI Manager, replacing only what they recompute.

    Parameters
    ----------
    outlines
        The outlines to add (0-based).
    rm
        The ROI Manager (``RoiManager.getRoiManager()`` is the one the user sees).
    imp
        The image the ROIs belong to (sets their positions).
    replace_frames
        0-based frames whose ROIs of the objects in ``object_ids`` are removed first; default:
        the frames of ``outlines``.
    replace_all
        Empty the ROI Manager first (the user's other ROIs are lost: off by default).
    object_ids
        The objects being recomputed; default: those in ``outlines``. ROIs of other objects,
        ROIs in other frames, line/point ROIs and ROIs without a position are never touched.
    replace_z
        0-based z-planes where ROIs are replaced; default: the planes of ``outlines`` (all
        planes when there are no outlines).
    identity
        How existing ROIs are matched to objects (see :func:`rois_to_outlines`).

    Returns
    -------
    RoiPushSummary
        Counts of added and removed ROIs.

    Notes
    -----
    The bridge's ROIs (those with the ``rescunet_ij`` property) plus the new ones are kept
    sorted by frame, z, then object id, in the places they occupy in the list; the user's other
    ROIs keep their places and labels. New ROIs are listed under unique labels
    (:func:`rescunet_ij.io.rois.roi_labels`, e.g. ``t0003-nucleus-1``, the same names
    :func:`rescunet_ij.io.rois.write_rois` gives RoiSet entries) while each ROI's own name
    (``Roi.getName()``, written into saved ROIs) stays the object's name: ImageJ renames duplicate
    labels when it saves a RoiSet, so equal labels in every frame would come back renumbered.
    """
    _check_rm(rm)
    new = list(outlines)
    new_rois = outlines_to_rois(new, imp)
    new_sorted = sorted(new, key=lambda o: o.sort_key)
    _, _, n_c, n_z, _ = imageplus_dims(imp)

    def entries_for(taken: Sequence[str]) -> list[tuple[Any, Any, str]]:
        labels = roi_labels(new_sorted, n_slices=n_z, n_channels=n_c, taken=taken)
        return [(o.sort_key, roi, lab) for o, roi, lab in zip(new_sorted, new_rois, labels)]

    if replace_all:
        removed = int(rm.getCount())
        new_entries = entries_for(())
        _rm_rebuild(rm, [(roi, label, None) for _, roi, label in new_entries])
        return RoiPushSummary(added=len(new_entries), removed=removed, total=int(rm.getCount()))

    frames = (
        {int(f) for f in replace_frames} if replace_frames is not None else {o.frame for o in new}
    )
    ids = {int(i) for i in object_ids} if object_ids is not None else {o.object_id for o in new}
    planes = {int(z) for z in replace_z} if replace_z is not None else {o.z for o in new}
    rois = list(rm.getRoisAsArray())
    labels = _rm_labels(rm)
    table = _rm_table(rm, imp, identity)
    kept: list[tuple[int, Any, str, tuple[int, int, int, int] | None]] = []
    removed = 0
    for i, (roi, label, key) in enumerate(zip(rois, labels, table)):
        if (
            key is not None
            and key[0] in frames
            and key[3] in ids
            and (not planes or key[1] in planes)
        ):
            removed += 1
            continue
        ours = key is not None and MARKER_PROPERTY in _properties(roi)
        sort_key = (*plane_key(key[0], key[1], key[2]), key[3]) if ours else None
        kept.append((i, roi, label, sort_key))
    new_entries = entries_for([label for _, _, label, _ in kept])
    # Slots of our ROIs (kept ones, then appended new ones) get our ROIs in sorted order.
    ordered = [(sk, roi, label, i) for i, roi, label, sk in kept if sk is not None]
    ordered += [(sk, roi, label, None) for sk, roi, label in new_entries]
    ordered.sort(key=lambda e: e[0])
    fill = iter(ordered)
    entries: list[tuple[Any, str, int | None]] = []
    for i, roi, label, sk in kept:
        if sk is None:
            entries.append((roi, label, i))
        else:
            _, r, lab, idx = next(fill)
            entries.append((r, lab, idx))
    for _, r, lab, idx in fill:
        entries.append((r, lab, idx))
    _rm_rebuild(rm, entries)
    return RoiPushSummary(added=len(new_entries), removed=removed, total=int(rm.getCount()))
