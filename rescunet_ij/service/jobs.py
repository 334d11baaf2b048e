"""Training jobs: queued on the device thread, followed through a JSON file, cancellable.

Each job has a folder ``models_dir/.jobs/<id>/`` with ``job.json`` (its state, rewritten
atomically as it changes), the uploaded training set if any, and the model while it trains
(checkpoints included). Only a finished job's model is moved into ``models_dir`` (one atomic
rename, never over an existing file unless asked), so a cancelled job, a failed one, or one whose
server was killed leaves no model there. A server that starts finds jobs a previous server left
``queued`` or ``running`` and marks them ``failed`` (with why), removing their partial files.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import api
from ..errors import ConfigError, DataError, OutputExistsError, RescunetError, StateError

log = logging.getLogger("rescunet_ij.service")

ACTIVE = ("queued", "running")
FINAL = ("succeeded", "failed", "cancelled")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class UnknownJob(DataError):
    """A job id the service does not know (HTTP 404)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def model_file_name(name: str) -> str:
    """``name`` checked as a model file name (``.rescunet`` added); no folders, no dot-files."""
    stem = name[: -len(".rescunet")] if name.endswith(".rescunet") else name
    if not MODEL_NAME.match(stem):
        raise ConfigError(
            f"model name '{name}' is not allowed; use letters, digits, '.', '_' and '-' (at most "
            "100, starting with a letter or digit), e.g. 'cells-v2'"
        )
    return f"{stem}.rescunet"


class Job:
    """One training job and its state (what ``job.json`` holds)."""

    def __init__(self, folder: Path, state: dict[str, Any]) -> None:
        self.folder = folder
        self.state = state
        self.cancel_requested = threading.Event()
        self.future: Future | None = None
        self._lock = threading.Lock()
        self._last_write = 0.0

    @property
    def id(self) -> str:
        """The job's id."""
        return self.state["id"]

    @property
    def status(self) -> str:
        """``queued``, ``running``, ``succeeded``, ``failed`` or ``cancelled``."""
        return self.state["status"]

    def update(self, *, force: bool = True, **changes: Any) -> None:
        """Change the state and write ``job.json`` (at most twice a second unless ``force``)."""
        with self._lock:
            self.state.update(changes)
            now = time.monotonic()
            if not force and now - self._last_write < 0.5:
                return
            self._last_write = now
            text = json.dumps(self.state, indent=1, default=str)
        api.write_text(self.folder / "job.json", text, overwrite=True)

    def public(self) -> dict[str, Any]:
        """The state a client sees."""
        with self._lock:
            return json.loads(json.dumps(self.state, default=str))


