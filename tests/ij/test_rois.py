"""ImageJ ROIs <-> outlines on the real ImageJ 1.53t: positions, round trips, identities."""

from __future__ import annotations

import numpy as np
import pytest
import roifile
from ij_helpers import java_polygon_roi, square

from rescunet_ij.errors import DataError
from rescunet_ij.io.rois import read_rois, write_rois
from rescunet_ij.types import Outline

pytestmark = pytest.mark.ij


def _imp(c=1, z=1, t=5, w=64, h=48, title="movie"):
    from rescunet_ij.bridge._java import jc

    return jc.IJ.createHyperStack(title, w, h, c, z, t, 16)


def _outlines(n_obj=3, frames=range(5), z=0, c=None):
    out = []
    for f in frames:
        for k in range(1, n_obj + 1):
            out.append(
                Outline(
                    k,
                    f,
                    square(3.25 + 12 * k + f, 4.5 + f, 6.5),
                    z=z,
                    c=c,
                    confidence=0.9 if f else None,
                    prompt_iou=0.8 if f else None,
                )
            )
    return out


def _key(o):
    return (o.frame, o.z, o.c, o.object_id)


def test_positions_follow_imagej_conventions(ij1):
    from rescunet_ij.bridge import outlines_to_rois

    o = Outline(2, 3, square(1.5, 2.25), z=1, c=None)
    hyper = _imp(c=2, z=3, t=5)
    (r,) = outlines_to_rois([o], hyper)
    assert r.hasHyperStackPosition()
    assert (r.getCPosition(), r.getZPosition(), r.getTPosition()) == (0, 2, 4)
    # a time-only stack is a plain stack for ImageJ: stack index, as its ROI Manager stores it
    tonly = _imp(t=6)
    (r,) = outlines_to_rois([Outline(2, 3, square(1.5, 2.25))], tonly)
    assert not r.hasHyperStackPosition()
    assert r.getPosition() == 4
    single = _imp(t=1)
    (r,) = outlines_to_rois([Outline(2, 0, square(1.5, 2.25))], single)
    assert r.getPosition() == 0 and not r.hasHyperStackPosition()
    assert str(r.getName()) == "object-2"
    assert r.getGroup() == 2
    assert str(r.getProperty("object_id")) == "2"
    assert r.getStrokeColor().getRGB() & 0xFFFFFF == 0x3CB44B  # rescunet_ij.io.rois.object_color(2)
    fp = r.getFloatPolygon()
    assert list(fp.xpoints)[:4] == [1.5, 11.5, 11.5, 1.5]
    with pytest.raises(DataError, match="outside image"):
        outlines_to_rois([Outline(1, 9, square(1, 1))], tonly)


def test_outlines_to_roimanager_saved_by_imagej_read_by_roifile(ij1, rm, tmp_path):
    from rescunet_ij.bridge import outlines_to_roimanager

    imp = _imp(t=5)
    outs = _outlines()
    summary = outlines_to_roimanager(outs, rm, imp)
    assert (summary.added, summary.removed, summary.total) == (15, 0, 15)
    labels = [str(rm.getName(i)) for i in range(rm.getCount())]
    assert labels == [f"t{f + 1:04d}-object-{k}" for f in range(5) for k in (1, 2, 3)]
    assert [str(r.getName()) for r in rm.getRoisAsArray()][:2] == ["object-1", "object-2"]
    zpath = tmp_path / "RoiSet.zip"
    assert rm.runCommand("Save", str(zpath))
    import zipfile

    assert [n[:-4] for n in zipfile.ZipFile(zpath).namelist()] == labels  # nothing renamed
    got = roifile.roiread(zpath)
    assert len(got) == 15
    assert [(r.position, r.group, str(r.properties["object_id"])) for r in got[:4]] == [
        (1, 1, "1"),
        (1, 2, "2"),
        (1, 3, "3"),
        (2, 1, "1"),
    ]
    assert [r.stroke_color[1:].hex() for r in got[:3]] == ["e6194b", "3cb44b", "ffe119"]
    # reopened in ImageJ, the group colour (our Glasbey.lut) is the object's colour too
    rm.reset()
    assert rm.runCommand("Open", str(zpath))
    assert [rm.getRoi(i).getStrokeColor().getRGB() & 0xFFFFFF for i in range(3)] == [
        0xE6194B,
        0x3CB44B,
        0xFFE119,
    ]
    np.testing.assert_allclose(got[4].coordinates(), outs[4].polygon)  # sub-pixel kept
    back = read_rois(zpath, n_frames=5, image_shape=(48, 64))
    assert [_key(o) for o in back] == [_key(o) for o in sorted(outs, key=_key)]
    for a, b in zip(back, sorted(outs, key=_key)):
        np.testing.assert_allclose(a.polygon, b.polygon)
        assert a.confidence == b.confidence and a.prompt_iou == b.prompt_iou


