"""The rounds table, read from git tags `round-N` and the metrics each round committed.

No database: every round's metrics files are `cache: false` DVC outputs, so git holds them at
the round's tag; the gate history comes from `data/state/state.json`.

Run: `sharpen rounds` (`--json` for tools).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

STAGES = ("generate", "verify", "filter", "train", "evaluate")


def _show(rev: str | None, path: str) -> dict | None:
    if rev is None:
        p = Path(path)
        return json.loads(p.read_text()) if p.exists() else None
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def round_tags() -> list[tuple[int, str]]:
    out = subprocess.run(["git", "tag", "--list", "round-*"], capture_output=True, text=True).stdout.split()
    tags = [(int(m.group(1)), t) for t in out if (m := re.fullmatch(r"round-(\d+)", t))]
    return sorted(tags)


def _row(rev: str | None, label: str) -> dict | None:
    metrics = _show(rev, "data/round/evaluate/metrics.json")
    if metrics is None:
        return None
    row = {"round": metrics.get("round"), "tag": label}
    for key, value in metrics.items():
        if key.startswith(("greedy", "pass@", "maj@")):
            row[key] = value
    stage_metrics = {s: _show(rev, f"data/round/{s}/metrics.json") or {} for s in STAGES}
    row["generated"] = stage_metrics["generate"].get("samples")
    row["kept"] = stage_metrics["filter"].get("kept")
    row["policy"] = (stage_metrics["train"].get("model_hash") or "")[:8]
    for s in STAGES:
        row[f"{s}_s"] = stage_metrics[s].get("wall_s")
    row["total_s"] = round(sum(v for s in STAGES if (v := row[f"{s}_s"]) is not None), 1)
    return row


def rounds_table() -> list[dict]:
    """One row per round: round 0 (the base model), every tagged round, and an unadvanced round."""
    rows = []
    tags = round_tags()
    base = _show(tags[0][1] if tags else None, "data/base/evaluate/metrics.json")
    if base:
        model = _show(tags[0][1] if tags else None, "data/base/metrics.json") or {}
        rows.append(
            {"round": 0, "tag": "base", "policy": (model.get("model_hash") or "")[:8]}
            | {k: v for k, v in base.items() if k.startswith(("greedy", "pass@", "maj@"))}
            | {"total_s": model.get("wall_s")}
        )
    for _, tag in tags:
        if row := _row(tag, tag):
            rows.append(row)
    workspace = _row(None, "(not advanced)")
    if workspace and workspace["round"] not in {r["round"] for r in rows}:
        rows.append(workspace)
    state = _show(None, "data/state/state.json") or {}
    gates = {h["round"]: h for h in state.get("history", [])}
    for row in rows:
        g = gates.get(row["round"])
        row["gate"] = ("accepted" if g["accepted"] else "rejected") if g else ""
    return rows
