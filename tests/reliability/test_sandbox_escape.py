"""The sandbox under attacks no fast test uses, each run many times in parallel: zero passes,
zero escapes, zero host effects. Runs under bubblewrap and under the rlimits fallback.

Each program is the body of `def add(a, b):` scored by the unit_tests verifier, so "fail" is the
verdict the loop would record. After all runs: no canary on the host was read, written or
deleted; no process of a sandbox uid is alive; nothing of theirs is left in /tmp, /var/tmp or
/dev/shm; and honest programs run alongside still pass.

Run: `pytest -m reliability tests/reliability/test_sandbox_escape.py`
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sharpen import sandbox
from sharpen.sandbox import Limits
from sharpen.verifiers.execution import unit_test_reference, unit_tests

pytestmark = pytest.mark.reliability

PROMPT = "def add(a, b):\n"
TESTS = "def check(f):\n    assert f(2, 3) == 5\n\ncheck(add)\n"
REPEATS = 6
HONEST = "    return a + b\n"


def body(code: str) -> str:
    return "".join(f"    {line}\n" for line in code.strip("\n").splitlines()) + "    return 0\n"


def attacks(canary: Path, secret: Path) -> dict[str, str]:
    return {
        "daemon-outlives-run": f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                               f"        time.sleep(2)\n        open({str(canary)!r}, 'w').write('late')\n    os._exit(0)",
        "read-host-secret": f"print(open({str(secret)!r}).read())",
        "write-dev-shm": "open('/dev/shm/sharpen-escape', 'w').write('x')",
        "write-tmp-and-var-tmp": "open('/tmp/sharpen-escape', 'w').write('x')\nopen('/var/tmp/sharpen-escape', 'w').write('x')",
        "fill-tmp": "f = open('/tmp/big', 'wb')\nwhile True:\n    f.write(b'0' * 1048576)",
        "fd-exhaustion": "fs = [open('/dev/null') for _ in range(100000)]",
        "thread-bomb": "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(30,)).start()",
        "raise-own-limits": "import resource\nresource.setrlimit(resource.RLIMIT_NPROC, (10**6, 10**6))",
        "signal-everyone": "import os, signal\nos.kill(-1, signal.SIGKILL)",
        "read-parent-memory": f"open('/proc/{os.getpid()}/mem', 'rb').read(16)",
        "symlink-to-root": "import os\nos.symlink('/', 'root')\nopen('root/etc/sharpen-escape', 'w').write('x')",
        "udp-and-dns": "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('8.8.8.8', 53))\n"
                       "socket.getaddrinfo('example.com', 80)",
        "chmod-workdir-parent": "import os\nos.chmod('..', 0o777)",
    }


def _released(uid: int, held: set[int]) -> bool:
    """A slot uid no sandbox holds now (another test worker's running slot may own files and processes)."""
    return uid >= sandbox.SLOT_UID_BASE and uid not in held and uid - 1 not in held


def slot_processes() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                uid = os.stat(f"/proc/{entry}").st_uid
                if uid >= sandbox.SLOT_UID_BASE:
                    with open(f"/proc/{entry}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                            found.append((int(entry), uid))
            except OSError:
                pass
    held = sandbox.held_slot_uids() if os.geteuid() == 0 else set()  # after the scan
    return [pid for pid, uid in found if _released(uid, held)]


def leftovers() -> list[str]:
    found = []
    for directory in ("/tmp", "/var/tmp", "/dev/shm"):
        for entry in os.scandir(directory):
            try:
                uid = entry.stat(follow_symlinks=False).st_uid
                if uid >= sandbox.SLOT_UID_BASE or "sharpen-escape" in entry.name:
                    found.append((entry.path, uid))
            except OSError:
                pass
    held = sandbox.held_slot_uids() if os.geteuid() == 0 else set()
    return [path for path, uid in found if "sharpen-escape" in path or _released(uid, held)]


MODES = ["bwrap", "rlimits"] if sandbox.isolation() == "bwrap" else ["rlimits"]


@pytest.mark.parametrize("mode", MODES)
def test_attacks_in_parallel_never_pass_or_touch_the_host(mode, tmp_path, monkeypatch):
    if mode == "rlimits" and os.geteuid() != 0:
        pytest.skip("the rlimits fallback confines programs to their own uid only when sharpen runs as root")
    monkeypatch.setattr(sandbox, "isolation", lambda: mode)
    monkeypatch.setattr("sharpen.verifiers.execution.LIMITS", Limits(timeout_s=4, cpu_s=4))
    canary, secret = tmp_path / "canary", tmp_path / "secret"
    secret.write_text("sharpen-secret-42")
    tmp_path.chmod(0o755)
    secret.chmod(0o600)
    cases = attacks(canary, secret)
    names = [n for n in cases for _ in range(REPEATS)] + ["honest"] * REPEATS * 2
    completions = [body(cases[n]) for n in names if n != "honest"] + [HONEST] * REPEATS * 2
    results = unit_tests(completions, [unit_test_reference(PROMPT, TESTS)] * len(completions))
    passed = [n for n, r in zip(names, results, strict=True) if r.correct and n != "honest"]
    assert not passed, f"attacks scored as passing: {sorted(set(passed))}"
    assert all(r.correct for n, r in zip(names, results, strict=True) if n == "honest")
    assert not any("sharpen-secret-42" in (r.extracted or "") for r in results)
    time.sleep(2.5)  # the daemons' sleep
    assert not canary.exists(), "a process outlived its run and wrote to the host"
    assert secret.read_text() == "sharpen-secret-42"
    assert not slot_processes(), "sandbox processes are still alive"
    assert not leftovers(), f"files left in shared directories: {leftovers()}"
    assert not Path("/etc/sharpen-escape").exists()
