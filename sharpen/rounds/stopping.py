"""When the continuous loop stops: the stopping rules, and the record of each loop run's end.

- `stop_reason()`: the stopping rules from `loop` params: max rounds, plateau, wall-clock
  budget, a rejected gate with `on_reject: stop`, and a collapse the gate found.
- `record_stop()`: appends the loop run's outcome to `.sharpen/loops.jsonl` (`sharpen rounds`
  shows why each run stopped).
- `check_params_unchanged()`: params.yaml edited while a round runs stops the loop before its next
  stage (or its advance), naming the keys, so that no round mixes two settings.

Used by `flows/loop.py`; the flow only sequences.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sharpen.config import PARAMS_FILE
from sharpen.errors import SharpenError
from sharpen.params import LoopParams

LOOPS_LOG = Path(".sharpen/loops.jsonl")


def plateaued(values: list[float], *, min_delta: float, patience: int) -> bool:
    """True when none of the last `patience` values beat the best before them by more than `min_delta`.

    `values[0]` is the starting policy's value, then one per round.

    >>> plateaued([0.3, 0.4, 0.41, 0.40], min_delta=0.02, patience=2)
    True
    >>> plateaued([0.3, 0.4, 0.45, 0.40], min_delta=0.02, patience=2)
    False
    """
    if len(values) <= patience:
        return False
    return max(values[-patience:]) <= max(values[:-patience]) + min_delta


def stop_reason(
    params: LoopParams, *, rounds_done: int, max_rounds: int, values: list[float], rejected: bool, elapsed_s: float,
    collapsed: str | None = None,
) -> str | None:
    """Why the loop should stop after this round, or None to go on. `collapsed`: the gate's reason when
    it rejected the round by the collapse rule; a collapsing run stops whatever `on_reject` says."""
    if collapsed:
        return collapsed
    if rejected and params.on_reject == "stop":
        return "gate rejected the round (loop.on_reject: stop)"
    if params.plateau and plateaued(values, min_delta=params.plateau.min_delta, patience=params.plateau.patience):
        p = params.plateau
        return f"plateau: {p.metric} did not improve by more than {p.min_delta} for {p.patience} rounds"
    if params.budget_s is not None and elapsed_s >= params.budget_s:
        return f"wall-clock budget spent ({elapsed_s:.0f}s >= {params.budget_s:.0f}s)"
    if rounds_done >= max_rounds:
        return f"max rounds reached ({max_rounds})"
    return None


def record_stop(entry: dict, path: Path = LOOPS_LOG) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry | {"ended_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")


class ParamsChanged(SharpenError, RuntimeError):
    """params.yaml changed while a round ran; the loop stopped before its next step."""


def params_text(path: Path = PARAMS_FILE) -> str:
    """params.yaml as a round began (what `check_params_unchanged` compares against)."""
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _changed_keys(before: object, after: object, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in {**before, **after} if before.get(k) != after.get(k)]
        return [c for k in keys for c in _changed_keys(before.get(k), after.get(k), f"{prefix}{k}.")]
    return [prefix.rstrip(".") or "(the whole file)"]


def check_params_unchanged(before: str, round_: int, next_step: str, path: Path = PARAMS_FILE) -> None:
    """ParamsChanged, naming the keys, when `path` differs from `before` (its text when round `round_` began)."""
    import yaml

    now = params_text(path)
    if now == before:
        return
    try:
        keys = _changed_keys(yaml.safe_load(before) or {}, yaml.safe_load(now) or {})
    except yaml.YAMLError:
        keys = ["(it is no longer valid YAML)"]
    if not keys:
        return  # comments or layout only: the same settings
    what = ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
    raise ParamsChanged(
        f"{path}: edited while round {round_} ran ({what}); the loop stopped before {next_step} so that no round mixes "
        "two settings, and nothing was lost: the stages that finished are kept. To run this round under the new "
        "settings, resume the loop (DVC reruns the stages they change); to go on under the old ones, undo the edit "
        f"(`git diff {path}`) and resume. Edit params.yaml between loop runs, not during one"
    )
