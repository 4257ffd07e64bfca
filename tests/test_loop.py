"""The continuous loop: stopping rules, one loop per workspace, process-group kills, and the flow itself.

Run: `pytest tests/test_loop.py` (the flow test runs 2 real rounds under Prefect's test harness).
"""

import json
import os
import sys
import time

import psutil
import pytest

from sharpen.params import LoopParams
from sharpen.rounds.lock import workspace_lock
from sharpen.rounds.runner import StageTimeout, run_command
from sharpen.rounds.stopping import plateaued, stop_reason
from tests.workspace import env, make_workspace, run, stage_processes


def stop(params=None, **kw):
    args = dict(rounds_done=1, max_rounds=5, values=[0.3, 0.4], rejected=False, elapsed_s=1.0) | kw
    return stop_reason(params or LoopParams(), **args)


def test_keeps_going_while_improving():
    assert stop() is None


def test_stops_at_max_rounds():
    assert stop(rounds_done=5) == "max rounds reached (5)"


def test_stops_on_plateau():
    assert stop(values=[0.3, 0.5, 0.49, 0.5]).startswith("plateau")


def test_plateau_needs_patience_rounds():
    assert not plateaued([0.5, 0.4], min_delta=0.0, patience=2)


def test_stops_when_budget_spent():
    assert "budget" in stop(LoopParams(budget_s=10), elapsed_s=11)


def test_rejected_gate_stops_only_when_asked():
    assert stop(rejected=True) is None
    assert "rejected" in stop(LoopParams(on_reject="stop"), rejected=True)


def test_second_loop_on_a_workspace_is_refused(tmp_path):
    import subprocess

    lock = tmp_path / "loop.lock"
    second = ("from pathlib import Path; from sharpen.rounds.lock import workspace_lock\n"
              f"with workspace_lock(Path({str(lock)!r})): pass")
    with workspace_lock(lock):
        with workspace_lock(lock):  # re-entrant in the holding process (the CLI, then the flow)
            pass
        proc = subprocess.run([sys.executable, "-c", second], capture_output=True, text=True, env=env())
        assert proc.returncode != 0 and f"pid {os.getpid()}" in proc.stderr
    assert subprocess.run([sys.executable, "-c", second], env=env()).returncode == 0  # released on exit


def test_timeout_kills_the_whole_process_group():
    lines = []
    with pytest.raises(StageTimeout):
        run_command(["bash", "-c", "sleep 300 & echo $!; sleep 300"], on_line=lines.append, timeout_s=1.0)
    child = int(lines[0])
    time.sleep(0.2)
    alive = psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE
    assert not alive, "the stage's child survived the timeout"


def test_output_is_streamed_line_by_line():
    lines = []
    assert run_command(["bash", "-c", "echo one; echo two >&2; exit 3"], on_line=lines.append) == 3
    assert lines == ["one", "two"]


def test_flow_runs_two_rounds(tmp_path, monkeypatch):
    from prefect.testing.utilities import prefect_test_harness

    ws = make_workspace(tmp_path, {"loop": {"plateau": None, "stage_retries": 0}})
    for key, value in env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(ws)
    from flows.loop import loop

    with prefect_test_harness(server_startup_timeout=180):  # a loaded machine starts it slowly
        reason = loop(rounds=2)
    assert reason == "max rounds reached (2)"
    assert run(ws, "git", "tag", "--list", "round-*").stdout.split() == ["round-1", "round-2"]
    record = json.loads((ws / ".sharpen/loops.jsonl").read_text().splitlines()[-1])
    assert record["rounds_done"] == 2 and record["reason"] == reason and len(record["values"]) == 3
    rows = json.loads(run(ws, sys.executable, "-m", "sharpen.cli", "rounds", "--json").stdout)
    assert rows[-1]["round"] == 2 and rows[-1]["loop_stop"] == reason


