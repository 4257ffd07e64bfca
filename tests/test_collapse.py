"""The label-free collapse rule: a round whose policy answers more alike within a problem while its
greedy answers lose variety across problems is rejected and stops the loop, with no gold read.

Run: `pytest tests/test_collapse.py`
"""

from __future__ import annotations

import polars as pl
import pytest

from sharpen.metrics import agreement_monitors
from sharpen.params import CollapseParams, LoopParams
from sharpen.rounds.gate import gate
from sharpen.rounds.stopping import stop_reason

# held-out monitors measured on the embedded default (RESULTS.md): base, ttrl-grpo round 1, rest-em round 1
BASE = {"greedy_accuracy": 0.276, "self_consistency": 0.349, "greedy_distinct_share": 0.704}
TTRL_GRPO = {"greedy_accuracy": 0.118, "self_consistency": 0.519, "greedy_distinct_share": 0.614}
REST_EM = {"greedy_accuracy": 0.426, "self_consistency": 0.458, "greedy_distinct_share": 0.718}


def test_a_collapsing_round_is_rejected():
    decision = gate("accept", "greedy_accuracy", 0.0, TTRL_GRPO, BASE, collapse_rule=CollapseParams())
    assert not decision.accepted and decision.collapsed
    assert decision.reason.startswith("collapse: self_consistency rose +0.170")


def test_a_learning_round_is_not():
    decision = gate("accept", "greedy_accuracy", 0.0, REST_EM, BASE, collapse_rule=CollapseParams())
    assert decision.accepted and not decision.collapsed


def test_the_rule_reads_no_gold():
    blind = {k: v for k, v in TTRL_GRPO.items() if k != "greedy_accuracy"} | {"greedy_accuracy": 0.99}
    assert gate("accept", "greedy_accuracy", 0.0, blind, BASE, collapse_rule=CollapseParams()).collapsed


def test_off_means_off():
    assert gate("accept", "greedy_accuracy", 0.0, TTRL_GRPO, BASE, collapse_rule=None).accepted


def test_a_collapse_stops_the_loop_whatever_on_reject_says():
    params = LoopParams(on_reject="continue", plateau=None, max_rounds=10)
    assert stop_reason(params, rounds_done=1, max_rounds=10, values=[0.3, 0.1], rejected=True, elapsed_s=1,
                       collapsed="collapse: x").startswith("collapse")
    assert stop_reason(params, rounds_done=1, max_rounds=10, values=[0.3, 0.1], rejected=True, elapsed_s=1) is None


@pytest.mark.parametrize(("answers", "consistency", "distinct"), [
    ({"a": ["1", "1", "1", "1"], "b": ["2", "2", "2", "2"]}, 1.0, 1.0),  # confident and varied
    ({"a": ["1", "1", "1", "1"], "b": ["1", "1", "1", "1"]}, 1.0, 0.5),  # the same answer to everything
    ({"a": ["1", "2", "3", "4"], "b": ["5", "6", "7", None]}, 0.25, 1.0),  # spread out
])
def test_the_monitors_read_only_the_answers(answers, consistency, distinct):
    rows = [(pid, i - 1, a) for pid, xs in answers.items() for i, a in enumerate([xs[0], *xs])]
    samples = pl.DataFrame(rows, schema={"problem_id": pl.String, "sample_idx": pl.Int64, "extracted": pl.String}, orient="row")
    got = agreement_monitors(samples)
    assert (got["self_consistency"], got["greedy_distinct_share"]) == (consistency, distinct)