def test_roiset_written_by_python_opened_by_imagej(ij1, rm, tmp_path):
    from rescunet_ij.bridge import roimanager_to_outlines

    imp = _imp(c=2, z=2, t=4)
    outs = _outlines(2, range(4), z=1, c=1)
    zpath = write_rois(tmp_path / "in.zip", outs, n_frames=4, n_slices=2, n_channels=2)
    assert rm.runCommand("Open", str(zpath))
    assert rm.getCount() == 8
    back = roimanager_to_outlines(rm, imp)
    assert [_key(o) for o in back] == [_key(o) for o in sorted(outs, key=_key)]
    for a, b in zip(back, sorted(outs, key=_key)):
        np.testing.assert_allclose(a.polygon, b.polygon, atol=1e-5)


def test_rois_made_in_imagej_positions(ij1, rm):
    """Stack-index positions (plain stacks) and c/z/t positions (hyperstacks) both decode."""
    from rescunet_ij.bridge import roimanager_to_outlines, rois_to_outlines

    tonly = _imp(t=6)
    rm.addRoi(java_polygon_roi(square(5, 5), name="a", position=3))
    rm.addRoi(java_polygon_roi(square(5, 5), name="a", cztp=(1, 1, 5)))
    outs = roimanager_to_outlines(rm, tonly)
    assert [(o.frame, o.object_id, o.name) for o in outs] == [(2, 1, "a"), (4, 1, "a")]
    hyper = _imp(c=2, z=3, t=4)
    rois = [
        java_polygon_roi(square(5, 5), position=hyper.getStackIndex(2, 3, 4)),
        java_polygon_roi(square(20, 5), cztp=(0, 2, 1)),
    ]
    o1, o2 = rois_to_outlines(rois, hyper)
    assert (o1.frame, o1.z, o1.c) == (0, 1, None)
    assert (o2.frame, o2.z, o2.c) == (3, 2, 1)


def test_area_roi_types_and_skipped_line_point(ij1):
    from rescunet_ij.bridge import rois_to_outlines
    from rescunet_ij.bridge._java import jc

    imp = _imp(t=1)
    rect = jc.Roi(4, 4, 10, 8)
    ell = jc.OvalRoi(20, 4, 10, 8)
    shape = jc.ShapeRoi(jc.Roi(2, 30, 6, 6)).or_(jc.ShapeRoi(jc.Roi(30, 30, 12, 12)))
    line = jc.Line(1, 1, 30, 30)
    line.setName("my line")
    point = jc.PointRoi(5.0, 5.0)
    text = jc.TextRoi(2, 2, "hello")
    with pytest.warns(UserWarning) as rec:
        outs = rois_to_outlines([rect, ell, shape, line, point, text], imp, identity="order")
    msgs = " ".join(str(w.message) for w in rec)
    assert (
        "3 ROI(s) without an area" in msgs
        and "'my line' (straight line)" in msgs
        and "text" in msgs
    )
    assert "ROI #3 (unnamed) is a composite ROI with 2 parts" in msgs
    assert len(outs) == 3
    rect, oval_o, comp = sorted(outs, key=lambda o: o.object_id)
    np.testing.assert_allclose(rect.polygon, [[4, 4], [14, 4], [14, 12], [4, 12]])
    assert oval_o.polygon[:, 0].min() > 19.9 and oval_o.polygon[:, 0].max() < 30.1
    assert comp.polygon[:, 0].min() >= 30  # the larger part of the composite


