"""Many movies at once: a manifest of movies propagated on a Dask cluster (or one by one).

One CSV row per movie (:func:`read_manifest`; the manifest and results-table formats live in
:mod:`rescunet_ij.io.manifest`); :func:`propagate_batch` runs every row that is not
finished yet on ``dask.distributed`` workers (a :func:`local_cluster` by default, or any cluster a
``Client`` reaches: SLURM through ``dask-jobqueue``, ...), one movie per task. Each worker process
loads the model once (:func:`_model`, a per-process cache) and writes a movie's outputs
atomically, as ``rescunet-ij propagate`` does. The results table (CSV) is rewritten atomically
after every movie, so it always says what is done. Dask reschedules the movies of a worker that
dies; a movie that fails is recorded with its error and never stops the others.

``dask`` and ``distributed`` (the ``cluster`` extra) are imported only when a cluster is used:
``rows`` run in this process (:func:`propagate_batch` with ``in_process=True``, e.g. one task of
a SLURM array) need neither.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import sys
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, MissingExtraError, OutputExistsError, RescunetError
from ..io.manifest import ManifestRow, read_manifest, read_results, write_results

if TYPE_CHECKING:
    from ..config import PropagateConfig
    from ..io.checkpoint import LoadedModel

_EXTRA = ("distributed", "cluster", "propagate-batch on a Dask cluster")


@dataclass
class MovieResult:
    """What happened to one movie of a batch (a row of the results table).

    Attributes
    ----------
    row, movie, output
        The manifest row.
    status
        ``ok``, ``skipped`` (its outputs existed), ``failed`` or ``pending`` (not done yet).
    seconds
        Wall time on the worker: reading, propagating and writing.
    objects
        Objects seeded; ``rois``: outlines written; ``predicted``: of those, new predictions.
    lost
        Objects lost on the way.
    doubtful, doubtful_frames
        How many predictions are worth a look, and on which frames (1-based, as in ImageJ).
    worker
        ``host:pid`` of the process that ran it.
    model_loads
        How many times that process had loaded a model when it finished (1 when it loaded the
        model once for all its movies).
    error
        Why it failed (``failed`` only).
    """

    row: int
    movie: str
    output: str
    status: str
    seconds: float = 0.0
    objects: int = 0
    rois: int = 0
    predicted: int = 0
    lost: int = 0
    doubtful: int = 0
    doubtful_frames: str = ""
    worker: str = ""
    model_loads: int = 0
    error: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        """The process id of the worker that ran the movie."""
        return int(self.worker.rsplit(":", 1)[1]) if ":" in self.worker else None


@dataclass
class BatchResult:
    """The outcome of :func:`propagate_batch`: one :class:`MovieResult` per selected row."""

    results: list[MovieResult]
    results_path: Path

    def count(self, status: str) -> int:
        """How many movies ended with ``status``."""
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[MovieResult]:
        """The movies that failed."""
        return [r for r in self.results if r.status == "failed"]


# ------------------------------------------------------------------------------- one movie (task)
_LOADS = 0  # model files this process has loaded (reported with each result)
_LOAD_LOCK = threading.Lock()


@functools.lru_cache(maxsize=2)
def _model_for(path: str, mtime_ns: int, size: int) -> LoadedModel:
    """Load a model file once per process (keyed by its path and the file's state)."""
    global _LOADS
    from ._training import load_model

    model = load_model(path)
    _LOADS += 1
    return model


def _model(path: str | Path) -> LoadedModel:
    """The model of ``path``, from this process's cache unless the file changed."""
    try:
        st = os.stat(path)
    except OSError as exc:
        from ..errors import ModelFileError

        raise ModelFileError(f"cannot open the model file {path}: {exc.strerror or exc}") from exc
    with _LOAD_LOCK:  # one load at a time, even on a worker with several threads
        return _model_for(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


def _frames_text(frames: Iterable[int]) -> str:
    """``3-5;9`` from 0-based frames (written 1-based)."""
    out: list[str] = []
    ordered = sorted(set(frames))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        a, b = ordered[i] + 1, ordered[j] + 1
        out.append(str(a) if a == b else f"{a}-{b}")
        i = j + 1
    return ";".join(out)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, RescunetError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (MemoryError) while propagating this movie"
    return f"{type(exc).__name__}: {exc}"


def _run_movie(row: ManifestRow, model: str, config: PropagateConfig, identity: str) -> MovieResult:
    """Propagate one manifest row and write its outputs atomically (runs on a worker).

    Its outputs are replaced if they exist: :func:`propagate_batch` sends a row only when none
    of them existed (or with ``overwrite``), so an existing one was written by this same task,
    run again by Dask because the worker holding its result died.
    """
    from ._movies import (
        check_outputs,
        output_group,
        read_movie,
        read_outlines,
        write_labels,
        write_outlines,
    )
    from ._propagation import propagate, write_report

    start = time.perf_counter()
    result = MovieResult(row.row, str(row.movie), str(row.output), "failed")
    result.worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_outputs(row.outputs, overwrite=True)
            loaded = _model(model)
            mv = read_movie(row.movie)
            seeds = read_outlines(row.seeds, mv, identity=identity)
            run = propagate(
                mv,
                seeds,
                loaded,
                start_frame=row.first_frame,
                end_frame=row.last_frame,
                channel=row.channel,
                z=row.z,
                config=config,
            )
            with output_group():  # the row's files: all of them, or none
                write_outlines(row.output, run.outlines, mv, overwrite=True)
                if row.labels is not None:
                    write_labels(row.labels, run.outlines, mv, overwrite=True)
                if row.report is not None:
                    write_report(row.report, run, overwrite=True)
        doubtful = run.doubtful()
        result.status = "ok"
        result.objects = len({o.object_id for fr in run.frames for o in fr.objects})
        result.rois = len(run.outlines)
        result.predicted = len(run.predicted)
        result.lost = len(run.lost)
        result.doubtful = len(doubtful)
        result.doubtful_frames = _frames_text(f for f, _, _ in doubtful)
        result.warnings = [str(w.message) for w in caught][:20]
    except Exception as exc:  # one movie's failure is its own row of the table, never a crash
        result.error = _error_text(exc)
    result.seconds = round(time.perf_counter() - start, 3)
    result.model_loads = _LOADS
    return result


# ------------------------------------------------------------------------------ the Dask cluster
def _distributed() -> Any:
    """``distributed``, or a :class:`MissingExtraError` naming the ``cluster`` extra."""
    try:
        import distributed
    except ImportError:
        raise MissingExtraError(*_EXTRA) from None
    return distributed


def _gpu_for_worker(name: Any, gpus: Sequence[str]) -> str | None:
    """The GPU a worker named ``name`` gets: its number (trailing digits) modulo the GPUs.

    LocalCluster names its workers 0, 1, ...; dask-jobqueue ``<job>-<process>``, so the process
    number within a job picks the GPU within its node. Other names get a stable choice.
    """
    if not gpus:
        return None
    match = re.search(r"(\d+)$", str(name))
    index = int(match.group(1)) if match else zlib.crc32(str(name).encode())
    return str(gpus[index % len(gpus)])


def _pinning_class() -> type:
    """The worker plugin class setting ``CUDA_VISIBLE_DEVICES`` (built once distributed loads)."""
    cls = globals().get("_GPUPinning")
    if cls is not None:
        return cls
    distributed = _distributed()

    class GPUPinning(distributed.WorkerPlugin):
        """Give each worker process one GPU, chosen from its name, before any task runs."""

        name = "rescunet-ij-gpu-pinning"

        def __init__(self, gpus: Sequence[str]) -> None:
            self.gpus = [str(g) for g in gpus]

        def setup(self, worker: Any) -> None:
            gpu = _gpu_for_worker(worker.name, self.gpus)
            torch = sys.modules.get("torch")
            if torch is not None and torch.cuda.is_initialized():
                raise RuntimeError(
                    f"worker {worker.name} started CUDA before it was given GPU {gpu}; start "
                    "the workers with CUDA_VISIBLE_DEVICES set instead"
                )
            if gpu is not None:
                os.environ["CUDA_VISIBLE_DEVICES"] = gpu

    GPUPinning.__module__ = __name__
    GPUPinning.__qualname__ = "_GPUPinning"
    globals()["_GPUPinning"] = GPUPinning
    return GPUPinning


def __getattr__(name: str) -> Any:
    """Build the plugin class when a worker unpickles it by name (needs distributed)."""
    if name == "_GPUPinning":
        return _pinning_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _visible_gpus() -> list[str]:
    """The GPUs this machine shows PyTorch (their ``CUDA_VISIBLE_DEVICES`` names)."""
    from ..device import cuda_device_count

    count = cuda_device_count()
    if count == 0:
        return []
    shown = os.environ.get("CUDA_VISIBLE_DEVICES")
    if shown:
        names = [s.strip() for s in shown.split(",") if s.strip()]
        return names[:count]
    return [str(i) for i in range(count)]


def _gpus_for(device: str, gpus: Sequence[str] | None) -> list[str]:
    if gpus is not None:
        return [str(g) for g in gpus]
    if device not in ("auto", "cuda"):
        return []  # cpu, mps, or one GPU named by the user (cuda:N): no pinning
    return _visible_gpus()


def local_cluster(
    workers: int | None = None,
    *,
    gpus: Sequence[str] | None = None,
    device: str = "auto",
    **kwargs: Any,
) -> Any:
    """A ``distributed.LocalCluster`` for :func:`propagate_batch`: one process per worker.

    Each worker is a process with one thread. With several GPUs, each worker is pinned to one
    (``CUDA_VISIBLE_DEVICES`` set from the worker's number by a worker plugin before any task
    runs); ``workers`` defaults to the number of GPUs (1 without GPUs).

    Parameters
    ----------
    workers
        Worker processes (default: one per GPU, at least 1).
    gpus
        GPU ids to pin the workers to (default: every GPU PyTorch sees when ``device`` is
        ``auto`` or ``cuda``; none for ``cpu``, ``mps`` or ``cuda:N``).
    device
        The device the movies will run on.
    **kwargs
        More ``LocalCluster`` arguments.

    Returns
    -------
    distributed.LocalCluster
        Close it (or use it in a ``with`` block) when done.
    """
    distributed = _distributed()
    pinned = _gpus_for(device, gpus)
    n = workers if workers is not None else max(len(pinned), 1)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"workers must be a whole number >= 1; got {workers!r}")
    import logging

    options = dict(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    options.update(kwargs)
    cluster = distributed.LocalCluster(**options)
    if pinned:
        with distributed.Client(cluster) as client:
            client.register_plugin(_pinning_class()(pinned), name=_pinning_class().name)
    return cluster


# ------------------------------------------------------------------------------- the whole batch
def _results_path(manifest: Path, rows: Sequence[int] | None) -> Path:
    stem = manifest.stem
    if rows:
        picked = sorted(set(rows))
        tag = f"row{picked[0]}" if len(picked) == 1 else f"rows{picked[0]}-{picked[-1]}"
        return manifest.parent / f"{stem}.results-{tag}.csv"
    return manifest.parent / f"{stem}.results.csv"


def _check_results_path(path: Path, overwrite: bool) -> dict[str, dict[str, str]]:
    """A results table may replace an earlier one, anything else only with ``overwrite``.

    Returns the earlier table's finished rows by output path (what a skipped row reports).
    """
    from ._movies import check_outputs

    earlier: dict[str, dict[str, str]] = {}
    if path.is_file():
        rows = read_results(path)
        if rows is None and not overwrite:
            raise OutputExistsError(
                f"{path} exists and is not a results table of propagate-batch; name another "
                "file for the results, or pass --overwrite (Python: overwrite=True)"
            )
        earlier = {r["output"]: r for r in rows or () if r["status"] == "ok"}
    check_outputs([path], overwrite=True)
    return earlier


def _skipped(item: ManifestRow, before: dict[str, str] | None) -> MovieResult:
    """A finished row, with the figures of the run that made it when the table has them."""
    result = MovieResult(item.row, str(item.movie), str(item.output), "skipped")
    if before is not None:
        try:
            result.seconds = float(before["seconds"])
            for name in ("objects", "rois", "predicted", "lost", "doubtful"):
                setattr(result, name, int(before[name]))
        except (KeyError, ValueError):
            return MovieResult(item.row, str(item.movie), str(item.output), "skipped")
        result.doubtful_frames = before.get("doubtful_frames", "")
        result.worker = before.get("worker", "")
    return result


def _write_results(path: Path, results: Iterable[MovieResult]) -> None:
    write_results(path, (asdict(r) for r in results))


def _select(rows: list[ManifestRow], wanted: Sequence[int] | None) -> list[ManifestRow]:
    if wanted is None:
        return rows
    by_number = {r.row: r for r in rows}
    bad = [w for w in wanted if w not in by_number]
    if bad:
        raise ConfigError(
            f"row(s) {', '.join(map(str, bad))} not in the manifest: its movies are rows "
            f"1..{len(rows)} (counted from the first row under the header)"
        )
    return [by_number[w] for w in sorted(set(wanted))]


def _failed(item: ManifestRow, error: str) -> MovieResult:
    return MovieResult(item.row, str(item.movie), str(item.output), "failed", error=error)


def _partly_done(item: ManifestRow, there: list[Path]) -> str:
    missing = [p.name for p in item.outputs if p not in there]
    return (
        f"{', '.join(p.name for p in there)} exist(s) but {', '.join(missing)} not: delete "
        "the row's outputs, or pass --overwrite (Python: overwrite=True) to redo this movie"
    )


def _lost_worker_text(exc: BaseException) -> str:
    return (
        "the Dask worker running this movie died, as did those it was retried on "
        f"({exc}); a worker dies when it runs out of memory or is killed: see the workers' logs"
    )


def propagate_batch(
    manifest: str | Path,
    model: str | Path,
    *,
    results: str | Path | None = None,
    rows: Sequence[int] | None = None,
    overwrite: bool = False,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    gpus: Sequence[str] | None = None,
    in_process: bool = False,
    device: str = "auto",
    batch_size: int | None = None,
    erosion_width: int | None = None,
    motion: str = "auto",
    keep_going: bool = False,
    identity: str = "auto",
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[MovieResult], None] | None = None,
) -> BatchResult:
    """Propagate every movie of a manifest (see :func:`read_manifest`) with one model.

    The whole manifest, the model file and the options are checked before any movie runs. A row
    whose outputs all exist is skipped unless ``overwrite``. The others run as one Dask task each:
    on ``client`` if given, else on the cluster at ``scheduler``, else on a new
    :func:`local_cluster` of ``workers`` processes (closed at the end). ``in_process=True`` runs
    them here one after the other instead (no Dask; what a SLURM array task does with one row).

    The results table (``results``; default ``<manifest>.results.csv`` next to the manifest, or
    ``<manifest>.results-row<N>.csv`` for chosen ``rows``) is rewritten atomically after every
    movie. A failing movie is recorded as ``failed`` with its error and the others go on; the
    movies of a worker that dies are run again by Dask on another worker.

    Parameters
    ----------
    manifest
        The CSV, one row per movie.
    model
        The model file every movie is propagated with (loaded once per worker process).
    results
        The results table to write.
    rows
        Only these rows (1 = the first movie of the manifest).
    overwrite
        Recompute finished movies and replace their outputs.
    client, scheduler, workers, gpus
        Where to run (see above and :func:`local_cluster`).
    in_process
        Run the movies in this process, without Dask.
    device, batch_size, erosion_width, motion, keep_going
        Propagation settings, as for :func:`propagate_config`.
    identity
        How ROIs are matched to objects in the seed RoiSets.
    on_start
        Called once with ``(movies to run, movies skipped)`` when the work starts.
    on_result
        Called with each movie's :class:`MovieResult` as it finishes (also for skipped ones).

    Returns
    -------
    BatchResult
        Every selected row's result, and the results table's path.
    """
    from ._common import _identity
    from ._training import propagate_config

    manifest = Path(manifest).expanduser()
    items = _select(read_manifest(manifest), rows)
    model_path = Path(model).expanduser().resolve()
    config = propagate_config(
        device=device,
        batch_size=batch_size,
        erosion_width=erosion_width,
        motion=motion,
        keep_going=keep_going,
    )
    identity = _identity(identity).value
    given = sum(x is not None for x in (client, scheduler)) + bool(in_process)
    if given > 1:
        raise ConfigError("give one of client, scheduler and in_process, not several")
    if workers is not None and (client is not None or scheduler is not None or in_process):
        raise ConfigError(
            "workers sets the size of a new local cluster; it cannot be combined "
            "with client, scheduler or in_process"
        )
    results_path = Path(results).expanduser() if results else _results_path(manifest, rows)
    earlier = _check_results_path(results_path, overwrite)
    _model(model_path)  # a model file that cannot be opened stops everything, before any work

    table: dict[int, MovieResult] = {}
    todo: list[ManifestRow] = []
    for item in items:
        there = [p for p in item.outputs if p.exists()]
        if there and not overwrite and len(there) == len(item.outputs):
            table[item.row] = _skipped(item, earlier.get(str(item.output)))
        elif there and not overwrite:  # half of a row's outputs: from another run, or by hand
            table[item.row] = _failed(item, _partly_done(item, there))
        else:
            table[item.row] = MovieResult(item.row, str(item.movie), str(item.output), "pending")
            todo.append(item)

    def start() -> None:
        _write_results(results_path, table.values())
        if on_start is not None:
            on_start(len(todo), len(items) - len(todo))
        if on_result is not None:
            for r in table.values():
                if r.status != "pending":
                    on_result(r)

    def record(result: MovieResult) -> None:
        table[result.row] = result
        _write_results(results_path, table.values())
        if on_result is not None:
            on_result(result)

    args = (str(model_path), config, identity)
    if not todo or in_process:
        start()
        for item in todo:
            record(_run_movie(item, *args))
    else:
        with _dask_client(client, scheduler, workers, gpus, device) as dask_client:
            start()  # once the cluster is there: a cluster that cannot start leaves no table
            _run_on_dask(dask_client, todo, args, record)
    return BatchResult([table[i.row] for i in items], results_path)


@contextlib.contextmanager
def _dask_client(
    client: Any,
    scheduler: str | None,
    workers: int | None,
    gpus: Sequence[str] | None,
    device: str,
) -> Iterator[Any]:
    """The client to use: the one given, one for ``scheduler``, or one of a new local cluster.

    What this function started is closed at the end; a client given is left open.
    """
    distributed = _distributed()
    own: list[Any] = []
    try:
        if client is None:
            if scheduler is not None:
                try:
                    client = distributed.Client(scheduler, timeout="30s")
                except OSError as exc:
                    raise ConfigError(
                        f"cannot reach the Dask scheduler at {scheduler}: {exc}"
                    ) from exc
            else:
                own.append(local_cluster(workers, gpus=gpus, device=device))
                client = distributed.Client(own[0])
            own.insert(0, client)
        _check_workers(client)
        yield client
    finally:
        for thing in own:
            thing.close()


def _run_on_dask(
    client: Any, todo: list[ManifestRow], args: tuple, record: Callable[[MovieResult], None]
) -> None:
    """One task per movie; each result is recorded as it comes, in the order they finish."""
    distributed = _distributed()
    tag = f"{os.getpid()}-{time.time_ns()}"
    futures = {
        client.submit(
            _run_movie, item, *args, key=f"rescunet-ij-row{item.row}-{tag}", pure=False
        ): item
        for item in todo
    }
    try:
        for future in distributed.as_completed(futures):
            item = futures[future]
            try:
                result = future.result()
            except distributed.KilledWorker as exc:
                result = _failed(item, _lost_worker_text(exc))
            except Exception as exc:  # e.g. the task could not be sent or unpickled
                result = _failed(item, _error_text(exc))
            # Forget the result on the cluster: a worker dying later must not make Dask
            # compute (and write) this movie again.
            future.release()
            record(result)
    except BaseException:
        client.cancel(list(futures))
        raise


def _worker_version() -> str:
    from .. import __version__

    return __version__


def _check_workers(client: Any) -> None:
    """The cluster's workers can run rescunet-ij (the same version), or a clear error now."""
    from .. import __version__

    try:
        versions = client.run(_worker_version)
    except Exception as exc:  # the workers could not unpickle or run the check
        raise ConfigError(
            f"the Dask workers cannot import rescunet_ij ({exc}); install rescunet-ij "
            f"{__version__} in the workers' Python environment"
        ) from exc
    other = {v for v in versions.values() if v != __version__}
    if other:
        raise ConfigError(
            f"the Dask workers run rescunet-ij {', '.join(sorted(other))}, this is {__version__}; "
            "install the same version everywhere"
        )
