"""The loop-carried state and `advance`: gate the round, tag it, promote its policy, bump the round.

`data/state/` holds what carries from one round to the next: `state.json` (which policy is
current, its hash and metrics, the gate history) and `policy/` (the promoted model, tracked by
DVC through `policy.dvc`). Only `advance` changes it. Advancing round N makes two commits:

1. "round N": the round's dvc.lock, metrics and params as they ran, tagged `round-N`, so
   `git checkout round-N && dvc status` is clean and `dvc metrics diff round-1 round-2` works.
2. "advance to round N+1": the promoted policy (if the gate accepted), state.json and
   `round: N+1` in params.yaml.

If advance dies between the two, rerunning it finishes step 2; the state only ever names a
policy that a commit records.

Run: `sharpen advance` (the Prefect flow calls `advance()` too).
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sharpen import faults
from sharpen.errors import SharpenError
from sharpen.io import ArtifactError, atomic_write, atomic_write_dir, hash_path, read_json, read_yaml, write_json
from sharpen.params import Params
from sharpen.roundtags import round_tags, tag_commit
from sharpen.config import PARAMS_FILE, load_params

STATE_DIR = Path("data/state")
BASE_MODEL = Path("data/base/model")
BASE_METRICS = Path("data/base/evaluate/metrics.json")
ROUND_METRICS = Path("data/round/evaluate/metrics.json")
ROUND_MODEL = Path("data/round/train/model")
ROUND_STATS = Path("data/round/filter/stats.parquet")
ROUND_SYNTHESIZED = Path("data/round/synthesize/problems.parquet")
ROUND_CONTROLLER = Path("data/round/controller/metrics.json")
LEDGER = "ledger.parquet"  # per-problem pass rate of every round (LedgerRow)
SYNTHETIC = "problems.parquet"  # problems synthesized and admitted by earlier rounds (Problem)
CONTROLLER = "controller.jsonl"  # every round's controller output
PAIRS = "pairs.parquet"  # the last round's own preference pairs (PreferencePair; filter.pairs.mix_previous)
ROUND_PAIRS = Path("data/round/filter/pairs.parquet")
ROUND_PROPOSER = Path("data/round/train_proposer/model")  # self-play: the proposer's next policy
ROUND_PROPOSALS = Path("data/round/train_proposer/proposals.parquet")
BUFFER = "buffer.parquet"  # self-play: every round's accepted proposals (Proposal), with their solver rate


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
    path = state_dir / "state.json"
    try:
        return LoopState.model_validate(read_json(path))
    except ArtifactError as e:
        raise ArtifactError(f"{e} (the loop state; restore it with `git checkout -- {path}`)") from None
    except ValidationError as e:
        raise ArtifactError(f"{path}: invalid loop state: {e}") from None


def write_state(state: LoopState, state_dir: Path = STATE_DIR) -> None:
    write_json(state.model_dump(), state_dir / "state.json")


def current_policy_dir(state_dir: Path = STATE_DIR, base_model: Path = BASE_MODEL, role: str = "policy") -> Path:
    """The directory of the policy the next round generates from: the solver's (`role: policy`, the
    loop's policy) or self-play's proposer's (`role: proposer`)."""
    state = read_state(state_dir)
    name = getattr(state, role)
    path = base_model if name == "base" else state_dir / name
    recover = ("run `dvc repro base`" if name == "base" else
               f"restore it with `git checkout -- {path}.dvc && dvc checkout {path}.dvc`")
    label = "policy" if role == "policy" else f"{role} policy"
    named = f"the {label} named by {state_dir / 'state.json'} (`{role}: {name}`)"
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


def check_loop_identity(params: Params, state_dir: Path = STATE_DIR) -> None:
    """Refuse a round whose recipe, model, task or base settings differ from those the promoted
    policy was trained under, saying the two ways forward."""
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


