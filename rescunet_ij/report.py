"""Pictures for people: outlines over frames (PNG contact sheet and animated GIF)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .io.rois import object_color
from .types import Outline


def _display(plane: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(plane, (0.5, 99.8))
    return np.clip((plane - lo) / max(hi - lo, 1e-9), 0, 1)


def _draw(ax, plane, outlines: Sequence[Outline], title: str) -> None:
    ax.imshow(
        _display(plane),
        cmap="gray",
        interpolation="nearest",
        extent=(0, plane.shape[1], plane.shape[0], 0),
    )
    for o in outlines:
        poly = np.vstack([o.polygon, o.polygon[:1]])
        colour = object_color(o.object_id)  # the colour Fiji shows this object's ROIs in
        ax.plot(poly[:, 0], poly[:, 1], "-", color=colour, lw=1.2)
        cx, cy = o.polygon.mean(axis=0)
        ax.text(cx, cy, str(o.object_id), color=colour, fontsize=7, ha="center", va="center")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def overlay_png(
    planes: np.ndarray,
    outlines: Iterable[Outline],
    path: str | Path,
    *,
    frames: Sequence[int] | None = None,
    columns: int = 4,
) -> Path:
    """A contact sheet of ``frames`` (default: 8 evenly spaced) with the outlines drawn on them."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .io.atomic import atomic_write

    outlines = list(outlines)
    n = planes.shape[0]
    if frames is None:
        frames = sorted({int(round(f)) for f in np.linspace(0, n - 1, min(n, 8))})
    rows = -(-len(frames) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, f in zip(axes.ravel(), frames):
        _draw(ax, planes[f], [o for o in outlines if o.frame == f], f"frame {f + 1}")
    fig.tight_layout()
    with atomic_write(path, mode="wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def overlay_gif(
    planes: np.ndarray, outlines: Iterable[Outline], path: str | Path, *, fps: float = 4.0
) -> Path:
    """An animated GIF of every frame with its outlines."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from PIL import Image

    from .io.atomic import atomic_write

    outlines = list(outlines)
    images = []
    fig, ax = plt.subplots(figsize=(4, 4 * planes.shape[1] / planes.shape[2]))
    for f in range(planes.shape[0]):
        ax.clear()
        _draw(ax, planes[f], [o for o in outlines if o.frame == f], f"frame {f + 1}")
        fig.tight_layout()
        fig.canvas.draw()
        images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]))
    plt.close(fig)
    with atomic_write(path, mode="wb") as fh:
        images[0].save(
            fh,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=int(1000 / fps),
            loop=0,
        )
    return Path(path)
