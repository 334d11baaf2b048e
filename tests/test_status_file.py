"""``rescunet-ij propagate --status-file``: a key=value summary, on success and on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from rescunet_ij import api
from rescunet_ij.cli import main
from rescunet_ij.demo import labels_to_outlines


def read_status(path: Path) -> dict[str, str]:
    """The status file as the macro reads it: one key=value per line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture(scope="module")
def inputs(sim_test, tmp_path_factory):
    d = tmp_path_factory.mktemp("status")
    movie = api.as_movie(sim_test.images, dims="tyx")
    mv = api.write_movie(d / "movie.tif", movie)
    seeds = labels_to_outlines(sim_test.labels, range(1))
    seeds = api.write_outlines(d / "seeds.zip", seeds, movie)
    return mv, seeds


def test_status_file_on_success(inputs, tiny_model_path, tmp_path):
    mv, seeds = inputs
    out, status = tmp_path / "out.zip", tmp_path / "status.txt"
    args = ["propagate", str(mv), str(seeds), "--model", str(tiny_model_path), "-o", str(out)]
    assert main([*args, "--last-frame", "4", "--status-file", str(status)]) == 0
    st = read_status(status)
    assert st["ok"] == "true" and st["error"] == "" and st["exit_code"] == "0"
    assert st["output"] == str(out) and out.is_file()
    n_rois = len(api.read_outlines(out, api.read_movie(mv)))
    assert int(st["rois"]) == n_rois > int(st["predicted"]) > 0
    assert st["frames"] == "1..4"
    n = int(st["doubtful"])
    listed = [k for k in st if k.startswith("doubtful.")]
    assert listed == [f"doubtful.{i}" for i in range(1, n + 1)]
    assert all(v.startswith("frame ") for k, v in st.items() if k.startswith("doubtful."))


def test_status_file_on_failure_keeps_the_old_output(inputs, tmp_path, capsys):
    mv, seeds = inputs
    bad_model = tmp_path / "not_a_model.rescunet"
    bad_model.write_text("not a model")
    out, status = tmp_path / "out.zip", tmp_path / "status.txt"
    out.write_bytes(b"the previous result")
    status.write_text("ok=true\n")  # a stale status file is replaced
    args = ["propagate", str(mv), str(seeds), "--model", str(bad_model), "-o", str(out)]
    assert main([*args, "--overwrite", "--status-file", str(status)]) == 2
    st = read_status(status)
    assert st["ok"] == "false" and st["exit_code"] == "2"
    assert st["output"] == "" and st["rois"] == "0" and st["doubtful"] == "0"
    printed = "".join(capsys.readouterr().err.split())  # the terminal wraps long lines
    assert st["error"] and "".join(st["error"].split()) in printed  # the message shown there
    assert "cannot open model file" in st["error"]
    assert out.read_bytes() == b"the previous result"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--first-frame", "0"], "frame numbers start at 1"),  # refused inside propagate
        (["--first-frame", "abc"], "refused the command line (exit status 2)"),  # by the parser
        (["--last-frame", "99"], "outside the movie"),
    ],
)
def test_status_file_on_bad_arguments(inputs, tiny_model_path, tmp_path, extra, message):
    mv, seeds = inputs
    status = tmp_path / "status.txt"
    args = ["propagate", str(mv), str(seeds), "--model", str(tiny_model_path)]
    code = main([*args, "-o", str(tmp_path / "o.zip"), *extra, f"--status-file={status}"])
    assert code == 2
    st = read_status(status)
    assert st["ok"] == "false" and st["exit_code"] == "2"
    assert message in st["error"], st["error"]
    assert not (tmp_path / "o.zip").exists()
