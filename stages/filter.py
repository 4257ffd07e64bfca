"""Per-problem statistics, and the selection of samples to train on (rules from `filter` params).

Problem rules (`filter.groups`) drop whole problems first; `difficulty_band` reads the loop's
ledger in data/state. `select: threshold` with no `tau` uses the one the b-star controller chose.
With `filter.pairs`, DPO preference pairs go to pairs.parquet (empty otherwise), each with its
rule and scores (`gold_vs_sample` pairs the task's gold completion, see sharpen.tasks); with
`mix_previous` the last round's pairs (data/state/pairs.parquet) are added; metrics.json says why
problems made no pair.

Reads only what the rules need, streamed: samples' keys and a hash of each completion, verdicts'
reward and correct, problems' category; the prompts and completions of the kept samples alone
are read back at the end (all of them with `pairs`). Each file's schema is checked whole, the
values of the columns read, and the (problem_id, sample_idx) keys while they are sorted
(sharpen.io.read_columns, sharpen.filters.graded).

Run: `python -m stages.filter --samples data/round/generate/samples.parquet \
        --verdicts data/round/verify/verdicts.parquet --problems data/round/generate/problems.parquet \
        --state data/state --controller data/round/controller/metrics.json --out data/round/filter`
"""

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from sharpen.config import load_params
from sharpen.errors import ArtifactError
from sharpen.filters import decisions_of, graded, learnable_line, preference_pairs, stats_of
from sharpen.io import atomic_write, read_columns, read_json, validate, validate_columns, write_frame, write_json
from sharpen.params import DifficultyBand
from sharpen.schemas import DROP_REASONS, Decision, PreferencePair, Problem, ProblemStats, Sample, TrainExample, Verdict, empty
from sharpen.stage import Timer, run_stage
from sharpen.rounds.state import previous_round_pairs, read_ledger
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
    text = {"text": pl.when(pl.col("completion").is_not_null()).then(pl.col("completion").hash())} if f.dedup else {}
    samples = read_columns(args.samples, Sample, "round", "problem_id", "sample_idx", **text)
    if f.dedup and samples["text"].null_count():
        raise ArtifactError(f"{args.samples}: does not match schema Sample:\n  column 'completion': not_nullable")
    verdicts = read_columns(args.verdicts, Verdict, "problem_id", "sample_idx", "reward", "correct")
    problems = read_columns(args.problems, Problem, "problem_id", "category")
    g = graded(samples, verdicts, where=(str(args.samples), str(args.verdicts)))
    n_samples = samples.height
    del samples, verdicts
    stats = stats_of(g, problems, where=str(args.problems))
    control = read_json(args.controller)
    tau = f.tau if f.tau is not None else control.get("tau")
    ledger = read_ledger(args.state) if any(isinstance(r, DifficultyBand) for r in f.groups) else None
    decided = decisions_of(g, f, stats=stats, ledger=ledger, tau=tau)
    decisions = g.select("round", "problem_id", "sample_idx").hstack(decided)
    kept = _kept(args.samples, g, decided["keep"], n_samples)
    _write(stats, args.out / "stats.parquet", ProblemStats)
    _write(decisions, args.out / "decisions.parquet", Decision)
    _write(kept, args.out / "kept.parquet", TrainExample)
    pairs, pairless = _pairs(args, g, decisions, f.pairs, params.task)
    previous_pairs = 0
    if f.pairs is not None and f.pairs.mix_previous:
        earlier = previous_round_pairs(args.state)
        if earlier is not None:
            earlier = earlier.filter(pl.col("round") < params.round)
            previous_pairs = earlier.height
            pairs = pl.concat([pairs, earlier.select(pairs.columns)])
    write_frame(pairs, args.out / "pairs.parquet", PreferencePair)
    reasons = dict(decided.group_by("reason").len().iter_rows())
    write_json(
        {
            "round": params.round,
            "select": f.select,
            "tau": tau,
            "kept": kept.height,
            "kept_fraction": kept.height / max(n_samples, 1),
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
    print(f"filter ({f.select}): kept {kept.height}/{n_samples} samples from {kept['problem_id'].n_unique()} problems")
    if f.groups:  # problem rules: GRPO trains on these groups, not on the kept samples
        print(f"  {learnable_line(g, decided)}")
    if f.pairs is not None:
        why = ", ".join(f"{n} {reason}" for reason, n in pairless.items() if n) or "none"
        print(f"  {pairs.height - previous_pairs} {f.pairs.rule} pairs from "
              f"{pairs.filter(pl.col('round') == params.round)['problem_id'].n_unique()} problems"
              + (f" + {previous_pairs} from the previous round" if previous_pairs else "")
              + f"; problems without a pair: {why}")


def _kept(path: Path, g: pl.DataFrame, keep: pl.Series, rows_in_file: int) -> pl.DataFrame:
    """The kept samples as `TrainExample` rows; their prompts and completions, and no others, read
    back from `path` by row, streamed."""
    picked = g.filter(keep)
    mask = np.zeros(rows_in_file, dtype=bool)
    mask[picked["row"].to_numpy()] = True
    texts = (
        pl.concat([pl.scan_parquet(path).select("prompt", "completion"), pl.LazyFrame({"keep": mask})], how="horizontal")
        .filter("keep").drop("keep").collect(engine="streaming")
    )
    if not picked["row"].is_sorted():  # graded sorted the samples: their texts come back in file order
        texts = texts[picked["row"].rank("ordinal").cast(pl.Int64) - 1]
    return picked.select("round", "problem_id", "sample_idx").hstack(texts).with_columns(
        reward=picked["reward"], origin=pl.lit("sampled")).rechunk()  # one chunk: metrics' mean is the same on any thread count


def _write(frame: pl.DataFrame, path: Path, schema) -> None:
    """write_frame, but for pandera's pass over the keys (seconds at 10M rows): they are the
    samples' own, which `graded` found unique."""
    validate(frame.clear(), schema, str(path))  # columns and types
    validate_columns(frame, schema, str(path))  # values
    atomic_write(path, lambda tmp: frame.write_parquet(tmp))


def _pairs(args, g, decisions, pairs, task) -> tuple[pl.DataFrame, dict[str, int]]:
    """The round's preference pairs (`filter.pairs`) and why problems made none; an empty frame when
    the recipe builds none."""
    if pairs is None:
        return empty(PreferencePair), {}
    samples = read_columns(args.samples, Sample, "round", "problem_id", "sample_idx", "prompt", "completion")
    gold = None
    if pairs.rule == "gold_vs_sample":
        problems = read_columns(args.problems, Problem, "problem_id", "answer")
        gold = problems.select("problem_id", completion=pl.Series(gold_completions(problems, task), dtype=pl.String))
    return preference_pairs(samples, g, decisions, rule=pairs.rule, max_per_problem=pairs.max_per_problem, gold=gold)


if __name__ == "__main__":
    run_stage(main)
