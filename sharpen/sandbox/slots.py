"""The host's bookkeeping for the sandbox's parallel slots: their uids, and where they may write.

As root each parallel slot runs its program as its own unprivileged uid, SLOT_UID_BASE + 2i, and
its tests as the next one. `claim_slot_uids` takes the first pair no sandbox on this machine
holds (an exclusive flock on a lock file under /run/sharpen-sandbox, kept until the slot
closes), so no two sandboxes share a uid, whatever process runs them; `held_slot_uids` lists
the pairs held now. `world_writable_dirs` lists where a slot uid could leave files when a job has
no namespaces of its own (the zygote empties them after each job: `cleanup.py`).

Not run on its own; tested by `pytest tests/test_sandbox.py` and
`pytest -m reliability tests/reliability/test_sandbox_escape.py`.
"""

from __future__ import annotations

import functools
import os
import stat
import tempfile
from pathlib import Path

from sharpen.sandbox.jobs import SandboxError

SLOT_UID_BASE = 62000  # root only: a slot's program runs as SLOT_UID_BASE + 2i, its tests as + 2i + 1
SLOT_UID_PAIRS = 4096  # how many slots may run at once on one machine, across all processes
SLOT_LOCK_DIR = Path("/run/sharpen-sandbox")  # root only: one lock file per uid pair in use


@functools.cache
def world_writable_dirs() -> tuple[str, ...]:
    """Every directory anyone may write to (rlimits mode without namespaces: where a slot uid can
    leave files). Walks the filesystem once per process, skipping /proc and /sys and never
    entering a directory others cannot pass through."""
    found: list[str] = []

    def walk(directory: str) -> None:
        try:
            entries = os.scandir(directory)
        except OSError:
            return
        with entries:
            for entry in entries:
                try:
                    if entry.path in ("/proc", "/sys") or not entry.is_dir(follow_symlinks=False):
                        continue
                    mode = entry.stat(follow_symlinks=False).st_mode
                except OSError:
                    continue
                if mode & stat.S_IWOTH:
                    found.append(entry.path)
                if mode & stat.S_IXOTH:
                    walk(entry.path)

    walk("/")
    return tuple(found)


def _slot_lock_dir() -> Path:
    """A root-owned directory no slot uid can write (/run; else the temp dir, made private)."""
    for directory in (SLOT_LOCK_DIR, Path(tempfile.gettempdir()) / "sharpen-sandbox-slots"):
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
            info = directory.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and not info.st_mode & 0o077:
            return directory
    raise SandboxError(f"sandbox: no root-owned private directory to claim slot uids in ({SLOT_LOCK_DIR})")


def claim_slot_uids() -> tuple[int, int]:
    """Root only: the first uid pair no other sandbox on this machine holds, and the open lock file
    that holds it (an exclusive flock, released when it is closed or the process dies). Two
    processes must never share a slot uid: after each job a slot's uid processes are killed and
    its process limit is per uid, so a shared uid would kill or starve the other's program."""
    import fcntl

    directory = _slot_lock_dir()
    for pair in range(SLOT_UID_PAIRS):
        uid = SLOT_UID_BASE + 2 * pair
        fd = os.open(directory / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return uid, fd
    raise SandboxError(f"sandbox: all {SLOT_UID_PAIRS} slot uid pairs are in use on this machine")


def held_slot_uids() -> set[int]:
    """Root only: the program uids of the slots some sandbox on this machine holds now (its tests
    run as uid + 1). Any other slot uid should have nothing running and nothing left on disk."""
    import fcntl

    held = set()
    for lock in _slot_lock_dir().glob("*.lock"):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.add(int(lock.stem))
        finally:
            os.close(fd)  # releases the lock if it was taken
    return held


def count_processes(uid: int) -> int:
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                n += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return n
