"""How many threads torch uses in a stage: the CPUs this process may use, shared by the workers that
run at once, so that no stage asks for more threads than there are CPUs for it.

- CPUs: the process's CPU affinity (`os.sched_getaffinity`, what `taskset` or a cpuset allows),
  capped by the cgroup's CPU quota (`/sys/fs/cgroup/cpu.max`, or cgroup v1's `cpu.cfs_quota_us`),
  which is what a container with `--cpus 2` on a 64-core host has. torch counts neither the quota
  nor its neighbours: it starts one thread per core it sees.
- Workers: processes sharing those CPUs, each running torch: `SHARPEN_WORKERS` (what `sharpen
  compare --jobs N` and `train.processes` set for their children), else pytest-xdist's worker count,
  else 1.
- Busy: CPUs other processes keep busy as the stage starts: the fewest runnable tasks besides this
  one over three reads of /proc/loadavg 30 ms apart (a passing task is not counted), scaled to this
  process's share of the machine's CPUs. A torch thread that has to wait for a CPU stalls all the
  others at every operation: on a loaded 2-core machine, two threads ran the demo's training 11x
  slower than one (BENCHMARKS.md).
- Threads: CPUs // workers, and no more than the CPUs not busy; at least 1. `SHARPEN_THREADS=N`
  overrides it (N >= 1). The embedded model computes the same bits on any thread count.

The stage applies it before any torch work (`sharpen.stage.run_stage` calls `apply`): it sets
OMP_NUM_THREADS and MKL_NUM_THREADS for a torch imported later, and torch.set_num_threads if torch
is already in. benchmarks/threads.py measures it against one thread and against torch's own default,
idle and under load (BENCHMARKS.md).

Run: `python -m sharpen.threads` prints the count and why.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from sharpen.errors import SharpenError

THREADS_ENV = "SHARPEN_THREADS"  # the user's override: threads per process
WORKERS_ENV = "SHARPEN_WORKERS"  # processes that run torch side by side on these CPUs (set by their parent)
CGROUP = Path("/sys/fs/cgroup")


class ThreadsError(SharpenError, ValueError):
    """SHARPEN_THREADS or SHARPEN_WORKERS is not a whole number >= 1."""


def threads_for(cpus: int, quota: float | None = None, workers: int = 1, busy: float = 0.0,
                override: int | None = None) -> int:
    """The torch threads per worker: `override` if given, else the usable CPUs (`cpus` capped by the cgroup
    `quota` in CPUs, rounded up) split evenly among `workers`, and no more than the usable CPUs other work
    does not keep `busy`; at least 1.

    >>> threads_for(16, quota=2.0), threads_for(8, workers=3), threads_for(2, busy=2), threads_for(8, override=1)
    (2, 2, 1, 1)
    """
    if override is not None:
        return override
    usable = min(cpus, math.ceil(quota)) if quota else cpus
    return max(1, min(usable // max(1, workers), usable - math.ceil(busy)))


def affinity_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cgroup_quota(root: Path = CGROUP) -> float | None:
    """The cgroup's CPU quota in CPUs (`cpu.max` "200000 100000" -> 2.0), or None where there is none."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int((root / "cpu/cpu.cfs_quota_us").read_text())
        period = int((root / "cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def busy_cpus(reads: int = 3, gap_s: float = 0.03, loadavg: Path = Path("/proc/loadavg")) -> float:
    """CPUs of this process's that other work keeps busy now: the fewest runnable tasks besides this one
    over `reads` reads of /proc/loadavg, times this process's share of the machine's CPUs; 0 where unknown."""
    import time

    fewest = None
    for i in range(reads):
        try:
            running = int(loadavg.read_text().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0.0
        fewest = running if fewest is None else min(fewest, running)
        if i + 1 < reads:
            time.sleep(gap_s)
    share = affinity_cpus() / max(affinity_cpus(), os.cpu_count() or 1)
    return max(0, fewest - 1) * share


def _whole(name: str, environ) -> int | None:
    text = environ.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ThreadsError(f"{name}={text!r}: give a whole number >= 1 (or unset it for the default)")
    return int(text)


def workers(environ=os.environ) -> int:
    """Processes running torch side by side: SHARPEN_WORKERS, else pytest-xdist's worker count, else 1."""
    return _whole(WORKERS_ENV, environ) or _whole("PYTEST_XDIST_WORKER_COUNT", environ) or 1


def torch_threads(environ=os.environ) -> int:
    """This process's torch thread count: the override, else the CPUs it may use split among the workers,
    less those busy with other work."""
    override = _whole(THREADS_ENV, environ)
    if override is not None:
        return override
    cpus, quota, n = affinity_cpus(), cgroup_quota(), workers(environ)
    if threads_for(cpus, quota, n) == 1:  # one thread whatever the load: no need to look
        return 1
    return threads_for(cpus, quota, n, busy_cpus())


def apply(environ=os.environ) -> int:
    """Set this process's torch threads (before or after torch is imported); return the count."""
    n = torch_threads(environ)
    environ["OMP_NUM_THREADS"] = environ["MKL_NUM_THREADS"] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n


def child_env(n_workers: int, environ=os.environ) -> dict:
    """The environment for `n_workers` child processes that run torch side by side: each takes its share."""
    return dict(environ) | {WORKERS_ENV: str(n_workers * workers(environ))}


if __name__ == "__main__":
    print(f"{torch_threads()} torch thread(s): {affinity_cpus()} CPU(s) by affinity, cgroup quota {cgroup_quota()}, "
          f"{workers()} worker(s), {busy_cpus():.1f} busy with other work, "
          f"{THREADS_ENV}={os.environ.get(THREADS_ENV, '(unset)')}")
