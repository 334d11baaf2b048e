"""Find the training set (an uploaded zip, or a zip or folder on Google Drive) and check it."""

import zipfile
from pathlib import Path

# Names this cell takes from the cells above (a notebook's variables live in its `__main__`).
from __main__ import DRIVE_PATH, IN_COLAB, TRAINING_ZIP
from rescunet_ij import api


def drive_root():
    """Mount Google Drive (in Colab) and return the folder DRIVE_PATH is relative to."""
    if not IN_COLAB:
        return Path(".")  # outside Colab DRIVE_PATH is an ordinary path
    from google.colab import drive

    drive.mount("/content/drive")
    return Path("/content/drive/MyDrive")


def on_drive(path):
    """Where ``path`` (relative to "My Drive", or absolute) is in this runtime."""
    path = Path(path)
    if path.is_absolute() or not IN_COLAB:
        return path
    if path.parts and path.parts[0] in ("MyDrive", "My Drive"):
        return Path("/content/drive") / path
    return DRIVE_ROOT / path


def missing(path, what):
    """A FileNotFoundError for ``path`` that lists what is there and says how to provide it."""
    here = Path(path).parent
    found = sorted(p.name for p in here.iterdir())[:20] if here.is_dir() else []
    listing = f" Files in {here.resolve()}: {', '.join(found) or 'none'}." if here.is_dir() else ""
    if DRIVE_PATH:
        fix = (
            "Check DRIVE_PATH in the settings cell: it is relative to 'My Drive', e.g. "
            "'rescunet/testtrain.zip'."
        )
    elif IN_COLAB:
        fix = (
            f"Upload {Path(path).name} with the Files pane on the left (folder icon > upload), "
            "wait until the upload has finished, then run this cell again. Or put it on Google "
            "Drive and set DRIVE_PATH in the settings cell."
        )
    else:
        fix = f"Copy {Path(path).name} next to this notebook, or set the path in the settings cell."
    return FileNotFoundError(f"{what} {path} not found. {fix}{listing}")


def locate_training_set():
    """The training set (zip or folder) and the Drive folder to save into (None when uploaded)."""
    if DRIVE_PATH:
        source = on_drive(DRIVE_PATH)
        if source.is_dir() and TRAINING_ZIP and (source / TRAINING_ZIP).is_file():
            source = source / TRAINING_ZIP
        if not source.exists():
            raise missing(source, "training set")
        return source, source.parent  # the test files and the model's copy go next to it
    if not TRAINING_ZIP:
        raise ValueError("set TRAINING_ZIP (an uploaded zip) or DRIVE_PATH in the settings cell")
    source = Path(TRAINING_ZIP)
    if not source.exists():
        raise missing(source, "training-set zip")
    return source, None


DRIVE_ROOT = drive_root() if DRIVE_PATH else None
TRAINING_SET, DATA_DIR = locate_training_set()
if TRAINING_SET.is_file() and not zipfile.is_zipfile(TRAINING_SET):
    raise ValueError(
        f"{TRAINING_SET} is not a valid zip file (an unfinished upload?); upload it again"
    )
print(f"checking the training set {TRAINING_SET} ...")
# Reads every sample: a broken set stops here, with a message naming the sample, not in training.
TRAINING_SET_INFO = api.training_set_info(TRAINING_SET)
window = TRAINING_SET_INFO["window_size"]
made_with = f", made with {window[0]} x {window[1]} windows" if window else ""
print(f"training set: {TRAINING_SET_INFO['samples']} samples{made_with}")
