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

How (10M samples in seconds, see BENCHMARKS.md): `graded` joins samples to verdicts once, on
rows already in (problem_id, sample_idx) order when the files are (generate and verify write
them so; else one join and one sort), and numbers the problems 0, 1, ... in that order. Every
rule then works on each problem's contiguous run of rows: statistics in a few vectorised passes,
duplicates by a 64-bit hash of the completion, the cap by sorting each problem's few rows.

Run: `python -m stages.filter ...` (DVC stage `filter`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl

from sharpen.errors import ArtifactError
from sharpen.params import DifficultyBand, FilterParams, GroupBand, StdMin
from sharpen.schemas import DROP_REASONS, PAIR_RULES, ProblemStats, columns

REASON = {reason: code for code, reason in enumerate(DROP_REASONS)}  # 0: kept


def graded(samples: pl.DataFrame | pl.LazyFrame, verdicts: pl.DataFrame | pl.LazyFrame,
           where: tuple[str, str] = ("samples", "verdicts")) -> pl.DataFrame:
    """Each sample with a verdict, one row, sorted by (problem_id, sample_idx): what every rule reads.

    Columns: `row` (the sample's row in `samples`), round, problem_id, sample_idx, `problem` (the
    problem's number in problem_id order, u32), `text` (a hash of the completion, when `samples`
    has one; or `samples`' own `text`), reward, correct. Raises ArtifactError naming `where` when
    (problem_id, sample_idx) repeats in either, or a problem's samples carry two rounds.
    """
    names = samples.lazy().collect_schema().names()
    text = ["text"] if "text" in names else [pl.col("completion").hash().alias("text")] if "completion" in names else []
    s = _contiguous(samples.lazy().select("round", "problem_id", "sample_idx", *text).collect())
    v = _contiguous(verdicts.lazy().select("problem_id", "sample_idx", "reward", "correct").collect())
    if s.height == v.height and _ascending(s) and _same_keys(s, v):  # what generate and verify write
        g = s.hstack([v.drop_in_place("reward"), v.drop_in_place("correct")]).with_row_index("row")
    else:
        for frame, name in ((s, where[0]), (v, where[1])):
            _check_key(frame, name)
        g = _contiguous(s.with_row_index("row").join(v, on=["problem_id", "sample_idx"]).sort("problem_id", "sample_idx"))
    del s, v
    first = np.r_[True, _neighbours(g["problem_id"], "__ne__")] if g.height else np.zeros(0, dtype=bool)
    rounds = g["round"].to_numpy()
    other = np.flatnonzero(~first[1:] & (rounds[1:] != rounds[:-1]))
    if len(other):
        pid = g["problem_id"][int(other[0]) + 1]
        raise ArtifactError(f"{where[0]}: problem {pid!r} has samples of rounds "
                            f"{sorted(set(g.filter(pl.col('problem_id') == pid)['round']))}; a round's samples carry one round")
    problem = pl.Series(np.cumsum(first, dtype=np.uint32) - 1).set_sorted()
    return g.with_columns(problem=problem).select("row", "round", "problem_id", "sample_idx", "problem",
                                                  *(["text"] if text else []), "reward", "correct")


def _contiguous(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with each column in one chunk (a streamed read gives ~100), one column at a time so
    the copy costs one column's memory; slices and numpy views of the columns are then free."""
    return pl.DataFrame([frame.drop_in_place(name).rechunk() for name in list(frame.columns)])


def _neighbours(column: pl.Series, op: str) -> np.ndarray:
    """`op` between each value and the one before it (from the second row on), on zero-copy slices."""
    return getattr(column.slice(1), op)(column.slice(0, max(len(column) - 1, 0))).fill_null(False).to_numpy()


def _ascending(frame: pl.DataFrame) -> bool:
    """Rows strictly ascending by (problem_id, sample_idx): sorted, and no key repeats."""
    pid, idx = frame["problem_id"], frame["sample_idx"]
    return bool((_neighbours(pid, "__gt__") | (_neighbours(pid, "__eq__") & _neighbours(idx, "__gt__"))).all())


def _same_keys(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    return bool(((a["problem_id"] == b["problem_id"]) & (a["sample_idx"] == b["sample_idx"])).fill_null(False).all())


def _check_key(frame: pl.DataFrame, where: str) -> None:
    repeated = frame.filter(pl.struct("problem_id", "sample_idx").is_duplicated())
    if repeated.height:
        pid, idx = repeated.row(0, named=True)["problem_id"], repeated.row(0, named=True)["sample_idx"]
        raise ArtifactError(f"{where}: (problem_id, sample_idx) must be unique: {repeated.height} rows repeat a key, "
                            f"e.g. problem_id {pid!r}, sample_idx {idx}")


def _runs(problem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each problem's run of rows starts, and its length (rows sorted by problem)."""
    starts = np.flatnonzero(np.r_[True, problem[1:] != problem[:-1]]) if len(problem) else np.zeros(0, np.int64)
    return starts, np.diff(np.r_[starts, len(problem)])


def _blocks(starts: np.ndarray, sizes: np.ndarray) -> Iterator[tuple[np.ndarray | slice, int, np.ndarray | None]]:
    """The runs grouped by length, so each length is one vectorised pass however many problems have
    it: (which runs, the length, their rows as a runs x length index matrix). When every run has the
    same length (k samples per problem) the matrix is None: the rows are `values.reshape(-1, k)`."""
    if len(sizes) and sizes.min() == sizes.max():
        yield slice(None), int(sizes[0]), None
        return
    by_size = np.argsort(sizes, kind="stable")
    for runs in np.split(by_size, np.flatnonzero(np.diff(sizes[by_size])) + 1):
        if len(runs):
            yield runs, int(sizes[runs[0]]), starts[runs, None] + np.arange(sizes[runs[0]])


def _sorted_within(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The row order that sorts each run stably by `values`, runs left in place."""
    order = np.arange(len(values))
    for runs, k, rows in _blocks(starts, sizes):
        if k > 1:
            within = values.reshape(-1, k) if rows is None else values[rows]
            moved = np.argsort(within, axis=1, kind="stable") + starts[runs, None]
            if rows is None:
                order.reshape(-1, k)[:] = moved
            else:
                order[rows] = moved
    return order


def _reward_stats(reward: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per run: reward mean, population std and mean |reward - mean|, summed as polars' group_by
    sums them (a Kahan sum from the first value, Welford's variance, `_column_sum` of the deviations),
    in one vectorised pass per run length instead of a group_by over a million groups. Rows in sample order
    give polars' numbers to the bit; a group_by after a join sees them in the join's order, which
    changes the last bit of a third of the stds from run to run."""
    mean, std, spread = (np.empty(len(starts)) for _ in range(3))
    for runs, k, rows in _blocks(starts, sizes):
        x = reward.reshape(-1, k).T.copy() if rows is None else reward[rows.T]  # x[j]: each run's j-th reward
        n = x.shape[1]
        total, carry, y, t = x[0].copy(), np.zeros(n), np.empty(n), np.empty(n)  # in place: no page faults
        for j in range(1, k):
            np.subtract(x[j], carry, out=y)
            np.add(total, y, out=t)
            np.subtract(t, total, out=carry)
            carry -= y
            total, t = t, total
        m = total / k
        running, m2, d = np.zeros(n), np.zeros(n), np.empty(n)
        for j in range(k):
            np.subtract(x[j], running, out=d)
            np.divide(d, j + 1, out=t)
            running += t
            np.subtract(x[j], running, out=t)
            t *= d
            m2 += t
        x -= m
        mean[runs], std[runs], spread[runs] = m, np.sqrt(m2 / k), _column_sum(np.abs(x, out=x)) / k
    return mean, std, spread


def _column_sum(x: np.ndarray) -> np.ndarray:
    """Sums over axis 0 as polars sums a column: the first len % 128 values in order, the rest in
    blocks of 128 (16 lanes, folded in halves), the blocks pairwise."""
    k, total = len(x), np.zeros(x.shape[1])
    for j in range(k % 128):
        total += x[j]
    return total if k < 128 else _pairwise(x[k % 128:]) + total


def _pairwise(x: np.ndarray) -> np.ndarray:
    blocks = len(x) // 128
    if blocks > 1:
        return _pairwise(x[: blocks // 2 * 128]) + _pairwise(x[blocks // 2 * 128:])
    lanes = np.zeros((16, x.shape[1]))
    for chunk in range(8):
        lanes += x[16 * chunk: 16 * chunk + 16]
    lanes = lanes[:8] + lanes[8:]
    lanes = lanes[:4] + lanes[4:]
    return (lanes[0] + lanes[2]) + (lanes[1] + lanes[3])


def stats_of(g: pl.DataFrame, problems: pl.DataFrame | pl.LazyFrame, where: str = "problems") -> pl.DataFrame:
    """`ProblemStats` of graded rows (`graded`), sorted by problem_id; category from `problems`."""
    if g.height == 0:
        return pl.DataFrame(schema=columns(ProblemStats))
    starts, sizes = _runs(g["problem"].to_numpy())
    n_correct = np.add.reduceat(g["correct"].to_numpy(), starts, dtype=np.int64)
    mean, std, spread = _reward_stats(g["reward"].cast(pl.Float64).to_numpy(), starts, sizes)
    per = pl.DataFrame({
        "round": g["round"].gather(starts), "problem_id": g["problem_id"].gather(starts), "n": sizes.astype(np.int64),
        "n_correct": n_correct, "pass_rate": n_correct / sizes, "reward_mean": mean, "reward_std": std,
        "mean_abs_advantage": spread,
    })
    category = problems.lazy().select("problem_id", "category").collect()
    if category.height == per.height and bool((category["problem_id"] == per["problem_id"]).all()):
        stats = per.with_columns(category["category"])  # the same problems in the same order, as generate writes them
    else:
        stats = per.join(category, on="problem_id", how="left", maintain_order="left")
        if stats.height != per.height:
            raise ArtifactError(f"{where}: problem_id must be unique; some of this round's problems appear twice")
    return stats.select(list(columns(ProblemStats)))


def problem_stats(samples: pl.DataFrame, verdicts: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    """Per problem: n, n_correct, pass rate, reward mean, (population) std, and the mean |advantage|
    (|reward - reward mean|: what a group-baseline policy gradient sees; SEC's arm reward)."""
    return stats_of(graded(samples, verdicts), problems)


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


def decisions_of(
    g: pl.DataFrame, params: FilterParams, *, stats: pl.DataFrame | None = None, ledger: pl.DataFrame | None = None,
    tau: float | None = None,
) -> pl.DataFrame:
    """keep and reason for each graded row (`graded`), in its order."""
    tau = params.tau if params.tau is not None else tau
    if params.select == "threshold" and tau is None:
        raise ValueError("filter.tau: `select: threshold` needs a tau (set it, or use the b-star controller)")
    if params.groups and stats is None:
        raise ValueError("decide: problem rules (filter.groups) need the per-problem stats")
    problem, reward = g["problem"].to_numpy(), g["reward"].cast(pl.Float64).to_numpy()
    if params.select == "correct":
        passes, otherwise = g["correct"].to_numpy(), "incorrect"
    elif params.select == "threshold":
        passes, otherwise = reward > tau, "below_threshold"
    else:
        passes, otherwise = np.ones(g.height, dtype=bool), "incorrect"
    code = np.where(passes, REASON["kept"], REASON[otherwise]).astype(np.uint8)  # index into DROP_REASONS
    if params.groups:
        ids = g["problem_id"].gather(_runs(problem)[0]).to_frame()
        rejected = ids.join(problem_reasons(stats, params.groups, ledger), on="problem_id", how="left",
                            maintain_order="left")["problem_reason"]
        rule = rejected.replace_strict(REASON, default=0, return_dtype=pl.UInt8).fill_null(0).to_numpy()[problem]
        code = np.where(rule > 0, rule, code)
    eligible = code == REASON["kept"]
    if params.dedup:  # a completion an earlier eligible sample of the problem already gave
        rows = np.flatnonzero(eligible)
        text, own = g["text"].to_numpy()[rows], problem[rows]
        order = _sorted_within(text, *_runs(own))
        repeat = (text[order][1:] == text[order][:-1]) & (own[1:] == own[:-1])
        code[rows[order[1:][repeat]]] = REASON["duplicate"]
    rows = np.flatnonzero(code == REASON["kept"])
    starts, sizes = _runs(problem[rows])
    if len(rows) and sizes.max() > params.cap:  # the cap: best reward first, then sample order
        order = _sorted_within(-reward[rows], starts, sizes)
        rank = np.arange(len(rows)) - np.repeat(starts, sizes)
        code[rows[order[rank >= params.cap]]] = REASON["over_cap"]
    return pl.DataFrame({"keep": code == REASON["kept"], "reason": pl.Series(DROP_REASONS).gather(code)})


def decide(
    samples: pl.DataFrame, verdicts: pl.DataFrame, params: FilterParams, *, stats: pl.DataFrame | None = None,
    ledger: pl.DataFrame | None = None, tau: float | None = None,
) -> pl.DataFrame:
    """One `Decision` row per sample: keep, or the first reason it was dropped."""
    g = graded(samples, verdicts)
    return g.select("round", "problem_id", "sample_idx").hstack(decisions_of(g, params, stats=stats, ledger=ledger, tau=tau))


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


def learnable_line(g: pl.DataFrame, decided: pl.DataFrame) -> str:
    """What GRPO learns from in this round, where the kept samples mean nothing: the groups (a problem's
    samples) that no problem rule dropped, how many of them have rewards that differ (the only ones
    that teach), and their mean reward. `decided`: `decisions_of(g, ...)`, row for row.

    >>> g = pl.DataFrame({"problem_id": ["a", "a", "b", "b", "c", "c"], "reward": [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]})
    >>> learnable_line(g, pl.DataFrame({"reason": ["kept", "incorrect", "kept", "kept"] + ["group_band"] * 2}))
    'for GRPO: 2 groups (4 samples) passed the problem rules, 1 with mixed rewards; rewards mean 0.75'
    """
    rows = g.select("problem_id", "reward").filter(~decided["reason"].is_in(PROBLEM_RULES))
    mixed = rows.group_by("problem_id").agg(pl.col("reward").n_unique() > 1)["reward"]
    mean = f"{rows['reward'].mean():.2f}" if rows.height else "-"
    return (f"for GRPO: {mixed.len():,} groups ({rows.height:,} samples) passed the problem rules, "
            f"{int(mixed.sum()):,} with mixed rewards; rewards mean {mean}")


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
    per = frame.group_by("problem_id", maintain_order=True).agg(correct=pl.col("correct").sum(), n=pl.len(),
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
