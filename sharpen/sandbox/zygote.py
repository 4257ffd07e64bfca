"""The sandbox's zygote: a trusted interpreter, started once per worker inside the isolation, that
forks a fresh process for every program. It never runs model code itself.

Runs as `python -I zygote.py` (started by `sharpen.sandbox`; it needs only the standard library,
since the sandbox mounts the base Python installation and not the project). Talks to the host
over its stdin/stdout in frames: a 4-byte big-endian length, then bytes.

One job, three processes, forked from this clean zygote so no state passes between programs:
- J, the job's supervisor (privileged, trusted): sets up, waits with the deadline, reports;
- C, the candidate (untrusted): in a new PID, mount and IPC namespace when the kernel allows it
  (pid 1 there: when it exits, everything it started dies); fresh size-capped tmpfs on /tmp,
  the working directory and /dev/shm, every other mount read-only; rlimits; its own uid
  (as root); umask 077; no-new-privileges; a seccomp filter refusing new user namespaces.
  It runs the program, then (kinds `tests`, `calls`) answers calls of its functions over a socket;
- T, the tests (kind `tests`; trusted problem code, confined the same way under another uid):
  runs the problem's tests against proxies of the candidate's functions. A proxy sends its
  arguments and receives the result in `encode`'s data-only form, so T only ever holds
  builtins: no object of the candidate's with its own `__eq__`, no way into T's memory.

A pass is decided outside the candidate's process: for `tests`, T exited 0 after running the
tests to their end; for `calls`, the host compares the decoded results with the expected ones.
No secret is involved, so there is nothing for the program to read or forge. C and T receive
the tests only after C is forked, so the candidate's memory never holds them.
"""

from __future__ import annotations

import ast
import builtins
import ctypes
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
import traceback

MAX_FRAME = 64 << 20
MAX_DEPTH = 100

# --- data-only encoding: exact builtin types, nothing with methods of its own --------------------


def _enc(x, depth: int):
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    t = type(x)
    if x is None:
        return ["n"]
    if t is bool:
        return ["b", x is True]
    if t is int:
        return ["i", int.__index__(x).__format__("x") if x >= 0 else "-" + (-x).__format__("x")]
    if t is float:
        return ["f", float.hex(x)]
    if t is complex:
        return ["c", float.hex(x.real), float.hex(x.imag)]
    if t is str:
        return ["s", str.__str__(x)]
    if t is bytes:
        return ["y", bytes.hex(x)]
    if t is list or t is tuple or t is set or t is frozenset:
        tag = {list: "l", tuple: "t", set: "S", frozenset: "F"}[t]
        return [tag, [_enc(v, depth + 1) for v in t.__iter__(x)]]
    if t is dict:
        return ["d", [[_enc(k, depth + 1), _enc(v, depth + 1)] for k, v in dict.items(x)]]
    raise TypeError(f"not data: a {t.__name__!s:.60} (only None, bool, int, float, complex, str, bytes, list, tuple, set, dict)")


def encode(value) -> bytes:
    return json.dumps(_enc(value, 0), ensure_ascii=True).encode()


class DecodeError(ValueError):
    """Bytes that are not `encode`'s data-only form."""


def _dec(x, depth: int):
    if depth > MAX_DEPTH or type(x) is not list or not x or type(x[0]) is not str:
        raise DecodeError("malformed value")
    tag, rest = x[0], x[1:]
    try:
        if tag == "n" and not rest:
            return None
        if tag == "b" and len(rest) == 1 and type(rest[0]) is bool:
            return rest[0]
        if tag == "i" and len(rest) == 1 and type(rest[0]) is str and len(rest[0]) < 1 << 20:
            return int(rest[0], 16)
        if tag == "f" and len(rest) == 1 and type(rest[0]) is str:
            return float.fromhex(rest[0])
        if tag == "c" and len(rest) == 2 and all(type(r) is str for r in rest):
            return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
        if tag == "s" and len(rest) == 1 and type(rest[0]) is str:
            return rest[0]
        if tag == "y" and len(rest) == 1 and type(rest[0]) is str:
            return bytes.fromhex(rest[0])
        if tag in ("l", "t", "S", "F") and len(rest) == 1 and type(rest[0]) is list:
            items = [_dec(v, depth + 1) for v in rest[0]]
            return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
        if tag == "d" and len(rest) == 1 and type(rest[0]) is list:
            pairs = rest[0]
            if not all(type(p) is list and len(p) == 2 for p in pairs):
                raise DecodeError("malformed dict")
            return {_dec(k, depth + 1): _dec(v, depth + 1) for k, v in pairs}
    except (ValueError, TypeError, OverflowError) as e:  # unhashable set member, bad hex, ...
        raise DecodeError(f"malformed {tag!r}: {e}") from None
    raise DecodeError(f"unknown or malformed tag {tag!r}")