def new_loop(params_file: Path = PARAMS_FILE) -> LoopState:
    """Start a new loop from the base model in this workspace: the next round generates from the
    base; the switch (round, what changed, the policy left behind) is recorded in state.json and
    committed. Loop-carried data made under the old settings (ledger, synthesized problems,
    controller history, preference pairs) leaves the state; git history keeps it."""
    params = load_params(params_file)
    state = read_state()
    if state.policy == "base":
        raise AdvanceError("the loop already starts from the base model; nothing to do")
    now = loop_identity(params)
    state.new_loops.append({"round": params.round, "left_policy_round": state.policy_round,
                            "left_policy_hash": state.policy_hash, "from": state.trained_under, "to": now})
    state.policy, state.policy_hash, state.policy_metrics, state.trained_under = "base", None, None, None
    for name in (LEDGER, SYNTHETIC, CONTROLLER, PAIRS):
        (STATE_DIR / name).unlink(missing_ok=True)
    write_state(state)
    _git("add", "-A", "--", str(STATE_DIR))
    _git("commit", "-q", "-m", f"new loop from the base model at round {params.round} "
         f"(recipe {(state.new_loops[-1]['from'] or {}).get('recipe')} -> {now['recipe']})")
    return state


def checkout(rev: str) -> str:
    """Put the workspace at a round tag (or a branch): git's files and DVC's outputs together, so
    `dvc status` is clean there. Refuses a work tree with uncommitted changes. Returns where HEAD was
    (the branch name to come back to, or a commit)."""
    if _changed_paths():
        raise AdvanceError("the work tree has uncommitted changes (a round not yet advanced? `sharpen advance` it); "
                           "commit or stash them first (`git status`)")
    if subprocess.run(["git", "rev-parse", "--verify", "-q", f"{rev}^{{commit}}"], capture_output=True).returncode:
        tags = ", ".join(t for _, t in round_tags()) or "none yet"
        raise AdvanceError(f"{rev}: no such round tag or branch (round tags: {tags})")
    back = _git("symbolic-ref", "-q", "--short", "HEAD", check=False).strip()
    if not back:  # already at a round: the most recently committed branch is the loop's
        branches = _git("for-each-ref", "--sort=-committerdate", "--format=%(refname:short)", "refs/heads").split()
        back = branches[0] if branches else _git("rev-parse", "HEAD").strip()
    _git("checkout", "-q", rev)
    proc = subprocess.run(["dvc", "checkout", "--quiet"], capture_output=True, text=True)
    if proc.returncode:
        raise AdvanceError(f"`dvc checkout` at {rev} failed (are the round's outputs in this workspace's DVC cache, or "
                           f"a remote? `dvc pull`): {proc.stderr.strip()[-500:]}")
    return back


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
    """Every earlier round's controller output (data/state/controller.jsonl), oldest first."""
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
    return state.policy_metrics or {} if state.policy != "base" else read_json(BASE_METRICS)


# --- git ---------------------------------------------------------------------------------------


