"""Movies: TIFF hyperstacks <-> xarray, dim normalisation, plane selection, label movies."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
import tifffile
import xarray as xr

from rescunet_ij.errors import ConfigError, DataError, OutputExistsError
from rescunet_ij.io.labels import outlines_to_label_movie, write_label_movie
from rescunet_ij.io.movie import as_movie, select_plane_series
from rescunet_ij.io.tiff import TiffLog, read_movie, write_movie
from rescunet_ij.types import AXES, Outline


def _ramp(shape, dtype=np.uint16) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) % 251).astype(dtype).reshape(shape)


def _imagej(path, data, axes, **metadata):
    res = metadata.pop("resolution", None)
    tifffile.imwrite(path, data, imagej=True, resolution=res, metadata={"axes": axes, **metadata})
    return path


# ------------------------------------------------------------------------------------- read_movie


def test_read_tzcyx_hyperstack_with_calibration(tmp_path):
    data = _ramp((3, 2, 2, 5, 6))
    path = _imagej(
        tmp_path / "m.tif",
        data,
        "TZCYX",
        unit="\\u00B5m",
        spacing=0.7,
        finterval=2.5,
        tunit="min",
        resolution=(4.0, 4.0),
    )
    movie = read_movie(path)
    assert movie.dims == AXES
    assert movie.shape == (3, 2, 2, 5, 6)
    np.testing.assert_array_equal(movie.values, data)
    assert movie.attrs["pixel_size"] == pytest.approx(0.25)
    assert movie.attrs["unit"] == "µm"
    assert movie.attrs["z_spacing"] == pytest.approx(0.7)
    assert movie.attrs["frame_interval"] == pytest.approx(2.5)
    assert movie.attrs["time_unit"] == "min"
    assert movie.attrs["source"] == str(path)
    assert movie.attrs["rgb"] is False


@pytest.mark.parametrize(
    "axes, shape, expected",
    [
        ("TYX", (4, 5, 6), (4, 1, 1, 5, 6)),
        ("ZYX", (3, 5, 6), (1, 3, 1, 5, 6)),
        ("CYX", (2, 5, 6), (1, 1, 2, 5, 6)),
        ("YX", (5, 6), (1, 1, 1, 5, 6)),
        ("TCYX", (3, 2, 5, 6), (3, 1, 2, 5, 6)),
    ],
)
def test_read_imagej_axes(tmp_path, axes, shape, expected):
    data = _ramp(shape, np.uint8)
    movie = read_movie(_imagej(tmp_path / "m.tif", data, axes))
    assert movie.shape == expected
    np.testing.assert_array_equal(movie.values.reshape(shape), data)
    assert movie.attrs["pixel_size"] is None and movie.attrs["unit"] is None


def test_read_rgb_imagej(tmp_path):
    data = _ramp((5, 6, 3), np.uint8)
    movie = read_movie(_imagej(tmp_path / "rgb.tif", data, "YXS"))
    assert movie.shape == (1, 1, 3, 5, 6)
    assert movie.attrs["rgb"] is True
    np.testing.assert_array_equal(movie.isel(t=0, z=0).values, np.moveaxis(data, -1, 0))


def test_read_rgb_time_series(tmp_path):
    data = _ramp((4, 5, 6, 3), np.uint8)
    movie = read_movie(_imagej(tmp_path / "rgb.tif", data, "TYXS"))
    assert movie.shape == (4, 1, 3, 5, 6) and movie.attrs["rgb"]


def test_read_plain_multipage_tiff_is_a_time_series(tmp_path):
    data = _ramp((5, 6, 7))
    tifffile.imwrite(tmp_path / "plain.tif", data, metadata=None)  # generic axes "IYX"
    tifffile.imwrite(tmp_path / "shaped.tif", data)  # tifffile's own metadata: "QYX"
    for name in ("plain.tif", "shaped.tif"):
        movie = read_movie(tmp_path / name)
        assert movie.shape == (5, 1, 1, 6, 7)
        np.testing.assert_array_equal(movie.values[:, 0, 0], data)


def test_read_ome_tiff_calibration(tmp_path):
    data = _ramp((3, 2, 6, 7))
    path = tmp_path / "m.ome.tif"
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={
            "axes": "TCYX",
            "PhysicalSizeX": 0.2,
            "PhysicalSizeY": 0.2,
            "TimeIncrement": 5.0,
            "TimeIncrementUnit": "s",
        },
    )
    movie = read_movie(path)
    assert movie.shape == (3, 1, 2, 6, 7)
    assert movie.attrs["pixel_size"] == pytest.approx(0.2)
    assert movie.attrs["frame_interval"] == pytest.approx(5.0)
    assert movie.attrs["time_unit"] == "s"


def test_read_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_movie(tmp_path / "nope.tif")


def test_read_folder(tmp_path):
    with pytest.raises(DataError, match="folder"):
        read_movie(tmp_path)


def test_read_non_tiff_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "movie.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(DataError) as err:
        read_movie(path)
    msg = str(err.value)
    assert "movie.png" in msg and "not a TIFF" in msg and "Save As" in msg


def test_read_truncated_tiff(tmp_path):
    good = _imagej(tmp_path / "good.tif", _ramp((4, 32, 32)), "TYX")
    bad = tmp_path / "bad.tif"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match="bad.tif.*(truncated|corrupted)"):
        read_movie(bad)


# ------------------------------------------------------------------------ truncated files (7.4)

_HYPERSTACK = _ramp((20, 2, 32, 32))  # 20 frames x 2 channels = 40 images


def _cut_copy(src, dst, size):
    dst.write_bytes(src.read_bytes()[:size])
    return dst


def _image_ends(path):
    """Where the pixels of each of the 40 images end, in the intact file."""
    with tifffile.TiffFile(path) as tif:
        first = tif.pages.first
        if first.compression == 1:  # ImageJ: one block of pixels, the other directories after it
            start, size = first.dataoffsets[0], first.databytecounts[0]
            return [start + (i + 1) * size for i in range(40)]
        return [max(o + n for o, n in zip(p.dataoffsets, p.databytecounts)) for p in tif.pages]


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_intact_hyperstack_reads_uncompressed_and_compressed(tmp_path, compression):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(
        path, _HYPERSTACK, imagej=True, metadata={"axes": "TCYX"}, compression=compression
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        movie = read_movie(path)
    assert movie.shape == (20, 1, 2, 32, 32)
    np.testing.assert_array_equal(movie.values[:, 0], _HYPERSTACK)


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("where", ["30%", "50%", "a few bytes short"])
def test_truncated_hyperstack_is_refused_with_counts(tmp_path, compression, where):
    good = tmp_path / "good.tif"
    tifffile.imwrite(
        good, _HYPERSTACK, imagej=True, metadata={"axes": "TCYX"}, compression=compression
    )
    ends = _image_ends(good)
    if where == "a few bytes short":
        size = ends[-1] - 3  # into the pixels of the last image
    else:
        size = int(good.stat().st_size * float(where[:-1]) / 100)
    bad = _cut_copy(good, tmp_path / "cut.tif", size)
    with pytest.raises(DataError) as err:
        read_movie(bad)
    msg = str(err.value)
    complete = sum(end <= size for end in ends)
    assert msg.startswith(
        "cut.tif is truncated: its ImageJ header announces 40 images (20 frames x 2 channels) "
        f"but only {complete} can be read; the file was probably cut off while copying or saving"
    )
    assert "copy it again or re-save it in Fiji (File > Save As > Tiff...)" in msg


def test_missing_trailing_directories_with_all_pixels_present_still_read(tmp_path):
    # ImageJ itself reads hyperstacks from the first directory and the pixel block alone.
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, _HYPERSTACK, imagej=True, metadata={"axes": "TCYX"})
    cut = _cut_copy(good, tmp_path / "cut.tif", good.stat().st_size - 5)
    np.testing.assert_array_equal(read_movie(cut).values[:, 0], _HYPERSTACK)


def _pages(path, images, description):
    with tifffile.TiffWriter(path) as tw:
        for i, image in enumerate(images):
            tw.write(image, description=description if i == 0 else None, metadata=None)
    return path


def test_header_announcing_more_images_than_an_intact_file_holds(tmp_path):
    path = _pages(tmp_path / "m.tif", _ramp((4, 8, 8)), "ImageJ=1.11a\nimages=10\nframes=10\n")
    with pytest.raises(DataError, match=r"m.tif does not match its ImageJ header: .*announces "
                       r"10 images \(10 frames\) but the file holds 4.*Save As"):  # fmt: skip
        read_movie(path)


def test_invalid_header_is_ignored_with_a_warning(tmp_path):
    data = _ramp((4, 8, 8))
    path = _pages(tmp_path / "m.tif", data, "ImageJ=1.11a\nimages=4\nframes=0\n")
    with pytest.warns(UserWarning, match=r"m.tif: ignored its invalid ImageJ header "
                      r"\(images=4 frames=0\) and read its 4 image\(s\) as frames"):  # fmt: skip
        movie = read_movie(path)
    np.testing.assert_array_equal(movie.values[:, 0, 0], data)


@pytest.mark.parametrize("short_by", ["half", "3 bytes"])
def test_truncated_plain_stack(tmp_path, short_by):
    good = _pages(tmp_path / "good.tif", _ramp((4, 32, 32)), None)
    n = good.stat().st_size
    bad = _cut_copy(good, tmp_path / "bad.tif", n // 2 if short_by == "half" else n - 3)
    with pytest.raises(DataError, match=r"bad.tif is truncated: .*only \d complete image"):
        read_movie(bad)


# ------------------------------------------------------------ tifffile's log stays inside (7.9)


def _mismatched_header_file(tmp_path):
    return _pages(tmp_path / "m.tif", _ramp((4, 8, 8)), "ImageJ=1.11a\nimages=4\nframes=0\n")


def test_tifffile_log_records_do_not_leak(tmp_path, caplog, capsys):
    path = _mismatched_header_file(tmp_path)
    caplog.set_level(logging.DEBUG)
    with pytest.warns(UserWarning, match="invalid ImageJ header"):
        read_movie(path)
    bad = _cut_copy(path, tmp_path / "cut.tif", path.stat().st_size // 2)
    with pytest.raises(DataError, match="truncated"):
        read_movie(bad)
    assert [r for r in caplog.records if r.name.startswith("tifffile")] == []
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    # The filter is gone afterwards: tifffile logs reach logging as usual again.
    with tifffile.TiffFile(path) as tif:
        tif.series  # noqa: B018 - parsing the header logs
    assert any(r.name == "tifffile" for r in caplog.records)


def test_tiff_log_collects_worker_thread_records_in_our_words(caplog):
    """tifffile decodes pages in worker threads; their records are caught too."""

    def work():
        logging.getLogger("tifffile").error("<tifffile.TiffPage 3 @8> <decode> boom")

    with TiffLog() as log:
        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        logging.getLogger("tifffile").warning("<tifffile.TiffFile 'm.tif'> boom")
        logging.getLogger("tifffile").debug("details")
    assert log.messages() == ["boom"]  # prefixes gone, repeats and debug records dropped
    assert not caplog.records


def test_no_raw_tifffile_lines_on_stderr_of_a_fresh_process(tmp_path):
    """Without pytest's log capture tifffile's records would reach stderr (logging.lastResort)."""
    ignored = _mismatched_header_file(tmp_path)
    wrong = _pages(tmp_path / "w.tif", _ramp((4, 8, 8)), "ImageJ=1.11a\nimages=10\nframes=10\n")
    code = (
        "import warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from rescunet_ij.errors import DataError\n"
        "from rescunet_ij.io.tiff import read_movie\n"
        f"read_movie({str(ignored)!r})\n"
        "try:\n"
        f"    read_movie({str(wrong)!r})\n"
        "except DataError:\n"
        "    print('refused')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == "refused\n"


# ------------------------------------------------------------------------------------ write_movie


def test_write_read_round_trip_with_calibration(tmp_path):
    data = _ramp((3, 2, 2, 5, 6))
    movie = as_movie(
        data,
        dims="TZCYX",
        pixel_size=0.5,
        unit="µm",
        frame_interval=30.0,
        time_unit="sec",
        z_spacing=1.5,
    )
    path = write_movie(tmp_path / "out.tif", movie)
    back = read_movie(path)
    np.testing.assert_array_equal(back.values, data)
    for key in ("pixel_size", "unit", "frame_interval", "time_unit", "z_spacing"):
        assert back.attrs[key] == movie.attrs[key], key
    with tifffile.TiffFile(path) as tif:  # a real ImageJ hyperstack
        assert tif.is_imagej
        assert tif.series[0].axes == "TZCYX"
        assert tif.imagej_metadata["frames"] == 3 and tif.imagej_metadata["slices"] == 2


def test_write_rgb_round_trip(tmp_path):
    data = _ramp((2, 5, 6, 3), np.uint8)
    path = write_movie(tmp_path / "rgb.tif", as_movie(data, dims="TYXS"))
    back = read_movie(path)
    assert back.attrs["rgb"] and back.shape == (2, 1, 3, 5, 6)
    np.testing.assert_array_equal(np.moveaxis(back.values[:, 0], 1, -1), data)


def test_write_refuses_to_overwrite(tmp_path):
    path = write_movie(tmp_path / "out.tif", np.zeros((2, 4, 4), np.uint8))
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_movie(path, np.ones((2, 4, 4), np.uint8))
    assert path.read_bytes() == before
    write_movie(path, np.ones((2, 4, 4), np.uint8), overwrite=True)
    assert read_movie(path).values.max() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]  # no temp files left


def test_write_converts_types_imagej_cannot_show(tmp_path):
    write_movie(tmp_path / "b.tif", np.eye(4, dtype=bool)[None])
    assert read_movie(tmp_path / "b.tif").dtype == np.uint8
    assert read_movie(tmp_path / "b.tif").values.max() == 255
    neg = np.array([[[-3, 7], [100, -200]]], np.int16)
    write_movie(tmp_path / "i.tif", neg)
    np.testing.assert_array_equal(read_movie(tmp_path / "i.tif").values[:, 0, 0], neg)
    with pytest.warns(UserWarning, match="rounds"):
        write_movie(tmp_path / "f.tif", np.array([[[0.1, 1 / 3]]], np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_movie(tmp_path / "f2.tif", np.array([[[0.5, 2.0]]], np.float64))


# --------------------------------------------------------------------------------------- as_movie


def test_as_movie_numpy_defaults_and_dims():
    assert as_movie(np.zeros((5, 6))).shape == (1, 1, 1, 5, 6)
    assert as_movie(np.zeros((4, 5, 6))).shape == (4, 1, 1, 5, 6)
    assert as_movie(np.zeros((3, 5, 6)), dims="ZYX").shape == (1, 3, 1, 5, 6)
    m = as_movie(np.zeros((4, 5, 6, 2)), dims="TYXC")
    assert m.dims == AXES and m.shape == (4, 1, 2, 5, 6)
    assert not m.attrs["rgb"]
    with pytest.raises(DataError, match="dims="):
        as_movie(np.zeros((2, 3, 4, 5)))
    with pytest.raises(DataError, match="3 axes but the array has 2"):
        as_movie(np.zeros((4, 5)), dims="TYX")


def test_as_movie_keeps_values_without_copy():
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    m = as_movie(data)
    np.testing.assert_array_equal(m.values[:, 0, 0], data)
    assert np.shares_memory(m.values, data)


def test_as_movie_pyimagej_dims_and_coords():
    data = np.zeros((3, 2, 5, 6, 4))
    da = xr.DataArray(
        data,
        dims=("t", "pln", "row", "col", "ch"),
        coords={"col": np.arange(6) * 0.5, "row": np.arange(5) * 0.5, "pln": np.arange(2) * 2.0},
        attrs={"unit": "um"},
    )
    m = as_movie(da)
    assert m.dims == AXES and m.shape == (3, 2, 4, 5, 6)
    assert m.attrs["pixel_size"] == 0.5 and m.attrs["z_spacing"] == 2.0 and m.attrs["unit"] == "um"


def test_as_movie_upper_case_names_rgb_samples_and_attrs():
    da = xr.DataArray(np.zeros((2, 5, 6)), dims=("T", "Y", "X"), attrs={"pixel_size": 0.3})
    m = as_movie(da, frame_interval=4.0)
    assert m.shape == (2, 1, 1, 5, 6)
    assert m.attrs["pixel_size"] == 0.3 and m.attrs["frame_interval"] == 4.0
    rgb = as_movie(xr.DataArray(np.zeros((5, 6, 3), np.uint8), dims=("Y", "X", "S")))
    assert rgb.shape == (1, 1, 3, 5, 6) and rgb.attrs["rgb"]
    again = as_movie(m)  # idempotent
    assert again.dims == AXES and again.attrs == m.attrs


def test_as_movie_rejects_unknown_and_repeated_dims():
    with pytest.raises(DataError) as err:
        as_movie(xr.DataArray(np.zeros((2, 5, 6)), dims=("wavelength", "y", "x")))
    assert "wavelength" in str(err.value)
    with pytest.raises(DataError, match="more than once"):
        as_movie(np.zeros((2, 3, 5, 6)), dims="TQYX")
    with pytest.raises(DataError, match="y and/or x"):
        as_movie(np.zeros((2, 3)), dims="TZ")


@pytest.mark.parametrize(
    "values, words",
    [
        (np.zeros((2, 5, 6), np.complex64), ["complex numbers", "complex64", "np.abs"]),
        (np.zeros((2, 5, 6), object), ["Python objects", "dtype object", "np.stack"]),
        (np.full((5, 6), "a"), ["text", "<U1", "astype"]),
        (np.zeros((5, 6), "S2"), ["bytes", "|S2"]),
        (np.zeros((2, 5, 6), "datetime64[s]"), ["dates/times", "datetime64[s]"]),
        (np.zeros((2, 5, 6), "timedelta64[ms]"), ["time spans", "timedelta64[ms]"]),
        (np.zeros((5, 6), [("r", "u1"), ("g", "u1")]), ["not plain numbers"]),
    ],
)
def test_as_movie_refuses_non_numeric_pixels(values, words):
    for data in (values, xr.DataArray(values, dims=("t", "y", "x")[-values.ndim :])):
        with pytest.raises(DataError) as err:
            as_movie(data)
        msg = str(err.value)
        assert "needs bool, integer or float pixels" in msg
        assert all(w in msg for w in words), msg


@pytest.mark.parametrize("dtype", [bool, np.int8, np.int64, np.uint16, np.float16, np.float64])
def test_as_movie_accepts_bool_int_uint_float(dtype):
    m = as_movie(np.ones((2, 5, 6), dtype))
    assert m.dtype == dtype and m.shape == (2, 1, 1, 5, 6)


def test_as_movie_ragged_list_is_a_data_error():
    with pytest.raises(DataError, match="same size"):
        as_movie([np.zeros((5, 6)), np.zeros((4, 6))])


def test_as_movie_tyx_and_yx_dataarrays_and_numpy_dims():
    a = _ramp((3, 5, 6))
    for m in (
        as_movie(xr.DataArray(a, dims=("t", "y", "x"))),
        as_movie(a, dims=("t", "y", "x")),
        as_movie(a, dims="tyx"),
        as_movie(xr.DataArray(a, dims=("t", "y", "x"), coords={"t": [0, 1, 2]})),
    ):
        assert m.dims == AXES and m.shape == (3, 1, 1, 5, 6)
        np.testing.assert_array_equal(m.values[:, 0, 0], a)
    yx = as_movie(xr.DataArray(a[0], dims=("y", "x")))
    assert yx.shape == (1, 1, 1, 5, 6)
    np.testing.assert_array_equal(yx.values[0, 0, 0], a[0])


# ---------------------------------------------------------------------------- select_plane_series


def test_select_time_series():
    data = _ramp((4, 1, 1, 5, 6))
    images, info = select_plane_series(as_movie(data, dims="TZCYX", pixel_size=0.5, unit="um"))
    assert images.dtype == np.float32 and images.shape == (4, 5, 6)
    np.testing.assert_array_equal(images, data[:, 0, 0])
    assert info.axis == "t" and info.n_planes == 4 and info.channel is None and info.z is None
    assert info.dtype == "uint16" and info.pixel_size == 0.5


def test_select_channel_and_plane():
    data = _ramp((4, 3, 2, 5, 6))
    images, info = select_plane_series(as_movie(data, dims="TZCYX"), channel=1, z=2)
    np.testing.assert_array_equal(images, data[:, 2, 1])
    assert info.channel == 1 and info.z == 2


def test_select_rgb_needs_a_channel():
    movie = as_movie(np.zeros((5, 6, 3), np.uint8), dims="YXS")
    with pytest.raises(DataError) as err:
        select_plane_series(movie)
    msg = str(err.value)
    assert "RGB" in msg and "--channel 1..3" in msg and "1-based" in msg


def test_select_multichannel_needs_a_channel():
    movie = as_movie(np.zeros((2, 4, 5, 6)), dims="TCYX")
    with pytest.raises(DataError, match="4 channels.*--channel 1..4"):
        select_plane_series(movie)
    with pytest.raises(DataError, match="--channel 1..4"):
        select_plane_series(movie, channel=4)
    with pytest.raises(ConfigError, match="integer"):
        select_plane_series(movie, channel=1.5)


def test_select_multi_z_needs_a_plane_or_axis_z():
    movie = as_movie(np.zeros((1, 5, 6, 7)), dims="TZYX")
    with pytest.raises(DataError) as err:
        select_plane_series(movie)
    assert "--z 1..5" in str(err.value) and "--axis z" in str(err.value)
    images, info = select_plane_series(movie, axis="z")
    assert images.shape == (5, 6, 7) and info.axis == "z"
    with pytest.raises(ConfigError, match="z must be None"):
        select_plane_series(movie, z=1, axis="z")
    timelapse = as_movie(np.zeros((3, 5, 6, 7)), dims="TZYX")
    with pytest.raises(DataError, match="one time point"):
        select_plane_series(timelapse, axis="z")
    with pytest.raises(ConfigError, match="axis"):
        select_plane_series(timelapse, z=0, axis="c")


# ---------------------------------------------------------------------------------- label movies


def _square(x0, y0, size):
    return np.array([[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size]], float)


def test_label_movie_ids_and_overlap_order():
    outlines = [
        Outline(object_id=3, frame=0, polygon=_square(1, 1, 4)),
        Outline(object_id=7, frame=0, polygon=_square(3, 3, 4)),  # later: wins the overlap
        Outline(object_id=3, frame=1, polygon=_square(0, 0, 2)),
    ]
    labels = outlines_to_label_movie(outlines, (2, 10, 10))
    assert labels.dtype == np.uint16
    assert labels[0, 1, 1] == 3 and labels[0, 4, 4] == 7 and labels[0, 6, 6] == 7
    assert (labels[0] == 3).sum() == 16 - 4
    assert (labels[1] == 3).sum() == 4 and labels[1].max() == 3
    with pytest.raises(DataError, match="frame 3"):
        outlines_to_label_movie([Outline(1, 2, _square(0, 0, 2))], (2, 10, 10))


def test_write_label_movie(tmp_path):
    outlines = [Outline(object_id=2, frame=1, polygon=_square(2, 2, 3))]
    path = write_label_movie(tmp_path / "labels.tif", outlines, (3, 8, 8))
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej and tif.series[0].axes == "TYX"
        data = tif.asarray()
    assert data.dtype == np.uint16 and data.shape == (3, 8, 8) and (data[1] == 2).sum() == 9
    with pytest.raises(OutputExistsError):
        write_label_movie(path, outlines, (3, 8, 8))
