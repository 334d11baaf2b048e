"""Shared fixtures: seeded synthetic movies and one tiny trained model per test session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Two cores on CI: keep torch from oversubscribing when pytest runs anything in parallel.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Wheels built for notebooks (and by the services the tests start) go to a folder of this run,
# never to the user's cache.
if "RESCUNET_IJ_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["RESCUNET_IJ_CACHE_DIR"] = tempfile.mkdtemp(prefix="rescunet-ij-test-cache-")

# Small, fast settings that still learn the synthetic task well.
TINY_SETTINGS = dict(
    input_size=32,
    base_filters=8,
    concatenation_level=1,
    batch_size=16,
    learning_rate=3e-3,
    validation_fraction=0.15,
    early_stopping_patience=4,
    device="cpu",
)


@pytest.fixture(scope="session")
def sim_train():
    from rescunet_ij.sample_data import synthetic_movie

    return synthetic_movie(24, (96, 96), n_objects=4, radius=(7.0, 10.0), seed=101)


@pytest.fixture(scope="session")
def sim_test():
    from rescunet_ij.sample_data import synthetic_movie

    return synthetic_movie(12, (96, 96), n_objects=4, radius=(7.0, 10.0), seed=202)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, sim_train) -> Path:
    """A small ReSCU-Net trained on a synthetic movie (about half a minute on 2 CPU cores)."""
    from rescunet_ij import api
    from rescunet_ij.demo import labels_to_outlines

    root = tmp_path_factory.mktemp("tiny_model")
    movie = api.as_movie(sim_train.images, dims="tyx")
    outlines = labels_to_outlines(sim_train.labels)
    tset = api.make_training_set(movie, outlines, root / "training_set", subimage_size=32)
    result = api.train(tset, root / "tiny.rescunet", epochs=25, seed=0, **TINY_SETTINGS)
    assert result.model_path.exists()
    return result.model_path


def gt_outlines(labels: np.ndarray, frames):
    from rescunet_ij.demo import labels_to_outlines

    return labels_to_outlines(labels, frames)
