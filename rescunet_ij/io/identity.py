"""Object identities of ImageJ ROIs: which ROIs in different frames outline the same object.

Pure Python on neutral :class:`RoiRecord` values, so both :mod:`rescunet_ij.io.rois` (files) and
the ImageJ bridge (live ROI Manager) use the same rules. Frames/planes here are 0-based; messages
show them 1-based, as Fiji does.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, DataError
from ..types import Identity, plane_key

__all__ = [
    "OBJECT_ID_PROPERTY",
    "RoiRecord",
    "assign_identities",
    "is_default_imagej_name",
    "resolve_identities",
]

OBJECT_ID_PROPERTY = "object_id"
"""ROI property holding the object identity (written by :func:`write_rois`)."""

# ImageJ's automatic ROI names: "yyyy-xxxx" or "ssss-yyyy-xxxx" (4-6 digits each, roifile uses 5),
# optionally with the ROI Manager's "-<n>" suffix that makes names unique. They encode a position,
# never an identity.
_DEFAULT_NAME = re.compile(r"^\d{4,6}(?:-\d{4,6}){1,2}(?:-\d{1,4})?$")
_MAX_LISTED = 8


@dataclass
class RoiRecord:
    """What identity rules look at (0-based ``frame``/``z``/``c``)."""

    name: str
    group: int
    properties: dict[str, Any]
    frame: int
    z: int = 0
    index_in_file: int = 0
    c: int | None = None


def is_default_imagej_name(name: str | None) -> bool:
    """True for names ImageJ generates from a position (``0001-0123-0456``, ``0123-0456``)."""
    return bool(name) and bool(_DEFAULT_NAME.match(str(name).strip()))


def describe_roi(name: str, index: int) -> str:
    return f"'{name}'" if name else f"#{index + 1} (unnamed)"


def short_list(labels: Sequence[str]) -> str:
    shown = ", ".join(labels[:_MAX_LISTED])
    more = len(labels) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _prop_id(props: dict[str, Any]) -> int | None:
    value = props.get(OBJECT_ID_PROPERTY)
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(str(value).strip())
    except ValueError:
        return None
    return int(f) if f.is_integer() and f >= 1 else None


def _plane(rec: RoiRecord) -> tuple[int, int, int]:
    return plane_key(rec.frame, rec.z, rec.c)


def _check_unique(records: Sequence[RoiRecord], ids: Sequence[int], rule: Identity) -> None:
    seen: dict[tuple[int, tuple[int, int, int]], list[RoiRecord]] = defaultdict(list)
    for rec, oid in zip(records, ids):
        seen[(oid, _plane(rec))].append(rec)
    for (oid, plane), recs in seen.items():
        if len(recs) > 1:
            names = short_list([describe_roi(r.name, r.index_in_file) for r in recs])
            where = f"frame {plane[0] + 1}" + (f", z-plane {plane[1] + 1}" if plane[1] else "")
            raise DataError(
                f"object {oid} has {len(recs)} ROIs in {where} (1-based): {names}; identities "
                f"came from the ROI {rule.value}. Each object may have one outline per frame: "
                "delete the extra ROI, or give the ROIs different identities (ROI Manager > "
                "Properties: group / the 'object_id' property), or choose another identity rule "
                "(e.g. --identity order: the k-th ROI of every frame is object k)"
            )


def _by_order(records: Sequence[RoiRecord]) -> list[int]:
    ids = [0] * len(records)
    planes: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        planes[_plane(rec)].append(i)
    for members in planes.values():
        members.sort(key=lambda i: records[i].index_in_file)
        for k, i in enumerate(members, start=1):
            ids[i] = k
    return ids


def _by_name(records: Sequence[RoiRecord]) -> list[int]:
    order = sorted(
        range(len(records)), key=lambda i: (*_plane(records[i]), records[i].index_in_file)
    )
    numbers: dict[str, int] = {}
    for i in order:
        numbers.setdefault(records[i].name.strip(), len(numbers) + 1)
    return [numbers[r.name.strip()] for r in records]


def _names_identify(records: Sequence[RoiRecord]) -> bool:
    """Names carry identities: all custom, unique per plane, and some repeat across planes."""
    names = [r.name.strip() for r in records]
    if not all(n and not is_default_imagej_name(n) for n in names):
        return False
    per_plane = Counter((n, _plane(r)) for n, r in zip(names, records))
    if any(v > 1 for v in per_plane.values()):
        return False
    planes_per_name: dict[str, set[tuple[int, int, int]]] = defaultdict(set)
    for n, r in zip(names, records):
        planes_per_name[n].add(_plane(r))
    return any(len(p) > 1 for p in planes_per_name.values())


def resolve_identities(
    records: Sequence[RoiRecord], rule: Identity | str = Identity.AUTO
) -> tuple[Identity, list[int]]:
    """Like :func:`assign_identities`, also returning the rule that was applied."""
    try:
        rule = Identity(rule.value if isinstance(rule, Identity) else str(rule).lower())
    except ValueError:
        options = ", ".join(i.value for i in Identity)
        raise ConfigError(f"unknown identity rule {rule!r}; choose one of {options}") from None
    if not records:
        return rule, []
    auto = rule is Identity.AUTO

    if auto or rule is Identity.PROPERTY:
        pids = [_prop_id(r.properties) for r in records]
        if all(p is not None for p in pids):
            ids = [int(p) for p in pids if p is not None]
            _check_unique(records, ids, Identity.PROPERTY)
            return Identity.PROPERTY, ids
        if not auto:
            bad = [
                describe_roi(r.name, r.index_in_file) for r, p in zip(records, pids) if p is None
            ]
            raise DataError(
                f"--identity property needs an integer '{OBJECT_ID_PROPERTY}' >= 1 on every ROI; "
                f"missing on {short_list(bad)}. Set it (ImageJ macro: Roi.setProperty("
                f'"{OBJECT_ID_PROPERTY}", 3)) or use --identity auto'
            )
    if auto or rule is Identity.GROUP:
        if all(r.group > 0 for r in records):
            ids = [int(r.group) for r in records]
            _check_unique(records, ids, Identity.GROUP)
            return Identity.GROUP, ids
        if not auto:
            bad = [describe_roi(r.name, r.index_in_file) for r in records if r.group <= 0]
            raise DataError(
                f"--identity group needs a group > 0 on every ROI; {short_list(bad)} have none. "
                "Set groups in Fiji (ROI Manager > Properties... > Group) or use --identity auto"
            )
    if auto and _names_identify(records):
        ids = _by_name(records)
        return Identity.NAME, ids
    if rule is Identity.NAME:
        bad = [
            describe_roi(r.name, r.index_in_file)
            for r in records
            if not r.name.strip() or is_default_imagej_name(r.name)
        ]
        if bad:
            raise DataError(
                f"--identity name needs a custom name on every ROI (ImageJ's automatic names like "
                f"0001-0123-0456 are positions, not identities); {short_list(bad)} have none. "
                "Rename them in the ROI Manager (Rename...) or use --identity order"
            )
        ids = _by_name(records)
        _check_unique(records, ids, Identity.NAME)
        return Identity.NAME, ids
    return Identity.ORDER, _by_order(records)


def assign_identities(
    records: Sequence[RoiRecord], rule: Identity | str = Identity.AUTO
) -> list[int]:
    """Object identity (>= 1) of every ROI.

    Parameters
    ----------
    records
        One :class:`RoiRecord` per ROI (0-based frame/z already resolved).
    rule
        ``property``: the integer property ``object_id`` (what :func:`write_rois` stores);
        ``group``: the ROI group (> 0); ``name``: equal names are one object, numbered by first
        appearance (ImageJ's automatic position names are never identities); ``order``: the
        k-th ROI of every frame (in file order) is object k (PyJAMAS' convention);
        ``auto``: the first of property, group, name, order that applies to every ROI (name
        applies only when all names are custom, unique within each frame and some name occurs
        in more than one frame).

    Returns
    -------
    list[int]
        ``ids[i]`` is the object of ``records[i]``.

    Raises
    ------
    DataError
        When an explicitly chosen rule cannot apply to every ROI (naming them), or when one
        object gets two ROIs in the same frame and z-plane.
    ConfigError
        For an unknown rule.
    """
    return resolve_identities(records, rule)[1]
