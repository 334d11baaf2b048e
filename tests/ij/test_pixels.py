"""ImagePlus <-> movie (xarray) round trips on the real ImageJ 1.53t."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from rescunet_ij.errors import DataError

pytestmark = pytest.mark.ij

CAL = {
    "pixel_size": 0.25,
    "unit": "micron",
    "frame_interval": 3.0,
    "time_unit": "min",
    "z_spacing": 1.5,
}


def _movie(dtype, shape, seed=0, **attrs):
    from rescunet_ij.io.movie import as_movie

    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        a = (rng.standard_normal(shape) * 1000).astype(dtype)
    else:
        a = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    return as_movie(a, dims="tzcyx", **attrs)


@pytest.mark.parametrize("dtype,bits", [(np.uint8, 8), (np.uint16, 16), (np.float32, 32)])
def test_hyperstack_round_trip_full_czt(ij1, dtype, bits):
    from rescunet_ij.bridge import imageplus_to_movie, movie_to_imageplus

    mv = _movie(dtype, (3, 2, 2, 17, 23), **CAL)
    imp = movie_to_imageplus(mv, "czt")
    assert list(imp.getDimensions()) == [23, 17, 2, 2, 3]
    assert imp.getBitDepth() == bits
    assert imp.isHyperStack()
    # ImageJ's own indexing agrees with ours: c fastest, then z, then t
    px = np.asarray(imp.getStack().getPixels(imp.getStackIndex(2, 1, 3)))
    np.testing.assert_array_equal(px.view(dtype).reshape(17, 23), mv.values[2, 0, 1])
    back = imageplus_to_movie(imp)
    assert back.dims == ("t", "z", "c", "y", "x")
    assert back.dtype == dtype
    np.testing.assert_array_equal(back.values, mv.values)
    for k, v in CAL.items():
        assert back.attrs[k] == v, k
    assert back.attrs["title"] == "czt"
    assert back.attrs["rgb"] is False


def test_time_only_stack_round_trip(ij1):
    from rescunet_ij.bridge import imageplus_to_movie, movie_to_imageplus
    from rescunet_ij.io.movie import as_movie

    a = np.random.default_rng(1).integers(0, 65535, (12, 40, 30), dtype=np.uint16)
    imp = movie_to_imageplus(as_movie(a, dims="tyx"), "t-only")
    assert list(imp.getDimensions()) == [30, 40, 1, 1, 12]
    assert not imp.isHyperStack()  # ImageJ: a time-only stack is a plain stack
    back = imageplus_to_movie(imp)
    assert back.shape == (12, 1, 1, 40, 30)
    np.testing.assert_array_equal(back.values[:, 0, 0], a)
    assert back.attrs["pixel_size"] is None and back.attrs["unit"] is None
    assert back.attrs["frame_interval"] is None and back.attrs["z_spacing"] is None
    sub = imageplus_to_movie(imp, frames=[3, 4])
    np.testing.assert_array_equal(sub.values[:, 0, 0], a[3:5])


def test_single_channel_selection_and_signed_16bit_extremes(ij1):
    from rescunet_ij.bridge import imageplus_to_movie, movie_to_imageplus
    from rescunet_ij.io.movie import as_movie

    a = np.zeros((2, 1, 3, 4, 5), np.uint16)
    a[..., 0, 0] = 65535  # would be -1 as a Java short
    a[:, :, 1] = 32768
    imp = movie_to_imageplus(as_movie(a, dims="tzcyx"))
    assert imp.isComposite()
    one = imageplus_to_movie(imp, channel=1)
    assert one.shape == (2, 1, 1, 4, 5)
    np.testing.assert_array_equal(one.values[:, :, 0], a[:, :, 1])
    assert int(imageplus_to_movie(imp).values.max()) == 65535
    with pytest.raises(DataError, match="channel 3"):
        imageplus_to_movie(imp, channel=3)


def test_rgb_image_to_three_channels_and_back(ij1):
    from rescunet_ij.bridge._java import jc

    IJ, ImagePlus = jc.IJ, jc.ImagePlus
    from rescunet_ij.bridge import imageplus_to_movie, movie_to_imageplus
    from rescunet_ij.io.movie import as_movie

    rgb = np.random.default_rng(2).integers(0, 255, (4, 1, 3, 6, 7), dtype=np.uint8)
    imp = movie_to_imageplus(as_movie(rgb, dims="tzcyx", rgb=True))
    assert imp.getType() == ImagePlus.COLOR_RGB
    assert list(imp.getDimensions()) == [7, 6, 1, 1, 4]
    # ImageJ's own view of one pixel
    ip = imp.getStack().getProcessor(3)
    r, g, b = (ip.getPixel(5, 2) >> s & 0xFF for s in (16, 8, 0))
    assert (r, g, b) == tuple(rgb[2, 0, :, 2, 5])
    back = imageplus_to_movie(imp)
    assert back.attrs["rgb"] is True
    np.testing.assert_array_equal(back.values, rgb)
    green = imageplus_to_movie(imp, channel=1)
    assert green.attrs["rgb"] is False
    np.testing.assert_array_equal(green.values[:, :, 0], rgb[:, :, 1])
    with pytest.raises(DataError, match="red"):
        imageplus_to_movie(imp, channel=3)
    # an RGB image made by ImageJ itself
    made = IJ.createImage("rgb", "RGB ramp", 16, 8, 1)
    assert imageplus_to_movie(made).shape == (1, 1, 3, 8, 16)


def test_tiff_opened_by_imagej_matches_file(ij1, tmp_path):
    from rescunet_ij.bridge import imageplus_to_movie
    from rescunet_ij.bridge._java import jc

    IJ = jc.IJ

    a = np.arange(3 * 2 * 2 * 8 * 9, dtype=np.uint16).reshape(3, 2, 2, 8, 9)
    p = tmp_path / "hs.tif"
    tifffile.imwrite(
        p,
        a,
        imagej=True,
        resolution=(1 / 0.5, 1 / 0.5),
        metadata={"axes": "TZCYX", "spacing": 2.0, "unit": "um", "finterval": 4.0},
    )
    imp = IJ.openImage(str(p))
    mv = imageplus_to_movie(imp)
    np.testing.assert_array_equal(mv.values, a)
    assert mv.attrs["pixel_size"] == 0.5 and mv.attrs["z_spacing"] == 2.0
    assert mv.attrs["frame_interval"] == 4.0
    assert mv.attrs["source"] == str(p)


def test_other_dtypes_are_converted(ij1):
    from rescunet_ij.bridge import movie_to_imageplus
    from rescunet_ij.io.movie import as_movie

    assert movie_to_imageplus(as_movie(np.ones((2, 4, 4), bool))).getBitDepth() == 8
    assert movie_to_imageplus(as_movie(np.full((2, 4, 4), 300, np.int32))).getBitDepth() == 16
    with pytest.warns(UserWarning, match="lose precision"):
        imp = movie_to_imageplus(as_movie(np.full((2, 4, 4), 2**30 + 1, np.int64)))
    assert imp.getBitDepth() == 32


def test_bad_inputs(ij1):
    from rescunet_ij.bridge import imageplus_to_movie

    with pytest.raises(DataError, match="open a movie"):
        imageplus_to_movie(None)
    with pytest.raises(DataError, match="ImagePlus"):
        imageplus_to_movie(np.zeros((3, 3)))