def decode(data: bytes):
    if len(data) > MAX_FRAME:
        raise DecodeError("value too large")
    try:
        return _dec(json.loads(data), 0)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise DecodeError(str(e)[:200]) from None


# --- frames -----------------------------------------------------------------------------------------


def write_frame(fd: int, data: bytes) -> None:
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, deadline: float | None = None, limit: int = MAX_FRAME) -> bytes | None:
    """One frame, or None at end of file. Reads exactly its bytes: nothing of the next frame."""
    head = _read_exact(fd, 4, deadline)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > limit:
        raise DecodeError(f"frame of {n} bytes over the limit")
    return _read_exact(fd, n, deadline) if n else b""


# --- confinement ----------------------------------------------------------------------------------

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x20000000, 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 4, 38, 22, 2
_libc = ctypes.CDLL(None, use_errno=True)
# (audit arch, clone, unshare, clone3) per machine
_SYSCALLS = {"x86_64": (0xC000003E, 56, 272, 435), "aarch64": (0xC00000B7, 220, 97, 435)}


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), f"mount {target}")


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def no_new_user_namespaces() -> bool:
    """Set no-new-privileges and a seccomp filter: clone/unshare with CLONE_NEWUSER fail (EPERM),
    clone3 reports ENOSYS (its flags are out of reach; libc falls back to clone). False when
    the machine is not one we have syscall numbers for."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
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
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")
    return True


def _private_mounts(limits: dict, uid: int, workdir: str, own_pid_ns: bool) -> None:
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


def _confine(limits: dict, uid: int, nproc: int) -> None:
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


def _redirect(out: int, err: int, keep: tuple[int, ...]) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    keep = sorted({0, 1, 2, *keep})
    for a, b in zip(keep, keep[1:] + [1 << 16]):
        os.closerange(a + 1, b)


def _flush() -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass


def _exit_code(e: SystemExit) -> int:
    code = e.code
    return code if type(code) is int else (0 if code is None else 1)


# --- the candidate and the tests ------------------------------------------------------------------


def _candidate(job: dict, sock: int | None, out: int, err: int, namespaces: bool) -> None:
    """C: run the program; then answer calls. Never returns."""
    code = 1
    try:
        os.setsid()
        limits = job["limits"]
        if namespaces:
            _private_mounts(limits, job["uid"], job["workdir"], True)
        workdir = job["workdir"]
        _redirect(out, err, () if sock is None else (sock,))
        _confine(limits, job["uid"], job["nproc"])
        os.chdir(workdir)
    except BaseException:
        traceback.print_exc()
        os._exit(70)
    try:
        sys.argv = ["program.py"]
        scope = {"__name__": "__main__", "__builtins__": builtins}
        exec(compile(job["program"], "program.py", "exec"), scope)
        if sock is not None:
            _serve(sock, scope)
        code = 0
    except SystemExit as e:
        code = _exit_code(e)
    except BaseException:
        try:
            traceback.print_exc()
        except BaseException:
            pass
    _flush()
    os._exit(code)


def _serve(sock: int, scope: dict) -> None:
    """Answer [name, args, kwargs] with ["ok", result] | ["raise", exception name, text] | ["bad", why]."""
    while True:
        frame = read_frame(sock)
        if frame is None:
            return
        name, args, kwargs = decode(frame)
        try:
            fn = scope[name]
            result = fn(*args, **kwargs)
            try:
                reply = encode(["ok", result])
            except (TypeError, ValueError, RecursionError) as e:
                reply = encode(["bad", f"{name} returned {e}"[:300]])
        except SystemExit:
            raise
        except BaseException as e:
            reply = encode(["raise", type(e).__name__, _text(e)])
        write_frame(sock, reply)


def _text(e: BaseException) -> str:
    try:
        return str.__str__(str(e))[:300]
    except BaseException:
        return "<unprintable>"


_ANSWERED = [0]  # calls the candidate answered with data, in this tests process


class CandidateError(Exception):
    """The candidate's function did not give a data result (it died, or returned an object)."""


def _proxy(name: str, sock: int):
    def call(*args, **kwargs):
        try:
            write_frame(sock, encode([name, list(args), kwargs]))
            frame = read_frame(sock)
        except OSError as e:
            raise CandidateError(f"{name}: the candidate process is gone ({e})") from None
        if frame is None:
            raise CandidateError(f"{name}: the candidate process exited")
        reply = decode(frame)
        if reply[0] == "ok" and len(reply) == 2:
            _ANSWERED[0] += 1
            return reply[1]
        if reply[0] == "raise" and len(reply) == 3:
            kind = getattr(builtins, str(reply[1]), None)
            if isinstance(kind, type) and issubclass(kind, Exception) and kind is not AssertionError:
                raise kind(reply[2])
            raise CandidateError(f"{name} raised {str(reply[1])[:80]}: {reply[2]}")
        raise CandidateError(f"{name}: {str(reply[-1])[:300]}")

    call.__name__ = name
    return call


