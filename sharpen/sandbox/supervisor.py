"""One job's supervisor, J: a privileged, trusted process the zygote forks for each job.

`run_job(job, namespaces, private)` forks the job's children (`children.py`): T first (kind
`tests`), then C, pid 1 of a new PID namespace when `namespaces`. It then waits for them under
the job's wall-clock deadline, per kind:
- `run`: C's exit status (0 passes; over the deadline or out of CPU seconds is a timeout);
- `tests`: reads the tests from the zygote only now (C was forked without them in memory),
  hands them to T, and takes T's exit status (0 passes);
- `calls`: sends each already encoded call to C over its socket and keeps the replies as text
  for the host to decode; all answered passes.
Then it kills everything the children started, reaps them, cleans up after a job without
namespaces (`cleanup.py`), and returns the result (status, exit code, stdout/stderr tails).

Children's output goes to anonymous files made in `private` (a 0700 directory) and unlinked at
once. Standard library only, run inside the zygote. Not run on its own; tested by
`pytest tests/test_sandbox.py tests/test_reward_hacks.py`.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import tempfile
import time

from .children import run_candidate, run_tests
from .cleanup import job_cleanup
from .confine import CLONE_NEWPID, unshare
from .wire import DecodeError, read_message, write_message


def _capture(private: str) -> int:
    """An anonymous file for a child's output (unlinked at once: no path leads to it)."""
    fd, path = tempfile.mkstemp(prefix="out-", dir=private)
    os.unlink(path)
    return fd


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


def run_job(job: dict, namespaces: bool, private: str) -> dict:
    limits, kind = job["limits"], job["kind"]
    start = time.monotonic()
    deadline = start + limits["timeout_s"]
    c_out, c_err = _capture(private), _capture(private)
    t_out = t_err = tests_r = tests_w = None
    c_sock = t_sock = None
    if kind != "run":
        t_sock, c_sock = (s.detach() for s in socket.socketpair())
    tests_pid = None
    groups: list[int] = []
    if kind == "tests":
        t_out, t_err = _capture(private), _capture(private)
        tests_r, tests_w = os.pipe()
        tests_pid = os.fork()
        if tests_pid == 0:
            run_tests(job, tests_r, t_sock, t_out, t_err, namespaces)
        os.close(tests_r)
        groups.append(tests_pid)
    if namespaces:
        unshare(CLONE_NEWPID)  # the candidate is pid 1 of its own namespace
    cand_pid = os.fork()
    if cand_pid == 0:
        run_candidate(job, c_sock, c_out, c_err, namespaces)
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
            spec = read_message(0)  # only now: the candidate was forked without the tests in memory
            result["tests_read"] = True
            write_message(tests_w, spec or b"{}")
            os.close(tests_w)
            code = _wait(tests_pid, deadline)
            tests_pid = None if code is not None else tests_pid
            result["exit_code"] = code
            result["status"] = "timeout" if code is None else "passed" if code == 0 else "failed"
        else:
            replies = []
            try:
                for call in job["calls"]:  # each already encode()d by the host: [name, args, kwargs]
                    write_message(t_sock, call.encode("ascii"))
                    message = read_message(t_sock, deadline)
                    if message is None:
                        closed = True
                        break
                    replies.append(message.decode("ascii", errors="replace"))
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
