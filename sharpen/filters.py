"""Filter rules: which verified samples teach, and why each of the others was dropped.

Rules are configuration (`filter` in params.yaml, usually set by the recipe), not code paths.
Problem rules (`filter.groups`) run first, in order; a problem one of them rejects has every
sample dropped with that rule's name as the reason:
- `group_band(lo, hi)`: pass rate over the k samples in [lo, hi] (drops all-right and all-wrong
  groups; DAPO, MASA, ReST-GRPO).
- `std_min(eps)`: reward std over the k samples > eps (ReST-GRPO).
- `difficulty_band(lo, hi)`: the problem's accuracy in the last round the ledger saw it in [lo, hi];
  problems the ledger has not seen pass.
Then the sample rule `select`: `correct` (ReST-EM; reason `incorrect`), `threshold` (reward > tau;
B-STaR; reason `below_threshold`), or `all` (the no-verifier control). Repeated completions of a
problem are dropped (`duplicate`, if `dedup`) and at most `cap` kept per problem, best reward
first, then sample order (`over_cap`).

Run: `python -m stages.filter ...` (DVC stage `filter`).
"""

from __future__ import annotations

import polars as pl

from sharpen.params import DifficultyBand, FilterParams, GroupBand, StdMin


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


def last_accuracy(ledger: pl.DataFrame | None) -> pl.DataFrame:
    """problem_id → pass rate in the latest round the ledger recorded it."""
    if ledger is None or ledger.height == 0:
        return pl.DataFrame(schema={"problem_id": pl.String, "last_pass_rate": pl.Float64})
    return (
        ledger.sort("round")
        .group_by("problem_id")
        .agg(last_pass_rate=pl.col("pass_rate").last())
    )


def problem_reasons(stats: pl.DataFrame, groups, ledger: pl.DataFrame | None = None) -> pl.DataFrame:
    """problem_id → the first problem rule that rejects it (null: none does)."""
    frame = stats.select("problem_id", "pass_rate", "reward_std").join(
        last_accuracy(ledger), on="problem_id", how="left"
    )
    reason = pl.lit(None, dtype=pl.String)
    for rule in reversed(groups):  # built inside out, so the first rule in the list wins
        if isinstance(rule, DifficultyBand):
            fails = pl.col("last_pass_rate").is_not_null() & ~pl.col("last_pass_rate").is_between(rule.lo, rule.hi)
        elif isinstance(rule, GroupBand):
            fails = ~pl.col("pass_rate").is_between(rule.lo, rule.hi)
        elif isinstance(rule, StdMin):
            fails = pl.col("reward_std") <= rule.eps
        else:  # pragma: no cover - params validation admits only the rules above
            raise ValueError(f"filter.groups: unknown rule {rule!r}")
        reason = pl.when(fails).then(pl.lit(rule.rule)).otherwise(reason)
    return frame.select("problem_id", problem_reason=reason)


def decide(
    samples: pl.DataFrame, verdicts: pl.DataFrame, params: FilterParams, *, stats: pl.DataFrame | None = None,
    ledger: pl.DataFrame | None = None, tau: float | None = None,
) -> pl.DataFrame:
    """One `Decision` row per sample: keep, or the first reason it was dropped."""
    tau = params.tau if params.tau is not None else tau
    if params.select == "threshold" and tau is None:
        raise ValueError("filter.tau: `select: threshold` needs a tau (set it, or use the b-star controller)")
    eligible = {
        "correct": (pl.col("correct"), "incorrect"),
        "threshold": (pl.col("reward") > (tau if tau is not None else 0.0), "below_threshold"),
        "all": (pl.lit(True), "incorrect"),
    }[params.select]
    frame = (
        samples.lazy()
        .select("round", "problem_id", "sample_idx", "completion")
        .join(verdicts.lazy().select("problem_id", "sample_idx", "correct", "reward"), on=["problem_id", "sample_idx"])
    )
    if params.groups:
        if stats is None:
            raise ValueError("decide: problem rules (filter.groups) need the per-problem stats")
        frame = frame.join(problem_reasons(stats, params.groups, ledger).lazy(), on="problem_id", how="left")
    else:
        frame = frame.with_columns(problem_reason=pl.lit(None, dtype=pl.String))
    frame = (
        frame.with_columns(eligible=eligible[0] & pl.col("problem_reason").is_null())
        .sort("problem_id", "sample_idx")
        .with_columns(
            repeat=(pl.int_range(pl.len()).over("problem_id", "completion", "eligible") > 0)
            if params.dedup
            else pl.lit(False)
        )
        .sort(["problem_id", "reward", "sample_idx"], descending=[False, True, False])
        .with_columns(
            rank=pl.when(pl.col("eligible") & ~pl.col("repeat")).then(1).otherwise(0).cum_sum().over("problem_id")
        )
        .with_columns(
            reason=pl.when(pl.col("problem_reason").is_not_null())
            .then(pl.col("problem_reason"))
            .when(~eligible[0])
            .then(pl.lit(eligible[1]))
            .when(pl.col("repeat"))
            .then(pl.lit("duplicate"))
            .when(pl.col("rank") > params.cap)
            .then(pl.lit("over_cap"))
            .otherwise(pl.lit("kept"))
        )
        .sort("problem_id", "sample_idx")
        .select("round", "problem_id", "sample_idx", keep=pl.col("reason") == "kept", reason="reason")
    )
    return frame.collect()