def _stubs(tree: ast.Module) -> set[str]:
    """Functions the prompt only declares (a docstring, `pass`, `...`, imports): the candidate writes them."""
    def empty(stmt) -> bool:
        return isinstance(stmt, (ast.Pass, ast.Import, ast.ImportFrom)) or (
            isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        )

    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and all(map(empty, n.body))}


def _prompt_tree(prompt: str) -> ast.Module | None:
    for source in (prompt, prompt + "\n    pass\n"):
        try:
            return ast.parse(source)
        except SyntaxError:
            continue
    return None


def _tests(job: dict, tests_fd: int, sock: int, out: int, err: int, namespaces: bool) -> None:
    """T: run the problem's tests with the candidate's functions behind proxies. Never returns."""
    try:
        os.setsid()
        spec = json.loads(read_frame(tests_fd) or b"{}")
        limits = job["limits"]
        if namespaces:
            _private_mounts(limits, job["tests_uid"], job["tests_workdir"], False)
        _redirect(out, err, (sock,))
        _confine(limits, job["tests_uid"], job["nproc"])
        _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        os.chdir(job["tests_workdir"])
        scope: dict = {"__name__": "__main__", "__builtins__": builtins}
        tree = _prompt_tree(spec.get("prompt") or "")
        if tree is not None:
            exec(compile(tree, "prompt.py", "exec"), scope)
            for name in _stubs(tree):
                del scope[name]
        tests = ast.parse(spec["tests"])
        for node in ast.walk(tests):
            if isinstance(node, ast.Name) and node.id not in scope and not hasattr(builtins, node.id):
                scope[node.id] = _proxy(node.id, sock)
        exec(compile(tests, "tests.py", "exec"), scope)
        if _ANSWERED[0] == 0:
            print("the tests never called the program: nothing was checked, so nothing is passed", file=sys.stderr)
            code = 3
        else:
            code = 0
    except SystemExit as e:
        code = _exit_code(e)
    except BaseException:
        traceback.print_exc()
        code = 1
    _flush()
    os._exit(code)


# --- the job supervisor -------------------------------------------------------------------------


def _capture() -> int:
    """An anonymous file for a child's output (unlinked at once: no path leads to it)."""
    fd, path = _mkstemp()
    os.unlink(path)
    return fd


def _mkstemp() -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix="out-", dir=_PRIVATE)


def _tail(fd: int, chars: int) -> str:
    size = os.lseek(fd, 0, os.SEEK_END)
    os.lseek(fd, max(0, size - 4 * chars), os.SEEK_SET)
    return os.read(fd, 4 * chars).decode("utf-8", errors="replace")[-chars:]


def _wait(pid: int, deadline: float) -> int | None:
    """The exit status (negative: signal) of `pid`, or None if the deadline passed first."""
    fd = os.pidfd_open(pid)
    try:
        left = max(0.0, deadline - time.monotonic())
        if not select.select([fd], [], [], left)[0]:
            return None
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _peer_closed(sock: int) -> bool:
    """Whether the other end of a socket has closed (EOF waiting, no data)."""
    try:
        if not select.select([sock], [], [], 0)[0]:
            return False
        with socket.socket(fileno=os.dup(sock)) as s:
            return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except OSError:
        return False


def _exit_code_if_done(pid: int, exiting: bool = False) -> int | None:
    """`pid`'s exit code (negative: signal) if it has exited, reaping it; None while it runs.

    `exiting`: its socket reached EOF, so it is dying. The kernel closes a dying process's files
    before its exit status can be waited for, so wait for that (briefly: a program that closed the
    socket itself and runs on is killed after 3 seconds, a fail)."""
    try:
        if exiting:
            return _wait(pid, time.monotonic() + 3.0)  # a loaded machine may take over a second to finish an exit
        done, status = os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, ProcessLookupError):
        return None
    return os.waitstatus_to_exitcode(status) if done else None


