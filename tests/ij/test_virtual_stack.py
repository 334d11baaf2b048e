"""Virtual stacks on the real ImageJ 1.x: the bridge pulls only the planes it needs, one at a time.

``imageplus_to_movie`` copies plane by plane (``ImageStack.getPixels`` per plane, which a virtual
stack reads from disk on demand) and only the frames asked for: a big movie opened in Fiji as a
virtual stack is never read whole to propagate a stretch of it.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

pytestmark = pytest.mark.ij


def _hyperstack(path, t=7, c=2, h=24, w=32):
    data = np.random.default_rng(3).integers(0, 60000, (t, c, h, w), dtype=np.uint16)
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX", "finterval": 2.0})
    return data


def test_a_virtual_hyperstack_is_copied_frame_by_frame(ij1, tmp_path):
    from rescunet_ij.bridge import imageplus_to_movie
    from rescunet_ij.bridge._java import jc

    data = _hyperstack(tmp_path / "virtual.tif")
    imp = jc.IJ.openVirtual(str(tmp_path / "virtual.tif"))
    assert imp is not None and imp.getStack().isVirtual()
    assert list(imp.getDimensions()) == [32, 24, 2, 1, 7]
    whole = imageplus_to_movie(imp)
    assert np.array_equal(whole.isel(z=0).values, data)
    part = imageplus_to_movie(imp, channel=1, frames=range(2, 5))
    assert part.coords["t"].values.tolist() == [2, 3, 4]  # the movie's own frame numbers
    assert np.array_equal(part.isel(z=0, c=0).values, data[2:5, 1])
    assert part.attrs["frame_interval"] == 2.0


def test_only_the_frames_asked_for_are_read_from_a_virtual_stack(ij1, tmp_path):
    """A VirtualStack of one file per frame: copying frames 2-4 needs only their files."""
    from rescunet_ij.bridge import imageplus_to_movie
    from rescunet_ij.bridge._java import jc

    frames = np.random.default_rng(5).integers(0, 255, (6, 20, 30), dtype=np.uint8)
    for t, plane in enumerate(frames):
        tifffile.imwrite(tmp_path / f"f{t}.tif", plane)
    import scyjava

    VirtualStack = scyjava.jimport("ij.VirtualStack")  # noqa: N806 (a Java class)
    stack = VirtualStack(30, 20, None, str(tmp_path) + "/")
    for t in range(6):
        stack.addSlice(f"f{t}.tif")
    imp = jc.ImagePlus("per-frame files", stack)
    imp.setDimensions(1, 1, 6)  # frames, not z-planes
    for t in (0, 1, 5):  # frames the copy must not touch
        (tmp_path / f"f{t}.tif").unlink()
    part = imageplus_to_movie(imp, frames=[2, 3, 4])
    assert np.array_equal(part.isel(z=0, c=0).values, frames[2:5])
    # The deleted frames really are gone: ImageJ serves a placeholder image for them.
    whole = imageplus_to_movie(imp).isel(z=0, c=0).values
    assert not np.array_equal(whole[0], frames[0])
    assert np.array_equal(whole[2:5], frames[2:5])
