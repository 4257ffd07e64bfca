"""The rounds table, read from git tags `round-N` and the metrics each round committed.

No database: every round's metrics files are `cache: false` DVC outputs, so git holds them at
the round's tag; the gate history comes from `data/state/state.json`. Also what produced a round
(`lineage`), and the readers of files at a tag that `diff` and the report share.

Run: `sharpen rounds` (`--json` for tools), `sharpen lineage round-2`.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from sharpen.errors import SharpenError
from sharpen.rounds.layout import (
    BASE_EVAL_METRICS,
    BASE_METRICS,
    ROUND_METRICS,
    STAGES,
    STATE_DIR,
    STATE_FILE,
    stage_metrics,
)
from sharpen.rounds.stopping import LOOPS_LOG
from sharpen.rounds.tags import round_tags, tag_commit

SELF_PLAY_COLUMNS = ("proposed_valid", "proposed_rate")  # rounds with a proposer (propose.kind) only


class LineageError(SharpenError, ValueError):
    """A round tag that is not there, or a committed file that cannot be read."""


# evaluate's accuracies, shown in % by `sharpen rounds`, `diff` and the report: the chance baselines beside them
ACCURACY_PREFIXES = ("greedy", "pass@", "maj@", "chance")


def file_at(rev: str | None, path: str | Path) -> bytes | None:
    """A git-tracked file's bytes at `rev` (None: the workspace), or None if it is not there."""
    if rev is None:
        p = Path(path)
        return p.read_bytes() if p.exists() else None
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True)
    return proc.stdout if proc.returncode == 0 else None


def _where(rev: str | None, path: str | Path) -> str:
    return f"{path} at {rev}" if rev else str(path)


def _fix(rev: str | None, path: str | Path) -> str:
    return (f"; `dvc repro` rewrites it (or `git checkout -- {path}`)" if rev is None else
            f"; the round's commit holds it so (`git show {rev}:{path}`)")


def json_at(rev: str | None, path: str | Path) -> dict | None:
    """A JSON object file at `rev` (None: the workspace), None if absent; anything else names the file."""
    from sharpen.io import ArtifactError, parse_json_object

    data = file_at(rev, path)
    if not data:
        return None
    try:
        return parse_json_object(data, _where(rev, path))
    except ArtifactError as e:
        raise LineageError(f"{e}{_fix(rev, path)}") from None


def yaml_at(rev: str | None, path: str | Path) -> dict:
    """A YAML mapping file at `rev` ({} if absent), read as DVC reads it; a damaged one names the file."""
    from sharpen.io import YAMLFileError, read_yaml

    data = file_at(rev, path)
    if not data:
        return {}
    try:
        value = read_yaml(_where(rev, path), data) or {}
    except YAMLFileError as e:
        raise LineageError(str(e)) from None
    if not isinstance(value, dict):
        raise LineageError(f"{_where(rev, path)}: holds a YAML {type(value).__name__}, not a mapping")
    return value


def frame_at(rev: str, path: str | Path, schema):
    """A DVC-tracked Parquet artifact at `rev`, read through DVC's filesystem API and validated."""
    from dvc.api import DVCFileSystem

    from sharpen.io import ArtifactError, read_frame

    try:
        with DVCFileSystem(".", rev=rev).open(str(path), "rb") as f:
            return read_frame(f, schema, where=f"{path} at {rev}", fix="; its copy in DVC's cache (.dvc/cache) is "
                              f"damaged: delete that copy and `dvc fetch --rev {rev}` it from a remote")
    except FileNotFoundError:
        raise ArtifactError(f"{path} at {rev}: not in the DVC cache (run `dvc pull` or `dvc fetch`)") from None


