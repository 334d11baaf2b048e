"""Mask and polygon geometry in ImageJ pixel coordinates.

Conventions (shared with :mod:`rescunet_ij.types`)
--------------------------------------------------
* A polygon is an ``(n, 2)`` float64 array of ``(x, y)`` vertices; the closing edge from the last
  vertex back to the first is implied (the first vertex is **not** repeated).
* Pixel ``(row r, column c)`` covers the square ``[c, c+1) x [r, r+1)``; its centre is
  ``(c + 0.5, r + 0.5)``.
* A pixel belongs to a polygon when its **centre** is inside the polygon (ImageJ's
  ``PolygonFiller``/``OvalRoi`` rule, even-odd filling). A centre lying exactly on an edge follows
  Java's insideness rule: it is inside when the interior is immediately to its right (or, on a
  horizontal edge, immediately below it).
* Masks are boolean ``(H, W)`` arrays; connected components are 8-connected (background
  4-connected), the same connectivity ImageJ's "Create Selection" uses for the objects it traces.

Only numpy, scipy and scikit-image are used here.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .errors import DataError
from .types import bounding_box

__all__ = [
    "best_iou_component",
    "clip_polygon",
    "erode",
    "fill_holes",
    "iou",
    "largest_component",
    "mask_to_polygon",
    "polygon_area",
    "polygon_to_mask",
]

_EIGHT = np.ones((3, 3), dtype=bool)


def _as_polygon(polygon: object) -> np.ndarray:
    arr = np.asarray(polygon, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise DataError(
            f"a polygon must be an (n, 2) array of (x, y) vertices; got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise DataError(
            "a polygon has non-finite (NaN or infinite) coordinates; remove those vertices"
        )
    if len(arr) > 1 and np.array_equal(arr[0], arr[-1]):
        arr = arr[:-1]  # accept explicitly closed polygons
    return arr


def _as_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) != 2 or int(shape[0]) < 0 or int(shape[1]) < 0:
        raise DataError(
            f"an image shape must be (height, width) with non-negative sizes; got {shape}"
        )
    return int(shape[0]), int(shape[1])


def polygon_area(polygon: np.ndarray, signed: bool = False) -> float:
    """Area enclosed by a polygon (shoelace formula).

    Parameters
    ----------
    polygon
        ``(n, 2)`` ``(x, y)`` vertices.
    signed
        Return the signed area: positive when the vertices run clockwise **on screen** (ImageJ's
        y axis points down), i.e. counter-clockwise in a y-up coordinate system.

    Returns
    -------
    float
        The (absolute, unless ``signed``) area in square pixels; 0 for fewer than 3 vertices.
    """
    p = _as_polygon(polygon)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    # Centre the coordinates first: fewer rounding errors for polygons far from the origin.
    x = x - x.mean()
    y = y - y.mean()
    a = 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    return a if signed else abs(a)


def _clip_half_plane(p: np.ndarray, axis: int, bound: float, keep_below: bool) -> np.ndarray:
    """One Sutherland-Hodgman pass: keep ``p`` where coordinate ``axis`` is <= / >= bound."""
    if len(p) == 0:
        return p
    v = p[:, axis]
    inside = v <= bound if keep_below else v >= bound
    if inside.all():
        return p
    out: list[np.ndarray] = []
    n = len(p)
    for i in range(n):
        cur, nxt = p[i], p[(i + 1) % n]
        cur_in, nxt_in = inside[i], inside[(i + 1) % n]
        if cur_in:
            out.append(cur)
        if cur_in != nxt_in:
            t = (bound - cur[axis]) / (nxt[axis] - cur[axis])
            cross = cur + t * (nxt - cur)
            cross[axis] = bound  # exact, despite rounding
            out.append(cross)
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def clip_polygon(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Clip a polygon to the image rectangle ``[0, W] x [0, H]``.

    Parameters
    ----------
    polygon
        ``(n, 2)`` ``(x, y)`` vertices.
    shape
        ``(H, W)`` of the image.

    Returns
    -------
    numpy.ndarray
        New ``(m, 2)`` float64 vertices, all inside ``[0, W] x [0, H]``. The polygon is cut at
        the image border (Sutherland-Hodgman), not just clamped vertex by vertex, so it covers
        exactly the same pixels of the image as before (:func:`polygon_to_mask` is unchanged).
        A polygon entirely outside gives ``(0, 2)``; concave polygons may get zero-width
        connections along the border, which cover no pixel.
    """
    h, w = _as_shape(shape)
    p = _as_polygon(polygon).copy()
    p = _clip_half_plane(p, 0, 0.0, keep_below=False)
    p = _clip_half_plane(p, 0, float(w), keep_below=True)
    p = _clip_half_plane(p, 1, 0.0, keep_below=False)
    p = _clip_half_plane(p, 1, float(h), keep_below=True)
    return p


