"""The training dataset: windows, augmentation that keeps image and masks aligned, loss weights."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from torch.utils.data import DataLoader

from rescunet_ij.config import NormalizationConfig
from rescunet_ij.data.dataset import (
    EpochSampler,
    PromptAugment,
    WindowDataset,
    foreground_fraction,
)
from rescunet_ij.data.samples import samples_from_masks
from rescunet_ij.errors import DataError
from rescunet_ij.io.training_set import TrainingSample
from rescunet_ij.sample_data import synthetic_movie
from rescunet_ij.train.loss import iou_per_sample, weight_map, weighted_cross_entropy

NORM = NormalizationConfig()


def _ds(samples, **kw):
    args = {
        "input_size": 32,
        "window": 32,
        "normalization": NORM,
        "augment": True,
        "w0": 10.0,
        "sigma": 5.0,
    }
    args.update(kw)
    return WindowDataset(samples, **args)


@pytest.fixture(scope="module")
def samples():
    movie = synthetic_movie(5, (96, 96), n_objects=3, seed=4)
    masks = {o: {t: movie.labels[t] == o for t in range(5)} for o in (1, 2, 3)}
    return samples_from_masks(movie.images, masks, 32)


def _l_shape_sample(name="L", size=70):
    """An asymmetric object whose image derives from its mask (bright object, dark background)."""
    m = np.zeros((size, size), bool)
    m[20:45, 25:32] = True  # vertical bar
    m[38:45, 25:48] = True  # foot to the right: flips and rotations change the shape's look
    image = np.where(m, 1000, 100).astype(np.uint16)
    return TrainingSample(image=image, mask=m, prev_mask=m.copy(), name=name)


# ----------------------------------------------------------------------------- items


@pytest.mark.parametrize("train,augment", [(True, True), (True, False), (False, False)])
def test_item_shapes_and_dtypes(samples, train, augment):
    ds = _ds(samples, input_size=(32, 48), window=(40, 56), train=train, augment=augment)
    assert len(ds) == len(samples)
    item = ds[0]
    assert item["image"].shape == (1, 32, 48) and item["image"].dtype == torch.float32
    assert item["prev_mask"].shape == (1, 32, 48) and item["prev_mask"].dtype == torch.float32
    assert item["target"].shape == (32, 48) and item["target"].dtype == torch.int64
    assert item["weight"].shape == (32, 48) and item["weight"].dtype == torch.float32
    assert set(torch.unique(item["prev_mask"]).tolist()) <= {0.0, 1.0}
    assert set(torch.unique(item["target"]).tolist()) <= {0, 1}
    assert (item["weight"] > 0).all()


def test_multichannel_items():
    rng = np.random.default_rng(1)
    m = np.zeros((50, 50), bool)
    m[15:30, 20:35] = True
    s = TrainingSample(rng.random((2, 50, 50)).astype(np.float32), m, m, "x")
    assert _ds([s])[0]["image"].shape == (2, 32, 32)


def test_eval_mode_is_deterministic_and_centred(samples):
    ds = _ds(samples, train=False, augment=True)
    for i in range(len(ds)):
        a, b = ds[i], ds[(5, i)]
        for k in a:
            assert torch.equal(a[k], b[k])
        # The prompt is centred in the window (up to rounding and the frame border).
        prev = a["prev_mask"][0].numpy()
        rows, cols = np.flatnonzero(prev.any(1)), np.flatnonzero(prev.any(0))
        if rows.size and 0 < rows[0] and rows[-1] < 31 and 0 < cols[0] and cols[-1] < 31:
            assert abs((rows[0] + rows[-1]) / 2 - 15.5) <= 1.5
            assert abs((cols[0] + cols[-1]) / 2 - 15.5) <= 1.5


def test_training_windows_are_jittered_and_reproducible(samples):
    ds = _ds(samples, augment=False)
    centred = _ds(samples, augment=False, train=False)
    first = [ds[(1, i)]["prev_mask"] for i in range(len(ds))]
    assert all(torch.equal(f, ds[(1, i)]["prev_mask"]) for i, f in enumerate(first))  # same draw
    moved = sum(not torch.equal(f, centred[i]["prev_mask"]) for i, f in enumerate(first))
    assert moved >= len(ds) // 2
    other_epoch = sum(not torch.equal(f, ds[(2, i)]["prev_mask"]) for i, f in enumerate(first))
    assert other_epoch >= len(ds) // 2
    # Without augmentation the prompt is just shifted: same area when the object fits the window.
    ds.set_epoch(3)
    assert torch.equal(ds[0]["prev_mask"], ds[(3, 0)]["prev_mask"])


def test_augmentation_keeps_image_and_masks_aligned():
    ds = _ds([_l_shape_sample()], input_size=48, window=48)
    looks = set()
    for epoch in range(40):
        item = ds[(epoch, 0)]
        img, tgt, prev = item["image"][0], item["target"], item["prev_mask"][0]
        assert tgt.sum() > 0
        thr = (img[tgt == 1].mean() + img[tgt == 0].mean()) / 2
        agree = ((img > thr) == (tgt == 1)).float().mean().item()
        assert agree > 0.995, (
            f"epoch {epoch}: image and target disagree on {1 - agree:.1%} of the pixels"
        )
        assert torch.equal(prev, tgt.float())
        # Record the orientation of the L: which quadrant around the centroid holds the foot.
        ys, xs = np.nonzero(tgt.numpy())
        looks.add(
            (
                int(np.sign(np.round(np.mean(ys) - np.median(ys)))),
                int(np.sign(np.round(np.mean(xs) - np.median(xs)))),
            )
        )
    assert len(looks) >= 3  # flips/rotations really happen


def test_intensity_jitter_changes_values_not_geometry():
    s = _l_shape_sample()
    plain = _ds([s], input_size=48, window=48, augment=False, train=False)[0]["image"]
    jittered = [_ds([s], input_size=48, window=48, seed=k)[0]["image"] for k in range(5)]
    assert any(
        not torch.allclose(j.sort().values, plain.sort().values, atol=1e-3) for j in jittered
    )


def _blob_sample(name="blob", size=90, shift=(0, 0)):
    """A round object well inside a 48-pixel window, its prompt ``shift`` pixels away."""
    yy, xx = np.mgrid[:size, :size]
    m = np.hypot(yy - size / 2, xx - size / 2) < 11
    prev = np.roll(m, shift, axis=(0, 1))
    return TrainingSample(np.where(m, 1000, 100).astype(np.uint16), m, prev, name)


def _prompts(ds, epochs, idx=0):
    return [ds[(e, idx)]["prev_mask"][0].numpy() > 0.5 for e in epochs]


def test_imperfect_prompts_stay_within_their_limits():
    aug = PromptAugment(max_shift=4, fraction=1.0)
    kw = dict(input_size=48, window=48, augment=False)
    exact = _prompts(_ds([_blob_sample()], **kw), range(40))
    wrong = _prompts(_ds([_blob_sample()], prompt_augment=aug, **kw), range(40))
    square = np.ones((2 * aug.reach + 1,) * 2, bool)  # reach pixels along each axis
    areas, moves = [], []
    for e, (a, w) in enumerate(zip(exact, wrong)):
        assert w.any(), f"epoch {e}: the prompt vanished"
        assert not (w & ~ndi.binary_dilation(a, square)).any(), f"epoch {e}: reaches too far"
        assert not (ndi.binary_erosion(a, square) & ~w).any(), f"epoch {e}: lost its core"
        (ya, xa), (yw, xw) = np.argwhere(a).mean(0), np.argwhere(w).mean(0)
        moves.append(max(abs(yw - ya), abs(xw - xa)))
        areas.append(w.sum() / a.sum())
    assert max(moves) <= aug.max_shift + 1.5 and max(moves) >= 2  # shifted, within the limit
    assert min(areas) < 0.8 and max(areas) > 1.2  # eroded and dilated
    assert sum(not np.array_equal(a, w) for a, w in zip(exact, wrong)) >= 38


def test_boundary_flips_drop_and_add_boundary_pixels_only():
    aug = PromptAugment(max_shift=0, fraction=1.0, max_morph=0, max_flip=0.5)
    kw = dict(input_size=48, window=48, augment=False)
    exact = _prompts(_ds([_blob_sample()], **kw), range(10))
    wrong = _prompts(_ds([_blob_sample()], prompt_augment=aug, **kw), range(10))
    for a, w in zip(exact, wrong):
        ring = ndi.binary_dilation(a) & ~ndi.binary_erosion(a)
        changed = a ^ w
        assert changed.any() and not (changed & ~ring).any()


def test_prompt_augmentation_is_seeded_per_epoch_and_leaves_other_draws_alone(samples):
    aug = PromptAugment(max_shift=3, fraction=0.5)
    plain, wrong = _ds(samples), _ds(samples, prompt_augment=aug)
    changed = 0
    for i in range(len(samples)):
        a, b = plain[(1, i)], wrong[(1, i)]
        for k in ("image", "target", "weight"):  # same window, flips and intensities
            assert torch.equal(a[k], b[k])
        assert torch.equal(b["prev_mask"], wrong[(1, i)]["prev_mask"])  # reproducible
        changed += not torch.equal(a["prev_mask"], b["prev_mask"])
    assert 0.2 * len(samples) <= changed <= 0.8 * len(samples)  # about half of them
    other = sum(
        not torch.equal(wrong[(1, i)]["prev_mask"], wrong[(2, i)]["prev_mask"])
        for i in range(len(samples))
    )
    assert other >= len(samples) // 2  # another epoch, other draws
    none = _ds(samples, prompt_augment=PromptAugment(max_shift=3, fraction=0.0))
    assert all(torch.equal(none[(1, i)]["prev_mask"], plain[(1, i)]["prev_mask"]) for i in range(3))


def test_validation_prompts_are_never_augmented(samples):
    aug = PromptAugment(max_shift=5, fraction=1.0)
    val = _ds(samples, train=False, prompt_augment=aug)
    exact = _ds(samples, train=False)
    assert val.prompt_augment is None
    for i in range(len(samples)):
        assert torch.equal(val[(3, i)]["prev_mask"], exact[(3, i)]["prev_mask"])


def test_prompt_augment_settings_are_checked():
    with pytest.raises(DataError, match="max_shift >= 0"):
        PromptAugment(max_shift=-1)
    with pytest.raises(DataError, match="fraction and max_flip in 0..1"):
        PromptAugment(max_shift=2, fraction=1.5)
    assert PromptAugment(max_shift=4).reach == 4 + 2 + 1


def test_object_larger_than_window_and_sample_smaller_than_window():
    m = np.zeros((120, 120), bool)
    m[10:110, 20:100] = True
    big = TrainingSample(np.where(m, 900, 50).astype(np.uint16), m, m, "big")
    ds = _ds([big], window=32)
    for e in range(5):
        assert ds[(e, 0)]["target"].float().mean() > 0.3  # the window lies on the object
    small_m = np.zeros((12, 10), bool)
    small_m[3:8, 2:7] = True
    small = TrainingSample(np.where(small_m, 500, 20).astype(np.uint16), small_m, small_m, "small")
    item = _ds([small], window=32, train=False)[0]
    assert item["target"].sum() == small_m.sum()  # padded around, nothing lost


def test_window_rescaled_to_input_size(samples):
    native = _ds(samples, input_size=32, window=32, train=False)
    scaled = _ds(samples, input_size=32, window=64, train=False)
    # A twice-larger window shows the object at about a quarter of the area.
    a = native[0]["target"].sum().item()
    b = scaled[0]["target"].sum().item()
    assert 0.15 < b / a < 0.4


def test_bad_dataset_input(samples):
    with pytest.raises(DataError, match="no samples"):
        _ds([])
    with pytest.raises(DataError, match="max_value"):
        _ds(samples, normalization=NormalizationConfig(mode="max"))
    two = TrainingSample(
        np.zeros((2, 40, 40)), samples[0].mask[:40, :40], samples[0].prev_mask[:40, :40], "two"
    )
    with pytest.raises(DataError, match="channels"):
        _ds([samples[0], two])


def test_max_normalization(samples):
    top = max(float(s.image.max()) for s in samples)
    ds = _ds(samples, normalization=NormalizationConfig(mode="max", max_value=top), train=False)
    img = ds[0]["image"]
    assert 0 <= img.min() and img.max() <= 1.0


def test_epoch_sampler_and_workers_give_the_same_batches(samples):
    ds = _ds(samples)
    sampler = EpochSampler(len(ds), seed=3)
    sampler.set_epoch(2)
    order = [i for _, i in sampler]
    assert sorted(order) == list(range(len(ds))) and order != list(range(len(ds)))
    single = [b["image"] for b in DataLoader(ds, batch_size=4, sampler=sampler)]
    multi = [b["image"] for b in DataLoader(ds, batch_size=4, sampler=sampler, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(single, multi))


# ----------------------------------------------------------------------------- weights and loss


def test_weight_map_hand_case():
    mask = np.zeros((3, 3), bool)
    mask[1, 1] = True
    f, w0, sigma = 0.25, 2.0, 1.0
    w = weight_map(mask, w0, sigma, f)
    edge = 2.0 * math.exp(-1.0 / 2.0)  # d = 1: w0 * exp(-1 / (2 sigma^2)) = 1.21306
    corner = 2.0 * math.exp(-2.0 / 2.0)  # d = sqrt(2): 0.73576
    expected = np.array(
        [
            [0.25 + corner, 0.25 + edge, 0.25 + corner],
            [0.25 + edge, 0.75 + edge, 0.25 + edge],
            [0.25 + corner, 0.25 + edge, 0.25 + corner],
        ]
    )
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    assert w.dtype == np.float32
    # A 1x5 line: distances 2, 1 | 1 1 | ... computed by hand.
    line = np.array([[0, 0, 1, 1, 0]], bool)
    w = weight_map(line, 1.0, 1.0, 0.5)
    np.testing.assert_allclose(w, 0.5 + np.exp(-np.array([[4, 1, 1, 1, 1]]) / 2.0), rtol=1e-6)


def test_weight_map_degenerate_masks():
    np.testing.assert_allclose(weight_map(np.zeros((4, 5), bool), 10, 5, 0.2), np.full((4, 5), 0.2))
    np.testing.assert_allclose(weight_map(np.ones((4, 5), bool), 10, 5, 0.2), np.full((4, 5), 0.8))
    m = np.zeros((6, 6), bool)
    m[2:4, 2:4] = True
    np.testing.assert_allclose(weight_map(m, 0.0, 5, 0.3), np.where(m, 0.7, 0.3))
    with pytest.raises(ValueError):
        weight_map(m, 1, 0, 0.5)
    with pytest.raises(ValueError):
        weight_map(m, 1, 1, 1.0)


def test_foreground_fraction():
    a = np.zeros((10, 10), bool)
    a[:5] = True
    assert foreground_fraction([a, np.zeros((10, 10), bool)]) == pytest.approx(0.25)
    assert (
        foreground_fraction([np.zeros((4, 4), bool)]) == 0.01
    )  # clipped: both weights stay positive


def test_dataset_fg_fraction_used_in_weights(samples):
    ds = _ds(samples, train=False, w0=0.0)
    f = ds.fg_fraction
    assert 0.05 < f < 0.8
    item = ds[0]
    np.testing.assert_allclose(
        item["weight"].numpy(), np.where(item["target"].numpy() == 1, 1 - f, f), rtol=1e-6
    )
    val = _ds(samples[:3], train=False, fg_fraction=0.3)
    assert val.fg_fraction == 0.3


def test_weighted_cross_entropy_and_iou():
    logits = torch.zeros(2, 2, 4, 4)
    logits[0, 1] = 5.0  # sample 0 predicts all foreground
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[0, :2] = 1
    weight = torch.ones(2, 4, 4)
    expected = torch.nn.functional.cross_entropy(logits, target)
    assert torch.allclose(weighted_cross_entropy(logits, target, weight), expected)
    assert torch.allclose(weighted_cross_entropy(logits, target, 2 * weight), 2 * expected)
    # zero weight on sample 1 removes its (log 2) contribution
    w = weight.clone()
    w[1] = 0
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    assert torch.allclose(weighted_cross_entropy(logits, target, w), ce[0].sum() / 32)
    iou = iou_per_sample(logits, target)
    assert iou.tolist() == [0.5, 1.0]  # 8 of 16 pixels; empty prediction of an empty target


def test_prompt_augment_settings_in_the_training_config():
    from rescunet_ij.config import TrainConfig, make_config
    from rescunet_ij.errors import ConfigError

    cfg = TrainConfig()
    assert cfg.prompt_augment and cfg.prompt_shift is None and cfg.prompt_augment_fraction == 0.5
    # A model file written before these settings existed still loads, with the defaults.
    old = json.loads(cfg.model_dump_json())
    for key in ("prompt_augment", "prompt_shift", "prompt_augment_fraction"):
        del old[key]
    assert TrainConfig.model_validate_json(json.dumps(old)) == cfg
    with pytest.raises(ConfigError, match="prompt shift.*allowed: 0..1024"):
        make_config(TrainConfig, prompt_shift=-1)
    with pytest.raises(ConfigError, match="prompt augment fraction"):
        make_config(TrainConfig, prompt_augment_fraction=1.5)
