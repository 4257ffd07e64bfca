"""The sandbox against adversarial programs: one property per test; the host must be unharmed.

Each evil snippet is the body a model might write for `def add(a, b):`; it is scored by the
`unit_tests` verifier (the path model-written code really takes), so the verdict is checked
too: it must be "fail".

Run: `pytest tests/test_sandbox.py`
"""

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from sharpen import sandbox
from sharpen.sandbox import Limits, isolation, run_program, run_programs
from sharpen.verifiers.execution import unit_test_reference, unit_tests

PROMPT = "def add(a, b):\n"
TESTS = "def check(f):\n    assert f(2, 3) == 5\n    assert f(-1, 1) == 0\n\ncheck(add)\n"
FAST = Limits(timeout_s=3, cpu_s=3)


MODES = (["bwrap"] if isolation() == "bwrap" else []) + ["rlimits"] + (["rlimits-no-namespaces"] if os.geteuid() == 0 else [])


@pytest.fixture(autouse=True, params=MODES)
def mode(request, monkeypatch):
    """Every property is checked under each isolation this machine has: bwrap, and its fallback
    with per-job namespaces and (as root) without them."""
    monkeypatch.setattr("sharpen.verifiers.execution.LIMITS", FAST)
    monkeypatch.setattr(sandbox, "isolation", lambda: request.param.split("-")[0])
    monkeypatch.setattr(sandbox, "NAMESPACES", request.param != "rlimits-no-namespaces")
    if request.param != "bwrap" and _refuses_rlimits() and request.function.__name__ != "test_refuses_root_it_cannot_drop":
        pytest.skip("rlimits mode refuses to run as root here (Python is not reachable by an unprivileged uid)")
    return request.param


def _refuses_rlimits() -> bool:
    try:
        sandbox._check_can_drop_root("rlimits")
    except sandbox.SandboxError:
        return True
    return False


def test_refuses_root_it_cannot_drop(mode):
    """Without bubblewrap, as root, model code runs as an unprivileged uid or not at all."""
    if mode == "bwrap" or not _refuses_rlimits():
        pytest.skip("applies to rlimits mode as root with a private Python installation")
    with pytest.raises(sandbox.SandboxError, match="refusing to run it as root"):
        run_program("print(1)", FAST)


def verdict(body: str):
    """The unit_tests verdict of `body` as the completion of `def add(a, b):`."""
    return unit_tests([body], [unit_test_reference(PROMPT, TESTS)])[0]


def indent(code: str) -> str:
    return "".join(f"    {line}\n" for line in code.strip("\n").splitlines()) + "    return 0\n"


def test_correct_body_passes():
    assert verdict("    return a + b\n").correct


def test_early_exit_fails():
    """os._exit(0) before the tests run is not a pass: the function never answered."""
    assert not verdict(indent("import os\nos._exit(0)")).correct


def test_fenced_function_replaces_the_stub():
    assert verdict("Here:\n```python\ndef add(a, b):\n    return a + b\n```\n").correct


def test_infinite_loop_is_killed_at_the_timeout():
    start = time.perf_counter()
    result = verdict(indent("while True:\n    pass"))
    assert (result.correct, result.reason) == (False, "timeout")
    assert time.perf_counter() - start < FAST.timeout_s + 5


def test_fork_bomb_is_contained():
    result = verdict(indent("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"))
    assert not result.correct
    if os.geteuid() == 0:  # every slot uid's process is gone (zombies wait for init to reap them)
        deadline = time.monotonic() + 15  # SIGKILLed processes take a while to exit on a loaded machine
        while left := _released_slot_processes():
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert not left
    pid = os.fork()  # the host can still fork
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def _released_slot_processes() -> list[str]:
    """Live processes of slot uids no sandbox holds now (other test workers' running slots are held)."""
    found = [p for p in os.listdir("/proc") if p.isdigit() and _uid(p) >= sandbox.SLOT_UID_BASE and _alive(p)]
    held = sandbox.held_slot_uids()  # after the scan: a slot claimed during it is held by now
    return [p for p in found if _uid(p) not in held and _uid(p) - 1 not in held]


