"""``propagate-batch``: many movies from a manifest on a real Dask LocalCluster.

One cluster of 2 worker processes (with the GPU-pinning plugin, given two made-up GPU ids; the
workers stay on the CPU) serves the module. The model is a real ReSCU-Net file with random weights
(biased towards foreground, propagated with ``keep_going`` so every frame is computed): the tests
compare the batch with single-movie propagation, which needs no trained model.
"""

from __future__ import annotations

import csv
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from rescunet_ij import api
from rescunet_ij.errors import ConfigError, DataError, MissingExtraError, OutputExistsError

pytest.importorskip("distributed")

# (frames, shape, objects, channels, first_frame, last_frame, channel): 1-based, as in the CSV
MOVIES = [
    (7, (64, 64), 2, 1, None, None, None),
    (6, (56, 72), 3, 1, 2, None, None),
    (8, (64, 64), 2, 2, None, 6, 2),
    (6, (48, 48), 1, 1, None, None, None),
    (7, (64, 56), 2, 1, None, None, None),
    (6, (64, 64), 3, 1, 1, 5, None),
]
KILLED_ROW = 3
BAD_ROW = 7  # a movie file that is not a TIFF


def _settings() -> dict:
    return dict(device="cpu", keep_going=True)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A model file, 6 movies with their seed RoiSets, a broken 7th movie and the manifest."""
    import torch

    from rescunet_ij.config import ModelConfig, NormalizationConfig
    from rescunet_ij.io.checkpoint import save_model
    from rescunet_ij.model import build_model

    root = tmp_path_factory.mktemp("batch")
    torch.manual_seed(0)
    mc = ModelConfig(input_size=32, base_filters=4, concatenation_level=1)
    net = build_model(mc)
    with torch.no_grad():  # random weights, biased towards foreground so objects are followed
        net.head.bias.copy_(torch.tensor([0.0, 0.5]))
    model = save_model(root / "models" / "random.rescunet", net, mc, NormalizationConfig())
    (root / "in").mkdir()
    lines = ["movie,seeds,output,first_frame,last_frame,channel,labels"]
    for i, (t, shape, n, channels, first, last, channel) in enumerate(MOVIES):
        sim = api.synthetic_movie(t, shape, n_objects=n, radius=(5.0, 7.0), seed=40 + i)
        images = sim.images
        if channels == 2:  # the objects in channel 2, noise in channel 1
            images = np.stack([images[::-1, ::-1, ::-1], images], axis=1)
        mv = api.as_movie(images, dims="tcyx" if channels == 2 else "tyx")
        api.write_movie(root / "in" / f"movie{i + 1}.tif", mv)
        seed_frame = (first or 1) - 1
        seeds = api.outlines_from_labels(sim.labels, frames=[seed_frame])
        api.write_outlines(root / "in" / f"seeds{i + 1}.zip", seeds, mv)
        cells = [
            f"in/movie{i + 1}.tif",
            f"in/seeds{i + 1}.zip",
            f"out/movie{i + 1}_rois.zip",
            "" if first is None else str(first),
            "" if last is None else str(last),
            "" if channel is None else str(channel),
            "out/movie1_labels.tif" if i == 0 else "",
        ]
        lines.append(",".join(cells))
    (root / "in" / "broken.tif").write_bytes(b"this is not a TIFF file" * 10)
    (root / "in" / "seeds7.zip").write_bytes((root / "in" / "seeds1.zip").read_bytes())
    lines.append("in/broken.tif,in/seeds7.zip,out/broken_rois.zip,,,,")
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return root, manifest, model


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes, as propagate-batch starts one, with 2 'GPUs'."""
    from distributed import Client

    with api.local_cluster(2, gpus=["7", "5"]) as cl, Client(cl) as client:
        client.wait_for_workers(2)
        yield cl, client


def _rows(path: Path) -> dict[int, dict[str, str]]:
    with path.open(newline="") as fh:
        return {int(r["row"]): r for r in csv.DictReader(fh)}


def _shapes(outlines) -> list[tuple]:
    return [(o.object_id, o.frame, o.z, o.c, np.round(o.polygon, 3).tolist()) for o in outlines]


# ----------------------------------------------------------------------------- the manifest
def test_manifest_rows_are_resolved_against_its_folder_and_one_based(batch):
    root, manifest, _ = batch
    rows = api.read_manifest(manifest)
    assert [r.row for r in rows] == list(range(1, 8))
    assert rows[0].movie == (root / "in" / "movie1.tif").resolve()
    assert rows[0].labels == (root / "out" / "movie1_labels.tif").resolve()
    assert (rows[1].first_frame, rows[2].last_frame, rows[2].channel) == (1, 5, 1)  # 0-based
    assert rows[3].first_frame is rows[3].channel is rows[3].report is None


