"""Propagation: a trained ReSCU-Net applied frame by frame (:class:`Propagator`, :class:`PropagationState`)."""

from __future__ import annotations

from .propagator import ObjectLostWarning, Propagator
from .state import Origin, PropagationState

__all__ = ["ObjectLostWarning", "Origin", "PropagationState", "Propagator"]
