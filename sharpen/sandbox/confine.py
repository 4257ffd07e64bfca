"""Confining one of the sandbox's child processes: namespaces, mounts, rlimits, uid and seccomp.

Called by each job's children (`children.py`) right after they are forked from the zygote,
before any untrusted code runs:
- `private_mounts`: a new mount and IPC namespace, every mount read-only, fresh size-capped
  tmpfs on /tmp, /var/tmp, /dev/shm, /run/lock and the working directory (and a new /proc for a
  process that is pid 1 of its own PID namespace);
- `confine`: rlimits (address space, file size, open files, no core files, CPU seconds, then
  processes once the uid is dropped), umask 077, the slot uid (as root), no-new-privileges and a
  seccomp filter refusing new user namespaces (`no_new_user_namespaces`);
- `redirect`: stdin from /dev/null, stdout and stderr to the job's capture files, every other
  file descriptor closed but those kept.
`can_unshare` probes once, in a throwaway child, whether the kernel allows the namespaces at all.

Standard library only (the zygote runs under the base Python installation, not the project).
Not run on its own; tested by `pytest tests/test_sandbox.py tests/test_reward_hacks.py`.
"""

from __future__ import annotations

import ctypes
import os
import resource

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x20000000, 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 4, 38, 22, 2
libc = ctypes.CDLL(None, use_errno=True)
# (audit arch, clone, unshare, clone3) per machine
_SYSCALLS = {"x86_64": (0xC000003E, 56, 272, 435), "aarch64": (0xC00000B7, 220, 97, 435)}


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(libc.unshare(flags), "unshare")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                      data.encode() if data else None), f"mount {target}")


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def no_new_user_namespaces() -> bool:
    """Set no-new-privileges and a seccomp filter: clone/unshare with CLONE_NEWUSER fail (EPERM),
    clone3 reports ENOSYS (its flags are out of reach; libc falls back to clone). False when
    the machine is not one we have syscall numbers for."""
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None:
        return False
    arch, clone, unshare_nr, clone3 = numbers
    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    prog = [
        (ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, 0x80000000),  # another arch: kill the process
        (ld, 0, 0, 0),
        (jeq, 0, 1, clone3), (ret, 0, 0, enosys),
        (jeq, 1, 0, clone), (jeq, 0, 3, unshare_nr),
        (ld, 0, 0, 16), (jset, 0, 1, CLONE_NEWUSER), (ret, 0, 0, eperm),
        (ret, 0, 0, allow),
    ]  # fmt: skip
    filters = (_SockFilter * len(prog))(*[_SockFilter(*p) for p in prog])
    fprog = _SockFprog(len(prog), filters)
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")
    return True


def private_mounts(limits: dict, uid: int, workdir: str, own_pid_ns: bool) -> None:
    """A private mount namespace: every mount read-only, fresh tmpfs where the program may write."""
    unshare(CLONE_NEWNS | CLONE_NEWIPC)
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
    for point in points:
        if point.startswith(("/proc", "/dev")):
            continue
        try:
            _mount("none", point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        except OSError:
            pass  # a mount that cannot be remounted here (e.g. locked by a parent namespace) stays as is
    owner = f",uid={uid},gid={uid}" if uid >= 0 else ""
    size = f"size={int(limits['tmp_mb']) << 20},mode=0700{owner}"
    for target in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", workdir):  # workdir last: it may sit under /tmp
        if target == workdir:
            os.makedirs(workdir, mode=0o755, exist_ok=True)
        if os.path.isdir(target):
            _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, size)
    if own_pid_ns:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV)


def confine(limits: dict, uid: int, nproc: int) -> None:
    """rlimits, the uid, no new privileges (rlimits first: as root the limits can still be set)."""
    mb = 1 << 20
    for limit, value in ((resource.RLIMIT_AS, limits["memory_mb"] * mb), (resource.RLIMIT_FSIZE, limits["file_size_mb"] * mb),
                         (resource.RLIMIT_NOFILE, limits["open_files"]), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_s"], limits["cpu_s"] + 1))
    os.umask(0o077)
    if uid >= 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    no_new_user_namespaces()


def not_dumpable() -> None:
    """Not dumpable: no core file, and other processes of the same uid cannot ptrace it or read its memory."""
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def redirect(out: int, err: int, keep: tuple[int, ...]) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    keep = sorted({0, 1, 2, *keep})
    for a, b in zip(keep, keep[1:] + [1 << 16]):
        os.closerange(a + 1, b)


def can_unshare() -> bool:
    """Whether a child may take its own namespaces here (probed in a throwaway child)."""
    pid = os.fork()
    if pid == 0:
        try:
            unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWPID)
            _mount("none", "/", None, MS_REC | MS_PRIVATE)
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
