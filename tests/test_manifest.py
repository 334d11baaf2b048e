"""The ``propagate-batch`` tables in ``rescunet_ij.io.manifest``: the manifest and the results.

Only files, no movies or models: inputs are empty files (the manifest checks that they exist, not
what they hold). Running a manifest is tested in tests/test_propagate_batch.py.
"""

from __future__ import annotations

import csv

import pytest

from rescunet_ij.errors import DataError
from rescunet_ij.io.manifest import (
    RESULT_COLUMNS,
    ManifestRow,
    read_manifest,
    read_results,
    write_results,
)


@pytest.fixture
def inputs(tmp_path):
    for name in ("m1.tif", "s1.zip", "m2.tif", "s2.zip"):
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def _result(row: int, **values) -> dict:
    out = {c: "" for c in RESULT_COLUMNS}
    out.update(row=row, movie=f"m{row}.tif", output=f"o{row}.zip", status="ok", seconds=1.5)
    out.update(values)
    return out


# ----------------------------------------------------------------------------- the manifest
def test_a_spreadsheet_manifest_with_bom_comments_and_any_case_reads(inputs):
    manifest = inputs / "list.csv"
    manifest.write_text(
        "\ufeff# movies of Monday\n"
        "\n"
        "Output,MOVIE,Seeds,Z,Report\n"
        f"out/o1.zip,m1.tif,{inputs / 's1.zip'},2,out/r1.csv\n"
        "# skipped\n"
        ",,,,\n"
        "out/o2.zip,m2.tif,s2.zip\n",
        encoding="utf-8",
    )
    rows = read_manifest(manifest)
    assert rows == [
        ManifestRow(
            row=1,
            line=4,
            movie=inputs / "m1.tif",
            seeds=inputs / "s1.zip",
            output=inputs / "out" / "o1.zip",
            z=1,
            report=inputs / "out" / "r1.csv",
        ),
        ManifestRow(
            row=2,
            line=7,
            movie=inputs / "m2.tif",
            seeds=inputs / "s2.zip",
            output=inputs / "out" / "o2.zip",
        ),
    ]
    assert rows[0].outputs == [inputs / "out" / "o1.zip", inputs / "out" / "r1.csv"]
    assert not rows[0].finished()
    (inputs / "out").mkdir()
    for p in rows[0].outputs:
        p.write_bytes(b"")
    assert rows[0].finished()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty; its first line names the columns: movie, seeds, output"),
        ("# only a comment\n", "is empty"),
        ("movie,seeds,output\n", "lists no movies"),
        ("movie,seeds,output,movie\nm1.tif,s1.zip,o.zip,m1.tif\n", "column.s. named twice: movie"),
    ],
)
def test_a_manifest_without_movies_or_with_a_bad_header_is_refused(inputs, text, message):
    manifest = inputs / "list.csv"
    manifest.write_text(text)
    with pytest.raises(DataError, match=message):
        read_manifest(manifest)


def test_every_row_problem_is_listed_at_once(inputs):
    manifest = inputs / "list.csv"
    (inputs / "folder.zip").mkdir()
    manifest.write_text(
        "movie,seeds,output,labels,channel\n"
        "m1.tif,s1.zip,o1.zip,l1.png,1\n"  # labels must be a TIFF
        "m2.tif,s2.zip,folder.zip,,-2\n"  # output is a folder; channels start at 1
        "m1.tif,o1.zip,o3.zip,,\n"  # seeds written by row 1
        "m1.tif,s1.zip,o4.zip,,,extra\n"  # a cell too many
    )
    with pytest.raises(DataError) as info:
        read_manifest(manifest)
    text = str(info.value)
    assert "has 6 problem(s); nothing was run" in text
    for part in (
        "row 1 (line 2), column labels: l1.png should end in .tif or .tiff",
        f"row 2 (line 3), column output: {inputs / 'folder.zip'} is a folder, not a file",
        "row 2 (line 3), column channel: channel numbers start at 1 (as in ImageJ); got -2",
        f"row 3 (line 4), column seeds: {inputs / 'o1.zip'} does not exist",
        "row 3 (line 4), column seeds: o1.zip is an input here but is written by row 1 (line 2)",
        "row 4 (line 5): 6 cells but the header names 5",
    ):
        assert part in text


def test_a_missing_manifest_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_manifest(tmp_path / "nope.csv")


# ------------------------------------------------------------------------------ the results table
def test_results_are_written_in_row_order_and_read_back(tmp_path):
    path = tmp_path / "list.results.csv"
    rows = [
        _result(3, status="failed", error='bad "quote", and a comma'),
        _result(1, doubtful_frames="3-5;9"),
        {**_result(2, status="pending"), "model_loads": 4},  # not a column: not written
    ]
    assert write_results(path, rows) == path
    with path.open(newline="") as fh:
        assert next(csv.reader(fh)) == list(RESULT_COLUMNS)
    back = read_results(path)
    assert [r["row"] for r in back] == ["1", "2", "3"]
    assert [r["status"] for r in back] == ["ok", "pending", "failed"]
    assert back[0]["doubtful_frames"] == "3-5;9" and back[0]["seconds"] == "1.5"
    assert back[2]["error"] == 'bad "quote", and a comma'
    assert "model_loads" not in back[1]
    write_results(path, rows[:1])  # rewritten, not appended
    assert [r["row"] for r in read_results(path)] == ["3"]


def test_a_file_that_is_not_a_results_table_reads_as_none(tmp_path):
    other = tmp_path / "notes.csv"
    other.write_text("my,own\n1,2\n")
    assert read_results(other) is None
    other.write_text(",".join(RESULT_COLUMNS[:-1]) + "\n")  # one column short
    assert read_results(other) is None
    other.write_bytes(b"\xff\xfe\x00binary")
    assert read_results(other) is None
    assert read_results(tmp_path / "missing.csv") is None
    other.write_text(",".join(RESULT_COLUMNS) + "\n")
    assert read_results(other) == []