def _alive(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _uid(pid: str) -> int:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return -1


def test_memory_bomb_fails_without_harming_the_host():
    assert not verdict(indent("x = bytearray(8 * 1024 ** 3)")).correct
    # the address-space limit stops it, not a kill: the program itself sees the MemoryError (run alone,
    # so no test harness races it, with a wall clock that leaves room for a loaded machine)
    out = run_program("x = bytearray(8 * 1024 ** 3)", Limits(timeout_s=30, cpu_s=3))
    assert out.status != "passed" and "MemoryError" in out.stderr


def test_two_sandboxes_at_once_never_touch_each_others_programs():
    """Two callers (threads here; processes alike) each run a sandbox: one's cleanup after its jobs
    must not kill the other's running program (as root: each holds its own slot uids)."""
    slow: list = []
    other = threading.Thread(target=lambda: slow.append(
        run_program("import time\ntime.sleep(2)\nprint('alive')", Limits(timeout_s=30, cpu_s=5))))
    other.start()
    time.sleep(0.5)
    assert all(o.status == "passed" for o in run_programs(["print(1)"] * 4, FAST, workers=1))
    other.join()
    assert (slow[0].status, slow[0].stdout) == ("passed", "alive\n")


def test_writing_outside_the_temp_dir_is_blocked(tmp_path):
    target = tmp_path / "escaped.txt"
    body = indent(f"for p in [{str(target)!r}, '/escaped.txt', os.path.expanduser('~/escaped.txt')]:\n"
                  "    try:\n        open(p, 'w').write('x')\n    except OSError:\n        pass")
    assert not verdict("    import os\n" + body).correct
    assert not target.exists() and not os.path.exists("/escaped.txt")
    assert not os.path.exists(os.path.expanduser("~/escaped.txt"))


def test_deleting_files_is_blocked(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    body = indent(f"import shutil\nshutil.rmtree({str(tmp_path)!r}, ignore_errors=True)\n"
                  f"try:\n    os.remove({str(victim)!r})\nexcept OSError:\n    pass")
    assert not verdict("    import os\n" + body).correct
    assert victim.read_text() == "keep me"


def test_environment_variables_are_not_visible(monkeypatch):
    monkeypatch.setenv("SHARPEN_TEST_SECRET", "hunter2-secret")
    out = run_program("import os\nprint(dict(os.environ))\nprint(open('/proc/self/environ').read())")
    assert "hunter2-secret" not in out.stdout + out.stderr
    assert not verdict(indent("import os\nassert 'SHARPEN_TEST_SECRET' in os.environ")).correct


def test_socket_to_the_host_is_refused(mode):
    if mode != "bwrap":
        pytest.skip("no network namespace without bubblewrap")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(4)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: _accept(server, accepted))
    thread.start()
    body = indent(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'hi')")
    assert not verdict(body).correct
    thread.join()
    server.close()
    assert not accepted


def _accept(server, accepted):
    try:
        accepted.append(server.accept())
    except OSError:
        pass


def test_spawned_shell_cannot_touch_the_host(tmp_path):
    target = tmp_path / "from-shell.txt"
    body = indent(f"import subprocess\nsubprocess.run(['/bin/sh', '-c', 'echo x > {target}; rm -rf {tmp_path}'])")
    assert not verdict(body).correct
    assert not target.exists() and tmp_path.is_dir()


def test_huge_output_is_capped():
    out = run_program("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", FAST)
    assert out.status != "passed"
    assert len(out.stdout) <= FAST.output_chars
    assert not verdict(indent("print('x' * 10 ** 9)")).correct


def test_killing_its_parent_leaves_the_host_alive(mode):
    if mode != "bwrap" and os.geteuid() != 0:
        pytest.skip("as an ordinary user without bubblewrap the program may signal the user's processes")
    body = indent("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)")
    assert not verdict(body).correct
    assert os.getpid() > 0 and verdict("    return a + b\n").correct  # we are still here and working


def test_results_keep_input_order_in_parallel():
    outs = run_programs([f"print({i})" for i in range(12)], FAST, workers=4)
    assert [o.stdout.split("\n")[0] for o in outs] == [str(i) for i in range(12)]
    assert all(o.status == "passed" for o in outs)


def test_no_new_privileges_and_a_seccomp_filter():
    out = run_program("print(open('/proc/self/status').read())", FAST)
    status = dict(line.split(":\t", 1) for line in out.stdout.splitlines() if ":\t" in line)
    assert (status["NoNewPrivs"].strip(), status["Seccomp"].strip()) == ("1", "2")


def test_nested_user_namespaces_are_refused():
    program = ("import ctypes, subprocess\nprint(ctypes.CDLL(None, use_errno=True).unshare(0x10000000), ctypes.get_errno())\n"
               "r = subprocess.run(['unshare', '--user', 'true'], capture_output=True)\nprint(r.returncode)")
    out = run_program(program, FAST)
    first, second = out.stdout.split("\n")[:2]
    assert first == "-1 1" and second != "0"


def _ipc_ids() -> set[tuple[str, str]]:
    ids = set()
    for kind in ("shm", "sem", "msg"):
        try:
            lines = open(f"/proc/sysvipc/{kind}").read().splitlines()[1:]
        except OSError:
            continue
        ids |= {(kind, line.split()[1]) for line in lines}
    return ids


def test_system_v_ipc_objects_do_not_outlive_the_run():
    before = _ipc_ids()
    program = ("import ctypes\nlibc = ctypes.CDLL(None)\n"
               "print(libc.shmget(0, 4096, 0o1600), libc.msgget(0, 0o1600), libc.semget(0, 1, 0o1600))")
    out = run_program(program, FAST)
    assert "-1" not in out.stdout.split() and out.stdout.strip()
    assert _ipc_ids() <= before


def test_world_writable_directories_keep_nothing(mode, tmp_path):
    """Not a fixed list: a world-writable directory made just now is covered too."""
    fresh = Path(tempfile.mkdtemp(prefix="sharpen-ww-", dir="/var/tmp"))
    fresh.chmod(0o1777)
    sandbox.world_writable_dirs.cache_clear()
    try:
        program = (f"import os\nfor d in ['/tmp', '/var/tmp', '/dev/shm', '/run/lock', {str(fresh)!r}]:\n"
                   "    try:\n        open(os.path.join(d, 'left-behind'), 'w').write('x')\n        os.mkdir(os.path.join(d, 'left-dir'))\n"
                   "    except OSError as e:\n        print(d, e)")
        run_program(program, FAST)
        for d in ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", str(fresh)]:
            assert not os.path.exists(os.path.join(d, "left-behind")) and not os.path.exists(os.path.join(d, "left-dir")), d
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
        sandbox.world_writable_dirs.cache_clear()


def test_concurrent_samples_cannot_read_each_others_files(mode):
    """With namespaces each sample has its own tmpfs, so even a file it makes world-readable stays
    its own; without them its files are private by umask (a sample that chmods them on purpose is
    not stopped: the README says so)."""
    share = "os.chmod(p, 0o644)" if mode != "rlimits-no-namespaces" else "pass"
    writer = ("import os, time\nfor d in ['/tmp', '/var/tmp', '/dev/shm', '.']:\n    try:\n"
              f"        p = os.path.join(d, 'secret-of-a'); open(p, 'w').write('sample-a-secret'); {share}\n"
              "    except OSError:\n        pass\ntime.sleep(1.5)")
    reader = ("import os, time\ntime.sleep(0.5)\nfor root in ['/tmp', '/var/tmp', '/dev/shm']:\n"
              "    for dirpath, _, files in os.walk(root):\n        for n in files:\n            try:\n"
              "                print(open(os.path.join(dirpath, n)).read())\n            except OSError:\n                pass")
    outs = run_programs([writer, reader], FAST, workers=2)
    assert "sample-a-secret" not in outs[1].stdout


def test_running_out_of_cpu_seconds_is_a_timeout(monkeypatch):
    monkeypatch.setattr("sharpen.verifiers.execution.LIMITS", Limits(timeout_s=8, cpu_s=1))
    result = verdict(indent("while True:\n    pass"))
    assert (result.correct, result.reason) == (False, "timeout")


def test_the_zygote_imports_only_what_is_mounted_with_it():
    """Under bwrap only ZYGOTE_FILES are mounted, beside the base Python: the zygote's modules may
    import one another (relatively) and the standard library, nothing of the project."""
    import ast
    import sys

    from sharpen.sandbox.modes import ZYGOTE, ZYGOTE_FILES

    for name in ZYGOTE_FILES:
        for node in ast.walk(ast.parse(ZYGOTE.with_name(name).read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert (node.level, f"{node.module}.py") in {(1, f) for f in ZYGOTE_FILES}, (name, node.module)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for module in [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]:
                    assert module.split(".")[0] in sys.stdlib_module_names, (name, module)
