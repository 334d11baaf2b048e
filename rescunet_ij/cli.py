"""Command-line interface: ``rescunet-ij <command>``. A thin shell over :mod:`rescunet_ij.api`.

Frames, planes and channels are numbered from 1 here, as in ImageJ.
"""

from __future__ import annotations

import atexit
import gc
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__, cli_status
from .errors import RescunetError

app = typer.Typer(
    name="rescunet-ij",
    help="ReSCU-Net segmentation for Fiji/ImageJ: build training sets, train, and propagate object "
    "outlines (ImageJ RoiSet.zip) through TIFF time-lapse movies. Frames are numbered from 1, "
    "as in ImageJ.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Overwrite = Annotated[bool, typer.Option("--overwrite", help="replace existing outputs")]
Channel = Annotated[
    Optional[int], typer.Option(help="channel to use (1-based) for multi-channel/RGB movies")
]
ZPlane = Annotated[
    Optional[int], typer.Option("--z", help="z-plane to use (1-based) for movies with z")
]
AxisOpt = Annotated[
    str, typer.Option(help="propagate along time 't' or through the planes of a z-stack 'z'")
]
IdentityOpt = Annotated[
    str, typer.Option(help="how ROIs are matched to objects: auto|property|group|name|order")
]


DeviceOpt = Annotated[str, typer.Option(help="auto|cpu|cuda|cuda:N|mps")]
# The propagation options.
FirstFrame = Annotated[
    Optional[int], typer.Option(help="frame with the seed outlines (default: first outlined)")
]
LastFrame = Annotated[
    Optional[int], typer.Option(help="last frame to predict (default: end of movie)")
]
NextFrameOnly = Annotated[
    bool, typer.Option("--next-frame-only", help="predict only the frame after --first-frame")
]
Reverse = Annotated[bool, typer.Option("--reverse", help="propagate backwards in time")]
MotionOpt = Annotated[
    str,
    typer.Option(
        help="motion compensation before each frame: auto (default: field drift and each "
        "object's own motion, where the images show it), global, object, or off"
    ),
]
KeepGoingOpt = Annotated[
    bool,
    typer.Option(
        "--keep-going",
        help="keep propagating objects whose prediction looks wrong (marked doubtful in "
        "--report) instead of stopping them as lost",
    ),
]

# The training options of `train` and `notebook` (one definition, the same help in both).
InputSize = Annotated[
    Optional[str],
    typer.Option(help="network input: a multiple of 16 in 16..1024, e.g. 64 or 64x48"),
]
SubimageSize = Annotated[
    Optional[str],
    typer.Option(help="window around each object, native pixels (8..4096; default: the set's)"),
]
LearningRate = Annotated[Optional[float], typer.Option(help="Adam learning rate")]
BatchSize = Annotated[Optional[int], typer.Option(help="samples per step")]
Epochs = Annotated[Optional[int], typer.Option(help="maximum epochs")]
ConcatenationLevel = Annotated[Optional[int], typer.Option(help="0..4")]
BaseFilters = Annotated[Optional[int], typer.Option(help="filters of the first block (64 = paper)")]
ErosionWidth = Annotated[Optional[int], typer.Option(help="erosion after prediction, pixels")]
ValidationFraction = Annotated[Optional[float], typer.Option(help="held-out fraction")]
Patience = Annotated[Optional[int], typer.Option(help="early-stopping patience (epochs)")]
Normalization = Annotated[Optional[str], typer.Option(help="percentile (default) or max")]
Seed = Annotated[Optional[int], typer.Option(help="random seed")]
PromptShift = Annotated[
    Optional[int],
    typer.Option(
        help="largest random shift of the training prompts, native pixels (default: how far the "
        "training objects move, 90th percentile, at least 2)"
    ),
]

_TRAINING_OPTIONS = {  # CLI option name -> api.train_config parameter
    "input_size": "input_size",
    "subimage_size": "subimage_size",
    "learning_rate": "learning_rate",
    "batch_size": "batch_size",
    "epochs": "epochs",
    "concatenation_level": "concatenation_level",
    "base_filters": "base_filters",
    "erosion_width": "erosion_width",
    "validation_fraction": "validation_fraction",
    "patience": "early_stopping_patience",
    "normalization": "normalization",
    "seed": "seed",
    "prompt_shift": "prompt_shift",
}


def _training_params(options: dict) -> dict:
    """The training options a command received, named as api.train_config names them."""
    return {api_name: options[cli_name] for cli_name, api_name in _TRAINING_OPTIONS.items()}


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _one_based(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if value < 1:
        raise typer.BadParameter(f"{what} numbers start at 1 (as in ImageJ); got {value}")
    return value - 1


def _check_axis(axis: str) -> str:
    if axis not in ("t", "z"):
        raise typer.BadParameter(f"--axis must be 't' or 'z', got {axis!r}")
    return axis


@app.command("make-training-set")
def make_training_set(
    movie: Annotated[
        Path, typer.Argument(help="movie: TIFF (hyperstack, stack, OME-TIFF) or OME-Zarr")
    ],
    rois: Annotated[Path, typer.Argument(help="ImageJ RoiSet.zip with the outlined objects")],
    out_dir: Annotated[Path, typer.Argument(help="folder to create (one subfolder per sample)")],
    subimage_size: Annotated[
        Optional[str],
        typer.Option(
            help="window around each object in native pixels, e.g. 64 or 96x64 (default: "
            "chosen from the objects' size and motion, printed)"
        ),
    ] = None,
    motion: Annotated[
        str,
        typer.Option(
            help="motion compensation of the previous outlines, as propagate does it: "
            "auto|off|global|object (use the mode you will propagate with)"
        ),
    ] = "auto",
    zip_path: Annotated[
        Optional[Path],
        typer.Option("--zip", help="also write testtrain.zip for the Colab notebook"),
    ] = None,
    channel: Channel = None,
    z: ZPlane = None,
    axis: AxisOpt = "t",
    identity: IdentityOpt = "auto",
    overwrite: Overwrite = False,
) -> None:
    """Build a training set (PyJAMAS layout: image/, mask/, prev_mask/ per sample)."""
    from . import api

    mv = api.read_movie(movie)
    outlines = api.read_outlines(rois, mv, identity=identity)
    out = api.make_training_set(  # checks both outputs before any work
        mv,
        outlines,
        out_dir,
        subimage_size=subimage_size,
        motion=motion,
        channel=_one_based(channel, "channel"),
        z=_one_based(z, "z-plane"),
        axis=_check_axis(axis),
        zip_path=zip_path,
        overwrite=overwrite,
    )
    console = _console()
    n = sum(1 for p in out.iterdir() if p.is_dir())
    console.print(f"[green]wrote {n} training samples to {out}[/green] (motion: {motion})")
    sizes = api.training_set_sizes(out)
    if sizes is not None:
        h, w = sizes.subimage_size
        ih, iw = sizes.input_size
        how = "chosen from the data" if sizes.chosen == "rule" else "as given"
        console.print(
            f"subimage size {h}x{w} px ({how}); train uses input size {ih}x{iw} px unless "
            "you give --input-size or --subimage-size",
            highlight=False,
        )
        console.print(f"  rule: {sizes.reason}", highlight=False)
    if zip_path is not None:
        console.print(f"[green]wrote {zip_path}[/green]")


@app.command("export-training-zip")
def export_training_zip(
    training_dir: Annotated[Path, typer.Argument(help="training-set folder")],
    output: Annotated[Path, typer.Option("-o", "--output", help="zip to write")] = Path(
        "testtrain.zip"
    ),
    overwrite: Overwrite = False,
) -> None:
    """Pack a training-set folder into testtrain.zip for the Colab notebook."""
    from . import api

    out = api.export_training_zip(training_dir, output, overwrite=overwrite)
    _console().print(f"[green]wrote {out}[/green]")


@app.command()
def train(
    training_dir: Annotated[Path, typer.Argument(help="training-set folder or testtrain.zip")],
    output: Annotated[Path, typer.Option("-o", "--output", help="model file to write (.rescunet)")],
    input_size: InputSize = None,
    subimage_size: SubimageSize = None,
    learning_rate: LearningRate = None,
    batch_size: BatchSize = None,
    epochs: Epochs = None,
    concatenation_level: ConcatenationLevel = None,
    base_filters: BaseFilters = None,
    erosion_width: ErosionWidth = None,
    validation_fraction: ValidationFraction = None,
    patience: Patience = None,
    normalization: Normalization = None,
    no_augment: Annotated[
        bool,
        typer.Option("--no-augment", help="switch flips, rotations and intensity jitter off"),
    ] = False,
    no_prompt_augment: Annotated[
        bool,
        typer.Option(
            "--no-prompt-augment",
            help="train on the exact previous masks only (default: half the prompts are made "
            "slightly wrong, as after a few propagated frames)",
        ),
    ] = False,
    prompt_shift: PromptShift = None,
    seed: Seed = None,
    device: DeviceOpt = "auto",
    init_from: Annotated[Optional[Path], typer.Option(help="fine-tune this model")] = None,
    overwrite: Overwrite = False,
    nproc_per_node: Annotated[
        Optional[int],
        typer.Option(
            help="train with N processes of this machine (one per GPU; DistributedDataParallel "
            "via torchrun); --batch-size stays the global batch"
        ),
    ] = None,
) -> None:
    """Train a ReSCU-Net and save it as one safe model file (plus a CSV and PNG of the curves)."""
    params = _training_params(locals())
    if nproc_per_node is not None and nproc_per_node != 1:
        # This same command in N processes under torchrun: every option given, but this one.
        given = {k: v for k, v in locals().items() if v is not None and v is not False}
        worker = ["train", str(given.pop("training_dir"))]
        for name, value in given.items():
            if name not in ("nproc_per_node", "params"):
                flag = "--" + name.replace("_", "-")
                worker += [flag] if value is True else [flag, str(value)]
        from . import api

        raise typer.Exit(api.launch_training(worker, nproc_per_node))
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from . import api

    console = _console()
    progress = Progress(
        TextColumn("[bold]epoch {task.fields[epoch]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} batches"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task("train", total=None, epoch=1, info="")
    state = {"epoch": 1}

    def on_batch_end(i: int, n: int) -> None:
        progress.start()  # from the first batch on: every check has passed by then
        progress.update(task, completed=i, total=n, epoch=state["epoch"])

    def on_epoch_end(stats: dict) -> None:
        state["epoch"] = int(stats.get("epoch", state["epoch"])) + 1
        val = stats.get("val_loss")
        info = f"loss {stats.get('train_loss', float('nan')):.4f}"
        if val is not None:
            info += f"  val {val:.4f}  val IoU {stats.get('val_iou', float('nan')):.3f}"
        progress.update(task, info=info, completed=0)
        console.log(f"epoch {stats.get('epoch')}: {info}")

    try:
        result = api.train(
            training_dir,
            output,
            init_from=init_from,
            overwrite=overwrite,
            callbacks=api.TrainCallbacks(on_epoch_end=on_epoch_end, on_batch_end=on_batch_end),
            augment=False if no_augment else None,
            prompt_augment=False if no_prompt_augment else None,
            device=device,
            **params,
        )
    finally:
        progress.stop()
    if result.rank != 0:  # under torchrun: rank 0 reports for all
        return
    console.print(
        f"[green]model saved to {result.model_path}[/green] (best epoch {result.best_epoch})"
    )
    (wh, ww), (ih, iw) = result.model.window_size, result.model.model_config.input_size
    console.print(f"window (subimage) {wh}x{ww} px -> network input {ih}x{iw} px")
    console.print(f"training curve: {result.history_png}  history: {result.history_csv}")


# `propagate` lives in its own module; imported here so that --help lists it after `train`.
from . import cli_propagate  # noqa: E402, F401


@app.command()
def notebook(
    output: Annotated[Path, typer.Option("-o", "--output", help="notebook to write")] = Path(
        "train_rescunet.ipynb"
    ),
    training_zip: Annotated[
        Optional[str], typer.Option(help="training-set zip uploaded next to the notebook")
    ] = None,
    drive_path: Annotated[
        Optional[str], typer.Option(help="training set on Google Drive (folder or zip)")
    ] = None,
    test_movie: Annotated[
        Optional[str], typer.Option(help="optional test movie to propagate after training")
    ] = None,
    test_rois: Annotated[
        Optional[str], typer.Option(help="seed RoiSet.zip for the test movie")
    ] = None,
    package_spec: Annotated[
        Optional[str],
        typer.Option(
            help="what the notebook pip-installs instead of the embedded wheel: an index version "
            "(rescunet-ij==0.1.0), a git URL or a path (nothing is embedded then)"
        ),
    ] = None,
    embed: Annotated[
        bool,
        typer.Option(
            "--embed/--no-embed",
            help="embed this rescunet-ij as a wheel in the notebook (a few hundred kB), so it "
            "installs without a package index; --no-embed: pip-install rescunet-ij==<this "
            "version> from an index",
        ),
    ] = True,
    input_size: InputSize = None,
    subimage_size: SubimageSize = None,
    learning_rate: LearningRate = None,
    batch_size: BatchSize = None,
    epochs: Epochs = None,
    concatenation_level: ConcatenationLevel = None,
    base_filters: BaseFilters = None,
    erosion_width: ErosionWidth = None,
    validation_fraction: ValidationFraction = None,
    patience: Patience = None,
    normalization: Normalization = None,
    seed: Seed = None,
    prompt_shift: PromptShift = None,
    overwrite: Overwrite = False,
) -> None:
    """Generate a Colab notebook that trains a ReSCU-Net on a GPU ("generate training notebook")."""
    params = _training_params(locals())
    from . import api
    from .notebook import write_training_notebook

    if training_zip is not None and drive_path is not None:
        raise typer.BadParameter("use either --training-zip or --drive-path, not both")
    cfg = api.train_config(**params)
    out = write_training_notebook(
        output,
        config=cfg,
        training_zip=None if drive_path else (training_zip or "testtrain.zip"),
        drive_path=drive_path,
        test_movie=test_movie,
        test_rois=test_rois,
        package_spec=package_spec,
        embed_wheel=None if embed else False,
        overwrite=overwrite,
    )
    console = _console()
    console.print(
        f"[green]wrote {out}[/green]: upload it with your testtrain.zip to Colab "
        "(File > Upload notebook), pick a GPU runtime and run all cells"
    )
    if package_spec is None and embed:
        console.print(
            f"it installs rescunet-ij {__version__} from the wheel embedded in it "
            "(no package index needed)",
            highlight=False,
        )
    else:
        console.print(
            f"it pip-installs {package_spec or f'rescunet-ij=={__version__}'}", highlight=False
        )


@app.command()
def info(model: Annotated[Path, typer.Argument(help="model file")]) -> None:
    """Show what a model file holds (architecture, training settings, best epoch)."""
    from . import api

    m = api.load_model(model)
    c = _console()
    c.print(f"[bold]{model}[/bold]  (written by rescunet-ij {m.package_version})")
    c.print(f"architecture: {m.model_config.model_dump()}")
    c.print(f"normalisation: {m.normalization.model_dump()}")
    c.print(f"window (subimage) size: {tuple(m.window_size)}, erosion width: {m.erosion_width}")
    if m.history:
        best = min(
            m.history,
            key=lambda h: h.get("val_loss") if h.get("val_loss") is not None else h["train_loss"],
        )
        c.print(f"trained {len(m.history)} epochs; best epoch {best.get('epoch')}: {best}")
    for i, step in enumerate(m.extra.get("lineage") or [], start=1):  # api.finetune's records
        c.print(
            f"fine-tuning {i}: from {step.get('parent')} (weights sha256 "
            f"{step.get('parent_weights_sha256')}) on {step.get('corrections')} correction(s), "
            f"frame(s) {', '.join(str(f + 1) for f in step.get('frames', []))}; "
            f"{step.get('replay_samples')} replayed sample(s), {step.get('epochs')} epochs at lr "
            f"{step.get('learning_rate')}",
            highlight=False,
        )


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="folder for the demo's files")
    ] = Path("rescunet_demo"),
    epochs: Annotated[int, typer.Option(help="training epochs")] = 12,
    device: Annotated[str, typer.Option(help="auto|cpu|cuda|mps")] = "auto",
    overwrite: Overwrite = False,
) -> None:
    """Run the whole path on bundled synthetic data: training set, training, propagation, images."""
    from .demo import run_demo

    run_demo(output, epochs=epochs, device=device, overwrite=overwrite, console=_console())


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="address to listen on; other than 127.0.0.1 needs a token")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0: any free port, printed at start)")] = 8765,
    device: DeviceOpt = "auto",
    models_dir: Annotated[
        Optional[Path],
        typer.Option(help="trained and uploaded models (default ~/rescunet-ij/models)"),
    ] = None,
    token_file: Annotated[
        Optional[Path],
        typer.Option(help="file holding the access token (or set $RESCUNET_IJ_TOKEN)"),
    ] = None,
    max_models: Annotated[int, typer.Option(help="models kept loaded (warm)")] = 4,
    max_body_mb: Annotated[float, typer.Option(help="largest request body accepted")] = 2048,
    request_timeout: Annotated[
        float, typer.Option(help="seconds a request may wait for and use the device")
    ] = 600,
) -> None:
    """Serve the engine over HTTP: one warm model, one device, any client (Fiji, scripts)."""
    from .service import serve as _serve
    from .service.settings import make_settings

    settings = make_settings(
        token_file=token_file,
        host=host,
        port=port,
        device=device,
        models_dir=models_dir,
        max_models=max_models,
        max_body_mb=max_body_mb,
        request_timeout_s=request_timeout,
    )
    console = _console()
    auth = "token required" if settings.token is not None else "no token (this machine only)"
    console.print(f"models folder: {settings.models_dir}; device: {device}; {auth}")

    def announce(line: str) -> None:
        print(line, flush=True)  # one plain line that clients and scripts can wait for

    _serve(settings, announce=announce)