def _git(*args: str, check: bool = True) -> str:
    ident: list[str] = []
    if args and args[0] in ("commit", "tag"):
        if not subprocess.run(["git", "config", "user.email"], capture_output=True, text=True).stdout.strip():
            ident = ["-c", "user.name=sharpen", "-c", "user.email=sharpen@localhost"]
    proc = subprocess.run(["git", *ident, *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AdvanceError(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _pipeline_outputs(dvc_yaml: Path = Path("dvc.yaml")) -> set[str]:
    """Paths git tracks for the pipeline: dvc.lock, params.yaml and every `cache: false` output."""
    paths = {"dvc.lock", str(PARAMS_FILE)}
    stages = (read_yaml(dvc_yaml) or {}).get("stages", {})
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []) or []:
                if isinstance(entry, dict):
                    for path, opts in entry.items():
                        if isinstance(opts, dict) and opts.get("cache") is False:
                            paths.add(path)
    return paths


def _changed_paths() -> list[str]:
    out = _git("status", "--porcelain", "--untracked-files=all")
    return [line[3:].split(" -> ")[-1].strip('"') for line in out.splitlines() if line]


@dataclass
class Gate:
    accepted: bool
    value: float | None
    previous: float | None
    reason: str
    collapsed: bool = False  # rejected by the label-free collapse rule: the loop stops


MONITORS = ("self_consistency", "greedy_distinct_share")


def collapse(new: dict, previous: dict | None, rule) -> str | None:
    """Why a round looks collapsed by the label-free rule (`advance.reject_collapse`, CollapseParams):
    self-consistency rose while the greedy answers lost variety across problems."""
    if rule is None or not previous or not all(k in new and k in previous for k in MONITORS):
        return None
    rise = float(new["self_consistency"]) - float(previous["self_consistency"])
    before, after = float(previous["greedy_distinct_share"]), float(new["greedy_distinct_share"])
    drop = (before - after) / before if before > 0 else 0.0
    if rise > rule.consistency_rise and drop > rule.distinct_drop:
        return (f"collapse: self_consistency rose {rise:+.3f} (> {rule.consistency_rise}) while greedy_distinct_share "
                f"fell {drop:.1%} (> {rule.distinct_drop:.0%}); the policy answers more alike and less by the question "
                "(label-free rule, advance.reject_collapse)")
    return None


def form_hacking(new: dict, previous: dict | None) -> str | None:
    """Why a round looks like reward hacking: strict greedy accuracy fell while the form-blind one rose."""
    keys = ("greedy_accuracy", "greedy_lenient_accuracy")
    if not previous or not all(k in new and k in previous for k in keys):
        return None
    strict, lenient = (float(new[k]) - float(previous[k]) for k in keys)
    if strict < 0 < lenient:
        return (f"greedy_accuracy fell {-strict:.4f} while greedy_lenient_accuracy rose {lenient:.4f}: the policy is "
                f"learning answers only a form-blind reward pays for (greedy_form_hack_share {float(new.get('greedy_form_hack_share', 0)):.3f})")
    return None


def gate(rule: str, metric: str, tolerance: float, new: dict, previous: dict | None, reject_form_hacking: bool = True,
         collapse_rule=None) -> Gate:
    """`accept`: always. `no_regression`: new[metric] >= previous[metric] - tolerance. Either way,
    with `reject_form_hacking`, a round whose strict accuracy falls while the lenient one rises is rejected,
    and with `collapse_rule` (CollapseParams) one that collapses by the label-free rule."""
    if why := collapse(new, previous, collapse_rule):
        prev = float(previous[metric]) if previous and metric in previous else None
        return Gate(False, float(new[metric]) if metric in new else None, prev, why, collapsed=True)
    if reject_form_hacking and (why := form_hacking(new, previous)):
        prev = float(previous[metric]) if previous and metric in previous else None
        return Gate(False, float(new[metric]) if metric in new else None, prev, why)
    if metric not in new:
        raise AdvanceError(f"advance.metric: {metric!r} is not in the round's metrics; allowed: {', '.join(sorted(new))}")
    value = float(new[metric])
    prev = float(previous[metric]) if previous and metric in previous else None
    if rule == "accept":
        return Gate(True, value, prev, "gate 'accept' promotes every round")
    if prev is None:
        return Gate(True, value, prev, f"no previous {metric} to compare against")
    if value >= prev - tolerance:
        return Gate(True, value, prev, f"{metric} {value:.4f} >= {prev:.4f} - {tolerance}")
    return Gate(False, value, prev, f"{metric} {value:.4f} < {prev:.4f} - {tolerance}: regression")


def _bump_round(path: Path, new_round: int) -> None:
    """Set `round:` in params.yaml, keeping its comments and layout."""
    from ruamel.yaml import YAML

    ry = YAML()
    ry.preserve_quotes = True
    data = ry.load(path.read_text(encoding="utf-8"))
    data["round"] = new_round

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            ry.dump(data, f)

    atomic_write(path, write)


def _carry(n: int) -> None:
    """Merge round n's loop-carried data into the state: ledger rows, admitted synthetic problems,
    the controller's output. Idempotent (round n's earlier rows are replaced), so a rerun after a
    crash never counts a round twice."""
    import json

    import polars as pl

    from sharpen.io import read_frame, write_frame
    from sharpen.schemas import LedgerRow, PreferencePair, Problem, ProblemStats, SynthesizedProblem

    if ROUND_STATS.exists():
        rows = read_frame(ROUND_STATS, ProblemStats).select(pl.lit(n, pl.Int64).alias("round"), "problem_id", "category", "pass_rate")
        old = read_ledger()
        ledger = rows if old is None else pl.concat([old.filter(pl.col("round") != n), rows])
        write_frame(ledger.sort("round", "problem_id"), STATE_DIR / LEDGER, LedgerRow)
    if ROUND_SYNTHESIZED.exists():
        new = read_frame(ROUND_SYNTHESIZED, SynthesizedProblem).filter("admitted").select("problem_id", "prompt", "answer", "category")
        if new.height:
            path = STATE_DIR / SYNTHETIC
            old = read_frame(path, Problem) if path.exists() else new.clear()
            merged = pl.concat([old.filter(~pl.col("problem_id").is_in(new["problem_id"].implode())), new])
            write_frame(merged.sort("problem_id"), path, Problem)
    if ROUND_PAIRS.exists():
        pairs = read_frame(ROUND_PAIRS, PreferencePair).filter(pl.col("round") == n)  # not the ones it mixed in
        if pairs.height:
            write_frame(pairs, STATE_DIR / PAIRS, PreferencePair)
    if ROUND_PROPOSALS.exists():
        from sharpen.schemas import Proposal

        accepted = read_frame(ROUND_PROPOSALS, Proposal).filter((pl.col("round") == n) & (pl.col("reason") == "ok"))
        if accepted.height:
            path = STATE_DIR / BUFFER
            old = read_frame(path, Proposal).filter(pl.col("round") != n) if path.exists() else accepted.clear()
            write_frame(pl.concat([old, accepted]).sort("round", "slot", "sample_idx"), path, Proposal)
    if ROUND_CONTROLLER.exists():
        choice = read_json(ROUND_CONTROLLER)
        if choice.get("kind") == "sec" and ROUND_STATS.exists():  # what the round's draw taught, for the next Q
            from sharpen.controller import arm_rewards

            choice["arm_rewards"] = arm_rewards(read_frame(ROUND_STATS, ProblemStats))
        if choice.get("kind", "none") != "none":
            path = STATE_DIR / CONTROLLER
            lines = [ln for ln in (path.read_text().splitlines() if path.exists() else []) if json.loads(ln).get("round") != n]
            lines.append(json.dumps(choice, sort_keys=True))
            atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))


