"""What travels over HTTP: request parameters (validated), and outlines and results as compact JSON.

Choices (measured in ``benchmarks/bench_service.py``):

* **Movies go up as TIFF bytes** of only the frames being segmented, one channel and one plane.
  Every client can write them (ImageJ's ``FileSaver.serialize()``, tifffile), they carry shape and
  pixel type, and the server reads them with the same checked reader as files on disk. A raw
  uncompressed TIFF costs a few hundred bytes of header over the pixels; compressing 16-bit
  microscopy noise saves little and costs more time than it saves on a local network.
* **Outlines go both ways as compact JSON** (``[[x, y], ...]`` per polygon, frames numbered from 1
  as in ImageJ): a few KB for a frame of 20 objects, readable by a Groovy client with its built-in
  ``JsonSlurper``, and with no position rules to re-implement. A client that wants ImageJ's own
  format asks for ``return_roiset`` and gets the RoiSet.zip that ``rescunet-ij propagate`` would
  write (positions, groups, names, properties), base64-encoded; an ImageJ ``RoiSet.zip`` is also
  accepted as input (``rois``).
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import api
from ..errors import DataError, RescunetError
from ..types import Outline

Frame = int  # 1-based, as in ImageJ


class OutlineIn(BaseModel):
    """One object's outline on one frame (frames and planes from 1, as in ImageJ)."""

    model_config = ConfigDict(extra="forbid")

    object_id: int = Field(ge=1, le=10**9)
    frame: int = Field(ge=1, description="frame (or plane, along z) number, from 1")
    polygon: list[tuple[float, float]] = Field(
        min_length=3, description="vertices [[x, y], ...] in pixels"
    )
    name: str | None = Field(default=None, max_length=200)


