"""Synthetic time-lapse movies with ground truth: moving, deforming fluorescent nuclei-like blobs.

Used by the tests, the demo and the benchmarks, so the package ships its own sample data (no licence
questions, any size). The images look like a widefield nuclear stain: textured, blurred objects on a
dim uneven background with shot noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass
class SyntheticMovie:
    """A synthetic movie and its ground truth."""

    images: np.ndarray  # (T, Y, X) uint16
    labels: np.ndarray  # (T, Y, X) uint16, label = object id (1..n), consistent over time


def _blob_mask(shape, cy, cx, radii_coeffs, phase, rot):
    """Mask of a star-convex blob: radius r(theta) = r0 + sum_k a_k cos(k theta + phase_k)."""
    r0 = radii_coeffs[0]
    reach = int(np.ceil(r0 + np.abs(radii_coeffs[1:]).sum() + 2))
    y0, y1 = max(int(cy) - reach, 0), min(int(cy) + reach + 1, shape[0])
    x0, x1 = max(int(cx) - reach, 0), min(int(cx) + reach + 1, shape[1])
    out = np.zeros(shape, dtype=bool)
    if y1 <= y0 or x1 <= x0:
        return out
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dy, dx = yy + 0.5 - cy, xx + 0.5 - cx
    theta = np.arctan2(dy, dx) - rot
    r = np.full_like(theta, r0)
    for k, a in enumerate(radii_coeffs[1:], start=2):
        r += a * np.cos(k * theta + phase[k - 2])
    out[y0:y1, x0:x1] = np.hypot(dy, dx) <= r
    return out


def synthetic_movie(
    n_frames: int = 20,
    shape: tuple[int, int] = (128, 128),
    n_objects: int = 3,
    *,
    radius: tuple[float, float] = (9.0, 14.0),
    speed: float = 1.5,
    deformation: float = 0.15,
    noise: float = 0.04,
    seed: int = 0,
) -> SyntheticMovie:
    """Simulate ``n_objects`` blobs moving and deforming over ``n_frames`` frames.

    Parameters
    ----------
    n_frames, shape, n_objects
        Movie size and number of objects (ids 1..n_objects).
    radius
        Range of mean object radii in pixels.
    speed
        Typical displacement per frame in pixels (random walk with momentum; objects bounce off
        the borders and repel each other so they rarely touch).
    deformation
        Relative amplitude of the shape harmonics, which drift from frame to frame.
    noise
        Relative Gaussian + shot noise level.
    seed
        Random seed: the same seed gives the same movie.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    r0 = rng.uniform(*radius, size=n_objects)
    margin = radius[1] + 4
    # Place objects apart from each other.
    pos = np.zeros((n_objects, 2))
    for i in range(n_objects):
        for _ in range(200):
            p = rng.uniform([margin, margin], [h - margin, w - margin])
            if all(np.hypot(*(p - pos[j])) > r0[i] + r0[j] + 6 for j in range(i)):
                break
        pos[i] = p
    vel = rng.normal(0, speed, size=(n_objects, 2))
    coeffs = rng.normal(0, deformation, size=(n_objects, 3)) * r0[:, None]
    phase = rng.uniform(0, 2 * np.pi, size=(n_objects, 3))
    rot = rng.uniform(0, 2 * np.pi, size=n_objects)
    brightness = rng.uniform(0.55, 1.0, size=n_objects)
    texture_seed = rng.integers(0, 2**31, size=n_objects)

    background = ndi.gaussian_filter(rng.normal(0, 1, size=shape), 20)
    background = 0.08 + 0.04 * background / (np.abs(background).max() + 1e-9)

    images = np.zeros((n_frames, h, w), dtype=np.uint16)
    labels = np.zeros((n_frames, h, w), dtype=np.uint16)
    for t in range(n_frames):
        frame = background.copy()
        lab = np.zeros(shape, dtype=np.uint16)
        for i in range(n_objects):
            m = _blob_mask(shape, pos[i, 0], pos[i, 1], np.r_[r0[i], coeffs[i]], phase[i], rot[i])
            trng = np.random.default_rng(texture_seed[i] + t)
            tex = ndi.gaussian_filter(trng.normal(0, 1, size=shape), 2.0)
            inten = brightness[i] * (0.85 + 0.6 * tex)
            frame = np.where(m, np.maximum(frame, inten), frame)
            lab[m & (lab == 0)] = i + 1
        frame = ndi.gaussian_filter(frame, 1.2)
        frame = (
            frame
            + rng.normal(0, noise, size=shape)
            + noise * np.sqrt(np.clip(frame, 0, None)) * rng.normal(0, 1, size=shape)
        )
        images[t] = np.clip(frame * 3000 + 200, 0, 65535).astype(np.uint16)
        labels[t] = lab
        # Motion: momentum random walk, bounce off borders, repel neighbours.
        vel = 0.7 * vel + rng.normal(0, speed * 0.6, size=vel.shape)
        for i in range(n_objects):
            for j in range(n_objects):
                if i != j:
                    d = pos[i] - pos[j]
                    dist = np.hypot(*d) + 1e-6
                    if dist < r0[i] + r0[j] + 8:
                        vel[i] += d / dist * speed
        pos += vel
        for ax, lim in enumerate((h, w)):
            low, high = pos[:, ax] < margin, pos[:, ax] > lim - margin
            vel[low | high, ax] *= -1
            pos[:, ax] = np.clip(pos[:, ax], margin, lim - margin)
        coeffs += rng.normal(0, deformation * 0.15, size=coeffs.shape) * r0[:, None]
        coeffs = np.clip(coeffs, -0.3 * r0[:, None], 0.3 * r0[:, None])
        rot += rng.normal(0, 0.08, size=n_objects)
    return SyntheticMovie(images=images, labels=labels)


