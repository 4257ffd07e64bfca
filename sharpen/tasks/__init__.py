"""Problem sources. Each task module makes problems (the `Problem` schema) and knows their format.

Only the embedded `arithmetic` task exists so far; file, reasoning-gym and HumanEval sources come
with the real-data work and plug in here by name.
"""

from sharpen.tasks import arithmetic

TASKS = {"arithmetic": arithmetic}


def get_task(name: str):
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"task.name: unknown task {name!r}; allowed: {', '.join(TASKS)}") from None
