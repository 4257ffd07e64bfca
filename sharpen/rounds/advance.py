"""`advance`: gate the round, tag it, promote its policy, bump the round; and `new_loop`.

Advancing round N makes two commits:

1. "round N": the round's dvc.lock, metrics and params as they ran, tagged `round-N`, so
   `git checkout round-N && dvc status` is clean and `dvc metrics diff round-1 round-2` works.
2. "advance to round N+1": the promoted policy (if the gate accepted), the loop-carried data the
   round made (`_carry`), state.json and `round: N+1` in params.yaml.

If advance dies between the two, rerunning it finishes step 2; the state only ever names a
policy that a commit records.

Run: `sharpen advance` (the Prefect flow calls `advance()` too); `sharpen new-loop`.
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

from sharpen import faults
from sharpen.config import PARAMS_FILE, load_params
from sharpen.io import ArtifactError, atomic_write, atomic_write_dir, hash_path, read_json
from sharpen.params import Params
from sharpen.rounds.consistency import check_round_problems
from sharpen.rounds.gate import Gate, gate
from sharpen.rounds.git import (
    changed_paths,
    dvc_add,
    dvc_outputs,
    dvc_status,
    on_a_branch,
    pipeline_outputs,
    restore_ignores,
    run_git,
    stale_stages,
)
from sharpen.rounds.layout import (
    BUFFER,
    CONTROLLER,
    LEDGER,
    PAIRS,
    ROUND_CONTROLLER,
    ROUND_METRICS,
    ROUND_MODEL,
    ROUND_PAIRS,
    ROUND_PROPOSALS,
    ROUND_PROPOSER,
    ROUND_STATS,
    ROUND_SYNTHESIZED,
    STATE_DIR,
    SYNTHETIC,
)
from sharpen.rounds.lock import LoopBusy, refuse_outside_loop, workspace_lock
from sharpen.rounds.state import (
    AdvanceError,
    GateRecord,
    LoopState,
    check_round,
    current_policy_metrics,
    loop_identity,
    read_ledger,
    read_state,
    write_state,
)
from sharpen.rounds.tags import tag_commit
from sharpen.rounds.tracking import log_round


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
            from sharpen.curriculum import arm_rewards

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
        dvc_add(STATE_DIR / "policy")
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
    run_git("add", "-A", "--", str(STATE_DIR), str(PARAMS_FILE))
    verdict = "promoted" if accepted.accepted else f"rejected, keeping round {state.policy_round}'s policy"
    run_git("commit", "-q", "-m", f"advance to round {n + 1}: round {n} {verdict}")
    return state


def _promote_role(state: LoopState, role: str, model: Path, n: int) -> None:
    """Copy a self-play role's new policy into the state (data/state/<role>, tracked by DVC)."""
    if not (model / "config.json").exists() and not (model / "adapter_config.json").exists():
        raise AdvanceError(f"{model}: round {n}'s {role} policy is missing; run `dvc repro`")
    atomic_write_dir(STATE_DIR / role, lambda tmp: shutil.copytree(model, tmp, dirs_exist_ok=True))
    faults.point(f"advance:{role}-copied")
    dvc_add(STATE_DIR / role)
    setattr(state, role, role)
    setattr(state, f"{role}_round", n)
    setattr(state, f"{role}_hash", hash_path(model))


def _made_by_advance(tag: str, n: int) -> bool:
    """Whether `tag` is advance's own: annotated with its message, on its `round N:` commit, and that
    commit holds round N's evaluate metrics."""
    import json

    if run_git("cat-file", "-t", f"refs/tags/{tag}", check=False).strip() != "tag":
        return False  # a lightweight tag
    if not run_git("tag", "-l", "--format=%(contents:subject)", tag, check=False).startswith(f"sharpen round {n}:"):
        return False
    if not run_git("log", "-1", "--format=%s", f"{tag}^{{commit}}", check=False).startswith(f"round {n}:"):
        return False
    try:
        committed = json.loads(run_git("show", f"{tag}:{ROUND_METRICS.as_posix()}", check=False) or "{}")
    except ValueError:
        return False
    return isinstance(committed, dict) and committed.get("round") == n


def _cached_by(path: str, cached: dict[str, str]) -> str | None:
    """The stage (or .dvc file) whose DVC-cached output holds `path`, or None."""
    for out, stage in cached.items():
        if path == out or path.startswith(out + "/"):
            return stage
    return None


ADVANCE_LOCK = Path(".dvc/tmp/sharpen-advance.lock")


def advance(*, params_file: Path = PARAMS_FILE) -> tuple[Gate, LoopState]:
    """Gate, commit and tag round N, promote its policy, bump to round N+1. Refuse cleanly otherwise.

    One advance at a time per workspace (a flock), and never while `dvc repro` holds DVC's lock.
    """
    from dvc.lock import LockError

    if not Path("dvc.yaml").exists():
        raise AdvanceError("no dvc.yaml here: run `sharpen advance` from the project root")
    try:
        refuse_outside_loop("`sharpen advance`")  # a running loop advances its own rounds
        with workspace_lock(ADVANCE_LOCK, "`sharpen advance`"):
            decision, state = _advance(params_file)
            log_round(decision, state)  # the round's tracker run (sharpen/rounds/tracking.py); never raises
            return decision, state
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
    if n < 2 or tag_commit(f"round-{n - 1}") != run_git("rev-parse", "HEAD").strip():
        return None
    changed = changed_paths()
    ours = [p for p in changed if p == str(PARAMS_FILE) or p.startswith(f"{STATE_DIR}/")]
    if not changed or len(ours) != len(changed):
        return None
    state = read_state()
    record = next((h for h in state.history if h.round == n - 1), None)
    if record is None:
        return None
    run_git("add", "-A", "--", str(STATE_DIR), str(PARAMS_FILE))
    verdict = "promoted" if record.accepted else f"rejected, keeping round {state.policy_round}'s policy"
    run_git("commit", "-q", "-m", f"advance to round {n}: round {n - 1} {verdict} (finished an interrupted advance)")
    return Gate(record.accepted, record.value, record.previous, f"{record.reason}; finished an interrupted advance"), state


