"""Training on several processes: the train stage relaunches itself under torchrun (DDP).

`train.processes: N` (N > 1) makes `python -m stages.train ...` run `torchrun --standalone
--nproc_per_node N -m stages.train ...` with the same arguments. Every process trains (the
Trainer wraps the model in DistributedDataParallel: NCCL on GPUs, gloo on CPU); process 0 alone
writes the stage's outputs, the checkpoints and the log lines. `train.batch_size` stays the
global batch: each process takes batch_size / N of it, so one optimizer step sees the same
examples as on one process (the Trainer's data loader hands consecutive per-process batches to
the processes in turn).

For several machines, run torchrun (or `accelerate launch`) yourself with `--nnodes`/`--rdzv-*`
around `python -m stages.train` and the same `train.processes` per node; sharpen only checks
that a node has that many devices (GPUs, or CPU cores without one).

Run: set `train: {processes: 2}` in params.yaml, then `dvc repro train`.
"""

from __future__ import annotations

import os
import subprocess
import sys

from sharpen.errors import SharpenError
from sharpen.threads import child_env


class ProcessesError(SharpenError, ValueError):
    """`train.processes` does not fit this machine."""


def world() -> tuple[int, int]:
    """(this process's rank, the number of processes): (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return world()[0] == 0


def under_launcher() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def devices() -> tuple[int, str]:
    """(how many training processes this machine can hold, what they are): GPUs, else CPU cores."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.device_count(), "GPUs"
    try:
        return len(os.sched_getaffinity(0)), "CPU cores (no GPU)"
    except AttributeError:  # not Linux
        return os.cpu_count() or 1, "CPU cores (no GPU)"


def check_processes(n: int) -> None:
    have, what = devices()
    if n > have:
        raise ProcessesError(f"train.processes: {n} processes, but this machine has {have} {what}; "
                             f"set train.processes to at most {have}")


def relaunch(n: int, module: str, argv: list[str]) -> int:
    """Run `python -m module argv` as n torchrun processes on this machine; their exit code."""
    check_processes(n)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", module, *argv]
    env = child_env(n)  # each process's torch threads: its share of the CPUs (sharpen/threads.py)
    return subprocess.run(cmd, env=env).returncode


def quiet_other_ranks() -> None:
    """Processes other than 0 print nothing to stdout (their errors still reach stderr)."""
    if not is_main_process():
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- for the life of the process


def distributed_args() -> dict:
    """TrainingArguments for DDP: the backend (NCCL on GPUs, gloo on CPU); none outside torchrun. The per-device
    batch is set by trainer.trainer_args."""
    import torch

    _, size = world()
    if size == 1:
        return {}
    return {"ddp_backend": "nccl" if torch.cuda.is_available() else "gloo"}
