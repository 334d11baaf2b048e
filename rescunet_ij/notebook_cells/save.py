"""Save the model: check that it opens, copy it to Google Drive (if used) and download it."""

import shutil
from pathlib import Path

# Names this cell takes from the cells above (a notebook's variables live in its `__main__`).
from __main__ import DATA_DIR, IN_COLAB, TEST_MODE, result
from rescunet_ij import api


def copy_next_to(model_path, folder):
    """Copy the model into ``folder`` under a new name, never replacing an earlier run's model."""
    copy = folder / model_path.name
    n = 1
    while copy.exists():
        n += 1
        copy = folder / f"{model_path.stem}_{n}{model_path.suffix}"
    shutil.copy2(model_path, copy)
    return copy


MODEL_PATH = Path(result.model_path)
loaded = api.load_model(MODEL_PATH)  # the file opens: what Fiji and the CLI will read
print(
    f"model file: {MODEL_PATH.resolve()} ({MODEL_PATH.stat().st_size / 1e6:.1f} MB), "
    f"input size {tuple(loaded.model_config.input_size)}"
)
if DATA_DIR is not None:
    print(f"copied to {copy_next_to(MODEL_PATH, DATA_DIR)}")

if IN_COLAB and not TEST_MODE:
    from google.colab import files

    files.download(str(MODEL_PATH))  # your browser saves it to its downloads folder
else:
    print(f"not in Colab: the model is at {MODEL_PATH.resolve()}")
print(
    "Use it on your computer with: rescunet-ij propagate movie.tif RoiSet.zip "
    f"--model {MODEL_PATH.name} -o RoiSet_out.zip (or from Fiji, see the rescunet-ij README)"
)
