"""Training on several processes or GPUs of one machine (torchrun + DistributedDataParallel)."""

from __future__ import annotations

from collections.abc import Sequence


def launch_training(worker_args: Sequence[str], nproc_per_node: int) -> int:
    """Run ``rescunet-ij <worker_args>`` in ``nproc_per_node`` processes under torchrun.

    The same as ``torchrun --standalone --nproc-per-node N -m rescunet_ij <worker_args>``: one
    machine, a free rendezvous port, every process training one DistributedDataParallel network
    (one GPU each, or CPU processes with gloo); rank 0 writes the model. Scripts that call
    :func:`train` can be started with ``torchrun`` directly instead: ``train`` detects it.

    Parameters
    ----------
    worker_args
        The command line of every worker after ``rescunet-ij``, e.g.
        ``["train", "training_set/", "-o", "model.rescunet", "--epochs", "50"]``.
    nproc_per_node
        The number of processes: at most one per GPU.

    Returns
    -------
    int
        The exit status: 0, a failed worker's status, or 128 + signal after Ctrl-C / SIGTERM.

    Raises
    ------
    ConfigError
        If ``nproc_per_node`` is below 1 or this process already runs under torchrun.
    """
    from ..train.distributed import launch

    return launch(list(worker_args), int(nproc_per_node))
