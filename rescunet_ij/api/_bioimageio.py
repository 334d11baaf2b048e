"""Sharing a model on BioImage.IO: the spec 0.5 model package and its check."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from ._common import _loaded

if TYPE_CHECKING:
    from ..io.bioimageio import BioimageioPackage
    from ..io.checkpoint import LoadedModel

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_+\- ()]+")


def _package_name(m: LoadedModel, name: str | None) -> str:
    """The package name: the given one, or ``ReSCU-Net <model file stem>``."""
    if name is not None:
        return name
    stem = _NAME_CHARS.sub("-", m.path.stem).strip("- ") if m.path is not None else ""
    return f"ReSCU-Net {stem}"[:64].strip() if stem else "ReSCU-Net prompt propagation"


def sample_window(model: Any, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One real window, its prompt and the model's foreground probability, as rescunet-ij runs it.

    A two-frame synthetic movie (:func:`rescunet_ij.sample_data.synthetic_movie`, one object
    sized for the model's window) is cut around the object's frame-0 mask in frame 1, exactly as
    propagation cuts windows (``data.windows``: plan, extract, resize to the network input), and
    the network predicts it after the model's own normalisation.

    Parameters
    ----------
    model
        A model file or a :class:`LoadedModel`.
    seed
        The synthetic movie's seed.

    Returns
    -------
    tuple of numpy.ndarray
        ``(image, prompt, probability)``: raw intensities ``(1, C, y, x)`` float32 at the network
        input size, the prompt ``(1, 1, y, x)`` (0/1) and the probability ``(1, 1, y, x)``.
    """
    import torch

    from ..data.windows import extract_windows, normalize, plan_windows, to_network
    from ..sample_data import synthetic_movie
    from ..types import ObjectMask

    m = _loaded(model)
    wh, ww = m.window_size
    side = min(wh, ww)
    radius = (max(3.0, 0.15 * side), max(4.0, 0.22 * side))
    movie = synthetic_movie(2, (wh + 32, ww + 32), 1, radius=radius, speed=0.05 * side, seed=seed)
    prev = ObjectMask.from_full(movie.labels[0] == 1)
    plane = movie.images[1].astype(np.float32)
    origins = plan_windows(prev, plane.shape, (wh, ww))
    # The tile that holds most of the object (one tile unless the object outgrows the window).
    full = movie.labels[0] == 1
    origin = max(origins, key=lambda o: full[o[0] : o[0] + wh, o[1] : o[1] + ww].sum())
    image = extract_windows(plane, [origin], (wh, ww))  # (1, wh, ww)
    mask = extract_windows(full.astype(np.float32), [origin], (wh, ww), pad_mode="constant")
    c = m.model_config.in_channels
    # Channels of a multi-channel model: the same structure at different brightness.
    stacked = np.stack([image * (1.0 + 0.5 * k) for k in range(c)], axis=1)  # (1, C, h, w)
    size = tuple(m.model_config.input_size)
    raw = to_network(stacked, size)  # resized, not normalised: the package's input
    prompt = to_network(mask, size, is_mask=True)
    net = m.network.eval()
    device = next(net.parameters()).device
    with torch.no_grad():
        logits = net(normalize(raw, m.normalization).to(device), prompt.to(device))
        prob = torch.softmax(logits.float(), dim=1)[:, 1:2].cpu()
    return raw.numpy(), prompt.numpy(), prob.numpy()


def export_bioimageio(
    model: Any,
    output: str | Path,
    *,
    single_input: bool = False,
    weight_formats: Sequence[str] = ("torchscript", "onnx"),
    name: str | None = None,
    description: str | None = None,
    authors: Sequence[str] | None = None,
    license: str = "CC-BY-4.0",
    tags: Sequence[str] = (),
    check: bool = True,
    overwrite: bool = False,
) -> BioimageioPackage:
    """Write a model as a BioImage.IO (spec 0.5) model package, checked by ``bioimageio.core``.

    The package holds TorchScript and/or ONNX weights of ``forward(image, prompt) ->
    probability`` (or, with ``single_input``, one tensor: image channels then the prompt, which
    deepImageJ runs), the normalisation as spec pre-processing, test tensors computed by this
    model on a window of a synthetic movie (:func:`sample_window`), a cover image, and a README with
    the citation and the propagation loop. See :mod:`rescunet_ij.io.bioimageio`.

    Parameters
    ----------
    model
        A model file (``.rescunet``) or a :class:`LoadedModel`.
    output
        The package to write (``.zip``).
    single_input
        One 2-channel input (image, prompt) instead of two inputs.
    weight_formats
        ``"torchscript"`` and/or ``"onnx"``; the first is the package's original weights.
    name
        Package name (5-128 letters, digits, spaces, ``_+-()``); default ``ReSCU-Net <file>``.
    description
        One paragraph; a default describes the prompt propagation.
    authors
        Names of the people who trained the model (default: ``rescunet-ij user``; give yours
        before uploading to bioimage.io).
    license
        An SPDX licence identifier for the weights (default ``CC-BY-4.0``).
    tags
        Extra tags (e.g. the modality ``fluorescence-light-microscopy`` and content ``cells``).
    check
        Run ``bioimageio.core``'s model test before the package is moved into place (default).
    overwrite
        Replace an existing ``output``.

    Returns
    -------
    BioimageioPackage
        Where it was written, its layout and weight formats, and the check's verdict.

    Raises
    ------
    MissingExtraError
        If ``bioimageio.core`` (or, for ONNX, ``onnx``/``onnxruntime``) is not installed:
        ``pip install "rescunet-ij[bioimageio]"``.
    OutputExistsError
        If ``output`` exists and ``overwrite`` is false (checked before any work).
    ConfigError
        For an unknown weight format, an invalid name, license or tag.
    DataError
        If the package fails ``bioimageio.core``'s test (nothing is written then).
    """
    from .. import __version__
    from ..io.atomic import check_writable
    from ..io.bioimageio import _require_bioimageio, write_bioimageio_package

    _require_bioimageio("Exporting a BioImage.IO model package")
    check_writable(output, overwrite)
    if isinstance(weight_formats, str):
        weight_formats = [weight_formats]
    authors = list(authors) if authors else ["rescunet-ij user"]
    bad = [a for a in authors if not a.strip() or "/" in a]
    if bad:
        raise ConfigError(f"author names must be non-empty and contain no '/'; got {bad!r}")
    m = _loaded(model)
    image, prompt, prob = sample_window(m)
    return write_bioimageio_package(
        output,
        network=m.network,
        model_config=m.model_config,
        normalization=m.normalization,
        window_size=tuple(m.window_size),  # type: ignore[arg-type]
        erosion_width=m.erosion_width,
        test_image=image,
        test_prompt=prompt,
        test_output=prob,
        single_input=single_input,
        weight_formats=weight_formats,
        name=_package_name(m, name),
        description=description,
        authors=authors,
        license=license,
        tags=tags,
        history=m.history,
        package_version=__version__,
        check=check,
        overwrite=overwrite,
    )


def check_bioimageio(package: str | Path) -> tuple[str, tuple[str, ...]]:
    """Run ``bioimageio.core``'s model test on a package, offline (as ``bioimageio test``).

    Returns ``(status, warnings)``; raises :class:`~rescunet_ij.errors.DataError` naming each
    failing check, or :class:`~rescunet_ij.errors.MissingExtraError` without the extra.
    """
    from ..io.bioimageio import bioimageio_check

    return bioimageio_check(package)
