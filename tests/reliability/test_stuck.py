"""Nothing a user does leaves the workspace stuck or silently wrong (issue 28, "Stuck or silently wrong").

An interrupted `dvc repro` that removed DVC's .gitignore entries, read-only commands' outputs, a
`round` ahead of the loop state, a round tag deleted by hand, a sample for a problem not in the round,
a `dvc repro` or `sharpen advance` by hand while a loop runs, params.yaml edited mid-round: each is
repaired, or refused in one line naming the file and the fix, before anything is lost.

Run: `pytest -m reliability tests/reliability/test_stuck.py`
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.workspace import env, make_workspace, run, sharpen

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Round 1 run (`dvc repro`), not advanced."""
    ws = make_workspace(tmp_path_factory.mktemp("finished"))
    run(ws, "dvc", "repro")
    return ws


@pytest.fixture(scope="module")
def advanced(finished, tmp_path_factory):
    """Round 1 advanced and tagged, and a round 2 tagged as advance tags it (its metrics say round 2)."""
    ws = copy(finished, tmp_path_factory.mktemp("advanced") / "ws")
    sharpen(ws, "advance")
    metrics = ws / "data/round/evaluate/metrics.json"
    metrics.write_text(metrics.read_text().replace('"round": 1', '"round": 2'))
    run(ws, "git", "add", "-f", str(metrics.relative_to(ws)))
    run(ws, "git", "commit", "-qm", "round 2: greedy_accuracy 0.000 (gate: accepted)")
    run(ws, "git", "tag", "-a", "round-2", "-m", "sharpen round 2: gate 'accept' promotes every round")
    return ws


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def committed(ws: Path) -> list[str]:
    return run(ws, "git", "ls-files").stdout.split()


def set_round(ws: Path, value: int) -> None:
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["round"] = value
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# --- 1. an interrupted first round is advanced -------------------------------------------------------


def test_advance_puts_back_the_ignore_entries_an_interrupted_repro_removed(finished, tmp_path):
    ws = copy(finished, tmp_path / "ws")
    for ignore in (ws / "data").rglob(".gitignore"):  # what DVC undoes when a `dvc repro` is interrupted
        ignore.unlink()
    proc = sharpen(ws, "advance", check=False)
    assert proc.returncode == 0, out(proc)[-2000:]
    assert "put back the .gitignore entries" in proc.stderr and "not outputs of this round" not in out(proc)
    assert "data/tasks/pool.parquet" in (ws / "data/tasks/.gitignore").read_text().replace("/", "data/tasks/", 1)
    tracked = committed(ws)
    assert not [p for p in tracked if p.endswith(".parquet") and not p.startswith("data/state/")], tracked
    assert "data/base/model/config.json" not in tracked and run(ws, "git", "tag").stdout.split() == ["round-1"]


def test_a_stage_that_ran_without_an_ignore_entry_is_not_left_stale(finished, tmp_path):
    """The interrupted run's next `dvc repro` ran its stages without data/tasks/.gitignore. No stage
    depends on the folder itself (synthesize names pool.parquet and eval.parquet), so putting the entry
    back leaves the round fresh, and advance neither reruns nor re-records anything."""
    ws = copy(finished, tmp_path / "ws")
    (ws / "data/tasks/.gitignore").unlink()
    run(ws, "dvc", "commit", "-f", "-q", "synthesize")
    proc = sharpen(ws, "advance", check=False)
    assert proc.returncode == 0, out(proc)[-2000:]
    assert "re-recorded" not in proc.stderr and run(ws, "git", "tag").stdout.split() == ["round-1"]


# --- 4. outputs of read-only commands never block advance ----------------------------------------------


def test_read_only_commands_outputs_do_not_block_advance(finished, tmp_path):
    ws = copy(finished, tmp_path / "ws")
    run(ws, "dvc", "plots", "show")  # writes dvc_plots/index.html
    assert (ws / "dvc_plots").is_dir()
    for path in ("notebooks/.ipynb_checkpoints/look-checkpoint.ipynb", "tools/__pycache__/x.cpython-311.pyc",
                 ".mypy_cache/3.11/x.json", ".DS_Store"):
        (ws / path).parent.mkdir(parents=True, exist_ok=True)
        (ws / path).write_text("{}")
    proc = sharpen(ws, "advance", check=False)
    assert proc.returncode == 0, out(proc)[-2000:]
    tracked = committed(ws)
    assert not [p for p in tracked if "dvc_plots" in p or "checkpoint" in p or "cache" in p or ".DS_Store" in p]


