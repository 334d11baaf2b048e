"""Synthetic data for the Fiji command tests (movies, seed RoiSets, ground truth)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np


def hyperstack(root: Path, n_frames: int = 8, seed: int = 7):
    """A 2-channel time-lapse (channel 2 = channel 1 mirrored) and its ground truth labels."""
    from rescunet_ij import api
    from rescunet_ij.sample_data import synthetic_movie

    sm = synthetic_movie(n_frames, (96, 96), n_objects=3, radius=(7.0, 10.0), seed=seed)
    two = np.stack([sm.images, sm.images[:, ::-1, :]], axis=1)  # t c y x
    movie = api.as_movie(two, dims="tcyx")
    path = api.write_movie(root / "hyper.tif", movie)
    return path, movie, sm.labels


def labels_movie_images(labels: np.ndarray) -> np.ndarray:
    """The images of the synthetic movie of :func:`hyperstack` (channel 1), regenerated."""
    from rescunet_ij.sample_data import synthetic_movie

    sm = synthetic_movie(labels.shape[0], labels.shape[1:], n_objects=3, radius=(7.0, 10.0), seed=7)
    assert (sm.labels == labels).all()
    return sm.images


def outlines_c1(labels: np.ndarray, frames) -> list:
    """Ground-truth outlines of ``frames`` (0-based) placed on channel 1."""
    from rescunet_ij.demo import labels_to_outlines

    return [dataclasses.replace(o, c=0) for o in labels_to_outlines(labels, frames)]


def extra_rois() -> list:
    """ROIs a propagation must leave alone: a point, a line, and a polygon on channel 2."""
    import roifile

    point = roifile.ImagejRoi.frompoints([[10.0, 10.0]], c=0, z=0, t=2)
    point.roitype = roifile.ROI_TYPE.POINT
    point.name = "keep-point"
    line = roifile.ImagejRoi.frompoints([[5.0, 5.0], [40.0, 30.0]], c=0, z=0, t=0)
    line.roitype = roifile.ROI_TYPE.LINE
    line.x1, line.y1, line.x2, line.y2 = 5.0, 5.0, 40.0, 30.0
    line.name = "keep-line"
    poly = roifile.ImagejRoi.frompoints([[60.0, 60.0], [80.0, 60.0], [70.0, 80.0]], c=1, z=0, t=0)
    poly.roitype = roifile.ROI_TYPE.POLYGON
    poly.name = "keep-channel2"
    return [point, line, poly]


def read_zip(path: Path) -> list:
    """The ROIs of a RoiSet.zip (roifile)."""
    import roifile

    return list(roifile.roiread(str(path)))
