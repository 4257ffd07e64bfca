"""One loop (and one advance) per workspace: an exclusive `flock` held for a whole loop run.

`workspace_lock()` takes `.dvc/tmp/sharpen-loop.lock` for a loop run (sharpen/rounds/advance.py
takes `.dvc/tmp/sharpen-advance.lock` the same way); a second loop on the same workspace is refused
with the holder's pid. DVC's own lock is per `dvc` process, so two loops would otherwise
interleave their stages.

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