def _row(rev: str | None, label: str) -> dict | None:
    metrics = json_at(rev, ROUND_METRICS)
    if metrics is None:
        return None
    row = {"round": metrics.get("round"), "tag": label}
    for key, value in metrics.items():
        if key.startswith(ACCURACY_PREFIXES):
            row[key] = value
    by_stage = {s: json_at(rev, stage_metrics(s)) or {} for s in STAGES}
    row["generated"] = by_stage["generate"].get("samples")
    row["control"] = control_of(by_stage["verify"], by_stage["filter"])
    row["kept"] = by_stage["filter"].get("kept")
    row["synthesized"] = by_stage["synthesize"].get("examples")
    row["policy"] = (by_stage["train"].get("model_hash") or "")[:8]
    if by_stage["train_proposer"].get("kind", "none") != "none":  # what the proposer wrote, under the solver
        row["proposed_valid"] = by_stage["train_proposer"].get("valid_share")
        row["proposed_rate"] = by_stage["train_proposer"].get("solver_rate_mean")
        row["proposer"] = (by_stage["train_proposer"].get("model_hash") or "")[:8]
    for s in STAGES:
        row[f"{s}_s"] = by_stage[s].get("wall_s")
    row["total_s"] = round(sum(v for s in STAGES if (v := row[f"{s}_s"]) is not None), 1)
    return row


def control_of(verify: dict, filter_: dict) -> str | None:
    """The control a round ran as, from its verify and filter metrics: a control reward
    (`verify.reward_control`), `no_verifier` (`filter.select: all`), or None for a real run."""
    if verify.get("reward_control", "none") != "none":
        return verify["reward_control"]
    return "no_verifier" if filter_.get("select") == "all" else None


def rounds_table() -> list[dict]:
    """One row per round: round 0 (the base model), every tagged round, and an unadvanced round."""
    rows = []
    tags = round_tags()
    base = json_at(tags[0][1] if tags else None, BASE_EVAL_METRICS)
    if base:
        model = json_at(tags[0][1] if tags else None, BASE_METRICS) or {}
        rows.append(
            {"round": 0, "tag": "base", "policy": (model.get("model_hash") or "")[:8]}
            | {k: v for k, v in base.items() if k.startswith(ACCURACY_PREFIXES)}
            | {"total_s": model.get("wall_s")}
        )
    for _, tag in tags:
        if row := _row(tag, tag):
            rows.append(row)
    workspace = _row(None, "(not advanced)")
    if workspace and workspace["round"] not in {r["round"] for r in rows}:
        rows.append(workspace)
    state = json_at(None, STATE_DIR / STATE_FILE) or {}
    gates = {h["round"]: h for h in state.get("history", [])}
    shown = {r["round"] for r in rows}
    missing = [{"round": k, "tag": f"(round-{k} tag missing)"} for k in gates if k not in shown]
    if missing:  # a tag deleted by hand: the round stays in the table, saying so
        rows = sorted(rows + missing, key=lambda r: r["round"] if isinstance(r["round"], int) else 1 << 30)
    stops = _loop_stops()
    for row in rows:
        g = gates.get(row["round"])
        row["gate"] = ("accepted" if g["accepted"] else "rejected") if g else ""
        if row["round"] in stops:
            row["loop_stop"] = stops[row["round"]]
    return rows


def _loop_stops(path: Path = LOOPS_LOG) -> dict[int, str]:
    """round -> why the loop run that ended after it stopped (from this workspace's loop log)."""
    stops = {}
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a killed writer
            if isinstance(entry, dict) and entry.get("rounds_done") and isinstance(entry.get("first_round"), int):
                stops[entry["first_round"] + entry["rounds_done"] - 1] = entry["reason"]
    return stops


# --- lineage ---------------------------------------------------------------------------------------


def _round_commit(k: int) -> str | None:
    """The newest commit whose subject is advance's `round k: ...` (a deleted tag's commit), or None."""
    out = subprocess.run(["git", "log", "--all", "--format=%H %s"], capture_output=True, text=True).stdout
    return next((line.split(" ", 1)[0] for line in out.splitlines() if line.split(" ", 1)[-1].startswith(f"round {k}: ")),
                None)