def _promote(params: Params, accepted: Gate, round_metrics: dict) -> LoopState:
    """Step 2: copy the round's model into the state (if accepted), record the gate, bump the round."""
    state = read_state()
    n = params.round
    new_hash = hash_path(ROUND_MODEL)
    state.history = [h for h in state.history if h.round != n]
    state.history.append(
        GateRecord(
            round=n,
            accepted=accepted.accepted,
            rule=params.advance.gate,
            metric=params.advance.metric,
            value=accepted.value,
            previous=accepted.previous,
            reason=accepted.reason,
            policy_hash=new_hash,
        )
    )
    if accepted.accepted:
        atomic_write_dir(STATE_DIR / "policy", lambda tmp: shutil.copytree(ROUND_MODEL, tmp, dirs_exist_ok=True))
        faults.point("advance:policy-copied")
        _dvc_add(STATE_DIR / "policy")
        faults.point("advance:policy-added")
        state.policy, state.policy_round, state.policy_hash = "policy", n, new_hash
        state.trained_under = loop_identity(params)
        state.policy_metrics = {k: float(v) for k, v in round_metrics.items() if isinstance(v, (int, float))}
    if params.propose.kind != "none":  # the proposer learnt from the solver it faced, which stays either way
        _promote_role(state, "proposer", ROUND_PROPOSER, n)
    _carry(n)
    write_state(state)
    faults.point("advance:state-written")
    _bump_round(PARAMS_FILE, n + 1)
    faults.point("advance:round-bumped")
    _git("add", "-A", "--", str(STATE_DIR), str(PARAMS_FILE))
    verdict = "promoted" if accepted.accepted else f"rejected, keeping round {state.policy_round}'s policy"
    _git("commit", "-q", "-m", f"advance to round {n + 1}: round {n} {verdict}")
    return state


def _dvc_add(path: Path) -> None:
    import logging

    from dvc.repo import Repo

    dvc_log = logging.getLogger("dvc")
    level = dvc_log.level
    dvc_log.setLevel(logging.WARNING)  # its "to track the changes with git, run..." hint: advance commits them
    try:
        with Repo(".") as repo:
            repo.add(str(path))
    finally:
        dvc_log.setLevel(level)


