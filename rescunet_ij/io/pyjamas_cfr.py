"""PyJAMAS ReSCU-Net model files (``.cfr``), opened without running code.

A PyJAMAS ``.cfr`` is a gzip-compressed pickle (protocol 3) of a plain dict:

===================== ===================================================================
key                   value
===================== ===================================================================
classifier            list of numpy weight arrays, in the Keras model's weight order
classifier_type       ``"ReSCU-Net"``
concatenation_level   0..4 (absent in older files: PyJAMAS tries 0..4 until the weights fit)
train_image_size      network input (rows, cols)
scaler                the intensity divisor (the training set's maximum)
step_sz               tile step of PyJAMAS's prediction (rows, cols)
erosion_width         erosion applied to predictions (pixels)
epochs, mini_batch_size, learning_rate, positive_training_folder, early_stopper,
lr_scheduler, model_checkpoint, logging: the training settings
===================== ===================================================================

``pickle.load`` on such a file runs whatever the pickle asks for, so this module never calls it:
:class:`_RestrictedUnpickler` resolves only the few globals a numpy array, a numpy dtype and a
numpy scalar need (what numpy 1.x and 2.x write: ``numpy.core.multiarray._reconstruct`` /
``numpy._core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``, ``...scalar``;
``...numeric._frombuffer`` for protocol 5; ``_codecs.encode`` with ``latin1``, which protocol-2
pickles use for bytes; and ``set``/``frozenset``), each wrapped so it accepts only plain data.
Dicts, lists, tuples, numbers, strings, bytes, booleans and ``None`` are pickle opcodes and need
no global. Anything else (``os.system``, ``builtins.exec``,
``subprocess.Popen``, a Keras class, ...) is refused with a :class:`ModelFileError` naming it,
before anything is called. The decompressed stream is capped (:data:`MAX_PICKLE_BYTES`).

The weights are then mapped onto :class:`~rescunet_ij.model.ReSCUNet` (same architecture):
Keras ``Conv2D`` kernels ``(kh, kw, in, out)`` and ``Conv2DTranspose`` kernels
``(kh, kw, out, in)`` both become torch's layout by the axis order ``(3, 2, 0, 1)``; the order of
the list is Keras 3's topological weight order, which interleaves the image and mask branches
level by level (:func:`pyjamas_weight_order`; checked against PyJAMAS 2026.9.0's own network by
``benchmarks/bench_pyjamas_import.py``). The normalisation stays PyJAMAS's (divide by
``scaler``: :class:`NormalizationConfig` ``mode="max"``), the window is the input size (PyJAMAS
predicts at native scale) and the erosion width is kept.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ModelFileError

__all__ = [
    "MAX_PICKLE_BYTES",
    "PyjamasModel",
    "load_cfr",
    "pyjamas_weight_order",
    "read_cfr",
    "state_dict_from_pyjamas",
]

MAX_PICKLE_BYTES = 2**31
"""Largest decompressed pickle read (2 GiB; a base-64 ReSCU-Net is about 125 MB)."""

CLASSIFIER_TYPE = "ReSCU-Net"
"""PyJAMAS's ``classifier_type`` of a ReSCU-Net."""

_POOLINGS = 4


def pyjamas_weight_order(concatenation_level: int) -> list[str]:
    """The layers of PyJAMAS's ReSCU-Net in the order of its ``classifier`` list.

    Each layer contributes two arrays, kernel then bias. Names are the
    :class:`~rescunet_ij.model.ReSCUNet` module paths (``encoder.0.conv1``,
    ``mask_encoder.0.conv1``, ``upsample.0``, ``head``...). Keras 3 orders the weights of a
    functional model topologically, so at each level where the mask has its own branch the two
    branches alternate: image conv 1, mask conv 1, image conv 2, mask conv 2.
    """
    order: list[str] = []
    for i in range(_POOLINGS):
        branches = ["encoder"] + (["mask_encoder"] if i < concatenation_level else [])
        for conv in ("conv1", "conv2"):
            order += [f"{b}.{i}.{conv}" for b in branches]
    order += ["bottleneck.conv1", "bottleneck.conv2"]
    for j in range(_POOLINGS):
        order += [f"upsample.{j}", f"decoder.{j}.conv1", f"decoder.{j}.conv2"]
    order.append("head")
    return order


