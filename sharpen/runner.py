"""Run a pipeline command (e.g. `dvc repro generate`) in its own process group, streaming its output.

A stage runs as its own session and process group, so a timeout, a cancel or a SIGTERM to the
loop kills the stage and everything it started (DVC, the Python stage, its workers), not just
the process we spawned: a thread or an in-process DVC call would leave the stage running.

A loop killed outright (SIGKILL, a crash) cannot kill its stage; the stage's process group is
recorded in `.dvc/tmp/sharpen-stage-groups` while it runs, and the next loop in this workspace
kills whatever of those groups is still running here (`reap_orphans`) before it starts.

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
GROUPS_FILE = Path(".dvc/tmp/sharpen-stage-groups")


def _record_group(pgid: int, running: bool) -> None:
    try:
        known = set(GROUPS_FILE.read_text().split()) if GROUPS_FILE.exists() else set()
    except OSError:
        known = set()
    (known.add if running else known.discard)(str(pgid))
    GROUPS_FILE.parent.mkdir(parents=True, exist_ok=True)
    GROUPS_FILE.write_text("".join(f"{g}\n" for g in sorted(known)))


def _processes_in_group(pgid: int, cwd: Path) -> list[int]:
    """Live processes of group `pgid` whose working directory is `cwd` (so a reused id is left alone)."""
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) == pgid and Path(os.readlink(f"/proc/{entry}/cwd")) == cwd:
                found.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return found


def reap_orphans() -> list[int]:
    """Kill the stage processes a killed loop left running in this workspace; return their pids."""
    if not GROUPS_FILE.exists():
        return []
    cwd = Path.cwd().resolve()
    killed = []
    for pgid in {int(g) for g in GROUPS_FILE.read_text().split() if g.isdigit()}:
        for pid in _processes_in_group(pgid, cwd):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        _record_group(pgid, running=False)
    return killed


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
    _record_group(proc.pid, running=True)

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
    _record_group(proc.pid, running=False)
    return rc
