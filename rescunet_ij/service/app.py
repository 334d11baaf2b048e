"""The HTTP API (FastAPI): a thin shell over :mod:`rescunet_ij.api`.

Every route checks its input, then runs the work on the one device thread
(:class:`~rescunet_ij.service.worker.DeviceWorker`). Errors are JSON ``{"detail": message}``:
4xx name the problem in the request and what to send instead; 5xx are for real faults (logged
with their traceback) or a busy device (503); the service stays up after each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from .. import __version__, api
from ..errors import (
    ConfigError,
    DataError,
    MissingExtraError,
    ModelFileError,
    OutputExistsError,
    RescunetError,
    StateError,
)
from .jobs import JobStore, UnknownJob
from .models import ModelRegistry, UnknownModel
from .settings import ServiceSettings
from .wire import (
    ApplyParams,
    PlaneSeries,
    PropagateParams,
    TrainingSetParams,
    check_plane_series,
    in_http_words,
    parse_outlines,
    parse_params,
    read_roiset,
    read_upload,
    run_json,
    to_outlines,
)
from .worker import DeviceBusy, DeviceWorker

log = logging.getLogger("rescunet_ij.service")

API = "/v1"
STOP_WAIT_S = 30.0
"""How long a stopping service waits for a running training job to end after its batch."""


class BodyTooLarge(Exception):
    """The request body is larger than the service accepts."""


class LimitBody:
    """ASGI middleware: refuse bodies over ``limit`` bytes (Content-Length, or as they stream)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _too_large(self) -> JSONResponse:
        mb = self.limit / 1024 / 1024
        return JSONResponse(
            {
                "detail": f"the request body is larger than this service accepts ({mb:g} MB); "
                "send fewer frames (only those to segment, one channel and plane), or start "
                "the service with a larger --max-body-mb"
            },
            status_code=413,
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Pass the request on, or answer 413."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._too_large()(scope, receive, send)
        seen = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._too_large()(scope, receive, send)


class RequireToken:
    """ASGI middleware: every request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Pass the request on, or answer 401 (no token) or 403 (a wrong one)."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        if not header:
            response = JSONResponse(
                {
                    "detail": "this service needs an access token: send the header "
                    "'Authorization: Bearer <token>'"
                },
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        elif scheme.lower() != b"bearer" or not secrets.compare_digest(given.strip(), self.token):
            response = JSONResponse(
                {"detail": "wrong access token; use the token the service was started with"},
                status_code=403,
            )
        else:
            return await self.app(scope, receive, send)
        await response(scope, receive, send)


# ---------------------------------------------------------------------- error mapping

STATUS = [
    (UnknownModel, 404),
    (UnknownJob, 404),
    (OutputExistsError, 409),
    (StateError, 409),
    (MissingExtraError, 501),
    (ModelFileError, 422),
    (ConfigError, 422),
    (DataError, 422),
]


def status_of(exc: RescunetError) -> int:
    """The HTTP status for one of the package's errors."""
    for cls, code in STATUS:
        if isinstance(exc, cls):
            return code
    return 400


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        parts.append(f"{where}: {e.get('msg')}")
    return "invalid request: " + "; ".join(parts)


# ---------------------------------------------------------------------- schemas


class LoadModel(BaseModel):
    """Body of ``POST /v1/models/load``."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="absolute path of a .rescunet file on the server")


class NotebookParams(BaseModel):
    """Body of ``POST /v1/notebook``: the Colab training notebook's settings."""

    model_config = ConfigDict(extra="forbid")
    training_zip: str | None = "testtrain.zip"
    drive_path: str | None = None
    test_movie: str | None = None
    test_rois: str | None = None
    package_spec: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="training parameters")


# ---------------------------------------------------------------------- the app


