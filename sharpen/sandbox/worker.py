"""One worker of the sandbox on the host: a zygote process (under bwrap or on the host) and the
jobs it runs, one at a time.

`Zygote(mode, slot, limits, namespaces)` claims the slot's uids (as root), makes its working
directories (rlimits mode), starts `zygote.py` and waits for it to say it is ready (and whether
it got per-job namespaces). `Zygote.run(job)` sends one job as a `wire.py` message, waits for
the result under the job's deadline plus a margin, and turns it into an `Outcome`; a zygote
that fails or dies is restarted and the job fails with "sandbox error: ...". `close()` stops the
zygote, then gives back the directory and the uids.

Not run on its own: `sharpen.sandbox.run_jobs` keeps one per worker thread; tested by
`pytest tests/test_sandbox.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sharpen.sandbox.jobs import Calls, Job, Limits, Outcome, Run, SandboxError, Tests
from sharpen.sandbox.modes import (
    BWRAP_TESTS_WORKDIR,
    BWRAP_WORKDIR,
    BWRAP_ZYGOTE_DIR,
    ZYGOTE,
    _check_can_drop_root,
    bwrap_command,
    interpreter,
)
from sharpen.sandbox.slots import claim_slot_uids, count_processes, world_writable_dirs
from sharpen.sandbox.wire import DecodeError, decode, encode, read_message, write_message


class Zygote:
    """One worker: a zygote process (under bwrap or on the host) and the jobs it runs, one at a time."""

    def __init__(self, mode: str, slot: int, limits: Limits, namespaces: bool = True):
        self.mode, self.slot, self.limits = mode, slot, limits
        self.want_namespaces = namespaces  # per-job namespaces where the kernel allows (False: the fallback without)
        self.root = os.geteuid() == 0
        self.uid_lock: int | None = None
        self.uid, self.tests_uid = -1, -1
        if self.root:
            self.uid, self.uid_lock = claim_slot_uids()
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
        want = {"namespaces": self.want_namespaces}
        if self.mode == "bwrap":
            script = f"{BWRAP_ZYGOTE_DIR}/{ZYGOTE.name}"
            cmd = [*bwrap_command(self.limits), interpreter("bwrap"), "-I", script, json.dumps(want)]
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
            cmd = [interpreter("rlimits"), "-I", str(ZYGOTE), json.dumps(want)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env={}, start_new_session=True, close_fds=True, cwd="/")
        ready = read_message(self.proc.stdout.fileno(), _deadline(30))
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
            "nproc": limits.processes if self.root else count_processes(os.getuid()) + limits.processes,
            "workdir": self.workdir, "tests_workdir": self.tests_workdir,
            "writable_dirs": list(world_writable_dirs()) if self.root and not self.namespaces else [],
        }  # fmt: skip
        if isinstance(job, Run):
            message |= {"kind": "run", "program": job.program}
        elif isinstance(job, Tests):
            message |= {"kind": "tests", "program": job.program}
        elif isinstance(job, Calls):
            calls = [encode([job.entry_point, list(args), dict(kwargs)]).decode() for args, kwargs in job.inputs]
            message |= {"kind": "calls", "program": job.program, "entry_point": job.entry_point, "calls": calls}
        else:
            raise TypeError(f"not a sandbox job: {job!r}")
        fd_in, fd_out = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        try:
            write_message(fd_in, json.dumps(message).encode())
            if isinstance(job, Tests):
                write_message(fd_in, json.dumps({"prompt": job.prompt, "tests": job.tests}).encode())
            data = read_message(fd_out, _deadline(limits.timeout_s + 30))
        except (OSError, TimeoutError, DecodeError) as e:
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
        reply = decode(text.encode())
    except DecodeError as e:
        return ("bad", f"undecodable reply: {e}")
    if type(reply) is list and reply and reply[0] in ("ok", "raise", "bad"):
        shape = {"ok": 2, "raise": 3, "bad": 2}[reply[0]]
        if len(reply) == shape:
            return tuple(reply)
    return ("bad", "malformed reply")


def _deadline(seconds: float) -> float:
    return time.monotonic() + seconds
