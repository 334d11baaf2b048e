"""ImageJ ROIs: RoiSet round trips, ROI types, positions, identity rules and errors."""

from __future__ import annotations

import warnings
import zipfile

import numpy as np
import pytest
from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi, roiread

from rescunet_ij.errors import ConfigError, DataError, OutputExistsError
from rescunet_ij.geometry import mask_to_polygon, polygon_to_mask
from rescunet_ij.io.identity import RoiRecord, assign_identities, is_default_imagej_name
from rescunet_ij.io.rois import (
    PALETTE,
    RoiWarning,
    object_color,
    read_raw_rois,
    read_rois,
    roi_labels,
    write_rois,
)
from rescunet_ij.types import Identity, Outline


def _disk_polygon(cx, cy, r, shape=(64, 64)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return mask_to_polygon(np.hypot(yy + 0.5 - cy, xx + 0.5 - cx) <= r)


def _square(x0, y0, size=4.0):
    return np.array([[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size]], float)


def _poly_roi(points, name="", *, t=0, z=0, c=0, position=0, group=0, props=None, sub=True):
    pts = np.asarray(points, dtype=np.float64 if sub else np.int32)
    roi = ImagejRoi.frompoints(pts, name=name)
    roi.name = name
    roi.roitype = ROI_TYPE.POLYGON
    roi.t_position, roi.z_position, roi.c_position, roi.position = t, z, c, position
    roi.group = group
    if props:
        roi.properties = props
    return roi


def _save(path, rois):
    with zipfile.ZipFile(path, "w") as zf:
        for i, roi in enumerate(rois):
            zf.writestr(f"{i:04d}-{roi.name or 'roi'}.roi", roi.tobytes())
    return path


def _outlines(n_frames=3, ids=(2, 1), **kw):
    out = []
    for t in range(n_frames):
        for k in ids:
            out.append(
                Outline(
                    object_id=k, frame=t, polygon=_disk_polygon(12 + 9 * k + t, 20, 4 + k), **kw
                )
            )

    return out


def _key(o):
    return (o.frame, o.z, -1 if o.c is None else o.c, o.object_id)


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(sorted(a, key=_key), sorted(b, key=_key)):
        assert (x.object_id, x.frame, x.z, x.c, x.name) == (y.object_id, y.frame, y.z, y.c, y.name)
        assert x.confidence == y.confidence and x.prompt_iou == y.prompt_iou
        np.testing.assert_array_equal(x.polygon, y.polygon)


# ------------------------------------------------------------------------------ write_rois format


def test_write_rois_as_imagej_sees_them_time_only_stack(tmp_path):
    outlines = _outlines(3)
    outlines[0].confidence, outlines[0].prompt_iou = 0.8125, 0.9
    outlines[1].name = "nucleus A"
    path = write_rois(tmp_path / "RoiSet.zip", outlines, n_frames=3)
    rois = roiread(path)
    assert len(rois) == 6
    # Sorted by frame, then object id - the same order in every frame.
    ids = [r.properties["object_id"] for r in rois]
    assert ids == [1, 2, 1, 2, 1, 2]
    for r in rois:
        assert r.roitype == ROI_TYPE.POLYGON
        assert r.subpixelresolution
        # A time-only stack is not an ImageJ hyperstack: stack index only (= frame + 1 here).
        assert r.t_position == 0 and r.c_position == 0 and r.z_position == 0
    assert [r.position for r in rois] == [1, 1, 2, 2, 3, 3]
    assert [r.group for r in rois] == ids
    names = [r.name for r in rois]
    assert names[:2] == ["nucleus A", "object-2"]
    from rescunet_ij.io.rois import outline_hash  # predictions carry their geometry hash

    assert rois[1].properties == {
        "confidence": 0.8125,
        "object_id": 2,
        "prompt_iou": 0.9,
        "outline_hash": outline_hash(outlines[0].polygon),
    }
    # Colours: one per object, the same in every frame.
    assert rois[0].stroke_color == rois[2].stroke_color != rois[1].stroke_color
    assert rois[0].stroke_color[1:] == bytes.fromhex(object_color(1)[1:])
    # Sub-pixel coordinates are stored as given.
    src = sorted(outlines, key=_key)
    for r, o in zip(rois, src):
        np.testing.assert_array_equal(r.coordinates(), o.polygon.astype(np.float32))
    entries = zipfile.ZipFile(path).namelist()
    assert entries[:2] == ["t0001-nucleus A.roi", "t0001-object-2.roi"]
    assert len(set(entries)) == len(entries)


def test_write_rois_hyperstack_positions(tmp_path):
    outlines = [
        Outline(object_id=1, frame=1, z=2, polygon=_square(2, 2)),
        Outline(object_id=1, frame=0, z=0, c=1, polygon=_square(3, 3)),
    ]
    path = write_rois(tmp_path / "h.zip", outlines, n_frames=2, n_slices=3, n_channels=2)
    rois = roiread(path)
    assert [(r.c_position, r.z_position, r.t_position, r.position) for r in rois] == [
        (2, 1, 1, 0),
        (0, 3, 2, 0),
    ]
    # A plain stack index instead, when asked: c fastest, then z, then t (1-based).
    path2 = write_rois(
        tmp_path / "s.zip", outlines, n_frames=2, n_slices=3, n_channels=2, hyperstack=False
    )
    assert [r.position for r in roiread(path2)] == [2, 1 * 6 + 2 * 2 + 0 + 1]


def test_write_single_frame_has_no_position_and_big_ids_no_group(tmp_path):
    path = write_rois(tmp_path / "one.zip", [Outline(300, 0, _square(1, 1))], n_frames=1)
    (roi,) = roiread(path)
    assert (roi.position, roi.t_position, roi.group) == (0, 0, 0)
    assert roi.properties["object_id"] == 300


def test_write_refusals(tmp_path):
    path = write_rois(tmp_path / "r.zip", _outlines(1), n_frames=1)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_rois(path, _outlines(1), n_frames=1)
    assert path.read_bytes() == before
    write_rois(path, _outlines(2), n_frames=2, overwrite=True)
    assert len(roiread(path)) == 4
    with pytest.raises(DataError, match="outside the movie"):
        write_rois(tmp_path / "x.zip", _outlines(3), n_frames=2)
    twice = [Outline(1, 0, _square(1, 1)), Outline(1, 0, _square(5, 5))]
    with pytest.raises(DataError, match="twice"):
        write_rois(tmp_path / "y.zip", twice, n_frames=1)
    with pytest.raises(DataError, match="no outlines"):
        write_rois(tmp_path / "z.zip", [], n_frames=1)
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "y.zip").exists()