def _promote_role(state: LoopState, role: str, model: Path, n: int) -> None:
    """Copy a self-play role's new policy into the state (data/state/<role>, tracked by DVC)."""
    if not (model / "config.json").exists() and not (model / "adapter_config.json").exists():
        raise AdvanceError(f"{model}: round {n}'s {role} policy is missing; run `dvc repro`")
    atomic_write_dir(STATE_DIR / role, lambda tmp: shutil.copytree(model, tmp, dirs_exist_ok=True))
    faults.point(f"advance:{role}-copied")
    _dvc_add(STATE_DIR / role)
    setattr(state, role, role)
    setattr(state, f"{role}_round", n)
    setattr(state, f"{role}_hash", hash_path(model))


def _made_by_advance(tag: str, n: int) -> bool:
    """Whether `tag` is advance's own: annotated with its message, on its `round N:` commit, and that
    commit holds round N's evaluate metrics."""
    import json

    if _git("cat-file", "-t", f"refs/tags/{tag}", check=False).strip() != "tag":
        return False  # a lightweight tag
    if not _git("tag", "-l", "--format=%(contents:subject)", tag, check=False).startswith(f"sharpen round {n}:"):
        return False
    if not _git("log", "-1", "--format=%s", f"{tag}^{{commit}}", check=False).startswith(f"round {n}:"):
        return False
    try:
        committed = json.loads(_git("show", f"{tag}:{ROUND_METRICS.as_posix()}", check=False) or "{}")
    except ValueError:
        return False
    return isinstance(committed, dict) and committed.get("round") == n


ADVANCE_LOCK = Path(".dvc/tmp/sharpen-advance.lock")


def advance(*, params_file: Path = PARAMS_FILE) -> tuple[Gate, LoopState]:
    """Gate, commit and tag round N, promote its policy, bump to round N+1. Refuse cleanly otherwise.

    One advance at a time per workspace (a flock), and never while `dvc repro` holds DVC's lock.
    """
    from dvc.lock import LockError

    from sharpen.loop import LoopBusy, workspace_lock

    if not Path("dvc.yaml").exists():
        raise AdvanceError("no dvc.yaml here: run `sharpen advance` from the project root")
    try:
        with workspace_lock(ADVANCE_LOCK, "`sharpen advance`"):
            return _advance(params_file)
    except LoopBusy as e:
        raise AdvanceError(str(e)) from None
    except LockError:
        raise AdvanceError(
            "DVC's lock on this workspace is held: `dvc repro` (or another dvc command) is running. "
            "Wait for it to finish, then rerun `sharpen advance`"
        ) from None


def _finish_interrupted(n: int) -> tuple[Gate, LoopState] | None:
    """If the advance of round n-1 was killed after bumping `round` but before its last commit
    (HEAD still at the round-(n-1) tag, only the state and params.yaml changed), commit it now."""
    if n < 2 or tag_commit(f"round-{n - 1}") != _git("rev-parse", "HEAD").strip():
        return None
    changed = _changed_paths()
    ours = [p for p in changed if p == str(PARAMS_FILE) or p.startswith(f"{STATE_DIR}/")]
    if not changed or len(ours) != len(changed):
        return None
    state = read_state()
    record = next((h for h in state.history if h.round == n - 1), None)
    if record is None:
        return None
    _git("add", "-A", "--", str(STATE_DIR), str(PARAMS_FILE))
    verdict = "promoted" if record.accepted else f"rejected, keeping round {state.policy_round}'s policy"
    _git("commit", "-q", "-m", f"advance to round {n}: round {n - 1} {verdict} (finished an interrupted advance)")
    return Gate(record.accepted, record.value, record.previous, f"{record.reason}; finished an interrupted advance"), state


def finish_interrupted_advance(params_file: Path = PARAMS_FILE) -> bool:
    """Complete an advance that was killed before its last commit (the loop calls this first)."""
    from sharpen.loop import workspace_lock

    with workspace_lock(ADVANCE_LOCK, "`sharpen advance`"):
        return _finish_interrupted(load_params(params_file).round) is not None