class JobStore:
    """The training jobs of one service.

    Parameters
    ----------
    root
        The jobs folder (``models_dir/.jobs``).
    models_dir
        Where finished models go.
    """

    def __init__(self, root: Path, models_dir: Path) -> None:
        self.root = root
        self.models_dir = models_dir
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.stopping = False  # set when the service shuts down: active jobs end as failed

    # ------------------------------------------------------------------ startup
    def recover(self) -> list[str]:
        """Load earlier jobs; those left active by a server that stopped become ``failed``."""
        failed = []
        if not self.root.is_dir():
            return failed
        for folder in sorted(self.root.iterdir()):
            path = folder / "job.json"
            if not path.is_file():
                continue
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("skipping unreadable job file %s: %s", path, exc)
                continue
            job = Job(folder, state)
            if job.status in ACTIVE:
                self._discard_partial(job)
                job.update(
                    status="failed",
                    finished=_now(),
                    error=f"the service stopped (killed or restarted) while this job was "
                    f"{job.status}; no model was saved. Submit the job again",
                )
                failed.append(job.id)
            self._jobs[job.id] = job
        return failed

    # ------------------------------------------------------------------ jobs
    def create(
        self,
        *,
        name: str,
        params: dict[str, Any],
        training_path: Path | None,
        upload: bytes | None,
        overwrite: bool,
    ) -> Job:
        """A new ``queued`` job (its folder written); the caller queues :meth:`run`."""
        file_name = model_file_name(name)
        target = self.models_dir / file_name
        if target.exists() and not overwrite:
            raise OutputExistsError(
                f"a model named '{file_name}' already exists on the server ({target}); choose "
                "another name or pass overwrite=true"
            )
        if training_path is not None:
            if not training_path.is_absolute():
                raise DataError(
                    f"training_path '{training_path}' is relative; give the absolute path of a "
                    "training-set folder or zip on the server"
                )
            if not training_path.exists():
                raise DataError(f"no training set at {training_path} on the server")
        job_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        folder = self.root / job_id
        folder.mkdir(parents=True)
        data = training_path
        if upload is not None:
            data = api.write_bytes(folder / "training_set.zip", upload)
        try:
            info = api.training_set_info(data)
        except RescunetError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise DataError(
                str(exc).replace(str(folder / "training_set.zip"), "the uploaded training set")
            ) from None
        state = {
            "id": job_id,
            "kind": "train",
            "status": "queued",
            "created": _now(),
            "started": None,
            "finished": None,
            "model_name": file_name,
            "overwrite": bool(overwrite),
            "training_set": str(data),
            "samples": info.get("samples"),
            "params": params,
            "progress": {},
            "history": [],
            "result": None,
            "error": None,
        }
        job = Job(folder, state)
        job.update()
        with self._lock:
            self._jobs[job_id] = job
        return job

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; :class:`UnknownJob` if there is none."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJob(f"unknown job '{job_id}'; GET /v1/jobs lists the jobs")
        return job

    def all(self) -> list[dict[str, Any]]:
        """Every job, newest first."""
        with self._lock:
            jobs = list(self._jobs.values())
        return sorted((j.public() for j in jobs), key=lambda s: s["created"], reverse=True)

    def active(self) -> list[str]:
        """Ids of the jobs queued or running."""
        with self._lock:
            return [j.id for j in self._jobs.values() if j.status in ACTIVE]

    # ------------------------------------------------------------------ running
    def run(self, job: Job, device: str, on_model: Callable[[Path], Any]) -> None:
        """Train (on the device thread); ``on_model(path)`` registers a finished model."""
        if job.cancel_requested.is_set():
            job.update(status="cancelled", finished=_now())
            self._discard_partial(job)
            return
        started = time.monotonic()
        job.update(status="running", started=_now())
        work = job.folder / "model.rescunet"

        def on_epoch_end(record: dict[str, Any]) -> None:
            epoch, epochs = int(record["epoch"]), int(record["epochs"])
            elapsed = time.monotonic() - started
            history = job.state["history"] + [
                {k: record.get(k) for k in ("epoch", "train_loss", "val_loss", "val_iou", "lr")}
            ]
            job.update(
                history=history,
                progress={
                    **job.state["progress"],
                    "epoch": epoch,
                    "epochs": epochs,
                    "train_loss": record.get("train_loss"),
                    "val_loss": record.get("val_loss"),
                    "val_iou": record.get("val_iou"),
                    "best_epoch": record.get("best_epoch"),
                    "elapsed_s": round(elapsed, 1),
                    "eta_s": round(elapsed / epoch * (epochs - epoch), 1),
                },
            )

        def on_batch_end(batch: int, batches: int) -> None:
            job.update(
                force=False, progress={**job.state["progress"], "batch": batch, "batches": batches}
            )

        callbacks = api.TrainCallbacks(
            on_epoch_end=on_epoch_end,
            on_batch_end=on_batch_end,
            should_stop=job.cancel_requested.is_set,
        )
        try:
            result = api.train(
                job.state["training_set"],
                work,
                callbacks=callbacks,
                overwrite=True,
                **{**job.state["params"], "device": device},
            )
        except RescunetError as exc:
            self._discard_partial(job)
            if job.cancel_requested.is_set():  # cancelled before its first epoch ended
                self._end_cancelled(job)
            else:
                job.update(status="failed", finished=_now(), error=str(exc))
            return
        except Exception as exc:  # a bug: the job fails, the service stays up
            log.exception("training job %s failed", job.id)
            self._discard_partial(job)
            job.update(
                status="failed",
                finished=_now(),
                error=f"internal error ({type(exc).__name__}: {exc}); see the service's log",
            )
            return
        if result.cancelled or job.cancel_requested.is_set():
            self._discard_partial(job)
            self._end_cancelled(job)
            return
        try:
            final = self._publish(job, work)
        except RescunetError as exc:
            self._discard_partial(job)
            job.update(status="failed", finished=_now(), error=str(exc))
            return
        entry = on_model(final)
        (job.folder / "training_set.zip").unlink(missing_ok=True)  # an upload is not needed now
        job.update(
            status="succeeded",
            finished=_now(),
            result={
                "model_id": entry.id,
                "model_path": str(final),
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "stopped_early": result.stopped_early,
                "monitor": result.monitor,
                "batch_size": result.batch_size,
            },
        )

    def _end_cancelled(self, job: Job) -> None:
        """Record a job stopped by a cancel, or by the service stopping (then it failed)."""
        if self.stopping:
            job.update(
                status="failed",
                finished=_now(),
                error="the service was stopped while this job ran; no model was saved. "
                "Submit the job again",
            )
        else:
            job.update(status="cancelled", finished=_now())

    def _publish(self, job: Job, work: Path) -> Path:
        """Move the finished model into ``models_dir`` in one step."""
        target = self.models_dir / job.state["model_name"]
        self.models_dir.mkdir(parents=True, exist_ok=True)
        if job.state.get("overwrite"):
            os.replace(work, target)
            return target
        try:
            os.link(work, target)  # fails if the name was taken meanwhile: never replaces a model
        except FileExistsError:
            raise OutputExistsError(
                f"a model named '{target.name}' appeared on the server while the job ran; the "
                "trained model was not kept. Submit again with another name"
            ) from None
        work.unlink()
        return target

    def cancel(self, job_id: str, cancel_queued: Callable[[Future], bool]) -> Job:
        """Ask a job to stop: a queued one never starts, a running one stops after its batch."""
        job = self.get(job_id)
        if job.status in FINAL:
            raise StateError(f"job {job_id} has already {job.status}; nothing to cancel")
        job.cancel_requested.set()
        if job.status == "queued" and job.future is not None and cancel_queued(job.future):
            self._discard_partial(job)
            job.update(status="cancelled", finished=_now())
        return job

    def _discard_partial(self, job: Job) -> None:
        """Remove what a job that did not finish left: its model and checkpoints, its upload."""
        for p in job.folder.iterdir() if job.folder.is_dir() else []:
            if p.name != "job.json":
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
