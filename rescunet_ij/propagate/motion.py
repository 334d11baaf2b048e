"""Motion between two frames, as the propagation engine uses it.

The estimates and the rule that combines them live in :mod:`rescunet_ij.data.motion`, beside the
window geometry, because training cuts its samples with the same estimates (training and
propagation share one geometry) and ``data/`` sits below ``propagate/``. This module re-exports
them so the engine can keep importing ``.motion``.
"""

from __future__ import annotations

from ..data.motion import (
    MOTION_MODES,
    NO_SHIFT,
    MotionMode,
    Shift,
    check_motion_mode,
    estimate_global_shift,
    estimate_object_shift,
    global_motion,
    motion_plane,
    object_motion,
    search_radius,
    shift_mask,
)

__all__ = [
    "MOTION_MODES",
    "NO_SHIFT",
    "MotionMode",
    "Shift",
    "check_motion_mode",
    "estimate_global_shift",
    "estimate_object_shift",
    "global_motion",
    "motion_plane",
    "object_motion",
    "search_radius",
    "shift_mask",
]
