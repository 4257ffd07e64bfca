"""Whether a round's artifacts agree on its problems: no sample, verdict or decision for a problem
the round did not draw (it would count in the round's totals and train the policy on it).

`sharpen advance` refuses such a round before it commits and tags it, naming the first artifact in
pipeline order that holds one, and the stage to rerun. Stages can check a frame in memory with
`foreign_problem_ids`.

Run: `python -c "from sharpen.rounds.consistency import check_round_problems; check_round_problems()"`
"""

from __future__ import annotations

from pathlib import Path

from sharpen.io import ArtifactError
from sharpen.rounds.layout import (
    EVAL_PROBLEMS,
    ROUND_DECISIONS,
    ROUND_EVAL_SAMPLES,
    ROUND_PROBLEMS,
    ROUND_SAMPLES,
    ROUND_STATS,
    ROUND_VERDICTS,
)

# (artifact, the stage that writes it, the problems it may name), in pipeline order
ROUND_ARTIFACTS = (
    (ROUND_SAMPLES, "generate", ROUND_PROBLEMS),
    (ROUND_VERDICTS, "verify", ROUND_PROBLEMS),
    (ROUND_STATS, "filter", ROUND_PROBLEMS),
    (ROUND_DECISIONS, "filter", ROUND_PROBLEMS),
    (ROUND_STATS.with_name("kept.parquet"), "filter", ROUND_PROBLEMS),
    (ROUND_EVAL_SAMPLES, "evaluate", EVAL_PROBLEMS),
)


def foreign_problem_ids(frame, problems) -> list[str]:
    """The problem ids in `frame` (any frame with `problem_id`) that `problems` does not hold, sorted."""
    ids = frame.lazy().select("problem_id").unique()
    known = problems.lazy().select("problem_id").unique()
    return sorted(ids.join(known, on="problem_id", how="anti").collect()["problem_id"].to_list())


def _ids(path: Path):
    import polars as pl

    try:
        return pl.scan_parquet(path).select(pl.col("problem_id").cast(pl.String)).unique().collect()
    except Exception:  # noqa: BLE001  unreadable or without problem_id: the stage reading it names the file
        return None


def check_round_problems() -> None:
    """ArtifactError naming the first round artifact that holds rows for problems not in the round."""
    for path, stage, problems_path in ROUND_ARTIFACTS:
        if not path.exists() or not problems_path.exists():
            continue
        ids, known = _ids(path), _ids(problems_path)
        if ids is None or known is None:
            continue
        foreign = foreign_problem_ids(ids, known)
        if foreign:
            shown = ", ".join(repr(p) for p in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise ArtifactError(
                f"{path}: rows for {len(foreign)} problem(s) not in the round ({shown}; the round's problems are "
                f"{problems_path}); they would count in the round's totals. Rerun the stage that wrote it and those "
                f"after it: `dvc repro -f -s {stage}` then `dvc repro` (or restore the file: `dvc checkout {path}`)"
            )
