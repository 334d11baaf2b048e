"""Is there a GPU? Training on a CPU works, but takes hours instead of minutes."""

import shutil
import subprocess

# Names this cell takes from the cells above (a notebook's variables live in its `__main__`).
from __main__ import ALLOW_CPU, TEST_MODE


def find_gpu():
    """The name of this runtime's CUDA GPU, or None."""
    try:
        import torch
    except ImportError:  # not installed yet: ask the driver directly
        torch = None
    if torch is not None:
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    if shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    return None


GPU_NAME = find_gpu()
if GPU_NAME:
    print(f"GPU runtime: {GPU_NAME}")
elif TEST_MODE or ALLOW_CPU:
    why = "test mode" if TEST_MODE else "ALLOW_CPU is ticked"
    print(f"No GPU found; training on the CPU ({why}). This is slow for real training sets.")
else:
    raise RuntimeError(
        "This runtime has no GPU, and training on a CPU would take a very long time.\n"
        "Switch to a GPU: Runtime > Change runtime type > Hardware accelerator: GPU (e.g. T4) > "
        "Save,\nthen run the notebook again from the top (Runtime > Run all). Files you uploaded "
        "are lost when\nthe runtime changes: upload them again.\n"
        "To train on the CPU anyway, tick ALLOW_CPU in the settings cell and run it again."
    )
