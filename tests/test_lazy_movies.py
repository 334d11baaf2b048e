"""Lazy movies: bigger-than-memory TIFFs, OME-Zarr, frame-by-frame label output (issue 12, part 1).

The network in these tests is a tiny random-weight ReSCU-Net answering with an oracle (bright
pixels near the previous mask, ``benchmarks/_standins.py``): the thing under test is how the
movie is read and held, and the oracle makes the outlines depend on the pixels actually read.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile

from rescunet_ij import api
from rescunet_ij.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_large_movie", BENCH / "bench_large_movie.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench():
    return _bench()


@pytest.fixture(scope="module")
def model(bench):
    return bench.tiny_model(base_filters=4, input_size=32)


def _key(outlines):
    return {(o.frame, o.object_id): np.round(np.asarray(o.polygon), 6) for o in outlines}


def _same(a, b) -> bool:
    ka, kb = _key(a), _key(b)
    return ka.keys() == kb.keys() and all(np.array_equal(ka[k], kb[k]) for k in ka)


# ---------------------------------------------------------------- a movie bigger than the budget

_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    sys.path.insert(0, {bench!r})
    import bench_large_movie as b
    from rescunet_ij import api

    model = b.tiny_model(base_filters=4, input_size=32)
    tracks = np.load({tracks!r})
    movie = api.read_movie({movie!r})           # the default rule: big -> lazy
    lazy = type(movie.data).__module__.split(".")[0] == "dask"
    config = api.propagate_config(device="cpu", motion="off")
    seeds = b.seed_outlines(tracks, {size})
    api.propagate(movie, seeds, model, end_frame=1, config=config)   # warm-up
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run = api.propagate(movie, seeds, model, config=config)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({{
        "lazy": lazy, "base_kb": base, "peak_kb": peak, "lost": len(run.lost),
        "iou": b.tracking_iou(run.predicted, tracks, {size}),
        "outlines": [[o.frame, o.object_id, np.asarray(o.polygon).tolist()] for o in run.predicted],
    }}))
    """
)


