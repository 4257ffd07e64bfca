"""Self-play rounds through the real pipeline (`dvc repro`, `sharpen advance`) in a throwaway
workspace: the proposer writes the round's problems, only in-band questions reach the solver,
both roles are promoted, and both survive a killed round and an interrupted advance.

Run: `pytest -m slow tests/test_selfplay_round.py` (a few minutes)
"""

import json
import os

import polars as pl
import pytest

from tests.workspace import env, make_workspace, run, sharpen

pytestmark = pytest.mark.slow

# a base that writes questions after `?` often enough, and a small round
SELF_PLAY = {"base": {"steps": 300, "hidden_size": 64, "intermediate_size": 128, "propose_fraction": 0.3},
             "generate": {"k": 4, "max_new_tokens": 4}, "propose": {"prompts": 4, "group": 4, "steps": 2, "batch_size": 8},
             "train": {"batch_size": 8, "grpo": {"steps": 2, "num_generations": 4}}, "advance": {"gate": "accept"}}


def metrics(ws, stage):
    return json.loads((ws / f"data/round/{stage}/metrics.json").read_text())


@pytest.fixture(scope="module")
def r_zero(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("r-zero"), {"recipe": "r-zero", **SELF_PLAY})
    run(ws, "dvc", "repro")
    return ws


def test_the_solver_answers_the_proposers_questions(r_zero):
    proposals = pl.read_parquet(r_zero / "data/round/propose/proposals.parquet")
    problems = pl.read_parquet(r_zero / "data/round/generate/problems.parquet")
    valid = set(proposals.filter(pl.col("reason") == "ok")["question"])
    assert problems.height and set(problems["problem_id"]) == valid
    eval_ids = set(pl.read_parquet(r_zero / "data/tasks/eval.parquet")["problem_id"])
    assert not valid & eval_ids


def test_only_in_band_questions_reach_the_solver(r_zero):
    verdicts = pl.read_parquet(r_zero / "data/round/verify/verdicts.parquet")
    p_hat = dict(verdicts.group_by("problem_id").agg(pl.col("majority_ratio").first()).iter_rows())
    kept = set(pl.read_parquet(r_zero / "data/round/filter/kept.parquet")["problem_id"])
    assert all(0.3 <= p_hat[p] <= 0.8 for p in kept)
    rollouts = pl.read_parquet(r_zero / "data/round/train/rollouts.parquet")
    assert all(0.3 <= p_hat[p] <= 0.8 for p in set(rollouts["problem_id"]))


def test_the_proposer_is_rewarded_by_the_solvers_agreement(r_zero):
    scored = pl.read_parquet(r_zero / "data/round/train_proposer/proposals.parquet")
    for row in scored.iter_rows(named=True):
        want = -1.0 if row["reason"] != "ok" else max(0.0, min(row["solver_rate"], 1 - row["solver_rate"]) - row["repetition"])
        assert row["reward"] == pytest.approx(want)


def test_advance_promotes_both_roles_and_the_next_round_proposes_from_the_new_proposer(r_zero):
    trained = metrics(r_zero, "train_proposer")["model_hash"]
    sharpen(r_zero, "advance")
    state = json.loads((r_zero / "data/state/state.json").read_text())
    assert state["policy"] == "policy" and (state["proposer"], state["proposer_round"]) == ("proposer", 1)
    assert (r_zero / "data/state/proposer.dvc").exists() and state["proposer_hash"] == trained
    run(r_zero, "dvc", "repro", "propose")
    assert metrics(r_zero, "propose")["proposer_hash"] == trained


def test_a_killed_round_and_an_interrupted_advance_keep_both_roles(r_zero):
    """Round 2 killed as the proposer trains, rerun; its advance killed after the proposer is copied, rerun."""
    import subprocess

    e = env() | {"SHARPEN_FAULT": "start:train_proposer"}
    subprocess.run(["dvc", "repro"], cwd=r_zero, env=e, capture_output=True, start_new_session=True)
    assert metrics(r_zero, "propose")["round"] == 2 and metrics(r_zero, "train_proposer")["round"] == 1
    run(r_zero, "dvc", "repro")
    assert metrics(r_zero, "train_proposer")["round"] == 2
    subprocess.run(["sharpen", "advance"], cwd=r_zero, env=env() | {"SHARPEN_FAULT": "advance:proposer-copied"},
                   capture_output=True, start_new_session=True)
    sharpen(r_zero, "advance")
    state = json.loads((r_zero / "data/state/state.json").read_text())
    assert state["proposer_round"] == 2 and state["proposer_hash"] == metrics(r_zero, "train_proposer")["model_hash"]
    assert run(r_zero, "git", "status", "--porcelain").stdout.strip() == ""
    assert os.path.exists(r_zero / "data/state/proposer/config.json")


