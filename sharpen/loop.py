"""What the continuous loop decides between rounds: one loop per workspace, and when to stop.

- `workspace_lock()`: an exclusive `flock` on `.dvc/tmp/sharpen-loop.lock`, held for a whole
  loop run; a second loop on the same workspace is refused with the holder's pid. (DVC's own
  lock is per `dvc` process, so two loops would otherwise interleave their stages.)
- `stop_reason()`: the stopping rules from `loop` params: max rounds, plateau, wall-clock
  budget, and a rejected gate with `on_reject: stop`.
- `record_stop()`: appends the loop run's outcome to `.sharpen/loops.jsonl`.

Used by `flows/loop.py`; the flow only sequences.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sharpen.errors import SharpenError
from sharpen.params import LoopParams

LOCK_FILE = Path(".dvc/tmp/sharpen-loop.lock")
LOOPS_LOG = Path(".sharpen/loops.jsonl")


class LoopBusy(SharpenError, RuntimeError):
    """Another sharpen loop holds this workspace."""


_held: set[Path] = set()


@contextmanager
def workspace_lock(path: Path = LOCK_FILE, what: str = "sharpen loop") -> Iterator[None]:
    """Hold an exclusive flock on `path`; LoopBusy (naming `what` and the holder's pid) if taken.

    Re-entrant within one process: the CLI takes the loop lock before Prefect starts a flow run
    (so a refusal is one clean line), and the flow, which also runs alone under `serve`, takes it again.
    """
    key = path.resolve()
    if key in _held:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise LoopBusy(
                f"another {what} is running in this workspace (pid {holder}, lock {path}); "
                "wait for it, or stop it, before starting another"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
    finally:
        os.close(fd)  # closing releases the flock


def plateaued(values: list[float], *, min_delta: float, patience: int) -> bool:
    """True when none of the last `patience` values beat the best before them by more than `min_delta`.

    `values[0]` is the starting policy's value, then one per round.

    >>> plateaued([0.3, 0.4, 0.41, 0.40], min_delta=0.02, patience=2)
    True
    >>> plateaued([0.3, 0.4, 0.45, 0.40], min_delta=0.02, patience=2)
    False
    """
    if len(values) <= patience:
        return False
    return max(values[-patience:]) <= max(values[:-patience]) + min_delta


def stop_reason(
    params: LoopParams, *, rounds_done: int, max_rounds: int, values: list[float], rejected: bool, elapsed_s: float,
    collapsed: str | None = None,
) -> str | None:
    """Why the loop should stop after this round, or None to go on. `collapsed`: the gate's reason when
    it rejected the round by the collapse rule; a collapsing run stops whatever `on_reject` says."""
    if collapsed:
        return collapsed
    if rejected and params.on_reject == "stop":
        return "gate rejected the round (loop.on_reject: stop)"
    if params.plateau and plateaued(values, min_delta=params.plateau.min_delta, patience=params.plateau.patience):
        p = params.plateau
        return f"plateau: {p.metric} did not improve by more than {p.min_delta} for {p.patience} rounds"
    if params.budget_s is not None and elapsed_s >= params.budget_s:
        return f"wall-clock budget spent ({elapsed_s:.0f}s >= {params.budget_s:.0f}s)"
    if rounds_done >= max_rounds:
        return f"max rounds reached ({max_rounds})"
    return None


def record_stop(entry: dict, path: Path = LOOPS_LOG) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry | {"ended_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
