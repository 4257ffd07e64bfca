"""Filter rules: correct-only/dedup/cap, threshold, keep-all, the problem rules, and per-problem stats.

Run: `pytest tests/test_filters.py`
"""

import polars as pl
import pytest

from sharpen.filters import decide, kept_examples, problem_stats
from sharpen.params import FilterParams


def rule(**kw) -> FilterParams:
    return FilterParams.model_validate(kw)


def make(rows):
    """rows: (problem_id, sample_idx, completion, correct[, reward])."""
    samples = pl.DataFrame(
        {"round": [1] * len(rows), "problem_id": [r[0] for r in rows], "sample_idx": [r[1] for r in rows],
         "prompt": [r[0] + "=" for r in rows], "completion": [r[2] for r in rows]}
    )
    verdicts = pl.DataFrame(
        {"problem_id": [r[0] for r in rows], "sample_idx": [r[1] for r in rows],
         "reward": [r[4] if len(r) > 4 else 1.0 if r[3] else 0.0 for r in rows], "correct": [r[3] for r in rows]}
    )
    return samples, verdicts


ROWS = [("a", 0, "2", True), ("a", 1, "3", False), ("a", 2, "2", True), ("a", 3, "02", True),
        ("b", 0, "7", False), ("b", 1, "8", False)]


def reasons(decisions):
    return {(r["problem_id"], r["sample_idx"]): r["reason"] for r in decisions.iter_rows(named=True)}


def test_correct_cap_keeps_only_correct():
    d = decide(*make(ROWS), rule(select="correct", cap=10, dedup=False))
    assert reasons(d)[("a", 1)] == "incorrect" and reasons(d)[("b", 0)] == "incorrect"
    assert d.filter("keep")["sample_idx"].to_list() == [0, 2, 3]


def test_dedup_drops_repeated_completions():
    d = decide(*make(ROWS), rule(select="correct", cap=10, dedup=True))
    assert reasons(d)[("a", 2)] == "duplicate"
    assert reasons(d)[("a", 3)] == "kept"  # different text, same answer: kept


def test_cap_limits_per_problem_in_sample_order():
    d = decide(*make(ROWS), rule(select="correct", cap=1, dedup=False))
    assert d.filter("keep")[["problem_id", "sample_idx"]].rows() == [("a", 0)]
    assert reasons(d)[("a", 3)] == "over_cap"


def test_keep_all_ignores_the_verifier():
    d = decide(*make(ROWS), rule(select="all", cap=10, dedup=True))
    assert reasons(d)[("b", 0)] == "kept" and reasons(d)[("a", 1)] == "kept"
    assert reasons(d)[("a", 2)] == "duplicate"


def test_kept_examples_carry_prompt_and_reward():
    samples, verdicts = make(ROWS)
    kept = kept_examples(samples, verdicts, decide(samples, verdicts, rule(select="correct", cap=10, dedup=True)))
    assert kept["completion"].to_list() == ["2", "02"] and kept["reward"].to_list() == [1.0, 1.0]


def test_problem_stats():
    samples, verdicts = make(ROWS)
    problems = pl.DataFrame({"problem_id": ["a", "b"], "category": ["1+1", "1+1"]})
    stats = problem_stats(samples, verdicts, problems)
    a = stats.filter(pl.col("problem_id") == "a").row(0, named=True)
    assert (a["n"], a["n_correct"], a["pass_rate"]) == (4, 3, 0.75)
    assert abs(a["reward_std"] - 0.4330127) < 1e-6
    assert stats.filter(pl.col("problem_id") == "b")["pass_rate"].item() == 0.0


def stats_of(samples, verdicts):
    ids = samples["problem_id"].unique()
    return problem_stats(samples, verdicts, pl.DataFrame({"problem_id": ids, "category": ["x"] * len(ids)}))


GRADED = [("a", 0, "2", True, 1.0), ("a", 1, "3", False, 0.5), ("a", 2, "4", False, 0.0),
          ("b", 0, "7", True, 1.0), ("b", 1, "8", True, 1.0), ("c", 0, "1", False, 0.0), ("c", 1, "9", False, 0.0)]


def test_threshold_keeps_rewards_above_tau_best_first():
    d = decide(*make(GRADED), rule(select="threshold", tau=0.25, cap=1, dedup=True))
    assert reasons(d)[("a", 0)] == "kept" and reasons(d)[("a", 1)] == "over_cap"  # 1.0 outranks 0.5
    assert reasons(d)[("a", 2)] == "below_threshold"


def test_threshold_tau_can_come_from_the_controller():
    d = decide(*make(GRADED), rule(select="threshold", cap=10, dedup=True), tau=0.25)
    assert reasons(d)[("a", 1)] == "kept"