IDENTITY_CASES = {
    # rule: (per ROI: name, group, object_id property) in RM order for frames 1, 1, 2, 2
    "property": [("x", 0, "7"), ("y", 0, "3"), ("y", 0, "3"), ("x", 0, "7")],
    "group": [("x", 5, None), ("y", 6, None), ("p", 6, None), ("q", 5, None)],
    "name": [("cell-A", 0, None), ("cell-B", 0, None), ("cell-B", 0, None), ("cell-A", 0, None)],
    "order": [(None, 0, None), (None, 0, None), (None, 0, None), (None, 0, None)],
}


@pytest.mark.parametrize("rule", list(IDENTITY_CASES))
def test_identity_rules_on_live_roi_manager(ij1, rm, rule):
    from rescunet_ij.bridge import roimanager_to_outlines

    imp = _imp(t=3)
    frames = [1, 1, 2, 2]
    xs = [5, 30, 31, 6]
    for (name, group, prop), t, x in zip(IDENTITY_CASES[rule], frames, xs):
        r = java_polygon_roi(square(x, 5), name=name, position=t)
        if group:
            r.setGroup(group)
        if prop:
            r.setProperty("object_id", prop)
        rm.addRoi(r)
    outs = roimanager_to_outlines(rm, imp, identity=rule)
    auto = roimanager_to_outlines(rm, imp)  # auto picks the same rule here
    by_x = {round(o.polygon[0, 0]): o.object_id for o in outs}
    assert [by_x[x] for x in xs] == [by_x[x] for x in xs]
    # the object at x~5 in frame 1 is the object at x~6 in frame 2 (except for 'order')
    if rule == "order":
        assert (by_x[5], by_x[30], by_x[31], by_x[6]) == (1, 2, 1, 2)
    else:
        assert by_x[5] == by_x[6] and by_x[30] == by_x[31] and by_x[5] != by_x[30]
    assert [_key(o) for o in auto] == [_key(o) for o in outs]
    if rule == "property":
        assert {o.object_id for o in outs} == {3, 7}


def test_default_imagej_names_are_positions_not_identities(ij1, rm):
    """Unnamed ROIs added to the ROI Manager get labels like 0002-0010-0012: order decides."""
    from rescunet_ij.bridge import roimanager_to_outlines

    imp = _imp(t=3)
    imp.show()  # the label includes the slice of the image in front
    for t, x in [(1, 5), (1, 30), (2, 31), (2, 6)]:
        rm.addRoi(java_polygon_roi(square(x, 5), position=t))
    assert str(rm.getName(0)).count("-") == 2
    outs = roimanager_to_outlines(rm, imp)
    assert [(o.frame, o.object_id, o.name) for o in outs] == [
        (0, 1, None),
        (0, 2, None),
        (1, 1, None),
        (1, 2, None),
    ]
    with pytest.raises(DataError, match="custom name"):
        roimanager_to_outlines(rm, imp, identity="name")


def test_mixed_live_set_keeps_our_object_ids(ij1, rm):
    """User seeds (no ids) + our ROIs with ids where object 2 was lost: no renumbering."""
    from rescunet_ij.bridge import outlines_to_roimanager, roimanager_to_outlines

    imp = _imp(t=4)
    for x in (5, 25, 45):
        rm.addRoi(java_polygon_roi(square(x, 5), position=1))
    ours = [Outline(k, 1, square(x + 1, 5)) for k, x in ((1, 5), (3, 45))]
    outlines_to_roimanager(ours, rm, imp)
    outs = roimanager_to_outlines(rm, imp)
    assert [(o.frame, o.object_id, round(o.polygon[0, 0])) for o in outs] == [
        (0, 1, 5),
        (0, 2, 25),
        (0, 3, 45),
        (1, 1, 6),
        (1, 3, 46),
    ]
    # a new object drawn by the user beside ours in frame 2 gets a fresh id
    rm.addRoi(java_polygon_roi(square(20, 30), position=2))
    outs = roimanager_to_outlines(rm, imp)
    assert [(o.frame, o.object_id) for o in outs if o.frame == 1] == [(1, 1), (1, 3), (1, 4)]