def create_app(settings: ServiceSettings) -> FastAPI:
    """The service's ASGI application for ``settings`` (run it with uvicorn)."""
    worker = DeviceWorker(settings.max_queue)
    device = api.device_info(settings.device)  # a device this machine lacks fails here, at start
    registry = ModelRegistry(settings.uploads_dir, device["device"], settings.max_models)
    jobs = JobStore(settings.jobs_dir, settings.models_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        failed = jobs.recover()
        if failed:
            log.warning("marked %d job(s) left running by a stopped server as failed", len(failed))
        yield
        jobs.stopping = True  # a job still running stops after its batch and saves nothing
        running = [jobs.get(job_id) for job_id in jobs.active()]
        for job in running:
            job.cancel_requested.set()
        worker.shutdown()
        for job in running:  # let it record how it ended before the process exits
            if job.future is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(job.future), STOP_WAIT_S)

    app = FastAPI(
        title="rescunet-ij service",
        version=__version__,
        summary="ReSCU-Net propagation and training for Fiji/ImageJ clients",
        description=(
            "One warm model, one device, any client. Frames are numbered from 1, as in ImageJ. "
            "Movies are sent as TIFF, outlines as JSON (or an ImageJ RoiSet.zip). When the "
            "service has an access token, every request carries 'Authorization: Bearer <token>'."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.worker = worker
    app.state.registry = registry
    app.state.jobs = jobs
    svc = _Service(settings, worker, device, registry, jobs, settings.request_timeout_s)
    _add_error_handlers(app)
    _add_service_routes(app, svc)
    _add_propagation_routes(app, svc)
    _add_training_set_route(app)
    _add_job_routes(app, svc)
    app.add_middleware(LimitBody, limit=settings.max_body_bytes)
    if settings.token is not None:
        app.add_middleware(RequireToken, token=settings.token.get_secret_value())
    return app


@dataclass
class _Service:
    """What the routes share: the settings, the device thread, the models and the jobs."""

    settings: ServiceSettings
    worker: DeviceWorker
    device: dict[str, Any]
    registry: ModelRegistry
    jobs: JobStore
    timeout: float


def _add_error_handlers(app: FastAPI) -> None:
    """JSON errors: the package's own as 4xx, a busy device as 503, anything else as 500."""

    @app.exception_handler(RescunetError)
    async def _package_error(request: Request, exc: RescunetError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    @app.exception_handler(DeviceBusy)
    async def _busy(request: Request, exc: DeviceBusy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def _fault(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error in %s %s", request.method, request.url.path)
        return JSONResponse(
            {
                "detail": f"internal error ({type(exc).__name__}); this is a bug in rescunet-ij: "
                "the service's log has the details, please report it"
            },
            status_code=500,
        )


def _add_service_routes(app: FastAPI, svc: _Service) -> None:
    """Health and models."""
    settings, worker, device = svc.settings, svc.worker, svc.device
    registry, jobs, timeout = svc.registry, svc.jobs, svc.timeout

    # ------------------------------------------------------------------ health
    @app.get(f"{API}/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """Version, device (GPU name and memory), loaded models, queue and jobs."""
        info = await run_in_threadpool(api.device_info, device["device"])
        return {
            "status": "ok",
            "version": __version__,
            "device": info["device"],
            "gpu": info["gpu"],
            "torch": info["torch"],
            "models": [m for m in registry.all() if m["loaded"]],
            "busy": worker.running,
            "waiting": worker.waiting,
            "jobs_active": jobs.active(),
            "token_required": settings.token is not None,
        }

    # ------------------------------------------------------------------ models
    @app.get(f"{API}/models", tags=["models"])
    async def list_models() -> list[dict[str, Any]]:
        """Every model the service knows (loaded or not)."""
        return registry.all()

    @app.post(f"{API}/models/load", tags=["models"])
    async def load_model(body: LoadModel) -> dict[str, Any]:
        """Load a model file on the server's disk by its path; returns its id and info."""

        def load() -> dict[str, Any]:
            entry = registry.add_path(body.path)
            return {**registry.describe(entry), "info": api.model_info(registry.get(entry.id))}

        return await worker.run("load model", load, timeout)

    @app.post(f"{API}/models/upload", tags=["models"])
    async def upload_model(
        file: Annotated[UploadFile, File(description="a .rescunet file")],
    ) -> dict:
        """Upload a model file; it is checked (never unpickled), kept and loaded."""
        data = await file.read()

        def load() -> dict[str, Any]:
            entry = registry.add_upload(data, file.filename)
            return {**registry.describe(entry), "info": api.model_info(registry.get(entry.id))}

        return await worker.run("load model", load, timeout)

    @app.get(f"{API}/models/{{model_id}}", tags=["models"])
    async def model_info(model_id: str) -> dict[str, Any]:
        """What a model holds (architecture, window, training settings, best epoch)."""
        entry = registry.entry(model_id)
        model = await worker.run("load model", lambda: registry.get(model_id), timeout)
        return {**registry.describe(entry), "info": api.model_info(model)}

    @app.delete(f"{API}/models/{{model_id}}", tags=["models"])
    async def unload_model(model_id: str) -> dict[str, Any]:
        """Unload a model from memory (its id stays valid: it is loaded again when used)."""
        was = registry.unload(model_id)
        return {"id": model_id, "unloaded": was}


def _add_propagation_routes(app: FastAPI, svc: _Service) -> None:
    """Propagate and apply."""
    worker, device, registry, timeout = svc.worker, svc.device, svc.registry, svc.timeout

    # ------------------------------------------------------------------ propagation
    async def _propagate(
        params: PropagateParams | ApplyParams,
        movie: UploadFile,
        outlines: UploadFile | str | None,
        rois: UploadFile | None,
    ) -> dict[str, Any]:
        _check_one_of(outlines, rois, "seed outlines")
        registry.entry(params.model)  # an unknown model is a 404 before any upload is read
        raw_movie = await movie.read()
        raw_rois = await _outline_bytes(outlines, rois)
        axis = params.axis if isinstance(params, PropagateParams) else "t"

        def prepare() -> tuple[Any, Any, PropagateParams, PlaneSeries | None]:
            mv = read_upload(raw_movie, params.first_index, axis, movie.filename)
            p = params
            if isinstance(p, ApplyParams):
                p = p.as_propagate(int(mv.sizes["t"]))
            given = _given_outlines(raw_rois, mv, p, outlines, rois)
            if p.image is None:
                return mv, given, p, None
            series = PlaneSeries(mv, given, p)
            return mv, series.inside, p, series

        # parsing stays off the device thread
        mv, given, p, series = await run_in_threadpool(prepare)
        config = api.propagate_config(
            device=device["device"],
            batch_size=p.batch_size,
            erosion_width=p.erosion_width,
            motion=p.motion,
            keep_going=p.keep_going,
        )

        def work() -> Any:
            try:
                return _run()
            except RescunetError as exc:
                raise in_http_words(exc) from None

        def _run() -> Any:
            return api.propagate(
                mv,
                given,
                registry.get(p.model),
                start_frame=None if p.first_frame is None else p.first_frame - 1,
                end_frame=None if p.last_frame is None else p.last_frame - 1,
                next_only=p.next_frame_only,
                reverse=p.reverse,
                channel=None if p.channel is None or series else p.channel - 1,
                z=None if p.z is None or series else p.z - 1,
                axis=p.axis,
                config=config,
                object_ids=p.object_ids,
            )

        run = await worker.run("propagate", work, timeout)
        body = await run_in_threadpool(run_json, run, p, mv, series)
        return {"model": p.model, **body}

    @app.post(f"{API}/propagate", tags=["propagation"])
    async def propagate(
        movie: Annotated[
            UploadFile, File(description="TIFF: the frames to segment (one channel, plane)")
        ],
        params: Annotated[str, Form(description="JSON: PropagateParams")],
        outlines: Annotated[
            UploadFile | str | None, File(description="JSON list of seed outlines")
        ] = None,
        rois: Annotated[
            UploadFile | None, File(description="ImageJ RoiSet.zip with the seeds")
        ] = None,
    ) -> dict[str, Any]:
        """Propagate outlines through the frames sent; returns the predicted outlines and stats."""
        return await _propagate(parse_params(params, PropagateParams), movie, outlines, rois)

    @app.post(f"{API}/apply", tags=["propagation"])
    async def apply(
        movie: Annotated[
            UploadFile, File(description="TIFF: the frame to predict and the one before")
        ],
        params: Annotated[str, Form(description="JSON: ApplyParams")],
        outlines: Annotated[
            UploadFile | str | None, File(description="JSON: the previous frame's outlines")
        ] = None,
        rois: Annotated[
            UploadFile | None, File(description="RoiSet.zip: the previous frame's ROIs")
        ] = None,
    ) -> dict[str, Any]:
        """Predict one frame from the outlines on the frame before (the interactive path)."""
        return await _propagate(parse_params(params, ApplyParams), movie, outlines, rois)


def _add_training_set_route(app: FastAPI) -> None:
    """A training set from outlined frames."""

    # ------------------------------------------------------------------ training sets
    @app.post(f"{API}/training-sets", tags=["training"])
    async def training_set(
        movie: Annotated[
            UploadFile, File(description="TIFF: the frames whose objects are outlined")
        ],
        params: Annotated[str, Form(description="JSON: TrainingSetParams")] = "{}",
        outlines: Annotated[
            UploadFile | str | None, File(description="JSON list of outlines")
        ] = None,
        rois: Annotated[UploadFile | None, File(description="ImageJ RoiSet.zip")] = None,
    ) -> Any:
        """A training set (the zip ``train`` and the Colab notebook read) from outlined frames.

        The answer is the zip itself; its headers ``X-Rescunet-Samples`` (how many samples) and
        ``X-Rescunet-Window`` (the window size chosen) say what it holds.
        """
        from fastapi.responses import Response

        p = parse_params(params, TrainingSetParams)
        _check_one_of(outlines, rois, "outlines")
        raw_movie = await movie.read()
        raw_rois = await _outline_bytes(outlines, rois)

        def build() -> tuple[bytes, int, list[int]]:
            mv = read_upload(raw_movie, p.first_index, p.axis, movie.filename)
            given = _given_outlines(raw_rois, mv, p, outlines, rois)
            channel = None if p.channel is None else p.channel - 1
            z = None if p.z is None else p.z - 1
            if p.image is not None:
                given, channel, z = PlaneSeries(mv, given, p).inside, None, None
            with tempfile.TemporaryDirectory(prefix="rescunet-tset-") as tmp:
                folder = api.make_training_set(
                    mv,
                    given,
                    Path(tmp) / "training_set",
                    subimage_size=p.subimage_size,
                    motion=p.motion,
                    channel=channel,
                    z=z,
                    axis=p.axis,
                    zip_path=Path(tmp) / "testtrain.zip",
                )
                info = api.training_set_info(folder)
                data = (Path(tmp) / "testtrain.zip").read_bytes()
            return data, int(info["samples"]), list(info.get("window_size") or [])

        data, samples, window = await run_in_threadpool(build)
        return Response(
            data,
            media_type="application/zip",
            headers={
                "Content-Disposition": 'attachment; filename="testtrain.zip"',
                "X-Rescunet-Samples": str(samples),
                "X-Rescunet-Window": "x".join(str(v) for v in window),
            },
        )


def _add_job_routes(app: FastAPI, svc: _Service) -> None:
    """Training jobs and the notebook."""
    worker, device, registry, jobs = svc.worker, svc.device, svc.registry, svc.jobs

    # ------------------------------------------------------------------ training jobs
    @app.post(f"{API}/jobs/train", tags=["training"], status_code=202)
    async def train(
        name: Annotated[
            str, Form(description="name of the model file to save (in the models folder)")
        ],
        params: Annotated[
            str, Form(description="JSON: training parameters (epochs, input_size...)")
        ] = "{}",
        training_set: Annotated[UploadFile | None, File(description="training-set zip")] = None,
        training_path: Annotated[
            str | None, Form(description="a training set on the server")
        ] = None,
        overwrite: Annotated[bool, Form()] = False,
    ) -> dict[str, Any]:
        """Start a training job; follow it with GET /v1/jobs/{id}, stop it with .../cancel."""
        if (training_set is None) == (training_path is None):
            raise DataError(
                "send the training set either as 'training_set' (a zip upload) or name a folder "
                "or zip on the server as 'training_path', not both and not neither"
            )
        values = parse_params(params, _TrainParams).values
        if "device" in values:
            raise ConfigError(
                f"'device' is the service's ({device['device']}); leave it out of the parameters"
            )
        api.train_config(**values)  # invalid parameters are a 422 now, not a failed job later
        upload = await training_set.read() if training_set is not None else None
        job = await run_in_threadpool(
            jobs.create,
            name=name,
            params=values,
            training_path=Path(training_path) if training_path else None,
            upload=upload,
            overwrite=overwrite,
        )
        try:
            job.future = worker.submit_job(
                job.id, lambda: jobs.run(job, device["device"], registry.add_trained)
            )
        except DeviceBusy as exc:
            job.update(status="failed", error=str(exc))
            raise
        return job.public()

    @app.get(f"{API}/jobs", tags=["training"])
    async def list_jobs() -> list[dict[str, Any]]:
        """Every job of this service, newest first."""
        return jobs.all()

    @app.get(f"{API}/jobs/{{job_id}}", tags=["training"])
    async def job_state(job_id: str) -> dict[str, Any]:
        """A job's status, progress (epoch, losses, validation IoU, ETA), history and result."""
        return jobs.get(job_id).public()

    @app.post(f"{API}/jobs/{{job_id}}/cancel", tags=["training"])
    async def cancel_job(job_id: str) -> dict[str, Any]:
        """Cancel a job: a queued one never starts; a running one stops after its current batch.

        A cancelled job saves no model.
        """
        return jobs.cancel(job_id, worker.cancel_queued).public()

    @app.get(f"{API}/models/{{model_id}}/file", tags=["models"])
    async def model_file(model_id: str) -> Any:
        """Download a model file (e.g. one trained on the server's GPU)."""
        from fastapi.responses import FileResponse

        entry = registry.entry(model_id)
        if not entry.path.is_file():
            raise UnknownModel(f"the file of model '{model_id}' is gone from the server")
        return FileResponse(entry.path, filename=f"{entry.name}.rescunet")

    # ------------------------------------------------------------------ notebook
    @app.post(f"{API}/notebook", tags=["training"])
    async def notebook(body: NotebookParams) -> dict[str, Any]:
        """The Colab training notebook (nbformat JSON) for these settings."""
        from ..notebook import build_training_notebook

        config = api.train_config(**body.params)
        nb = await run_in_threadpool(
            build_training_notebook,
            config=config,
            training_zip=None if body.drive_path else (body.training_zip or "testtrain.zip"),
            drive_path=body.drive_path,
            test_movie=body.test_movie,
            test_rois=body.test_rois,
            package_spec=body.package_spec,
        )
        return dict(nb)


def _check_one_of(outlines: Any, rois: Any, what: str) -> None:
    """Exactly one of the two ways to send outlines was used."""
    if (outlines is None) == (rois is None):
        raise DataError(
            f"send the {what} either as 'outlines' (JSON) or as 'rois' (an ImageJ "
            "RoiSet.zip), not both and not neither"
        )


async def _outline_bytes(outlines: Any, rois: Any) -> bytes:
    """The bytes of the outlines part (a file part, or a text field) or of the RoiSet."""
    if isinstance(outlines, str):  # sent as a text field rather than a file part
        return outlines.encode()
    return await (outlines or rois).read()


def _given_outlines(raw: bytes, movie: Any, p: Any, outlines: Any, rois: Any) -> list[Any]:
    """The outlines sent (JSON or a RoiSet read against the user's image dimensions)."""
    if p.image is not None:
        check_plane_series(movie, p.axis)
    if outlines is not None:
        return to_outlines(parse_outlines(raw), movie, p)
    dims = movie if p.image is None else _image_dims(p.image, movie)
    return read_roiset(raw, dims, p.identity, rois.filename)


def _image_dims(image: Any, movie: Any) -> tuple[int, int, int, int, int]:
    """``(t, z, c, y, x)`` of the user's image (the TIFF gives the plane size)."""
    return (image.frames, image.slices, image.channels,
            int(movie.sizes["y"]), int(movie.sizes["x"]))  # fmt: skip


class _TrainParams(BaseModel):
    """Training parameters as flat JSON (checked by :func:`rescunet_ij.api.train_config`)."""

    model_config = ConfigDict(extra="allow")

    @property
    def values(self) -> dict[str, Any]:
        """The parameters given."""
        return dict(self.model_extra or {})
