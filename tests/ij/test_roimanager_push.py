"""Pushing outlines into the live ROI Manager: replace only what was recomputed, keep the rest."""

from __future__ import annotations

import numpy as np
import pytest
from ij_helpers import java_polygon_roi, square

from rescunet_ij.types import Outline

pytestmark = pytest.mark.ij


def _imp(t=6):
    from rescunet_ij.bridge._java import jc

    imp = jc.IJ.createHyperStack("movie", 80, 60, 1, 1, t, 8)
    imp.show()
    return imp


def _state(rm):
    """(label, frame position, object_id property or None) per ROI, in order."""
    out = []
    for i, r in enumerate(rm.getRoisAsArray()):
        pid = r.getProperty("object_id")
        out.append(
            (str(rm.getName(i)), int(r.getPosition()), None if pid is None else int(str(pid)))
        )
    return out


def _pred(frames, ids, dx=0.0):
    return [
        Outline(k, f, square(10 * k + f + dx, 10), confidence=0.9, prompt_iou=0.8)
        for f in frames
        for k in ids
    ]


def test_replace_only_recomputed_frames_and_objects(ij1, rm):
    from rescunet_ij.bridge import outlines_to_roimanager

    imp = _imp()
    # the user's seeds (frame 1), a line, an unpositioned note ROI, and object 3 outlined by hand
    rm.addRoi(java_polygon_roi(square(10, 10), name="cell A", position=1))
    rm.addRoi(java_polygon_roi(square(20, 10), name="cell B", position=1))
    from rescunet_ij.bridge._java import jc

    line = jc.Line(1, 1, 9, 9)
    line.setName("scale bar")
    rm.addRoi(line)
    rm.addRoi(java_polygon_roi(square(40, 40), name="cell C", position=1))
    before = _state(rm)

    s1 = outlines_to_roimanager(_pred(range(1, 6), [1, 2]), rm, imp)
    assert (s1.added, s1.removed) == (10, 0)
    st = _state(rm)
    assert st[:4] == before  # the user's ROIs keep their places and labels
    assert [(lab, pos, oid) for lab, pos, oid in st[4:6]] == [
        ("t0002-object-1", 2, 1),
        ("t0002-object-2", 2, 2),
    ]
    assert [pos for _, pos, _ in st[4:]] == [2, 2, 3, 3, 4, 4, 5, 5, 6, 6]

    # re-propagation from frame 3 (0-based 2): frames 4..6 recomputed, object 1 lost from frame 5
    new = [o for o in _pred(range(3, 6), [1, 2], dx=0.5) if not (o.object_id == 1 and o.frame >= 4)]
    s2 = outlines_to_roimanager(new, rm, imp, replace_frames={3, 4, 5}, object_ids={1, 2})
    assert (s2.added, s2.removed) == (4, 6)
    st = _state(rm)
    assert st[:4] == before
    assert [(pos, oid) for _, pos, oid in st[4:]] == [
        (2, 1),
        (2, 2),
        (3, 1),
        (3, 2),
        (4, 1),
        (4, 2),
        (5, 2),
        (6, 2),
    ]
    frame4 = [r for r in rm.getRoisAsArray() if r.getPosition() == 4]
    assert [r.getFloatPolygon().xpoints[0] for r in frame4] == [13.5, 23.5]  # the new ones


def test_user_rois_of_propagated_objects_are_replaced_others_kept(ij1, rm):
    from rescunet_ij.bridge import outlines_to_roimanager

    imp = _imp()
    for t in (1, 2, 3):  # the user outlined two objects by hand on frames 1-3 (names = identities)
        rm.addRoi(java_polygon_roi(square(10 + t, 10), name="cell A", position=t))
        rm.addRoi(java_polygon_roi(square(40 + t, 10), name="cell B", position=t))
    # propagate only cell A (object 1) from frame 1: frames 2..3 of cell A are replaced
    s = outlines_to_roimanager(_pred([1, 2], [1], dx=0.25), rm, imp, object_ids={1})
    assert (s.added, s.removed) == (2, 2)
    names = [(str(r.getName()), int(r.getPosition())) for r in rm.getRoisAsArray()]
    assert names.count(("cell B", 2)) == 1 and names.count(("cell B", 3)) == 1
    assert ("cell A", 2) not in names and ("object-1", 2) in names


