"""The views of a loop: `sharpen rounds --wide` fits the terminal, `sharpen lineage` defaults to the
latest round, `sharpen new-loop` keeps the earlier rounds' gates, and a deleted `data/state` is one
error line with the command that restores it. The rounds are written as `sharpen advance` leaves
them (metrics committed and tagged, the gate in state.json), without running the pipeline.

Run: `pytest tests/test_cli_views.py`
"""

import json

import pytest
import yaml

from tests.workspace import make_workspace, run, sharpen

STOP = "plateau: greedy_accuracy did not improve by more than 0.0 for 2 rounds (loop.plateau.patience)"


def _write(ws, path, data) -> None:
    (ws / path).parent.mkdir(parents=True, exist_ok=True)
    (ws / path).write_text(json.dumps(data))


def _advanced_round(ws, n: int, accepted: bool = True) -> None:
    """Round n as `sharpen advance` leaves it: the round's metrics in a commit tagged round-n, then its
    gate in state.json, its policy promoted (if accepted) and `round: n+1`, committed."""
    acc = 0.25 + n / 50
    _write(ws, "data/round/evaluate/metrics.json", {
        "round": n, "greedy_accuracy": acc, "greedy_distinct_share": 0.6, "greedy_form_hack_share": 0.0,
        "greedy_lenient_accuracy": acc, "chance_accuracy": 0.01, "chance_pass@8": 0.05, "pass@1": acc - 0.1,
        "pass@8": acc + 0.2, "maj@8": acc, "self_consistency": 0.4, "wall_s": 61.25})
    for stage, metrics in {"controller": {"kind": "none"}, "generate": {"samples": 32768},
                           "verify": {"reward_control": "none"}, "filter": {"kept": 2000 + n, "select": "correct"},
                           "synthesize": {"examples": 0}, "train": {"model_hash": f"{n:032x}", "init_hash": "0" * 32}}.items():
        _write(ws, f"data/round/{stage}/metrics.json", metrics | {"round": n, "wall_s": 10.5 * n})
    run(ws, "git", "add", "-A")
    run(ws, "git", "commit", "-qm", f"round {n}: greedy_accuracy {acc:.3f}")
    run(ws, "git", "tag", "-a", f"round-{n}", "-m", f"sharpen round {n}: gate")
    state = json.loads((ws / "data/state/state.json").read_text())
    state["history"].append({"round": n, "accepted": accepted, "rule": "no_regression", "metric": "greedy_accuracy",
                             "value": acc, "previous": None, "reason": "gate", "policy_hash": f"{n:032x}"})
    if accepted:
        from sharpen.config import load_params
        from sharpen.rounds.state import loop_identity

        state |= {"policy": "policy", "policy_round": n, "policy_hash": f"{n:032x}",
                  "trained_under": loop_identity(load_params(ws / "params.yaml"))}
    _write(ws, "data/state/state.json", state)
    params = yaml.safe_load((ws / "params.yaml").read_text())
    (ws / "params.yaml").write_text(yaml.safe_dump(params | {"round": n + 1}, sort_keys=False))
    run(ws, "git", "add", "-A")
    run(ws, "git", "commit", "-qm", f"advance to round {n + 1}")


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """Base and six advanced rounds (round 4 rejected); the loop log says why the loop stopped."""
    ws = make_workspace(tmp_path_factory.mktemp("views") / "ws")
    _write(ws, "data/base/evaluate/metrics.json", {"greedy_accuracy": 0.276, "pass@1": 0.19, "pass@8": 0.51,
                                                   "maj@8": 0.25, "chance_accuracy": 0.01, "chance_pass@8": 0.05})
    _write(ws, "data/base/metrics.json", {"model_hash": "b" * 32, "wall_s": 70.0})
    for n in range(1, 7):
        _advanced_round(ws, n, accepted=n != 4)
    (ws / ".sharpen").mkdir(exist_ok=True)
    (ws / ".sharpen/loops.jsonl").write_text(json.dumps({"first_round": 1, "rounds_done": 6, "reason": STOP}) + "\n")
    return ws


@pytest.mark.parametrize("width", [100, 250])
def test_rounds_wide_fits_the_terminal_and_shows_every_column(loop, monkeypatch, width):
    from sharpen.rounds.lineage import round_columns

    monkeypatch.setenv("COLUMNS", str(width))
    out = sharpen(loop, "rounds", "--wide").stdout
    assert max(map(len, out.splitlines())) <= width
    assert "…" not in out  # no cell cut short
    rows = json.loads(sharpen(loop, "rounds", "--json").stdout)
    cols, _ = round_columns(rows, wide=True)
    for c in cols:
        if c not in ("round", "loop_stop"):
            assert c.removesuffix("_s") in out, c
    for r in rows:
        assert f"round {r['round']}" in out and r["policy"] in out
    assert all(word in out for word in STOP.split())  # the long cell wraps, whole


def test_lineage_without_a_tag_shows_the_latest_round(loop):
    info = json.loads(sharpen(loop, "lineage", "--json").stdout)
    assert info["tag"] == "round-6"
    assert sharpen(loop, "lineage").stdout.startswith("round-6 at commit")


def test_lineage_without_a_tag_or_any_round_says_how_to_make_one(tmp_path):
    proc = sharpen(make_workspace(tmp_path / "ws"), "lineage", check=False)
    assert proc.returncode == 1 and proc.stderr.count("error:") == 1 and "sharpen advance" in proc.stderr


def test_new_loop_keeps_the_earlier_rounds_gates(loop, tmp_path):
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(loop, ws, symlinks=True)
    before = {r["round"]: r["gate"] for r in json.loads(sharpen(ws, "rounds", "--json").stdout)}
    params = yaml.safe_load((ws / "params.yaml").read_text())
    (ws / "params.yaml").write_text(yaml.safe_dump(params | {"recipe": "ttrl"}, sort_keys=False))
    sharpen(ws, "new-loop")
    after = {r["round"]: r["gate"] for r in json.loads(sharpen(ws, "rounds", "--json").stdout)}
    assert after == before and after[6] == "accepted" and after[4] == "rejected"


@pytest.mark.parametrize("command", ["rounds", "advance", "new-loop", "report"])
def test_a_deleted_loop_state_is_one_line_with_the_way_back(loop, tmp_path, command):
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(loop, ws, symlinks=True)
    shutil.rmtree(ws / "data/state")
    proc = sharpen(ws, command, check=False)
    err = proc.stderr.strip()
    assert proc.returncode == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("error: data/state") and "not checked by sharpen" not in err
    fix = err.split("`")[1]
    run(ws, "sh", "-c", fix)  # the command it names brings the state back
    gates = [r["gate"] for r in json.loads(sharpen(ws, "rounds", "--json").stdout) if r["round"]]
    assert gates == ["accepted"] * 3 + ["rejected"] + ["accepted"] * 2
