"""The ReSCU-Net: a U-Net that segments one object from the image plus its previous mask.

The architecture follows PyJAMAS and the ReSCU-Net paper: four 2x2 max-pooling steps, filters
``f, 2f, 4f, 8f`` in the encoder and ``16f`` in the bottleneck (``f = 64`` gives
64/128/256/512/1024), each block two 3x3 convolutions (padding 1) with ReLU, upsampling by 2x2
transposed convolutions with stride 2, concatenation with the skip connection, and a final 1x1
convolution to two classes.

The previous mask (the "prompt") enters at the *concatenation level* ``L``:

* ``L = 0``: image and mask are stacked as input channels (``in_channels + 1``).
* ``L > 0``: the mask passes through its own copy of the first ``L`` encoder blocks; after the
  ``L``-th pooling the image and mask features are concatenated, so encoder block ``L + 1`` (the
  bottleneck when ``L = 4``) takes twice its usual input channels. Skip connections come from the
  image branch only.

Dropout
-------
``nn.Dropout`` (element-wise, like the Keras ``Dropout`` layer PyJAMAS uses; not ``Dropout2d``)
sits between the two convolutions of every block, with rates 0.1/0.2/0.3/0.4 in the encoder blocks,
0.5 in the bottleneck and 0.4/0.3/0.2/0.1 in the decoder blocks. The mask branch copies the encoder
rates. Dropout is active only in ``train()`` mode; ``eval()`` makes the network deterministic.

This module takes plain values only; :func:`rescunet_ij.model.build.build_model` maps a
:class:`~rescunet_ij.config.ModelConfig` to a network.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ReSCUNet", "ENCODER_DROPOUT", "DECODER_DROPOUT", "POOLINGS"]

POOLINGS = 4
"""Number of 2x2 poolings: image height and width must be divisible by ``2**POOLINGS`` (16)."""

ENCODER_DROPOUT = (0.1, 0.2, 0.3, 0.4, 0.5)
"""Dropout rates of the four encoder blocks and the bottleneck (last value)."""

DECODER_DROPOUT = (0.4, 0.3, 0.2, 0.1)
"""Dropout rates of the four decoder blocks, deepest first."""


class _ConvBlock(nn.Module):
    """Two 3x3 convolutions (padding 1) with ReLU, dropout between them."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.drop = nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv-ReLU-dropout-conv-ReLU."""
        x = self.act(self.conv1(x))
        x = self.drop(x)
        return self.act(self.conv2(x))


