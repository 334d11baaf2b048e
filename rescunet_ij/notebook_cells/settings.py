"""Settings: change them if your files have other names, then run all cells (Runtime > Run all).

TRAINING_ZIP: the training-set zip you upload with the Files pane (folder icon on the left).
DRIVE_PATH: instead of uploading, a zip or training-set folder on Google Drive, relative to
    "My Drive" (e.g. "rescunet/testtrain.zip"); when set, TRAINING_ZIP is ignored unless
    DRIVE_PATH is a folder that holds it.
TEST_MOVIE / TEST_ROIS: optional TIFF movie and its seed RoiSet.zip to try the trained model on.
PACKAGE_SPEC: empty = install the rescunet-ij wheel embedded in this notebook (the version that
    generated it); or what pip installs instead, e.g. "rescunet-ij==0.1.0" or a git URL.
"""

import os
import sys

TRAINING_ZIP = "testtrain.zip"  # @param {type:"string"}
DRIVE_PATH = ""  # @param {type:"string"}
TEST_MOVIE = ""  # @param {type:"string"}
TEST_ROIS = ""  # @param {type:"string"}
MODEL_FILE = "rescunet_model.rescunet"  # @param {type:"string"}
PACKAGE_SPEC = ""  # @param {type:"string"}
ALLOW_CPU = False  # @param {type:"boolean"}

GENERATOR_VERSION = ""  # the rescunet-ij version that generated this notebook
# RESCUNET_NOTEBOOK_TEST=1 in the kernel's environment = test mode: the GPU check accepts a CPU and
# the install step does nothing (for running this notebook headless with rescunet-ij installed).
test_flag = os.environ.get("RESCUNET_NOTEBOOK_TEST", "").strip().lower()
TEST_MODE = test_flag not in ("", "0", "false", "no")
IN_COLAB = "google.colab" in sys.modules
where = "Colab" if IN_COLAB else "a local Jupyter kernel"
print(f"running in {where}" + (" (test mode)" if TEST_MODE else ""))