def test_a_bad_manifest_names_every_row_and_column_and_runs_nothing(batch, tmp_path):
    root, _, model = batch
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "Movie,seeds,output,first_frame,z\n"
        f"{root}/in/movie1.tif,{root}/in/seeds1.zip,a.zip,0,\n"
        f"{root}/in/nope.tif,{root}/in/seeds2.zip,b.zip,x,2\n"
        "\n"
        "# a comment line\n"
        f"{root}/in/movie3.tif,{root}/in/seeds3.zip,a.zip,,\n"
        f"{root}/in/movie4.tif,,c.roi,,\n"
    )
    with pytest.raises(DataError) as info:
        api.propagate_batch(bad, model, in_process=True)
    text = str(info.value)
    for part in (
        "row 1 (line 2), column first_frame: frame numbers start at 1 (as in ImageJ); got 0",
        f"row 2 (line 3), column movie: {root}/in/nope.tif does not exist",
        "row 2 (line 3), column first_frame: 'x' is not a whole number",
        "row 3 (line 6), column output: a.zip is also written by row 1 (line 2), column output",
        "row 4 (line 7), column seeds: empty",
        "row 4 (line 7), column output: c.roi should end in .zip",
        "nothing was run",
    ):
        assert part in text
    assert not (tmp_path / "bad.results.csv").exists() and not (tmp_path / "a.zip").exists()
    bad.write_text("movie,seeds,outptu\nm.tif,s.zip,o.zip\n")
    with pytest.raises(DataError, match="unknown column.s. 'outptu'; missing column.s. output"):
        api.read_manifest(bad)
    with pytest.raises(
        ConfigError, match=r"row\(s\) 9 not in the manifest: its movies are rows 1..7"
    ):
        api.propagate_batch(batch[1], model, rows=[9], in_process=True)


def test_the_results_table_never_replaces_another_file(batch, tmp_path):
    _, manifest, model = batch
    precious = tmp_path / "notes.csv"
    precious.write_text("my,own\n1,2\n")
    with pytest.raises(OutputExistsError, match="not a results table of propagate-batch"):
        api.propagate_batch(manifest, model, results=precious, in_process=True)
    assert precious.read_text() == "my,own\n1,2\n"


def test_without_distributed_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'rescunet-ij\[cluster\]'"):
        api.local_cluster(1)


# ----------------------------------------------------------------------------- GPU pinning
def test_gpu_assignment_follows_the_worker_number():
    from rescunet_ij.api._batch import _gpu_for_worker

    gpus = ["2", "3"]
    assert [_gpu_for_worker(n, gpus) for n in (0, 1, 2, 3)] == ["2", "3", "2", "3"]
    # dask-jobqueue names workers <job>-<process>: the process number picks the GPU of its node
    assert _gpu_for_worker("SLURMCluster-12-1", gpus) == "3"
    assert _gpu_for_worker("SLURMCluster-12-0", gpus) == "2"
    assert _gpu_for_worker("gpu-node", gpus) == _gpu_for_worker("gpu-node", gpus) in gpus
    assert _gpu_for_worker(0, []) is None


