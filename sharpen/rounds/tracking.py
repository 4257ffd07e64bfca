"""Each round's own tracker run, logged at `sharpen advance`, and the Prefect loop's run above them.

- `log_round(...)`: after the gate, one run `round-N`: the round's resolved params (flattened), every
  metric `sharpen rounds --wide` shows, the gate decision, and lineage tags (commit, round tag, policy
  hash, the DVC md5 of every round output in dvc.lock) that lead back to `sharpen lineage round-N`. The
  round's train run (sharpen/tracking.py) becomes its child (MLflow) or shares its group (W&B).
- `start_loop_run` / `end_loop_run`: the Prefect loop's own run; the rounds it advances nest under it.

Like the train side, it never decides and never fails a round: any failure is one warning line.

Run: set `tracking: {kind: mlflow, uri: http://127.0.0.1:5000}` in params.yaml, then `dvc repro && sharpen advance`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from sharpen.tracking import PARENT_ENV, _mlflow_client, _reachable, _settings, _train_record, _where, warn

_MAX_PARAM = 6000  # MLflow's longest param value
# the round outputs whose DVC md5 (from dvc.lock at the round's tag) tags the round's run: tag -> (stage, path)
LINEAGE_OUTS = {"samples": ("generate", "data/round/generate/samples.parquet"),
                "kept": ("filter", "data/round/filter/kept.parquet"),
                "policy": ("train", "data/round/train/model")}


def _round_record(n: int) -> dict:
    """What the round's run holds: params (flattened, as the round ran), metrics, string columns, lineage tags."""
    from sharpen.config import load_params
    from sharpen.recipes import flatten
    from sharpen.rounds.lineage import file_at, round_columns, rounds_table, yaml_at
    from sharpen.rounds.tags import tag_commit

    tag = f"round-{n}"
    with tempfile.TemporaryDirectory() as tmp:  # the params as the round ran: params.yaml at its tag
        path = Path(tmp) / "params.yaml"
        path.write_bytes(file_at(tag, "params.yaml") or b"")
        params = load_params(path) if path.stat().st_size else _settings().model_copy(update={"round": n})
    flat = flatten(params.model_dump(mode="json"))
    flat = {k: json.dumps(v) if isinstance(v, (list, dict)) else str(v) for k, v in flat.items()}
    rows = rounds_table()
    row = next((r for r in rows if r.get("round") == n), {})
    columns, _ = round_columns(rows, wide=True)
    metrics, text = {}, {}
    for c in columns:
        v = row.get(c)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and c != "round":
            metrics[c] = float(v)
        elif v not in (None, "") and c != "round":
            text[f"sharpen.rounds.{c}"] = str(v)
    tags = {"sharpen.round": str(n), "sharpen.kind": "round", "sharpen.round_tag": tag,
            "sharpen.commit": tag_commit(tag) or "", "sharpen.lineage": f"sharpen lineage {tag}",
            "sharpen.recipe": params.recipe, "sharpen.workspace": str(Path.cwd())}
    lock = yaml_at(tag, "dvc.lock").get("stages", {})
    for name, (stage, path) in LINEAGE_OUTS.items():  # DVC's md5 of what the round sampled, kept and trained
        md5 = next((o.get("md5") for o in lock.get(stage, {}).get("outs", []) if o.get("path") == path), None)
        if md5:
            tags[f"sharpen.md5.{name}"] = md5
    return {"params": flat, "metrics": metrics, "tags": tags | text}


def log_round(decision, state) -> None:
    """Log the round `sharpen advance` just gated as one tracker run. Never raises: a failure is one warning."""
    n = state.history[-1].round if state.history else None
    try:
        params = _settings()
        if params is None or params.tracking.kind == "none" or n is None:
            return
        tracking = params.tracking
        if why := _reachable(tracking):
            warn(f"{why}; round {n} is not logged there")
            return
        record = _round_record(n)
        gate = state.history[-1]
        record["tags"] |= {"sharpen.gate": "accepted" if decision.accepted else "rejected",
                           "sharpen.gate.reason": decision.reason[:5000], "sharpen.gate.rule": gate.rule,
                           "sharpen.gate.metric": gate.metric, "sharpen.policy_hash": gate.policy_hash or ""}
        record["metrics"] |= {"gate.accepted": float(decision.accepted)}
        record["metrics"] |= {f"gate.{k}": float(v) for k, v in (("value", decision.value), ("previous", decision.previous))
                              if isinstance(v, (int, float))}
        {"mlflow": _mlflow_round, "tensorboard": _tensorboard_round, "wandb": _wandb_round}[tracking.kind](tracking, n, record)
    except Exception as e:  # noqa: BLE001 -- the tracker never fails a round
        warn(f"{type(e).__name__}: {str(e)[:200]}; round {n} is not logged there")