def test_single_roi_file_round_trip(tmp_path):
    o = Outline(object_id=4, frame=2, polygon=_disk_polygon(20, 20, 6), name="cell")
    path = write_rois(tmp_path / "cell.roi", [o], n_frames=5)
    _assert_same(read_rois(path, n_frames=5), [o])
    with pytest.raises(DataError, match="one ROI"):
        write_rois(tmp_path / "two.roi", _outlines(1), n_frames=1)


# ---------------------------------------------------------------------------- read_rois round trip


@pytest.mark.parametrize("dims", [(3, 1, 1), (3, 2, 1), (3, 2, 2), (1, 4, 1)])
def test_write_then_read_gives_identical_outlines(tmp_path, dims):
    n_t, n_z, n_c = dims
    outlines = []
    for t in range(n_t):
        for z in range(n_z):
            for k in (1, 2, 5):
                c = (k % n_c) if n_c > 1 else None
                outlines.append(
                    Outline(
                        object_id=k,
                        frame=t,
                        z=z,
                        c=c,
                        polygon=_disk_polygon(10 + 8 * k + t, 15 + z, 3 + k / 2),
                    )
                )

    outlines[0].confidence, outlines[0].prompt_iou, outlines[0].name = 0.123456789, 0.5, "first"
    path = write_rois(tmp_path / "r.zip", outlines, n_frames=n_t, n_slices=n_z, n_channels=n_c)
    back = read_rois(path, n_frames=n_t, n_slices=n_z, n_channels=n_c, image_shape=(64, 64))
    _assert_same(back, outlines)
    assert [_key(o) for o in back] == sorted(_key(o) for o in back)


def test_read_keeps_shape_exactly(tmp_path):
    mask = np.zeros((40, 40), bool)
    mask[5:20, 7:31] = True
    mask[12:20, 15:22] = False
    o = Outline(1, 0, mask_to_polygon(mask))
    (back,) = read_rois(write_rois(tmp_path / "m.zip", [o], n_frames=1), n_frames=1)
    np.testing.assert_array_equal(polygon_to_mask(back.polygon, mask.shape), mask)