def test_still_object_in_consecutive_frames_is_not_dropped(ij1, rm):
    """RoiManager.addRoi silently drops a ROI equal in bounds to the previous one; we must not."""
    from rescunet_ij.bridge import outlines_to_roimanager, roimanager_to_outlines

    imp = _imp()
    still = [Outline(1, f, square(10, 10)) for f in range(6)]
    outlines_to_roimanager(still, rm, imp)
    assert rm.getCount() == 6
    assert [o.frame for o in roimanager_to_outlines(rm, imp)] == list(range(6))


def test_replace_all(ij1, rm):
    from rescunet_ij.bridge import outlines_to_roimanager

    imp = _imp()
    rm.addRoi(java_polygon_roi(square(10, 10), name="mine", position=1))
    s = outlines_to_roimanager(_pred([0, 1], [1]), rm, imp, replace_all=True)
    assert (s.added, s.removed, s.total) == (2, 1, 2)
    assert [str(rm.getName(i)) for i in range(2)] == ["t0001-object-1", "t0002-object-1"]
    assert [str(r.getName()) for r in rm.getRoisAsArray()] == ["object-1", "object-1"]


def test_hidden_roi_manager_and_many_rois(ij1):
    """A hidden RoiManager works too; 30 objects x 40 frames go in sorted."""
    from rescunet_ij.bridge import outlines_to_roimanager, roimanager_to_outlines
    from rescunet_ij.bridge._java import jc

    imp = jc.IJ.createHyperStack("big", 400, 300, 1, 1, 40, 8)
    rm = jc.RoiManager(True)
    outs = [
        Outline(k, f, square(12 * (k % 30), 10 * (k // 30) + f % 3, 8))
        for f in range(40)
        for k in range(1, 31)
    ]
    outlines_to_roimanager(outs[: 30 * 20], rm, imp)
    outlines_to_roimanager(outs[30 * 10 :], rm, imp, replace_frames=range(10, 40))
    assert rm.getCount() == 1200
    back = roimanager_to_outlines(rm, imp)
    assert [(o.frame, o.object_id) for o in back] == [(o.frame, o.object_id) for o in outs]
    np.testing.assert_allclose(back[-1].polygon, outs[-1].polygon)


def test_other_planes_of_a_hyperstack_are_untouched(ij1, rm):
    from rescunet_ij.bridge import outlines_to_roimanager, roimanager_to_outlines
    from rescunet_ij.bridge._java import jc

    imp = jc.IJ.createHyperStack("zt", 80, 60, 1, 2, 4, 8)
    first = [Outline(1, f, square(10 + f, 10), z=z) for f in range(4) for z in (0, 1)]
    outlines_to_roimanager(first, rm, imp)
    assert [(r.getZPosition(), r.getTPosition()) for r in rm.getRoisAsArray()][:2] == [
        (1, 1),
        (2, 1),
    ]
    redo = [Outline(1, f, square(30 + f, 10), z=1) for f in (2, 3)]
    s = outlines_to_roimanager(redo, rm, imp)
    assert (s.added, s.removed) == (2, 2)
    back = roimanager_to_outlines(rm, imp)
    xs = {(o.frame, o.z): round(o.polygon[0, 0]) for o in back}
    assert xs == {
        (0, 0): 10,
        (0, 1): 10,
        (1, 0): 11,
        (1, 1): 11,
        (2, 0): 12,
        (2, 1): 32,
        (3, 0): 13,
        (3, 1): 33,
    }