class PropagateParams(BaseModel):
    """Parameters of ``POST /v1/propagate`` (sent as the JSON form field ``params``)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="model id from /v1/models/load or /v1/models/upload")
    first_index: int = Field(
        default=1,
        ge=1,
        description="number of the TIFF's first frame (first plane along z) in the user's movie, "
        "so that a cut-out keeps the movie's frame numbers",
    )
    first_frame: int | None = Field(default=None, ge=1, description="the seed frame")
    last_frame: int | None = Field(default=None, ge=1, description="last frame to predict")
    next_frame_only: bool = False
    reverse: bool = False
    channel: int | None = Field(default=None, ge=1, description="channel of the TIFF, from 1")
    z: int | None = Field(default=None, ge=1, description="z-plane of the TIFF, from 1")
    axis: Literal["t", "z"] = "t"
    identity: Literal["auto", "property", "group", "name", "order"] = Field(
        default="auto", description="how RoiSet ROIs map to objects (rois input only)"
    )
    object_ids: list[int] | None = None
    motion: Literal["auto", "off", "global", "object"] = "auto"
    keep_going: bool = False
    batch_size: int | None = Field(default=None, ge=1, le=4096)
    erosion_width: int | None = Field(default=None, ge=0, le=64)
    min_confidence: float = Field(default=0.8, ge=0, le=1)
    min_prompt_iou: float = Field(default=0.5, ge=0, le=1)
    return_roiset: bool = Field(
        default=False, description="also return the result as a base64 RoiSet.zip"
    )


class ApplyParams(BaseModel):
    """Parameters of ``POST /v1/apply``: predict one frame from the outlines on the one before."""

    model_config = ConfigDict(extra="forbid")

    model: str
    first_index: int = Field(default=1, ge=1)
    frame: int | None = Field(
        default=None,
        ge=1,
        description="the frame to predict (default: the TIFF's last frame, its first with reverse)",
    )
    reverse: bool = False
    channel: int | None = Field(default=None, ge=1)
    z: int | None = Field(default=None, ge=1)
    identity: Literal["auto", "property", "group", "name", "order"] = "auto"
    object_ids: list[int] | None = None
    motion: Literal["auto", "off", "global", "object"] = "auto"
    erosion_width: int | None = Field(default=None, ge=0, le=64)
    min_confidence: float = Field(default=0.8, ge=0, le=1)
    min_prompt_iou: float = Field(default=0.5, ge=0, le=1)
    return_roiset: bool = False

    def as_propagate(self, n_frames: int) -> PropagateParams:
        """The same request as a one-step propagation."""
        last = self.first_index + n_frames - 1
        target = (
            self.frame if self.frame is not None else (self.first_index if self.reverse else last)
        )
        seed = target + 1 if self.reverse else target - 1
        if not self.first_index <= seed <= last:
            raise DataError(
                f"frame {target} has no {'next' if self.reverse else 'previous'} frame in the "
                f"uploaded movie (frames {self.first_index}..{last}) to predict it from; send that "
                "frame too"
            )
        values = self.model_dump(exclude={"frame"})
        return PropagateParams(**values, first_frame=seed, last_frame=target, next_frame_only=True)


def parse_params(text: str | None, cls: type[BaseModel]) -> Any:
    """The JSON form field ``params`` as ``cls``; a :class:`DataError` naming each problem."""
    try:
        raw = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise DataError(f"params is not valid JSON: {exc.msg} at character {exc.pos}") from None
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        raise DataError(api.format_validation_error(exc, "invalid params")) from None


def parse_outlines(data: bytes) -> list[OutlineIn]:
    """The ``outlines`` part: a JSON list of outlines."""
    try:
        raw = json.loads(data or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"outlines is not valid JSON: {exc}") from None
    if not isinstance(raw, list):
        raise DataError(
            'outlines must be a JSON list: [{"object_id": 1, "frame": 1, "polygon": [[x, y], ...]}]'
        )
    if not raw:
        raise DataError("outlines is empty: outline at least one object on the seed frame")
    try:
        return [OutlineIn.model_validate(o) for o in raw]
    except ValidationError as exc:
        raise DataError(api.format_validation_error(exc, "invalid outlines")) from None


def _unnamed(exc: RescunetError, tmp: Path, what: str) -> RescunetError:
    """The same error, naming the upload instead of the temporary file it was read from."""
    text = str(exc)
    for p in sorted(tmp.iterdir(), key=lambda q: -len(str(q))):
        text = text.replace(str(p), f"{what} '{p.name}'")
    out = type(exc).__new__(type(exc))
    out.args = (text,)
    return out


def _upload_name(filename: str | None, default: str, suffixes: tuple[str, ...]) -> str:
    """A safe file name for an upload: the client's base name if it has a known suffix."""
    name = Path(filename or "").name
    if not name or name.startswith(".") or not name.lower().endswith(suffixes):
        return default
    return name


def read_upload(movie: bytes, first_index: int, axis: str, filename: str | None = None) -> Any:
    """The uploaded TIFF as a movie whose frames (planes along z) start at ``first_index``."""
    if not movie:
        raise DataError("the uploaded movie is empty; send the frames as a TIFF file")
    with tempfile.TemporaryDirectory(prefix="rescunet-upload-") as tmp:
        path = Path(tmp) / _upload_name(filename, "movie.tif", (".tif", ".tiff"))
        path.write_bytes(movie)
        try:
            mv = api.read_movie(path)
        except RescunetError as exc:
            raise _unnamed(exc, Path(tmp), "the uploaded movie") from None
        mv = mv.load()  # the temporary file goes away
    dim = "t" if axis == "t" else "z"
    return mv.assign_coords({dim: np.arange(first_index - 1, first_index - 1 + mv.sizes[dim])})


