"""Mask <-> polygon geometry in ImageJ pixel coordinates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import polygon as sk_polygon
from skimage.morphology import disk

from rescunet_ij.errors import DataError
from rescunet_ij.geometry import (
    best_iou_component,
    clip_polygon,
    erode,
    fill_holes,
    iou,
    largest_component,
    mask_to_polygon,
    polygon_area,
    polygon_to_mask,
)


def _blob(rng: np.random.Generator, shape=(64, 64)) -> np.ndarray:
    """A random smooth blob (possibly several components / holes)."""
    field = ndi.gaussian_filter(rng.random(shape), rng.uniform(1.0, 5.0))
    return field > np.quantile(field, rng.uniform(0.5, 0.98))


def _star(shape, cy, cx, r0, amp, k, phase=0.0) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    dy, dx = yy + 0.5 - cy, xx + 0.5 - cx
    theta = np.arctan2(dy, dx)
    return np.hypot(dy, dx) <= r0 + amp * np.cos(k * theta + phase)


# ------------------------------------------------------------------------------ polygon_to_mask


def test_polygon_to_mask_integer_rectangle_covers_exact_pixels():
    poly = np.array([[2, 1], [5, 1], [5, 4], [2, 4]], float)  # x 2..5, y 1..4
    mask = polygon_to_mask(poly, (6, 8))
    expected = np.zeros((6, 8), bool)
    expected[1:4, 2:5] = True
    np.testing.assert_array_equal(mask, expected)


def test_polygon_to_mask_uses_pixel_centres():
    # A triangle covering the centre of pixel (0, 0) only: (0.5, 0.5) is inside, (1.5, 0.5) not.
    tri = np.array([[0.0, 0.0], [1.2, 0.0], [0.0, 1.2]])
    mask = polygon_to_mask(tri, (3, 3))
    assert mask.sum() == 1 and mask[0, 0]
    # A polygon inside one pixel that misses its centre covers nothing.
    tiny = np.array([[0.05, 0.05], [0.3, 0.05], [0.05, 0.3]])
    assert not polygon_to_mask(tiny, (3, 3)).any()


def test_polygon_to_mask_ties_follow_java_insideness():
    # Centres exactly on the left edge are inside, on the right edge outside (top/bottom likewise).
    rect = np.array([[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]])
    mask = polygon_to_mask(rect, (4, 4))
    expected = np.zeros((4, 4), bool)
    expected[0:2, 0:2] = True
    np.testing.assert_array_equal(mask, expected)


def test_polygon_to_mask_matches_skimage_on_random_polygons():
    rng = np.random.default_rng(1)
    for _ in range(200):
        poly = rng.uniform(-5, 45, size=(int(rng.integers(3, 12)), 2))
        ours = polygon_to_mask(poly, (40, 40))
        ref = np.zeros((40, 40), bool)
        rr, cc = sk_polygon(poly[:, 1] - 0.5, poly[:, 0] - 0.5, (40, 40))
        ref[rr, cc] = True
        np.testing.assert_array_equal(ours, ref)


def test_polygon_to_mask_clips_and_handles_degenerate_input():
    big = np.array([[-10, -10], [100, -10], [100, 100], [-10, 100]], float)
    assert polygon_to_mask(big, (5, 7)).all()
    assert not polygon_to_mask(np.zeros((0, 2)), (5, 5)).any()
    assert not polygon_to_mask([[1, 1], [3, 3]], (5, 5)).any()
    # An explicitly closed polygon (first vertex repeated) is accepted.
    closed = np.array([[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]], float)
    assert polygon_to_mask(closed, (5, 5)).sum() == 4
    with pytest.raises(DataError, match=r"\(n, 2\)"):
        polygon_to_mask(np.zeros((4, 3)), (5, 5))


# ------------------------------------------------------------------------------ mask_to_polygon


def test_mask_to_polygon_empty_mask():
    poly = mask_to_polygon(np.zeros((10, 10), bool))
    assert poly.shape == (0, 2) and poly.dtype == np.float64


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (1, 3), (3, 1), (2, 1)])
def test_tiny_objects_round_trip_exactly(size):
    mask = np.zeros((8, 9), bool)
    mask[3 : 3 + size[0], 4 : 4 + size[1]] = True
    poly = mask_to_polygon(mask)
    assert len(poly) >= 3
    np.testing.assert_array_equal(polygon_to_mask(poly, mask.shape), mask)


def test_single_pixel_polygon_is_the_diamond_through_edge_midpoints():
    mask = np.zeros((5, 5), bool)
    mask[2, 3] = True
    poly = mask_to_polygon(mask)
    assert {tuple(p) for p in poly} == {(3.5, 2.0), (4.0, 2.5), (3.5, 3.0), (3.0, 2.5)}


def test_round_trip_on_many_blob_shapes_and_sizes():
    rng = np.random.default_rng(0)
    ious = []
    for i in range(120):
        mask = (
            _blob(rng)
            if i % 2
            else _star(
                (64, 64),
                *rng.uniform(20, 44, 2),
                rng.uniform(2, 18),
                rng.uniform(0, 4),
                int(rng.integers(2, 7)),
            )
        )
        if not mask.any():
            continue
        poly = mask_to_polygon(mask)
        back = polygon_to_mask(poly, mask.shape)
        ref = fill_holes(largest_component(mask))
        ious.append(iou(back, ref))
        np.testing.assert_array_equal(back, ref)  # exact, not just close
    assert min(ious) >= 0.98


def test_round_trip_object_touching_every_border():
    mask = np.ones((12, 10), bool)
    poly = mask_to_polygon(mask)
    np.testing.assert_array_equal(polygon_to_mask(poly, mask.shape), mask)
    assert poly[:, 0].min() == 0 and poly[:, 0].max() == 10
    assert poly[:, 1].min() == 0 and poly[:, 1].max() == 12
    corner = np.zeros((12, 10), bool)
    corner[:4, 7:] = True
    np.testing.assert_array_equal(polygon_to_mask(mask_to_polygon(corner), corner.shape), corner)


def test_holes_are_filled_and_only_the_largest_component_is_kept():
    mask = np.zeros((30, 30), bool)
    mask[2:20, 2:20] = True
    mask[8:12, 8:12] = False  # a hole
    mask[24:27, 24:27] = True  # a smaller second object
    back = polygon_to_mask(mask_to_polygon(mask), mask.shape)
    expected = np.zeros_like(mask)
    expected[2:20, 2:20] = True
    np.testing.assert_array_equal(back, expected)


def test_diagonally_touching_pixels_are_one_component():
    mask = np.zeros((6, 6), bool)
    mask[1, 1] = mask[2, 2] = mask[3, 3] = True
    np.testing.assert_array_equal(polygon_to_mask(mask_to_polygon(mask), mask.shape), mask)


def test_polygon_format_orientation_and_simplification():
    mask = np.zeros((20, 30), bool)
    mask[4:15, 3:25] = True
    poly = mask_to_polygon(mask)
    assert poly.dtype == np.float64 and poly.ndim == 2 and poly.shape[1] == 2
    assert not np.array_equal(poly[0], poly[-1])  # first vertex not repeated
    assert polygon_area(poly, signed=True) > 0  # documented orientation
    assert len(poly) <= 8  # straight runs collapse
    raw = mask_to_polygon(mask, tolerance=0.0)
    assert len(raw) >= len(poly)
    np.testing.assert_array_equal(polygon_to_mask(raw, mask.shape), mask)
    with pytest.raises(DataError, match="tolerance"):
        mask_to_polygon(mask, tolerance=-1)


def test_large_tolerance_still_round_trips_exactly():
    mask = _star((64, 64), 32, 32, 15, 3, 5)
    poly = mask_to_polygon(mask, tolerance=3.0)  # falls back to smaller tolerances
    np.testing.assert_array_equal(polygon_to_mask(poly, mask.shape), mask)


# ------------------------------------------------------------------------------- mask utilities


def test_fill_holes():
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[3, 3] = False
    assert fill_holes(ring)[3, 3] and fill_holes(ring).sum() == 25


def test_erode_zero_is_noop_and_negative_is_an_error():
    mask = _star((40, 40), 20, 20, 10, 2, 3)
    out = erode(mask, 0)
    np.testing.assert_array_equal(out, mask)
    assert out is not mask
    with pytest.raises(DataError, match=">= 0"):
        erode(mask, -1)


@pytest.mark.parametrize("width", [1, 2, 3, 5])
def test_erode_matches_disk_erosion(width):
    mask = _star((60, 60), 30, 30, 16, 4, 3)
    ref = ndi.binary_erosion(mask, structure=disk(width), border_value=1)
    np.testing.assert_array_equal(erode(mask, width), ref)
    assert erode(mask, width).sum() < mask.sum()


def test_erode_keeps_image_border_and_can_empty_small_objects():
    mask = np.zeros((10, 10), bool)
    mask[:, :4] = True  # touches the left, top and bottom borders
    out = erode(mask, 1)
    np.testing.assert_array_equal(out[:, :3], True)  # only the inner side shrinks
    assert not out[:, 3:].any()
    small = np.zeros((10, 10), bool)
    small[4:6, 4:6] = True
    assert not erode(small, 2).any()
    assert erode(np.ones((5, 5), bool), 3).all()


def test_iou_values_and_conventions():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert iou(a, b) == 1.0  # both empty
    a[0, :2] = True
    assert iou(a, b) == 0.0  # exactly one empty
    b[0, 1:3] = True
    assert iou(a, b) == pytest.approx(1 / 3)
    with pytest.raises(DataError, match="same shape"):
        iou(a, np.zeros((3, 3), bool))


def test_best_iou_component():
    mask = np.zeros((20, 20), bool)
    mask[1:4, 1:4] = True  # small, overlaps the reference
    mask[10:18, 10:18] = True  # large, no overlap
    ref = np.zeros_like(mask)
    ref[2:5, 2:5] = True
    best = best_iou_component(mask, ref)
    assert best[1:4, 1:4].all() and not best[10:, 10:].any()
    # No overlap at all: the largest component.
    far = np.zeros_like(mask)
    far[0, 19] = True
    largest = best_iou_component(mask, far)
    assert largest[10:18, 10:18].all() and not largest[1:4, 1:4].any()
    # Empty stays empty; a single component is returned as is.
    assert not best_iou_component(np.zeros_like(mask), ref).any()
    single = np.zeros_like(mask)
    single[5:8, 5:8] = True
    np.testing.assert_array_equal(best_iou_component(single, far), single)


def test_best_iou_prefers_iou_over_raw_overlap():
    mask = np.zeros((30, 30), bool)
    mask[0:20, 0:20] = True  # overlaps the reference by 100 px, IoU 100/661
    mask[21:29, 21:29] = True  # overlaps by 64 px, IoU 64/361
    ref = np.zeros_like(mask)
    ref[10:29, 10:29] = True
    out = best_iou_component(mask, ref)
    assert out[25, 25] and not out[5, 5]


def test_polygon_area_and_clip():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float)
    assert polygon_area(square) == 4.0
    assert polygon_area(square, signed=True) == 4.0
    assert polygon_area(square[::-1], signed=True) == -4.0
    assert polygon_area(square[:2]) == 0.0
    tri = np.array([[-3.0, 2.0], [15.0, -1.0], [5.0, 30.0]])
    clipped = clip_polygon(tri, (20, 10))
    assert clipped[:, 0].min() >= 0 and clipped[:, 0].max() <= 10
    assert clipped[:, 1].min() >= 0 and clipped[:, 1].max() <= 20
    np.testing.assert_array_equal(
        polygon_to_mask(clipped, (20, 10)), polygon_to_mask(tri, (20, 10))
    )
    inside = _square(2, 2)
    np.testing.assert_array_equal(clip_polygon(inside, (20, 20)), inside)
    assert clip_polygon(_square(50, 50), (20, 20)).shape == (0, 2)


def test_clip_polygon_keeps_the_pixels_inside_the_image():
    rng = np.random.default_rng(3)
    for _ in range(100):
        poly = rng.uniform(-15, 45, size=(int(rng.integers(3, 14)), 2))
        clipped = clip_polygon(poly, (30, 25))
        assert ((clipped >= 0) & (clipped <= [25, 30])).all()
        np.testing.assert_array_equal(
            polygon_to_mask(clipped, (30, 25)), polygon_to_mask(poly, (30, 25))
        )


def _square(x0, y0, size=4.0):
    return np.array([[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size]], float)
