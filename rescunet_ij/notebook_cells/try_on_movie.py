"""Optional: propagate the seed outlines of a test movie with the new model and show the result."""

from pathlib import Path

from IPython.display import Image, display

# Names this cell takes from the cells above (a notebook's variables live in its `__main__`).
from __main__ import (
    DATA_DIR,
    DRIVE_PATH,
    IN_COLAB,
    MODEL_PATH,
    TEST_MODE,
    TEST_MOVIE,
    TEST_ROIS,
    missing,
    on_drive,
)
from rescunet_ij import api

TEST_RESULT_ROIS = "test_RoiSet_propagated.zip"  # the propagated outlines, for Fiji's ROI Manager
TEST_OVERLAY_PNG = "test_overlay.png"  # the outlines drawn over some frames of the movie


def find_input(name, what):
    """The test file ``name``: here, or (with DRIVE_PATH) next to the training set on Drive."""
    candidates = [Path(name)]
    if DRIVE_PATH:
        candidates += [DATA_DIR / name, on_drive(name)]
    for path in candidates:
        if path.is_file():
            return path
    raise missing(candidates[-1], what)


if not (TEST_MOVIE and TEST_ROIS):
    print(
        "no test movie: set TEST_MOVIE and TEST_ROIS in the settings cell to try the model on one"
    )
else:
    movie = api.read_movie(find_input(TEST_MOVIE, "test movie"))
    seeds = api.read_outlines(find_input(TEST_ROIS, "seed RoiSet"), movie)
    run = api.propagate(movie, seeds, MODEL_PATH)
    TEST_RESULT = api.write_outlines(TEST_RESULT_ROIS, run.outlines, movie, overwrite=True)
    print(
        f"{len(run.predicted)} outlines predicted on frames "
        f"{run.start_frame + 2}..{run.end_frame + 1}; "
        f"written to {TEST_RESULT} (open it in Fiji's ROI Manager)"
    )
    for frame, object_id, why in run.doubtful()[:10]:
        print(f"  worth a look: frame {frame + 1}, object {object_id}: {why}")
    display(Image(filename=str(api.write_overlay(TEST_OVERLAY_PNG, movie, run.outlines))))
    if IN_COLAB and not TEST_MODE:
        from google.colab import files

        files.download(str(TEST_RESULT))
