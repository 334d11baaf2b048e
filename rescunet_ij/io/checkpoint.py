"""The rescunet-ij model file: safetensors weights plus JSON metadata, written atomically.

One file (suffix ``.rescunet`` recommended, any suffix accepted) holds the float32 weights and, in
safetensors' string-to-string header metadata:

============== =====================================================================
key            value
============== =====================================================================
format         ``"rescunet-ij-model"``
format_version ``"1"`` (:data:`FORMAT_VERSION`)
package_version the rescunet-ij version that wrote the file
model_config   :class:`~rescunet_ij.config.ModelConfig` as JSON
train_config   :class:`~rescunet_ij.config.TrainConfig` as JSON (absent if unknown)
normalization  :class:`~rescunet_ij.config.NormalizationConfig` as JSON
history        JSON list of per-epoch dicts (may be empty)
created        ISO 8601 time (UTC)
extra          JSON dict of anything else
============== =====================================================================

Opening a model file never runs code: safetensors is plain data. A file is first checked for the
safetensors layout (header length, then ``{``); only a file that is not safetensors is named by its
real format (ZIP, i.e. ``torch.save`` ``.pt``/``.pth``; a pickle, e.g. PyJAMAS ``.pkl``/``.cfn``;
gzip, e.g. PyJAMAS ``.cfr``; HDF5) and refused before anything else reads it.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickletools
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ValidationError
from torch import nn

from ..config import ModelConfig, NormalizationConfig, TrainConfig, validation_problems
from ..errors import ConfigError, DataError, ModelFileError
from ..model import ReSCUNet, build_model
from .atomic import atomic_write_bytes, check_overwrite

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MODEL_SUFFIX",
    "LoadedModel",
    "load_model",
    "model_from_network",
    "save_model",
]

FORMAT = "rescunet-ij-model"
"""Value of the ``format`` metadata key."""

FORMAT_VERSION = 1
"""The newest model-file format this package reads and the one it writes."""

MODEL_SUFFIX = ".rescunet"
"""Recommended file suffix (any suffix is accepted)."""

_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header size
_HEAD_BYTES = 256  # first bytes read to recognise the format (pickle opcodes need some)
_COMPILE_PREFIX = "_orig_mod."  # added to state-dict keys by torch.compile
_UNSAFE_HINT = (
    "rescunet-ij only opens safetensors model files written by rescunet-ij (e.g. by "
    "'rescunet-ij train'). Pickled PyJAMAS or PyTorch files (.pkl, .pt, .pth, .cfn, torch.save "
    "output) and Keras .h5 files are refused because opening a pickle can run arbitrary code. "
    "A PyJAMAS ReSCU-Net .cfr model converts safely with 'rescunet-ij import-pyjamas MODEL.cfr' "
    "(it reads weights only and executes nothing); other models: retrain them with rescunet-ij"
)


@dataclass
class LoadedModel:
    """A ready-to-use network and everything known about how it was trained.

    Attributes
    ----------
    network
        The ReSCU-Net, in eval mode, on the requested device.
    model_config
        Its architecture (and network input size).
    normalization
        How image windows must be scaled before they enter the network.
    train_config
        The training settings, or ``None`` when unknown.
    history
        Per-epoch training records (loss, metrics, ...), possibly empty.
    package_version
        The rescunet-ij version that wrote the model.
    path
        The file it was loaded from; ``None`` for a model that was never saved.
    extra
        Free-form additional metadata.
    """

    network: ReSCUNet
    model_config: ModelConfig
    normalization: NormalizationConfig
    train_config: TrainConfig | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    package_version: str = ""
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def erosion_width(self) -> int:
        """Erosion applied to predictions: the training setting, or 0 when unknown."""
        return self.train_config.erosion_width if self.train_config is not None else 0

    @property
    def window_size(self) -> tuple[int, int]:
        """Native-pixel window around each object: the training subimage size or the input size."""
        if self.train_config is not None:
            return self.train_config.window_size
        return tuple(self.model_config.input_size)  # type: ignore[return-value]


# ----------------------------------------------------------------------------- helpers


def _unwrap(network: nn.Module) -> nn.Module:
    # torch.compile wraps the module in an OptimizedModule that keeps the original as _orig_mod.
    while hasattr(network, "_orig_mod") and isinstance(network._orig_mod, nn.Module):
        network = network._orig_mod
    return network


def _strip_compile_prefix(key: str) -> str:
    return key.replace(_COMPILE_PREFIX, "")


def _reference_shapes(model_config: ModelConfig) -> dict[str, tuple[int, ...]]:
    # Shapes only: no memory and no (slow) initialisation of real weights.
    ref = build_model(model_config, for_loading=True)
    return {k: tuple(v.shape) for k, v in ref.state_dict().items()}


def _shape_problems(
    expected: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]], limit: int = 5
) -> list[str]:
    problems = []
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [k for k in expected if k in got and tuple(got[k]) != expected[k]]
    if missing:
        problems.append(f"{len(missing)} missing tensor(s), e.g. {', '.join(missing[:limit])}")
    if unexpected:
        problems.append(
            f"{len(unexpected)} unexpected tensor(s), e.g. {', '.join(unexpected[:limit])}"
        )
    if wrong:
        problems.append(
            f"{len(wrong)} tensor(s) of the wrong shape, e.g. "
            + ", ".join(f"{k}: got {tuple(got[k])}, expected {expected[k]}" for k in wrong[:limit])
        )
    return problems


def _json_default(obj: Any) -> Any:
    # History records often hold numpy or torch scalars; store them as plain numbers.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (Path, datetime)):
        return str(obj)
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _to_json(name: str, value: Any) -> str:
    try:
        return json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"cannot store the model's {name} in the model file: {exc}; "
            "use only numbers, strings, lists and dicts"
        ) from exc


def _check_network(network: nn.Module, model_config: ModelConfig) -> nn.Module:
    network = _unwrap(network)
    got = {_strip_compile_prefix(k): tuple(v.shape) for k, v in network.state_dict().items()}
    problems = _shape_problems(_reference_shapes(model_config), got)
    if problems:
        raise ConfigError(
            f"the network does not match its model config ({model_config.model_dump_json()}): "
            + "; ".join(problems)
            + ". Pass the ModelConfig the network was built from (build_model(model_config))"
        )
    return network


# ----------------------------------------------------------------------------- saving


def save_model(
    path: str | os.PathLike[str],
    model: nn.Module,
    model_config: ModelConfig,
    normalization: NormalizationConfig,
    *,
    train_config: TrainConfig | None = None,
    history: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a network and its metadata to one safetensors model file, atomically.

    Parameters
    ----------
    path
        Output file (``.rescunet`` recommended). Missing parent folders are created.
    model
        The trained network (a :class:`ReSCUNet`, possibly wrapped by ``torch.compile``).
    model_config
        The architecture the network was built from.
    normalization
        How image windows were scaled in training (with ``max_value`` filled in for ``max`` mode).
    train_config
        The training settings, if known; its ``model`` must equal ``model_config``.
    history
        Per-epoch training records (JSON-serialisable dicts).
    extra
        Any other JSON-serialisable metadata.
    overwrite
        If false and ``path`` exists, refuse instead of replacing it.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    ConfigError
        If the network's weights do not fit ``model_config``, or ``train_config.model`` differs.
    DataError
        If ``history`` or ``extra`` cannot be stored as JSON, or ``path`` is a folder.
    """
    path = check_overwrite(path, overwrite)
    network = _check_network(model, model_config)
    if train_config is not None and train_config.model != model_config:
        raise ConfigError(
            "train_config.model differs from model_config "
            f"({train_config.model.model_dump_json()} vs {model_config.model_dump_json()}); "
            "pass the same architecture to both"
        )
    history = list(history or [])
    if not all(isinstance(h, dict) for h in history):
        raise DataError("history must be a list of dicts (one per epoch)")
    extra = dict(extra or {})

    tensors: dict[str, torch.Tensor] = {}
    for key, value in network.state_dict().items():
        value = value.detach().to("cpu")
        if value.is_floating_point():
            value = value.to(torch.float32)
        # clone: safetensors refuses tensors sharing memory, and contiguous() may return a view.
        tensors[_strip_compile_prefix(key)] = value.contiguous().clone()

    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "package_version": _package_version(),
        "model_config": model_config.model_dump_json(),
        "normalization": normalization.model_dump_json(),
        "history": _to_json("history", history),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "extra": _to_json("extra", extra),
    }
    if train_config is not None:
        metadata["train_config"] = train_config.model_dump_json()

    from safetensors.torch import save as safetensors_save

    data = safetensors_save(tensors, metadata=metadata)
    return atomic_write_bytes(path, data, overwrite=overwrite)