# --- 2. accepted with exit 0 before --------------------------------------------------------------------


def test_a_round_ahead_of_the_loop_state_is_refused_by_advance(finished, tmp_path):
    ws = copy(finished, tmp_path / "ws")
    set_round(ws, 7)
    proc = sharpen(ws, "advance", check=False)
    assert proc.returncode == 1 and "Traceback" not in out(proc)
    assert "params.yaml: `round: 7` is ahead of the loop state" in proc.stderr and "Set `round: 1`" in proc.stderr
    assert not run(ws, "git", "tag").stdout.strip()


def test_a_round_ahead_of_the_loop_state_is_refused_by_its_first_stage(finished, tmp_path):
    ws = copy(finished, tmp_path / "ws")
    before = (ws / "data/round/controller/metrics.json").read_text()
    set_round(ws, 7)
    proc = run(ws, "dvc", "repro", "controller", check=False)
    assert proc.returncode != 0 and "`round: 7` is ahead of the loop state" in out(proc)
    assert (ws / "data/round/controller/metrics.json").read_text() == before


def test_lineage_through_a_deleted_round_tag_is_refused_with_the_fix(advanced, tmp_path):
    ws = copy(advanced, tmp_path / "ws")
    run(ws, "git", "tag", "-d", "round-1")
    proc = sharpen(ws, "lineage", "round-2", check=False)
    assert proc.returncode == 1 and "None of None" not in out(proc)
    assert "tag round-1 is missing" in proc.stderr and "git tag -a round-1 " in proc.stderr


def test_the_rounds_table_keeps_a_round_whose_tag_was_deleted(advanced, tmp_path):
    ws = copy(advanced, tmp_path / "ws")
    run(ws, "git", "tag", "-d", "round-1")
    assert "(round-1 tag missing)" in sharpen(ws, "rounds", "--json").stdout


def test_a_sample_for_a_problem_not_in_the_round_is_refused_by_advance(finished, tmp_path):
    ws = copy(finished, tmp_path / "ws")
    path = ws / "data/round/generate/samples.parquet"
    samples = pl.read_parquet(path)
    samples = pl.concat([samples, samples.head(1).with_columns(problem_id=pl.lit("not-drawn"))])
    samples.write_parquet(path)
    run(ws, "dvc", "commit", "-f", "-q")  # as if every stage after it had run on it
    proc = sharpen(ws, "advance", check=False)
    assert proc.returncode == 1 and "Traceback" not in out(proc)
    assert "data/round/generate/samples.parquet: rows for 1 problem(s) not in the round ('not-drawn'" in proc.stderr
    assert "dvc repro -f -s generate" in proc.stderr and not run(ws, "git", "tag").stdout.strip()


# --- 3. a running loop is not raced ---------------------------------------------------------------------


