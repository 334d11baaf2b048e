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


def with_drift(movie: SyntheticMovie, drift: tuple[int, int], *, seed: int = 0) -> SyntheticMovie:
    """``movie`` on a larger field that moves by ``drift`` pixels per frame (stage drift).

    Frame ``t`` of ``movie`` is placed ``t * drift`` pixels down/right of frame 0 on a canvas big
    enough for every frame; the rest of the canvas is background (the movie's median intensity
    with noise of 2 %). Objects therefore move by ``drift`` plus their own motion between frames,
    as under a drifting microscope stage.

    Parameters
    ----------
    movie
        A movie from :func:`synthetic_movie`.
    drift
        ``(dy, dx)`` whole pixels per frame; negative values move up/left.
    seed
        Seed of the background noise.

    Returns
    -------
    SyntheticMovie
        The larger movie and its labels (same object ids).
    """
    n, h, w = movie.images.shape
    dy, dx = (int(v) for v in drift)
    H, W = h + abs(dy) * (n - 1), w + abs(dx) * (n - 1)
    rng = np.random.default_rng(seed)
    level = float(np.median(movie.images))
    images = np.empty((n, H, W), dtype=movie.images.dtype)
    labels = np.zeros((n, H, W), dtype=movie.labels.dtype)
    for t in range(n):
        y0 = t * dy if dy >= 0 else (n - 1 - t) * -dy
        x0 = t * dx if dx >= 0 else (n - 1 - t) * -dx
        canvas = rng.normal(level, 0.02 * level, size=(H, W))
        canvas[y0 : y0 + h, x0 : x0 + w] = movie.images[t]
        images[t] = np.clip(canvas, 0, np.iinfo(images.dtype).max).astype(images.dtype)
        labels[t, y0 : y0 + h, x0 : x0 + w] = movie.labels[t]
    return SyntheticMovie(images=images, labels=labels)