@app.command("install-fiji")
def install_fiji(
    fiji: Annotated[Path, typer.Argument(help="the Fiji.app folder, e.g. ~/Fiji.app")],
    url: Annotated[
        Optional[str],
        typer.Option(
            help="the service's address the Fiji commands use (ImageJ preference rescunet.url; "
            "default: keep the one set, else http://127.0.0.1:8765)"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print what would be copied and set; write nothing")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace installed files that differ")
    ] = False,
) -> None:
    """Install the ReSCU-Net commands and macros into Fiji, set up for this Python environment."""
    from . import fiji_install

    result = fiji_install.install(fiji, url=url, dry_run=dry_run, overwrite=overwrite)
    print(fiji_install.report(result))


@app.command()
def doctor() -> None:
    """Report the environment (Python, torch, CUDA, Java, ImageJ, display) to help with problems."""
    from .doctor import report

    print(report())


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


# Commands defined in their own modules register themselves on `app` when imported (here,
# after `app` and the shared options exist).
from . import (  # noqa: E402, F401
    cli_batch,
    cli_bioimageio,
    cli_finetune,
    cli_interop,
)


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
    _console().print(f"[yellow]warning:[/yellow] {message}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code.

    0: done. 1: a bug in rescunet-ij (the traceback is shown, with how to report it). 2: bad
    usage or a problem with the input, the outputs or the machine, explained in one message
    without a traceback. 130/143: interrupted by Ctrl-C/SIGTERM; outputs are written
    atomically, so nothing half-written is left, and an interrupted training saves its best
    weights so far and says where.
    """
    warnings.showwarning = _show_warning
    # Exit fast: the last garbage collection at interpreter exit walks every object torch and the
    # other libraries made (0.3-1 s on 2 cores); the operating system frees the memory anyway.
    # Only for the command (outputs are closed explicitly before), not for importers of this module.
    atexit.register(gc.freeze)
    args = list(sys.argv[1:] if argv is None else argv)
    cli_status.WRITTEN.clear()
    try:
        # standalone mode: typer/click print usage errors themselves and exit with SystemExit(2).
        app(args=argv, prog_name="rescunet-ij", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        code = code if isinstance(code, int) else (0 if code is None else 1)
        status = cli_status.status_file_of(args)
        if code != 0 and status is not None and str(status) not in cli_status.WRITTEN:
            # the command line was refused before propagate started
            cli_status.write_status(
                status,
                ok=False,
                code=code,
                error=f"rescunet-ij refused the command line (exit status {code}); run it in "
                "a terminal to see why: " + " ".join(args),
                console=_console(),
            )
        return code
    except RescunetError as exc:
        interrupted = exc.exit_code in (130, 143)  # Ctrl-C / SIGTERM, e.g. while training
        label = "[yellow]interrupted:[/yellow]" if interrupted else "[red]error:[/red]"
        _console().print(f"{label} {exc}", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        _console().print(
            "interrupted; outputs are written atomically, so nothing half-written was left"
        )
        return 130
    except MemoryError:
        _console().print(f"[red]error:[/red] {cli_status.MEMORY_MESSAGE}", highlight=False)
        return 2
    except OSError as exc:  # a file we read or wrote that the system refused (not a bug)
        _console().print(f"[red]error:[/red] {cli_status.os_error_message(exc)}", highlight=False)
        return 2
    except Exception:  # a bug: show it, and how to report it
        import traceback

        traceback.print_exc()
        _console().print(
            f"[red]This is a bug in rescunet-ij {__version__}.[/red] Please report it with the "
            "command you ran, the text above and the output of 'rescunet-ij doctor'.",
            highlight=False,
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
