"""``rescunet-ij import-pyjamas``: keep a model trained in PyJAMAS, opened without running code.

A thin shell over :func:`rescunet_ij.api.import_pyjamas`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli import Overwrite, _console, app


@app.command("import-pyjamas")
def import_pyjamas(
    cfr: Annotated[
        Path, typer.Argument(help="PyJAMAS ReSCU-Net model (.cfr, e.g. ckpt_final.cfr)")
    ],
    output: Annotated[
        Optional[Path],
        typer.Option(
            "-o", "--output", help="rescunet-ij model file to write (default: CFR.rescunet)"
        ),
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Convert a PyJAMAS ReSCU-Net (.cfr) into a rescunet-ij model file, safely.

    The .cfr is a pickle: it is read by a restricted reader that builds only numpy arrays and
    plain data, and anything else in it is refused without being run.
    """
    from . import api

    out = output if output is not None else cfr.with_suffix(".rescunet")
    model = api.import_pyjamas(cfr, out, overwrite=overwrite)
    info = model.extra["imported_from"]
    m, n = model.model_config, model.normalization
    level = f"{m.concatenation_level}" + (
        " (not stored in the file; found by fitting the weights)"
        if info["concatenation_level_inferred"]
        else ""
    )
    console = _console()
    console.print(
        f"PyJAMAS ReSCU-Net {cfr} (sha256 {info['sha256'][:16]}...): input "
        f"{m.input_size[0]}x{m.input_size[1]}, base filters {m.base_filters}, concatenation "
        f"level {level}, images divided by {n.max_value:g}, erosion width "
        f"{model.erosion_width}",
        highlight=False,
    )
    console.print(f"[green]wrote {model.path}[/green]")