def test_group_band_drops_all_right_and_all_wrong_problems():
    samples, verdicts = make(GRADED)
    d = decide(samples, verdicts, rule(groups=[{"rule": "group_band", "lo": 0.1, "hi": 0.9}]),
               stats=stats_of(samples, verdicts))
    assert {r for (p, _), r in reasons(d).items() if p == "b"} == {"group_band"}  # all right
    assert {r for (p, _), r in reasons(d).items() if p == "c"} == {"group_band"}  # all wrong
    assert reasons(d)[("a", 0)] == "kept"


def test_std_min_drops_problems_whose_rewards_do_not_vary():
    samples, verdicts = make(GRADED)
    d = decide(samples, verdicts, rule(select="all", groups=[{"rule": "std_min", "eps": 0.05}]),
               stats=stats_of(samples, verdicts))
    assert reasons(d)[("b", 0)] == "std_min" and reasons(d)[("c", 0)] == "std_min"
    assert reasons(d)[("a", 2)] == "kept"


def test_difficulty_band_reads_the_ledger_and_passes_unseen_problems():
    samples, verdicts = make(GRADED)
    ledger = pl.DataFrame({"round": [1, 2, 1], "problem_id": ["a", "a", "b"], "category": ["x"] * 3,
                           "pass_rate": [0.5, 1.0, 0.5]})
    d = decide(samples, verdicts, rule(groups=[{"rule": "difficulty_band", "lo": 0.2, "hi": 0.8}]),
               stats=stats_of(samples, verdicts), ledger=ledger)
    assert reasons(d)[("a", 0)] == "difficulty_band"  # its latest round: 1.0
    assert reasons(d)[("b", 0)] == "kept"
    assert reasons(d)[("c", 0)] == "incorrect"  # unseen: judged by the sample rule only


def test_first_problem_rule_names_the_drop():
    samples, verdicts = make(GRADED)
    d = decide(samples, verdicts, rule(groups=[{"rule": "std_min", "eps": 0.05}, {"rule": "group_band", "lo": 0.1, "hi": 0.9}]),
               stats=stats_of(samples, verdicts))
    assert reasons(d)[("b", 0)] == "std_min"


# --- the lean plan: same answers as the plain query, on any row order; the checks it keeps ---

def plain_decide(samples, verdicts, params, stats=None, ledger=None, tau=None):
    """The query the filter stage ran before it read lean (string joins, three sorts): the oracle."""
    from sharpen.filters import problem_reasons

    tau = params.tau if params.tau is not None else tau
    eligible, otherwise = {"correct": (pl.col("correct"), "incorrect"), "threshold": (pl.col("reward") > (tau or 0.0), "below_threshold"),
                           "all": (pl.lit(True), "incorrect")}[params.select]
    frame = samples.lazy().select("round", "problem_id", "sample_idx", "completion").join(
        verdicts.lazy().select("problem_id", "sample_idx", "correct", "reward"), on=["problem_id", "sample_idx"])
    frame = (frame.join(problem_reasons(stats, params.groups, ledger).lazy(), on="problem_id", how="left") if params.groups
             else frame.with_columns(problem_reason=pl.lit(None, dtype=pl.String)))
    return (
        frame.with_columns(eligible=eligible & pl.col("problem_reason").is_null())
        .sort("problem_id", "sample_idx")
        .with_columns(repeat=(pl.int_range(pl.len()).over("problem_id", "completion", "eligible") > 0) if params.dedup else pl.lit(False))
        .sort(["problem_id", "reward", "sample_idx"], descending=[False, True, False])
        .with_columns(rank=pl.when(pl.col("eligible") & ~pl.col("repeat")).then(1).otherwise(0).cum_sum().over("problem_id"))
        .with_columns(reason=pl.when(pl.col("problem_reason").is_not_null()).then("problem_reason").when(~eligible)
                      .then(pl.lit(otherwise)).when("repeat").then(pl.lit("duplicate")).when(pl.col("rank") > params.cap)
                      .then(pl.lit("over_cap")).otherwise(pl.lit("kept")))
        .sort("problem_id", "sample_idx")
        .select("round", "problem_id", "sample_idx", keep=pl.col("reason") == "kept", reason="reason")
        .collect()
    )