def polygon_to_mask(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise a polygon with ImageJ's pixel-centre rule.

    Parameters
    ----------
    polygon
        ``(n, 2)`` ``(x, y)`` vertices in ImageJ pixel coordinates (first vertex not repeated;
        a repeated one is accepted).
    shape
        ``(H, W)`` of the output mask. Parts of the polygon outside the image are clipped.

    Returns
    -------
    numpy.ndarray
        Boolean ``(H, W)`` mask; pixel ``(r, c)`` is True when ``(c + 0.5, r + 0.5)`` is inside
        the polygon (even-odd rule). Empty for fewer than 3 vertices.

    Notes
    -----
    This is equivalent to ``skimage.draw.polygon(y - 0.5, x - 0.5, shape)`` except for pixel
    centres lying exactly on an edge, which follow Java's (and so ImageJ's) insideness rule
    here: left and top edges are inside, right and bottom edges are not.
    """
    h, w = _as_shape(shape)
    out = np.zeros((h, w), dtype=bool)
    p = _as_polygon(polygon)
    if len(p) < 3 or h == 0 or w == 0:
        return out
    x0, y0 = p[:, 0], p[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    # Pixel-centre rows r whose centre line y = r + 0.5 satisfies min(y0, y1) <= y < max(y0, y1):
    # the half-open rule counts every vertex once and skips horizontal edges.
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    r_start = np.maximum(np.ceil(ylo - 0.5), 0).astype(np.int64)
    r_stop = np.minimum(np.ceil(yhi - 0.5), h).astype(np.int64)  # exclusive
    counts = np.maximum(r_stop - r_start, 0)
    total = int(counts.sum())
    if total == 0:
        return out
    edge = np.repeat(np.arange(len(p)), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = r_start[edge] + offsets
    yc = rows + 0.5
    t = (yc - y0[edge]) / (y1[edge] - y0[edge])
    xs = x0[edge] + t * (x1[edge] - x0[edge])
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    # Every row crossed by a closed polygon has an even number of crossings; pair them up.
    left_r, left_x, right_x = rows[0::2], xs[0::2], xs[1::2]
    # Column c is filled when left <= c + 0.5 < right.
    c_start = np.clip(np.ceil(left_x - 0.5), 0, w).astype(np.int64)
    c_stop = np.clip(np.ceil(right_x - 0.5), 0, w).astype(np.int64)
    keep = c_stop > c_start
    if not np.any(keep):
        return out
    left_r, c_start, c_stop = left_r[keep], c_start[keep], c_stop[keep]
    diff = np.zeros((h, w + 1), dtype=np.int32)
    np.add.at(diff, (left_r, c_start), 1)
    np.add.at(diff, (left_r, c_stop), -1)
    out[:] = np.cumsum(diff[:, :w], axis=1) > 0
    return out


def _label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    labels, n = ndi.label(mask, structure=_EIGHT)
    return labels, int(n)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 8-connected component of a mask.

    Parameters
    ----------
    mask
        Boolean ``(H, W)`` mask.

    Returns
    -------
    numpy.ndarray
        Boolean mask holding only the largest component (ties: the first in raster order);
        empty when ``mask`` is empty.
    """
    mask = np.asarray(mask, dtype=bool)
    labels, n = _label(mask)
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the holes of a mask (background not 4-connected to the image border).

    Parameters
    ----------
    mask
        Boolean ``(H, W)`` mask.

    Returns
    -------
    numpy.ndarray
        New boolean mask without holes.
    """
    return ndi.binary_fill_holes(np.asarray(mask, dtype=bool))


def erode(mask: np.ndarray, width: int) -> np.ndarray:
    """Erode a mask with a disk of radius ``width`` pixels.

    Parameters
    ----------
    mask
        Boolean ``(H, W)`` mask.
    width
        Disk radius in pixels (the disk holds the offsets with ``dx**2 + dy**2 <= width**2``, as
        ``skimage.morphology.disk``). 0 returns an unchanged copy.

    Returns
    -------
    numpy.ndarray
        The eroded mask (may be empty). Outside the image counts as object, so an object touching
        the image border is not eroded from that side: it most likely continues beyond the frame.

    Raises
    ------
    DataError
        If ``width`` is negative.
    """
    mask = np.asarray(mask, dtype=bool)
    width = int(width)
    if width < 0:
        raise DataError(f"erosion width must be >= 0 pixels; got {width}")
    if width == 0 or not mask.any():
        return mask.copy()
    by0, by1, bx0, bx1 = bounding_box(mask)  # type: ignore[misc]  # not empty (checked above)
    m = width + 1
    y0, y1 = max(by0 - m, 0), min(by1 + m, mask.shape[0])
    x0, x1 = max(bx0 - m, 0), min(bx1 + m, mask.shape[1])
    crop = mask[y0:y1, x0:x1]
    out = np.zeros_like(mask)
    if crop.all():  # no background within reach: nothing erodes (outside counts as object)
        out[y0:y1, x0:x1] = True
        return out
    # A pixel survives iff no background pixel lies within the disk, i.e. its Euclidean distance
    # to the nearest background pixel is > width. Pixels beyond the crop count as object, which
    # is right: the crop keeps width+1 background pixels on every side not cut by the image border.
    dist = ndi.distance_transform_edt(crop)
    out[y0:y1, x0:x1] = dist > width
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks of the same shape.

    Parameters
    ----------
    a, b
        Boolean masks.

    Returns
    -------
    float
        ``|a & b| / |a | b|``; **1.0 when both are empty** (two empty masks agree perfectly) and
        0.0 when exactly one is empty.

    Raises
    ------
    DataError
        If the shapes differ.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise DataError(f"IoU needs masks of the same shape; got {a.shape} and {b.shape}")
    union = int(np.count_nonzero(a | b))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(a & b)) / union


def best_iou_component(mask: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Keep the connected component of ``mask`` that best matches ``reference``.

    Parameters
    ----------
    mask
        Boolean ``(H, W)`` mask, possibly with several 8-connected components.
    reference
        Boolean ``(H, W)`` mask to compare with (e.g. the prompt of the previous frame).

    Returns
    -------
    numpy.ndarray
        The component with the highest IoU against ``reference``; when no component overlaps the
        reference, the largest component. Empty stays empty.
    """
    mask = np.asarray(mask, dtype=bool)
    reference = np.asarray(reference, dtype=bool)
    if mask.shape != reference.shape:
        raise DataError(
            "best_iou_component needs masks of the same shape; "
            f"got {mask.shape} and {reference.shape}"
        )
    labels, n = _label(mask)
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(labels.ravel(), minlength=n + 1).astype(np.float64)
    inter = np.bincount(labels[reference], minlength=n + 1).astype(np.float64)
    sizes[0] = inter[0] = 0.0
    if inter[1:].max() <= 0:
        return labels == int(np.argmax(sizes))
    ious = inter / np.maximum(sizes + float(reference.sum()) - inter, 1.0)
    ious[0] = -1.0
    return labels == int(np.argmax(ious))