def check_round_tags(n: int) -> None:
    """Refuse a lineage through round tags that are gone (deleted by hand) or name another round's commit,
    saying how to put the tag back; otherwise those rounds would read as empty ("None of None samples")."""
    have = dict(round_tags())
    for k in range(1, n + 1):
        tag = f"round-{k}"
        if k not in have:
            commit = _round_commit(k)
            fix = (f"put it back with `git tag -a {tag} {commit[:12]} -m 'sharpen round {k}: restored'`" if commit else
                   f"its `round {k}:` commit is not in this repository either: `git fetch --tags` from where it was pushed")
            raise LineageError(f"tag {tag} is missing (deleted by hand?), and round {n}'s lineage runs through it; {fix}")
        metrics = json_at(tag, ROUND_METRICS) or {}
        if metrics.get("round") != k:
            commit = _round_commit(k)
            fix = f"`git tag -f -a {tag} {commit[:12]} -m 'sharpen round {k}: restored'`" if commit else f"`git tag -d {tag}`"
            raise LineageError(f"tag {tag} names a commit whose {ROUND_METRICS} is round {metrics.get('round')}'s, not "
                               f"round {k}'s (moved by hand?); point it back with {fix}")


def tag_ref(tag: str) -> str:
    if not re.fullmatch(r"round-\d+", tag):
        raise LineageError(f"expected a round tag like round-3, got {tag!r}")
    commit = tag_commit(tag)
    if commit is None:
        known = ", ".join(t for _, t in round_tags()) or "none yet"
        raise LineageError(f"no tag {tag}; rounds tagged so far: {known}")
    return commit


def latest_tag() -> str:
    """The newest round tag (`sharpen lineage` with no tag); refused, saying how to make one, if none."""
    tags = round_tags()
    if not tags:
        raise LineageError("no round is tagged yet: `sharpen advance` tags a finished round (after `dvc repro`)")
    return tags[-1][1]


def lineage(tag: str | None = None) -> dict:
    """What produced round N (None: the latest tagged round): its commit, params, every stage's inputs
    and outputs, and the policy chain."""
    tag = tag or latest_tag()
    commit = tag_ref(tag)
    lock = yaml_at(tag, "dvc.lock").get("stages", {})
    stages = {}
    for name, entry in lock.items():
        stages[name] = {
            "cmd": entry.get("cmd"),
            "deps": {d["path"]: d.get("md5") for d in entry.get("deps", [])},
            "params": entry.get("params", {}).get("params.yaml", {}),
            "outs": {o["path"]: o.get("md5") for o in entry.get("outs", [])},
        }
    chain = []
    base_hash = (json_at(tag, BASE_METRICS) or {}).get("model_hash")
    tags = dict((t, n) for n, t in round_tags())
    n = tags[tag]
    check_round_tags(n)
    producers = {base_hash: "base"}
    for k in range(1, n + 1):
        train = json_at(f"round-{k}", stage_metrics("train")) or {}
        producers[train.get("model_hash")] = f"round {k}"
    for k in range(n, 0, -1):
        gen = json_at(f"round-{k}", stage_metrics("generate")) or {}
        filt = json_at(f"round-{k}", stage_metrics("filter")) or {}
        train = json_at(f"round-{k}", stage_metrics("train")) or {}
        chain.append({
            "round": k,
            "policy": train.get("model_hash"),
            "trained_from": producers.get(train.get("init_hash"), "unknown"),
            "init_hash": train.get("init_hash"),
            "objective": train.get("objective", "sft"),
            "examples": train.get("examples"),
            "pairs": train.get("pairs"),
            "problems": train.get("problems"),
            "rollouts": train.get("rollouts"),
            "rollouts_from": train.get("rollouts_from"),
            "reference_hash": train.get("reference_hash"),
            "skipped": train.get("skipped"),
            "kept_of": gen.get("samples"),
            "filter_rule": filt.get("select", filt.get("rule")),
            "generated_by": producers.get(gen.get("policy_hash"), "unknown"),
            "generator_hash": gen.get("policy_hash"),
        })
    base = json_at(tag, BASE_METRICS) or {}
    chain.append({"round": 0, "policy": base_hash, "trained_from": "scratch (stage base)",
                  "num_parameters": base.get("num_parameters")})
    state = json_at(tag, STATE_DIR / STATE_FILE) or {}
    switches = [s for s in state.get("new_loops", []) if s["round"] <= n]
    return {"tag": tag, "commit": commit, "params": yaml_at(tag, "params.yaml"), "stages": stages, "chain": chain,
            "proposer_chain": _proposer_chain(n, base_hash), "new_loops": switches}


