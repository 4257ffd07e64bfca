"""Make the task's training pool and its disjoint held-out set (arithmetic, a problem file, HumanEval or reasoning-gym).

Every gold answer is read by the configured verifier's own parser before anything is written (the
answer must verify against itself): a problem whose answer the verifier cannot read is an error
naming its row, here, not a traceback minutes into the round. `pretraining.json` holds all the
`base` stage reads of the task (stages/base.py).

Run: `python -m stages.tasks --out data/tasks`
"""

import argparse
from pathlib import Path

from sharpen.io import ArtifactError, write_frame, write_json
from sharpen.config import load_params
from sharpen.schemas import Problem
from sharpen.stage import run_stage
from sharpen.tasks import apply_template, get_task
from sharpen.verifiers import preflight, unreadable_references


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    p = params.task
    task = get_task(p.name)
    if p.name == "arithmetic":
        pool, held_out = task.make_splits(
            pool_size=p.pool_size, eval_size=p.eval_size, min_digits=p.min_digits, max_digits=p.max_digits, seed=p.seed
        )
    elif p.name == "file":
        pool, held_out = task.make_splits(p.path, p.eval_path, p.eval_size, p.seed, p.fields, p.split)
    elif p.name == "reasoning_gym":
        pool, held_out = task.make_splits(p.dataset, p.config, p.pool_size, p.eval_size, p.seed)
    elif p.name == "humaneval":
        pool, held_out = task.make_splits(p.eval_size, p.seed)
    else:  # a user's source, by import path
        pool, held_out = task.make_splits(p.name, p.eval_size, p.seed)
    pool, held_out = (apply_template(f, p.template, p.name) for f in (pool, held_out))
    v = params.verify
    for split, frame in (("pool", pool), ("held-out", held_out)):
        bad = unreadable_references(frame, v.verifier, v.answer_form)
        if bad:
            source = p.path if p.name == "file" else f"task {p.name}"
            pid, answer, reason = bad[0]
            shown = answer if len(answer) <= 60 else answer[:57] + "..."
            raise ArtifactError(
                f"{source}: problem {pid!r} ({split}): its answer {shown!r} cannot be read by verify.verifier "
                f"{v.verifier} ({reason}); {len(bad)} such problem(s). Fix the answers, or choose a verifier "
                "that reads them (e.g. math_equiv for fractions or expressions)")
        preflight(frame, v.verifier, v.answer_form)  # tests and sources: the verifier builds and runs their references
    write_frame(pool, args.out / "pool.parquet", Problem)
    write_frame(held_out, args.out / "eval.parquet", Problem)
    # all the base stage reads of the task: a pretrained model reads none of it, so a task change keeps its base
    write_json({"model": "tiny", "min_digits": p.min_digits, "max_digits": p.max_digits, "scratchpad": p.scratchpad,
                "exclude": sorted(held_out["prompt"].to_list())} if params.model == "tiny" else {"model": "pretrained"},
               args.out / "pretraining.json")
    print(f"tasks: {pool.height} pool problems, {held_out.height} held-out, categories {sorted(pool['category'].unique())}")


if __name__ == "__main__":
    run_stage(main)