def read_roiset(
    data: bytes, movie: Any, identity: str, filename: str | None = None
) -> list[Outline]:
    """An uploaded ImageJ RoiSet.zip (or .roi) as outlines of ``movie``."""
    if not data:
        raise DataError("the uploaded RoiSet is empty")
    suffix = ".roi" if data[:4] == b"Iout" else ".zip"
    with tempfile.TemporaryDirectory(prefix="rescunet-upload-") as tmp:
        path = Path(tmp) / _upload_name(filename, f"RoiSet{suffix}", (suffix,))
        path.write_bytes(data)
        try:
            return api.read_outlines(path, movie, identity=identity)
        except RescunetError as exc:
            raise _unnamed(exc, Path(tmp), "the uploaded RoiSet") from None


def to_outlines(items: list[OutlineIn], movie: Any, params: PropagateParams) -> list[Outline]:
    """JSON outlines as the API's (0-based; on the plane the request propagates)."""
    out = []
    t0 = int(movie.coords["t"].values[0]) if params.axis == "z" else None
    z = (params.z - 1) if params.z is not None else None
    c = (params.channel - 1) if params.channel is not None else None
    for o in items:
        if params.axis == "t":
            frame, plane = o.frame - 1, (z if z is not None else 0)
        else:
            frame, plane = t0, o.frame - 1
        out.append(Outline(o.object_id, frame, np.asarray(o.polygon), z=plane, c=c, name=o.name))
    return out


_CLI_WORDS = [
    (re.compile(r"\(CLI: ([^;)]*)(?:; Python: [^)]*)?\)"), r"(params: \1)"),
    (re.compile(r"--(first|last)-frame"), r"\1_frame"),
    (re.compile(r"--next-frame-only"), "next_frame_only"),
    (re.compile(r"leave out --reverse"), "reverse: false"),
    (re.compile(r"--reverse"), "reverse: true"),
]


def in_http_words(exc: RescunetError) -> RescunetError:
    """The same error, with the command line's option names turned into the request's params."""
    text = str(exc)
    for pattern, words in _CLI_WORDS:
        text = pattern.sub(words, text)
    if text == str(exc):
        return exc
    out = type(exc).__new__(type(exc))
    out.args = (text,)
    return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def outline_json(o: Outline, axis: str) -> dict[str, Any]:
    """One outline as JSON (1-based frame; ``frame`` is the plane number along z)."""
    return {
        "object_id": o.object_id,
        "frame": (o.frame if axis == "t" else o.z) + 1,
        "name": o.name,
        "polygon": np.round(o.polygon, 3).tolist(),
        "confidence": _round(o.confidence),
        "prompt_iou": _round(o.prompt_iou),
    }


def run_json(run: Any, params: PropagateParams, movie: Any) -> dict[str, Any]:
    """A :class:`~rescunet_ij.api.PropagationRun` as the response body."""
    frames = []
    for fr in run.frames:
        frames.append(
            {
                "frame": fr.frame + 1,
                "shift": list(fr.shift),
                "objects": [
                    {
                        "object_id": ob.object_id,
                        "status": ob.status.value,
                        "confidence": _round(ob.confidence),
                        "prompt_iou": _round(ob.prompt_iou),
                        "area_px": None if ob.mask is None else ob.mask.area,
                        "shift": list(ob.shift),
                        "reason": ob.reason,
                    }
                    for ob in fr.objects
                ],
            }
        )
    body: dict[str, Any] = {
        "start_frame": run.start_frame + 1,
        "end_frame": run.end_frame + 1,
        "axis": params.axis,
        "outlines": [outline_json(o, params.axis) for o in run.predicted],
        "frames": frames,
        "doubtful": [
            {"frame": f + 1, "object_id": oid, "why": why}
            for f, oid, why in run.doubtful(params.min_confidence, params.min_prompt_iou)
        ],
        "lost": {str(k): v + 1 for k, v in run.lost.items()},
        "roiset": None,
    }
    if params.return_roiset:
        with tempfile.TemporaryDirectory(prefix="rescunet-out-") as tmp:
            path = api.write_outlines(Path(tmp) / "RoiSet.zip", run.outlines, movie)
            body["roiset"] = base64.b64encode(path.read_bytes()).decode("ascii")
    return body