def _kill(pid: int | None) -> None:
    if pid is None:
        return
    for target in (-pid, pid):
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _job(job: dict, namespaces: bool) -> dict:
    limits, kind = job["limits"], job["kind"]
    start = time.monotonic()
    deadline = start + limits["timeout_s"]
    c_out, c_err = _capture(), _capture()
    t_out = t_err = tests_r = tests_w = None
    c_sock = t_sock = None
    if kind != "run":
        t_sock, c_sock = (s.detach() for s in socket.socketpair())
    tests_pid = None
    groups: list[int] = []
    if kind == "tests":
        t_out, t_err = _capture(), _capture()
        tests_r, tests_w = os.pipe()
        tests_pid = os.fork()
        if tests_pid == 0:
            _tests(job, tests_r, t_sock, t_out, t_err, namespaces)
        os.close(tests_r)
        groups.append(tests_pid)
    if namespaces:
        unshare(CLONE_NEWPID)  # the candidate is pid 1 of its own namespace
    cand_pid = os.fork()
    if cand_pid == 0:
        _candidate(job, c_sock, c_out, c_err, namespaces)
    if not namespaces:
        groups.append(cand_pid)
    if c_sock is not None:
        os.close(c_sock)
    result: dict = {"status": "failed", "exit_code": None, "tests_read": False}
    closed = False  # calls: the candidate's end of the socket closed (it exited, or is exiting)
    try:
        if kind == "run":
            code = _wait(cand_pid, deadline)
            cand_pid = None if code is not None else cand_pid
            result["exit_code"] = code
            result["status"] = ("timeout" if code is None or code == -signal.SIGXCPU else "passed" if code == 0 else "failed")
        elif kind == "tests":
            spec = read_frame(0)  # only now: the candidate was forked without the tests in memory
            result["tests_read"] = True
            write_frame(tests_w, spec or b"{}")
            os.close(tests_w)
            code = _wait(tests_pid, deadline)
            tests_pid = None if code is not None else tests_pid
            result["exit_code"] = code
            result["status"] = "timeout" if code is None else "passed" if code == 0 else "failed"
        else:
            replies = []
            try:
                for call in job["calls"]:  # each already encode()d by the host: [name, args, kwargs]
                    write_frame(t_sock, call.encode("ascii"))
                    frame = read_frame(t_sock, deadline)
                    if frame is None:
                        closed = True
                        break
                    replies.append(frame.decode("ascii", errors="replace"))
                result["status"] = "passed" if len(replies) == len(job["calls"]) else "failed"
            except TimeoutError:
                result["status"] = "timeout"
            except DecodeError as e:
                result["error"] = str(e)
            result["replies"] = replies
    finally:
        if kind == "tests" and result["status"] != "passed" and t_sock is not None:
            closed = _peer_closed(t_sock)  # the tests failed because the candidate is dying (out of CPU?)
        code = None if cand_pid is None else _exit_code_if_done(cand_pid, exiting=closed)
        if code is not None:
            cand_pid = None  # reaped: never signal its pid again
            # SIGXCPU at the soft CPU limit, SIGKILL at the hard one a second later (or a program killing
            # itself: a fail either way): out of CPU seconds is as much a timeout as the wall clock
            if code in (-signal.SIGXCPU, -signal.SIGKILL):
                result["status"] = "timeout"
        _kill(tests_pid)
        _kill(cand_pid)
        for group in groups:  # whatever the children started in their sessions
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    if not namespaces:
        job_cleanup(job)
    result["seconds"] = time.monotonic() - start
    result["stdout"] = _tail(c_out, limits["output_chars"])
    result["stderr"] = _tail(c_err, limits["output_chars"])
    if t_err is not None:
        result["tests_stderr"] = _tail(t_err, limits["output_chars"])
        result["tests_stdout"] = _tail(t_out, limits["output_chars"])
    return result


# --- without namespaces: remove what a slot uid left ----------------------------------------------


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
    import shutil

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
    libc = _libc
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
    import shutil

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


# --- the server -----------------------------------------------------------------------------------

_PRIVATE = "/tmp"


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


def main() -> None:
    global _PRIVATE
    import tempfile

    want = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    # where the children's output files are made (and unlinked at once): a 0700 directory of the
    # host's (rlimits: removed by the host with the slot) or the sandbox's own /tmp (bwrap: a tmpfs)
    _PRIVATE = want.get("private") or tempfile.mkdtemp(prefix="sharpen-zygote-")
    namespaces = want.get("namespaces", True) and can_unshare()
    write_frame(1, json.dumps({"ready": True, "namespaces": namespaces}).encode())
    while True:
        frame = read_frame(0)
        if frame is None:
            return
        job = json.loads(frame)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                data = json.dumps(_job(job, namespaces)).encode()
            except BaseException:
                data = json.dumps({"status": "error", "error": traceback.format_exc()[-2000:]}).encode()
            write_frame(w, data)
            os._exit(0)
        os.close(w)
        data = read_frame(r)
        os.close(r)
        os.waitpid(pid, 0)
        if job["kind"] == "tests" and (data is None or not json.loads(data).get("tests_read")):
            read_frame(0)  # the job died before taking its tests: drop them, or they would read as the next job
        write_frame(1, data if data is not None else json.dumps({"status": "error", "error": "job process died"}).encode())


if __name__ == "__main__":
    main()
