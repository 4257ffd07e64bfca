"""After a job without namespaces: remove whatever the slot's uids left behind.

With per-job namespaces a job's processes die with its PID namespace and its files with its
tmpfs mounts. Without them (the rlimits fallback where the kernel refuses namespaces),
`job_cleanup` empties the slot's working directories and, as root (the slot has uids of its
own), kills the slot uids' processes, removes their System V IPC objects and their files in every
world-writable directory the host listed (`sharpen.sandbox.slots.world_writable_dirs`).

Standard library only, run inside the zygote by the job's supervisor (`supervisor.py`).
Not run on its own; tested by `pytest tests/test_sandbox.py` (its `rlimits-no-namespaces` mode).
"""

from __future__ import annotations

import os
import shutil
import signal
import time

from .confine import libc


def _uid_processes(uids: set[int]) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid in uids:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def job_cleanup(job: dict) -> None:
    """Kill the slot uids' processes, remove their System V IPC objects and their files in every
    world-writable directory (as root only: otherwise the uid is the user's own)."""
    for workdir in (job["workdir"], job["tests_workdir"]):  # the slot's own directories: emptied every time
        for entry in os.listdir(workdir):
            path = os.path.join(workdir, entry)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
    uids = {u for u in (job.get("uid", -1), job.get("tests_uid", -1)) if u >= 0}
    if not uids:
        return
    for _ in range(50):
        pids = _uid_processes(uids)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.005)
    _remove_ipc(uids)
    for directory in job.get("writable_dirs", []):
        _remove_owned(directory, uids)


def _remove_ipc(uids: set[int]) -> None:
    for kind, rm in (("shm", lambda i: libc.shmctl(i, 0, None)), ("sem", lambda i: libc.semctl(i, 0, 0)),
                     ("msg", lambda i: libc.msgctl(i, 0, None))):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                header, *lines = f.read().splitlines()
        except OSError:
            continue
        cols = header.split()
        for line in lines:
            fields = dict(zip(cols, line.split()))
            if int(fields.get("uid", -1)) in uids or int(fields.get("cuid", -1)) in uids:
                rm(int(fields.get("shmid") or fields.get("semid") or fields.get("msqid")))  # IPC_RMID = 0


def _remove_owned(directory: str, uids: set[int]) -> None:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat(follow_symlinks=False).st_uid not in uids:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass
