"""Two writers on one workspace: one runs, the others are refused clearly, nothing interleaves.

(Two Prefect loops on one workspace: tests/test_loop.py::test_second_loop_is_refused.)

Run: `pytest -m reliability tests/reliability/test_concurrency.py`
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT
from tests.workspace import env, make_workspace, run, sharpen

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("finished"))
    run(ws, "dvc", "repro")
    return ws


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def start_repro(ws: Path, *args: str) -> subprocess.Popen:
    """`dvc repro ...` in the background, returned once a stage is running (DVC's lock is held)."""
    proc = subprocess.Popen(["dvc", "repro", *args], cwd=ws, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith("Running stage"):
            return proc
    raise AssertionError(f"dvc repro ended before running a stage (exit {proc.wait()})")


def test_second_dvc_repro_is_refused_while_the_first_finishes(finished, tmp_path):
    ws = copy(finished, tmp_path / "ws")
    first = start_repro(ws, "--force", "train")
    second = run(ws, "dvc", "repro", check=False)
    rest = first.stdout.read()
    assert first.wait() == 0, rest[-2000:]
    assert second.returncode != 0 and "lock" in (second.stdout + second.stderr).lower()
    assert run(ws, "dvc", "status").stdout.strip() == "Data and pipelines are up to date."


def test_advance_is_refused_while_dvc_repro_runs(finished, tmp_path):
    ws = copy(finished, tmp_path / "ws")
    head = run(ws, "git", "rev-parse", "HEAD").stdout
    first = start_repro(ws, "--force", "train")
    refused = sharpen(ws, "advance", check=False)
    first.stdout.read()
    assert first.wait() == 0
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "Traceback" not in out
    assert "DVC's lock on this workspace is held" in out or "has not finished" in out
    assert run(ws, "git", "rev-parse", "HEAD").stdout == head and not run(ws, "git", "tag").stdout


def test_two_advances_at_once_make_exactly_one_round(finished, tmp_path):
    ws = copy(finished, tmp_path / "ws")
    procs = [subprocess.Popen([sys.executable, "-m", "sharpen.cli", "advance"], cwd=ws, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [(p.wait(), p.stdout.read()) for p in procs]
    assert sorted(rc for rc, _ in outs) == [0, 1], outs
    loser = next(out for rc, out in outs if rc)
    assert "Traceback" not in loser
    assert any(msg in loser for msg in ("another `sharpen advance` is running", "already exists", "has not finished"))
    assert run(ws, "git", "tag", "--list", "round-*").stdout.split() == ["round-1"]
    log = run(ws, "git", "log", "--format=%s").stdout.splitlines()
    assert [s.split(":")[0] for s in log[:2]] == ["advance to round 2", "round 1"]
    assert "round: 2" in (ws / "params.yaml").read_text()


def test_advance_lock_names_what_holds_it(tmp_path):
    from sharpen.rounds.lock import workspace_lock

    lock = tmp_path / "held.lock"
    with workspace_lock(lock, "`sharpen advance`"):
        code = ("from pathlib import Path; from sharpen.rounds.lock import workspace_lock\n"
                f"with workspace_lock(Path({str(lock)!r}), '`sharpen advance`'): pass")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(), cwd=PROJECT)
    assert proc.returncode != 0 and "another `sharpen advance` is running" in proc.stderr


def test_two_loops_on_a_fresh_workspace_one_runs_the_other_is_refused(tmp_path):
    """Two Prefect loops started together: the second is refused naming the first; the first goes on."""
    import signal
    import time

    ws = make_workspace(tmp_path / "ws", {"base": {"steps": 2000}})  # keep the first loop busy
    first = subprocess.Popen([sys.executable, "-m", "flows.loop", "--rounds", "1"], cwd=ws, env=env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = ws / ".dvc/tmp/sharpen-loop.lock"
    deadline = time.time() + 60
    while not (lock.exists() and lock.read_text().strip()) and time.time() < deadline:
        time.sleep(0.2)
    second = run(ws, sys.executable, "-m", "flows.loop", "--rounds", "1", check=False)
    out = second.stdout + second.stderr
    assert second.returncode == 1 and "another sharpen loop is running in this workspace" in out, out[-2000:]
    assert f"pid {first.pid}" in out and "Traceback" not in out
    assert first.poll() is None  # the first loop was not disturbed
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=60)
    assert not run(ws, "git", "tag", "--list").stdout.strip()
