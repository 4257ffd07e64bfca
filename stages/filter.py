"""Per-problem statistics, and the selection of samples to train on (rules from `filter` params).

Problem rules (`filter.groups`) drop whole problems first; `difficulty_band` reads the loop's
ledger in data/state. `select: threshold` with no `tau` uses the one the b-star controller chose.
With `filter.pairs`, DPO preference pairs go to pairs.parquet (empty otherwise), each with its
rule and scores (`gold_vs_sample` pairs the task's gold completion, see sharpen.tasks); with
`mix_previous` the last round's pairs (data/state/pairs.parquet) are added; metrics.json says why
problems made no pair.

Run: `python -m stages.filter --samples data/round/generate/samples.parquet \
        --verdicts data/round/verify/verdicts.parquet --problems data/round/generate/problems.parquet \
        --state data/state --controller data/round/controller/metrics.json --out data/round/filter`
"""

import argparse
from pathlib import Path

import polars as pl

from sharpen.filters import decide, kept_examples, preference_pairs, problem_stats
from sharpen.io import read_frame, read_json, write_frame, write_json
from sharpen.config import load_params
from sharpen.schemas import DROP_REASONS, Decision, PreferencePair, Problem, ProblemStats, Sample, TrainExample, Verdict, empty
from sharpen.stage import Timer, run_stage
from sharpen.state import previous_round_pairs, read_ledger
from sharpen.tasks import gold_completions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--verdicts", type=Path, required=True)
    parser.add_argument("--problems", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--controller", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    f = params.filter
    timer = Timer()
    samples = read_frame(args.samples, Sample)
    verdicts = read_frame(args.verdicts, Verdict)
    problems = read_frame(args.problems, Problem)
    stats = problem_stats(samples, verdicts, problems)
    control = read_json(args.controller)
    tau = f.tau if f.tau is not None else control.get("tau")
    decisions = decide(samples, verdicts, f, stats=stats, ledger=read_ledger(args.state), tau=tau)
    kept = kept_examples(samples, verdicts, decisions)
    write_frame(stats, args.out / "stats.parquet", ProblemStats)
    write_frame(decisions, args.out / "decisions.parquet", Decision)
    write_frame(kept, args.out / "kept.parquet", TrainExample)
    pairs, pairless = _pairs(samples, verdicts, decisions, f.pairs, problems, params.task)
    previous_pairs = 0
    if f.pairs is not None and f.pairs.mix_previous:
        earlier = previous_round_pairs(args.state)
        if earlier is not None:
            earlier = earlier.filter(pl.col("round") < params.round)
            previous_pairs = earlier.height
            pairs = pl.concat([pairs, earlier.select(pairs.columns)])
    write_frame(pairs, args.out / "pairs.parquet", PreferencePair)
    reasons = dict(decisions.group_by("reason").len().iter_rows())
    write_json(
        {
            "round": params.round,
            "select": f.select,
            "tau": tau,
            "kept": kept.height,
            "kept_fraction": kept.height / max(samples.height, 1),
            "kept_correct_fraction": float(kept["reward"].mean()) if kept.height else 0.0,
            "problems_with_kept": kept["problem_id"].n_unique(),
            "dropped": {r: int(reasons.get(r, 0)) for r in DROP_REASONS if r != "kept"},
            "problems_all_correct": int((stats["pass_rate"] == 1.0).sum()),
            "problems_none_correct": int((stats["pass_rate"] == 0.0).sum()),
            "pairs": pairs.height,
            "pairs_from_previous_round": previous_pairs,
            "problems_with_pairs": pairs.filter(pl.col("round") == params.round)["problem_id"].n_unique(),
            "problems_without_pairs": pairless,  # why, per reason (filter.pairs)
            "wall_s": timer.seconds,
        },
        args.out / "metrics.json",
    )
    print(f"filter ({f.select}): kept {kept.height}/{samples.height} samples from {kept['problem_id'].n_unique()} problems")
    if f.pairs is not None:
        why = ", ".join(f"{n} {reason}" for reason, n in pairless.items() if n) or "none"
        print(f"  {pairs.height - previous_pairs} {f.pairs.rule} pairs from "
              f"{pairs.filter(pl.col('round') == params.round)['problem_id'].n_unique()} problems"
              + (f" + {previous_pairs} from the previous round" if previous_pairs else "")
              + f"; problems without a pair: {why}")


def _pairs(samples, verdicts, decisions, pairs, problems, task) -> tuple[pl.DataFrame, dict[str, int]]:
    """The round's preference pairs (`filter.pairs`) and why problems made none; an empty frame when
    the recipe builds none."""
    if pairs is None:
        return empty(PreferencePair), {}
    gold = None
    if pairs.rule == "gold_vs_sample":
        gold = problems.select("problem_id", completion=pl.Series(gold_completions(problems, task), dtype=pl.String))
    return preference_pairs(samples, verdicts, decisions, rule=pairs.rule, max_per_problem=pairs.max_per_problem,
                            gold=gold)


if __name__ == "__main__":
    run_stage(main)
