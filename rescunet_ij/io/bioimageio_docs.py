"""The human-facing parts of a BioImage.IO package: its README and its cover image.

Split from :mod:`rescunet_ij.io.bioimageio` (which builds, checks and writes the package): the
README tells what the spec cannot express (the window around the previous mask, resizing,
threshold, erosion, the loop) in the model's own numbers.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import ModelConfig, NormalizationConfig

__all__ = ["CITATION", "CITATION_URL", "THRESHOLD", "cover_png", "readme"]

CITATION = (
    "Hawkins R, Balaghi N, Rothenberg KE, Ly M, Fernandez-Gonzalez R. ReSCU-Nets: recurrent "
    "U-Nets for segmentation of three-dimensional microscopy data. J Cell Biol (2025)."
)
"""The paper that introduced ReSCU-Nets."""

CITATION_URL = "https://bitbucket.org/raymond_hawkins_utor/rescu-net/src/main/"
"""The ReSCU-Net authors' code repository, cited with the paper (the spec needs a DOI or URL)."""

THRESHOLD = 0.5
"""The foreground probability cut-off rescunet-ij uses by default."""


def _normalization_words(normalization: NormalizationConfig) -> str:
    if normalization.mode == "max":
        return f"each image is divided by {normalization.max_value or 1.0:g} (the training maximum)"
    return (
        f"in each window (and channel) the percentiles {normalization.low_percentile:g} and "
        f"{normalization.high_percentile:g} map to 0 and 1, then values are clipped to "
        "[-0.5, 1.5]"
    )


