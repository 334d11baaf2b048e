"""The torch dataset that turns training samples into network windows.

Each item is one window around one sample's object, cut, rescaled and normalised exactly as in
propagation (:mod:`rescunet_ij.data.windows`), optionally augmented, plus the pixel weights of
the loss (:func:`weight_map`, also exported by :mod:`rescunet_ij.train.loss`).

Randomness is a pure function of ``(seed, epoch, index)``, so an epoch gives the same windows
whatever the number of DataLoader workers, and workers never repeat each other's draws. Index the
dataset with ``(epoch, index)`` pairs (see :class:`EpochSampler`) or call :meth:`set_epoch`.

**Imperfect prompts** (:class:`PromptAugment`, training windows only): after a few propagated
frames the prompt is the network's own, slightly wrong, prediction. So a share of the training
prompts is made wrong the same ways: shifted by up to the objects' typical displacement,
dilated or eroded by 1-2 pixels, and with boundary pixels dropped or added. The draws come from
their own generator, so switching this on or off leaves every other draw (window position,
flips, intensities) of an item unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage as ndi
from torch.utils.data import Dataset, Sampler

from ..config import NormalizationConfig
from ..errors import DataError
from ..io.training_set import TrainingSample
from ..types import bounding_box
from .windows import clamp_origin, extract_windows, to_network

__all__ = ["EpochSampler", "PromptAugment", "WindowDataset", "foreground_fraction", "weight_map"]

MIN_JITTER = 3
"""Smallest window shift (pixels) drawn in training, even when the object nearly fills it."""

_CACHE_BUDGET_BYTES = 512 * 2**20  # cache deterministic (validation) items up to this size


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = (int(x) for x in v)
    return a, b


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    box = bounding_box(mask)
    if box is None:  # no prompt: centre of the crop
        h, w = mask.shape
        return h // 2, h // 2 + 1, w // 2, w // 2 + 1
    return box


def weight_map(mask: np.ndarray, w0: float, sigma: float, fg_fraction: float) -> np.ndarray:
    """Pixel weights for the loss: class balance plus a border term.

    ``w = (1 - f)`` on the object and ``f`` on the background (``f`` = foreground fraction of
    the training set, so the rarer class weighs more), plus ``w0 * exp(-d**2 / (2 * sigma**2))``
    where ``d`` is each pixel's Euclidean distance to the nearest pixel of the other class
    (1 for pixels touching the border).

    Parameters
    ----------
    mask
        ``(H, W)`` target mask (bool or 0/1).
    w0
        Amplitude of the border term (0 switches it off).
    sigma
        Width of the border term in pixels (> 0).
    fg_fraction
        Foreground fraction ``f`` of the training set, in (0, 1).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32 weights. A mask that is all background (or all foreground) has no
        border, so it gets the class weights only.

    Raises
    ------
    ValueError
        If ``sigma <= 0``, ``w0 < 0`` or ``fg_fraction`` is outside (0, 1).
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if w0 < 0:
        raise ValueError(f"w0 must be >= 0, got {w0}")
    if not 0.0 < fg_fraction < 1.0:
        raise ValueError(f"fg_fraction must be between 0 and 1 (exclusive), got {fg_fraction}")
    mask = np.asarray(mask).astype(bool)
    w = np.where(mask, 1.0 - fg_fraction, fg_fraction).astype(np.float32)
    if w0 > 0 and mask.any() and not mask.all():
        # distance_transform_edt gives each non-zero pixel its distance to the nearest zero pixel.
        d = np.where(mask, ndi.distance_transform_edt(mask), ndi.distance_transform_edt(~mask))
        w += (w0 * np.exp(-(d**2) / (2.0 * sigma**2))).astype(np.float32)
    return w


def foreground_fraction(targets: Sequence[np.ndarray] | np.ndarray) -> float:
    """Fraction of object pixels over a set of target windows, clipped to [0.01, 0.99].

    The clip keeps both class weights of :func:`weight_map` positive even
    for degenerate sets.
    """
    total = sum(int(np.asarray(t).size) for t in targets)
    fg = sum(int(np.count_nonzero(t)) for t in targets)
    return float(np.clip(fg / max(total, 1), 0.01, 0.99))


