"""The command line, end to end, plus its handling of bad input (exit code 2, one clear line)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import roifile

from rescunet_ij import api
from rescunet_ij.cli import main
from rescunet_ij.demo import labels_to_outlines


@pytest.fixture(scope="module")
def files(tmp_path_factory, sim_train, sim_test):
    d = tmp_path_factory.mktemp("cli")
    train_movie = api.as_movie(sim_train.images, dims="tyx")
    test_movie = api.as_movie(sim_test.images, dims="tyx")
    from rescunet_ij.io.tiff import write_movie

    write_movie(d / "train.tif", train_movie)
    write_movie(d / "test.tif", test_movie)
    api.write_outlines(d / "train_rois.zip", labels_to_outlines(sim_train.labels), train_movie)
    api.write_outlines(
        d / "seeds.zip", labels_to_outlines(sim_test.labels, range(0, 1)), test_movie
    )
    return d


def test_make_training_set_train_propagate(files, tiny_model_path, capsys):
    d = files
    assert (
        main(
            [
                "make-training-set",
                str(d / "train.tif"),
                str(d / "train_rois.zip"),
                str(d / "ts"),
                "--subimage-size",
                "32",
                "--zip",
                str(d / "testtrain.zip"),
            ]
        )
        == 0
    )
    n = len([p for p in (d / "ts").iterdir() if p.is_dir()])
    assert n == 4 * 23  # 4 objects x 23 frames with a previous frame
    assert (d / "testtrain.zip").exists()
    rc = main(
        [
            "train",
            str(d / "ts"),
            "-o",
            str(d / "m.rescunet"),
            "--input-size",
            "32",
            "--base-filters",
            "4",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    assert (
        (d / "m.rescunet").exists()
        and (d / "m.history.csv").exists()
        and (d / "m.training.png").exists()
    )
    out = d / "out.zip"
    rc = main(
        [
            "propagate",
            str(d / "test.tif"),
            str(d / "seeds.zip"),
            "--model",
            str(tiny_model_path),
            "-o",
            str(out),
            "--labels",
            str(d / "labels.tif"),
            "--report",
            str(d / "report.csv"),
        ]
    )
    assert rc == 0
    rois = roifile.roiread(out)
    # A time-only stack is not a hyperstack in ImageJ's eyes: the frame is the stack position.
    frames = [r.t_position or r.position for r in rois]
    assert frames == sorted(frames) and set(frames) == set(range(1, 13))
    ids = [int(r.properties["object_id"]) for r in rois]
    assert ids[:4] == [1, 2, 3, 4] and ids[-4:] == [1, 2, 3, 4]
    import tifffile

    labels = tifffile.imread(d / "labels.tif")
    assert labels.shape == (12, 96, 96) and set(np.unique(labels)) == {0, 1, 2, 3, 4}
    assert len((d / "report.csv").read_text().splitlines()) == 1 + 11 * 4
    # Frame by frame: only the next frame.
    rc = main(
        [
            "propagate",
            str(d / "test.tif"),
            str(d / "seeds.zip"),
            "--model",
            str(tiny_model_path),
            "-o",
            str(d / "next.zip"),
            "--first-frame",
            "1",
            "--next-frame-only",
        ]
    )
    assert rc == 0
    assert sorted({r.t_position or r.position for r in roifile.roiread(d / "next.zip")}) == [1, 2]
    assert main(["info", str(tiny_model_path)]) == 0


def test_outputs_are_never_overwritten_without_asking(files, tiny_model_path, capsys):
    d = files
    target = d / "keep.zip"
    target.write_bytes(b"precious")
    rc = main(
        [
            "propagate",
            str(d / "test.tif"),
            str(d / "seeds.zip"),
            "--model",
            str(tiny_model_path),
            "-o",
            str(target),
        ]
    )
    assert rc == 2
    assert target.read_bytes() == b"precious"
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["propagate", "missing.tif", "seeds.zip", "--model", "m", "-o", "o.zip"], "missing.tif"),
        (["train", "ts_missing", "-o", "x.rescunet"], "ts_missing"),
    ],
)
def test_missing_inputs(files, args, message, capsys, monkeypatch):
    monkeypatch.chdir(files)
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_not_a_tiff(files, capsys):
    bad = files / "notes.tif"
    bad.write_text("this is not an image")
    assert (
        main(
            [
                "propagate",
                str(bad),
                str(files / "seeds.zip"),
                "--model",
                "m",
                "-o",
                str(files / "o.zip"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "notes.tif" in err and "TIFF" in err


def test_bad_training_parameters(files, capsys):
    d = files
    if not (d / "ts").exists():
        assert (
            main(
                [
                    "make-training-set",
                    str(d / "train.tif"),
                    str(d / "train_rois.zip"),
                    str(d / "ts"),
                ]
            )
            == 0
        )
    assert main(["train", str(d / "ts"), "-o", str(d / "bad.rescunet"), "--input-size", "50"]) == 2
    err = capsys.readouterr().err
    assert "48 or 64" in err
    assert (
        main(["train", str(d / "ts"), "-o", str(d / "bad.rescunet"), "--concatenation-level", "7"])
        == 2
    )
    assert "concatenation level" in capsys.readouterr().err
    assert not (d / "bad.rescunet").exists()


def test_pickle_model_is_refused_without_running_it(files, tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "classifier.cfier"
    evil.write_bytes(pickle.dumps(Evil()))
    rc = main(
        [
            "propagate",
            str(files / "test.tif"),
            str(files / "seeds.zip"),
            "--model",
            str(evil),
            "-o",
            str(tmp_path / "o.zip"),
        ]
    )
    assert rc == 2
    assert not marker.exists()
    assert "pickle" in capsys.readouterr().err.lower()


def test_frames_are_one_based(files, tiny_model_path, capsys):
    rc = main(
        [
            "propagate",
            str(files / "test.tif"),
            str(files / "seeds.zip"),
            "--model",
            str(tiny_model_path),
            "-o",
            str(files / "zero.zip"),
            "--first-frame",
            "0",
        ]
    )
    assert rc != 0
    assert "start at 1" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    from rescunet_ij.demo import run_demo

    summary = run_demo(tmp_path / "demo", epochs=2, n_frames=6, size=96, device="cpu")
    for key in ("result_rois", "overlay_png", "overlay_gif", "training_curve", "model", "labels"):
        assert Path(summary["files"][key]).exists(), key
    # Two epochs make a poor model: objects it cannot follow are reported lost, never passed off
    # as results, so the RoiSet holds at least the 5 seeds.
    assert len(roifile.roiread(summary["files"]["result_rois"])) >= 5
