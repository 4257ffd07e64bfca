"""Kill anywhere: SIGKILL a stage (with the `dvc repro` above it) or `sharpen advance` at a named
point, rerun, and nothing is lost, half-written or stale.

A fault point (`SHARPEN_FAULT`, sharpen/faults.py) SIGKILLs the whole process group, as a power
cut or the OOM killer would. After each kill:
- every artifact that exists is whole (each Parquet file validates, each JSON parses);
- rerunning `dvc repro` completes, and every stage's metrics (timings aside) and the round's
  samples, verdicts and kept rows equal those of an uninterrupted run with the same params;
- for advance: the state never names a policy that git does not hold, and rerunning
  `sharpen advance` finishes it, leaving the same state and a clean tree.
And the Prefect loop killed outright (SIGKILL, no cleanup) mid-round: restarted, it kills the
orphaned stage, resumes the round, advances it once, and leaves no stage process behind.

Run: `pytest -m "reliability and not slow" tests/reliability/test_kill.py` (CI's subset, about 3 minutes);
`pytest -m reliability tests/reliability/test_kill.py` adds the rest of the matrix (about 25 minutes).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.workspace import env, make_workspace, run, sharpen, stage_processes

pytestmark = pytest.mark.reliability

ROUND_FILES = ["data/round/generate/samples.parquet", "data/round/verify/verdicts.parquet",
               "data/round/filter/kept.parquet", "data/round/filter/decisions.parquet"]
# (fault point, what is changed so that the stage reruns). CI runs the first list, one case per
# write mechanism (directory swap, file write), and the fast suite kills generate and train mid-way;
# the second (marked slow too) completes the matrix: every stage killed at its start and at its final write.
CASES = [
    ("write:round/filter/kept.parquet", "seed"),
    ("swap:round/train/model", "seed"),
]
MORE_CASES = [
    ("swap:data/base/model", "base"),  # the same directory swap as train's, after a whole round (85 s)
    ("shard@1", "seed"),  # the fast suite kills generate mid-shard too (tests/test_generate_resume.py)
    ("train-step@2", "seed"),  # and train between checkpoints (tests/test_train_resume.py)
    ("write:round/generate/samples.parquet", "seed"),
    ("write:round/evaluate/metrics.json", "seed"),
    ("write:data/tasks/eval.parquet", "task"),
    ("start:tasks", "task"),
    ("start:base", "base"),
    ("start:evaluate", "seed"),  # evaluate_base, the first stage a new seed reruns
    ("write:base/evaluate/metrics.json", "seed"),
    ("start:controller", "seed"),
    ("write:round/controller/metrics.json", "seed"),
    ("start:generate", "seed"),
    ("start:verify", "seed"),
    ("write:round/verify/verdicts.parquet", "seed"),
    ("start:filter", "seed"),
    ("start:synthesize", "seed"),
    ("write:round/synthesize/examples.parquet", "seed"),
    ("start:train", "seed"),
    ("write:round/train/metrics.json", "seed"),
    ("write:round/evaluate/samples.parquet", "seed"),
]
ALL_CASES = [pytest.param(*c, id=c[0]) for c in CASES] + [
    pytest.param(*c, id=c[0], marks=pytest.mark.slow) for c in MORE_CASES
]
CHANGES = {"seed": {"seed": 1}, "base": {"base": {"seed": 1}}, "task": {"task": {"seed": 99}}}
ADVANCE_POINTS = ["advance:committed", "advance:tagged", "advance:policy-copied", "advance:policy-added",
                  "advance:state-written", "advance:round-bumped"]
TIMING = ("wall_s", "_s", "per_s", "seconds")


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def change(ws: Path, what: str) -> None:
    params = yaml.safe_load((ws / "params.yaml").read_text())
    for key, value in CHANGES[what].items():
        params[key] = {**params[key], **value} if isinstance(value, dict) else value
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(ws, "git", "commit", "-qam", f"change {what}")


def killed(ws: Path, cmd: list[str], point: str) -> subprocess.CompletedProcess:
    """Run `cmd` in its own session with the fault armed; it must die by SIGKILL."""
    proc = subprocess.run(cmd, cwd=ws, env=env() | {"SHARPEN_FAULT": point}, capture_output=True, text=True,
                          start_new_session=True)
    assert proc.returncode == -signal.SIGKILL, f"{point} was never reached (exit {proc.returncode})\n{proc.stderr[-2000:]}"
    return proc


def metrics(ws: Path) -> dict:
    """Every stage's metrics.json under data/, timings dropped."""
    out = {}
    for path in sorted((ws / "data").rglob("metrics.json")):
        data = json.loads(path.read_text())
        out[str(path.relative_to(ws))] = {k: v for k, v in data.items() if not k.endswith(TIMING)}
    return out


