#@ File (label="Training set (folder or .zip)", style="both") training_set
#@ File (label="Save the model as (.rescunet)", style="save") model_file
#@ Integer (label="Epochs (maximum)", value=100, min=1) epochs
#@ Integer (label="Network input size (multiple of 16)", value=64, min=16, stepSize=16) input_size
#@ Integer (label="Filters in the first layer (64 as in the paper; 16-32 on a CPU)", value=64, min=4) base_filters
#@ Integer (label="Concatenation level (0-4)", value=1, min=0, max=4) concatenation_level
#@ String (label="Device", choices={"auto", "cpu", "cuda", "mps"}, value="auto") device
#@ Boolean (label="Overwrite an existing model file", value=false) overwrite
#@output String summary
# ruff: noqa: F821  (the #@ parameters above are defined by Fiji when it runs the script)
"""ReSCU-Net > Train Model (Fiji's Python mode).

Trains a ReSCU-Net on a training set (ReSCU-Net > Export Training Set) and saves it. Progress
goes to the status bar and the Log window; training blocks this script until it ends (early
stopping usually ends it before the maximum number of epochs).
"""
import sys

if sys.platform.startswith("java"):  # Jython cannot load rescunet-ij (CPython + PyTorch)
    raise RuntimeError("ReSCU-Net needs Fiji's Python mode: Edit > Options > Python... (see docs/bridge.md)")

from rescunet_ij.bridge import operations, start_imagej
from rescunet_ij.errors import RescunetError

start_imagej()  # attaches to this Fiji
try:
    result = operations.train_in_imagej(
        str(training_set), str(model_file), overwrite=bool(overwrite), epochs=int(epochs),
        input_size=int(input_size), base_filters=int(base_filters),
        concatenation_level=int(concatenation_level), device=str(device),
    )
    summary = (
        f"model saved to {result.model_path} "
        f"(best epoch {result.best_epoch} of {len(result.history)})"
    )
except RescunetError as exc:
    summary = operations.show_error(exc)