class ReSCUNet(nn.Module):
    """A ReSCU-Net: U-Net segmentation of one object conditioned on its previous mask.

    Parameters
    ----------
    in_channels
        Image channels (the previous mask is one extra channel, handled internally).
    base_filters
        Filters ``f`` of the first block; the encoder blocks have ``f, 2f, 4f, 8f`` and the
        bottleneck ``16f``.
    concatenation_level
        Where the previous mask joins the image, 0..4 (see the module docstring).
    dropout
        Whether to use dropout (0.1..0.5 down, 0.4..0.1 up; active in ``train()`` mode only).
    num_classes
        Output channels; 2 (background, foreground) for rescunet-ij.

    Notes
    -----
    ``forward(image, prev_mask)`` returns **logits** ``(B, num_classes, H, W)``; apply
    ``softmax(dim=1)`` for probabilities (channel 1 = foreground). ``H`` and ``W`` must be
    divisible by 16. With ``f = 64`` and ``concatenation_level = 1`` the network has about
    31.1 million parameters.
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_filters: int = 64,
        concatenation_level: int = 1,
        dropout: bool = True,
        num_classes: int = 2,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("in_channels", in_channels, 1),
            ("base_filters", base_filters, 1),
            ("num_classes", num_classes, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if (
            not isinstance(concatenation_level, int)
            or isinstance(concatenation_level, bool)
            or not 0 <= concatenation_level <= POOLINGS
        ):
            raise ValueError(
                f"concatenation_level must be an integer from 0 to {POOLINGS}, "
                f"got {concatenation_level!r}"
            )
        self.in_channels = in_channels
        self.base_filters = base_filters
        self.concatenation_level = concatenation_level
        self.use_dropout = bool(dropout)
        self.num_classes = num_classes

        widths = [base_filters * 2**i for i in range(POOLINGS + 1)]  # f, 2f, 4f, 8f, 16f
        enc_p = ENCODER_DROPOUT if dropout else (0.0,) * (POOLINGS + 1)
        dec_p = DECODER_DROPOUT if dropout else (0.0,) * POOLINGS
        level = concatenation_level

        # Image branch: encoder blocks 0..3, then the bottleneck.
        enc_in = []
        for i in range(POOLINGS + 1):
            c_in = (in_channels + (1 if level == 0 else 0)) if i == 0 else widths[i - 1]
            if level > 0 and i == level:
                c_in *= 2  # pooled image features + pooled mask features
            enc_in.append(c_in)
        self.encoder = nn.ModuleList(
            _ConvBlock(enc_in[i], widths[i], enc_p[i]) for i in range(POOLINGS)
        )
        self.bottleneck = _ConvBlock(enc_in[POOLINGS], widths[POOLINGS], enc_p[POOLINGS])

        # Mask branch: its own copy of the first `level` encoder blocks (1 input channel).
        self.mask_encoder = nn.ModuleList(
            _ConvBlock(1 if i == 0 else widths[i - 1], widths[i], enc_p[i]) for i in range(level)
        )

        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        # Decoder, deepest first: upsample 2^(i+1) f -> 2^i f, concatenate the skip, block.
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], kernel_size=2, stride=2)
            for i in reversed(range(POOLINGS))
        )
        self.decoder = nn.ModuleList(
            _ConvBlock(2 * widths[i], widths[i], dec_p[POOLINGS - 1 - i])
            for i in reversed(range(POOLINGS))
        )
        self.head = nn.Conv2d(base_filters, num_classes, kernel_size=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal (fan-in, ReLU) weights and zero biases, like Keras' ``he_normal``.

        A network built on the ``meta`` device (shapes only, for loading saved weights) is left
        as it is: it has no values to draw, and drawing on ``meta`` goes through
        ``torch._refs``, whose first use imports ``torch._dynamo`` (about a second).
        """
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and not m.weight.is_meta:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def extra_repr(self) -> str:
        """Summarise the construction arguments in ``repr(model)``."""
        return (
            f"in_channels={self.in_channels}, base_filters={self.base_filters}, "
            f"concatenation_level={self.concatenation_level}, dropout={self.use_dropout}, "
            f"num_classes={self.num_classes}"
        )

    def _check_inputs(self, image: torch.Tensor, prev_mask: torch.Tensor) -> None:
        if image.ndim != 4 or prev_mask.ndim != 4:
            raise ValueError(
                f"expected image (B, C, H, W) and prev_mask (B, 1, H, W), got shapes "
                f"{tuple(image.shape)} and {tuple(prev_mask.shape)}"
            )
        b, c, h, w = image.shape
        if c != self.in_channels:
            raise ValueError(
                f"image has {c} channel(s) but this network was built for {self.in_channels}; "
                "pass images with the model's channel count"
            )
        if tuple(prev_mask.shape) != (b, 1, h, w):
            raise ValueError(
                f"prev_mask must have shape {(b, 1, h, w)} to match the image, "
                f"got {tuple(prev_mask.shape)}"
            )
        m = 2**POOLINGS
        if h % m or w % m:
            raise ValueError(
                f"image height and width must be divisible by {m} "
                f"(the network pools {POOLINGS} times), "
                f"got {h}x{w}; crop or pad to e.g. {max(m, h // m * m)}x{max(m, w // m * m)} "
                f"or {-(-h // m) * m}x{-(-w // m) * m}"
            )

    def forward(self, image: torch.Tensor, prev_mask: torch.Tensor) -> torch.Tensor:
        """Segment the object.

        Parameters
        ----------
        image
            ``(B, in_channels, H, W)`` float tensor, intensities roughly in [0, 1].
        prev_mask
            ``(B, 1, H, W)`` float tensor, 0/1: the object's mask in the previous frame.

        Returns
        -------
        torch.Tensor
            Logits ``(B, num_classes, H, W)``; channel 1 is the foreground.

        Raises
        ------
        ValueError
            If the shapes do not fit (wrong ranks or channels, or H/W not divisible by 16).
        """
        self._check_inputs(image, prev_mask)
        prev_mask = prev_mask.to(image.dtype)
        level = self.concatenation_level

        x = torch.cat([image, prev_mask], dim=1) if level == 0 else image
        m = prev_mask
        skips: list[torch.Tensor] = []
        for i, block in enumerate(self.encoder):
            x = block(x)
            skips.append(x)
            x = self.pool(x)
            if i < level:
                m = self.pool(self.mask_encoder[i](m))
                if i == level - 1:
                    x = torch.cat([x, m], dim=1)
        x = self.bottleneck(x)
        for i in range(POOLINGS):  # deepest first
            x = self.decoder[i](torch.cat([self.upsample[i](x), skips[-1 - i]], dim=1))
        return self.head(x)
