"""``rescunet-ij propagate-batch``: the movies of a manifest, on a Dask cluster or one SLURM task.

A thin shell over :func:`rescunet_ij.api.propagate_batch`; frames, channels and planes in the
manifest are numbered from 1, as in ImageJ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli import DeviceOpt, IdentityOpt, KeepGoingOpt, MotionOpt, _console, app


@app.command("propagate-batch")
def propagate_batch(
    manifest: Annotated[
        Path,
        typer.Argument(
            help="CSV, one row per movie: movie, seeds, output[, first_frame, last_frame, "
            "channel, z, labels, report] (numbers 1-based; paths relative to the CSV's folder)"
        ),
    ],
    model: Annotated[Path, typer.Option(help="trained model file, used for every movie")],
    results: Annotated[
        Optional[Path],
        typer.Option(
            help="results table (CSV: status, seconds, objects, lost, doubtful frames, error "
            "per movie), rewritten after each movie (default: <manifest>.results.csv)"
        ),
    ] = None,
    workers: Annotated[
        Optional[int],
        typer.Option(
            help="worker processes of the local Dask cluster (default: one per GPU, else 1)"
        ),
    ] = None,
    scheduler: Annotated[
        Optional[str],
        typer.Option(
            help="address of a running Dask scheduler (e.g. tcp://node1:8786) instead of a "
            "local cluster"
        ),
    ] = None,
    row: Annotated[
        Optional[list[int]],
        typer.Option(
            help="run only this row (1 = first movie; repeatable), in this process unless "
            "--scheduler or --workers is given: e.g. --row $SLURM_ARRAY_TASK_ID"
        ),
    ] = None,
    in_process: Annotated[
        bool,
        typer.Option("--in-process", help="run the movies here one after the other (no Dask)"),
    ] = False,
    device: DeviceOpt = "auto",
    batch_size: Annotated[Optional[int], typer.Option(help="windows per forward pass")] = None,
    erosion_width: Annotated[
        Optional[int], typer.Option(help="erosion after prediction (default: the model's)")
    ] = None,
    motion: MotionOpt = "auto",
    keep_going: KeepGoingOpt = False,
    identity: IdentityOpt = "auto",
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="recompute movies whose outputs exist (default: skip them)"
        ),
    ] = False,
) -> None:
    """Propagate many movies (one manifest row each) on a Dask cluster; resumable."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import api

    here = in_process or (bool(row) and scheduler is None and workers is None)
    console = _console()
    progress = Progress(
        TextColumn("movies"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task("movies", total=None, info="")
    counts = {"ok": 0, "failed": 0}

    def on_start(to_run: int, skipped: int) -> None:
        if skipped:
            console.print(f"{skipped} movie(s) already done, skipped (--overwrite redoes them)")
        where = "on a local Dask cluster" if scheduler is None else f"on {scheduler}"
        where = "in this process" if here else where
        if to_run:
            console.print(f"{to_run} movie(s) to propagate {where}", highlight=False)
        else:
            console.print("nothing left to propagate")
        progress.update(task, total=to_run)
        if to_run:
            progress.start()

    def on_result(r: api.MovieResult) -> None:
        if r.status == "skipped":
            return
        counts[r.status] = counts.get(r.status, 0) + 1
        if r.status == "failed":
            progress.console.print(
                f"[red]row {r.row} failed[/red] ({r.movie}): {r.error}", highlight=False
            )
        progress.update(task, advance=1, info=f"{counts['ok']} ok, {counts['failed']} failed")

    try:
        out = api.propagate_batch(
            manifest,
            model,
            results=results,
            rows=row or None,
            overwrite=overwrite,
            scheduler=scheduler,
            workers=workers,
            in_process=here,
            device=device,
            batch_size=batch_size,
            erosion_width=erosion_width,
            motion=motion,
            keep_going=keep_going,
            identity=identity,
            on_start=on_start,
            on_result=on_result,
        )
    finally:
        progress.stop()
    n_ok, n_skipped, failed = out.count("ok"), out.count("skipped"), out.failed
    lost = sum(r.lost for r in out.results if r.status == "ok")
    doubtful = sum(r.doubtful for r in out.results if r.status == "ok")
    colour = "red" if failed else "green"
    console.print(
        f"[{colour}]{len(out.results)} movie(s): {n_ok} propagated, {n_skipped} skipped, "
        f"{len(failed)} failed[/{colour}]; {lost} object(s) lost, {doubtful} prediction(s) "
        f"worth a look; results: {out.results_path}",
        highlight=False,
    )
    if failed:
        for r in failed[:10]:
            console.print(f"  row {r.row} ({Path(r.movie).name}): {r.error}", highlight=False)
        if len(failed) > 10:
            console.print(f"  ... and {len(failed) - 10} more (see {out.results_path})")
        raise typer.Exit(code=2)
