"""The ImageJ bridge: the only part of rescunet-ij that touches Java (ImageJ 1.x) objects.

Start (or attach to) ImageJ once per process, then convert and run::

    from rescunet_ij import bridge
    ij = bridge.start_imagej()                 # plain ij.jar; or start_imagej("/path/Fiji.app")
    imp = bridge.movie_to_imageplus(movie, show=True)
    ...outline objects on frame 1, add them to the ROI Manager...
    print(bridge.propagate_in_imagej("model.rescunet", imp))

Importing this package starts no JVM and imports neither JPype, scyjava nor PyImageJ; those are
imported inside the functions that need them (extra ``imagej``: ``pip install
'rescunet-ij[imagej]'``; Fiji through PyImageJ: extra ``fiji``).
"""

from __future__ import annotations

from .convert import (
    MARKER_PROPERTY,
    RoiPushSummary,
    imageplus_to_movie,
    movie_to_imageplus,
    outlines_to_roimanager,
    outlines_to_rois,
    read_roimanager,
    roimanager_to_outlines,
    rois_to_outlines,
)
from .gateway import (
    BridgeWarning,
    ImageJHandle,
    JavaPlan,
    find_gateway,
    find_ij_jar,
    get_imagej,
    imagej_running,
    plan_fiji_java,
    start_imagej,
)
from .operations import (
    PropagationSummary,
    apply_to_current_frame,
    export_training_set,
    finetune_in_imagej,
    propagate_in_imagej,
)

__all__ = [
    "MARKER_PROPERTY",
    "BridgeWarning",
    "ImageJHandle",
    "JavaPlan",
    "PropagationSummary",
    "RoiPushSummary",
    "apply_to_current_frame",
    "export_training_set",
    "finetune_in_imagej",
    "find_gateway",
    "find_ij_jar",
    "get_imagej",
    "imagej_running",
    "imageplus_to_movie",
    "movie_to_imageplus",
    "outlines_to_roimanager",
    "outlines_to_rois",
    "plan_fiji_java",
    "propagate_in_imagej",
    "read_roimanager",
    "roimanager_to_outlines",
    "rois_to_outlines",
    "start_imagej",
]