# ------------------------------------------------------------------------------------ ROI types


def test_rectangles_ovals_freehand_traced_and_integer_polygons(tmp_path):
    rect = ImagejRoi()
    rect.roitype, rect.name = ROI_TYPE.RECT, "rect"
    rect.left, rect.top, rect.right, rect.bottom = 2, 3, 6, 8
    subrect = ImagejRoi()
    subrect.roitype, subrect.name = ROI_TYPE.RECT, "subrect"
    subrect.options = ROI_OPTIONS.SUB_PIXEL_RESOLUTION
    subrect.xd, subrect.yd, subrect.widthd, subrect.heightd = 10.5, 1.5, 3.0, 2.0
    oval = ImagejRoi()
    oval.roitype, oval.name = ROI_TYPE.OVAL, "oval"
    oval.left, oval.top, oval.right, oval.bottom = 20, 10, 31, 17
    free = _poly_roi([[40, 40], [50, 41], [48, 52], [41, 50]], "free", sub=False)
    free.roitype = ROI_TYPE.FREEHAND
    traced = _poly_roi([[2, 20], [6, 20], [6, 22], [4, 22], [4, 24], [2, 24]], "traced", sub=False)
    traced.roitype = ROI_TYPE.TRACED
    path = _save(tmp_path / "types.zip", [rect, subrect, oval, free, traced])
    outs = {o.name: o for o in read_rois(path, n_frames=1, identity="order")}
    assert set(outs) == {"rect", "subrect", "oval", "free", "traced"}
    shape = (64, 64)
    r = polygon_to_mask(outs["rect"].polygon, shape)
    assert r[3:8, 2:6].all() and r.sum() == 20
    sr = polygon_to_mask(outs["subrect"].polygon, shape)
    assert sr[1:3, 10:13].all() and sr.sum() == 6  # centres 10.5 and 13.5 on the edges: left in
    # Ovals: exactly the pixels ImageJ's OvalRoi.getMask() contains.
    yy, xx = np.mgrid[0:7, 0:11]
    a, b = 11 / 2, 7 / 2
    expected = np.zeros(shape, bool)
    expected[10:17, 20:31] = ((xx + 0.5 - a) / a) ** 2 + ((yy + 0.5 - b) / b) ** 2 <= 1
    np.testing.assert_array_equal(polygon_to_mask(outs["oval"].polygon, shape), expected)
    # Integer polygons keep their absolute coordinates (stored relative to left/top).
    np.testing.assert_array_equal(outs["free"].polygon, [[40, 40], [50, 41], [48, 52], [41, 50]])
    t = polygon_to_mask(outs["traced"].polygon, shape)
    assert t.sum() == 4 * 2 + 2 * 2 and t[20:24, 2:4].all()


def test_rounded_rectangle_and_composite_warn(tmp_path):
    rr = ImagejRoi()
    rr.roitype, rr.name, rr.rounded_rect_arc_size = ROI_TYPE.RECT, "round", 3
    rr.left, rr.top, rr.right, rr.bottom = 2, 2, 12, 12
    comp = ImagejRoi()
    comp.roitype, comp.name = ROI_TYPE.RECT, "two parts"
    path_ops = [0, 20, 20, 1, 40, 20, 1, 40, 40, 1, 20, 40, 4, 0, 50, 50, 1, 53, 50, 1, 53, 53, 4]
    comp.multi_coordinates = np.array(path_ops, np.float32)
    comp.shape_roi_size = len(path_ops)
    comp.left, comp.top, comp.right, comp.bottom = 20, 20, 53, 53
    path = _save(tmp_path / "c.zip", [rr, comp])
    with pytest.warns(RoiWarning) as rec:
        outs = {o.name: o for o in read_rois(path, n_frames=1, identity="order")}
    text = " ".join(str(w.message) for w in rec)
    assert "'round'" in text and "rounded" in text
    assert "'two parts'" in text and "largest part" in text
    assert polygon_to_mask(outs["two parts"].polygon, (64, 64)).sum() == 400
    assert polygon_to_mask(outs["round"].polygon, (64, 64)).sum() == 100


