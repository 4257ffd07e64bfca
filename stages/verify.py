"""Score every sample with the task's verifier: extracted answer, reward, reason.

Run: `python -m stages.verify --samples data/round/generate/samples.parquet \
        --problems data/tasks/pool.parquet --out data/round/verify`
"""

import argparse
from pathlib import Path

import polars as pl

from sharpen.io import ArtifactError, read_frame, write_frame, write_json
from sharpen.params import load_params
from sharpen.schemas import Problem, Sample, Verdict
from sharpen.stage import Timer, run_stage
from sharpen.verifiers import get_verifier


def verdicts_for(samples: pl.DataFrame, problems: pl.DataFrame, verifier_name: str) -> pl.DataFrame:
    joined = samples.join(problems.select("problem_id", "answer"), on="problem_id", how="left")
    missing = joined.filter(pl.col("answer").is_null())["problem_id"].unique().to_list()
    if missing:
        raise ArtifactError(f"verify: samples name problems missing from the problem file: {missing[:5]}")
    results = get_verifier(verifier_name)(joined["completion"].to_list(), joined["answer"].to_list())
    return pl.DataFrame(
        {
            "round": joined["round"],
            "problem_id": joined["problem_id"],
            "sample_idx": joined["sample_idx"],
            "extracted": pl.Series([r.extracted for r in results], dtype=pl.String),
            "reward": pl.Series([r.reward for r in results], dtype=pl.Float64),
            "correct": pl.Series([r.correct for r in results], dtype=pl.Boolean),
            "reason": [r.reason for r in results],
            "verifier": pl.Series([verifier_name] * joined.height, dtype=pl.String),
        }
    ).sort("problem_id", "sample_idx")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--problems", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    timer = Timer()
    samples = read_frame(args.samples, Sample)
    verdicts = verdicts_for(samples, read_frame(args.problems, Problem), params.verify.verifier)
    write_frame(verdicts, args.out / "verdicts.parquet", Verdict)
    counts = dict(verdicts.group_by("reason").len().iter_rows())
    write_json(
        {
            "round": params.round,
            "samples": verdicts.height,
            "correct": int(verdicts["correct"].sum()),
            "sample_accuracy": float(verdicts["correct"].mean()),
            "unparseable": int(counts.get("unparseable", 0)),
            "wall_s": timer.seconds,
        },
        args.out / "metrics.json",
    )
    print(f"verify: {int(verdicts['correct'].sum())}/{verdicts.height} samples correct")


if __name__ == "__main__":
    run_stage(main)
