"""reasoning-gym: any of its procedurally generated tasks by name, with a seed and a size.

`task: {name: reasoning_gym, dataset: basic_arithmetic, config: {...}, pool_size, eval_size, seed}`
makes `pool_size + eval_size` entries with `reasoning_gym.create_dataset(dataset, size=...,
seed=..., **config)` and holds `eval_size` of them out (drawn with the same seed). Each problem's
`source` column records how to rebuild its entry (dataset, config, seed, size, index), so the
`reasoning_gym` verifier scores with the dataset's own `score_answer` on the exact entry,
metadata included, rather than on a JSON copy of it.

Run: `python -m stages.tasks --out data/tasks` with the task section above.
"""

from __future__ import annotations

import functools
import json

import polars as pl

from sharpen.io import ArtifactError
from sharpen.tasks.files import split_held_out


class GymError(ArtifactError):
    """reasoning-gym refused the dataset name or its config."""


@functools.lru_cache(maxsize=16)
def _dataset(dataset: str, config_json: str, seed: int, size: int):
    import reasoning_gym

    try:
        return reasoning_gym.create_dataset(dataset, size=size, seed=seed, **json.loads(config_json))
    except Exception as e:  # it raises ValueError/KeyError/TypeError/AssertionError by dataset
        raise GymError(f"task.dataset/config: reasoning-gym cannot make {dataset!r} with config {config_json}: "
                       f"{type(e).__name__}: {e}") from None


def source_of(dataset: str, config: dict, seed: int, size: int, index: int) -> str:
    return json.dumps({"dataset": dataset, "config": config, "seed": seed, "size": size, "index": index}, sort_keys=True)


def entry_for(source: str) -> dict:
    """The reasoning-gym entry a problem's `source` names, rebuilt from its generator."""
    s = json.loads(source)
    return _dataset(s["dataset"], json.dumps(s["config"], sort_keys=True), s["seed"], s["size"])[s["index"]]


def score(answer: str, source: str) -> float:
    s = json.loads(source)
    ds = _dataset(s["dataset"], json.dumps(s["config"], sort_keys=True), s["seed"], s["size"])
    return float(ds.score_answer(answer=answer, entry=ds[s["index"]]))


def load_problems(dataset: str, config: dict, seed: int, size: int) -> pl.DataFrame:
    ds = _dataset(dataset, json.dumps(config, sort_keys=True), seed, size)
    rows = []
    for i in range(size):
        entry = ds[i]
        rows.append({
            "problem_id": f"{dataset}-{seed}-{i:06d}",
            "prompt": entry["question"],
            "answer": str(entry["answer"]),
            "category": dataset,
            "source": source_of(dataset, config, seed, size, i),
        })
    return pl.DataFrame(rows).sort("problem_id")


def make_splits(dataset: str, config: dict, pool_size: int, eval_size: int, seed: int):
    problems = load_problems(dataset, config, seed, pool_size + eval_size)
    return split_held_out(problems, eval_size, seed, f"reasoning-gym {dataset}")