def test_composite_with_curves_is_flattened(tmp_path):
    # A circle of radius 10 centred at (30, 30) as java.awt writes it: 4 cubic Bezier arcs.
    k = 0.5522847498 * 10
    ops = [0, 40, 30]
    ops += [3, 40, 30 + k, 30 + k, 40, 30, 40]
    ops += [3, 30 - k, 40, 20, 30 + k, 20, 30]
    ops += [3, 20, 30 - k, 30 - k, 20, 30, 20]
    ops += [3, 30 + k, 20, 40, 30 - k, 40, 30, 4]
    comp = ImagejRoi()
    comp.roitype, comp.name = ROI_TYPE.RECT, "round shape"
    comp.multi_coordinates = np.array(ops, np.float32)
    comp.shape_roi_size = len(ops)
    comp.left, comp.top, comp.right, comp.bottom = 20, 20, 40, 40
    (o,) = read_rois(_save(tmp_path / "curve.zip", [comp]), n_frames=1)
    area = polygon_to_mask(o.polygon, (64, 64)).sum()
    assert abs(area - np.pi * 100) < 12


def test_lines_and_points_are_skipped_with_a_warning(tmp_path):
    line = ImagejRoi()
    line.roitype, line.name = ROI_TYPE.LINE, "my line"
    line.x1, line.y1, line.x2, line.y2 = 1, 1, 9, 9
    point = _poly_roi([[3, 3], [5, 6]], "my points", sub=False)
    point.roitype = ROI_TYPE.POINT
    good = _poly_roi(_square(10, 10), "cell")
    path = _save(tmp_path / "mixed.zip", [line, point, good])
    with pytest.warns(RoiWarning, match="'my line' \\(line\\).*'my points' \\(point\\)"):
        outs = read_rois(path, n_frames=1)
    assert [o.name for o in outs] == ["cell"]
    only_lines = _save(tmp_path / "lines.zip", [line])
    with pytest.warns(RoiWarning), pytest.raises(DataError, match="no usable outline"):
        read_rois(only_lines, n_frames=1)


# ------------------------------------------------------------------------------------ positions


def test_stack_index_decoding_channel_fastest(tmp_path):
    # 2 channels x 3 planes x 4 frames; index 1 + c + 2*z + 6*t.
    rois = [
        _poly_roi(_square(5, 5), f"r{i}", position=1 + c + 2 * z + 6 * t)
        for i, (c, z, t) in enumerate([(1, 2, 3), (0, 0, 0), (0, 1, 2)])
    ]
    outs = read_rois(
        _save(tmp_path / "p.zip", rois), n_frames=4, n_slices=3, n_channels=2, identity="name"
    )
    got = {o.name: (o.frame, o.z, o.c) for o in outs}
    assert got == {"r0": (3, 2, 1), "r1": (0, 0, 0), "r2": (2, 1, 0)}
    # A time-only stack: the index is the frame.
    outs = read_rois(
        _save(tmp_path / "q.zip", [_poly_roi(_square(5, 5), "a", position=7)]), n_frames=9
    )
    assert (outs[0].frame, outs[0].z, outs[0].c) == (6, 0, None)


def test_hyperstack_position_with_all_channels(tmp_path):
    outs = read_rois(
        _save(tmp_path / "h.zip", [_poly_roi(_square(5, 5), "a", t=3, z=2)]),
        n_frames=4,
        n_slices=2,
        n_channels=3,
    )
    assert (outs[0].frame, outs[0].z, outs[0].c) == (2, 1, None)


def test_missing_position_on_multi_frame_movie_is_an_error(tmp_path):
    rois = [_poly_roi(_square(5, 5), "lost one"), _poly_roi(_square(9, 9), "placed", t=2)]
    path = _save(tmp_path / "n.zip", rois)
    with pytest.raises(DataError) as err:
        read_rois(path, n_frames=5)
    msg = str(err.value)
    assert "'lost one'" in msg and "'placed'" not in msg
    # The Fiji fix comes first; the CLI has no option for it; the Python name says it is Python.
    assert msg.index("ROI Manager > More > Properties...") < msg.index("command line")
    assert "command line has no option" in msg
    assert "in Python, pass the 0-based frame as default_frame= to " in msg
    assert "rescunet_ij.io.rois.read_rois" in msg
    outs = read_rois(path, n_frames=5, default_frame=0)
    assert sorted(o.frame for o in outs) == [0, 1]
    # On a single-frame image no position is needed.
    (o,) = read_rois(_save(tmp_path / "one.zip", rois[:1]), n_frames=1)
    assert o.frame == 0 and o.z == 0


