"""Score every sample with the task's verifier: extracted answer, reward, reason.

References are the gold answers, or (`verify.labels: majority`, TTRL) each problem's majority
answer over its samples, or (`verify.labels: judge`, Self-Rewarding) the policy's own rubric
score; with the last two, the gold answers are read only to log how often the labels are right.

Run: `python -m stages.verify --samples data/round/generate/samples.parquet \
        --problems data/round/generate/problems.parquet --state data/state --base data/base/model \
        --out data/round/verify`
"""

import argparse
from pathlib import Path

from sharpen.backends import load_backend
from sharpen.io import read_frame, write_frame, write_json
from sharpen.judge import judge_frame
from sharpen.sampling import derive_seed
from sharpen.rounds.state import current_policy_dir
from sharpen.config import load_params
from sharpen.schemas import Problem, Sample, Verdict
from sharpen.stage import Timer, run_stage
from sharpen.verifiers.controls import controlled_frame
from sharpen.verifiers import FORM_REASONS, judge_agreement, label_accuracy, preflight, verify_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--problems", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    timer = Timer()
    v = params.verify
    samples = read_frame(args.samples, Sample)
    if v.labels == "judge":
        problems = read_frame(args.problems, Problem)
        preflight(problems, v.verifier, v.answer_form)  # the agreement check below runs it: fail before judging
        policy = current_policy_dir(args.state, args.base)
        g = params.generate
        backend = load_backend(g.backend, policy, batch_size=g.batch_size, chat=params.task.chat,
                               tensor_parallel_size=g.tensor_parallel_size, autocast=g.autocast, server=g.server)
        verdicts = judge_frame(samples, problems, backend, rubric=v.judge.rubric, threshold=v.judge.threshold,
                               max_new_tokens=v.judge.max_new_tokens, seed=derive_seed(params.seed, params.round, "judge"))
        monitors = judge_agreement(verdicts, samples, problems, v.verifier, v.answer_form)  # hidden truth, logged only
    elif v.labels == "majority":
        verdicts = verify_frame(samples, None, v.verifier, labels="majority", answer_form=v.answer_form)
        monitors = label_accuracy(verdicts, read_frame(args.problems, Problem), v.verifier, v.answer_form)  # hidden truth, logged only
    else:
        verdicts = verify_frame(samples, read_frame(args.problems, Problem), v.verifier, answer_form=v.answer_form)
        monitors = {}
    if v.reward_control != "none":  # a control run: the reward no longer says which samples are right
        verifier_accuracy = float((verdicts["reason"] == "ok").mean()) if verdicts.height else 0.0
        verdicts = controlled_frame(verdicts, v.reward_control, derive_seed(params.seed, params.round, "reward_control"))
        monitors |= {"verifier_sample_accuracy": verifier_accuracy}
    write_frame(verdicts, args.out / "verdicts.parquet", Verdict)
    counts = dict(verdicts.group_by("reason").len().iter_rows())
    write_json(
        {
            "round": params.round,
            "samples": verdicts.height,
            "correct": int(verdicts["correct"].sum()),
            "sample_accuracy": float(verdicts["correct"].mean()),
            "unparseable": int(counts.get("unparseable", 0)),
            "form_rejected": int(sum(counts.get(r, 0) for r in FORM_REASONS)),
            "labels": v.labels,
            "reward_control": v.reward_control,
            **monitors,
            "wall_s": timer.seconds,
        },
        args.out / "metrics.json",
    )
    print(f"verify: {int(verdicts['correct'].sum())}/{verdicts.height} samples match their {v.labels} label"
          + (f" (control reward {v.reward_control}: the verifier passed {monitors['verifier_sample_accuracy']:.1%})"
             if v.reward_control != "none" else ""))
    if "label_accuracy" in monitors:
        print(f"  pseudo-labels right on {monitors['label_accuracy']:.1%} of problems (hidden truth, logged only)")
    if "judge_precision" in monitors:
        print(f"  judge agrees with {v.verifier} on {monitors['judge_agreement']:.1%} of samples; "
              f"precision {monitors['judge_precision']:.1%} (hidden truth, logged only)")


if __name__ == "__main__":
    run_stage(main)
