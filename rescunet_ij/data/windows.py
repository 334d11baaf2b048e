"""Window geometry and intensity scaling shared by training and propagation.

The network never sees a whole frame: it sees a *window* of ``window`` native pixels (the seed's
"subimage size") around an object's previous mask, rescaled to the network input size. Training and
prediction must cut, scale and normalise windows the same way, otherwise accuracy drops (PyJAMAS
trained on rescaled crops but predicted at native scale: IoU fell from 0.92 to 0.76). So both call
the functions here and nothing else.

Pipeline of one window: :func:`plan_windows` (where) -> :func:`extract_windows` (native pixels,
numpy) -> :func:`to_network` (torch: resize to the input size, normalise) -> network ->
:func:`from_network` (probabilities back at native scale).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..config import NormalizationConfig
from ..types import ObjectMask, bounding_box

__all__ = [
    "plan_windows",
    "extract_windows",
    "to_network",
    "from_network",
    "normalize",
    "clamp_origin",
]


def clamp_origin(start: int, size: int, length: int) -> int:
    """Shift a window ``[start, start+size)`` inside ``[0, length)`` when the image is big enough.

    Keeping windows inside the image (instead of padding) means an object at the border is seen
    with real image context, as in training. Only images smaller than the window are padded.
    """
    if length <= size:
        return (length - size) // 2  # centred, padded on both sides
    return int(min(max(start, 0), length - size))


def _axis_starts(lo: int, hi: int, size: int, overlap: float, length: int) -> list[int]:
    """Window starts along one axis covering ``[lo, hi)`` with at least ``overlap`` overlap."""
    extent = hi - lo
    if extent <= size:
        centre = (lo + hi) / 2
        return [clamp_origin(int(round(centre - size / 2)), size, length)]
    stride = max(1, int(size * (1.0 - overlap)))
    n = math.ceil((extent - size) / stride) + 1
    starts = np.linspace(lo, hi - size, n)
    return sorted({clamp_origin(int(round(s)), size, length) for s in starts})


def plan_windows(
    prev: ObjectMask,
    plane_shape: tuple[int, int],
    window: tuple[int, int],
    *,
    context: float = 0.25,
    overlap: float = 0.25,
) -> list[tuple[int, int]]:
    """Origins ``(y0, x0)`` of the windows that cover an object's search region.

    The search region is the previous mask's bounding box grown by ``context / 2`` x window on
    each side (where the object may have moved). A region that fits in one window gets one centred
    window; a larger one is tiled with ``overlap``. Tiles that do not come within the context
    margin of the previous mask are skipped (an L-shaped cell needs no empty corner tile).
    """
    if prev.area == 0:
        return []
    wh, ww = window
    H, W = plane_shape
    r0, r1, c0, c1 = bounding_box(prev.mask)  # type: ignore[misc]  # area > 0
    my, mx = int(round(context * wh / 2)), int(round(context * ww / 2))
    y_lo, y_hi = prev.y0 + r0 - my, prev.y0 + r1 + my
    x_lo, x_hi = prev.x0 + c0 - mx, prev.x0 + c1 + mx
    y_lo, y_hi = max(y_lo, min(0, H - wh)), min(y_hi, max(H, wh))
    x_lo, x_hi = max(x_lo, min(0, W - ww)), min(x_hi, max(W, ww))
    ys = _axis_starts(y_lo, y_hi, wh, overlap, H)
    xs = _axis_starts(x_lo, x_hi, ww, overlap, W)
    if len(ys) * len(xs) == 1:
        return [(ys[0], xs[0])]
    # Keep tiles whose area, grown by the context margin, touches the previous mask.
    integral = np.pad(prev.mask.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    mh, mw = prev.mask.shape

    def has_mask(y0: int, x0: int) -> bool:
        a0 = int(np.clip(y0 - my - prev.y0, 0, mh))
        a1 = int(np.clip(y0 + wh + my - prev.y0, 0, mh))
        b0 = int(np.clip(x0 - mx - prev.x0, 0, mw))
        b1 = int(np.clip(x0 + ww + mx - prev.x0, 0, mw))
        return integral[a1, b1] - integral[a0, b1] - integral[a1, b0] + integral[a0, b0] > 0

    return [(y, x) for y in ys for x in xs if has_mask(y, x)]


def extract_windows(
    plane: np.ndarray,
    origins: list[tuple[int, int]],
    window: tuple[int, int],
    *,
    pad_mode: str = "reflect",
) -> np.ndarray:
    """Cut ``(N, wh, ww)`` windows from a 2-D plane; parts outside the plane are padded.

    ``pad_mode`` is ``"reflect"`` for images (no artificial edges) and ``"constant"`` (zeros) for
    masks.
    """
    wh, ww = window
    H, W = plane.shape
    out = np.empty((len(origins), wh, ww), dtype=plane.dtype)
    for k, (y0, x0) in enumerate(origins):
        ys, xs = max(y0, 0), max(x0, 0)
        ye, xe = min(y0 + wh, H), min(x0 + ww, W)
        if ys == y0 and xs == x0 and ye == y0 + wh and xe == x0 + ww:
            out[k] = plane[ys:ye, xs:xe]
            continue
        crop = plane[ys:ye, xs:xe]
        pads = ((ys - y0, y0 + wh - ye), (xs - x0, x0 + ww - xe))
        if crop.size == 0:
            out[k] = 0
        elif pad_mode == "reflect" and min(crop.shape) > 1:
            # numpy's reflect cannot pad more than the size - 1 in one go: use symmetric tiling.
            out[k] = np.pad(crop, pads, mode="symmetric")
        elif pad_mode == "reflect":
            out[k] = np.pad(crop, pads, mode="edge")
        else:
            out[k] = np.pad(crop, pads, mode="constant")
    return out


def normalize(images: torch.Tensor, cfg: NormalizationConfig) -> torch.Tensor:
    """Scale intensities of a ``(N, C, H, W)`` float batch to about [0, 1].

    ``percentile``: each window's low/high percentiles (per channel) map to 0/1, clipped to
    [-0.5, 1.5] so a bright neighbour cannot dominate. ``max``: divide by the training set maximum.
    """
    if cfg.mode == "max":
        scale = cfg.max_value or 1.0
        return images / float(scale)
    flat = images.flatten(2)
    q = torch.tensor(
        [cfg.low_percentile / 100.0, cfg.high_percentile / 100.0],
        device=images.device,
        dtype=flat.dtype,
    )
    if flat.shape[-1] > 2**24:  # torch.quantile's limit; subsample huge windows
        flat = flat[..., :: math.ceil(flat.shape[-1] / 2**24)]
    lo_hi = torch.quantile(flat, q, dim=-1)  # (2, N, C)
    lo = lo_hi[0][..., None, None]
    hi = lo_hi[1][..., None, None]
    out = (images - lo) / torch.clamp(hi - lo, min=1e-6)
    return out.clamp_(-0.5, 1.5)


def to_network(
    windows: np.ndarray | torch.Tensor,
    input_size: tuple[int, int],
    *,
    is_mask: bool = False,
    normalization: NormalizationConfig | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Turn ``(N, h, w)`` or ``(N, C, h, w)`` native windows into the network's input.

    The result is an ``(N, C, H, W)`` tensor of ``input_size``. Images are resized bilinearly
    (with antialiasing when shrinking) and normalised; masks are resized bilinearly and
    re-binarised at 0.5 so that shrinking does not erase thin parts unevenly. With window ==
    input size nothing is resized (the default: no rescaling).
    """
    t = torch.as_tensor(
        np.ascontiguousarray(windows) if isinstance(windows, np.ndarray) else windows
    )
    t = t.to(device=device, dtype=torch.float32, non_blocking=True)
    if t.ndim == 3:
        t = t[:, None]
    if tuple(t.shape[-2:]) != tuple(input_size):
        shrink = t.shape[-2] > input_size[0] or t.shape[-1] > input_size[1]
        t = F.interpolate(
            t, size=tuple(input_size), mode="bilinear", align_corners=False, antialias=shrink
        )
        if is_mask:
            t = (t >= 0.5).float()
    if not is_mask and normalization is not None:
        t = normalize(t, normalization)
    return t


def from_network(prob: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """Resize ``(N, 1, H, W)`` probabilities back to the native ``window`` (bilinear)."""
    if tuple(prob.shape[-2:]) == tuple(window):
        return prob
    return F.interpolate(prob, size=tuple(window), mode="bilinear", align_corners=False)