def _expected_shapes(
    concatenation_level: int, base_filters: int, in_channels: int
) -> dict[str, tuple[int, ...]]:
    """Keras kernel shapes of every layer of :func:`pyjamas_weight_order`."""
    widths = [base_filters * 2**i for i in range(_POOLINGS + 1)]
    level = concatenation_level
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(_POOLINGS + 1):
        name = "bottleneck" if i == _POOLINGS else f"encoder.{i}"
        c_in = (in_channels + (level == 0)) if i == 0 else widths[i - 1]
        if level > 0 and i == level:
            c_in *= 2
        shapes[f"{name}.conv1"] = (3, 3, c_in, widths[i])
        shapes[f"{name}.conv2"] = (3, 3, widths[i], widths[i])
        if i < level:
            shapes[f"mask_encoder.{i}.conv1"] = (3, 3, 1 if i == 0 else widths[i - 1], widths[i])
            shapes[f"mask_encoder.{i}.conv2"] = (3, 3, widths[i], widths[i])
    for j in range(_POOLINGS):
        w = widths[_POOLINGS - 1 - j]
        shapes[f"upsample.{j}"] = (2, 2, w, 2 * w)  # Conv2DTranspose: (kh, kw, out, in)
        shapes[f"decoder.{j}.conv1"] = (3, 3, 2 * w, w)
        shapes[f"decoder.{j}.conv2"] = (3, 3, w, w)
    shapes["head"] = (1, 1, base_filters, 2)
    return shapes


def _fit_problems(weights: list[np.ndarray], level: int, base: int, in_ch: int) -> list[str]:
    """Why ``weights`` are not a ReSCU-Net at this level and width (empty: they are)."""
    order = pyjamas_weight_order(level)
    if len(weights) != 2 * len(order):
        return [f"{len(weights)} arrays, a ReSCU-Net with level {level} has {2 * len(order)}"]
    shapes = _expected_shapes(level, base, in_ch)
    problems = []
    for k, name in enumerate(order):
        kernel, bias = weights[2 * k], weights[2 * k + 1]
        want = shapes[name]
        bias_len = want[2] if name.startswith("upsample") else want[3]
        if tuple(kernel.shape) != want or tuple(bias.shape) != (bias_len,):
            problems.append(
                f"array {2 * k} ({name}) is {tuple(kernel.shape)} + bias {tuple(bias.shape)}, "
                f"expected {want} + ({bias_len},)"
            )
    return problems