def _package_version() -> str:
    from .. import __version__

    return __version__


# ----------------------------------------------------------------------------- loading


def _refuse(path: Path, problem: str, fix: str) -> ModelFileError:
    return ModelFileError(f"cannot open model file {path}: {problem}. {fix}")


def _safetensors_header_length(head: bytes) -> int | None:
    """The JSON header length if the file starts like a safetensors file, else ``None``.

    A safetensors file starts with its header length (little-endian u64) followed by the JSON
    header's ``{``. The length's low byte can be anything (1 file in 256 starts with 0x80, like a
    pickle), so this test comes before any sniffing for other formats.
    """
    if len(head) < 9 or head[8:9] != b"{":
        return None
    (n,) = struct.unpack("<Q", head[:8])
    return n if 2 <= n <= _MAX_HEADER else None


_PICKLE_OPCODES = {op.code.encode("latin-1"): op for op in pickletools.opcodes}
_PICKLE_LENGTH_BYTES = {  # arguments prefixed by their length: how many bytes the length takes
    pickletools.TAKEN_FROM_ARGUMENT1: 1,
    pickletools.TAKEN_FROM_ARGUMENT4: 4,
    pickletools.TAKEN_FROM_ARGUMENT4U: 4,
    pickletools.TAKEN_FROM_ARGUMENT8U: 8,
}