def _mlflow_round(tracking, n: int, record: dict) -> None:
    from mlflow.entities import Metric, Param, RunTag

    client, experiment_id = _mlflow_client(tracking)
    tags = record["tags"]
    found = client.search_runs([experiment_id], f"tags.`sharpen.round_tag` = 'round-{n}' and "
                               f"tags.`sharpen.commit` = '{tags['sharpen.commit']}'", max_results=1)
    if found:  # advance rerun after the round was logged: the same round, not a second run
        return
    parent = os.environ.get(PARENT_ENV)
    ui = {"mlflow.source.git.commit": tags["sharpen.commit"], "mlflow.source.name": "sharpen advance",
          "mlflow.note.content": f"Round {n} ({tags['sharpen.recipe']}): gate {tags['sharpen.gate']} "
                                 f"({tags['sharpen.gate.reason']}). `git checkout round-{n}`, `sharpen lineage round-{n}`."}
    run = client.create_run(experiment_id, run_name=f"round-{n}",
                            tags=tags | ui | ({"mlflow.parentRunId": parent} if parent else {}))
    run_id, now = run.info.run_id, run.info.start_time
    try:
        params = [Param(k, v[:_MAX_PARAM]) for k, v in sorted(record["params"].items())]
        for i in range(0, len(params), 100):  # MLflow takes 100 params a batch
            client.log_batch(run_id, params=params[i:i + 100])
        metrics = [Metric(mlflow_name(k), v, now, n) for k, v in record["metrics"].items()]
        client.log_batch(run_id, metrics=metrics)
        if parent:  # the loop's run charts the rounds it ran
            client.log_batch(parent, metrics=metrics)
        train = _train_record(n)
        if train.exists():
            seen = json.loads(train.read_text())
            if (seen.get("uri"), seen.get("experiment_id")) == (_where(tracking), experiment_id):
                client.set_tag(seen["run_id"], "mlflow.parentRunId", run_id)
                client.set_tag(run_id, "sharpen.train_run", seen["run_id"])
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")


def mlflow_name(metric: str) -> str:
    """A metric's name as MLflow takes it (no `@`): pass@8 -> pass_at_8, maj@8 -> maj_at_8."""
    return re.sub(r"[^/\w.\- ]", "_", metric.replace("@", "_at_"))


def _tensorboard_round(tracking, n: int, record: dict) -> None:
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(_where(tracking)) / f"round-{n}"
    for old in folder.glob("events.out.tfevents.*"):  # advance rerun: the round once
        old.unlink()
    writer = SummaryWriter(log_dir=str(folder))
    try:
        for key, value in record["metrics"].items():
            writer.add_scalar(key, value, n)
        for name in ("tags", "params"):
            rows = "\n".join(f"| {k} | {str(v).replace('|', '/')} |" for k, v in sorted(record[name].items()))
            writer.add_text(name, f"| key | value |\n|---|---|\n{rows}", n)
    finally:
        writer.close()


def _wandb_round(tracking, n: int, record: dict) -> None:
    import wandb

    folder = Path(_where(tracking))
    folder.mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=tracking.experiment, name=f"round-{n}", dir=str(folder), mode="offline",
                     group=os.environ.get(PARENT_ENV) or f"round-{n}", job_type="round",
                     config=record["params"] | record["tags"], settings=wandb.Settings(silent=True))
    try:
        run.log(record["metrics"] | {"round": n})
        run.summary.update(record["metrics"])
    finally:
        run.finish()


# --- the Prefect loop's run ------------------------------------------------------------------------


def start_loop_run(first_round: int) -> str | None:
    """Open the loop's run (MLflow; a W&B group) that the rounds nest under; its id, or None. Never raises."""
    try:
        params = _settings()
        if params is None or params.tracking.kind not in ("mlflow", "wandb"):
            return None
        tracking = params.tracking
        if why := _reachable(tracking):
            warn(f"{why}; this loop's rounds are not logged there")
            return None
        if tracking.kind == "wandb":
            import time

            parent = f"loop-{time.strftime('%Y%m%d-%H%M%S')}"
        else:
            client, experiment_id = _mlflow_client(tracking)
            parent = client.create_run(experiment_id, run_name=f"loop from round {first_round}",
                                       tags={"sharpen.kind": "loop", "sharpen.first_round": str(first_round),
                                             "sharpen.workspace": str(Path.cwd())}).info.run_id
        os.environ[PARENT_ENV] = parent
        return parent
    except Exception as e:  # noqa: BLE001 -- the tracker never stops a loop
        warn(f"{type(e).__name__}: {str(e)[:200]}; this loop's run is not logged")
        return None


def end_loop_run(parent: str | None, reason: str) -> None:
    """Close the loop's run with why it stopped. Never raises."""
    if parent is None:
        return
    os.environ.pop(PARENT_ENV, None)
    try:
        tracking = _settings().tracking
        if tracking.kind == "mlflow":
            client, _ = _mlflow_client(tracking)
            client.set_tag(parent, "sharpen.stop_reason", reason[:5000])
            client.set_terminated(parent, "FINISHED")
    except Exception as e:  # noqa: BLE001
        warn(f"{type(e).__name__}: {str(e)[:200]}; the loop's run is left open")

