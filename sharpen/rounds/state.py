"""The loop state and its readers: which policy is current, what earlier rounds carried forward.

`data/state/` (sharpen/rounds/layout.py) holds what carries from one round to the next:
`state.json` (which policy is current, its hash and metrics, the gate history), `policy/` (the
promoted model, tracked by DVC through `policy.dvc`) and the loop-carried data (ledger, synthesized
problems, controller history, preference pairs, self-play's buffer). Only `sharpen advance`
(sharpen/rounds/advance.py) changes it; stages read it through the functions here.

Run: `python -c "from sharpen.rounds.state import read_state; print(read_state())"`
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sharpen.errors import SharpenError
from sharpen.io import ArtifactError, read_json, write_json
from sharpen.params import Params
from sharpen.rounds.layout import BASE_EVAL_METRICS, BASE_MODEL, CONTROLLER, LEDGER, PAIRS, STATE_DIR, STATE_FILE, SYNTHETIC


class AdvanceError(SharpenError, RuntimeError):
    """advance refused; nothing was changed. The message says why and what to do."""


class GateRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    round: int
    accepted: bool
    rule: str
    metric: str
    value: float | None
    previous: float | None
    reason: str
    policy_hash: str | None


class LoopState(BaseModel):
    """state.json: the current policy (`base`, or `policy` = data/state/policy) and the gate history."""

    model_config = ConfigDict(extra="forbid")
    policy: str = Field("base", pattern="^(base|policy)$")
    policy_round: int = 0
    policy_hash: str | None = None
    policy_metrics: dict[str, float] | None = None
    # what the promoted policy was made under (loop_identity); a round under other settings is refused
    trained_under: dict[str, str] | None = None
    new_loops: list[dict] = Field([], description="`sharpen new-loop` records: round, what changed, the policy left")
    # self-play's proposer role (sharpen/selfplay): `base` until advance first promotes data/state/proposer
    proposer: str = Field("base", pattern="^(base|proposer)$")
    proposer_round: int = 0
    proposer_hash: str | None = None
    history: list[GateRecord] = []


def read_state(state_dir: Path = STATE_DIR) -> LoopState:
    path = state_dir / STATE_FILE
    try:
        return LoopState.model_validate(read_json(path))
    except ArtifactError as e:
        raise ArtifactError(f"{e} (the loop state; restore it with `git checkout -- {path}`)") from None
    except ValidationError as e:
        raise ArtifactError(f"{path}: invalid loop state: {e}") from None


def write_state(state: LoopState, state_dir: Path = STATE_DIR) -> None:
    write_json(state.model_dump(), state_dir / STATE_FILE)


def current_policy_dir(state_dir: Path = STATE_DIR, base_model: Path = BASE_MODEL, role: str = "policy") -> Path:
    """The directory of the policy the next round generates from: the solver's (`role: policy`, the
    loop's policy) or self-play's proposer's (`role: proposer`)."""
    state = read_state(state_dir)
    name = getattr(state, role)
    path = base_model if name == "base" else state_dir / name
    recover = ("run `dvc repro base`" if name == "base" else
               f"restore it with `git checkout -- {path}.dvc && dvc checkout {path}.dvc`")
    label = "policy" if role == "policy" else f"{role} policy"
    named = f"the {label} named by {state_dir / STATE_FILE} (`{role}: {name}`)"
    if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
        raise ArtifactError(f"{path}: {named} has no config.json (nor adapter_config.json); {recover}")
    if not any((path / name).exists() for name in ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt")):
        raise ArtifactError(f"{path}: {named} has no tokenizer; {recover}")
    return path


def round_pool(pool, state_dir: Path = STATE_DIR):
    """The pool a round draws from: the task's pool plus the problems earlier rounds synthesized."""
    import polars as pl

    from sharpen.io import read_frame
    from sharpen.schemas import Problem

    path = state_dir / SYNTHETIC
    if not path.exists():
        return pool
    return pl.concat([pool, read_frame(path, Problem)], how="diagonal").sort("problem_id")


def loop_identity(params: Params) -> dict[str, str]:
    """What a policy of this loop is tied to: the recipe, the base model, and the task and base
    settings (hashed). Rounds under another identity would sample from a policy made for other data."""
    from sharpen.io import hash_json

    return {"recipe": params.recipe, "model": params.model, "task": hash_json(params.task.model_dump())[:12],
            "base": hash_json(params.base.model_dump())[:12]}


def next_round(state: LoopState) -> int:
    """The round the loop state says runs next: one past the last round advance gated (1 before any)."""
    return max([h.round for h in state.history] + [state.policy_round, state.proposer_round, 0]) + 1


def check_round(params: Params, state_dir: Path = STATE_DIR, params_file: str = "params.yaml") -> None:
    """Refuse a `round` in params.yaml ahead of the loop state (only `sharpen advance` moves it): such a
    round would run, and be advanced and tagged, as a round the loop never reached."""
    expected = next_round(read_state(state_dir))
    if params.round > expected:
        done = f"has advanced rounds up to {expected - 1}" if expected > 1 else "has advanced no round yet"
        raise ArtifactError(
            f"{params_file}: `round: {params.round}` is ahead of the loop state ({state_dir / STATE_FILE} {done}), "
            f"so the round to run is {expected}. Set `round: {expected}` in {params_file}; only `sharpen advance` "
            "moves it"
        )


def check_loop_identity(params: Params, state_dir: Path = STATE_DIR) -> None:
    """Refuse a round whose `round` is ahead of the loop state (check_round), or whose recipe, model,
    task or base settings differ from those the promoted policy was trained under, saying the two ways forward."""
    check_round(params, state_dir)
    state = read_state(state_dir)
    if state.policy == "base" or state.trained_under is None:
        return
    now = loop_identity(params)
    changed = [k for k in now if state.trained_under.get(k) != now[k]]
    if not changed:
        return
    what = ", ".join(f"{k} ({state.trained_under.get(k)} -> {now[k]})" if k in ("recipe", "model") else
                     f"{k} settings" for k in changed)
    raise ArtifactError(
        f"{', '.join(changed)}: params.yaml changed the {what} since round {state.policy_round}'s policy was "
        "promoted; a round would sample from a policy made under other settings. Either put them back, start a "
        "fresh workspace (`git clone` + your params), or run `sharpen new-loop` to start a new loop from the base "
        "model here (recorded in the loop state and shown by `sharpen lineage`)"
    )


def check_policy_hash(policy_hash: str, state_dir: Path = STATE_DIR) -> None:
    """Refuse a promoted policy whose files no longer hash to what advance recorded."""
    state = read_state(state_dir)
    if state.policy != "base" and state.policy_hash and policy_hash != state.policy_hash:
        path = state_dir / state.policy
        raise ArtifactError(
            f"{path}: its files changed since `sharpen advance` promoted it (hash {policy_hash[:8]}, "
            f"state.json says {state.policy_hash[:8]}); restore it with "
            f"`git checkout -- {path}.dvc && dvc checkout {path}.dvc`"
        )


def controller_history(state_dir: Path = STATE_DIR) -> list[dict]:
    """Every earlier round's controller output (`controller.jsonl` in the state), oldest first."""
    import json

    path = state_dir / CONTROLLER
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def previous_round_pairs(state_dir: Path = STATE_DIR):
    """The preference pairs of the last round that made any (None before the first)."""
    from sharpen.io import read_frame
    from sharpen.schemas import PreferencePair

    path = state_dir / PAIRS
    return read_frame(path, PreferencePair) if path.exists() else None


def read_ledger(state_dir: Path = STATE_DIR):
    """Every round's per-problem pass rates so far (the SwS ledger), or None before the first advance."""
    from sharpen.io import read_frame
    from sharpen.schemas import LedgerRow

    path = state_dir / LEDGER
    return read_frame(path, LedgerRow) if path.exists() else None


def current_policy_metrics(state_dir: Path = STATE_DIR) -> dict:
    """The held-out metrics of the current policy: the base model's, or those recorded at promotion."""
    state = read_state(state_dir)
    return state.policy_metrics or {} if state.policy != "base" else read_json(BASE_EVAL_METRICS)
