"""The `tracking` section: where a round's params, metrics and lineage, and its train steps, are also logged.

`kind: none` (the default) logs nowhere; mlflow, tensorboard or wandb (offline) log one run per round at
`sharpen advance` and the trainer's own steps at `train`. A tracker only records: sharpen's own files are
the record, and a tracker that fails is one warning line (sharpen/tracking.py).

Run: `sharpen params` validates this section with the rest.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sharpen.params.section import _Section


class TrackingParams(_Section):
    """Which tracker also records the rounds; `uri` is where (null: under .sharpen/tracking/)."""

    kind: Literal["none", "mlflow", "tensorboard", "wandb"] = "none"
    uri: str | None = Field(
        None, description="mlflow: the tracking URI (http://host:5000, file:...); tensorboard: the log dir; "
        "wandb: the offline dir. null: .sharpen/tracking/<kind>", min_length=1)
    experiment: str = Field("sharpen", min_length=1, description="the MLflow experiment / W&B project the runs go in")
