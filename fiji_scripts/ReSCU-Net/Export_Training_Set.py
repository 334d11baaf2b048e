#@ ImagePlus imp
#@ File (label="Training-set folder to create", style="directory") out_dir
#@ Integer (label="Sub-image size around each object (pixels)", value=64, min=8) subimage_size
#@ String (label="Object identity", choices={"auto", "property", "group", "name", "order"}, value="auto") identity
#@ Boolean (label="Overwrite an existing folder", value=false) overwrite
#@output String summary
# ruff: noqa: F821  (the #@ parameters above are defined by Fiji when it runs the script)
"""ReSCU-Net > Export Training Set (Fiji's Python mode).

Writes one training sample per object and pair of consecutive outlined frames, from the movie
and the outlines in the ROI Manager (same object = same object_id property, group, name, or
position in the frame's list). Train on it with ReSCU-Net > Train Model, the command line
(rescunet-ij train) or the Colab notebook.
"""
import sys

if sys.platform.startswith("java"):  # Jython cannot load rescunet-ij (CPython + PyTorch)
    raise RuntimeError("ReSCU-Net needs Fiji's Python mode: Edit > Options > Python... (see docs/bridge.md)")

from rescunet_ij.bridge import operations, start_imagej
from rescunet_ij.errors import RescunetError

start_imagej()  # attaches to this Fiji
try:
    path = operations.export_training_set(
        imp, out_dir=str(out_dir), subimage_size=int(subimage_size), identity=str(identity),
        overwrite=bool(overwrite),
    )
    summary = f"training set written to {path}"
except RescunetError as exc:
    summary = operations.show_error(exc)
