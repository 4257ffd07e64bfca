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
from sharpen.schemas import PAIR_RULES


def problem_stats(samples: pl.DataFrame, verdicts: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    """Per problem: n, n_correct, pass rate, reward mean, (population) std, and the mean |advantage|
    (|reward - reward mean|: what a group-baseline policy gradient sees; SEC's arm reward)."""
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
            mean_abs_advantage=(pl.col("reward") - pl.col("reward").mean()).abs().mean(),
        )
        .select("round", "problem_id", "category", "n", "n_correct", "pass_rate", "reward_mean", "reward_std",
                "mean_abs_advantage")
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
    samples: pl.DataFrame, verdicts: pl.DataFrame, decisions: pl.DataFrame, *, rule: str, max_per_problem: int,
    gold: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """`PreferencePair` rows from the problems no problem rule dropped, over distinct completions,
    and per reason the number of those problems that made no pair.

    - `correct_vs_incorrect`: the i-th correct completion (best reward first, then sample order)
      against the i-th incorrect one (worst reward first), for i < max_per_problem.
    - `gold_vs_sample`: `gold` (problem_id, completion) against the i-th incorrect sample; a
      correct sample agrees with the gold and makes no pair.
    - `judge_best_vs_worst`: the i-th best-scored (reward) against the i-th worst, while the
      first is strictly better; equal scores make no pair.
    Reasons: `dropped_by_rule` (a problem rule), `no_correct`, `no_incorrect` (or, for the judge,
    `ties`: every sample scored the same), `no_gold`.
    """
    if rule not in PAIR_RULES:
        raise ValueError(f"filter.pairs.rule: unknown {rule!r}; allowed: {', '.join(PAIR_RULES)}")
    dropped = decisions.filter(pl.col("reason").is_in(PROBLEM_RULES)).select("problem_id").unique()
    frame = (
        samples.lazy()
        .select("round", "problem_id", "sample_idx", "prompt", "completion")
        .join(verdicts.lazy().select("problem_id", "sample_idx", "correct", "reward"), on=["problem_id", "sample_idx"])
        .join(dropped.lazy(), on="problem_id", how="anti")
        .sort("problem_id", "sample_idx")
        .unique(["problem_id", "completion"], keep="first", maintain_order=True)
    )

    def ranked(rows: pl.LazyFrame, best_first: bool, name: str) -> pl.LazyFrame:
        order = -pl.col("reward") if best_first else pl.col("reward")
        return (
            rows.sort(["problem_id", order, "sample_idx"])
            .with_columns(rank=pl.int_range(pl.len()).over("problem_id"))
            .select("round", "problem_id", "prompt", "rank", **{name: "completion", f"{name}_idx": "sample_idx",
                                                                 f"{name}_reward": "reward"})
        )

    if rule == "correct_vs_incorrect":
        chosen = ranked(frame.filter(pl.col("correct")), True, "chosen")
        rejected = ranked(frame.filter(~pl.col("correct")), False, "rejected")
    elif rule == "gold_vs_sample":
        if gold is None:
            raise ValueError("filter.pairs.rule: gold_vs_sample needs the problems' gold completions")
        firsts = frame.group_by("problem_id").agg(pl.col("round").first(), pl.col("prompt").first())
        chosen = (
            firsts.join(gold.lazy().select("problem_id", chosen="completion"), on="problem_id")
            .join(pl.LazyFrame({"rank": list(range(max_per_problem))}, schema={"rank": pl.Int64}), how="cross")
            .select("round", "problem_id", "prompt", "rank", "chosen", chosen_idx=pl.lit(-1, pl.Int64),
                    chosen_reward=pl.lit(1.0))
        )
        rejected = ranked(frame.filter(~pl.col("correct")), False, "rejected")
    else:  # judge_best_vs_worst: i-th best against i-th worst; strictly better, so they stop before crossing
        chosen, rejected = ranked(frame, True, "chosen"), ranked(frame, False, "rejected")
    pairs = (
        chosen.join(rejected.drop("round", "prompt"), on=["problem_id", "rank"])
        .filter((pl.col("rank") < max_per_problem) & (pl.col("chosen") != pl.col("rejected"))
                & (pl.col("chosen_reward") > pl.col("rejected_reward") if rule == "judge_best_vs_worst" else True))
        .sort("problem_id", "rank")
        .select("round", "problem_id", "prompt", "chosen", "rejected", "chosen_idx", "rejected_idx",
                "chosen_reward", "rejected_reward", rule=pl.lit(rule))
    ).collect()
    return pairs, _pairless(frame.collect(), dropped, pairs, rule, gold)


def _pairless(frame: pl.DataFrame, dropped: pl.DataFrame, pairs: pl.DataFrame, rule: str,
              gold: pl.DataFrame | None) -> dict[str, int]:
    """Why the problems without a pair have none: counts per reason."""
    with_pair = set(pairs["problem_id"])
    per = frame.group_by("problem_id").agg(correct=pl.col("correct").sum(), n=pl.len(),
                                            distinct_rewards=pl.col("reward").n_unique())
    why = {"dropped_by_rule": dropped.height}
    for pid, n_correct, n, distinct in per.iter_rows():
        if pid in with_pair:
            continue
        if rule == "judge_best_vs_worst":
            reason = "ties" if distinct == 1 else "no_distinct_pair"
        elif rule == "gold_vs_sample" and gold is not None and pid not in set(gold["problem_id"]):
            reason = "no_gold"
        elif n_correct == n:
            reason = "no_incorrect"
        elif n_correct == 0 and rule == "correct_vs_incorrect":
            reason = "no_correct"
        else:
            reason = "no_distinct_pair"
        why[reason] = why.get(reason, 0) + 1
    return why
