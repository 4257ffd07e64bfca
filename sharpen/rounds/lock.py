"""One loop (and one advance) per workspace: an exclusive `flock` held for a whole loop run.

`workspace_lock()` takes `.dvc/tmp/sharpen-loop.lock` for a loop run (sharpen/rounds/advance.py
takes `.dvc/tmp/sharpen-advance.lock` the same way); a second loop on the same workspace is refused
with the holder's pid. DVC's own lock is per `dvc` process, so two loops would otherwise
interleave their stages.

While a loop holds its lock, what would race it is refused (`refuse_outside_loop`): a stage started
by hand (`dvc repro`, `python -m stages.X`; sharpen/stage.py's run_stage asks), `sharpen advance`,
`new-loop` and `checkout`. The loop's own stages pass: its runner sets SHARPEN_LOOP_PID to the pid
holding the lock (sharpen/rounds/runner.py).

Used by `flows/loop.py` and `sharpen advance`.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sharpen.errors import SharpenError

LOCK_FILE = Path(".dvc/tmp/sharpen-loop.lock")


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


LOOP_ENV = "SHARPEN_LOOP_PID"  # set by the loop's runner for its own `dvc repro` children: the pid holding the lock


def loop_holder(path: Path = LOCK_FILE) -> str | None:
    """The pid of another process's loop holding this workspace's lock, or None (no loop, or this process's)."""
    if path.resolve() in _held:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no lock file: no loop ever ran here
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def refuse_outside_loop(what: str, path: Path = LOCK_FILE) -> None:
    """LoopBusy when a loop runs in this workspace and `what` is not one of its own stages: started by hand,
    it would race the loop (DVC's locks, the round's outputs, params.yaml) and kill it. Nothing is changed."""
    holder = loop_holder(path)
    if holder is None or os.environ.get(LOOP_ENV) == holder:
        return
    raise LoopBusy(
        f"{what}: a sharpen loop (pid {holder}, lock {path}) is running in this workspace and runs the round's stages "
        "and its advance itself; started by hand now, this would race it. Nothing was changed. Wait for the loop to "
        f"finish, or stop it first (Ctrl-C in its terminal, or `kill -INT {holder}`); it resumes where it stopped"
    )
