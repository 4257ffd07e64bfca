"""Run a pipeline command (e.g. `dvc repro generate`) in its own process group, streaming its output.

A stage runs as its own session and process group, so a timeout, a cancel or a SIGTERM to the
loop kills the stage and everything it started (DVC, the Python stage, its workers), not just
the process we spawned: a thread or an in-process DVC call would leave the stage running.

Used by the Prefect flow (`flows/loop.py`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_live_groups: set[int] = set()


class StageTimeout(RuntimeError):
    """The command ran past its timeout; its whole process group was killed."""


def kill_group(pgid: int, grace_s: float = 5.0) -> None:
    """SIGTERM the group, then SIGKILL whatever is left after `grace_s`."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_live_groups() -> None:
    """Kill every process group this process started and has not seen finish (SIGTERM/cancel path)."""
    for pgid in list(_live_groups):
        kill_group(pgid, grace_s=2.0)
        _live_groups.discard(pgid)


def run_command(
    cmd: Sequence[str],
    *,
    on_line: Callable[[str], None],
    timeout_s: float | None = None,
    cwd: Path | str | None = None,
    env: dict | None = None,
    grace_s: float = 5.0,
) -> int:
    """Run `cmd` in a new process group; feed each output line to `on_line`; return its exit code.

    On timeout, or if this call is interrupted (KeyboardInterrupt, SystemExit), the whole group
    is killed before the exception propagates.
    """
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True,
    )
    _live_groups.add(proc.pid)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # text mode: tqdm's '\r' redraws arrive as lines too
            if line.strip():
                on_line(line.rstrip())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid, grace_s)
        proc.wait()
        raise StageTimeout(f"{' '.join(cmd)} ran past {timeout_s}s; killed its process group") from None
    except BaseException:
        kill_group(proc.pid, grace_s)
        proc.wait()
        raise
    finally:
        reader.join(timeout=5)
        _live_groups.discard(proc.pid)
    kill_group(proc.pid, grace_s=0.5)  # stragglers the command left behind in its group
    return rc