def assert_whole(ws: Path) -> None:
    """No artifact is half-written: every Parquet file reads, every JSON parses."""
    for path in (ws / "data").rglob("*.parquet"):
        if ".tmp-" not in path.name:
            pl.read_parquet(path)
    for path in (ws / "data").rglob("*.json"):
        if ".tmp-" not in path.name:
            json.loads(path.read_text())


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    # keep every sample, so that train has work whatever the seed (the tiny base is rarely right)
    ws = make_workspace(tmp_path_factory.mktemp("finished"), {"filter": {"select": "all", "cap": 2}})
    run(ws, "dvc", "repro")
    run(ws, "git", "add", "-A")
    run(ws, "git", "commit", "-qm", "round 1 run")
    return ws


@pytest.fixture(scope="module")
def references(finished, tmp_path_factory):
    """Uninterrupted runs after each change, made once."""
    made = {}

    def get(what: str) -> Path:
        if what not in made:
            ws = copy(finished, tmp_path_factory.mktemp(f"ref-{what}") / "ws")
            change(ws, what)
            run(ws, "dvc", "repro")
            made[what] = ws
        return made[what]

    return get


@pytest.mark.parametrize(("point", "what"), ALL_CASES)
def test_a_killed_round_resumes_to_the_uninterrupted_result(finished, references, tmp_path, point, what):
    ref = references(what)
    ws = copy(finished, tmp_path / "ws")
    change(ws, what)
    killed(ws, ["dvc", "repro"], point)
    assert_whole(ws)
    run(ws, "dvc", "repro")
    assert metrics(ws) == metrics(ref)
    for rel in ROUND_FILES:
        assert pl.read_parquet(ws / rel).equals(pl.read_parquet(ref / rel)), rel
    assert "up to date" in run(ws, "dvc", "status").stdout or not run(ws, "dvc", "status", "--json").stdout.strip("{}\n")
    assert not list((ws / "data").rglob("*.old-*")), "a directory moved aside was left behind"


def committed_hashes(ws: Path) -> set:
    """Policy hashes git holds: the committed state's policy and the tagged round's trained model."""
    held = {json.loads(run(ws, "git", "show", "HEAD:data/state/state.json").stdout).get("policy_hash")}
    if run(ws, "git", "tag", "--list", "round-1").stdout.strip():
        held.add(json.loads(run(ws, "git", "show", "round-1:data/round/train/metrics.json").stdout)["model_hash"])
    return held


@pytest.fixture(scope="module")
def advanced(finished, tmp_path_factory):
    ws = copy(finished, tmp_path_factory.mktemp("advanced") / "ws")
    sharpen(ws, "advance")
    return ws


@pytest.mark.parametrize("point", ADVANCE_POINTS)
def test_a_killed_advance_finishes_on_rerun(finished, advanced, tmp_path, point):
    ws = copy(finished, tmp_path / "ws")
    killed(ws, [sys.executable, "-m", "sharpen.cli", "advance"], point)
    state = json.loads((ws / "data/state/state.json").read_text())
    assert state.get("policy_hash") in committed_hashes(ws)  # never a policy git does not hold
    sharpen(ws, "advance")
    assert run(ws, "git", "status", "--porcelain").stdout == ""
    assert run(ws, "git", "tag", "--list").stdout.split() == ["round-1"]
    final = json.loads((ws / "data/state/state.json").read_text())
    expected = json.loads((advanced / "data/state/state.json").read_text())
    assert final == expected
    assert yaml.safe_load((ws / "params.yaml").read_text())["round"] == 2
    assert (ws / "data/state/policy/config.json").exists()


def test_a_killed_loop_resumes_its_round_once_and_leaves_no_orphan(tmp_path):
    ws = make_workspace(tmp_path / "ws", {"base": {"steps": 400}})  # a base stage long enough to kill
    flow = subprocess.Popen([sys.executable, "-m", "flows.loop", "--rounds", "1"], cwd=ws, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not any("stages.base" in c for c in stage_processes(ws)) and time.time() < deadline:
        time.sleep(0.3)
    flow.kill()  # SIGKILL: no handler runs, the stage's own process group lives on
    flow.wait()
    assert stage_processes(ws), "expected the base stage to outlive the killed loop"
    run(ws, sys.executable, "-m", "flows.loop", "--rounds", "1")
    assert not stage_processes(ws)
    assert run(ws, "git", "tag", "--list").stdout.split() == ["round-1"]
    assert yaml.safe_load((ws / "params.yaml").read_text())["round"] == 2
    stops = [json.loads(line) for line in (ws / ".sharpen/loops.jsonl").read_text().splitlines()]
    assert stops[-1]["rounds_done"] == 1