def _raw_contour(comp: np.ndarray, y0: int, x0: int) -> np.ndarray:
    """Marching-squares outline of one hole-free component, in ImageJ coordinates (open ring)."""
    from skimage.measure import find_contours

    padded = np.pad(comp, 1).astype(np.float64)
    # 'high': pixels above the level are 8-connected, matching the component labelling.
    contours = find_contours(padded, 0.5, fully_connected="high")
    best = max(contours, key=lambda c: abs(polygon_area(c[:, ::-1])))
    ring = best[:-1] if np.array_equal(best[0], best[-1]) else best
    # Padded index p is crop index p - 1; crop pixel (i, j) has centre (x0 + j + 0.5, y0 + i + 0.5).
    xy = np.empty((len(ring), 2), dtype=np.float64)
    xy[:, 0] = ring[:, 1] - 0.5 + x0
    xy[:, 1] = ring[:, 0] - 0.5 + y0
    return xy


def _simplify(ring: np.ndarray, tolerance: float) -> np.ndarray:
    from skimage.measure import approximate_polygon

    closed = np.vstack([ring, ring[:1]])
    simple = approximate_polygon(closed, tolerance=max(float(tolerance), 1e-9))
    if len(simple) > 1 and np.array_equal(simple[0], simple[-1]):
        simple = simple[:-1]
    return simple


