"""One thread owns the device: every model load, propagation and training job runs on it, in order.

A :class:`concurrent.futures.ThreadPoolExecutor` with one worker is the queue (no home-made
scheduler). Requests wait for their turn up to the request timeout; when the queue is full, or a
training job holds the device, interactive requests are turned away at once with a message saying
why (HTTP 503), instead of hanging for the length of a training run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class DeviceBusy(Exception):
    """The device cannot take this request now (queue full, training running, or timed out)."""


class DeviceWorker:
    """The single worker thread of the device, with a bounded queue.

    Parameters
    ----------
    max_queue
        Most requests waiting at once (the one running not counted).
    """

    def __init__(self, max_queue: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rescunet-device")
        self._max_queue = max_queue
        self._lock = threading.Lock()
        self._waiting = 0
        self._running: str | None = None
        self._training: str | None = None  # the job id while a training job is queued or runs

    # ------------------------------------------------------------------ state
    @property
    def waiting(self) -> int:
        """Requests and jobs waiting for the device."""
        return self._waiting

    @property
    def running(self) -> str | None:
        """What runs on the device now (``"propagate"``, ``"train job <id>"``, ...), or ``None``."""
        return self._running

    @property
    def training(self) -> str | None:
        """The id of the training job queued or running, if any."""
        return self._training

    # ------------------------------------------------------------------ work
    def _wrap(self, label: str, fn: Callable[[], T]) -> Callable[[], T]:
        def run() -> T:
            with self._lock:
                self._waiting -= 1
                self._running = label
            try:
                return fn()
            finally:
                with self._lock:
                    self._running = None

        return run

    def _admit(self, label: str) -> None:
        with self._lock:
            if self._waiting >= self._max_queue:
                raise DeviceBusy(
                    f"the service is busy: {self._waiting} requests are waiting for the device; "
                    "try again shortly"
                )
            self._waiting += 1

    def submit_job(self, job_id: str, fn: Callable[[], Any]) -> Future:
        """Queue a training job; only one may be queued or running at a time."""
        with self._lock:
            if self._training is not None:
                raise DeviceBusy(
                    f"training job {self._training} is already queued or running; wait for it or "
                    "cancel it first"
                )
            self._training = job_id
        try:
            self._admit(f"train job {job_id}")
        except DeviceBusy:
            with self._lock:
                self._training = None
            raise

        def done(_: Future) -> None:
            with self._lock:
                self._training = None

        future = self._pool.submit(self._wrap(f"train job {job_id}", fn))
        future.add_done_callback(done)
        return future

    def cancel_queued(self, future: Future) -> bool:
        """Cancel work that has not started; ``True`` if it will never run."""
        if future.cancel():
            with self._lock:
                self._waiting -= 1
            return True
        return False

    async def run(self, label: str, fn: Callable[[], T], timeout: float) -> T:
        """Run ``fn`` on the device thread and wait for it (at most ``timeout`` seconds).

        Raises :class:`DeviceBusy` at once when a training job holds the device or the queue is
        full, and after ``timeout`` seconds (the work is cancelled if it had not started).
        """
        if self._training is not None:
            raise DeviceBusy(
                f"the device is busy with training job {self._training}; try again when it has "
                f"finished, or cancel it (POST /v1/jobs/{self._training}/cancel)"
            )
        self._admit(label)
        future = self._pool.submit(self._wrap(label, fn))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            started = not self.cancel_queued(future)
            raise DeviceBusy(
                f"the request did not finish within {timeout:g} s "
                + ("(it was still running)" if started else "(it was still waiting for the device)")
                + "; send fewer frames, or start the service with a longer --request-timeout"
            ) from None

    def shutdown(self) -> None:
        """Stop taking work; the running item finishes, queued ones are dropped."""
        self._pool.shutdown(wait=False, cancel_futures=True)