# ----------------------------------------------------------------------------- on the cluster
@pytest.mark.slow
def test_batch_matches_single_movies_and_survives_a_killed_worker(batch, cluster, tmp_path):
    """2 workers, 6 movies and a broken one; the worker that starts row 3 is killed (SIGKILL)."""
    import torch
    from distributed import WorkerPlugin

    root, manifest, model = batch
    _, client = cluster
    marker = tmp_path / "killed.pid"

    class KillOnce(WorkerPlugin):
        """Kill the worker process the moment it starts row 3's movie (once, by a marker)."""

        name = "test-kill-once"

        def __init__(self, marker: str) -> None:
            self.marker = marker

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and f"-row{KILLED_ROW}-" in str(key):
                if not os.path.exists(self.marker):
                    Path(self.marker).write_text(str(os.getpid()))
                    os.kill(os.getpid(), signal.SIGKILL)

    client.register_plugin(KillOnce(str(marker)))
    seen = []
    try:
        out = api.propagate_batch(
            manifest, model, client=client, on_result=seen.append, **_settings()
        )
    finally:
        client.unregister_worker_plugin(KillOnce.name)
    killed = int(marker.read_text())
    status = {r.row: r.status for r in out.results}
    assert status == {**{i: "ok" for i in range(1, 7)}, BAD_ROW: "failed"}
    bad = out.results[BAD_ROW - 1]
    assert "broken.tif" in bad.error and bad.lost == bad.rois == 0
    assert sorted(r.row for r in seen) == list(range(1, 8))
    # Row 3 ran again, on another process; the killed one finished nothing.
    assert out.results[KILLED_ROW - 1].pid != killed
    assert killed not in {r.pid for r in out.results}
    # The model was loaded once per worker process, however many movies it ran.
    by_pid: dict[int, list] = {}
    for r in out.results[:6]:
        by_pid.setdefault(r.pid, []).append(r)
    assert all(r.model_loads == 1 for r in out.results[:6])
    assert max(len(v) for v in by_pid.values()) >= 2
    # The results table on disk says the same.
    table = _rows(out.results_path)
    assert {i: r["status"] for i, r in table.items()} == status
    assert "broken.tif" in table[BAD_ROW]["error"]
    assert out.results_path == manifest.with_name("manifest.results.csv")

    # The same ROIs as one propagation per movie, in this process (one thread, as the workers).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = api.propagate_config(**_settings())
        for row, r in zip(api.read_manifest(manifest)[:6], out.results):
            mv = api.read_movie(row.movie)
            seeds = api.read_outlines(row.seeds, mv)
            single = api.propagate(
                mv,
                seeds,
                model,
                start_frame=row.first_frame,
                end_frame=row.last_frame,
                channel=row.channel,
                config=cfg,
            )
            reference = api.write_outlines(tmp_path / f"single{row.row}.zip", single.outlines, mv)
            from_batch = api.read_outlines(row.output, mv)  # the file is whole: it reads back
            assert _shapes(from_batch) == _shapes(api.read_outlines(reference, mv)), row.row
            assert r.rois == len(single.outlines) and r.predicted == len(single.predicted)
            assert r.lost == len(single.lost) and r.doubtful == len(single.doubtful())
    finally:
        torch.set_num_threads(threads)
    labels = api.read_movie(root / "out" / "movie1_labels.tif")
    assert labels.sizes["t"] == MOVIES[0][0] and int(labels.max()) == MOVIES[0][2]
    assert not list((root / "out").glob(".*.tmp"))  # no temporary file left behind

    # Every worker (the restarted one too) was pinned to its own "GPU" before any task ran.
    client.wait_for_workers(2)
    info = client.scheduler_info()["workers"]
    pinned = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
    assert {info[a]["name"]: g for a, g in pinned.items()} == {0: "7", 1: "5"}


@pytest.mark.slow
def test_a_rerun_skips_finished_movies_and_a_row_runs_alone(batch, cluster):
    """The CLI on the same cluster (--scheduler): finished movies are skipped, a half-finished
    one and the broken one fail (exit 2); then ``--row 1 --overwrite`` (a SLURM array task)
    redoes one movie in this process."""
    from rescunet_ij import cli

    root, manifest, model = batch
    cl, _ = cluster
    outputs = sorted((root / "out").glob("movie*_rois.zip"))
    if len(outputs) < 6:
        pytest.skip("needs the outputs of the previous test")
    (root / "out" / "movie1_labels.tif").unlink()  # row 1 is half done now
    before = {p: p.stat().st_mtime_ns for p in outputs}
    earlier = _rows(manifest.with_name("manifest.results.csv"))
    args = ["propagate-batch", str(manifest), "--model", str(model), "--device", "cpu"]
    code = cli.main([*args, "--keep-going", "--scheduler", cl.scheduler_address])
    assert code == 2  # the broken movie failed again, and the half-done one
    assert {p: p.stat().st_mtime_ns for p in outputs} == before  # nothing rewritten
    table = _rows(manifest.with_name("manifest.results.csv"))
    assert [table[i]["status"] for i in range(1, 8)] == ["failed"] + ["skipped"] * 5 + ["failed"]
    assert "movie1_rois.zip exist(s) but movie1_labels.tif not" in table[1]["error"]
    assert "--overwrite" in table[1]["error"]
    for i in range(2, 7):  # a skipped row keeps the figures of the run that made it
        assert table[i]["rois"] == earlier[i]["rois"] and table[i]["worker"] == earlier[i]["worker"]

    assert cli.main([*args, "--keep-going", "--row", "1", "--overwrite"]) == 0
    row1 = root / "out" / "movie1_rois.zip"
    assert row1.stat().st_mtime_ns != before[row1] and (root / "out" / "movie1_labels.tif").exists()
    assert all(p.stat().st_mtime_ns == before[p] for p in outputs if p != row1)
    (only,) = _rows(manifest.with_name("manifest.results-row1.csv")).values()
    assert only["status"] == "ok" and only["worker"].endswith(f":{os.getpid()}")
    assert only["rois"] == earlier[1]["rois"]