def mask_to_polygon(mask: np.ndarray, tolerance: float = 0.35) -> np.ndarray:
    """Sub-pixel outline of the largest component of a mask.

    Parameters
    ----------
    mask
        Boolean ``(H, W)`` mask.
    tolerance
        Largest distance (pixels) the simplified outline may deviate from the marching-squares
        contour (``skimage.measure.approximate_polygon``). The default 0.35 is just below the
        0.354-pixel margin between a pixel centre and the contour, so straight runs collapse to
        few vertices while the outline still encloses exactly the same pixel centres.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` float64 ``(x, y)`` vertices of a closed polygon, first vertex not repeated,
        ordered **clockwise on screen** (positive :func:`polygon_area` with ``signed=True``).
        ``(0, 2)`` for an empty mask. Holes are filled (a single polygon cannot hold them);
        other components are dropped.

    Notes
    -----
    The round trip is exact: ``polygon_to_mask(mask_to_polygon(m), m.shape)`` equals
    ``fill_holes(largest_component(m))``. The outline is traced at level 0.5 through the pixel
    edge midpoints, so every pixel centre is at least 0.354 px from it; if simplification ever
    moves the outline across a pixel centre, the tolerance is halved until it does not
    (ultimately the unsimplified contour is used).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise DataError(f"mask_to_polygon needs a 2-D mask; got shape {mask.shape}")
    if tolerance < 0:
        raise DataError(f"tolerance must be >= 0 pixels; got {tolerance}")
    if not mask.any():
        return np.zeros((0, 2), dtype=np.float64)
    comp = largest_component(mask)
    y0, y1, x0, x1 = bounding_box(comp)  # type: ignore[misc]  # not empty (checked above)
    crop = fill_holes(comp[y0:y1, x0:x1])
    ring = _raw_contour(crop, y0, x0)
    local_shape = crop.shape
    shift = np.array([x0, y0], dtype=np.float64)

    def exact(poly: np.ndarray) -> bool:
        return len(poly) >= 3 and np.array_equal(polygon_to_mask(poly - shift, local_shape), crop)

    tol = float(tolerance)
    poly = _simplify(ring, tol)
    while not exact(poly) and tol > 1e-3:
        tol /= 2.0
        poly = _simplify(ring, tol)
    if not exact(poly):
        poly = _simplify(ring, 0.0)  # only collinear points removed
    if polygon_area(poly, signed=True) < 0:
        poly = poly[::-1]
    return np.ascontiguousarray(poly, dtype=np.float64)