def test_sigterm_to_the_flow_kills_the_running_stage(tmp_path):
    """A cancel (SIGTERM to the flow process) must not leave the stage running behind it."""
    import signal
    import subprocess

    ws = make_workspace(tmp_path / "ws", {"base": {"steps": 5000}})  # a base stage that runs for minutes
    flow = subprocess.Popen([sys.executable, "-m", "flows.loop", "--rounds", "1"], cwd=ws, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stage_procs():
        found = []
        for p in psutil.process_iter(["cmdline", "cwd"]):
            try:
                if p.info["cwd"] == str(ws) and "stages.base" in " ".join(p.info["cmdline"] or []):
                    found.append(p)
            except psutil.Error:
                pass
        return found

    deadline = time.time() + 120
    while not stage_procs() and time.time() < deadline:
        time.sleep(0.5)
    assert stage_procs(), "the base stage never started"
    flow.send_signal(signal.SIGTERM)
    flow.wait(timeout=60)
    time.sleep(1)
    survivors = [p for p in stage_procs() if p.status() != psutil.STATUS_ZOMBIE]
    assert not survivors, f"stage processes survived the flow: {[p.pid for p in survivors]}"


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_a_signal_stops_the_loop_in_seconds_and_says_how_to_resume(tmp_path, how):
    """Ctrl-C (SIGINT to the whole foreground group, Prefect's temporary server included) or SIGTERM to
    the loop: it exits within seconds, kills the stage, leaves no DVC lock behind, records the stop."""
    import signal
    import subprocess

    ws = make_workspace(tmp_path / "ws", {"base": {"steps": 5000}})
    flow = subprocess.Popen([sys.executable, "-m", "flows.loop", "--rounds", "1"], cwd=ws, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 120
    while not any("stages.base" in c for c in stage_processes(ws)) and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(1)  # the base stage is running, holding DVC's locks
    children = psutil.Process(flow.pid).children(recursive=True)
    assert children, "the loop started nothing"
    sent = time.time()
    if how == "ctrl-c":
        os.killpg(flow.pid, signal.SIGINT)
    else:
        flow.send_signal(signal.SIGTERM)
    out, _ = flow.communicate(timeout=60)
    assert time.time() - sent < 20, f"took {time.time() - sent:.0f} s to stop"
    assert flow.returncode == 128 + (signal.SIGINT if how == "ctrl-c" else signal.SIGTERM)
    assert "Resume with `python -m flows.loop --rounds 1`" in out and "Traceback" not in out
    time.sleep(1)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    lock = json.loads((ws / ".dvc/tmp/rwlock").read_text())
    assert not lock.get("write") and not lock.get("read")
    last = json.loads((ws / ".sharpen/loops.jsonl").read_text().splitlines()[-1])
    assert last["reason"].startswith("stopped by SIG") and "stage base" in last["reason"]


@pytest.mark.parametrize("rounds", ["0", "-2"])
def test_zero_or_negative_rounds_is_an_error_not_the_default(rounds, capsys):
    from flows.loop import main

    with pytest.raises(SystemExit) as exit_:
        main(["--rounds", rounds])
    assert exit_.value.code == 2 and "rounds is no loop" in capsys.readouterr().err


def test_a_failed_stage_ends_the_loop_with_one_line_and_no_traceback(tmp_path):
    """The stage's own `error:` line reaches the user once at the end; DVC's chatter and Prefect's
    tracebacks stay out of the console (the stage's full output is in its log file)."""
    import subprocess

    ws = make_workspace(tmp_path / "ws", {"loop": {"stage_retries": 0},
                                          "task": {"name": "file", "path": "data/problems/p.jsonl", "eval_size": 1}})
    (ws / "data/problems/p.jsonl").write_text('{"id": "a", "prompt": "1+2=", "answer": "3"}\n{"id": "b", "prompt": 7, "answer": "1"}\n')
    run(ws, "git", "add", "-A")
    run(ws, "git", "commit", "-qm", "a bad problem file")
    proc = subprocess.run([sys.executable, "-m", "flows.loop", "--rounds", "1"], cwd=ws, env=env(),
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out and "telemetry" not in out, out[-3000:]
    last = out.strip().splitlines()[-2:]  # the boundary's line, then Prefect stopping its temporary server
    assert any(line.startswith("error: stage tasks of round 1 failed: data/problems/p.jsonl line 2: field 'prompt'")
               for line in last), last
    assert "> python -m stages.tasks" not in out  # DVC's echo of the command: in the log file only
    log = (ws / ".sharpen/logs/round-1/tasks.log").read_text()
    assert "> python -m stages.tasks" in log and "field 'prompt' must be a string" in log


def test_dvc_chatter_is_told_apart_from_a_stages_own_lines():
    from sharpen.rounds.runner import dvc_chatter

    chatter = ["Running stage 'train':", "> python -m stages.train --kept x", "Updating lock file 'dvc.lock'",
               "To track the changes with git, run:", "\tgit add dvc.lock", "Use `dvc push` to send your updates",
               "Stage 'tasks' didn't change, skipping", "ERROR: failed to reproduce 'tasks': failed to run: x",
               "'data/state/policy.dvc' didn't change, skipping"]
    own = ["train (sft): 186 steps on 412 examples from base, 31s", "error: data/problems/p.jsonl line 2: bad",
           "generate: round 1:  50%|#####     | 48/96", "warning: 3 samples truncated"]
    assert all(dvc_chatter(line) for line in chatter)
    assert not any(dvc_chatter(line) for line in own)


def test_a_progress_bar_is_shown_every_ten_seconds_and_at_its_end(monkeypatch):
    from sharpen.rounds import runner

    clock = iter([0.0, 1.0, 2.0, 11.0, 12.0])
    monkeypatch.setattr(runner.time, "monotonic", lambda: next(clock))
    show = runner._progress_throttle()
    bars = [f"train: {p}%|##   | {p}/100" for p in (0, 1, 2, 11, 12)]
    assert [show(b) for b in bars] == [True, False, False, True, False]
    assert show("train: 100%|#####| 100/100") and show("train (sft): 252 steps on 2672 examples")


def test_a_torn_last_line_of_the_loop_log_is_skipped(tmp_path):
    """A loop killed while appending leaves half a line; `sharpen rounds` still reads the rest."""
    from sharpen.rounds.lineage import _loop_stops

    log = tmp_path / "loops.jsonl"
    log.write_text(json.dumps({"first_round": 1, "rounds_done": 2, "reason": "max rounds reached (2)"}) + "\n"
                   + '{"first_round": 3, "rounds_do')
    assert _loop_stops(log) == {2: "max rounds reached (2)"}