def random_round(seed: int, problems: int = 300, k: int | None = None):
    """Samples and verdicts in a random row order: 1 to 40 samples per problem (some past the cap,
    some of 128 and more; or `k` each), sample_idx with gaps, repeated completions, tied rewards, a
    few samples without a verdict and verdicts without a sample."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = np.where(rng.random(problems) < 0.02, rng.integers(128, 200, problems), rng.integers(1, 41, problems))
    sizes = sizes if k is None else np.full(problems, k)
    pid = np.repeat([f"{i}+{i % 7}" for i in range(problems)], sizes)
    idx = np.concatenate([np.sort(rng.choice(k + 5, k, replace=False)) for k in sizes])
    n = len(pid)
    reward = rng.choice([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], n)
    samples = pl.DataFrame({"round": np.ones(n, np.int64), "problem_id": pid, "sample_idx": idx, "prompt": pid,
                            "completion": rng.integers(0, 5, n).astype(str)})
    verdicts = pl.DataFrame({"problem_id": pid, "sample_idx": idx, "reward": reward, "correct": reward > 0.5})
    shuffle = rng.permutation(n)
    samples, verdicts = samples[shuffle[5:]], verdicts[np.r_[shuffle[:-5]]]
    return samples, verdicts.with_columns(pl.col("sample_idx") + pl.when(pl.int_range(pl.len()) < 3).then(1000).otherwise(0))


PLANS = [dict(select="correct", cap=10, dedup=True), dict(select="correct", cap=2, dedup=False),
         dict(select="threshold", tau=0.3, cap=3, dedup=True), dict(select="all", cap=1, dedup=True),
         dict(select="all", cap=1000, dedup=False),
         dict(select="correct", cap=4, groups=[{"rule": "group_band", "lo": 0.1, "hi": 0.9}, {"rule": "std_min", "eps": 0.3},
                                               {"rule": "difficulty_band", "lo": 0.2, "hi": 0.8}])]


def test_decisions_equal_the_plain_query_on_any_row_order(monkeypatch):
    from sharpen import filters

    for seed, k in ((0, None), (1, None), (2, 8)):
        samples, verdicts = random_round(seed, k=k)
        stats = problem_stats(samples, verdicts, pl.DataFrame({"problem_id": samples["problem_id"].unique(), "category": "x"}))
        ledger = stats.select(round=pl.lit(1), problem_id="problem_id", category="category", pass_rate=pl.col("pass_rate").reverse())
        keys = ["problem_id", "sample_idx"]  # as generate and verify write them: sorted, one verdict per sample
        in_order = (samples.join(verdicts.select(keys), on=keys, how="semi").sort(keys),
                    verdicts.join(samples.select(keys), on=keys, how="semi").sort(keys))
        for plan in PLANS:
            want = plain_decide(samples, verdicts, rule(**plan), stats=stats, ledger=ledger)
            assert decide(samples, verdicts, rule(**plan), stats=stats, ledger=ledger).equals(want), plan
            with monkeypatch.context() as m:  # the shortcut for files in order: no join, no sort
                m.setattr(filters, "_check_key", lambda *_: pytest.fail("took the join"))
                assert decide(*in_order, rule(**plan), stats=stats, ledger=ledger).equals(want), plan


def test_stats_are_polars_group_by_to_the_bit():
    """The vectorised sums give what polars' group_by gives on the same rows in sample order (the
    plain query's group_by after its join saw them in the join's order: a last bit that varied)."""
    import numpy as np

    rng = np.random.default_rng(0)
    for sizes, reward in ((np.r_[rng.integers(1, 41, 300), rng.integers(120, 400, 20)], rng.random), (np.full(500, 8), rng.random),
                          (np.full(500, 8), lambda n: rng.integers(0, 6, n) / 5)):  # rewards of any value; judge scores
        problem = np.repeat(np.arange(len(sizes), dtype=np.uint32), sizes)
        pid = np.array([f"p{i:04d}" for i in range(len(sizes))])[problem]
        idx = np.concatenate([np.arange(k) for k in sizes])
        reward = reward(len(pid))
        samples = pl.DataFrame({"round": 1, "problem_id": pid, "sample_idx": idx})
        verdicts = pl.DataFrame({"problem_id": pid, "sample_idx": idx, "reward": reward, "correct": reward > 0.5})
        stats = problem_stats(samples, verdicts, pl.DataFrame({"problem_id": np.unique(pid), "category": "x"}))
        want = pl.LazyFrame({"problem": problem, "reward": reward}).group_by("problem").agg(
            reward_mean=pl.col("reward").mean(), reward_std=pl.col("reward").std(ddof=0),
            mean_abs_advantage=(pl.col("reward") - pl.col("reward").mean()).abs().mean()).sort("problem").collect()
        assert stats.select(want.columns[1:]).equals(want.drop("problem"))


def test_a_repeated_key_is_an_error_naming_the_file():
    from sharpen.errors import ArtifactError
    from sharpen.filters import graded

    samples, verdicts = make(ROWS)
    for s, v, where in ((pl.concat([samples, samples.head(1)]), verdicts, "samples.parquet"),
                        (samples, pl.concat([verdicts, verdicts.tail(1)]), "verdicts.parquet")):
        with pytest.raises(ArtifactError, match=rf"{where}: \(problem_id, sample_idx\) must be unique.*sample_idx"):
            graded(s, v, where=("samples.parquet", "verdicts.parquet"))


def test_a_problem_sampled_in_two_rounds_is_an_error():
    from sharpen.errors import ArtifactError

    samples, verdicts = make(ROWS)
    with pytest.raises(ArtifactError, match=r"problem 'a' has samples of rounds \[1, 2\]"):
        decide(samples.with_columns(round=pl.when(pl.col("sample_idx") == 3).then(2).otherwise(1)), verdicts, rule())


def test_read_columns_checks_the_file_schema_and_the_values_read(tmp_path):
    from sharpen.errors import ArtifactError
    from sharpen.io import read_columns
    from sharpen.schemas import Sample, columns

    good = pl.DataFrame({"round": [1, 1], "problem_id": ["a", "a"], "sample_idx": [0, 1], "prompt": "a=", "completion": ["1", "2"],
                         "num_tokens": [1, 1], "finish_reason": "stop", "policy_hash": "h", "temperature": 1.0}).with_columns(
        token_ids=pl.lit(None, pl.List(pl.Int64)), logprobs=pl.lit(None, pl.List(pl.Float64))).select(list(columns(Sample)))
    cases = {"foreign": good.with_columns(secret=pl.lit(1)), "missing": good.drop("policy_hash"),
             "unread-type": good.with_columns(pl.col("temperature").cast(pl.String)),
             "read-value": good.with_columns(sample_idx=pl.Series([0, -1]))}
    for name, frame in cases.items():
        frame.write_parquet(tmp_path / f"{name}.parquet")
        with pytest.raises(ArtifactError, match={"foreign": "secret", "missing": "policy_hash", "unread-type": "temperature",
                                                 "read-value": "sample_idx"}[name]):
            read_columns(tmp_path / f"{name}.parquet", Sample, "problem_id", "sample_idx")
    good.with_columns(finish_reason=pl.lit("odd")).write_parquet(tmp_path / "unread-value.parquet")
    read = read_columns(tmp_path / "unread-value.parquet", Sample, "problem_id", text=pl.col("completion").hash())
    assert read.columns == ["problem_id", "text"]  # an unread column's values are not checked, nor held


def test_the_stage_on_unsorted_files_keeps_the_right_texts(tmp_path):
    import shutil
    import subprocess
    import sys

    from tests.conftest import PROJECT

    samples, verdicts = random_round(7, problems=50)
    samples = samples.with_columns(prompt=pl.col("problem_id") + "=", num_tokens=1, finish_reason=pl.lit("stop"), policy_hash=pl.lit("h"),
                                   temperature=1.0, token_ids=pl.lit(None, pl.List(pl.Int64)), logprobs=pl.lit(None, pl.List(pl.Float64)))
    verdicts = verdicts.with_columns(round=1, extracted=None, reason=pl.lit("ok"), verifier=pl.lit("v"), label=None, majority_ratio=None,
                                     judge_text=None).cast({"extracted": pl.String, "label": pl.String, "majority_ratio": pl.Float64,
                                                            "judge_text": pl.String})
    ids = samples["problem_id"].unique().sort()
    problems = pl.DataFrame({"problem_id": ids, "prompt": ids, "answer": "1", "category": "x", "tests": None, "source": None,
                             "verifier": None}, schema_overrides={"tests": pl.String, "source": pl.String, "verifier": pl.String})
    from sharpen.schemas import Problem, Sample, Verdict, columns

    for frame, name, model in ((samples, "samples", Sample), (verdicts, "verdicts", Verdict), (problems, "problems", Problem)):
        frame.select(list(columns(model))).cast(columns(model)).write_parquet(tmp_path / f"{name}.parquet")
    shutil.copy(PROJECT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "controller.json").write_text("{}")
    (tmp_path / "state").mkdir()
    subprocess.run([sys.executable, "-m", "stages.filter", "--samples", "samples.parquet", "--verdicts", "verdicts.parquet",
                    "--problems", "problems.parquet", "--state", "state", "--controller", "controller.json", "--out", "out"],
                   cwd=tmp_path, check=True, env={**__import__("os").environ, "PYTHONPATH": str(PROJECT)})
    decisions = decide(samples, verdicts, rule())
    assert pl.read_parquet(tmp_path / "out/decisions.parquet").equals(decisions)
    assert pl.read_parquet(tmp_path / "out/kept.parquet").equals(kept_examples(samples, verdicts, decisions))
