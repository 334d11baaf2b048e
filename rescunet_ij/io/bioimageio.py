"""BioImage.IO model packages (spec 0.5): a ReSCU-Net as TorchScript and ONNX weights.

The package is built with ``bioimageio.spec``'s own description classes
(:class:`bioimageio.spec.model.v0_5.ModelDescr`, ``save_bioimageio_package``), checked with
``bioimageio.core.test_model`` on its own test tensors, and only then moved into place
(atomically; an existing file is replaced only with ``overwrite=True``).

What the exported network computes
----------------------------------
``forward(image, prompt) -> probability``: the foreground probability ``softmax(logits)[:, 1]``
of a ReSCU-Net for one window of ``input_size`` pixels. Two layouts:

* **two inputs** (default): ``image`` ``(batch, channel, y, x)`` raw intensities and ``prompt``
  ``(batch, 1, y, x)`` the object's previous mask. The image's normalisation is written as spec
  pre-processing that matches rescunet-ij's (:func:`rescunet_ij.data.windows.normalize`):
  ``scale_range`` over ``(y, x)`` per sample and channel at the model's percentiles followed by
  ``clip`` to [-0.5, 1.5] (``percentile`` mode), or ``scale_linear`` by ``1 / max_value``
  (``max`` mode). The prompt is binarised at 0.5 (0/1 and 0/255 masks both work).
* **single input** (``single_input=True``): one tensor ``(batch, channels + 1, y, x)``, the image
  channels followed by the prompt, which deepImageJ can run. Percentile scaling per channel cannot
  be expressed for the image channels only (the spec's ``scale_range`` would rescale the prompt
  channel too, and a prompt that fills the window would be lost), so this network normalises its
  image channels itself, with the same rule, and binarises the prompt channel at 0.5; its input
  needs no pre-processing.

What the spec cannot express (the package's README says it): cutting the window around the
previous mask, resizing a ``window_size`` window to ``input_size`` when they differ, the
threshold (0.5) and the erosion that turn probabilities into the next mask.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import ModelConfig, NormalizationConfig
from ..errors import ConfigError, DataError, MissingExtraError
from .atomic import atomic_write, check_writable
from .bioimageio_docs import CITATION, CITATION_URL, THRESHOLD, cover_png, readme

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "CITATION",
    "CITATION_URL",
    "WEIGHT_FORMATS",
    "BioimageioPackage",
    "bioimageio_check",
    "write_bioimageio_package",
]

WEIGHT_FORMATS = ("torchscript", "onnx")
"""Weight formats a package can hold: TorchScript (deepImageJ, bioimageio.core, PyTorch users)
and ONNX (onnxruntime; ilastik and other tools)."""


ONNX_OPSET = 17
"""ONNX opset of the exported graph (onnxruntime >= 1.13 runs it)."""


@dataclass(frozen=True)
class BioimageioPackage:
    """A written BioImage.IO model package and what its check found.

    Attributes
    ----------
    path
        The package (``.zip``).
    weight_formats
        The weight formats it holds, e.g. ``("torchscript", "onnx")``.
    single_input
        Whether image and prompt travel as one tensor (channels: image..., prompt).
    inputs, outputs
        The tensor ids, in the order the network takes and returns them.
    status
        ``bioimageio.core``'s verdict: ``"passed"`` (or ``"valid-format"``), or ``"not checked"``.
    warnings
        The check's warnings, one line each (e.g. a URL that could not be reached offline).
    """

    path: Path
    weight_formats: tuple[str, ...]
    single_input: bool
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    status: str = "not checked"
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _require_bioimageio(purpose: str) -> None:
    """Raise :class:`MissingExtraError` naming the extra when bioimageio.core is missing."""
    for package in ("bioimageio.spec", "bioimageio.core"):
        try:
            __import__(package)
        except ImportError as exc:
            raise MissingExtraError(package, "bioimageio", purpose) from exc


def _require_onnx(purpose: str) -> None:
    for package in ("onnx", "onnxruntime"):
        try:
            __import__(package)
        except ImportError as exc:
            raise MissingExtraError(package, "bioimageio", purpose) from exc


# ----------------------------------------------------------------------------- the networks


def _export_module(
    network: nn.Module, normalization: NormalizationConfig, in_channels: int, single_input: bool
) -> nn.Module:
    """The module that is traced: ReSCU-Net + softmax, and for one input, its own normalisation.

    The normalisation here is the traceable twin of ``data.windows.normalize`` (the io layer may
    not import the data layer): ``torch.quantile`` cannot be exported to ONNX, so the linear
    percentile is computed from a sort, with the window size read from the tensor so one graph
    serves every window size. ``tests/test_bioimageio.py`` checks both agree.
    """
    import torch
    from torch import nn

    def percentile(flat: torch.Tensor, q: float) -> torch.Tensor:
        # flat (N, C, L) -> (N, C, 1); numpy/torch "linear" interpolation between order statistics.
        ordered = torch.sort(flat, dim=-1).values
        n = torch.ones_like(ordered[0, 0]).sum()  # L as a traced value, not a constant
        pos = (n - 1.0) * q
        below = torch.floor(pos)
        frac = pos - below
        i_lo = below.long().reshape(1, 1, 1).expand_as(ordered[..., :1])
        i_hi = torch.minimum(below + 1.0, n - 1.0).long().reshape(1, 1, 1)
        i_hi = i_hi.expand_as(ordered[..., :1])
        lo = torch.gather(ordered, -1, i_lo)
        hi = torch.gather(ordered, -1, i_hi)
        return lo + (hi - lo) * frac

    class Normalize(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mode = normalization.mode
            self.low = normalization.low_percentile / 100.0
            self.high = normalization.high_percentile / 100.0
            self.scale = float(normalization.max_value or 1.0)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            if self.mode == "max":
                return image / self.scale
            flat = image.flatten(2)
            lo = percentile(flat, self.low)[..., None]
            hi = percentile(flat, self.high)[..., None]
            return ((image - lo) / torch.clamp(hi - lo, min=1e-6)).clamp(-0.5, 1.5)

    class TwoInputs(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, image: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.net(image, prompt.to(image.dtype)), dim=1)[:, 1:2]

    class OneInput(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net
            self.normalize = Normalize()

        def forward(self, stacked: torch.Tensor) -> torch.Tensor:
            image = self.normalize(stacked[:, :in_channels])
            prompt = (stacked[:, in_channels:] >= THRESHOLD).to(stacked.dtype)
            return torch.softmax(self.net(image, prompt), dim=1)[:, 1:2]

    module = OneInput(network) if single_input else TwoInputs(network)
    return module.eval()


def _example_args(test_inputs: Sequence[np.ndarray]) -> tuple[Any, ...]:
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in test_inputs)


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Silence the tracer's notes on the input checks and the ONNX exporter's deprecation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _write_torchscript(module: nn.Module, args: tuple[Any, ...], path: Path) -> None:
    import torch

    with _quiet_tracing(), torch.no_grad():
        traced = torch.jit.trace(module, args, check_trace=False)
    traced.save(str(path))


def _write_onnx(
    module: nn.Module, args: tuple[Any, ...], path: Path, inputs: Sequence[str], output: str
) -> None:
    import torch

    dynamic = {name: {0: "batch", 2: "y", 3: "x"} for name in (*inputs, output)}
    with _quiet_tracing(), torch.no_grad():
        # The TorchScript-based exporter: it needs no onnxscript and keeps batch, y, x dynamic.
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            input_names=list(inputs),
            output_names=[output],
            opset_version=ONNX_OPSET,
            dynamic_axes=dynamic,
        )


# ----------------------------------------------------------------------------- the description


def _axes(channel_names: list[str], *, output: bool, ref: str | None) -> list[Any]:
    """Batch, channel, y, x; y and x any multiple of 16, or the size of ``ref``'s y and x."""
    from bioimageio.spec.model import v0_5

    space = v0_5.SpaceOutputAxis if output else v0_5.SpaceInputAxis

    def size(axis: str) -> Any:
        if ref is None:
            return v0_5.ParameterizedSize(min=16, step=16)  # the network pools 4 times
        return v0_5.SizeReference(tensor_id=v0_5.TensorId(ref), axis_id=v0_5.AxisId(axis))

    return [
        v0_5.BatchAxis(),
        v0_5.ChannelAxis(channel_names=channel_names),
        space(id=v0_5.AxisId("y"), size=size("y")),
        space(id=v0_5.AxisId("x"), size=size("x")),
    ]