def state_dict_from_pyjamas(
    weights: list[np.ndarray], concatenation_level: int
) -> dict[str, np.ndarray]:
    """Map PyJAMAS's ``classifier`` list onto :class:`~rescunet_ij.model.ReSCUNet` state-dict keys.

    Kernels go from Keras ``(kh, kw, a, b)`` to torch ``(b, a, kh, kw)`` (for ``Conv2D`` a/b are
    in/out, for ``Conv2DTranspose`` out/in, which is torch's ``ConvTranspose2d`` layout
    ``(in, out, kh, kw)`` after the same transpose). Arrays are float32 and C-contiguous.
    """
    out: dict[str, np.ndarray] = {}
    for k, name in enumerate(pyjamas_weight_order(concatenation_level)):
        kernel = np.asarray(weights[2 * k], dtype=np.float32)
        out[f"{name}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        out[f"{name}.bias"] = np.ascontiguousarray(np.asarray(weights[2 * k + 1], np.float32))
    return out


# ============================================================================ safe reading
class _Refused(Exception):
    """A global the restricted unpickler will not resolve (turned into ModelFileError)."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.module, self.name = module, name


class _ArrayClassMarker:
    """Stands for ``numpy.ndarray`` in the pickle: usable as ``_reconstruct``'s subtype only.

    Handing out the real class would let a pickle call ``numpy.ndarray(shape)`` directly (a
    memory bomb); the marker cannot be called.
    """


def _multiarray() -> Any:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return multiarray


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """``numpy...multiarray._reconstruct`` for plain arrays: the empty array BUILD then fills."""
    if subtype is not _ArrayClassMarker:
        raise pickle.UnpicklingError("_reconstruct called with something other than ndarray")
    if tuple(shape) != (0,):
        raise pickle.UnpicklingError(f"_reconstruct called with shape {shape!r}, expected (0,)")
    return _multiarray()._reconstruct(np.ndarray, (0,), dtype)


def _safe_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes (``latin1`` text only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed for latin1 strings only")
    return text.encode("latin1")


def _safe_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("numpy scalars of object dtype are not allowed")
    return _multiarray().scalar(dtype, data)


def _safe_frombuffer(
    buf: Any, dtype: Any, shape: Any, order: Any, axis_order: Any = None
) -> np.ndarray:
    """``numpy...numeric._frombuffer`` (protocol 5 arrays): a copy of plain bytes as an array."""
    if not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)):
        raise pickle.UnpicklingError("_frombuffer needs bytes")
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("_frombuffer needs a numeric dtype")
    array = np.frombuffer(bytes(buf), dtype=dtype)
    if order == "K" and axis_order is not None:
        return array.reshape(shape, order="C").transpose(axis_order).copy()
    return array.reshape(shape, order="F" if order == "F" else "C").copy()


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy.core.multiarray", "scalar"): _safe_scalar,
    ("numpy._core.multiarray", "scalar"): _safe_scalar,
    ("numpy", "ndarray"): _ArrayClassMarker,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
    ("_codecs", "encode"): _safe_encode,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,  # protocols 0-2 name builtins as Python 2 did
    ("__builtin__", "frozenset"): frozenset,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals of :data:`_ALLOWED`; everything else raises :class:`_Refused`."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - pickle's hook
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(module, name) from None

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102 - pickle's hook
        raise _Refused("<persistent id>", repr(pid)[:60])


class _Capped(io.RawIOBase):
    """A read-only stream that fails once more than ``limit`` bytes were read from it."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        super().__init__()
        self._raw, self._left = raw, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        self._left -= n or 0
        if self._left < 0:
            raise pickle.UnpicklingError(f"the pickle is larger than {MAX_PICKLE_BYTES} bytes")
        return n


def _refuse(path: Path, why: str, todo: str) -> ModelFileError:
    return ModelFileError(f"cannot import PyJAMAS model {path}: {why}. {todo}")


def _open(path: Path) -> BinaryIO:
    """The file's pickle stream: gunzipped for a ``.cfr``, as it is for a bare pickle."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if head[:1] == b"\x80":
        return open(path, "rb")
    raise _refuse(
        path,
        "it is neither gzip-compressed nor a pickle (a PyJAMAS .cfr starts with the gzip "
        f"signature 1f 8b; this file starts with {head.hex(' ') or 'nothing'})",
        "Give the .cfr file PyJAMAS saved (e.g. ckpt_final.cfr)",
    )


def read_cfr(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a PyJAMAS ``.cfr`` into a plain dict without running any code from it.

    Parameters
    ----------
    path
        The ``.cfr`` file (gzip-compressed pickle; an uncompressed pickle is read too).

    Returns
    -------
    dict
        The file's dict, with numpy arrays and scalars as its only non-builtin values.

    Raises
    ------
    ModelFileError
        If the file is missing, not gzip/pickle, damaged or truncated, not a dict, or its pickle
        asks for anything beyond numpy arrays, dtypes, scalars and plain containers (the message
        names the refused global; nothing was called).
    """
    path = Path(path)
    if not path.is_file():
        raise _refuse(
            path,
            "it is a folder" if path.is_dir() else "the file does not exist",
            "Give the path of the PyJAMAS .cfr model file",
        )
    try:
        with _open(path) as raw:
            data = _RestrictedUnpickler(io.BufferedReader(_Capped(raw, MAX_PICKLE_BYTES))).load()
    except _Refused as exc:
        raise _refuse(
            path,
            f"its pickle asks for '{exc.module}.{exc.name}', which a PyJAMAS model never "
            "contains; unpickling it could run code, so it was refused and nothing in it was "
            "executed",
            "Only open .cfr files from people you trust; ask for the original file PyJAMAS saved",
        ) from None
    except ModelFileError:
        raise
    except MemoryError:
        raise _refuse(
            path, "it needs more memory than is available", "Is it really a .cfr?"
        ) from None
    except Exception as exc:  # noqa: BLE001 - gzip, zlib, pickle and numpy each raise their own
        raise _refuse(
            path,
            f"it is damaged or truncated ({type(exc).__name__}: {exc})",
            "Copy it again from where PyJAMAS saved it",
        ) from None
    if not isinstance(data, dict):
        raise _refuse(
            path,
            f"it holds a {type(data).__name__}, not the dict of a PyJAMAS classifier",
            "Give a .cfr saved by PyJAMAS's ReSCU-Net",
        )
    return data


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ============================================================================ conversion
@dataclass
class PyjamasModel:
    """A PyJAMAS ReSCU-Net read from a ``.cfr``, ready to become a rescunet-ij model.

    Attributes
    ----------
    state_dict
        :class:`~rescunet_ij.model.ReSCUNet` weights (float32 numpy arrays).
    concatenation_level
        Where the prompt joins the image.
    level_inferred
        True when the file had no ``concatenation_level`` and it was found by trying 0..4.
    base_filters, in_channels
        Read from the first kernel's shape (PyJAMAS: 64 and 1).
    input_size
        ``train_image_size`` (rows, cols).
    scaler
        The intensity divisor (PyJAMAS divides every image by it).
    erosion_width
        PyJAMAS's erosion of predictions, pixels.
    settings
        The file's other settings, as JSON-friendly values (``classifier`` left out).
    source, sha256
        The file and its SHA-256.
    """

    state_dict: dict[str, np.ndarray]
    concatenation_level: int
    level_inferred: bool
    base_filters: int
    in_channels: int
    input_size: tuple[int, int]
    scaler: float
    erosion_width: int
    settings: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    sha256: str = ""


def _plain(value: Any) -> Any:
    """JSON-friendly copy of a settings value (numpy scalars to numbers, tuples to lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 16 else f"<array {value.shape} {value.dtype}>"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _number(path: Path, d: dict[str, Any], key: str, default: Any, kind: type) -> Any:
    value = d.get(key, default)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _refuse(path, f"its '{key}' is {value!r}, not a number", "The file is damaged")
    if kind is int and float(value) != int(value):
        raise _refuse(path, f"its '{key}' is {value!r}, not a whole number", "The file is damaged")
    return kind(value)


def _size_pair(path: Path, value: Any) -> tuple[int, int]:
    try:
        if isinstance(value, (int, np.integer)):
            return int(value), int(value)
        a, b = list(value)[:2]
        return int(a), int(b)
    except (TypeError, ValueError):
        raise _refuse(
            path, f"its 'train_image_size' is {value!r}, not (rows, cols)", "The file is damaged"
        ) from None


def load_cfr(path: str | os.PathLike[str]) -> PyjamasModel:
    """Read a PyJAMAS ReSCU-Net ``.cfr`` (safely, :func:`read_cfr`) and map its weights.

    Raises
    ------
    ModelFileError
        Besides :func:`read_cfr`'s reasons: the file is another PyJAMAS classifier (U-Net,
        QuickieNet, SVM...), its weights are not a ReSCU-Net at any concatenation level 0..4
        (or not at the one it states), are not real numbers or not finite, or its settings
        (input size, scaler, erosion width) are missing or invalid.
    """
    path = Path(path)
    d = read_cfr(path)
    kind = d.get("classifier_type", CLASSIFIER_TYPE)
    if kind != CLASSIFIER_TYPE:
        raise _refuse(
            path,
            f"it is a PyJAMAS {kind!r} classifier, not a {CLASSIFIER_TYPE}",
            "Only PyJAMAS ReSCU-Net models can be imported",
        )
    weights = d.get("classifier")
    if not isinstance(weights, list) or not all(isinstance(w, np.ndarray) for w in weights):
        raise _refuse(
            path,
            "its 'classifier' is not a list of numpy arrays (the ReSCU-Net weights)",
            "Give a .cfr saved by PyJAMAS's ReSCU-Net",
        )
    bad = [k for k, w in enumerate(weights) if w.dtype.kind not in "fiu"]
    if bad:
        raise _refuse(
            path,
            f"weight array {bad[0]} holds {weights[bad[0]].dtype} values, not numbers",
            "The file is damaged",
        )
    if len(weights) < 2 or weights[0].ndim != 4:
        raise _refuse(path, "its weights do not start with a convolution kernel", "Damaged?")
    base = int(weights[0].shape[3])
    stated = d.get("concatenation_level")
    if stated is not None:
        level = _number(path, d, "concatenation_level", None, int)
        candidates = [level]
    else:
        candidates = list(range(_POOLINGS + 1))
    found = None
    problems: dict[int, list[str]] = {}
    for level in candidates:
        in_ch = int(weights[0].shape[2]) - (level == 0)
        if in_ch < 1:
            problems[level] = ["the first kernel has no image channel"]
            continue
        problems[level] = _fit_problems(weights, level, base, in_ch)
        if not problems[level]:
            found = (level, in_ch)
            break
    if found is None:
        detail = "; ".join(
            f"level {lv}: {'; '.join(p[:2])}{' ...' if len(p) > 2 else ''}"
            for lv, p in problems.items()
        )
        raise _refuse(
            path,
            f"its {len(weights)} weight arrays are not a ReSCU-Net ({detail})",
            "The file is damaged or comes from a different network",
        )
    level, in_ch = found
    nonfinite = [k for k, w in enumerate(weights) if not np.isfinite(w).all()]
    if nonfinite:
        raise _refuse(
            path,
            f"{len(nonfinite)} weight array(s) contain NaN or infinity (e.g. array {nonfinite[0]})",
            "Training diverged in PyJAMAS; use an earlier checkpoint (ckpt_best.cfr)",
        )
    if "train_image_size" not in d:
        raise _refuse(path, "it has no 'train_image_size'", "The file is damaged")
    scaler = _number(path, d, "scaler", 1, float)
    if not math.isfinite(scaler) or scaler <= 0:
        raise _refuse(
            path, f"its intensity 'scaler' is {scaler}, not a positive number", "Damaged?"
        )
    erosion = d.get("erosion_width", 0)
    erosion = 0 if erosion is None else _number(path, d, "erosion_width", 0, int)
    settings = _plain({k: v for k, v in d.items() if k != "classifier"})
    return PyjamasModel(
        state_dict=state_dict_from_pyjamas(weights, level),
        concatenation_level=level,
        level_inferred=stated is None,
        base_filters=base,
        in_channels=in_ch,
        input_size=_size_pair(path, d["train_image_size"]),
        scaler=scaler,
        erosion_width=erosion,
        settings=settings,
        source=path.resolve(),
        sha256=_sha256(path),
    )