def hold_loop_lock(ws: Path) -> subprocess.Popen:
    """A process holding the workspace's loop lock (as a running loop does) until killed."""
    code = ("import time; from sharpen.rounds.lock import workspace_lock\n"
            "with workspace_lock():\n    print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ws, env=env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_stage_started_by_hand_is_refused_while_a_loop_runs(finished, tmp_path):
    ws = copy(finished, tmp_path / "ws")
    before = (ws / "data/round/controller/metrics.json").read_text()
    loop = hold_loop_lock(ws)
    try:
        proc = run(ws, "dvc", "repro", "-f", "controller", check=False)
    finally:
        loop.kill()
        loop.wait()
    assert proc.returncode != 0 and f"a sharpen loop (pid {loop.pid}" in out(proc) and "Nothing was changed" in out(proc)
    assert (ws / "data/round/controller/metrics.json").read_text() == before


def test_the_loops_own_stages_run_under_its_lock(finished, tmp_path):
    ws = copy(finished, tmp_path / "ws")
    loop = hold_loop_lock(ws)
    try:
        proc = run(ws, "env", f"SHARPEN_LOOP_PID={loop.pid}", "dvc", "repro", "-f", "controller", check=False)
    finally:
        loop.kill()
        loop.wait()
    assert proc.returncode == 0, out(proc)[-2000:]


def test_advance_by_hand_is_refused_while_a_loop_runs(finished, tmp_path):
    ws = copy(finished, tmp_path / "ws")
    loop = hold_loop_lock(ws)
    try:
        proc = sharpen(ws, "advance", check=False)
    finally:
        loop.kill()
        loop.wait()
    assert proc.returncode == 1 and "`sharpen advance`: a sharpen loop" in proc.stderr
    assert not run(ws, "git", "tag").stdout.strip()


def test_the_loops_stage_waits_for_a_dvc_lock_taken_by_hand(finished, tmp_path):
    """A `dvc repro` by hand holding DVC's lock between two of the loop's stages: the loop waits, then goes on."""
    ws = copy(finished, tmp_path / "ws")
    code = ("import time; from dvc.repo import Repo\n"
            "with Repo('.') as repo, repo.lock:\n    print('held', flush=True); time.sleep(8)")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ws, env=env(), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    code = ("from sharpen.rounds import runner\nrunner.DVC_LOCK_POLL_S = 0.5\n"
            "runner.repro('controller', 1, print, timeout_s=120)\nprint('done')")
    started = time.monotonic()
    proc = run(ws, sys.executable, "-c", code, check=False)
    holder.wait()
    assert proc.returncode == 0 and "waiting for it" in proc.stdout and "done" in proc.stdout, out(proc)[-2000:]
    assert time.monotonic() - started >= 2


def test_params_edited_mid_round_stop_the_loop_before_its_next_stage(tmp_path):
    """A two-stage pipeline whose first stage edits params.yaml, as a user would while it runs."""
    ws = make_workspace(tmp_path / "ws")
    edit = "import pathlib; p = pathlib.Path('params.yaml'); p.write_text(p.read_text().replace('seed: 0', 'seed: 5'))"
    (ws / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "a": {"cmd": f'python -c "{edit}" && echo a > a.txt', "outs": ["a.txt"]},
        "b": {"cmd": "echo b > b.txt", "deps": ["a.txt"], "outs": ["b.txt"]}}}))
    proc = run(ws, sys.executable, "-m", "flows.loop", "--rounds", "1", check=False)
    assert proc.returncode == 1 and "Traceback" not in out(proc), out(proc)[-3000:]
    assert "params.yaml: edited while round 1 ran (seed" in out(proc) and "the loop stopped before stage b" in out(proc)
    assert (ws / "a.txt").exists() and not (ws / "b.txt").exists()


@pytest.mark.slow  # 55-80 s; the pieces it walks through have their own tests above (CI time)
@pytest.mark.parametrize("during", ["base"])  # after tasks wrote its outputs and DVC its ignore entries
def test_the_walkthrough_interrupted_by_ctrl_c_in_its_first_round_still_advances(tmp_path, during):
    """README's walkthrough as a user runs it: Ctrl-C during the first `dvc repro`, then `dvc repro` and
    `sharpen advance` again. DVC undoes its ignore entries on the interrupt; the round still advances."""
    import os
    import signal

    ws = make_workspace(tmp_path / "ws")
    proc = subprocess.Popen(["dvc", "repro"], cwd=ws, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    seen = []
    for line in proc.stdout:  # interrupt as soon as the stage starts, as a user's Ctrl-C would
        seen.append(line)
        if line.startswith(f"Running stage '{during}'"):
            time.sleep(1.0)
            os.killpg(proc.pid, signal.SIGINT)
            break
    proc.communicate(timeout=120)
    assert any(line.startswith(f"Running stage '{during}'") for line in seen), "".join(seen)[-2000:]
    assert proc.returncode != 0  # the interrupt did stop it
    run(ws, "dvc", "repro")
    result = sharpen(ws, "advance", check=False)
    assert result.returncode == 0, out(result)
    assert "round-1" in run(ws, "git", "tag", "--list").stdout
    assert run(ws, "git", "status", "--porcelain").stdout == ""  # nothing left for the user to commit
