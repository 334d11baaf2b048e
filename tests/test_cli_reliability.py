"""The command line when things go wrong: outputs checked first, written as a unit, no tracebacks.

The cases are the ones issue 7 reproduced: an impossible output path, two outputs with one name,
a report path that is a folder, a full disk while writing the second output, an existing zip
refused after the training-set folder was made, Ctrl-C during ``train``, and a real bug.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rescunet_ij import api
from rescunet_ij.cli import main
from rescunet_ij.demo import labels_to_outlines


@pytest.fixture(scope="module")
def files(tmp_path_factory, sim_test, sim_train):
    d = tmp_path_factory.mktemp("cli_rel")
    movie = api.as_movie(sim_test.images, dims="tyx")
    api.write_movie(d / "test.tif", movie)
    api.write_outlines(d / "seeds.zip", labels_to_outlines(sim_test.labels, range(1)), movie)
    train_movie = api.as_movie(sim_train.images[:6], dims="tyx")
    api.write_movie(d / "train.tif", train_movie)
    api.write_outlines(d / "train.zip", labels_to_outlines(sim_train.labels[:6]), train_movie)
    return d


def _propagate(files, model, *extra):
    return main(
        ["propagate", str(files / "test.tif"), str(files / "seeds.zip"), "--model", str(model)]
        + [str(e) for e in extra]
    )


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_impossible_output_is_refused_before_any_work(files, tmp_path, capsys):
    # The model does not exist: the output must be refused first, before anything is loaded.
    rc = _propagate(files, tmp_path / "no-such.rescunet", "-o", "/proc/x.zip")
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 2
    assert "cannot write /proc/x.zip" in err and "Traceback" not in err
    assert "no-such" not in err


def test_two_outputs_with_one_name(files, tiny_model_path, tmp_path, capsys):
    out = tmp_path / "a.zip"
    rc = _propagate(files, tiny_model_path, "-o", out, "--labels", out)
    assert rc == 2 and "named as two different outputs" in " ".join(capsys.readouterr().err.split())
    assert _names(tmp_path) == []


def test_report_path_that_is_a_folder(files, tiny_model_path, tmp_path, capsys):
    (tmp_path / "reports").mkdir()
    rc = _propagate(
        files, tiny_model_path, "-o", tmp_path / "r.zip", "--report", tmp_path / "reports"
    )
    assert rc == 2 and "is a folder" in " ".join(capsys.readouterr().err.split())
    assert _names(tmp_path) == ["reports"]  # the RoiSet was not written either


def test_full_disk_changes_none_of_the_outputs(files, tiny_model_path, tmp_path, capsys):
    """Issue 7.3: with --labels on a full disk the RoiSet was replaced but the label file failed."""
    disk = tmp_path / "small"
    disk.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)])
    if res.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        rois = disk / "RoiSet.zip"
        rois.write_bytes(b"the user's earlier result")
        rc = _propagate(
            files, tiny_model_path, "-o", rois, "--labels", disk / "labels.tif", "--overwrite"
        )
        err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
        assert rc == 2
        assert "labels.tif" in err and "disk is full" in err and "Traceback" not in err
        assert rois.read_bytes() == b"the user's earlier result"
        assert _names(disk) == ["RoiSet.zip"]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_existing_zip_is_refused_before_the_folder_is_made(files, tmp_path, capsys):
    """Issue 7.5: make-training-set --zip existing.zip left a new training-set folder behind."""
    existing = tmp_path / "testtrain.zip"
    existing.write_bytes(b"keep")
    rc = main(
        [
            "make-training-set",
            str(files / "train.tif"),
            str(files / "train.zip"),
            str(tmp_path / "ts_new"),
            "--zip",
            str(existing),
        ]
    )
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    assert _names(tmp_path) == ["testtrain.zip"] and existing.read_bytes() == b"keep"


def test_a_bug_shows_its_traceback_and_how_to_report_it(files, monkeypatch, capsys):
    def broken(path):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(api, "read_movie", broken)
    rc = _propagate(files, "m.rescunet", "-o", files / "never.zip")
    err = capsys.readouterr().err
    assert rc == 1
    assert "Traceback" in err and "ZeroDivisionError" in err
    assert "bug in rescunet-ij" in err and "rescunet-ij doctor" in err


@pytest.mark.slow
def test_ctrl_c_during_train_saves_the_best_weights(files, tmp_path):
    """Issue 7.6, through the real command: SIGINT after the first epoch, exit 130, weights kept."""
    ts = tmp_path / "ts"
    assert main(["make-training-set", str(files / "train.tif"), str(files / "train.zip"), str(ts),
                 "--subimage-size", "32"]) == 0  # fmt: skip
    model = tmp_path / "m.rescunet"
    cmd = [
        sys.executable,
        "-c",
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from rescunet_ij.cli import main; sys.exit(main(sys.argv[1:]))",
        "train", str(ts), "-o", str(model), "--epochs", "10000", "--input-size", "32",
        "--base-filters", "4", "--patience", "10000", "--device", "cpu",
    ]  # fmt: skip
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in proc.stderr:  # rich writes the per-epoch log to stderr
        lines.append(line)
        if "epoch 1:" in line:
            break
    else:
        proc.wait()
        pytest.fail("training ended before an epoch was reported:\n" + "".join(lines))
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130
    text = " ".join(rest.split())
    assert "interrupted:" in text and "SIGINT" in text and "m.rescunet" in text
    assert "Traceback" not in rest
    loaded = api.load_model(model)
    assert loaded.extra["interrupted"] == "SIGINT" and loaded.extra["training_complete"] is False
