"""Loss, pixel weights and the IoU metric used in training.

The loss is PyJAMAS' weighted pixel-wise cross-entropy: every pixel's cross-entropy is multiplied
by a weight that balances the two classes and stresses the object's border
(Ronneberger et al., U-Net, 2015; :func:`weight_map`, defined in :mod:`rescunet_ij.data.dataset`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The weights are computed per item by the dataset (data loading workers), so they live in the
# data layer; they are part of the loss and are exported here too.
from ..data.dataset import weight_map

__all__ = ["iou_per_sample", "weight_map", "weighted_cross_entropy"]


def weighted_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Mean over pixels of ``weight * cross_entropy``.

    Parameters
    ----------
    logits
        ``(B, 2, H, W)`` network output (computed in float32 here whatever the autocast dtype).
    target
        ``(B, H, W)`` int64 class per pixel (1 = object).
    weight
        ``(B, H, W)`` float pixel weights (:func:`weight_map`).

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    ce = F.cross_entropy(logits.float(), target, reduction="none")
    return (ce * weight).mean()


@torch.no_grad()
def iou_per_sample(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersection over union of the predicted object (argmax) and the target, per sample.

    Parameters
    ----------
    logits
        ``(B, 2, H, W)`` network output.
    target
        ``(B, H, W)`` class per pixel.

    Returns
    -------
    torch.Tensor
        ``(B,)`` float32 IoUs; 1 where prediction and target are both empty.
    """
    pred = logits.argmax(dim=1) == 1
    tgt = target == 1
    inter = (pred & tgt).flatten(1).sum(1).float()
    union = (pred | tgt).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
