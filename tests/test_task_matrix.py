"""Every task the README lists runs a whole round under every train objective, and each stage's output is checked.

Tasks: arithmetic, a problem file with math answers, a problem file with unit tests, HumanEval, and
reasoning-gym on a number, a word and a True/False dataset. Objectives: sft, dpo, grpo online, and
grpo on the round's own groups (`rollouts: round`). Each task gets one workspace (a class, so
pytest-xdist spreads the tasks over workers) whose policy is a tiny char-level model fitted to answer
the round's problems right about half the time (tests.workspace.fit_tiny_model), so every objective
has right and wrong samples to learn from. `dvc repro` runs the whole round once per objective; DVC
reruns only what the objective changes (filter, train, evaluate), the rest is shared.

Run: `pytest tests/test_task_matrix.py` (about 2 minutes a task; `-k humaneval` for one)
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.workspace import deep_update, fit_tiny_model, make_workspace, run

K = 4  # samples per problem: with the fitted policy's 50/50 answers, nearly every group is mixed
OBJECTIVES = {  # in this order, the filter's params change once (dpo's pairs), so it reruns once
    "sft": {"train": {"objective": "sft"}},
    "grpo-online": {"train": {"objective": "grpo", "init": "previous", "grpo": {"steps": 2, "num_generations": K}}},
    "grpo-round": {"train": {"objective": "grpo", "init": "previous",
                             "grpo": {"rollouts": "round", "steps": 2, "num_generations": K}}},
    "dpo": {"train": {"objective": "dpo", "init": "previous"}, "filter": {"pairs": {"rule": "correct_vs_incorrect"}}},
}
# Problem files written into the workspace (the `file` task reads data/problems/).
MATH_ROWS = [
    {"id": "m1", "prompt": "What is 7 + 5?", "answer": "12"}, {"id": "m2", "prompt": "Half of 1?", "answer": "1/2"},
    {"id": "m3", "prompt": "3 - 10 =", "answer": "-7"}, {"id": "m4", "prompt": "0.25 + 0.5 =", "answer": "0.75"},
    {"id": "m5", "prompt": "Simplify x + x.", "answer": "2x"}, {"id": "m6", "prompt": "6 * 7 =", "answer": "42"},
    {"id": "m7", "prompt": "Three quarters?", "answer": "\\frac{3}{4}"}, {"id": "m8", "prompt": "9 - 9 =", "answer": "0"},
]
CODE_ROWS = [
    {"id": f"c{i}", "prompt": f"def {name}(a, b):\n", "answer": f"    return {body}\n",
     "tests": json.dumps({"entry_point": name, "cases": [{"input": repr(args), "output": repr(out)} for args, out in cases]})}
    for i, (name, body, cases) in enumerate([
        ("add", "a + b", [((2, 3), 5), ((0, 0), 0)]), ("sub", "a - b", [((5, 3), 2), ((0, 4), -4)]),
        ("mul", "a * b", [((2, 3), 6), ((4, 0), 0)]), ("big", "max(a, b)", [((2, 3), 3), ((7, 1), 7)]),
        ("small", "min(a, b)", [((2, 3), 2), ((7, 1), 1)]), ("same", "a == b", [((2, 2), True), ((7, 1), False)]),
        ("cat", "str(a) + str(b)", [((1, 2), "12")]), ("avg", "(a + b) / 2", [((2, 4), 3.0)]),
    ])
]
TASKS = {
    "arithmetic": ({"name": "arithmetic", "pool_size": 24, "eval_size": 4, "max_digits": 2}, "exact_integer"),
    "file-math": ({"name": "file", "path": "data/problems/matrix-math.jsonl", "eval_size": 3}, "math_equiv"),
    "file-tests": ({"name": "file", "path": "data/problems/matrix-code.jsonl", "eval_size": 3}, "unit_tests"),
    "humaneval": ({"name": "humaneval", "eval_size": 2}, "unit_tests"),
    "gym-number": ({"name": "reasoning_gym", "dataset": "basic_arithmetic", "pool_size": 8, "eval_size": 3}, "reasoning_gym"),
    "gym-word": ({"name": "reasoning_gym", "dataset": "spell_backward", "pool_size": 8, "eval_size": 3}, "reasoning_gym"),
    "gym-bool": ({"name": "reasoning_gym", "dataset": "ransom_note", "pool_size": 8, "eval_size": 3}, "reasoning_gym"),
}
PER_ROUND = 3  # problems a round samples from the pool


def _params(ws: Path, task: dict, verifier: str, objective: str, extra: dict) -> None:
    params = yaml.safe_load((ws / "params.base.yaml").read_text())
    deep_update(params, {"task": task, "verify": {"verifier": verifier}, **extra})
    deep_update(params, json.loads(json.dumps(OBJECTIVES[objective])))
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _gold(task_name: str, problems: pl.DataFrame) -> list[str]:
    if task_name == "arithmetic":
        from sharpen.tasks import arithmetic

        return [arithmetic.completion_for(*arithmetic.operands(pid), use_scratchpad=False) for pid in problems["problem_id"]]
    return problems["answer"].to_list()


def _humaneval_seed(eval_size: int, task_seed: int = 1234, longest: int = 40) -> int:
    """A round seed whose draw of PER_ROUND problems has short canonical solutions, which the tiny
    model can learn in seconds."""
    from sharpen.sampling import select_problems
    from sharpen.tasks import humaneval

    pool, _ = humaneval.make_splits(eval_size, task_seed)
    for seed in range(5000):
        drawn = select_problems(pool, PER_ROUND, seed, 1)
        if drawn["answer"].str.len_chars().max() <= longest:
            return seed
    raise AssertionError("no seed draws short HumanEval solutions")


def build(tmp: Path, key: str) -> tuple[Path, dict]:
    """The task's workspace, its tasks made and its policy fitted to the round's problems."""
    from sharpen.sampling import select_problems

    task, verifier = TASKS[key]
    seed = _humaneval_seed(task["eval_size"]) if key == "humaneval" else 0
    model = fit_tiny_model(tmp / "untrained", ["x"], ["y"], steps=1)
    ws = make_workspace(tmp / "ws", {"model": str(model), "seed": seed, "task": task, "verify": {"verifier": verifier}})
    (ws / "data/problems/matrix-math.jsonl").write_text("".join(json.dumps(r) + "\n" for r in MATH_ROWS))
    (ws / "data/problems/matrix-code.jsonl").write_text("".join(json.dumps(r) + "\n" for r in CODE_ROWS))
    run(ws, "git", "add", "-A")
    run(ws, "git", "commit", "-qm", "problem files")
    run(ws, "dvc", "repro", "tasks")
    drawn = select_problems(pl.read_parquet(ws / "data/tasks/pool.parquet"), PER_ROUND, seed, 1)
    gold = _gold(task["name"], drawn)
    fitted = fit_tiny_model(tmp / "policy", drawn["prompt"].to_list(), gold)
    longest = max(len(g) for g in gold) + 2
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["model"] = str(fitted)
    deep_update(params, {
        "generate": {"k": K, "max_new_tokens": longest, "logprobs": True, "problems_per_round": PER_ROUND},
        "evaluate": {"k": K, "max_new_tokens": longest, "pass_k": [1, K]},
        "train": {"batch_size": 8, "epochs": 1, "lr": 1e-3},
    })
    (ws / "params.base.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return ws, {"gold": dict(zip(drawn["problem_id"], gold, strict=True)), "longest": longest}


def check_round(ws: Path, key: str, objective: str, fitted: dict) -> None:
    task, verifier = TASKS[key]
    _params(ws, task, verifier, objective,
            {"train": {"grpo": {"max_completion_length": fitted["longest"]}}} if objective == "grpo-online" else {})
    run(ws, "dvc", "repro")
    # verify: every sample scored by the task's verifier; the fitted policy's right answers pay, its "?" never does
    verdicts = pl.read_parquet(ws / "data/round/verify/verdicts.parquet")
    samples = pl.read_parquet(ws / "data/round/generate/samples.parquet")
    assert set(verdicts["verifier"]) == {verifier}
    scored = samples.join(verdicts, on=["problem_id", "sample_idx"])
    gold = scored.with_columns(gold=pl.col("problem_id").replace_strict(fitted["gold"]))
    assert gold.filter(pl.col("completion") == pl.col("gold"))["correct"].all()
    assert not gold.filter(pl.col("completion") == "?")["correct"].any()
    assert 0 < verdicts["correct"].sum() < verdicts.height
    # train: the objective ran and moved the policy
    train = json.loads((ws / "data/round/train/metrics.json").read_text())
    assert train["objective"] == OBJECTIVES[objective]["train"]["objective"]
    assert train["skipped"] is None and train["steps"] > 0, train
    assert train["model_hash"] != train["init_hash"]
    if objective.startswith("grpo"):
        assert train["rollouts_from"] == OBJECTIVES[objective]["train"]["grpo"].get("rollouts", "online")
        assert pl.read_parquet(ws / "data/round/train/rollouts.parquet").height > 0
    if objective == "dpo":
        assert train["pairs"] > 0
    # evaluate: metrics for every held-out problem, scored by the same verifier
    metrics = json.loads((ws / "data/round/evaluate/metrics.json").read_text())
    assert metrics["problems"] == task["eval_size"]
    for name in ("greedy_accuracy", "pass@1", f"pass@{K}", f"maj@{K}"):
        assert 0 <= metrics[name] <= 1
    evaluated = pl.read_parquet(ws / "data/round/evaluate/samples.parquet")
    assert evaluated.height == task["eval_size"] * (K + 1)


@pytest.fixture(scope="class")
def workspace(request, tmp_path_factory):
    return build(tmp_path_factory.mktemp(request.cls.task), request.cls.task)


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def _a_whole_round_runs(self, workspace, objective):
    ws, fitted = workspace
    check_round(ws, self.task, objective, fitted)


def test_a_problem_file_is_split_as_asked_and_editing_it_reruns_the_round(tmp_path_factory):
    ws, _ = build(tmp_path_factory.mktemp("file-edit"), "file-math")
    pool = pl.read_parquet(ws / "data/tasks/pool.parquet")
    held_out = pl.read_parquet(ws / "data/tasks/eval.parquet")
    assert (pool.height, held_out.height) == (len(MATH_ROWS) - 3, 3)
    assert set(pool["problem_id"]) | set(held_out["problem_id"]) == {r["id"] for r in MATH_ROWS}
    path = ws / "data/problems/matrix-math.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in MATH_ROWS[:-1]))
    status = run(ws, "dvc", "status", "tasks").stdout
    assert "data/problems" in status and "modified" in status


for _key in TASKS:  # one class per task: a workspace each, spread over xdist workers (--dist loadscope)
    _name = f"TestRound_{_key.replace('-', '_')}"
    globals()[_name] = type(_name, (), {"task": _key, "test_a_whole_round_runs": _a_whole_round_runs})
