"""Score every sample with the task's verifier: extracted answer, reward, reason.

References are the gold answers, or (`verify.labels: majority`, TTRL) each problem's majority
answer over its samples; then the gold answers are read only to log pseudo-label accuracy.

Run: `python -m stages.verify --samples data/round/generate/samples.parquet \
        --problems data/round/generate/problems.parquet --out data/round/verify`
"""

import argparse
from pathlib import Path

from sharpen.io import read_frame, write_frame, write_json
from sharpen.params import load_params
from sharpen.schemas import Problem, Sample, Verdict
from sharpen.stage import Timer, run_stage
from sharpen.verifiers import label_accuracy, verify_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--problems", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    timer = Timer()
    v = params.verify
    samples = read_frame(args.samples, Sample)
    if v.labels == "majority":
        verdicts = verify_frame(samples, None, v.verifier, labels="majority")
        monitors = label_accuracy(verdicts, read_frame(args.problems, Problem), v.verifier)  # hidden truth, logged only
    else:
        verdicts = verify_frame(samples, read_frame(args.problems, Problem), v.verifier)
        monitors = {}
    write_frame(verdicts, args.out / "verdicts.parquet", Verdict)
    counts = dict(verdicts.group_by("reason").len().iter_rows())
    write_json(
        {
            "round": params.round,
            "samples": verdicts.height,
            "correct": int(verdicts["correct"].sum()),
            "sample_accuracy": float(verdicts["correct"].mean()),
            "unparseable": int(counts.get("unparseable", 0)),
            "labels": v.labels,
            **monitors,
            "wall_s": timer.seconds,
        },
        args.out / "metrics.json",
    )
    print(f"verify: {int(verdicts['correct'].sum())}/{verdicts.height} samples match their {v.labels} label")
    if monitors:
        print(f"  pseudo-labels right on {monitors['label_accuracy']:.1%} of problems (hidden truth, logged only)")


if __name__ == "__main__":
    run_stage(main)
