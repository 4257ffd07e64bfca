"""Score every sample with the task's verifier: extracted answer, reward, reason.

Run: `python -m stages.verify --samples data/round/generate/samples.parquet \
        --problems data/tasks/pool.parquet --out data/round/verify`
"""

import argparse
from pathlib import Path

from sharpen.io import read_frame, write_frame, write_json
from sharpen.params import load_params
from sharpen.schemas import Problem, Sample, Verdict
from sharpen.stage import Timer, run_stage
from sharpen.verifiers import verify_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--problems", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    timer = Timer()
    samples = read_frame(args.samples, Sample)
    verdicts = verify_frame(samples, read_frame(args.problems, Problem), params.verify.verifier)
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
