"""Propagation: a trained ReSCU-Net applied frame by frame.

:class:`Propagator` (the engine) and :class:`PropagationState` (its typed session state) need
torch and are imported on first use; :mod:`rescunet_ij.propagate.frames` (the frame rule) does
not, so the API can check a request without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for linters and type checkers; at run time __getattr__ imports these lazily
    from .propagator import ObjectLostWarning, Propagator
    from .state import Origin, PropagationState

__all__ = ["ObjectLostWarning", "Origin", "PropagationState", "Propagator"]

_LAZY = {
    "ObjectLostWarning": ".propagator",
    "Propagator": ".propagator",
    "Origin": ".state",
    "PropagationState": ".state",
}


def __getattr__(name: str) -> Any:
    """Import the engine's classes when first asked for (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