def test_missing_z_on_a_z_stack(tmp_path):
    path = _save(tmp_path / "z.zip", [_poly_roi(_square(5, 5), "flat", t=1)])
    with pytest.raises(DataError, match="no z position.*'flat'.*Properties.*default_z="):
        read_rois(path, n_frames=2, n_slices=3)
    assert read_rois(path, n_frames=2, n_slices=3, default_z=2)[0].z == 2


def test_positions_outside_the_movie(tmp_path):
    with pytest.raises(DataError, match="'far'.*frame 9.*4 frames"):
        read_rois(_save(tmp_path / "a.zip", [_poly_roi(_square(5, 5), "far", t=9)]), n_frames=4)
    with pytest.raises(DataError, match="stack position 30"):
        read_rois(
            _save(tmp_path / "b.zip", [_poly_roi(_square(5, 5), "x", position=30)]), n_frames=4
        )


# ------------------------------------------------------------------------ clipping, degenerates


def test_clipping_and_outside_rois_warn(tmp_path):
    partly = _poly_roi([[-5, -5], [10, -5], [10, 10], [-5, 10]], "edge cell")
    outside = _poly_roi([[100, 100], [110, 100], [110, 110]], "elsewhere")
    inside = _poly_roi(_square(20, 20), "fine")
    path = _save(tmp_path / "c.zip", [partly, outside, inside])
    with pytest.warns(RoiWarning) as rec:
        outs = read_rois(path, n_frames=1, image_shape=(32, 32))
    messages = [str(w.message) for w in rec]
    assert any("clipped" in m and "'edge cell'" in m for m in messages)
    assert any("outside the image" in m and "'elsewhere'" in m for m in messages)
    by_name = {o.name: o for o in outs}
    assert set(by_name) == {"edge cell", "fine"}
    assert by_name["edge cell"].polygon.min() == 0
    assert polygon_to_mask(by_name["edge cell"].polygon, (32, 32)).sum() == 100


def test_degenerate_rois_are_skipped(tmp_path):
    flat = _poly_roi([[1, 1], [5, 5], [9, 9]], "flat")
    two = _poly_roi([[1, 1], [5, 5], [1, 1], [5, 5]], "two points")
    tiny = _poly_roi([[3.05, 3.05], [3.3, 3.05], [3.05, 3.3]], "no pixel")
    ok = _poly_roi(_square(10, 10), "ok")
    with pytest.warns(RoiWarning, match="degenerate.*'flat'.*'two points'.*'no pixel'"):
        outs = read_rois(_save(tmp_path / "d.zip", [flat, two, tiny, ok]), n_frames=1)
    assert [o.name for o in outs] == ["ok"]


# -------------------------------------------------------------------------------------- identities


def test_identity_property_wins_in_auto(tmp_path):
    rois = [
        _poly_roi(_square(5 + 10 * i, 5), f"c{i}", t=t, group=9, props={"object_id": 7 - i})
        for t in (1, 2)
        for i in range(2)
    ]
    outs = read_rois(_save(tmp_path / "p.zip", rois), n_frames=2)
    assert sorted((o.frame, o.object_id) for o in outs) == [(0, 6), (0, 7), (1, 6), (1, 7)]


def test_identity_group(tmp_path):
    rois = [
        _poly_roi(_square(5, 5), "", t=1, group=3),
        _poly_roi(_square(20, 5), "", t=1, group=1),
        _poly_roi(_square(6, 5), "", t=2, group=3),
    ]
    outs = read_rois(_save(tmp_path / "g.zip", rois), n_frames=2)
    assert sorted((o.frame, o.object_id) for o in outs) == [(0, 1), (0, 3), (1, 3)]
    rois[1].group = 0
    path = _save(tmp_path / "g0.zip", rois)
    with pytest.raises(DataError, match="group.*0001-roi"):
        read_rois(path, n_frames=2, identity="group")
    # auto falls through to the next rule (order here: unnamed ROIs)
    assert len(read_rois(path, n_frames=2)) == 3


