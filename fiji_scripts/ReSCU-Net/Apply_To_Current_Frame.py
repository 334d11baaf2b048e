#@ ImagePlus imp
#@ File (label="Trained model (.rescunet)", style="open") model
#@ Boolean (label="Backwards (predict from the next frame)", value=false) reverse
#@ String (label="Object identity", choices={"auto", "property", "group", "name", "order"}, value="auto") identity
#@output String summary
# ruff: noqa: F821  (the #@ parameters above are defined by Fiji when it runs the script)
"""ReSCU-Net > Apply To Current Frame (Fiji's Python mode).

Predicts the frame on screen from the outlines on the previous frame and puts them into the ROI
Manager (replacing only this frame's ROIs of those objects). Step through a movie: check and
correct, move to the next frame, run again (bind it to a key with Plugins > Shortcuts).
"""
import sys

if sys.platform.startswith("java"):  # Jython cannot load rescunet-ij (CPython + PyTorch)
    raise RuntimeError("ReSCU-Net needs Fiji's Python mode: Edit > Options > Python... (see docs/bridge.md)")

from rescunet_ij.bridge import operations, start_imagej
from rescunet_ij.errors import RescunetError

start_imagej()  # attaches to this Fiji
try:
    summary = str(
        operations.apply_to_current_frame(str(model), imp, reverse=bool(reverse), identity=str(identity))
    )
except RescunetError as exc:
    summary = operations.show_error(exc)
