"""A round on the user's own problem file: `dvc repro` reads it, and editing it reruns the round.

Run: `pytest tests/test_problem_file_round.py` (about a minute)
"""

import json

import polars as pl

from tests.workspace import make_workspace, run

ROWS = [{"id": f"q{a}-{b}", "prompt": f"{a}+{b}=", "answer": a + b, "category": "file"} for a in range(10, 19) for b in range(3, 9)]


def test_a_round_runs_on_a_problem_file_and_reruns_when_it_changes(tmp_path):
    ws = make_workspace(tmp_path / "ws", {"task": {"name": "file", "path": "data/problems/add.jsonl", "eval_size": 14}})
    path = ws / "data/problems/add.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    run(ws, "dvc", "repro")
    pool = pl.read_parquet(ws / "data/tasks/pool.parquet")
    held_out = pl.read_parquet(ws / "data/tasks/eval.parquet")
    assert (pool.height, held_out.height) == (len(ROWS) - 14, 14)
    assert set(pool["problem_id"]) | set(held_out["problem_id"]) == {r["id"] for r in ROWS}
    metrics = json.loads((ws / "data/round/evaluate/metrics.json").read_text())
    assert metrics["problems"] == 14 and 0 <= metrics["greedy_accuracy"] <= 1
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:-1]))
    status = run(ws, "dvc", "status", "tasks").stdout
    assert "data/problems" in status and "modified" in status