def _proposer_chain(n: int, base_hash: str | None) -> list[dict]:
    """Self-play's second role, newest first: each round's proposer, what it was trained from, what it
    wrote and how the solver did on it. Empty for rounds without a proposer (propose.kind none)."""
    rounds = {k: (json_at(f"round-{k}", stage_metrics("propose")) or {},
                  json_at(f"round-{k}", stage_metrics("train_proposer")) or {}) for k in range(1, n + 1)}
    producers = {base_hash: "base"} | {t.get("model_hash"): f"round {k}" for k, (_, t) in rounds.items()
                                        if t.get("kind", "none") != "none"}
    chain = []
    for k in range(n, 0, -1):
        propose, train = rounds[k]
        if train.get("kind", "none") == "none":
            continue
        chain.append({
            "round": k,
            "kind": train["kind"],
            "proposer": train.get("model_hash"),
            "trained_from": producers.get(train.get("init_hash"), "unknown"),
            "init_hash": train.get("init_hash"),
            "written_by": producers.get(propose.get("proposer_hash"), "unknown"),
            "writer_hash": propose.get("proposer_hash"),
            "proposals": train.get("proposals"),
            "valid_share": train.get("valid_share"),
            "distinct_share": train.get("distinct_share"),
            "solver_rate_mean": train.get("solver_rate_mean"),
            "true_solve_rate": train.get("true_solve_rate"),
            "reward_mean": train.get("reward_mean"),
            "steps": train.get("steps"),
            "skipped": train.get("skipped"),
        })
    return chain


def _metric_order(key: str) -> tuple:
    """greedy, the chance of always one answer beside it, pass@k, maj@k, then guessing's pass@k."""
    group = ["greedy", "chance_accuracy", "pass@", "maj@", "chance_pass@"]
    rank = next((i for i, g in enumerate(group) if key.startswith(g)), len(group))
    return rank, key.split("@")[0], int(key.split("@")[1]) if "@" in key else 0


def round_columns(rows: list[dict], wide: bool) -> tuple[list[str], list[str]]:
    """(the columns of the rounds table in order, which of them are accuracies): `sharpen rounds`
    and the report show the same ones. Essential: round, tag, gate, greedy, pass@k, maj@k, kept,
    total time; wide: also the policy hash, every monitor, sample volumes and per-stage times."""
    metrics = sorted({k for r in rows for k in r if k.startswith(ACCURACY_PREFIXES)}, key=_metric_order)
    self_play = any(r.get("proposed_valid") is not None for r in rows)
    if not wide:
        metrics = [c for c in metrics if c in ("greedy_accuracy", "chance_accuracy") or "@" in c]
        control = ["control"] if any(r.get("control") for r in rows) else []
        return ["round", "tag", *control, "gate", *metrics, "kept", *(SELF_PLAY_COLUMNS if self_play else ()), "total_s"], \
            [*metrics, *(SELF_PLAY_COLUMNS if self_play else ())]
    cols = ["round", "tag", "policy", *(["proposer"] if self_play else []), "control", "gate", *metrics, "generated", "kept",
            *(SELF_PLAY_COLUMNS if self_play else ()), "synthesized",
            *(f"{s}_s" for s in STAGES if self_play or s not in ("propose", "train_proposer")), "total_s"]
    shares = [*metrics, *(SELF_PLAY_COLUMNS if self_play else ())]
    return cols + (["loop_stop"] if any("loop_stop" in r for r in rows) else []), shares


def round_cell(value, column: str, metrics: list[str]) -> str:
    """A rounds-table cell: accuracies in % (one decimal), other floats one decimal."""
    if value is None:
        return ""
    if isinstance(value, float) and column in metrics and value <= 1:
        return f"{100 * value:.1f}"
    return f"{value:.1f}" if isinstance(value, float) else str(value)
