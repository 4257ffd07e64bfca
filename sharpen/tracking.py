"""Experiment tracking: each round also logged to MLflow, TensorBoard or W&B (offline), as `tracking:` says.

The tracker only records; it never decides, and sharpen's own files (the round's tag, its metrics, dvc.lock)
stay the record. Whatever goes wrong with it (a server nothing listens on, an unwritable directory, a
missing package) is one `warning: tracking: ...` line, and the round goes on.

- `train_reporting(name)`: the `train` stage's `report_to` (transformers' own MLflow / TensorBoard / W&B
  callback, so every step's loss and lr, GRPO's reward mean/std, KL, entropy, clip fraction and DPO's
  margins land in the tracker), run `round-N train (<objective>)`.
- the round's own run, at `sharpen advance`, and the loop's: sharpen/rounds/tracking.py (kept apart so
  the train stage does not depend on the code between rounds).

Where, with `uri: null`: MLflow in sqlite:///.sharpen/tracking/mlflow.db (`mlflow ui --backend-store-uri
sqlite:///.sharpen/tracking/mlflow.db`), TensorBoard in .sharpen/tracking/tensorboard/round-N (`tensorboard
--logdir .sharpen/tracking/tensorboard`), W&B offline in .sharpen/tracking/wandb (`wandb sync` uploads it).

Run: set `tracking: {kind: mlflow, uri: http://127.0.0.1:5000}` in params.yaml, then `dvc repro && sharpen advance`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path

TRACKING_DIR = Path(".sharpen/tracking")
PARENT_ENV = "SHARPEN_TRACKING_PARENT"  # the loop's run (MLflow run id, W&B group), for the rounds under it


def warn(what: str) -> None:
    what = " ".join(what.split())  # one line, whatever the tracker's error held
    print(f"warning: tracking: {what}; the round goes on, its files are the record", file=sys.stderr, flush=True)


def _settings():
    """The params (as params.yaml holds them now); None where there is no params.yaml (no tracking)."""
    from sharpen.config import PARAMS_FILE, load_params

    return load_params() if PARAMS_FILE.exists() else None


def _where(tracking) -> str:
    """The tracker's location: `uri`, or its place under .sharpen/tracking/ (absolute, so stages agree)."""
    if tracking.uri:
        return tracking.uri
    root = TRACKING_DIR.resolve()
    return f"sqlite:///{root / 'mlflow.db'}" if tracking.kind == "mlflow" else str(root / tracking.kind)


def _reachable(tracking) -> str | None:
    """Why the tracker cannot be used now (None: it can); checked before anything is logged, in seconds."""
    kind, where = tracking.kind, _where(tracking)
    package = {"mlflow": "mlflow", "tensorboard": "tensorboard", "wandb": "wandb"}[kind]
    try:
        __import__(package)
    except ImportError:
        return f"tracking.kind {kind}: the {package} package is not installed (`pip install -e .` installs it)"
    if kind == "mlflow" and where.startswith(("http://", "https://")):
        import httpx

        try:
            httpx.get(where.rstrip("/") + "/health", timeout=3.0).raise_for_status()
        except httpx.HTTPError as e:
            return f"the MLflow server at {where} is unreachable ({type(e).__name__}: {str(e)[:120]})"
        return None
    if kind == "mlflow" and not where.startswith("sqlite:///"):
        return None
    folder = Path(where.removeprefix("sqlite:///")).parent if kind == "mlflow" else Path(where)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as e:
        return f"{folder}: cannot write there ({e.strerror or e})"
    return None


def _quiet_mlflow(where: str) -> None:
    """A dead server fails in seconds, not after MLflow's minutes of retries; no INFO lines from its store."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ["MLFLOW_TRACKING_URI"] = where
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _mlflow_client(tracking):
    from mlflow import MlflowClient

    where = _where(tracking)
    _quiet_mlflow(where)
    client = MlflowClient(tracking_uri=where)
    experiment = client.get_experiment_by_name(tracking.experiment)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        tracking.experiment, tags={"mlflow.experimentKind": "custom_model_development"})  # the UI's training view
    return client, experiment_id


def _train_record(n: int) -> Path:
    return TRACKING_DIR / f"train-round-{n}.json"


# --- the train stage -------------------------------------------------------------------------------


def train_reporting(name: str) -> dict:
    """TrainingArguments keys (`report_to`, `run_name`) that send the trainer's step metrics to the tracker,
    with its run prepared; {"report_to": "none"} for `kind: none`, off the main process, or on a failure."""
    from sharpen.objectives.processes import is_main_process

    try:
        params = _settings()
        if params is None or params.tracking.kind == "none" or not is_main_process():
            return {"report_to": "none"}
        tracking, n = params.tracking, params.round
        if why := _reachable(tracking):
            warn(f"{why}; round {n}'s train steps are not logged there")
            return {"report_to": "none"}
        run_name = f"round-{n} train ({name})"
        if tracking.kind == "mlflow":
            client, experiment_id = _mlflow_client(tracking)
            tags = {"sharpen.round": str(n), "sharpen.kind": "train", "sharpen.objective": name}
            if parent := os.environ.get(PARENT_ENV):
                tags["mlflow.parentRunId"] = parent
            run = client.create_run(experiment_id, run_name=run_name, tags=tags)
            os.environ["MLFLOW_RUN_ID"] = run.info.run_id  # transformers' MLflowCallback resumes this run
            os.environ.pop("MLFLOW_NESTED_RUN", None)
            TRACKING_DIR.mkdir(parents=True, exist_ok=True)
            _train_record(n).write_text(json.dumps({"run_id": run.info.run_id, "uri": _where(tracking),
                                                    "experiment_id": experiment_id}))
        elif tracking.kind == "tensorboard":
            os.environ["TENSORBOARD_LOGGING_DIR"] = str(Path(_where(tracking)) / f"round-{n}" / "train")
        else:
            os.environ.update(WANDB_MODE="offline", WANDB_DIR=_where(tracking), WANDB_PROJECT=tracking.experiment,
                              WANDB_RUN_GROUP=os.environ.get(PARENT_ENV) or f"round-{n}", WANDB_JOB_TYPE="train",
                              WANDB_SILENT="true", WANDB_LOG_MODEL="false")
        return {"report_to": [tracking.kind], "run_name": run_name}
    except Exception as e:  # noqa: BLE001 -- the tracker never fails a round
        warn(f"{type(e).__name__}: {str(e)[:200]}; the train steps are not logged")
        return {"report_to": "none"}