def test_lineage_shows_the_proposers_chain_beside_the_solvers(r_zero):
    """After two advanced rounds: round 2's proposer was trained from round 1's, which came from the base,
    and each round's questions were written by the proposer the round started with."""
    info = json.loads(sharpen(r_zero, "lineage", "round-2", "--json").stdout)
    two, one = info["proposer_chain"]
    assert (two["round"], two["trained_from"], two["written_by"]) == (2, "round 1", "round 1")
    assert (one["round"], one["trained_from"], one["written_by"]) == (1, "base", "base")
    assert two["init_hash"] == one["proposer"] != two["proposer"]
    assert "proposer chain" in sharpen(r_zero, "lineage", "round-2").stdout


def test_the_report_shows_what_the_proposer_wrote_each_round(r_zero, tmp_path):
    sharpen(r_zero, "report", "--out", str(tmp_path / "report.html"))
    page = (tmp_path / "report.html").read_text()
    assert "Proposer per round" in page
    table = page.split("What the proposer wrote", 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 1 + 2  # header + rounds 1 and 2
    best = pl.read_parquet(r_zero / "data/round/train_proposer/proposals.parquet").filter(pl.col("reason") == "ok")
    assert best.sort("reward", descending=True)["question"][0] in table


@pytest.fixture(scope="module")
def absolute_zero(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("absolute-zero"), {"recipe": "absolute-zero", **SELF_PLAY})
    run(ws, "dvc", "repro", "train_proposer")
    return ws


def test_absolute_zeros_tasks_carry_the_executors_output(absolute_zero):
    proposals = pl.read_parquet(absolute_zero / "data/round/propose/proposals.parquet")
    problems = pl.read_parquet(absolute_zero / "data/round/generate/problems.parquet")
    assert problems.height
    for pid, answer in problems.select("problem_id", "answer").iter_rows():
        assert answer == str(eval(pid, {"__builtins__": {}}))  # noqa: S307 -- the test's own check of valid ones
    rejected = set(proposals.filter(pl.col("reason") != "ok")["question"].drop_nulls())
    assert not rejected & set(problems["problem_id"])


@pytest.fixture(scope="module")
def r_zero_sft(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("r-zero-sft"), {"recipe": "r-zero-sft", **SELF_PLAY,
                                                                "train": {"batch_size": 8}})
    run(ws, "dvc", "repro", "train")
    return ws


def test_r_zero_sft_trains_the_solver_on_in_band_majority_answers(r_zero_sft):
    m = metrics(r_zero_sft, "train")
    kept = pl.read_parquet(r_zero_sft / "data/round/filter/kept.parquet")
    verdicts = pl.read_parquet(r_zero_sft / "data/round/verify/verdicts.parquet")
    assert (m["objective"], m["examples"]) == ("sft", kept.height) and kept.height and m["steps"] > 0
    joined = kept.join(verdicts, on=["problem_id", "sample_idx"])
    assert joined.height == kept.height and joined["correct"].all()  # correct = agrees with the majority label
    assert joined["majority_ratio"].is_between(0.3, 0.8).all()


@pytest.fixture(scope="module")
def r_zero_lora(tmp_path_factory):
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    ws = make_workspace(tmp_path_factory.mktemp("r-zero-lora"),
                        {"recipe": "r-zero", **SELF_PLAY, "train": {**SELF_PLAY["train"], "lora": lora}})
    run(ws, "dvc", "repro")
    return ws


def test_the_two_roles_can_be_two_adapters_over_one_base(r_zero_lora):
    from sharpen.models import adapter_base, is_adapter

    solver, proposer = (r_zero_lora / f"data/round/{s}/model" for s in ("train", "train_proposer"))
    assert is_adapter(solver) and is_adapter(proposer)
    base = (r_zero_lora / "data/base/model").resolve()
    assert adapter_base(solver).resolve() == base == adapter_base(proposer).resolve()
    assert metrics(r_zero_lora, "train")["model_hash"] != metrics(r_zero_lora, "train_proposer")["model_hash"]
    sharpen(r_zero_lora, "advance")
    run(r_zero_lora, "dvc", "repro", "propose")  # round 2's proposer is round 1's adapter, loaded over the base
    assert metrics(r_zero_lora, "propose")["proposer_hash"] == metrics(r_zero_lora, "train_proposer")["model_hash"]
    assert is_adapter(r_zero_lora / "data/state/proposer") and is_adapter(r_zero_lora / "data/state/policy")