def _cut_off_argument(head: bytes, at: int, size: int) -> bool:
    """Whether the opcode at ``head[at]`` has an argument that fits the file but not ``head``.

    Newline-terminated (text) arguments never count: in a real pickle they are short lines.
    """
    opcode = _PICKLE_OPCODES.get(head[at : at + 1])
    if opcode is None or opcode.arg is None:
        return False
    n = opcode.arg.n
    if n >= 0:  # fixed size
        return at + 1 + n > len(head)
    k = _PICKLE_LENGTH_BYTES.get(n)
    if k is None:  # up to a newline
        return False
    if at + 1 + k > len(head):
        return True
    signed = n == pickletools.TAKEN_FROM_ARGUMENT4
    length = int.from_bytes(head[at + 1 : at + 1 + k], "little", signed=signed)
    return len(head) < at + 1 + k + length <= size


def _pickle_protocol(head: bytes, size: int) -> int | None:
    """The protocol of a pickle (2..5) whose first bytes decode as opcodes, else ``None``.

    Pickles of protocol 2 and newer start with PROTO (0x80) and the protocol number. The opcodes
    that follow are decoded up to the end of ``head`` (``pickletools.genops`` only reads them; it
    runs nothing). Not a pickle: an unknown opcode, one newer than the protocol, an argument that
    does not decode or is longer than the file (``size`` bytes), or PROTO followed by STOP. An
    argument cut off by the end of ``head`` is what a longer pickle looks like.
    """
    if len(head) < 3 or head[0] != 0x80 or not 2 <= head[1] <= 5:
        return None
    stream = io.BytesIO(head)
    end = 0  # where the next opcode starts
    try:
        for opcode, arg, pos in pickletools.genops(stream):
            if (
                opcode.proto > head[1]
                or (opcode.name == "STOP" and pos == 2)
                or (opcode.name == "FRAME" and arg > size)
            ):
                return None
            end = stream.tell()
            if opcode.name == "STOP":
                break
    except ValueError:  # an unknown opcode, a bad argument, or `head` ends inside an argument
        opcode = _PICKLE_OPCODES.get(head[end : end + 1])
        if end < len(head) and (
            opcode is None or opcode.proto > head[1] or not _cut_off_argument(head, end, size)
        ):
            return None
    return head[1]


