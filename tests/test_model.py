"""Tests of the ReSCU-Net architecture (rescunet_ij.model)."""

from __future__ import annotations

import pytest
import torch

from rescunet_ij.config import ModelConfig
from rescunet_ij.model import ReSCUNet, build_model


def _inputs(b=2, c=1, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, c, h, w, generator=g)
    mask = (torch.rand(b, 1, h, w, generator=g) > 0.5).float()
    return image, mask


def _expected_params(level: int, f: int = 64, in_channels: int = 1, classes: int = 2) -> int:
    """Parameter count worked out by hand from the architecture description."""

    def conv(i, o, k):  # weights + biases
        return i * o * k * k + o

    def block(i, o):  # two 3x3 convolutions
        return conv(i, o, 3) + conv(o, o, 3)

    w = [f * 2**i for i in range(5)]
    total = 0
    for i in range(5):  # image encoder blocks + bottleneck
        c_in = (in_channels + (level == 0)) if i == 0 else w[i - 1]
        if level > 0 and i == level:
            c_in *= 2  # image + mask features concatenated
        total += block(c_in, w[i])
    for i in range(level):  # mask branch copies the first `level` encoder blocks
        total += block(1 if i == 0 else w[i - 1], w[i])
    for i in range(4):  # decoder: 2x2 transposed conv, then a block on [up, skip]
        total += w[i + 1] * w[i] * 4 + w[i]
        total += block(2 * w[i], w[i])
    total += conv(f, classes, 1)
    return total


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("level", range(5))
@pytest.mark.parametrize("in_channels", [1, 2])
def test_output_shape_all_levels(level, in_channels):
    torch.manual_seed(0)
    net = ReSCUNet(in_channels=in_channels, base_filters=8, concatenation_level=level).eval()
    image, mask = _inputs(c=in_channels)
    out = net(image, mask)
    assert out.shape == (2, 2, 32, 48)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("level", range(5))
def test_mask_changes_output(level):
    # The previous mask must reach the output at every concatenation level.
    torch.manual_seed(0)
    net = ReSCUNet(base_filters=8, concatenation_level=level).eval()
    image, mask = _inputs()
    with torch.no_grad():
        a = net(image, mask)
        b = net(image, 1 - mask)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("level", range(5))
def test_parameter_counts_match_hand_count(level):
    with torch.device("meta"):
        net = ReSCUNet(base_filters=64, concatenation_level=level)
    assert _count(net) == _expected_params(level)
    small = ReSCUNet(in_channels=3, base_filters=8, concatenation_level=level)
    assert _count(small) == _expected_params(level, f=8, in_channels=3)


def test_default_model_size_matches_paper():
    with torch.device("meta"):
        net = ReSCUNet()
    assert 31.0e6 <= _count(net) <= 31.2e6


def test_mask_branch_structure():
    net = ReSCUNet(base_filters=8, concatenation_level=2)
    assert len(net.mask_encoder) == 2
    assert net.encoder[2].conv1.in_channels == 2 * 16  # 2x the channels after joining
    assert net.mask_encoder[0].conv1.in_channels == 1
    assert ReSCUNet(base_filters=8, concatenation_level=0).encoder[0].conv1.in_channels == 2
    assert ReSCUNet(base_filters=8, concatenation_level=4).bottleneck.conv1.in_channels == 2 * 64


def test_dropout_only_in_train_mode():
    torch.manual_seed(0)
    net = ReSCUNet(base_filters=8, concatenation_level=1, dropout=True)
    image, mask = _inputs()
    net.train()
    with torch.no_grad():
        a, b = net(image, mask), net(image, mask)
    assert not torch.allclose(a, b), "dropout should make train-mode outputs differ"
    net.eval()
    with torch.no_grad():
        c, d = net(image, mask), net(image, mask)
    assert torch.equal(c, d)


def test_no_dropout_is_deterministic_in_train_mode():
    torch.manual_seed(0)
    net = ReSCUNet(base_filters=8, dropout=False).train()
    image, mask = _inputs()
    with torch.no_grad():
        assert torch.equal(net(image, mask), net(image, mask))
    assert not any(isinstance(m, torch.nn.Dropout) for m in net.modules())


@pytest.mark.parametrize("shape", [(30, 48), (32, 40), (8, 8)])
def test_size_not_divisible_by_16(shape):
    net = ReSCUNet(base_filters=4).eval()
    image, mask = _inputs(h=shape[0], w=shape[1])
    with pytest.raises(ValueError, match="divisible by 16"):
        net(image, mask)


def test_bad_input_shapes():
    net = ReSCUNet(base_filters=4).eval()
    image, mask = _inputs()
    with pytest.raises(ValueError, match="channel"):
        net(torch.rand(2, 3, 32, 48), mask)
    with pytest.raises(ValueError, match="prev_mask"):
        net(image, mask[:1])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        net(image[0], mask[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"concatenation_level": 5},
        {"concatenation_level": -1},
        {"base_filters": 0},
        {"in_channels": 0},
        {"concatenation_level": 1.0},
    ],
)
def test_bad_constructor_values(kwargs):
    with pytest.raises(ValueError):
        ReSCUNet(**kwargs)


def test_backward_and_channels_last():
    torch.manual_seed(0)
    net = ReSCUNet(base_filters=4, concatenation_level=1).eval()
    image, mask = _inputs()
    ref = net(image, mask)
    net_cl = net.to(memory_format=torch.channels_last)
    out = net_cl(
        image.to(memory_format=torch.channels_last), mask.to(memory_format=torch.channels_last)
    )
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_kaiming_init():
    torch.manual_seed(0)
    net = ReSCUNet(base_filters=32, concatenation_level=1)
    w = net.encoder[2].conv1.weight  # fan_in = 64 * 9
    expected_std = (2.0 / (64 * 9)) ** 0.5
    assert abs(w.std().item() - expected_std) / expected_std < 0.05
    assert torch.count_nonzero(net.encoder[2].conv1.bias) == 0


def test_build_model_maps_config():
    cfg = ModelConfig(base_filters=8, concatenation_level=3, in_channels=2, dropout=False)
    net = build_model(cfg)
    assert isinstance(net, ReSCUNet)
    assert (net.base_filters, net.concatenation_level, net.in_channels, net.use_dropout) == (
        8,
        3,
        2,
        False,
    )
    assert net.num_classes == 2
    assert _count(net) == _expected_params(3, f=8, in_channels=2)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch-internal, on importing dynamo
def test_traces_with_torch_compile_fullgraph():
    # fullgraph=True fails on any graph break; the eager backend needs no C compiler.
    torch.manual_seed(0)
    net = ReSCUNet(base_filters=4, concatenation_level=2).eval()
    compiled = torch.compile(net, backend="eager", fullgraph=True)
    image, mask = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(compiled(image, mask), net(image, mask))