def _stale_stages(status: dict) -> str:
    """What `dvc status` found, in words: outputs edited after the run are not "a stage that changed"."""
    edited, changed = [], []
    for stage, entries in sorted(status.items()):
        kinds = {k for e in entries for k in (e if isinstance(e, dict) else {e: None})}
        if kinds == {"changed outs"}:
            edited += [p for e in entries for p in e["changed outs"]]
        else:
            what = sorted(k.removeprefix("changed ") + (" changed" if k.startswith("changed ") else "") for k in kinds)
            changed.append(f"{stage} ({', '.join(what)})")
    parts = [f"{', '.join(edited)} differ from what `dvc repro` wrote (edited or damaged since; dvc.lock "
             f"records other hashes)"] if edited else []
    if changed:
        parts.append("`dvc status` shows stale stages: " + "; ".join(changed))
    return "; ".join(parts)


def _advance(params_file: Path) -> tuple[Gate, LoopState]:
    params = load_params(params_file)
    n = params.round
    tag = f"round-{n}"
    finished = _finish_interrupted(n)
    if finished is not None:
        return finished
    if not ROUND_METRICS.exists():
        raise AdvanceError(f"round {n} has not finished: {ROUND_METRICS} is missing; run `dvc repro`")
    try:
        round_metrics = read_json(ROUND_METRICS)
    except ArtifactError as e:
        raise AdvanceError(f"{e}; rerun `dvc repro evaluate` (or `git checkout -- {ROUND_METRICS}`)") from None
    if round_metrics.get("round") != n:
        raise AdvanceError(
            f"round {n} has not finished: {ROUND_METRICS} is from round {round_metrics.get('round')}; run `dvc repro`"
        )
    previous = current_policy_metrics()
    a = params.advance
    value = round_metrics.get(a.metric)
    if isinstance(value, float) and not math.isfinite(value):
        raise AdvanceError(
            f"{ROUND_METRICS}: advance.metric {a.metric} is {value}, not a number the gate can compare; the "
            f"round's evaluation produced no score. Rerun `dvc repro -f evaluate` (or `git checkout -- {ROUND_METRICS}`)"
        )
    label_free = params.verify.labels != "gold"
    rule = a.reject_collapse if a.reject_collapse and (label_free or a.reject_collapse.runs == "all") else None
    decision = gate(a.gate, a.metric, a.tolerance, round_metrics, previous, a.reject_form_hacking, rule)

    if subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], capture_output=True).returncode != 0:
        raise AdvanceError(
            "HEAD is detached (not on a branch): the round's commits would be lost when you switch away. "
            "Check out the loop's branch (e.g. `git switch main`) and rerun `sharpen advance`"
        )
    tagged = tag_commit(tag)
    if tagged is not None:
        head = _git("rev-parse", "HEAD").strip()
        if tagged != head:
            raise AdvanceError(
                f"tag {tag} already exists at {tagged[:8]} and HEAD is elsewhere; round {n} was advanced before. "
                f"Set `round:` in params.yaml past it, or delete the tag (`git tag -d {tag}`) to redo it"
            )
        if not _made_by_advance(tag, n):
            raise AdvanceError(
                f"tag {tag} is on HEAD but was not made by `sharpen advance` (not its annotated tag on a "
                f"`round {n}:` commit holding round {n}'s metrics); delete it (`git tag -d {tag}`) and rerun"
            )
        # advance died after tagging: finish the promotion (idempotent)
        return decision, _promote(params, decision, round_metrics)

    from dvc.repo import Repo

    with Repo(".") as repo:
        stale = repo.status()
    if stale:
        raise AdvanceError(f"round {n} has not finished: {_stale_stages(stale)}; run `dvc repro`")
    allowed = _pipeline_outputs()
    changed = _changed_paths()
    unrelated = [p for p in changed if p not in allowed and Path(p).name != ".gitignore"]
    if unrelated:
        raise AdvanceError(
            "the work tree has changes that are not outputs of this round: "
            + ", ".join(unrelated[:10])
            + ("..." if len(unrelated) > 10 else "")
            + ". Commit or stash them, then rerun `sharpen advance`"
        )
    _git("add", "-A", "--", *sorted(changed))
    summary = ", ".join(f"{k} {round_metrics[k]:.3f}" for k in ("greedy_accuracy",) if k in round_metrics)
    _git("commit", "-q", "--allow-empty", "-m", f"round {n}: {summary} (gate: {'accepted' if decision.accepted else 'rejected'})")
    faults.point("advance:committed")
    _git("tag", "-a", tag, "-m", f"sharpen round {n}: {decision.reason}")
    faults.point("advance:tagged")
    return decision, _promote(params, decision, round_metrics)
