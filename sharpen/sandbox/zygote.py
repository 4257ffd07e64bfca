"""The sandbox's zygote: a trusted interpreter, started once per worker inside the isolation, that
forks a fresh process for every program. It never runs model code itself.

Runs as `python -I zygote.py '{"namespaces": true}'` (started by `sharpen.sandbox.worker`). It
needs only the standard library and its sibling modules (`sharpen.sandbox.modes.ZYGOTE_FILES`),
since the sandbox mounts the base Python installation and those files, not the project: run as
a script it loads them as a package of their own, without `sharpen/sandbox/__init__.py`. Talks
to the host over its stdin/stdout in `wire.py`'s messages: "ready" first, then one job in (a
`tests` job's tests in a second message), one result out, until its stdin closes.

One job, three processes, forked from this clean zygote so no state passes between programs:
- J, the job's supervisor (privileged, trusted; `supervisor.py`): sets up, waits with the
  deadline, reports;
- C, the candidate (untrusted; `children.py`): in a new PID, mount and IPC namespace when the
  kernel allows it (pid 1 there: when it exits, everything it started dies); fresh size-capped
  tmpfs on /tmp, the working directory and /dev/shm, every other mount read-only; rlimits; its
  own uid (as root); umask 077; no-new-privileges; a seccomp filter refusing new user namespaces
  (`confine.py`). It runs the program, then (kinds `tests`, `calls`) answers calls of its
  functions over a socket;
- T, the tests (kind `tests`; trusted problem code, confined the same way under another uid):
  runs the problem's tests against proxies of the candidate's functions. A proxy sends its
  arguments and receives the result in `wire.encode`'s data-only form, so T only ever holds
  builtins: no object of the candidate's with its own `__eq__`, no way into T's memory.

A pass is decided outside the candidate's process: for `tests`, T exited 0 after running the
tests to their end; for `calls`, the host compares the decoded results with the expected ones.
No secret is involved, so there is nothing for the program to read or forge. C and T receive
the tests only after C is forked, so the candidate's memory never holds them.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback

if __name__ == "__main__" and not __package__:
    # Started as a script (`python -I zygote.py`): -I puts no directory of ours on sys.path, so
    # make this directory a package of its own (PEP 366) for the relative imports below. Nothing
    # of it is written back (no __pycache__) and every module is imported here, before any fork.
    import types

    _package = types.ModuleType("sharpen_zygote")
    _package.__path__ = [os.path.dirname(os.path.abspath(__file__))]
    sys.modules[_package.__name__] = _package
    sys.dont_write_bytecode = True
    __package__ = _package.__name__

from .children import CandidateError  # noqa: E402
from .confine import can_unshare  # noqa: E402
from .supervisor import run_job  # noqa: E402
from .wire import DecodeError, read_message, write_message  # noqa: E402


def main() -> None:
    # T's traceback ends in the reason a failed verdict gives: `CandidateError: ...`, as for a class
    # of the main script (Python names any other class's module: `sharpen_zygote.children.…`).
    CandidateError.__module__ = DecodeError.__module__ = "__main__"
    want = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    # where the children's output files are made (and unlinked at once): a 0700 directory of the
    # host's (rlimits: removed by the host with the slot) or the sandbox's own /tmp (bwrap: a tmpfs)
    private = want.get("private") or tempfile.mkdtemp(prefix="sharpen-zygote-")
    namespaces = want.get("namespaces", True) and can_unshare()
    write_message(1, json.dumps({"ready": True, "namespaces": namespaces}).encode())
    while True:
        message = read_message(0)
        if message is None:
            return
        job = json.loads(message)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                data = json.dumps(run_job(job, namespaces, private)).encode()
            except BaseException:
                data = json.dumps({"status": "error", "error": traceback.format_exc()[-2000:]}).encode()
            write_message(w, data)
            os._exit(0)
        os.close(w)
        data = read_message(r)
        os.close(r)
        os.waitpid(pid, 0)
        if job["kind"] == "tests" and (data is None or not json.loads(data).get("tests_read")):
            read_message(0)  # the job died before taking its tests: drop them, or they would read as the next job
        write_message(1, data if data is not None else json.dumps({"status": "error", "error": "job process died"}).encode())


if __name__ == "__main__":
    main()
