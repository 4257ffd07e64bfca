"""Filter rules: which verified samples teach, and why each of the others was dropped.

A rule is configuration (`filter.rule` in params.yaml), not a code path:
- `correct_cap` (ReST-EM): correct samples only, repeated completions dropped, at most `cap`
  per problem in sample order.
- `keep_all`: the same selection without the verifier (the no-verifier control): every sample
  counts, repeats still dropped and the cap still applied.

Run: `python -m stages.filter ...` (DVC stage `filter`).
"""

from __future__ import annotations

import polars as pl

RULES = ("correct_cap", "keep_all")


def problem_stats(samples: pl.DataFrame, verdicts: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    """Per problem: n, n_correct, pass rate, reward mean and (population) std."""
    return (
        samples.lazy()
        .select("round", "problem_id", "sample_idx")
        .join(verdicts.lazy().select("problem_id", "sample_idx", "reward", "correct"), on=["problem_id", "sample_idx"])
        .join(problems.lazy().select("problem_id", "category"), on="problem_id", how="left")
        .group_by("round", "problem_id", "category")
        .agg(
            n=pl.len().cast(pl.Int64),
            n_correct=pl.col("correct").sum().cast(pl.Int64),
            pass_rate=pl.col("correct").cast(pl.Float64).mean(),
            reward_mean=pl.col("reward").mean(),
            reward_std=pl.col("reward").std(ddof=0).fill_null(0.0),
        )
        .select("round", "problem_id", "category", "n", "n_correct", "pass_rate", "reward_mean", "reward_std")
        .sort("problem_id")
        .collect()
    )


def decide(samples: pl.DataFrame, verdicts: pl.DataFrame, *, rule: str, cap: int, dedup: bool) -> pl.DataFrame:
    """One `Decision` row per sample: keep, or the first reason it was dropped."""
    if rule not in RULES:
        raise ValueError(f"filter.rule: unknown rule {rule!r}; allowed: {', '.join(RULES)}")
    eligible = pl.col("correct") if rule == "correct_cap" else pl.lit(True)
    frame = (
        samples.lazy()
        .select("round", "problem_id", "sample_idx", "completion")
        .join(verdicts.lazy().select("problem_id", "sample_idx", "correct"), on=["problem_id", "sample_idx"])
        .sort("problem_id", "sample_idx")
        .with_columns(eligible=eligible)
        .with_columns(
            repeat=(pl.int_range(pl.len()).over("problem_id", "completion", "eligible") > 0)
            if dedup
            else pl.lit(False)
        )
        .with_columns(
            rank=pl.when(pl.col("eligible") & ~pl.col("repeat")).then(1).otherwise(0).cum_sum().over("problem_id")
        )
        .with_columns(
            reason=pl.when(~pl.col("eligible"))
            .then(pl.lit("incorrect"))
            .when(pl.col("repeat"))
            .then(pl.lit("duplicate"))
            .when(pl.col("rank") > cap)
            .then(pl.lit("over_cap"))
            .otherwise(pl.lit("kept"))
        )
        .select("round", "problem_id", "sample_idx", keep=pl.col("reason") == "kept", reason="reason")
    )
    return frame.collect()


def kept_examples(samples: pl.DataFrame, verdicts: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    """The kept samples as `TrainExample` rows."""
    return (
        samples.lazy()
        .join(decisions.lazy().filter("keep").select("problem_id", "sample_idx"), on=["problem_id", "sample_idx"])
        .join(verdicts.lazy().select("problem_id", "sample_idx", "reward"), on=["problem_id", "sample_idx"])
        .select("round", "problem_id", "sample_idx", "prompt", "completion", "reward")
        .sort("problem_id", "sample_idx")
        .collect()
    )