@pytest.mark.slow  # ~20 s on 2 quiet cores: writes 285 MB, a subprocess imports torch
def test_a_bigtiff_bigger_than_the_memory_budget_propagates_lazily(tmp_path, bench, model):
    """A 285 MB BigTIFF propagates with < 250 MB of extra RSS; outlines as an in-memory run."""
    frames, size, n_obj = 34, 2048, 3  # 285 MB
    movie_path = tmp_path / "big.tif"
    tracks = bench.write_big_movie(movie_path, frames, size, n_obj)
    budget_mb = 250
    assert movie_path.stat().st_size > budget_mb * 2**20  # eager reading could not fit
    np.save(tmp_path / "tracks.npy", tracks)
    code = _CHILD.format(
        bench=str(BENCH), tracks=str(tmp_path / "tracks.npy"), movie=str(movie_path), size=size
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["lazy"]
    grown_mb = (got["peak_kb"] - got["base_kb"]) / 1024
    assert grown_mb < budget_mb, f"propagation grew RSS by {grown_mb:.0f} MB"
    assert got["lost"] == 0
    assert got["iou"] > 0.9
    # The same propagation over the first 6 frames held in memory gives the same outlines.
    head = api.read_movie(movie_path, lazy=True).isel(t=slice(0, 6))
    in_memory = api.as_movie(np.asarray(head.values), dims="tzcyx")
    ref = api.propagate(
        in_memory,
        bench.seed_outlines(tracks, size),
        model,
        config=api.propagate_config(device="cpu", motion="off"),
    )
    from rescunet_ij.types import Outline

    lazy_head = [Outline(k, f, np.asarray(p)) for f, k, p in got["outlines"] if f < 6]
    assert len(lazy_head) == 5 * n_obj
    assert _same(lazy_head, ref.predicted)


def test_lazy_reading_keeps_the_truncation_check(tmp_path):
    data = np.arange(6 * 2 * 32 * 40, dtype=np.uint16).reshape(6, 2, 32, 40)
    api.write_movie(tmp_path / "m.tif", api.as_movie(data, dims="tcyx"))
    whole = (tmp_path / "m.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="truncated"):
        api.read_movie(tmp_path / "cut.tif", lazy=True)
    mv = api.read_movie(tmp_path / "m.tif", lazy=True)
    assert type(mv.data).__module__.startswith("dask")
    assert mv.dims == ("t", "z", "c", "y", "x") and mv.shape == (6, 1, 2, 32, 40)
    assert np.array_equal(mv.isel(z=0).values, data)
    with pytest.raises(DataError, match="lazy must be"):
        api.read_movie(tmp_path / "m.tif", lazy="yes")
    # A lazy movie is written back plane by plane, into the very same file.
    api.write_movie(tmp_path / "again.tif", mv)
    assert (tmp_path / "again.tif").read_bytes() == whole


def test_a_lazy_plane_that_cannot_be_decoded_is_a_data_error(tmp_path):
    from rescunet_ij.io.movie import lazy_plane_series

    data = np.random.default_rng(0).integers(0, 999, (4, 32, 40), dtype=np.uint16)
    path = tmp_path / "z.tif"
    tifffile.imwrite(path, data, compression="zlib", imagej=True, metadata={"axes": "TYX"})
    with tifffile.TiffFile(path) as tif:  # spoil the compressed bytes of the third page
        off, n = tif.pages[2].dataoffsets[0], tif.pages[2].databytecounts[0]
    raw = bytearray(path.read_bytes())
    raw[off : off + n] = b"\x00" * n
    path.write_bytes(bytes(raw))
    series, _ = lazy_plane_series(api.read_movie(path, lazy=True))
    assert np.array_equal(series[1], data[1])
    with pytest.raises(DataError, match="cannot read plane 3"):
        series[2]


def test_a_lazy_plane_with_nan_stops_propagation_there(tmp_path, bench, model):
    tracks = bench.write_big_movie(tmp_path / "m.tif", 5, 96, 2)
    data = api.read_movie(tmp_path / "m.tif", lazy=False).values.astype(np.float32)
    data[3, 0, 0, 5, 5] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", data[:, 0, 0], imagej=True, metadata={"axes": "TYX"})
    movie = api.read_movie(tmp_path / "nan.tif", lazy=True)
    seen = []
    with pytest.raises(DataError, match="frame 4 .*NaN"):
        api.propagate(movie, bench.seed_outlines(tracks, 96), model, on_frame=seen.append)
    assert [fr.frame for fr in seen] == [1, 2]  # the frames before it were propagated


# ----------------------------------------------------------------------- OME-Zarr equals TIFF


def test_omezarr_and_tiff_movies_give_the_same_rois(tmp_path, bench, model):
    from rescunet_ij.io.omezarr import write_omezarr

    frames, size = 6, 128
    tracks = bench.write_big_movie(tmp_path / "plain.tif", frames, size, 4)
    eager = api.read_movie(tmp_path / "plain.tif", lazy=False)
    eager.attrs.update(pixel_size=0.5, unit="µm", frame_interval=2.0, time_unit="s")
    api.write_movie(tmp_path / "m.tif", eager)
    write_omezarr(tmp_path / "m.zarr", eager)
    tifffile.imwrite(
        tmp_path / "zlib.tif", eager.values[:, 0, 0], compression="zlib", metadata={"axes": "TYX"}
    )
    seeds = bench.seed_outlines(tracks, size)
    zarr_movie = api.read_movie(tmp_path / "m.zarr")
    assert type(zarr_movie.data).__module__.startswith("dask")
    assert zarr_movie.attrs["pixel_size"] == 0.5 and zarr_movie.attrs["unit"] == "µm"
    assert zarr_movie.attrs["frame_interval"] == 2.0
    runs = {
        "tiff": api.propagate(api.read_movie(tmp_path / "m.tif"), seeds, model),
        "omezarr": api.propagate(zarr_movie, seeds, model),
        "lazy tiff": api.propagate(api.read_movie(tmp_path / "m.tif", lazy=True), seeds, model),
        "zlib tiff": api.propagate(api.read_movie(tmp_path / "zlib.tif", lazy=True), seeds, model),
    }
    ref = runs["tiff"].predicted
    assert len(ref) == (frames - 1) * 4
    assert bench.tracking_iou(ref, tracks, size) > 0.9
    for name, run in runs.items():
        assert _same(run.predicted, ref), name
    # ROIs written for both movies are the same file content.
    a = api.write_outlines(tmp_path / "a.zip", runs["tiff"].outlines, eager)
    b = api.write_outlines(tmp_path / "b.zip", runs["omezarr"].outlines, zarr_movie)
    assert [o.polygon.tolist() for o in api.read_outlines(a, eager)] == [
        o.polygon.tolist() for o in api.read_outlines(b, zarr_movie)
    ]


def test_omezarr_errors_are_clear(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(DataError, match="no OME-Zarr"):
        api.read_movie(tmp_path / "empty.zarr")
    with pytest.raises(DataError, match="no such"):
        api.read_movie(tmp_path / "missing.zarr")


# -------------------------------------------------------------- frame-by-frame outputs, samples


def _old_label_file(path, outlines, shape):
    """The writer before issue 12: the whole label movie in memory, then one imwrite."""
    from rescunet_ij.geometry import polygon_to_mask

    labels = np.zeros(shape, dtype=np.uint16)
    for o in outlines:
        labels[o.frame][polygon_to_mask(o.polygon, shape[1:])] = o.object_id
    tifffile.imwrite(path, labels, imagej=True, metadata={"axes": "TYX"})


def test_labels_are_written_frame_by_frame_as_before(tmp_path):
    sim = api.synthetic_movie(12, (384, 384), n_objects=4, seed=4)
    movie = api.as_movie(sim.images, dims="tyx")
    outlines = api.outlines_from_labels(sim.labels)
    _old_label_file(tmp_path / "old.tif", outlines, sim.labels.shape)
    tracemalloc.start()
    api.write_labels(tmp_path / "new.tif", outlines, movie)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    whole = sim.labels.nbytes  # 3.4 MB; one frame is 0.3 MB
    assert peak < whole / 4, f"{peak / 2**20:.1f} MB traced for a {whole / 2**20:.0f} MB movie"
    assert (tmp_path / "new.tif").read_bytes() == (tmp_path / "old.tif").read_bytes()
    assert np.array_equal(tifffile.imread(tmp_path / "new.tif"), sim.labels)


def test_training_samples_from_a_lazy_series_equal_those_from_memory(tmp_path):
    from rescunet_ij.data.samples import samples_from_masks
    from rescunet_ij.io.movie import lazy_plane_series, select_plane_series

    sim = api.synthetic_movie(8, (96, 96), n_objects=3, seed=7)
    tifffile.imwrite(tmp_path / "m.tif", sim.images, imagej=True, metadata={"axes": "TYX"})
    movie = api.read_movie(tmp_path / "m.tif", lazy=True)
    lazy, _ = lazy_plane_series(movie)
    eager, _ = select_plane_series(movie)
    masks = {k: {t: sim.labels[t] == k for t in range(8)} for k in (1, 2, 3)}
    a = samples_from_masks(eager, masks, 24)
    b = samples_from_masks(lazy, masks, 24)
    assert len(a) == len(b) == 21
    for x, y in zip(a, b):
        assert x.name == y.name
        assert np.array_equal(x.image, y.image) and np.array_equal(x.prev_mask, y.prev_mask)
    # Frame by frame: each plane read at most once per pass over the movie (global shifts,
    # object shifts, crops), never once per object.
    assert lazy.reads <= 3 * 8


def test_make_training_set_streams_a_lazy_movie_to_the_same_set(tmp_path):
    """api.make_training_set reads a lazy movie plane by plane and writes the same samples."""
    from rescunet_ij.io.training_set import read_training_set

    sim = api.synthetic_movie(6, (80, 80), n_objects=2, seed=3)
    tifffile.imwrite(tmp_path / "m.tif", sim.images, imagej=True, metadata={"axes": "TYX"})
    sets = {}
    for lazy in (False, True):
        movie = api.read_movie(tmp_path / "m.tif", lazy=lazy)
        outlines = api.outlines_from_labels(sim.labels)
        out = tmp_path / f"set_{lazy}"
        api.make_training_set(movie, outlines, out, subimage_size=24)
        sets[lazy] = read_training_set(out)[0]
    assert len(sets[False]) == len(sets[True]) > 0
    for x, y in zip(sets[False], sets[True]):
        assert x.name == y.name
        assert np.array_equal(x.image, y.image) and np.array_equal(x.prev_mask, y.prev_mask)


def test_bench_large_movie_measures_both_modes(tmp_path, bench):
    """The benchmark's own measurement (what its subprocesses run), in process and tiny."""
    import argparse

    tracks = bench.write_big_movie(tmp_path / "m.tif", 5, 96, 3)
    np.save(tmp_path / "t.npy", tracks)
    common = dict(movie=str(tmp_path / "m.tif"), tracks=str(tmp_path / "t.npy"), size=96)
    import torch

    threads = torch.get_num_threads()
    try:  # child() sets torch's thread count for its process: give this one its own back
        lazy = bench.child(argparse.Namespace(mode="lazy", ref_frames=3, threads=1, **common))
        memory = bench.child(argparse.Namespace(mode="memory", ref_frames=3, threads=1, **common))
    finally:
        torch.set_num_threads(threads)
    assert lazy["lazy"] and not memory["lazy"]
    assert (lazy["frames"], memory["frames"]) == (5, 3)
    assert lazy["object_frames"] == 4 * 3 and memory["object_frames"] == 2 * 3
    assert lazy["iou"] > 0.9 and lazy["peak_rss_mb"] >= lazy["rss_before_mb"] > 0
    table = bench.markdown(
        {
            "settings": {"size": 96, "frames": 5, "objects": 3, "threads": 1},
            "file_bytes": (tmp_path / "m.tif").stat().st_size,
            "write_s": 0.1,
            "lazy": lazy,
            "in_memory": memory,
            "pairs": [{**lazy, "mode": "lazy-head"}, memory],
            "head_object_frames_per_s": {"lazy-head": 2.0, "memory": 2.0},
            "throughput_ratio": 1.0,
            "machine": bench.machine_info(),
        }
    )
    assert "| 5 |" in table and "ratio 1.00" in table
