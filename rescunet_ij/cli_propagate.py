"""``rescunet-ij propagate``: outlines through one movie, written as ImageJ ROIs (and tracks).

A thin shell over :func:`rescunet_ij.api.propagate` and the api's writers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import cli_status
from .cli import (
    AxisOpt,
    Channel,
    DeviceOpt,
    FirstFrame,
    IdentityOpt,
    KeepGoingOpt,
    LastFrame,
    MotionOpt,
    NextFrameOnly,
    Overwrite,
    Reverse,
    ZPlane,
    _check_axis,
    _console,
    _one_based,
    app,
)


@app.command()
def propagate(
    movie: Annotated[Path, typer.Argument(help="movie: TIFF, OME-TIFF or OME-Zarr folder")],
    rois: Annotated[
        Path, typer.Argument(help="RoiSet.zip with the seed outlines (and any earlier results)")
    ],
    model: Annotated[Path, typer.Option(help="trained model file")],
    output: Annotated[Path, typer.Option("-o", "--output", help="RoiSet.zip to write")],
    first_frame: FirstFrame = None,
    last_frame: LastFrame = None,
    next_frame_only: NextFrameOnly = False,
    reverse: Reverse = False,
    labels: Annotated[Optional[Path], typer.Option(help="also write a label-image TIFF")] = None,
    report: Annotated[
        Optional[Path],
        typer.Option(help="CSV per object and frame: confidence, IoU, motion, why lost"),
    ] = None,
    ctc: Annotated[
        Optional[Path],
        typer.Option(
            "--ctc",
            help="also write the tracks as a Cell Tracking Challenge result folder "
            "(mask###.tif + res_track.txt, e.g. 01_RES) to score with the CTC metrics",
        ),
    ] = None,
    trackmate: Annotated[
        Optional[Path],
        typer.Option(
            "--trackmate",
            help="also write the tracks as a TrackMate XML file (Fiji: Plugins > Tracking > "
            "Load a TrackMate file)",
        ),
    ] = None,
    channel: Channel = None,
    z: ZPlane = None,
    axis: AxisOpt = "t",
    identity: IdentityOpt = "auto",
    device: DeviceOpt = "auto",
    batch_size: Annotated[Optional[int], typer.Option(help="windows per forward pass")] = None,
    erosion_width: Annotated[
        Optional[int], typer.Option(help="erosion after prediction (default: the model's)")
    ] = None,
    motion: MotionOpt = "auto",
    keep_going: KeepGoingOpt = False,
    overwrite: Overwrite = False,
    status_file: Annotated[
        Optional[Path],
        typer.Option(
            "--status-file",
            help="always write a key=value summary here, also when the command fails (ok, "
            "error, output, rois, doubtful and the doubtful predictions): for macros that "
            "cannot see this command's messages",
        ),
    ] = None,
) -> None:
    """Propagate outlines through a movie and write the result as an ImageJ RoiSet.zip."""
    try:
        out, run = _propagate(**{k: v for k, v in locals().items() if k != "status_file"})
    except BaseException as exc:
        if status_file is not None:
            cli_status.write_status(
                status_file,
                ok=False,
                error=cli_status.error_text(exc),
                code=cli_status.exit_code_of(exc),
                console=_console(),
            )
        raise
    if status_file is not None:
        first, last = sorted((run.start_frame, run.end_frame))
        cli_status.write_status(
            status_file,
            ok=True,
            output=out,
            rois=len(run.outlines),
            predicted=len(run.predicted),
            frames=f"{first + 1}..{last + 1}",
            doubtful=run.doubtful(),
        )


def _propagate(
    movie,
    rois,
    model,
    output,
    first_frame,
    last_frame,
    next_frame_only,
    reverse,
    labels,
    report,
    ctc,
    trackmate,
    channel,
    z,
    axis,
    identity,
    device,
    batch_size,
    erosion_width,
    motion,
    keep_going,
    overwrite,
):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import api

    # Every output is checked before the work (exists? writable? named twice?) and all of them
    # are written together at the end, so a failure never leaves half of the results.
    _check_track_exports(ctc, trackmate, [output, labels, report, trackmate], axis)
    api.check_outputs([output, labels, report, trackmate], overwrite=overwrite)
    if ctc is not None:
        api.check_ctc_output(ctc, overwrite=overwrite)
    console = _console()
    cfg = api.propagate_config(
        device=device,
        batch_size=batch_size,
        erosion_width=erosion_width,
        motion=motion,
        keep_going=keep_going,
    )
    mv = api.read_movie(movie)
    if ctc is not None:  # again, now that the frames are known: TIFFs it would not replace?
        api.check_ctc_output(ctc, mv, overwrite=overwrite)
    outlines = api.read_outlines(rois, mv, identity=identity)
    progress = Progress(
        TextColumn("propagating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task("propagate", total=None)

    def on_start(start: int, end: int) -> None:  # the request passed every check: show the bar
        progress.update(task, total=abs(end - start))
        progress.start()

    try:
        run = api.propagate(
            mv,
            outlines,
            model,
            start_frame=_one_based(first_frame, "frame"),
            end_frame=_one_based(last_frame, "frame"),
            next_only=next_frame_only,
            reverse=reverse,
            channel=_one_based(channel, "channel"),
            z=_one_based(z, "z-plane"),
            axis=_check_axis(axis),
            config=cfg,
            on_start=on_start,
            on_frame=lambda fr: progress.advance(task),
        )
    finally:
        progress.stop()
    with api.output_group():
        out = api.write_outlines(output, run.outlines, mv, overwrite=overwrite)
        if labels is not None:
            api.write_labels(labels, run.outlines, mv, overwrite=overwrite)
        if report is not None:
            api.write_report(report, run, overwrite=overwrite)
        plane = _one_based(z, "z-plane")
        if ctc is not None:
            api.write_ctc(ctc, run.outlines, mv, z=plane, overwrite=overwrite)
        if trackmate is not None:
            api.write_trackmate(trackmate, run.outlines, mv, z=plane, overwrite=overwrite)
    first, last = sorted((run.start_frame, run.end_frame))
    console.print(
        f"[green]wrote {len(run.outlines)} ROIs ({len(run.predicted)} predicted from frame "
        f"{run.start_frame + 1}, frames {first + 1}..{last + 1}) to {out}[/green]"
    )
    for what, path in (
        ("label image", labels),
        ("report", report),
        ("Cell Tracking Challenge result", ctc),
        ("TrackMate file", trackmate),
    ):
        if path is not None:
            console.print(f"{what}: {path}")
    _print_doubtful(console, run.doubtful())
    return out, run


def _check_track_exports(ctc, trackmate, files, axis) -> None:
    """Refuse track exports that cannot work, before any work."""
    from .errors import ConfigError

    if (ctc is not None or trackmate is not None) and axis != "t":
        raise ConfigError(
            "--ctc and --trackmate export tracks through time; they do not apply to --axis z "
            "(propagation through the planes of a z-stack)"
        )
    if ctc is None:
        return
    for f in files:
        if f is not None and Path(f).resolve().parent == Path(ctc).resolve():
            raise ConfigError(
                f"{f} is inside the --ctc folder, where the CTC tools would read it as part of "
                "the result; write it elsewhere"
            )


def _print_doubtful(console, doubtful: list[tuple[int, int, str]]) -> None:
    if not doubtful:
        return
    console.print(f"[yellow]{len(doubtful)} prediction(s) worth a look:[/yellow]")
    for f, oid, why in doubtful[:15]:
        console.print(f"  frame {f + 1}, object {oid}: {why}")
    if len(doubtful) > 15:
        console.print(f"  ... and {len(doubtful) - 15} more (see --report)")