@dataclass(frozen=True)
class PromptAugment:
    """How training prompts are made imperfect (see the module docstring).

    Attributes
    ----------
    max_shift
        Largest shift along each axis, native pixels (drawn uniformly in
        ``-max_shift..max_shift``).
    fraction
        Share of the training windows whose prompt is changed (the others keep the exact one,
        as after a user's correction).
    max_morph
        Largest dilation or erosion, pixels (drawn in ``-max_morph..max_morph``; 0 = none).
    max_flip
        Largest share of the boundary pixels dropped from (inner ring) or added to (outer ring)
        the prompt; drawn uniformly in ``0..max_flip``.
    """

    max_shift: int
    fraction: float = 0.5
    max_morph: int = 2
    max_flip: float = 0.3

    def __post_init__(self) -> None:
        if self.max_shift < 0 or self.max_morph < 0:
            raise DataError(
                f"prompt augmentation needs max_shift >= 0 and max_morph >= 0, got "
                f"{self.max_shift} and {self.max_morph}"
            )
        if not (0.0 <= self.fraction <= 1.0 and 0.0 <= self.max_flip <= 1.0):
            raise DataError(
                f"prompt augmentation needs fraction and max_flip in 0..1, got {self.fraction} "
                f"and {self.max_flip}"
            )

    @property
    def reach(self) -> int:
        """How far (pixels, along each axis) an augmented prompt can reach from the original."""
        return self.max_shift + self.max_morph + (1 if self.max_flip > 0 else 0)


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` pairs: a seeded shuffle per epoch (or the plain order).

    Keeping the epoch in the index lets persistent DataLoader workers draw fresh augmentations
    every epoch without being told about it.
    """

    def __init__(self, n: int, *, shuffle: bool = True, seed: int = 0) -> None:
        self.n = int(n)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order (and augmentations) the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.n)
        else:
            order = np.arange(self.n)
        return iter((self.epoch, int(i)) for i in order)


class WindowDataset(Dataset):
    """Network windows around training samples, with augmentation and loss weights.

    Parameters
    ----------
    samples
        The training samples (all with the same number of image channels).
    input_size
        Network input ``(H, W)``.
    window
        Native-pixel window ``(h, w)`` cut around each object, resized to ``input_size``.
    normalization
        Intensity scaling (for ``max`` mode, ``max_value`` must be set).
    augment
        Random flips, 90-degree rotations (square inputs only) and intensity jitter; used only
        when ``train`` is true.
    w0, sigma
        Border term of the loss weights (see :func:`weight_map`).
    fg_fraction
        Foreground fraction for the class weights; ``None`` computes it from these samples'
        centred windows (give the training set's value to a validation dataset).
    seed
        Seed of every random draw.
    train
        Training mode: windows are jittered around the object. ``False`` gives deterministic,
        centred windows (validation).
    prompt_augment
        Imperfect prompts (:class:`PromptAugment`), used only when ``train`` is true (never for
        validation), whether or not ``augment`` is; ``None``: the exact prompts.

    Notes
    -----
    ``dataset[i]`` (or ``dataset[(epoch, i)]``) returns a dict with ``image`` ``(C, H, W)``
    float32, ``prev_mask`` ``(1, H, W)`` float32 0/1, ``target`` ``(H, W)`` int64 0/1 and
    ``weight`` ``(H, W)`` float32.
    """

    def __init__(
        self,
        samples: Sequence[TrainingSample],
        *,
        input_size: int | Sequence[int],
        window: int | Sequence[int],
        normalization: NormalizationConfig,
        augment: bool,
        w0: float,
        sigma: float,
        fg_fraction: float | None = None,
        seed: int = 0,
        train: bool = True,
        prompt_augment: PromptAugment | None = None,
    ) -> None:
        samples = list(samples)
        if not samples:
            raise DataError("the dataset has no samples; give at least one training sample")
        if normalization.mode == "max" and normalization.max_value is None:
            raise DataError(
                "normalization mode 'max' needs max_value (the training-set maximum); "
                "train_model fills it in, or set it yourself"
            )
        self.input_size = _pair(input_size)
        self.window = _pair(window)
        self.normalization = normalization
        self.train = bool(train)
        self.augment = bool(augment) and self.train
        self.w0 = float(w0)
        self.sigma = float(sigma)
        self.seed = int(seed)
        self.prompt_augment = prompt_augment if self.train else None
        self.epoch = 0
        self.names = [s.name for s in samples]

        # Precompute everything that does not depend on the draw: float images, masks, bboxes.
        self._images: list[np.ndarray] = []
        self._masks: list[np.ndarray] = []
        self._prev: list[np.ndarray] = []
        self._bboxes: list[tuple[int, int, int, int]] = []
        channels = {s.channels for s in samples}
        if len(channels) > 1:
            raise DataError(
                f"the samples have different numbers of image channels ({sorted(channels)}); "
                "all images of a training set must have the same channels"
            )
        self.channels = channels.pop()
        for s in samples:
            img = np.asarray(s.image, dtype=np.float32)
            img = img[None] if img.ndim == 2 else img
            if img.shape[-2:] != np.shape(s.mask) or np.shape(s.prev_mask) != np.shape(s.mask):
                raise DataError(
                    f"sample {s.name}: image {img.shape[-2:]}, mask {np.shape(s.mask)} "
                    f"and prev_mask {np.shape(s.prev_mask)} must have the same size"
                )
            self._images.append(np.ascontiguousarray(img))
            self._masks.append(np.asarray(s.mask, dtype=bool).astype(np.uint8))
            self._prev.append(np.asarray(s.prev_mask, dtype=bool).astype(np.uint8))
            self._bboxes.append(_bbox(self._prev[-1]))

        if fg_fraction is None:
            targets = [self._cut(i, self._origin(i, None))[1] for i in range(len(samples))]
            fg_fraction = foreground_fraction([t.numpy() for t in targets])
        if not 0.0 < fg_fraction < 1.0:
            raise DataError(f"fg_fraction must be between 0 and 1 (exclusive), got {fg_fraction}")
        self.fg_fraction = float(fg_fraction)

        h, w = self.input_size
        item_bytes = 4 * h * w * (self.channels + 3)
        self._cache: dict[int, dict[str, torch.Tensor]] | None = (
            {} if not self.train and item_bytes * len(samples) <= _CACHE_BUDGET_BYTES else None
        )

    # ------------------------------------------------------------------------- geometry

    def __len__(self) -> int:
        return len(self._images)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch used for plain integer indices (augmentations differ per epoch)."""
        self.epoch = int(epoch)

    def _origin(self, idx: int, rng: np.random.Generator | None) -> tuple[int, int]:
        """Window origin: centred on the prompt's bbox; jittered in training mode."""
        r0, r1, c0, c1 = self._bboxes[idx]
        H, W = self._masks[idx].shape
        out = []
        for lo, hi, size, length in ((r0, r1, self.window[0], H), (c0, c1, self.window[1], W)):
            extent = hi - lo
            if rng is None:
                start = round((lo + hi) / 2 - size / 2)
            elif extent <= size:
                jmax = max((size - extent) // 2, MIN_JITTER)
                start = round((lo + hi) / 2 - size / 2) + int(rng.integers(-jmax, jmax + 1))
            else:  # object larger than the window: any part of it may be in view
                start = round(rng.uniform(lo, hi) - size / 2)
            out.append(clamp_origin(start, size, length))
        return out[0], out[1]

    def _cut(
        self, idx: int, origin: tuple[int, int], prev: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cut and scale one window: image (C,H,W) normalised, target (H,W), prompt (1,H,W).

        ``prev`` is the prompt's native window when it was made imperfect (else it is cut).
        """
        origins = [origin]
        img = np.stack(
            [
                extract_windows(ch, origins, self.window, pad_mode="reflect")[0]
                for ch in self._images[idx]
            ]
        )
        tgt = extract_windows(self._masks[idx], origins, self.window, pad_mode="constant")
        if prev is None:
            prev = extract_windows(self._prev[idx], origins, self.window, pad_mode="constant")
        image = to_network(img[None], self.input_size, normalization=self.normalization)[0]
        target = to_network(tgt, self.input_size, is_mask=True)[0, 0]
        prompt = to_network(prev, self.input_size, is_mask=True)[0]
        return image, target, prompt

    def _imperfect_prompt(
        self, idx: int, origin: tuple[int, int], rng: np.random.Generator
    ) -> np.ndarray | None:
        """The prompt's native ``(1, h, w)`` window made imperfect, or ``None`` (not this time).

        Shifted by whole pixels (cut from a moved origin, so parts from outside the window come
        in), dilated or eroded, then boundary pixels dropped or added; all on a window grown by
        a margin so the window's edge does not erode. A prompt that would vanish stays exact.
        """
        aug = self.prompt_augment
        if aug is None or rng.random() >= aug.fraction:
            return None
        s, m = aug.max_shift, aug.max_morph + 2
        dy, dx = (int(v) for v in rng.integers(-s, s + 1, size=2))
        morph = int(rng.integers(-aug.max_morph, aug.max_morph + 1))
        flip = float(rng.uniform(0.0, aug.max_flip))
        (wh, ww), (y0, x0) = self.window, origin
        grown = (wh + 2 * m, ww + 2 * m)
        out = extract_windows(
            self._prev[idx], [(y0 - dy - m, x0 - dx - m)], grown, pad_mode="constant"
        )[0]
        out = out.astype(bool)
        if morph > 0:
            out = ndi.binary_dilation(out, iterations=morph)
        elif morph < 0:
            out = ndi.binary_erosion(out, iterations=-morph)
        if flip > 0 and out.any():
            inner = out & ~ndi.binary_erosion(out)
            outer = ndi.binary_dilation(out) & ~out
            draw = rng.random(out.shape) < flip
            out = (out & ~(inner & draw)) | (outer & draw)
        out = out[m : m + wh, m : m + ww]
        return out[None].astype(np.uint8) if out.any() else None

    # ------------------------------------------------------------------------- augmentation

    def _augment(
        self,
        image: torch.Tensor,
        target: torch.Tensor,
        prompt: torch.Tensor,
        rng: np.random.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Geometry: the same flips/rotation for image, target and prompt keeps them aligned.
        dims = []
        if rng.random() < 0.5:
            dims.append(-1)
        if rng.random() < 0.5:
            dims.append(-2)
        if dims:
            image, target, prompt = (torch.flip(t, dims) for t in (image, target, prompt))
        if self.input_size[0] == self.input_size[1]:
            k = int(rng.integers(0, 4))
            if k:
                image, target, prompt = (
                    torch.rot90(t, k, (-2, -1)) for t in (image, target, prompt)
                )

        # Intensity, after normalisation (~[0, 1]; clipped to [-0.5, 1.5] in percentile mode).
        contrast = float(rng.uniform(0.75, 1.25))
        offset = float(rng.uniform(-0.1, 0.1))
        image = image * contrast + offset
        if rng.random() < 0.5:
            gamma = float(rng.uniform(0.8, 1.25))
            clipped = image.clamp(0.0, 1.0)
            # Gamma bends the [0, 1] part only; what lies outside keeps its offset from the range.
            image = image + (clipped.pow(gamma) - clipped)
        if rng.random() < 0.5:
            std = float(rng.uniform(0.0, 0.03))
            image = image + torch.from_numpy(
                rng.normal(0.0, std, size=tuple(image.shape)).astype(np.float32)
            )

        return image.contiguous(), target.contiguous(), prompt.contiguous()

    # ------------------------------------------------------------------------- items

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        if isinstance(key, tuple):
            epoch, idx = int(key[0]), int(key[1])
        else:
            epoch, idx = self.epoch, int(key)
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} out of range for a dataset of {len(self)} samples")
        idx %= len(self)
        if self._cache is not None and idx in self._cache:
            return self._cache[idx]
        rng = np.random.default_rng([self.seed, epoch, idx]) if self.train else None
        origin = self._origin(idx, rng)
        prev = None
        if self.prompt_augment is not None:  # its own draws: the others do not depend on it
            prev = self._imperfect_prompt(
                idx, origin, np.random.default_rng([self.seed, epoch, idx, 1])
            )
        image, target, prompt = self._cut(idx, origin, prev)
        if self.augment and rng is not None:
            image, target, prompt = self._augment(image, target, prompt, rng)
        mask = target.numpy() > 0.5
        weight = weight_map(mask, self.w0, self.sigma, self.fg_fraction)
        item = {
            "image": image.float(),
            "prev_mask": prompt.float(),
            "target": torch.from_numpy(mask.astype(np.int64)),
            "weight": torch.from_numpy(weight),
        }
        if self._cache is not None:
            self._cache[idx] = item
        return item