def test_identity_name_by_first_appearance(tmp_path):
    rois = [
        _poly_roi(_square(30, 5), "beta", t=2),
        _poly_roi(_square(5, 5), "alpha", t=1),
        _poly_roi(_square(20, 5), "beta", t=1),
        _poly_roi(_square(6, 5), "alpha", t=2),
        _poly_roi(_square(40, 5), "gamma", t=2),
    ]
    outs = read_rois(_save(tmp_path / "n.zip", rois), n_frames=2)
    got = {(o.frame, o.name): o.object_id for o in outs}
    assert got == {
        (0, "alpha"): 1,
        (0, "beta"): 2,
        (1, "alpha"): 1,
        (1, "beta"): 2,
        (1, "gamma"): 3,
    }


def test_default_imagej_names_are_not_identities(tmp_path):
    assert is_default_imagej_name("0001-0123-0456")
    assert is_default_imagej_name("0123-0456") and is_default_imagej_name("00012-00123-00456-2")
    assert not is_default_imagej_name("cell-1") and not is_default_imagej_name("")
    # Frame 1 lists objects (a, b), frame 2 lists them in the same order; the names are
    # ImageJ's position names, which repeat by coincidence but mean nothing.
    rois = [
        _poly_roi(_square(5, 5), "0001-0007-0007", t=1),
        _poly_roi(_square(30, 5), "0001-0007-0032", t=1),
        _poly_roi(_square(31, 5), "0001-0007-0007", t=2),  # same name as frame 1's first ROI
        _poly_roi(_square(6, 5), "0002-0007-0008", t=2),
    ]
    outs = read_rois(_save(tmp_path / "d.zip", rois), n_frames=2)
    got = {(o.frame, int(o.polygon[0, 0])): o.object_id for o in outs}
    assert got == {(0, 5): 1, (0, 30): 2, (1, 31): 1, (1, 6): 2}  # order rule
    assert all(o.name is None for o in outs)
    with pytest.raises(DataError, match="--identity name.*0001-0007-0007"):
        read_rois(_save(tmp_path / "d2.zip", rois), n_frames=2, identity="name")


def test_identity_order_is_kth_roi_per_frame(tmp_path):
    rois = [_poly_roi(_square(5 + 10 * i, 5), "cell", t=t) for t in (2, 1) for i in range(3)]
    outs = read_rois(_save(tmp_path / "o.zip", rois), n_frames=2)  # same names: order rule
    for t in (0, 1):
        ids = [
            o.object_id
            for o in sorted((o for o in outs if o.frame == t), key=lambda o: o.polygon[0, 0])
        ]
        assert ids == [1, 2, 3]


def test_two_rois_of_one_object_in_one_frame_is_an_error(tmp_path):
    rois = [
        _poly_roi(_square(5, 5), "a", t=3, group=2),
        _poly_roi(_square(20, 5), "b", t=3, group=2),
    ]
    with pytest.raises(DataError) as err:
        read_rois(_save(tmp_path / "dup.zip", rois), n_frames=4)
    msg = str(err.value)
    assert "object 2" in msg and "frame 3" in msg and "'a'" in msg and "'b'" in msg
    assert "--identity order" in msg


def test_assign_identities_on_neutral_records():
    recs = [
        RoiRecord("x", 0, {"object_id": "4"}, frame=0),
        RoiRecord("y", 0, {"object_id": 2}, frame=0),
    ]
    assert assign_identities(recs) == [4, 2]
    assert assign_identities(recs, Identity.ORDER) == [1, 2]
    with pytest.raises(DataError, match="property.*'z'"):
        assign_identities(recs + [RoiRecord("z", 0, {}, frame=1)], "property")
    with pytest.raises(ConfigError, match="unknown identity rule"):
        assign_identities(recs, "colour")
    assert assign_identities([]) == []


# ---------------------------------------------------------------------------------- file errors


def test_empty_and_bad_files(tmp_path):
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    with pytest.raises(DataError, match="holds no ROIs"):
        read_rois(empty, n_frames=1)
    with pytest.raises(DataError, match="no such file"):
        read_rois(tmp_path / "missing.zip", n_frames=1)
    text = tmp_path / "notes.zip"
    text.write_text("hello")
    with pytest.raises(DataError, match="not an ImageJ ROI file"):
        read_rois(text, n_frames=1)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("a.roi", b"Iout" + b"\0" * 10)
    with pytest.raises(DataError, match="'a.roi' is corrupted"):
        read_rois(broken, n_frames=1)


