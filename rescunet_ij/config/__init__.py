"""Validated settings (pydantic v2) for the model, training and propagation.

Every setting has its bounds in the field; rules that tie fields together are model validators.
Use :func:`make_config` to build one from user input: it turns pydantic's ``ValidationError`` into
a :class:`~rescunet_ij.errors.ConfigError` that names the parameter, the value, the allowed range
and the fix.

Every size, count and weight has an upper bound too, so that a typo or an edited model file
(``input_size`` 1e9) is refused with a clear message instead of failing much later inside torch or
numpy (storage size overflow, "array is too big", tens of GiB requested). The bounds are generous
for real use:

* network input 16..1024 pixels per side (:data:`MAX_INPUT_SIZE`): a 1024x1024 sample already
  needs about 8 GiB to train at 64 base filters (:mod:`rescunet_ij.model.memory`); larger objects
  are cut in a larger ``subimage_size`` window and rescaled to the input;
* subimage (window) 8..4096 pixels per side (:data:`MAX_SUBIMAGE_SIZE`), far beyond any frame
  ImageJ users segment one object in;
* batch sizes 1..4096, epochs 1..100000, patience values up to 100000, base filters 4..128,
  image channels 1..4; weights and widths bounded and finite.

Whether a batch fits the device's memory is a separate question, answered by
:func:`rescunet_ij.model.memory.fit_batch_size`.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError

__all__ = [
    "ModelConfig",
    "NormalizationConfig",
    "TrainConfig",
    "PropagateConfig",
    "format_validation_error",
    "make_config",
    "nearest_valid_sizes",
    "parse_size",
    "validation_problems",
    "MIN_INPUT_SIZE",
    "MAX_INPUT_SIZE",
    "INPUT_MULTIPLE",
    "MIN_SUBIMAGE_SIZE",
    "MAX_SUBIMAGE_SIZE",
    "MAX_BATCH_SIZE",
    "MAX_EPOCHS",
    "MAX_PROMPT_SHIFT",
]

DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"

INPUT_MULTIPLE = 16
"""Network input sides must be multiples of this: the ReSCU-Net pools 4 times by 2."""
MIN_INPUT_SIZE = 16
"""Smallest network input side, pixels."""
MAX_INPUT_SIZE = 1024
"""Largest network input side, pixels (one 1024x1024 sample needs ~8 GiB to train at f=64)."""
MIN_SUBIMAGE_SIZE = 8
"""Smallest window side around an object, native pixels."""
MAX_SUBIMAGE_SIZE = 4096
"""Largest window side around an object, native pixels."""
MAX_BATCH_SIZE = 4096
"""Largest training batch and propagation pass (memory permitting: see model.memory)."""
MAX_EPOCHS = 100_000
"""Most training epochs; also the most any patience setting can be."""
MAX_SEED = 2**64 - 1
"""Largest random seed (torch.manual_seed's limit)."""
MAX_PROMPT_SHIFT = MAX_SUBIMAGE_SIZE // 4
"""Largest random prompt shift in training, native pixels (a quarter of the largest window)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def nearest_valid_sizes(n: int, multiple: int = 16) -> tuple[int, int]:
    """The valid sizes (multiples of ``multiple``, at least ``multiple``) nearest to ``n``.

    A valid ``n`` gives ``(n, n)``; anything under ``multiple`` gives ``(multiple, multiple)``.
    """
    if n <= multiple:
        return multiple, multiple
    below = (n // multiple) * multiple
    above = below if n % multiple == 0 else below + multiple
    return below, above


def parse_size(value: Any) -> int | tuple[int, int] | None:
    """A size as users type it: ``64``, ``"64"``, ``"96x64"`` or ``"96,64"`` (height x width).

    ``None`` stays ``None``; numbers and pairs pass through. Raises :class:`ConfigError` for text
    that is not one or two whole numbers.
    """
    if value is None or isinstance(value, (int, tuple, list)):
        return value if not isinstance(value, list) else tuple(value)
    if isinstance(value, str):
        try:
            parts = [int(p) for p in value.lower().replace("x", ",").split(",") if p.strip()]
        except ValueError:
            parts = []
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            return parts[0], parts[1]
    raise ConfigError(f"a size must be a number or HxW, e.g. 64 or 96x64; got {value!r}")


def _as_pair(v: Any) -> Any:
    if isinstance(v, str):
        try:
            v = parse_size(v)
        except ConfigError:
            return v  # pydantic then reports the text as not a pair of numbers
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # JSON numbers such as 64.0 or 1e5
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v)
    return v


def validation_problems(exc: ValidationError) -> list[str]:
    """One line per problem in ``exc``: ``field: problem (got value; allowed range)``.

    Field names are spelled with spaces (``batch size``), nested ones joined by dots
    (``model.input size``). For a value outside a bound the whole allowed range is named
    (``allowed: 1..4096``), not only the bound it crossed.

    Parameters
    ----------
    exc
        A validation error raised by one of the config classes of this module.

    Returns
    -------
    list of str
        The problems, one readable line each.
    """
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or exc.title
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        notes = [] if isinstance(got, dict) else [f"got {got!r}"]
        if err["type"] in _BOUND_ERRORS:
            allowed = _allowed_range(exc.title, err["loc"])
            if allowed:
                notes.append(f"allowed: {allowed}")
        suffix = f" ({'; '.join(notes)})" if notes else ""
        lines.append(f"{where.replace('_', ' ')}: {msg}{suffix}")
    return lines


def format_validation_error(exc: ValidationError, heading: str = "invalid settings") -> str:
    """One readable message from pydantic's errors: ``field: problem (got value)`` per line.

    Parameters
    ----------
    exc
        A validation error raised by one of the config classes of this module.
    heading
        The first line of the message.

    Returns
    -------
    str
        ``heading:`` followed by the lines of :func:`validation_problems`, indented.
    """
    return f"{heading}:\n  " + "\n  ".join(validation_problems(exc))


_BOUND_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def _allowed_range(title: str, loc: tuple[int | str, ...]) -> str | None:
    """The bounds of the config field at ``loc`` as text (``1..4096``, ``> 0 and <= 1``)."""
    model = _CONFIGS.get(title)
    field = None
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            break
        field = model.model_fields[part]
        nested = field.annotation
        model = nested if isinstance(nested, type) and issubclass(nested, BaseModel) else None
    if field is None:
        return None
    low = high = None
    for m in field.metadata:
        if isinstance(m, annotated_types.Ge):
            low = f">= {m.ge}"
        elif isinstance(m, annotated_types.Gt):
            low = f"> {m.gt}"
        elif isinstance(m, annotated_types.Le):
            high = f"<= {m.le}"
        elif isinstance(m, annotated_types.Lt):
            high = f"< {m.lt}"
    if low and high and low.startswith(">=") and high.startswith("<="):
        return f"{low[3:]}..{high[3:]}"
    return " and ".join(b for b in (low, high) if b) or None


class ModelConfig(_Strict):
    """Architecture of a ReSCU-Net (see :class:`rescunet_ij.model.rescunet.ReSCUNet`)."""

    input_size: tuple[int, int] = Field(
        default=(64, 64),
        description=f"network input (height, width) in pixels; each {MIN_INPUT_SIZE}.."
        f"{MAX_INPUT_SIZE} and divisible by {INPUT_MULTIPLE}",
    )
    concatenation_level: int = Field(
        default=1,
        ge=0,
        le=4,
        description="encoder blocks that see image and previous mask separately before they "
        "are joined",
    )
    base_filters: int = Field(
        default=64,
        ge=4,
        le=128,
        description="filters in the first block (64 in the paper; 16 or 32 for small GPUs/CPUs)",
    )
    dropout: bool = Field(
        default=True, description="dropout 0.1..0.5 down / 0.4..0.1 up (training only)"
    )
    in_channels: int = Field(default=1, ge=1, le=4, description="image channels")

    @field_validator("input_size", mode="before")
    @classmethod
    def _pair(cls, v: Any) -> Any:
        return _as_pair(v)

    @field_validator("input_size")
    @classmethod
    def _divisible(cls, v: tuple[int, int]) -> tuple[int, int]:
        allowed = f"allowed: {MIN_INPUT_SIZE}..{MAX_INPUT_SIZE}, a multiple of {INPUT_MULTIPLE}"
        for n in v:
            if n > MAX_INPUT_SIZE:
                raise ValueError(
                    f"input size {n} is larger than {MAX_INPUT_SIZE} pixels ({allowed}); "
                    f"use at most {MAX_INPUT_SIZE} and cut larger objects with a larger "
                    "subimage size (windows are rescaled to the input size)"
                )
            if n < MIN_INPUT_SIZE or n % INPUT_MULTIPLE:
                lo, hi = nearest_valid_sizes(n, INPUT_MULTIPLE)
                hint = f"{hi}" if lo == hi else f"{lo} or {hi}"
                raise ValueError(
                    f"input size {n} is not a multiple of {INPUT_MULTIPLE} of at least "
                    f"{MIN_INPUT_SIZE} (the network pools 4 times; {allowed}); use {hint}"
                )
        return v


class NormalizationConfig(_Strict):
    """How image intensities are scaled before they enter the network.

    ``percentile`` (default) maps the ``low``/``high`` percentiles of each network window to 0/1,
    which transfers between movies with different bit depths and exposure. ``max`` divides by the
    training set's maximum intensity (PyJAMAS' rule); ``max_value`` is filled in by training.
    """

    mode: Literal["percentile", "max"] = "percentile"
    low_percentile: float = Field(default=1.0, ge=0.0, lt=50.0)
    high_percentile: float = Field(default=99.8, gt=50.0, le=100.0)
    max_value: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class TrainConfig(_Strict):
    """Training parameters (the seed's dialog plus what a careful user needs)."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    normalization: NormalizationConfig = Field(default_factory=NormalizationConfig)
    subimage_size: tuple[int, int] | None = Field(
        default=None,
        description="window around each object in native pixels, rescaled to the input size; "
        "None = the input size (no rescaling)",
    )
    learning_rate: float = Field(default=1e-3, gt=0, le=1.0)
    batch_size: int = Field(default=32, ge=1, le=MAX_BATCH_SIZE)
    epochs: int = Field(default=100, ge=1, le=MAX_EPOCHS)
    erosion_width: int = Field(
        default=0, ge=0, le=100, description="erosion applied after prediction"
    )
    validation_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    early_stopping_patience: int | None = Field(
        default=5,
        ge=1,
        le=MAX_EPOCHS,
        description="epochs without validation improvement before stopping; None = never",
    )
    lr_plateau_patience: int = Field(
        default=2,
        ge=1,
        le=MAX_EPOCHS,
        description="epochs without improvement before the LR is cut",
    )
    lr_plateau_factor: float = Field(default=0.5, gt=0.0, lt=1.0)
    weight_w0: float = Field(
        default=10.0, ge=0.0, le=1000.0, description="edge weight amplitude w0"
    )
    weight_sigma: float = Field(
        default=5.0, gt=0.0, le=1000.0, description="edge weight width sigma, pixels"
    )
    augment: bool = Field(default=True, description="flips, 90-degree rotations, intensity jitter")
    prompt_augment: bool = Field(
        default=True,
        description="train on imperfect prompts: the previous mask of a share of the training "
        "windows is shifted, dilated or eroded by 1-2 pixels and loses or gains boundary pixels, "
        "as after a few propagated frames, so small errors do not compound (independent of "
        "augment)",
    )
    prompt_shift: int | None = Field(
        default=None,
        ge=0,
        le=MAX_PROMPT_SHIFT,
        description="largest random prompt shift, native pixels; None = the 90th percentile of "
        "the training samples' displacement between previous and current mask (at least 2, at "
        "most a quarter of the window)",
    )
    prompt_augment_fraction: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="share of the training windows whose prompt is made imperfect",
    )
    prompt_motion: Literal["auto", "off", "global", "object"] | None = Field(
        default=None,
        description="the motion compensation the training set's prompts were made with, "
        "recorded with the model so propagation can use the same (api.train copies it from the "
        "set; None = unknown, e.g. a PyJAMAS set)",
    )
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    device: str = Field(default="auto", pattern=DEVICE_PATTERN)
    mixed_precision: bool | Literal["auto"] = Field(
        default="auto", description="bfloat16/float16 autocast; auto = on for CUDA only"
    )
    num_workers: int = Field(default=0, ge=0, le=64)
    prefetch_factor: int = Field(
        default=2,
        ge=1,
        le=64,
        description="batches each data-loading worker prepares ahead (with num_workers > 0)",
    )
    channels_last: bool = Field(
        default=False,
        description="channels-last memory layout for the network and its batches (NHWC; the "
        "layout oneDNN and cuDNN convolutions prefer)",
    )

    @field_validator("subimage_size", mode="before")
    @classmethod
    def _pair(cls, v: Any) -> Any:
        return None if v is None else _as_pair(v)

    @field_validator("subimage_size")
    @classmethod
    def _positive(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and (
            len(v) != 2 or min(v) < MIN_SUBIMAGE_SIZE or max(v) > MAX_SUBIMAGE_SIZE
        ):
            raise ValueError(
                f"subimage size must be two numbers from {MIN_SUBIMAGE_SIZE} to "
                f"{MAX_SUBIMAGE_SIZE} pixels (allowed: {MIN_SUBIMAGE_SIZE}..{MAX_SUBIMAGE_SIZE} "
                f"per side), got {v}; use a window a little larger than the objects"
            )
        return v

    @property
    def window_size(self) -> tuple[int, int]:
        """The native-pixel window around each object: the subimage size or the input size."""
        return tuple(self.subimage_size or self.model.input_size)  # type: ignore[return-value]


class PropagateConfig(_Strict):
    """Settings for applying a trained model to a movie."""

    erosion_width: int | None = Field(default=None, ge=0, le=100, description="None = the model's")
    threshold: float = Field(
        default=0.5, gt=0.0, lt=1.0, description="foreground probability cut-off"
    )
    tile_overlap: float = Field(
        default=0.25, ge=0.0, lt=0.9, description="overlap of neighbouring tiles"
    )
    context: float = Field(
        default=0.25,
        ge=0.0,
        le=2.0,
        description="margin around the previous mask searched for the object: context/2 x "
        "window on each side",
    )
    batch_size: int = Field(
        default=64, ge=1, le=MAX_BATCH_SIZE, description="tiles per forward pass"
    )
    min_area: int = Field(
        default=4,
        ge=1,
        le=MAX_SUBIMAGE_SIZE**2,
        description="objects smaller than this (pixels) count as lost",
    )
    simplify_tolerance: float = Field(
        default=0.35, ge=0.0, le=5.0, description="polygon simplification, pixels"
    )
    device: str = Field(default="auto", pattern=DEVICE_PATTERN)
    mixed_precision: bool | Literal["auto"] = "auto"
    motion: Literal["auto", "off", "global", "object"] = Field(
        default="auto",
        description="motion compensation before windows are cut: off; global (one translation "
        "per frame); object (global, then each object on its own); auto (as object, using only "
        "shifts the images show clearly)",
    )
    motion_radius: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SUBIMAGE_SIZE,
        description="how far (pixels) an object is searched for around the global shift; None = "
        "half the window side (at least 8)",
    )
    keep_going: bool = Field(
        default=False,
        description="keep propagating an object whose prediction failed a sanity check (it is "
        "marked doubtful) instead of stopping it as lost",
    )
    lost_prompt_iou: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="a prediction whose IoU with the previous outline (moved by the estimated "
        "motion) is below this has left its object",
    )
    lost_confidence: float = Field(
        default=0.55,
        ge=0.0,
        le=1.0,
        description="a prediction whose mean foreground probability is below this has lost its "
        "object",
    )
    max_area_change: float = Field(
        default=4.0,
        gt=1.0,
        le=1000.0,
        description="a prediction more than this many times larger or smaller than its prompt "
        "has lost its object",
    )


_CONFIGS: dict[str, type[BaseModel]] = {
    c.__name__: c for c in (ModelConfig, NormalizationConfig, TrainConfig, PropagateConfig)
}
"""The config classes by name (a ValidationError's ``title``), to look bounds up."""

C = TypeVar("C", bound=BaseModel)


def make_config(cls: type[C], **values: Any) -> C:
    """Build a config, turning validation problems into one readable :class:`ConfigError`.

    ``None`` values are dropped so callers can pass optional CLI arguments straight through.
    """
    values = {k: v for k, v in values.items() if v is not None}
    try:
        return cls(**values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