def test_bad_inputs(ij1, rm):
    from rescunet_ij.bridge import roimanager_to_outlines, rois_to_outlines

    imp = _imp(t=5)
    with pytest.raises(DataError, match="empty"):
        roimanager_to_outlines(rm, imp)
    with pytest.raises(DataError, match="no image"):
        rois_to_outlines([java_polygon_roi(square(1, 1))], None)
    # no position on a movie
    rm.addRoi(java_polygon_roi(square(5, 5), name="floating"))
    with pytest.raises(DataError, match="no frame position.*floating"):
        roimanager_to_outlines(rm, imp)
    assert roimanager_to_outlines(rm, imp, default_frame=2)[0].frame == 2
    rm.reset()
    # ROIs from a bigger image: outside this one
    rm.addRoi(java_polygon_roi(square(500, 400), name="far", position=1))
    with (
        pytest.raises(DataError, match="no usable outline"),
        pytest.warns(UserWarning, match="outside the image.*far"),
    ):
        roimanager_to_outlines(rm, imp)
    rm.reset()
    # ROIs from a longer movie: position beyond the stack
    rm.addRoi(java_polygon_roi(square(5, 5), name="late", position=9))
    with pytest.raises(DataError, match="another movie"):
        roimanager_to_outlines(rm, imp)
    rm.reset()
    # only a line
    import jpype

    rm.addRoi(jpype.JClass("ij.gui.Line")(1, 1, 20, 20))
    with (
        pytest.raises(DataError, match="no usable outline"),
        pytest.warns(UserWarning, match="without an area"),
    ):
        roimanager_to_outlines(rm, imp)


@pytest.mark.parametrize("dims", [(1, 1, 4), (2, 3, 4)], ids=["time-only", "hyperstack"])
def test_roiset_opened_and_saved_again_by_imagej_keeps_labels_and_identities(
    ij1, rm, tmp_path, dims
):
    """Issue 10: ImageJ renamed duplicate labels on save (frame 1's nucleus-1 came back as
    nucleus-4); labels are now unique, and reading never depends on them."""
    import zipfile

    from rescunet_ij.bridge import roimanager_to_outlines
    from rescunet_ij.io.rois import roi_labels

    n_c, n_z, n_t = dims
    imp = _imp(c=n_c, z=n_z, t=n_t)
    c = 1 if n_c > 1 else None
    z = 2 if n_z > 1 else 0
    names = {1: "nucleus-1", 2: "nucleus-2", 3: "cell", 4: "cell"}  # 3 and 4 share a name
    outs = [
        Outline(k, f, square(2 + 14 * (k - 1) + f, 3 + f, 8), z=z, c=c, name=names[k])
        for f in range(n_t)
        for k in names
    ]
    ordered = sorted(outs, key=lambda o: o.sort_key)
    labels = roi_labels(ordered, n_slices=n_z, n_channels=n_c)
    assert len(set(labels)) == len(labels)
    assert labels[0].startswith("t0001-") and labels[0].endswith("-nucleus-1")
    first = write_rois(tmp_path / "ours.zip", outs, n_frames=n_t, n_slices=n_z, n_channels=n_c)
    assert rm.runCommand("Open", str(first))
    assert [str(rm.getName(i)) for i in range(rm.getCount())] == labels
    assert [str(r.getName()) for r in rm.getRoisAsArray()] == [o.name for o in ordered]
    resaved = tmp_path / "RoiSet.zip"
    assert rm.runCommand("Save", str(resaved))
    assert [n[:-4] for n in zipfile.ZipFile(resaved).namelist()] == labels  # none renamed
    rm.reset()
    assert rm.runCommand("Open", str(resaved))
    assert [str(rm.getName(i)) for i in range(rm.getCount())] == labels
    frame1 = [str(rm.getName(i)) for i in range(len(names))]
    assert all(lab.startswith("t0001-") for lab in frame1)
    for back in (
        read_rois(resaved, n_frames=n_t, n_slices=n_z, n_channels=n_c),
        roimanager_to_outlines(rm, imp),
    ):
        assert [(o.frame, o.z, o.c, o.object_id, o.name) for o in back] == [
            (o.frame, o.z, o.c, o.object_id, o.name) for o in ordered
        ]
