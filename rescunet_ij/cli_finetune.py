"""``rescunet-ij finetune``: learn from the user's corrections, then propagate again.

A thin shell over :func:`rescunet_ij.api.finetune` (frames are 1-based here, as in ImageJ).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli import Channel, DeviceOpt, IdentityOpt, Overwrite, ZPlane, _console, _one_based, app


@app.command()
def finetune(
    model: Annotated[Path, typer.Argument(help="the model that made the predictions")],
    movie: Annotated[Path, typer.Argument(help="movie: TIFF, OME-TIFF or OME-Zarr folder")],
    rois: Annotated[
        Path,
        typer.Argument(
            help="RoiSet.zip with the predictions and the user's corrections (edited or "
            "redrawn ROIs)"
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="the new model file to write")],
    propagate_output: Annotated[
        Optional[Path],
        typer.Option(
            help="also propagate again with the new model from the first corrected frame and "
            "write all outlines to this RoiSet.zip (the corrections are kept as given)"
        ),
    ] = None,
    replay: Annotated[
        Optional[Path],
        typer.Option(
            help="the model's training set (folder or zip): some of its samples are mixed in so "
            "the model does not forget (default: the set recorded in the model, if any)"
        ),
    ] = None,
    replay_samples: Annotated[
        int, typer.Option(help="samples taken from the replay training set")
    ] = 64,
    epochs: Annotated[Optional[int], typer.Option(help="fine-tuning epochs (default 10)")] = None,
    learning_rate: Annotated[
        Optional[float],
        typer.Option(help="learning rate (default: 1/5 of the model's training rate)"),
    ] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="samples per step")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    channel: Channel = None,
    z: ZPlane = None,
    identity: IdentityOpt = "auto",
    device: DeviceOpt = "auto",
    overwrite: Overwrite = False,
) -> None:
    """Fine-tune a model on the ROIs the user corrected (and optionally propagate again)."""
    from . import api

    console = _console()
    api.check_outputs([output, propagate_output], overwrite=overwrite)
    mv = api.read_movie(movie)
    outlines = api.read_outlines(rois, mv, identity=identity)

    def on_epoch_end(stats: dict) -> None:
        console.log(
            f"epoch {stats.get('epoch')}/{stats.get('epochs')}: loss "
            f"{stats.get('train_loss', float('nan')):.4f}, IoU "
            f"{stats.get('train_iou', float('nan')):.3f}"
        )

    result = api.finetune(
        model,
        mv,
        outlines,
        output,
        replay=replay,
        replay_samples=replay_samples,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        device=device,
        seed=seed,
        channel=_one_based(channel, "channel"),
        z=_one_based(z, "z-plane"),
        rois_output=propagate_output,
        callbacks=api.TrainCallbacks(on_epoch_end=on_epoch_end),
        overwrite=overwrite,
    )
    corr = result.corrections
    frames = sorted({c.frame + 1 for c in corr})
    edited = sum(c.origin == "edited" for c in corr)
    console.print(
        f"found {len(corr)} correction(s) ({edited} edited, {len(corr) - edited} drawn) on "
        f"frame(s) {', '.join(map(str, frames))}; {result.n_samples} training sample(s)"
        + (
            f" + {result.n_replay} replayed from {result.replay_source}"
            if result.n_replay
            else " (no replay training set)"
        ),
        highlight=False,
    )
    console.print(f"[green]wrote the fine-tuned model to {result.model_path}[/green]")
    if result.rois_path is not None:
        n_pred = sum(len(r.predicted) for r in result.runs)
        console.print(
            f"[green]propagated again from frame {result.first_corrected_frame + 1}: "
            f"{n_pred} outline(s) predicted, {len(result.outlines or [])} ROIs written to "
            f"{result.rois_path}[/green]"
        )
