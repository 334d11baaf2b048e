#@ ImagePlus imp
#@ File (label="Trained model (.rescunet)", style="open") model
#@ Integer (label="Start frame (0 = the frame on screen)", value=0, min=0) start_frame
#@ Integer (label="Last frame (0 = the end of the movie)", value=0, min=0) end_frame
#@ Boolean (label="Backwards in time", value=false) reverse
#@ String (label="Object identity", choices={"auto", "property", "group", "name", "order"}, value="auto") identity
#@output String summary
# ruff: noqa: F821  (the #@ parameters above are defined by Fiji when it runs the script)
"""ReSCU-Net > Propagate Outlines (Fiji's Python mode).

Takes the outlines in the ROI Manager on the start frame, predicts every later frame with the
trained model and puts the results into the ROI Manager. Earlier results of the propagated
objects in the recomputed frames are replaced; every other ROI is left alone. Correct a frame
and run again from that frame to redo only what follows it.
"""
import sys

if sys.platform.startswith("java"):  # Jython cannot load rescunet-ij (CPython + PyTorch)
    raise RuntimeError("ReSCU-Net needs Fiji's Python mode: Edit > Options > Python... (see docs/bridge.md)")

from rescunet_ij.bridge import operations, start_imagej
from rescunet_ij.errors import RescunetError

start_imagej()  # attaches to this Fiji
try:
    summary = str(
        operations.propagate_in_imagej(
            str(model), imp,
            start_frame=int(start_frame) or None, end_frame=int(end_frame) or None,
            reverse=bool(reverse), identity=str(identity),
        )
    )
except RescunetError as exc:
    summary = operations.show_error(exc)