def test_raw_rois_keep_imagej_fields(tmp_path):
    roi = _poly_roi(_square(5, 5), "", t=2, z=1, group=4, props={"object_id": 9})
    (raw,) = read_raw_rois(_save(tmp_path / "r.zip", [roi]))
    assert raw.name == "0000-roi"  # unnamed ROIs are named after their zip entry, as in ImageJ
    assert (raw.kind, raw.t_position, raw.z_position, raw.group) == ("polygon", 2, 1, 4)
    assert raw.properties == {"object_id": 9}


def test_palette_is_distinct():
    assert len(set(PALETTE)) == len(PALETTE) >= 12
    assert object_color(1) != object_color(2) and object_color(1) == object_color(1 + len(PALETTE))


def test_read_does_not_warn_for_clean_sets(tmp_path):
    path = write_rois(tmp_path / "clean.zip", _outlines(2), n_frames=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_rois(path, n_frames=2, image_shape=(64, 64))


def test_roi_labels_are_readable_and_unique():
    sq = _square(2, 2)
    outs = [
        Outline(1, 0, sq, name="nucleus-1"),
        Outline(2, 0, sq, name="nucleus-2"),
        Outline(3, 0, sq),
        Outline(1, 9, sq, name="nucleus-1"),
    ]
    assert roi_labels(outs) == [
        "t0001-nucleus-1",
        "t0001-nucleus-2",
        "t0001-object-3",
        "t0010-nucleus-1",
    ]
    # planes and channels appear only when the movie has several
    hyper = [Outline(1, 2, sq, z=1, c=0, name="a"), Outline(1, 2, sq, z=1, c=None, name="a")]
    assert roi_labels(hyper, n_slices=3, n_channels=2) == ["t0003-z0002-c01-a", "t0003-z0002-a"]
    assert roi_labels(hyper[:1], n_slices=1, n_channels=1) == ["t0003-a"]
    # two objects sharing a name in one frame: the object id keeps labels unique
    shared = [
        Outline(1, 0, sq, name="cell"),
        Outline(2, 0, sq, name="cell"),
        Outline(1, 1, sq, name="cell"),
    ]
    assert roi_labels(shared) == ["t0001-cell-id1", "t0001-cell-id2", "t0002-cell"]
    # labels already in use (a live ROI Manager) are avoided the same way
    assert roi_labels(shared[2:], taken=["t0002-cell"]) == ["t0002-cell-id1"]
    # path separators would make zip folders; whitespace is tidied
    assert roi_labels([Outline(4, 0, sq, name=" a/b\\c  d ")]) == ["t0001-a_b_c d"]


def test_write_rois_entry_names_are_the_labels_and_reading_ignores_them(tmp_path):
    sq = _square(2, 2)
    outs = [
        Outline(1, f, sq + k * 8, name="cell" if k < 3 else None)
        for f in range(3)
        for k in (1, 2, 3)
    ]
    # object ids are what identify; the names repeat inside a frame (1 and 2 are both "cell")
    outs = [Outline(k, o.frame, o.polygon, name=o.name) for k, o in zip([1, 2, 3] * 3, outs)]
    path = write_rois(tmp_path / "s.zip", outs, n_frames=3)
    entries = zipfile.ZipFile(path).namelist()
    assert entries[:3] == ["t0001-cell-id1.roi", "t0001-cell-id2.roi", "t0001-object-3.roi"]
    assert len(set(entries)) == 9
    back = read_rois(path, n_frames=3)
    assert [(o.frame, o.object_id, o.name) for o in back] == [
        (o.frame, o.object_id, o.name) for o in sorted(outs, key=lambda o: o.sort_key)
    ]
    # entries renamed (as any tool may do) change nothing
    renamed = tmp_path / "renamed.zip"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(renamed, "w") as zout:
        for i, info in enumerate(zin.infolist()):
            zout.writestr(f"whatever-{8 - i}.roi", zin.read(info))
    again = read_rois(renamed, n_frames=3)
    assert [(o.frame, o.object_id, o.name) for o in again] == [
        (o.frame, o.object_id, o.name) for o in back
    ]