def _foreign_format(head: bytes, size: int) -> str | None:
    """Name the format of a file that is not safetensors from its first bytes, if known."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return (
            "a ZIP archive (the format of torch.save .pt/.pth files, which contain a pickle; "
            "a RoiSet.zip is one too)"
        )
    if head.startswith(b"\x1f\x8b"):
        return (
            "a gzip-compressed file (PyJAMAS .cfr models are gzip-compressed pickles; "
            "it was not unpacked)"
        )
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "an HDF5 file (e.g. a Keras .h5 model from older PyJAMAS versions)"
    protocol = _pickle_protocol(head, size)
    if protocol is not None:
        return (
            f"a Python pickle (protocol {protocol}; e.g. a PyJAMAS .pkl/.cfn model or an old "
            "torch.save file)"
        )
    return None


def _header_length(path: Path, head: bytes, size: int) -> int:
    """The safetensors header length of the file, or a refusal that says what the file is.

    Safetensors is tried first: a plausible header length (``2 <= n <= limit``) followed by ``{``
    is a safetensors file (truncated if ``8 + n > size``). Only a file that is not one is named by
    its real format (ZIP, gzip, HDF5, pickle) and refused before anything else reads it. (No
    pickle, ZIP, gzip or HDF5 file has ``{`` at byte 8 after a header length under the limit.)
    """
    n = _safetensors_header_length(head)
    if n is not None:
        if 8 + n > size:
            raise _refuse(
                path,
                f"the file is truncated (header needs {8 + n} bytes, the file has {size})",
                "Copy it again or re-save the model",
            )
        return n
    kind = _foreign_format(head, size)
    if kind is not None:
        raise _refuse(path, f"it is {kind}, not a safe rescunet-ij model", _UNSAFE_HINT)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        raise _refuse(
            path,
            "it is a TIFF image, not a model",
            "Did the movie, the ROIs and --model change places? Give the model file "
            "(usually *.rescunet) to --model",
        )
    if size == 0:
        raise _refuse(
            path,
            "the file is empty (0 bytes)",
            "It was probably cut off while copying or downloading; "
            "copy it again or re-save the model",
        )
    if size < 9:
        raise _refuse(
            path,
            f"the file is only {size} bytes long, too short for a model",
            "It is truncated or not a model file; copy it again or re-save the model",
        )
    raise _refuse(path, "it is not a safetensors file (unrecognised header)", _UNSAFE_HINT)


def _read_header(path: Path) -> dict[str, Any]:
    """Parse and sanity-check the safetensors JSON header without loading any tensor."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
        n = _header_length(path, head, size)
        fh.seek(8)
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise _refuse(
            path,
            f"its safetensors header is corrupted ({exc})",
            "Copy it again or re-save the model",
        ) from exc
    data_size = size - 8 - n
    need = max(ends, default=0)
    if need > data_size:
        raise _refuse(
            path,
            f"the file is truncated (weights need {need} bytes, only {data_size} present)",
            "Copy it again or re-save the model",
        )
    if need < data_size:
        raise _refuse(
            path,
            f"the file is corrupted ({data_size - need} unexpected bytes after the weights)",
            "Copy it again or re-save the model",
        )
    return header


def _parse_config(path: Path, meta: dict[str, str], key: str, cls: type[BaseModel]) -> Any:
    text = meta.get(key)
    if text is None:
        raise _refuse(path, f"its metadata lacks '{key}'", "The file is damaged; re-save the model")
    try:
        return cls.model_validate_json(text)
    except ValidationError as exc:
        raise _refuse(
            path,
            f"its '{key}' metadata is invalid or out of range: "
            + "; ".join(validation_problems(exc)),
            "The file is damaged, was edited, or was written by an incompatible version; "
            "retrain the model with settings in the allowed range, or re-save it",
        ) from exc


def _parse_json(path: Path, meta: dict[str, str], key: str, kind: type, default: Any) -> Any:
    text = meta.get(key)
    if text is None:
        return default
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise _refuse(
            path, f"its '{key}' metadata is not valid JSON ({exc})", "Re-save the model"
        ) from exc
    if not isinstance(value, kind):
        raise _refuse(
            path,
            f"its '{key}' metadata is a {type(value).__name__}, expected a {kind.__name__}",
            "Re-save the model",
        )
    return value


def _check_path(path: Path) -> None:
    if not path.exists():
        raise _refuse(
            path,
            "the file does not exist",
            f"Check the path (current folder: {Path.cwd()}); "
            f"model files usually end in {MODEL_SUFFIX}",
        )
    if path.is_dir():
        raise _refuse(
            path, "it is a folder", f"Give the model file itself (usually *{MODEL_SUFFIX})"
        )


def _rescunet_metadata(path: Path, header: dict[str, Any]) -> dict[str, str]:
    """The header's metadata, checked to be a rescunet-ij model of a format this version reads."""
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise _refuse(path, "its safetensors metadata is corrupted", "Re-save the model")
    fmt = meta.get("format")
    if fmt != FORMAT:
        what = "has no 'format' metadata" if fmt is None else f"has format {fmt!r}"
        raise _refuse(
            path,
            "it is a safetensors file but not a rescunet-ij model "
            f"(it {what}, expected {FORMAT!r})",
            "Use a model written by rescunet-ij (e.g. by 'rescunet-ij train')",
        )
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise _refuse(
            path,
            f"its format_version {meta.get('format_version')!r} is not a number",
            "Re-save the model",
        ) from None
    if version > FORMAT_VERSION:
        raise _refuse(
            path,
            f"it was written by a newer rescunet-ij (format {version}; this version "
            f"{_package_version()} reads format {FORMAT_VERSION} and older)",
            "Upgrade: pip install -U rescunet-ij",
        )
    if version < 1:
        raise _refuse(path, f"its format_version {version} is invalid", "Re-save the model")
    return meta


def _all_finite(tensor: torch.Tensor) -> bool:
    """Whether every value is finite; one cheap sum for the usual case.

    NaN and infinity make the sum non-finite, so a finite sum proves the tensor finite. Only a
    non-finite sum (which huge but finite values can also give) needs the element-wise test, which
    costs about 20 times more (it allocates a boolean copy of the tensor).
    """
    return math.isfinite(float(tensor.sum())) or bool(torch.isfinite(tensor).all())


def _network_from_tensors(
    path: Path, model_config: ModelConfig, tensors: dict[str, torch.Tensor]
) -> ReSCUNet:
    """A network of ``model_config`` holding ``tensors``, after checking their shapes and values."""
    # Built on the meta device: shapes only, no memory and no (slow) initialisation of weights.
    network = build_model(model_config, for_loading=True)
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    problems = _shape_problems(expected, {k: tuple(v.shape) for k, v in tensors.items()})
    if problems:
        raise _refuse(
            path,
            "its weights do not match its architecture "
            f"({model_config.model_dump_json()}): " + "; ".join(problems),
            "The file is damaged or was edited; re-save or retrain the model",
        )
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not _all_finite(v)]
    if bad:
        raise _refuse(
            path,
            f"{len(bad)} weight tensor(s) contain NaN or infinity (e.g. {bad[0]})",
            "Training diverged; retrain with a lower learning rate",
        )
    # assign=True adopts the loaded tensors instead of copying into freshly initialised weights.
    network.load_state_dict(tensors, strict=True, assign=True)
    return network


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> LoadedModel:
    """Open a rescunet-ij model file; never runs code from the file.

    Parameters
    ----------
    path
        The model file (any suffix; ``.rescunet`` recommended).
    device
        Where to put the network: a :class:`torch.device` or ``auto|cpu|cuda|cuda:N|mps``.

    Returns
    -------
    LoadedModel
        The network in eval mode plus its configs, history and metadata.

    Raises
    ------
    ModelFileError
        If the file is missing, not a safetensors rescunet-ij model (pickles, ``torch.save``
        files, gzip and HDF5 files are refused unread), truncated or corrupted, from a newer
        rescunet-ij, its settings are out of range (the message names the setting and its
        allowed range), or its weights do not fit its architecture.
    ConfigError
        If ``device`` is not available.
    """
    path = Path(path)
    _check_path(path)
    if isinstance(device, str):
        from ..device import resolve_device

        device = resolve_device(device)

    meta = _rescunet_metadata(path, _read_header(path))
    model_config = _parse_config(path, meta, "model_config", ModelConfig)
    normalization = _parse_config(path, meta, "normalization", NormalizationConfig)
    train_config = (
        _parse_config(path, meta, "train_config", TrainConfig) if "train_config" in meta else None
    )
    history = _parse_json(path, meta, "history", list, [])
    extra = _parse_json(path, meta, "extra", dict, {})
    network = _network_from_tensors(path, model_config, _read_tensors(path))
    return LoadedModel(
        network=network.to(device).eval(),
        model_config=model_config,
        normalization=normalization,
        train_config=train_config,
        history=history,
        package_version=str(meta.get("package_version", "unknown")),
        path=path,
        extra=extra,
    )


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            # clone: own the memory, so the file is not kept mapped (and locked on Windows).
            tensors = {k: f.get_tensor(k).clone() for k in f.keys()}
    except Exception as exc:  # safetensors raises SafetensorError and others for broken files
        raise _refuse(
            path,
            f"its weights cannot be read ({type(exc).__name__}: {exc})",
            "The file is corrupted; copy it again or re-save the model",
        ) from exc
    out = {}
    for k, v in tensors.items():
        if v.is_floating_point():
            v = v.to(torch.float32)
        out[k] = v.contiguous()
    return out


def model_from_network(
    network: nn.Module,
    model_config: ModelConfig,
    normalization: NormalizationConfig,
    train_config: TrainConfig | None = None,
    history: list[dict[str, Any]] | None = None,
    *,
    extra: dict[str, Any] | None = None,
) -> LoadedModel:
    """Wrap a freshly trained network so it can be used without saving and reloading it.

    Parameters
    ----------
    network
        The network (``torch.compile`` wrappers are removed). It is switched to eval mode in place.
    model_config
        The architecture it was built from.
    normalization
        How image windows were scaled in training.
    train_config
        The training settings, if known.
    history
        Per-epoch training records.
    extra
        Any other metadata.

    Returns
    -------
    LoadedModel
        The same object :func:`load_model` would return for the saved file (``path`` is ``None``).

    Raises
    ------
    ConfigError
        If the network does not fit ``model_config``.
    """
    net = _check_network(network, model_config)
    if not isinstance(net, ReSCUNet):
        raise ConfigError(f"expected a ReSCUNet network, got {type(net).__name__}")
    net.eval()
    return LoadedModel(
        network=net,
        model_config=model_config,
        normalization=normalization,
        train_config=train_config,
        history=list(history or []),
        package_version=_package_version(),
        path=None,
        extra=dict(extra or {}),
    )
