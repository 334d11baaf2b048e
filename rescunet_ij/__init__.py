"""rescunet-ij: ReSCU-Net segmentation propagation for Fiji/ImageJ users.

``import rescunet_ij`` is cheap and has no side effects: it starts no JVM, imports no torch
model code and probes no GPU. The public API lives in :mod:`rescunet_ij.api`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
