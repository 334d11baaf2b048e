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


class ImageDims(BaseModel):
    """The dimensions of the user's ImageJ image, of which the TIFF sent is one plane series."""

    model_config = ConfigDict(extra="forbid")

    channels: int = Field(ge=1, le=10**6)
    slices: int = Field(ge=1, le=10**6)
    frames: int = Field(ge=1, le=10**7)


IMAGE_HELP = (
    "the user's image dimensions: with it the TIFF holds one plane series of that image "
    "(frames first_index.. of channel `channel` and z-plane `z`), the RoiSet's positions are the "
    "image's, and the answer's `roiset` replaces the ROIs sent, positioned for the image"
)


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
    t: int | None = Field(default=None, ge=1, description="time point of a z-stack (axis z)")
    image: ImageDims | None = Field(default=None, description=IMAGE_HELP)
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
    image: ImageDims | None = Field(default=None, description=IMAGE_HELP)
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


class TrainingSetParams(BaseModel):
    """Parameters of ``POST /v1/training-sets``: a training set from frames and their outlines."""

    model_config = ConfigDict(extra="forbid")

    first_index: int = Field(default=1, ge=1)
    channel: int | None = Field(default=None, ge=1)
    z: int | None = Field(default=None, ge=1)
    axis: Literal["t", "z"] = "t"
    t: int | None = Field(default=None, ge=1)
    image: ImageDims | None = Field(default=None, description=IMAGE_HELP)
    identity: Literal["auto", "property", "group", "name", "order"] = "auto"
    subimage_size: int | tuple[int, int] | None = Field(
        default=None, description="window size in pixels (default: chosen from the objects)"
    )
    motion: Literal["auto", "off", "global", "object"] = "auto"


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


class PlaneSeries:
    """The ROIs of a user's image, split into the plane series sent and everything else.

    With ``image`` dimensions, the TIFF holds one plane series of the user's image: frames
    ``first_index..`` of one channel and one z-plane (or, along z, the planes of one time
    point). The RoiSet is read against the image's dimensions (ImageJ positions), the outlines
    of the series are moved onto the TIFF's single plane for the engine, and the results are
    moved back, so that :meth:`result` can give the image's ROIs with their own positions.
    """

    def __init__(self, movie: Any, outlines: list[Outline], params: Any) -> None:
        image = params.image
        self.dims = (image.frames, image.slices, image.channels,
                     int(movie.sizes["y"]), int(movie.sizes["x"]))  # fmt: skip
        self.axis = params.axis
        self.c = None if params.channel is None else params.channel - 1
        if self.c is None and image.channels > 1:
            self.c = 0
        self.z = 0 if params.z is None else params.z - 1
        self.t = 0 if getattr(params, "t", None) is None else params.t - 1
        along = "t" if self.axis == "t" else "z"
        first = int(movie.coords[along].values[0])
        self.span = range(first, first + int(movie.sizes[along]))
        self.inside: list[Outline] = []
        self.aside: list[Outline] = []
        self._original: dict[int, Outline] = {}
        for o in outlines:
            if self._in_series(o):
                moved = Outline(o.object_id, o.frame if self.axis == "t" else 0, o.polygon,
                                z=0 if self.axis == "t" else o.z, c=None, name=o.name,
                                confidence=o.confidence, prompt_iou=o.prompt_iou)  # fmt: skip
                self._original[id(moved)] = o
                self.inside.append(moved)
            else:
                self.aside.append(o)
        self._seed_c = {o.object_id: o.c for o in outlines if self._in_series(o)}

    def _in_series(self, o: Outline) -> bool:
        if o.c is not None and self.c is not None and o.c != self.c:
            return False
        if self.axis == "t":
            return o.z == self.z and o.frame in self.span
        return o.frame == self.t and o.z in self.span

    def back(self, o: Outline) -> Outline:
        """An engine outline in the image's coordinates (inputs: the very outline given)."""
        if id(o) in self._original:
            return self._original[id(o)]
        c = self._seed_c.get(o.object_id, self.c)
        frame, z = (o.frame, self.z) if self.axis == "t" else (self.t, o.z)
        return Outline(o.object_id, frame, o.polygon, z=z, c=c, name=o.name,
                       confidence=o.confidence, prompt_iou=o.prompt_iou)  # fmt: skip

    def result(self, run: Any) -> list[Outline]:
        """Every ROI of the image that was sent: the others, then the series' result."""
        return self.aside + [self.back(o) for o in run.outlines]


def check_plane_series(movie: Any, axis: str) -> None:
    """With ``image``, the TIFF must hold one plane series (one channel, one plane or time)."""
    extra = {"c": "channels", "z" if axis == "t" else "t": "z-planes" if axis == "t" else "frames"}
    for dim, what in extra.items():
        if int(movie.sizes[dim]) != 1:
            raise DataError(
                f"the uploaded movie has {int(movie.sizes[dim])} {what}; with 'image' send one "
                "plane series: the frames of one channel and one z-plane (ImageJ: Duplicator "
                "with one channel and one slice)"
            )


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


def run_json(
    run: Any, params: PropagateParams, movie: Any, series: PlaneSeries | None = None
) -> dict[str, Any]:
    """A :class:`~rescunet_ij.api.PropagationRun` as the response body.

    With a :class:`PlaneSeries` (``image`` given), outlines are the image's and ``roiset`` holds
    every ROI sent, with the recomputed ones replaced, positioned for the image.
    """
    if series is not None:
        run.predicted = [series.back(o) for o in run.predicted]
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
    if params.return_roiset or series is not None:
        outlines, target = run.outlines, movie
        if series is not None:
            outlines, target = series.result(run), series.dims
        with tempfile.TemporaryDirectory(prefix="rescunet-out-") as tmp:
            path = api.write_outlines(Path(tmp) / "RoiSet.zip", outlines, target)
            body["roiset"] = base64.b64encode(path.read_bytes()).decode("ascii")
    return body