def readme(
    *,
    name: str,
    model_config: ModelConfig,
    normalization: NormalizationConfig,
    window_size: tuple[int, int],
    erosion_width: int,
    single_input: bool,
    weight_formats: Sequence[str],
    package_version: str,
    history: Sequence[dict[str, Any]],
) -> str:
    """The package's README.md: what the model does, its citation, and the propagation loop."""
    h, w = model_config.input_size
    wh, ww = window_size
    c = model_config.in_channels
    resize = (
        "the window is the network input: no resizing"
        if (wh, ww) == (h, w)
        else f"resize the {wh}x{ww} window to {h}x{w} (bilinear, antialiased when shrinking; the "
        "mask bilinear, then >= 0.5) and the probabilities back to the window"
    )
    if single_input:
        io_text = (
            f"* input `input` `(batch, {c + 1}, y, x)`: the {c} image channel(s) (raw "
            "intensities) followed by the prompt, the object's mask in the previous frame "
            "(0/1 or 0/255). The network normalises the image channels itself "
            f"({_normalization_words(normalization)}) and binarises the prompt at 0.5, so the "
            "input needs no pre-processing.\n"
        )
    else:
        io_text = (
            f"* input `image` `(batch, {c}, y, x)`: raw intensities; pre-processing: "
            f"{_normalization_words(normalization)} (spec operations "
            + (
                "`scale_linear`"
                if normalization.mode == "max"
                else "`scale_range` over y, x and `clip`"
            )
            + ").\n"
            "* input `prompt` `(batch, 1, y, x)`: the object's mask in the previous frame "
            "(0/1 or 0/255; binarised at 0.5).\n"
        )
    best = None
    losses = [r.get("val_loss", r.get("train_loss")) for r in history]
    losses = [x for x in losses if isinstance(x, (int, float))]
    if losses:
        best = min(losses)
    validation = (
        f"The model was trained for {len(history)} epoch(s); its best validation loss was "
        f"{best:.4g}. "
        if best is not None
        else ""
    )
    norm_words = _normalization_words(normalization)
    erosion = f"{erosion_width} pixel(s)" + (" (0: no erosion)" if erosion_width == 0 else "")
    call = (
        "sample = predict(model=model, inputs={'input': stacked})  # (1, C+1, y, x)"
        if single_input
        else "sample = predict(model=model, inputs={'image': image, 'prompt': prompt})"
    )
    return f"""# {name}

A **ReSCU-Net** (recurrent segmentation U-Net) exported by rescunet-ij {package_version}. Given an
image window and the mask of one object in the previous frame (the *prompt*), it returns the
probability that each pixel belongs to that object in the current frame. Applied frame after frame
it propagates a segmentation through a time-lapse movie (or through the planes of a z-stack).

If you use this model, please cite:

> {CITATION}

Code of the original ReSCU-Net: <{CITATION_URL}>.

## Inputs and output

{io_text}* output `probability` `(batch, 1, y, x)`: foreground probability in [0, 1].

y and x can be any multiple of 16 (the network pools four times); the model was trained on
{h}x{w} network windows cut as {wh}x{ww}-pixel windows of the movie. Architecture: ReSCU-Net,
base width {model_config.base_filters}, concatenation level {model_config.concatenation_level}
(where the prompt joins the image), {c} image channel(s). Weights: {", ".join(weight_formats)}.

## How to run the propagation loop

The network segments one object in one window. To follow an object through a movie:

1. Start from a mask of the object in a seed frame (drawn by hand, or a label image).
2. For the next frame, cut a {wh}x{ww} window centred on the bounding box of the previous mask
   (shifted inside the image near the border; an object larger than the window is covered by
   overlapping windows). Cut the previous mask with the same window: that is the prompt.
3. {resize[0].upper() + resize[1:]}.
4. Run the model; the image is normalised as in training: {norm_words}.
5. Threshold the probability at {THRESHOLD}, keep the connected component that overlaps the
   prompt best, and erode it by {erosion} (the training setting).
6. That mask is the prompt for the following frame: repeat from step 2. Correct a frame by hand
   when the segmentation drifts and continue from the corrected mask.

rescunet-ij does all of this (with motion compensation and tiling) in one command, reading and
writing ImageJ ROIs:
`rescunet-ij propagate MOVIE.tif RoiSet.zip --model MODEL.rescunet -o RoiSet_out.zip`.

One window with `bioimageio.core` in Python:

```python
from bioimageio.core import load_description, predict
model = load_description("model.zip")
{call}
probability = sample.members["probability"].data  # (1, 1, y, x)
```

## Validation

{validation}The package's test tensors are a window of a synthetic movie
(`rescunet_ij.sample_data.synthetic_movie`) and this model's prediction for it; `bioimageio.core`
reproduces them (`bioimageio test model.zip`). Measure the accuracy on your own data by
propagating through annotated frames and comparing with the annotation (IoU per object and frame).

## Limitations

The network knows only the kind of images it was trained on: check the first frames of a new kind
of movie by eye. Errors propagate from frame to frame: correct a wrong frame and continue from the
correction.
"""


def cover_png(image: np.ndarray, prompt: np.ndarray, probability: np.ndarray) -> bytes:
    """A 2:1 cover: the window with the prompt's outline (magenta) | the probability map."""
    from PIL import Image
    from scipy import ndimage as ndi

    img = image.astype(np.float64)
    lo, hi = np.percentile(img, (1, 99.8))
    gray = np.clip((img - lo) / max(hi - lo, 1e-9), 0, 1)
    left = np.repeat((gray * 255).astype(np.uint8)[..., None], 3, axis=-1)
    mask = prompt >= THRESHOLD
    edge = mask & ~ndi.binary_erosion(mask)
    left[edge] = (255, 0, 255)
    prob = (np.clip(probability, 0, 1) * 255).astype(np.uint8)
    right = np.stack([prob, prob, np.zeros_like(prob)], axis=-1)  # yellow on black
    found = probability >= THRESHOLD
    right[found & ~ndi.binary_erosion(found)] = (0, 255, 255)
    both = np.concatenate([left, right], axis=1)
    scale = max(1, int(np.ceil(256 / both.shape[0])))
    both = np.kron(both, np.ones((scale, scale, 1), dtype=np.uint8))
    buf = io.BytesIO()
    Image.fromarray(both).save(buf, format="PNG")
    return buf.getvalue()
