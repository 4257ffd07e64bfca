"""A user's own task source, named by import path: `task: {name: mypkg.tasks:problems}`.

The function is called with the task section's seed and returns the problems, as a list (or any
iterable) of dicts or a polars DataFrame, with a problem file's fields (sharpen/tasks/files.py):
`id`, `prompt`, `answer`, and optional `category` and `tests`. Each row is checked as a problem
file's row is (an error names the row and the field); `task.eval_size` of them, drawn with
`task.seed`, are held out. The module's file is a dependency of the `tasks` stage (`sharpen deps`
adds it), so editing it remakes the problems.

    # mypkg/tasks.py
    def problems(seed: int) -> list[dict]:
        return [{"id": f"sq-{n}", "prompt": f"{n}*{n}=", "answer": str(n * n)} for n in range(1, 200)]

Run: `python -m stages.tasks --out data/tasks` with `task: {name: mypkg.tasks:problems, eval_size: 50}`.
"""

from __future__ import annotations

import polars as pl

from sharpen.plugins import load
from sharpen.tasks.files import ProblemFileError, problems_from_records, split_held_out


def make_splits(name: str, eval_size: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    out = load(name, "task.name")(seed=seed)
    if isinstance(out, pl.DataFrame):
        out = out.iter_rows(named=True)
    try:
        rows = iter(out)
    except TypeError:
        raise ProblemFileError(f"task.name: {name} returned {type(out).__name__}, not a list of problems") from None
    records = ((f"task.name {name}: problem {n}", record) for n, record in enumerate(rows, start=1))
    problems, ignored = problems_from_records(records, f"task.name: {name} returned no problems")
    if ignored:
        print(f"tasks: ignored field(s) from {name}: {', '.join(ignored)}")
    return split_held_out(problems, eval_size, seed, name)