def kept_examples(samples: pl.DataFrame, verdicts: pl.DataFrame, decisions: pl.DataFrame, origin: str = "sampled") -> pl.DataFrame:
    """The kept samples as `TrainExample` rows."""
    return (
        samples.lazy()
        .join(decisions.lazy().filter("keep").select("problem_id", "sample_idx"), on=["problem_id", "sample_idx"])
        .join(verdicts.lazy().select("problem_id", "sample_idx", "reward"), on=["problem_id", "sample_idx"])
        .select("round", "problem_id", "sample_idx", "prompt", "completion", "reward", origin=pl.lit(origin))
        .sort("problem_id", "sample_idx")
        .collect()
    )


PROBLEM_RULES = ("group_band", "std_min", "difficulty_band")


def preference_pairs(
    samples: pl.DataFrame, verdicts: pl.DataFrame, decisions: pl.DataFrame, *, rule: str, max_per_problem: int
) -> pl.DataFrame:
    """`PreferencePair` rows. `correct_vs_incorrect`: on every problem no problem rule dropped, the
    i-th distinct correct completion (best reward first, then sample order) against the i-th
    distinct incorrect one (worst reward first), for i < max_per_problem. A problem needs both."""
    if rule != "correct_vs_incorrect":
        raise ValueError(f"filter.pairs.rule: unknown {rule!r}; allowed: correct_vs_incorrect")
    dropped = decisions.filter(pl.col("reason").is_in(PROBLEM_RULES)).select("problem_id").unique()
    frame = (
        samples.lazy()
        .select("round", "problem_id", "sample_idx", "prompt", "completion")
        .join(verdicts.lazy().select("problem_id", "sample_idx", "correct", "reward"), on=["problem_id", "sample_idx"])
        .join(dropped.lazy(), on="problem_id", how="anti")
        .sort("problem_id", "sample_idx")
        .unique(["problem_id", "completion"], keep="first", maintain_order=True)
    )

    def side(correct: bool, name: str) -> pl.LazyFrame:
        order = pl.col("reward") if not correct else -pl.col("reward")
        return (
            frame.filter(pl.col("correct") == correct)
            .sort(["problem_id", order, "sample_idx"])
            .with_columns(rank=pl.int_range(pl.len()).over("problem_id"))
            .select("round", "problem_id", "prompt", "rank", **{name: "completion", f"{name}_idx": "sample_idx",
                                                                 f"{name}_reward": "reward"})
        )

    pairs = (
        side(True, "chosen")
        .join(side(False, "rejected").drop("round", "prompt"), on=["problem_id", "rank"])
        .filter((pl.col("rank") < max_per_problem) & (pl.col("chosen") != pl.col("rejected")))
        .sort("problem_id", "rank")
        .select("round", "problem_id", "prompt", "chosen", "rejected", "chosen_idx", "rejected_idx",
                "chosen_reward", "rejected_reward", rule=pl.lit(rule))
    )
    return pairs.collect()