def finish_interrupted_advance(params_file: Path = PARAMS_FILE) -> bool:
    """Complete an advance that was killed before its last commit (the loop calls this first)."""
    with workspace_lock(ADVANCE_LOCK, "`sharpen advance`"):
        return _finish_interrupted(load_params(params_file).round) is not None


def _advance(params_file: Path) -> tuple[Gate, LoopState]:
    params = load_params(params_file)
    n = params.round
    tag = f"round-{n}"
    finished = _finish_interrupted(n)
    if finished is not None:
        return finished
    try:
        check_round(params)
    except ArtifactError as e:
        raise AdvanceError(str(e)) from None
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

    if not on_a_branch():
        raise AdvanceError(
            "HEAD is detached (not on a branch): the round's commits would be lost when you switch away. "
            "Check out the loop's branch (e.g. `git switch main`) and rerun `sharpen advance`"
        )
    tagged = tag_commit(tag)
    if tagged is not None:
        head = run_git("rev-parse", "HEAD").strip()
        if tagged != head:
            raise AdvanceError(
                f"tag {tag} already exists at {tagged[:8]} and HEAD is elsewhere; round {n} was advanced before (on "
                f"another branch, or before a `git reset`?). Switch to the branch that holds it, or delete the tag "
                f"(`git tag -d {tag}`) to redo round {n} here"
            )
        if not _made_by_advance(tag, n):
            raise AdvanceError(
                f"tag {tag} is on HEAD but was not made by `sharpen advance` (not its annotated tag on a "
                f"`round {n}:` commit holding round {n}'s metrics); delete it (`git tag -d {tag}`) and rerun"
            )
        # advance died after tagging: finish the promotion (idempotent)
        return decision, _promote(params, decision, round_metrics)

    restored, recorded = restore_ignores()
    if restored:
        more = f" and {len(restored) - 3} more" if len(restored) > 3 else ""
        print(f"advance: put back the .gitignore entries of DVC's outputs {', '.join(restored[:3])}{more} (an interrupted "
              "or failed `dvc repro` removes them)" + (f"; re-recorded stage(s) {', '.join(recorded)}, stale only by "
                                                       "those entries" if recorded else ""), file=sys.stderr)
    stale = dvc_status()
    if stale:
        raise AdvanceError(f"round {n} has not finished: {stale_stages(stale)}; run `dvc repro`")
    try:
        check_round_problems()
    except ArtifactError as e:
        raise AdvanceError(str(e)) from None
    allowed = pipeline_outputs()
    changed = changed_paths()
    cached = dvc_outputs()
    in_dvc = {p: stage for p in changed if (stage := _cached_by(p, cached))}
    if in_dvc:
        path, stage = next(iter(in_dvc.items()))
        raise AdvanceError(
            f"{path}: an output of DVC ({stage}), kept in DVC's cache, but git sees it (a .gitignore rule "
            f"un-ignores it, or it was `git add`ed); do not commit it: `git rm -r --cached {path}` if git tracks it, "
            "fix the .gitignore rule otherwise, then rerun `sharpen advance`"
        )
    unrelated = [p for p in changed if p not in allowed and Path(p).name != ".gitignore"]
    if unrelated:
        raise AdvanceError(
            "the work tree has changes that are not outputs of this round: "
            + ", ".join(unrelated[:10])
            + ("..." if len(unrelated) > 10 else "")
            + ". Commit or stash them, then rerun `sharpen advance`"
        )
    run_git("add", "-A", "--", *sorted(changed))
    summary = ", ".join(f"{k} {round_metrics[k]:.3f}" for k in ("greedy_accuracy",) if k in round_metrics)
    run_git("commit", "-q", "--allow-empty", "-m", f"round {n}: {summary} (gate: {'accepted' if decision.accepted else 'rejected'})")
    faults.point("advance:committed")
    run_git("tag", "-a", tag, "-m", f"sharpen round {n}: {decision.reason}")
    faults.point("advance:tagged")
    return decision, _promote(params, decision, round_metrics)


def new_loop(params_file: Path = PARAMS_FILE) -> LoopState:
    """Start a new loop from the base model in this workspace: the next round generates from the
    base; the switch (round, what changed, the policy left behind) is recorded in state.json and
    committed. Loop-carried data made under the old settings (ledger, synthesized problems,
    controller history, preference pairs) leaves the state; git history keeps it."""
    try:
        refuse_outside_loop("`sharpen new-loop`")
    except LoopBusy as e:
        raise AdvanceError(str(e)) from None
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
    run_git("add", "-A", "--", str(STATE_DIR))
    run_git("commit", "-q", "-m", f"new loop from the base model at round {params.round} "
            f"(recipe {(state.new_loops[-1]['from'] or {}).get('recipe')} -> {now['recipe']})")
    return state
