"""Run a pipeline command (e.g. `dvc repro generate`) in its own process group, streaming its output.

A stage runs as its own session and process group, so a timeout, a cancel or a SIGTERM to the
loop kills the stage and everything it started (DVC, the Python stage, its workers), not just
the process we spawned: a thread or an in-process DVC call would leave the stage running.

A loop killed outright (SIGKILL, a crash) cannot kill its stage; the stage's process group is
recorded in `.dvc/tmp/sharpen-stage-groups` while it runs, and the next loop in this workspace
kills whatever of those groups is still running here (`reap_orphans`) before it starts.

`stop_on_signals` makes Ctrl-C (SIGINT, which also reaches Prefect's temporary server) and
SIGTERM stop a loop in seconds: kill the running stage, drop DVC's read/write locks that the
killed `dvc repro` held, record the stop, say in one line what stopped and how to resume, exit.
Without it the flow engine waited minutes on an API that was already gone.

Used by the Prefect flow (`flows/loop.py`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sharpen.errors import SharpenError
from sharpen.backends.engines import ENGINES_ENV
from sharpen.rounds.lock import LOOP_ENV

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


class StageTimeout(SharpenError, RuntimeError):
    """The command ran past its timeout; its whole process group was killed."""


# what `dvc repro` prints around a stage's own output: kept in the stage's log file, not on screen
_DVC_CHATTER = ("ERROR: failed to reproduce", "Running stage '", "> ", "Updating lock file", "To track the changes with git", "git add ",
                "To enable auto staging", "dvc config core.autostage", "Use `dvc push`", "Data and pipelines are up to date",
                "Stage '", "Verifying data sources in stage", "Verifying outputs in stage")


def dvc_chatter(line: str) -> bool:
    """True for DVC's own lines around a stage (its command echo, lock updates, git-add hints)."""
    line = line.strip()
    return line.startswith(_DVC_CHATTER) or line.endswith("didn't change, skipping")


_PROGRESS = re.compile(r"\d+%\|")  # a tqdm bar: "train:  37%|███▋      | 94/252 [...]"
PROGRESS_EVERY_S = 10.0


def _progress_throttle() -> Callable[[str], bool]:
    """Whether to show a line: a progress bar's redraw every PROGRESS_EVERY_S and at 100%, every other line."""
    last = [-PROGRESS_EVERY_S]

    def show(line: str) -> bool:
        if not _PROGRESS.search(line) or "100%|" in line:
            return True
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY_S:
            return False
        last[0] = now
        return True

    return show


VERBOSE_ENV = "SHARPEN_VERBOSE"  # "1": `repro` shows DVC's chatter too (`python -m flows.loop -v`)
STAGE_LOGS = Path(".sharpen/logs")
ENGINES = Path(".sharpen/engines")  # the loop's vLLM engines (sharpen/backends/engines.py)


class StageFailed(SharpenError):
    """`dvc repro STAGE` exited non-zero; the message carries the stage's own `error:` line."""


def repro(stage: str, round_: int, show: Callable[[str], None], *, timeout_s: float | None = None) -> None:
    """`dvc repro --single-item STAGE` in its own process group: the loop runs every stage of dvc.yaml in
    order, so a stage's upstream has just run, and DVC checks only this stage instead of the whole
    pipeline each time (a stage run alone after a params edit still refuses: sharpen/config.py
    check_resolved). Every output line goes to
    .sharpen/logs/round-N/STAGE.log; `show` gets the stage's own lines (summary, warnings, errors,
    a progress bar every 10 s and at 100%), and everything when SHARPEN_VERBOSE=1. A failure raises StageFailed naming the
    stage's first `error:` line and the log file."""
    verbose = os.environ.get(VERBOSE_ENV) == "1"
    log_path = STAGE_LOGS / f"round-{round_}" / f"{stage}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    worth_showing = _progress_throttle()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"--- dvc repro {stage} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")

        def on_line(line: str) -> None:
            log.write(line + "\n")
            log.flush()
            if line.startswith(("error:", "ERROR:")):
                errors.append(line)
            line = line.rsplit("\r", 1)[-1]  # a progress bar: its latest redraw
            if verbose or (not dvc_chatter(line) and worth_showing(line)):
                show(line)

        # its stages pass refuse_outside_loop (by-hand ones do not) and share the loop's vLLM engines
        env = os.environ | {LOOP_ENV: str(os.getpid()), ENGINES_ENV: str(ENGINES.resolve())}
        deadline = time.monotonic() + DVC_LOCK_WAIT_S
        while True:
            errors.clear()
            rc = run_command(["dvc", "repro", "--single-item", stage], on_line=on_line, timeout_s=timeout_s, env=env)
            if rc == 0 or not any(dvc_lock_busy(e) for e in errors) or time.monotonic() >= deadline:
                break
            show(f"{stage}: DVC's lock is held by another dvc command in this workspace; waiting for it")
            time.sleep(DVC_LOCK_POLL_S)
    if rc != 0:
        if any(dvc_lock_busy(e) for e in errors):
            raise StageFailed(
                f"stage {stage} of round {round_} did not start: another dvc command in this workspace (a `dvc repro` "
                f"run by hand?) held DVC's lock for {DVC_LOCK_WAIT_S:.0f}s; nothing of the round was lost. Let it "
                f"finish, then resume the loop (its output: {log_path})")
        why = errors[0].removeprefix("error:").strip() if errors else f"exited {rc}"
        raise StageFailed(f"stage {stage} of round {round_} failed: {why} (its output: {log_path})")


DVC_LOCK_WAIT_S = 120.0  # how long a stage waits on DVC's lock held by another dvc command before failing
DVC_LOCK_POLL_S = 2.0


def dvc_lock_busy(line: str) -> bool:
    """Whether DVC's error line says another dvc process holds its repo lock or a path's read/write lock."""
    return "Unable to acquire lock" in line or "is busy, it is being blocked by" in line or "being blocked by" in line


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


DVC_RWLOCK = Path(".dvc/tmp/rwlock")


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def release_dead_dvc_locks(path: Path = DVC_RWLOCK) -> int:
    """Remove the entries of processes no longer alive from DVC's rwlock file (what DVC itself does,
    with a warning, on the next command); return how many were removed."""
    import json

    try:
        lock = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0
    removed = 0
    write = {}
    for out, info in (lock.get("write") or {}).items():
        if _dead(int(info.get("pid", 0))):
            removed += 1
        else:
            write[out] = info
    read = {}
    for out, infos in (lock.get("read") or {}).items():
        alive = [i for i in infos if not _dead(int(i.get("pid", 0)))]
        removed += len(infos) - len(alive)
        if alive:
            read[out] = alive
    if removed:
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"write": write, "read": read}))
        os.replace(tmp, path)
    return removed


def stop_on_signals(on_stop: Callable[[str], None]) -> None:
    """On SIGINT or SIGTERM: kill the running stage's process group, release the DVC locks it held,
    call `on_stop(signal name)` (record and report), end every other child (Prefect's temporary
    server), and exit with 128 + the signal number. Only for a loop run in the foreground: a served
    deployment keeps Prefect's own SIGTERM handling, which reports a runner's cancel."""

    def handler(signum, _frame) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C does not interrupt the cleanup
        groups = list(_live_groups)
        kill_live_groups()
        for pgid in groups:
            _record_group(pgid, running=False)
        _reap_children()
        release_dead_dvc_locks()
        try:
            on_stop(signal.Signals(signum).name)
        finally:
            _end_children()
            os._exit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _end_children(grace_s: float = 2.0) -> None:
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass
