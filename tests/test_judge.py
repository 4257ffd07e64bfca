"""Self-judging: scores parsed robustly from the judge's text, and a judged round on the tiny model.

Run: `pytest tests/test_judge.py`
"""

import json

import polars as pl
import pytest

from sharpen.judge import judge_prompt, parse_score
from tests.workspace import make_workspace, run


@pytest.mark.parametrize(
    ("text", "score"),
    [("The answer is right.\nScore: 4", 4), ("score of 3/5", 3), ("I give it 2 points.", 2), ("**Score:** 5", 5),
     ("Score: 2 ... on reflection, Score: 5", 5), ("4/5", 4), ("It is wrong. Score: 0", 0)],
)
def test_scores_are_parsed_from_free_text(text, score):
    assert parse_score(text) == score


@pytest.mark.parametrize("text", ["no idea", "Score: 9", "I rate it 7/10", ""])
def test_text_without_a_score_in_range_is_unparseable(text):
    assert parse_score(text) is None


def test_the_rubric_carries_the_question_and_the_response():
    prompt = judge_prompt("additive5", "What is 2+2?", "4")
    assert "Question: What is 2+2?" in prompt and "Response: 4" in prompt and "Score: <points>" in prompt


def test_a_judged_round_records_the_judge_and_never_scores_with_gold(tmp_path):
    ws = make_workspace(tmp_path / "ws", {"verify": {"labels": "judge", "judge": {"max_new_tokens": 6}}})
    run(ws, "dvc", "repro", "verify")
    verdicts = pl.read_parquet(ws / "data/round/verify/verdicts.parquet")
    samples = pl.read_parquet(ws / "data/round/generate/samples.parquet")
    assert verdicts.height == samples.height and verdicts["judge_text"].null_count() == 0
    assert set(verdicts["verifier"]) == {"judge:additive5"}
    parsed = [parse_score(t) for t in verdicts["judge_text"]]
    assert verdicts["extracted"].to_list() == [None if s is None else str(s) for s in parsed]
    metrics = json.loads((ws / "data/round/verify/metrics.json").read_text())
    assert {"judge_agreement", "judge_precision", "true_sample_accuracy"} <= set(metrics)