def _image_preprocessing(normalization: NormalizationConfig) -> list[Any]:
    from bioimageio.spec.model import v0_5

    if normalization.mode == "max":
        gain = 1.0 / float(normalization.max_value or 1.0)
        return [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=gain, offset=0.0))]
    return [
        v0_5.ScaleRangeDescr(
            kwargs=v0_5.ScaleRangeKwargs(
                axes=(v0_5.AxisId("y"), v0_5.AxisId("x")),
                min_percentile=normalization.low_percentile,
                max_percentile=normalization.high_percentile,
                eps=1e-6,
            )
        ),
        v0_5.ClipDescr(kwargs=v0_5.ClipKwargs(min=-0.5, max=1.5)),
    ]


def _prompt_preprocessing() -> list[Any]:
    from bioimageio.spec.model import v0_5

    return [
        v0_5.BinarizeDescr(kwargs=v0_5.BinarizeKwargs(threshold=THRESHOLD)),
        v0_5.EnsureDtypeDescr(kwargs=v0_5.EnsureDtypeKwargs(dtype="float32")),
    ]


def _check_test_tensors(
    test_image: np.ndarray, test_prompt: np.ndarray, test_output: np.ndarray, in_channels: int
) -> None:
    if test_image.ndim != 4 or test_image.shape[:2] != (1, in_channels):
        raise DataError(
            f"the test image must have shape (1, {in_channels}, y, x); got {test_image.shape}"
        )
    want = (1, 1, *test_image.shape[2:])
    for what, arr in (("prompt", test_prompt), ("output", test_output)):
        if tuple(arr.shape) != want:
            raise DataError(f"the test {what} must have shape {want}; got {tuple(arr.shape)}")
    if test_image.shape[2] % 16 or test_image.shape[3] % 16:
        raise DataError(
            f"test tensors must be a multiple of 16 pixels per side; got {test_image.shape[2:]}"
        )