@dataclass
class DriftedMovie:
    """A movie moved by simulated stage drift, with its labels and the offsets applied."""

    images: np.ndarray  # (T, Y, X), the input's dtype
    labels: np.ndarray | None  # (T, Y, X) moved the same way, or None
    offsets: np.ndarray  # (T, 2) int: (dy, dx) of each frame's content against frame 0


def drift_random_walk(
    n_frames: int,
    step: tuple[float, float] = (10.0, 100.0),
    *,
    bound: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Offsets ``(T, 2)`` of a stage drifting by a random walk.

    Each frame moves ``step[0]..step[1]`` pixels in a random direction; a step that would take the
    total offset beyond ``bound`` (on either axis) is reversed, so the sample stays in view.
    Frame 0 has offset ``(0, 0)``.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros((n_frames, 2), dtype=np.int64)
    for t in range(1, n_frames):
        length = rng.uniform(*step)
        angle = rng.uniform(0, 2 * np.pi)
        d = np.round(length * np.array([np.sin(angle), np.cos(angle)])).astype(np.int64)
        nxt = out[t - 1] + d
        if bound is not None:
            over = np.abs(nxt) > bound
            nxt[over] = out[t - 1][over] - d[over]
        out[t] = nxt
    return out


def apply_drift(
    images: np.ndarray,
    offsets: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    seed: int = 0,
) -> DriftedMovie:
    """Move each frame's content by ``offsets[t]``, as a drifting stage under a fixed camera.

    Parameters
    ----------
    images
        ``(T, Y, X)`` frames.
    offsets
        ``(T, 2)`` integer ``(dy, dx)`` per frame (:func:`drift_random_walk`).
    labels
        Ground truth moved the same way (objects pushed out of view disappear).
    seed
        For the noise of the area the stage brought into view.

    Returns
    -------
    DriftedMovie
        The area that comes into view is filled as a microscope would show empty sample: the
        frame's background level (its 10th percentile) with noise of the background's spread.
    """
    rng = np.random.default_rng(seed)
    images = np.asarray(images)
    offsets = np.asarray(offsets, dtype=np.int64)
    out = np.empty_like(images)
    lab_out = None if labels is None else np.zeros_like(labels)
    _, h, w = images.shape
    for t, (dy, dx) in enumerate(offsets):
        frame = images[t].astype(np.float64)
        level = np.percentile(frame, 10)
        spread = frame[frame <= np.percentile(frame, 30)].std() + 1e-9
        moved = rng.normal(level, spread, size=frame.shape)
        ys, ye, xs, xe = max(0, dy), min(h, h + dy), max(0, dx), min(w, w + dx)
        if ye > ys and xe > xs:
            moved[ys:ye, xs:xe] = frame[ys - dy : ye - dy, xs - dx : xe - dx]
            if lab_out is not None:
                lab_out[t, ys:ye, xs:xe] = labels[t, ys - dy : ye - dy, xs - dx : xe - dx]
        info = np.iinfo(images.dtype) if images.dtype.kind in "iu" else None
        if info is not None:
            moved = np.clip(np.round(moved), info.min, info.max)
        out[t] = moved.astype(images.dtype)
    return DriftedMovie(out, lab_out, offsets)


def with_drift(movie: SyntheticMovie, drift: tuple[int, int], *, seed: int = 0) -> SyntheticMovie:
    """``movie`` on a larger field that moves by ``drift`` pixels per frame (stage drift).

    Frame ``t`` of ``movie`` is placed ``t * drift`` pixels down/right of frame 0 on a canvas big
    enough for every frame (:func:`apply_drift` with a constant step), so nothing leaves the view;
    objects move by ``drift`` plus their own motion between frames.

    Parameters
    ----------
    movie
        A movie from :func:`synthetic_movie`.
    drift
        ``(dy, dx)`` whole pixels per frame; negative values move up/left.
    seed
        Seed of the background noise where the canvas shows no sample.

    Returns
    -------
    SyntheticMovie
        The larger movie and its labels (same object ids).
    """
    n, h, w = movie.images.shape
    dy, dx = (int(v) for v in drift)
    pad_y, pad_x = abs(dy) * (n - 1), abs(dx) * (n - 1)
    # Frame 0 sits where the drift leaves room for all later frames.
    top, left = (0 if dy >= 0 else pad_y), (0 if dx >= 0 else pad_x)
    padding = ((0, 0), (top, pad_y - top), (left, pad_x - left))
    level = np.median(movie.images)
    images = np.pad(movie.images, padding, constant_values=level)
    labels = np.pad(movie.labels, padding)
    offsets = np.array([[t * dy, t * dx] for t in range(n)])
    drifted = apply_drift(images, offsets, labels, seed=seed)
    return SyntheticMovie(images=drifted.images, labels=drifted.labels)
