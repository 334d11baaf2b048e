"""``rescunet-ij export-bioimageio``: share a model as a BioImage.IO model package.

A thin shell over :func:`rescunet_ij.api.export_bioimageio`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli import Overwrite, _console, app


@app.command("export-bioimageio")
def export_bioimageio(
    model: Annotated[Path, typer.Argument(help="model file (.rescunet)")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="the BioImage.IO package to write (.zip)")
    ],
    single_input: Annotated[
        bool,
        typer.Option(
            "--single-input",
            help="one input tensor (image channels, then the prompt) instead of two: the "
            "layout deepImageJ runs",
        ),
    ] = False,
    weights: Annotated[
        Optional[list[str]],
        typer.Option(
            "--weights",
            help="weight format, repeatable: torchscript and/or onnx (default: both)",
        ),
    ] = None,
    name: Annotated[
        Optional[str], typer.Option(help="package name (default: ReSCU-Net <model file>)")
    ] = None,
    author: Annotated[
        Optional[list[str]],
        typer.Option("--author", help="who trained the model, repeatable (give yours)"),
    ] = None,
    license: Annotated[
        str, typer.Option("--license", help="SPDX licence of the weights")
    ] = "CC-BY-4.0",
    tag: Annotated[
        Optional[list[str]],
        typer.Option("--tag", help="extra tag, repeatable (e.g. fluorescence-light-microscopy)"),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="run bioimageio.core's model test before the package is written",
        ),
    ] = True,
    overwrite: Overwrite = False,
) -> None:
    """Write a model as a BioImage.IO model package (TorchScript/ONNX, test tensors, README)."""
    from . import api

    console = _console()
    with console.status("exporting and checking the package..."):
        result = api.export_bioimageio(
            model,
            output,
            single_input=single_input,
            weight_formats=weights or ("torchscript", "onnx"),
            name=name,
            authors=author,
            license=license,
            tags=tag or (),
            check=check,
            overwrite=overwrite,
        )
    console.print(
        f"[green]wrote {result.path}[/green] ({', '.join(result.weight_formats)} weights; "
        f"inputs: {', '.join(result.inputs)}; bioimageio.core check: {result.status})"
    )