def write_bioimageio_package(
    path: str | os.PathLike[str],
    *,
    network: nn.Module,
    model_config: ModelConfig,
    normalization: NormalizationConfig,
    window_size: tuple[int, int],
    erosion_width: int,
    test_image: np.ndarray,
    test_prompt: np.ndarray,
    test_output: np.ndarray,
    single_input: bool = False,
    weight_formats: Sequence[str] = WEIGHT_FORMATS,
    name: str = "ReSCU-Net prompt propagation",
    description: str | None = None,
    authors: Sequence[str] = ("rescunet-ij user",),
    license: str = "CC-BY-4.0",
    tags: Sequence[str] = (),
    history: Sequence[dict[str, Any]] = (),
    package_version: str = "",
    check: bool = True,
    overwrite: bool = False,
) -> BioimageioPackage:
    """Write a BioImage.IO (spec 0.5) model package for a ReSCU-Net, checked, atomically.

    Parameters
    ----------
    path
        The package to write (``.zip``).
    network
        The trained ReSCU-Net (any device; it is copied to the CPU in eval mode for the export).
    model_config, normalization, window_size, erosion_width
        What the model file records: architecture and input size, intensity scaling, the native
        window around an object, the erosion after thresholding.
    test_image, test_prompt, test_output
        One window at the network's input size: raw intensities ``(1, C, y, x)``, the prompt
        ``(1, 1, y, x)`` (0/1) and the foreground probability the model gives for them after
        rescunet-ij's own normalisation ``(1, 1, y, x)``. The package's test tensors.
    single_input
        One input (image channels, then the prompt) instead of two; see the module docstring.
    weight_formats
        Any of :data:`WEIGHT_FORMATS`; the first is the package's original weights.
    name, description, authors, license, tags
        The package's metadata (``license``: an SPDX identifier, e.g. ``CC-BY-4.0`` or ``MIT``).
    history
        The model's per-epoch training records (the README quotes the best validation loss).
    package_version
        The rescunet-ij version, for the README and the config.
    check
        Run ``bioimageio.core``'s model test (the test tensors reproduced by every weight
        format) before the package is moved into place; a failure writes nothing.
    overwrite
        Replace an existing ``path``.

    Returns
    -------
    BioimageioPackage
        The path, layout, weight formats and the check's verdict.

    Raises
    ------
    MissingExtraError
        If ``bioimageio.core`` (or, for ONNX weights, ``onnx``/``onnxruntime``) is missing.
    ConfigError
        For an unknown weight format, license, name or tag.
    DataError
        If the test tensors do not fit, or the exported package fails its check (the message
        names the failing test).
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    purpose = "Exporting a BioImage.IO model package"
    _require_bioimageio(purpose)
    formats = tuple(dict.fromkeys(weight_formats))
    unknown = [f for f in formats if f not in WEIGHT_FORMATS]
    if unknown or not formats:
        raise ConfigError(
            f"weight formats must be some of {', '.join(WEIGHT_FORMATS)}; got "
            f"{list(weight_formats)!r}"
        )
    if "onnx" in formats:
        _require_onnx(purpose + " with ONNX weights")
    c = model_config.in_channels
    _check_test_tensors(test_image, test_prompt, test_output, c)
    path = check_writable(path, overwrite)

    import torch

    if any(p.device.type != "cpu" for p in network.parameters()):
        network = copy.deepcopy(network).to("cpu")  # leave the caller's network where it is
    network = network.eval()
    module = _export_module(network, normalization, c, single_input)
    image32 = np.ascontiguousarray(test_image, dtype=np.float32)
    prompt32 = np.ascontiguousarray(test_prompt, dtype=np.float32)
    if single_input:
        input_ids: tuple[str, ...] = ("input",)
        test_inputs = [np.concatenate([image32, prompt32], axis=1)]
    else:
        input_ids = ("image", "prompt")
        test_inputs = [image32, prompt32]
    output_id = "probability"
    args = _example_args(test_inputs)

    with tempfile.TemporaryDirectory(prefix="rescunet-bioimageio-") as tmp:
        folder = Path(tmp)
        files: dict[str, Path] = {}
        if single_input:  # the test output must come from the network's own normalisation
            with torch.no_grad():
                expected = module(*args).numpy()
            if not np.allclose(expected, test_output, atol=1e-4):
                raise DataError(
                    "the single-input network's built-in normalisation does not reproduce "
                    "rescunet-ij's (largest difference "
                    f"{float(np.abs(expected - test_output).max()):.3g}); this is a bug"
                )
        for fmt in formats:
            if fmt == "torchscript":
                files[fmt] = folder / "weights_torchscript.pt"
                _write_torchscript(module, args, files[fmt])
            else:
                files[fmt] = folder / "weights.onnx"
                _write_onnx(module, args, files[fmt], input_ids, output_id)
        for tid, arr in zip(input_ids, test_inputs, strict=True):
            np.save(folder / f"test_input_{tid}.npy", arr)
        np.save(folder / f"test_output_{output_id}.npy", test_output.astype(np.float32))
        # Sample tensors: the same window as TIFF, for people and viewers (imageio reads them).
        import tifffile

        for tid, arr in (*zip(input_ids, test_inputs, strict=True), (output_id, test_output)):
            tifffile.imwrite(folder / f"sample_{tid}.tif", np.asarray(arr, np.float32)[0].squeeze())
        (folder / "cover.png").write_bytes(
            cover_png(image32[0, 0], prompt32[0, 0], np.asarray(test_output)[0, 0])
        )
        (folder / "README.md").write_text(
            readme(
                name=name,
                model_config=model_config,
                normalization=normalization,
                window_size=window_size,
                erosion_width=erosion_width,
                single_input=single_input,
                weight_formats=formats,
                package_version=package_version,
                history=history,
            ),
            encoding="utf-8",
        )
        descr = _describe(
            folder,
            files,
            formats=formats,
            input_ids=input_ids,
            output_id=output_id,
            model_config=model_config,
            normalization=normalization,
            window_size=window_size,
            erosion_width=erosion_width,
            single_input=single_input,
            name=name,
            description=description,
            authors=authors,
            license=license,
            tags=tags,
            package_version=package_version,
            torch_version=torch.__version__.split("+")[0],
        )
        packed = folder / "package.zip"
        _save_package(descr, packed)
        status, notes = bioimageio_check(packed) if check else ("not checked", ())
        with atomic_write(path, "wb", overwrite=overwrite) as fh, open(packed, "rb") as src:
            shutil.copyfileobj(src, fh)
    return BioimageioPackage(
        path=path,
        weight_formats=formats,
        single_input=single_input,
        inputs=input_ids,
        outputs=(output_id,),
        status=status,
        warnings=tuple(notes),
    )


def _describe(
    folder: Path,
    files: dict[str, Path],
    *,
    formats: tuple[str, ...],
    input_ids: tuple[str, ...],
    output_id: str,
    model_config: ModelConfig,
    normalization: NormalizationConfig,
    window_size: tuple[int, int],
    erosion_width: int,
    single_input: bool,
    name: str,
    description: str | None,
    authors: Sequence[str],
    license: str,
    tags: Sequence[str],
    package_version: str,
    torch_version: str,
) -> Any:
    """The :class:`ModelDescr` of the files in ``folder`` (built, not written as YAML)."""
    from bioimageio.spec import ValidationContext
    from bioimageio.spec.model import v0_5
    from pydantic import ValidationError

    c = model_config.in_channels
    image_names = ["image"] if c == 1 else [f"image_channel_{i}" for i in range(c)]
    if description is None:
        description = (
            "ReSCU-Net: segments one object in an image window given its mask in the previous "
            "frame (the prompt); applied frame after frame it propagates a segmentation through "
            "a time-lapse movie. Exported by rescunet-ij; see the README for the propagation loop."
        )
    base_tags = ["unet", "pytorch", "2d-t", "instance-segmentation", "rescu-net", "prompt"]
    if single_input:
        base_tags.append("deepimagej")
    all_tags = list(dict.fromkeys([*base_tags, *tags]))

    def test_file(kind: str, tid: str) -> Any:
        return v0_5.FileDescr(source=folder / f"test_{kind}_{tid}.npy")

    def sample_file(tid: str) -> Any:
        return v0_5.FileDescr(source=folder / f"sample_{tid}.tif")

    rescunet_config = {
        "package_version": package_version,
        "input_size": list(model_config.input_size),
        "window_size": list(window_size),
        "concatenation_level": model_config.concatenation_level,
        "base_filters": model_config.base_filters,
        "in_channels": c,
        "normalization": normalization.model_dump(mode="json"),
        "normalization_in_network": single_input,
        "threshold": THRESHOLD,
        "erosion_width": erosion_width,
        "layout": "single-input" if single_input else "image+prompt",
    }
    try:
        # No I/O checks while building: the files are ours, and the citation URL must not be
        # fetched; bioimageio_check validates the finished package with every check.
        with ValidationContext(perform_io_checks=False, root=folder):
            if single_input:
                inputs = [
                    v0_5.InputTensorDescr(
                        id=v0_5.TensorId("input"),
                        description="image channel(s), then the previous mask (prompt)",
                        axes=_axes([*image_names, "prompt"], output=False, ref=None),
                        test_tensor=test_file("input", "input"),
                        sample_tensor=sample_file("input"),
                        data=v0_5.IntervalOrRatioDataDescr(type="float32"),
                    )
                ]
            else:
                inputs = [
                    v0_5.InputTensorDescr(
                        id=v0_5.TensorId("image"),
                        description="image window, raw intensities",
                        axes=_axes(image_names, output=False, ref=None),
                        test_tensor=test_file("input", "image"),
                        sample_tensor=sample_file("image"),
                        data=v0_5.IntervalOrRatioDataDescr(type="float32"),
                        preprocessing=_image_preprocessing(normalization),
                    ),
                    v0_5.InputTensorDescr(
                        id=v0_5.TensorId("prompt"),
                        description="the object's mask in the previous frame (0/1)",
                        axes=_axes(["prompt"], output=False, ref="image"),
                        test_tensor=test_file("input", "prompt"),
                        sample_tensor=sample_file("prompt"),
                        data=v0_5.IntervalOrRatioDataDescr(type="float32"),
                        preprocessing=_prompt_preprocessing(),
                    ),
                ]
            outputs = [
                v0_5.OutputTensorDescr(
                    id=v0_5.TensorId(output_id),
                    description="foreground probability of the prompted object",
                    axes=_axes(["foreground"], output=True, ref=input_ids[0]),
                    test_tensor=test_file("output", output_id),
                    sample_tensor=sample_file(output_id),
                    data=v0_5.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
                )
            ]
            weights: dict[str, Any] = {}
            original = formats[0]
            for fmt in formats:
                parent = None if fmt == original else original
                comment = (
                    "exported by rescunet-ij from its safetensors model file"
                    if parent is None
                    else f"exported from the same network as the {original} weights"
                )
                if fmt == "torchscript":
                    weights[fmt] = v0_5.TorchscriptWeightsDescr(
                        source=files[fmt],
                        pytorch_version=v0_5.Version(torch_version),
                        parent=parent,
                        comment=comment,
                    )
                else:
                    weights[fmt] = v0_5.OnnxWeightsDescr(
                        source=files[fmt], opset_version=ONNX_OPSET, parent=parent, comment=comment
                    )
            return v0_5.ModelDescr(
                name=name,
                description=description,
                authors=[v0_5.Author(name=a) for a in authors],
                cite=[v0_5.CiteEntry(text=CITATION, url=CITATION_URL)],
                license=license,
                tags=all_tags,
                documentation=v0_5.FileDescr(source=folder / "README.md"),
                covers=[v0_5.FileDescr(source=folder / "cover.png")],
                inputs=inputs,
                outputs=outputs,
                weights=v0_5.WeightsDescr(**weights),
                config=v0_5.Config(
                    bioimageio=v0_5.BioimageioConfig(
                        architecture_type="ReSCU-Net (2D U-Net)",
                        architecture_description=(
                            "U-Net with 4 poolings; the previous mask joins the image at "
                            f"encoder level {model_config.concatenation_level}"
                        ),
                        task="segmentation propagation (prompted instance segmentation)",
                    ),
                    rescunet_ij=rescunet_config,
                ),
            )
    except ValidationError as exc:
        seen: dict[str, str] = {}  # one problem per field; licence lists run to hundreds
        for e in exc.errors():
            where = str(e["loc"][0]) if e["loc"] else "description"
            msg = e["msg"] if len(e["msg"]) < 160 else e["msg"][:120] + "..."
            if where == "license":
                msg = f"{license!r} is not an SPDX licence identifier (e.g. CC-BY-4.0, MIT)"
            seen.setdefault(where, msg)
        problems = "; ".join(f"{k}: {v}" for k, v in seen.items())
        raise ConfigError(
            f"the BioImage.IO description is invalid: {problems}. Check the name (5-128 "
            "letters, digits, spaces, _+-()), the license (an SPDX id such as CC-BY-4.0) and "
            "the tags"
        ) from None


def _save_package(descr: Any, packed: Path) -> None:
    from bioimageio.spec import ValidationContext, save_bioimageio_package

    # Packaging re-reads the package; without I/O checks it does not try to reach the citation
    # URL (bioimageio_check then runs every check offline).
    with ValidationContext(perform_io_checks=False):
        try:
            save_bioimageio_package(descr, output_path=packed)
        except ValueError as exc:
            raise DataError(f"bioimageio.spec refused the package: {exc}") from exc


def bioimageio_check(path: str | os.PathLike[str]) -> tuple[str, tuple[str, ...]]:
    """Validate a model package and reproduce its test outputs with ``bioimageio.core``.

    Runs the same check as ``bioimageio test PACKAGE``, offline: the citation URL is marked known
    so nothing is fetched (files inside the package are all local).

    Parameters
    ----------
    path
        A BioImage.IO model package (``.zip``) or its ``rdf.yaml``/``bioimageio.yaml``.

    Returns
    -------
    tuple
        ``(status, warnings)``: ``"passed"`` and the check's warnings, one line each.

    Raises
    ------
    MissingExtraError
        If ``bioimageio.core`` is not installed.
    DataError
        If the package is invalid or a weight format does not reproduce the test outputs; the
        message names each failing check.
    """
    _require_bioimageio("Checking a BioImage.IO model package")
    from bioimageio.core import test_model
    from bioimageio.spec import InvalidDescr, load_description

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; give a BioImage.IO model package (.zip)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        descr = load_description(path, perform_io_checks=True, known_files={CITATION_URL: None})
        if isinstance(descr, InvalidDescr):
            summary = descr.validation_summary
        else:
            summary = test_model(descr, devices=["cpu"])
    failed = [
        f"{d.name}: " + "; ".join(e.msg.splitlines()[0] for e in d.errors)
        for d in summary.details
        if d.status == "failed"
    ]
    if summary.status not in ("passed", "valid-format") or failed:
        raise DataError(
            f"{path} failed bioimageio.core's model test: " + (" | ".join(failed) or summary.status)
        )
    notes = tuple(  # warnings and alerts; the INFO notes ("all elements agree") are left out
        f"{'.'.join(map(str, w.loc)) or d.name}: {w.msg.splitlines()[0]}"
        for d in summary.details
        for w in d.warnings
        if w.severity > 20
    )
    return str(summary.status), notes
