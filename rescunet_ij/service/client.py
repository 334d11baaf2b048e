"""A Python client of ``rescunet-ij serve`` (scripts, notebooks, the benchmark, the tests).

It sends only what the service needs: the frames between the seed frame and the last frame to
predict, of one channel and one plane, as TIFF, and the seed frame's outlines as JSON. Frame
numbers in the answers are the movie's own (0-based here, as everywhere in the Python API)::

    from rescunet_ij import api
    from rescunet_ij.service.client import Client

    client = Client("http://127.0.0.1:8765")            # token=... when the service has one
    model = client.load_model("/data/models/cells.rescunet")
    movie = api.read_movie("movie.tif")
    seeds = api.read_outlines("RoiSet.zip", movie)
    result = client.propagate(movie, seeds, model)      # frames after the seeds' frame
    api.write_outlines("RoiSet_out.zip", result.predicted, movie)
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import api
from ..errors import DataError, MissingExtraError, RescunetError
from ..types import Outline


class ServiceError(RescunetError):
    """The service answered with an error; ``status`` is the HTTP status, the message its detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the rescunet-ij service answered {status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass
class ServiceRun:
    """A propagation's answer, frames 0-based as in :class:`rescunet_ij.api.PropagationRun`.

    Attributes
    ----------
    predicted
        The predicted outlines (on the channel and plane that was sent).
    frames
        Per frame: ``frame`` (1-based, as sent over HTTP), ``shift`` and ``objects`` (status,
        confidence, prompt IoU, shift, reason per object).
    doubtful
        ``(frame, object_id, why)`` for predictions worth a look (0-based frames).
    lost
        Object id -> 0-based frame where it was lost.
    start_frame, end_frame
        The seed frame and the last frame predicted (0-based).
    roiset
        The whole result as RoiSet.zip bytes (positions of the TIFF that was sent) when asked for.
    """

    predicted: list[Outline]
    frames: list[dict[str, Any]] = field(default_factory=list)
    doubtful: list[tuple[int, int, str]] = field(default_factory=list)
    lost: dict[int, int] = field(default_factory=dict)
    start_frame: int = 0
    end_frame: int = 0
    roiset: bytes | None = None


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise MissingExtraError("httpx", "service", "the rescunet-ij service client") from None
    return httpx


class Client:
    """Talk to a running ``rescunet-ij serve``.

    Parameters
    ----------
    url
        The service's address, e.g. ``http://127.0.0.1:8765``.
    token
        The access token, when the service was started with one.
    timeout
        Seconds to wait for an answer (propagating many frames on a CPU takes a while).
    """

    def __init__(self, url: str = "http://127.0.0.1:8765", token: str | None = None,
                 timeout: float = 600.0) -> None:  # fmt: skip
        httpx = _httpx()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url + "/v1", headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        httpx = _httpx()
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(
                0, f"no answer from {self.url} ({exc}); is `rescunet-ij serve` running there?"
            ) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ServiceError(response.status_code, str(detail))
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    # ------------------------------------------------------------------ service and models
    def health(self) -> dict[str, Any]:
        """Version, device, GPU, loaded models, queue."""
        return self._call("GET", "/health")

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Poll :meth:`health` until the service answers (it may still be starting)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.health()
            except ServiceError as exc:
                if exc.status != 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def load_model(self, path: str | Path) -> str:
        """Load a model file that is on the *server's* disk; returns its id."""
        return self._call("POST", "/models/load", json={"path": str(path)})["id"]

    def upload_model(self, path: str | Path) -> str:
        """Upload a model file from this machine; returns its id."""
        path = Path(path)
        with path.open("rb") as fh:
            return self._call("POST", "/models/upload", files={"file": (path.name, fh)})["id"]

    def model_info(self, model_id: str) -> dict[str, Any]:
        """What a model holds."""
        return self._call("GET", f"/models/{model_id}")

    def download_model(self, model_id: str, path: str | Path, *, overwrite: bool = False) -> Path:
        """Save a model of the service (e.g. trained there) as a local file, atomically."""
        data = self._call("GET", f"/models/{model_id}/file")
        return api.write_bytes(path, data, overwrite=overwrite)

    # ------------------------------------------------------------------ propagation
    def propagate(
        self,
        movie: Any,
        outlines: Iterable[Outline],
        model: str,
        *,
        start_frame: int | None = None,
        end_frame: int | None = None,
        next_only: bool = False,
        reverse: bool = False,
        channel: int | None = None,
        z: int | None = None,
        return_roiset: bool = False,
        **params: Any,
    ) -> ServiceRun:
        """Propagate like :func:`rescunet_ij.api.propagate` (0-based frames), on the service.

        Only the frames from the seed frame to ``end_frame``, of one channel and one z-plane, are
        sent. ``params`` are further :class:`~rescunet_ij.service.wire.PropagateParams`
        (``motion``, ``keep_going``, ``object_ids``, ``batch_size`` ...).
        """
        mv = api.as_movie(movie) if not isinstance(movie, (str, Path)) else api.read_movie(movie)
        outlines = list(outlines)
        c = channel if channel is not None else (0 if mv.sizes["c"] > 1 else None)
        zz = z if z is not None else 0
        plane = [o for o in outlines if o.z == zz and (c is None or o.c in (None, c))]
        if not plane:
            raise DataError(f"no outlines on z-plane {zz + 1}" + ("" if c is None else
                            f", channel {c + 1}"))  # fmt: skip
        t0 = int(mv.coords["t"].values[0]) if "t" in mv.coords else 0
        start, end = api.frame_range(
            range(t0, t0 + mv.sizes["t"]),
            {o.frame for o in plane},
            start_frame,
            end_frame,
            next_only=next_only,
            reverse=reverse,
        )
        lo, hi = sorted((start, end))
        cut = mv.isel(t=slice(lo - t0, hi - t0 + 1), z=[zz], c=[c if c is not None else 0])
        seeds = [
            {
                "object_id": o.object_id,
                "frame": o.frame + 1,
                "polygon": np.round(o.polygon, 3).tolist(),
                "name": o.name,
            }
            for o in plane
            if o.frame == start
        ]
        body = {
            "model": model,
            "first_index": lo + 1,
            "first_frame": start + 1,
            "last_frame": end + 1,
            "next_frame_only": False,
            "reverse": reverse,
            "return_roiset": return_roiset,
            **params,
        }
        answer = self._call(
            "POST",
            "/propagate",
            files={
                "movie": ("frames.tif", _tiff_bytes(cut), "image/tiff"),
                "outlines": ("outlines.json", json.dumps(seeds).encode(), "application/json"),
            },
            data={"params": json.dumps(body)},
        )
        return _run(answer, zz, channel)

    # ------------------------------------------------------------------ training
    def train(
        self,
        training_set: str | Path,
        name: str,
        *,
        on_server: bool = False,
        overwrite: bool = False,
        **params: Any,
    ) -> dict[str, Any]:
        """Start a training job; returns the job (``id``, ``status``...). See :meth:`wait`.

        ``training_set`` is a training-set zip on this machine (uploaded), or with ``on_server``
        a folder or zip on the server's disk. ``params`` are the training parameters
        (``epochs``, ``input_size``, ...).
        """
        data = {"name": name, "params": json.dumps(params), "overwrite": str(overwrite).lower()}
        if on_server:
            return self._call(
                "POST", "/jobs/train", data={**data, "training_path": str(training_set)}
            )
        path = Path(training_set)
        if path.is_dir():
            raise DataError(
                f"{path} is a folder; pack it with api.export_training_zip (or pass on_server=True "
                "if the folder is on the server)"
            )
        with path.open("rb") as fh:
            return self._call(
                "POST", "/jobs/train", data=data, files={"training_set": (path.name, fh)}
            )

    def job(self, job_id: str) -> dict[str, Any]:
        """A job's state and progress."""
        return self._call("GET", f"/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job (it saves no model)."""
        return self._call("POST", f"/jobs/{job_id}/cancel")

    def wait(
        self,
        job_id: str,
        *,
        poll: float = 1.0,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll a job until it has succeeded, failed or been cancelled; returns its final state."""
        while True:
            state = self.job(job_id)
            if on_progress is not None:
                on_progress(state)
            if state["status"] in ("succeeded", "failed", "cancelled"):
                return state
            time.sleep(poll)

    def notebook(self, **settings: Any) -> dict[str, Any]:
        """The Colab training notebook (nbformat JSON); ``params`` = training parameters."""
        return self._call("POST", "/notebook", json=settings)


def _tiff_bytes(movie: Any) -> bytes:
    with tempfile.TemporaryDirectory(prefix="rescunet-client-") as tmp:
        return api.write_movie(Path(tmp) / "frames.tif", movie).read_bytes()


def _run(answer: dict[str, Any], z: int, channel: int | None) -> ServiceRun:
    import base64

    predicted = [
        Outline(
            o["object_id"],
            o["frame"] - 1,
            np.asarray(o["polygon"], dtype=float),
            z=z,
            c=channel,
            name=o.get("name"),
            confidence=o.get("confidence"),
            prompt_iou=o.get("prompt_iou"),
        )
        for o in answer["outlines"]
    ]
    return ServiceRun(
        predicted=predicted,
        frames=answer["frames"],
        doubtful=[(d["frame"] - 1, d["object_id"], d["why"]) for d in answer["doubtful"]],
        lost={int(k): v - 1 for k, v in answer["lost"].items()},
        start_frame=answer["start_frame"] - 1,
        end_frame=answer["end_frame"] - 1,
        roiset=base64.b64decode(answer["roiset"]) if answer.get("roiset") else None,
    )
