"""The params of the loop around the rounds: `advance` (the gate between rounds) and `loop` (stopping
rules, per-stage timeouts and retries of `python -m flows.loop`).

Run: `sharpen params` validates these sections of params.yaml with the rest.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sharpen.params.section import _Section


class CollapseParams(_Section):
    """The label-free collapse rule: a round whose policy answers more alike within a problem
    (`self_consistency` up by more than `consistency_rise`) while its greedy answers lose variety
    across problems (`greedy_distinct_share` down by more than `distinct_drop`, relative) is rejected,
    and the loop stops. Read from the policy's own held-out answers, never from gold. Measured on the
    embedded default (RESULTS.md): ttrl-grpo's round 1 (greedy 27.6 -> 11.8) moved them +0.17 and -13%;
    rest-em's round 1 (27.6 -> 42.6) +0.11 and +2%."""

    consistency_rise: float = Field(0.05, ge=0, le=1)
    distinct_drop: float = Field(0.08, ge=0, le=1, description="relative drop of greedy_distinct_share")
    runs: Literal["label_free", "all"] = Field(
        "label_free", description="label_free: only rounds without gold labels (verify.labels majority or judge); all: every round")


class AdvanceParams(_Section):
    """The gate between rounds: `accept` promotes; `no_regression` compares `metric`; under either,
    `reject_form_hacking` rejects strict accuracy falling while a form-blind reward's rises."""

    gate: Literal["accept", "no_regression"] = "accept"
    metric: str = "greedy_accuracy"
    tolerance: float = Field(0.0, ge=0)
    reject_form_hacking: bool = Field(
        True, description="reject a round whose greedy accuracy falls while a form-blind reward's rises "
        "(the policy learning to restate questions); applies under either gate"
    )
    reject_collapse: CollapseParams | None = Field(
        CollapseParams(), description="reject a round that collapses by the label-free rule, and stop the loop (null: off)")


class PlateauParams(_Section):
    """Stop when `metric` has not beaten its earlier best by more than `min_delta` for `patience` rounds."""

    metric: str = "greedy_accuracy"
    min_delta: float = Field(0.0, ge=0)
    patience: int = Field(2, ge=1)


class LoopParams(_Section):
    """The Prefect loop (`python -m flows.loop`): stopping rules, per-stage timeouts and retries."""

    max_rounds: int = Field(5, ge=1, description="rounds one loop run may advance (`--rounds` overrides)")
    plateau: PlateauParams | None = PlateauParams()
    budget_s: float | None = Field(None, gt=0, description="wall-clock budget; checked between rounds")
    on_reject: Literal["stop", "continue"] = Field(
        "continue", description="after a rejected gate: stop, or go on from the previous policy with a new seed"
    )
    stage_timeout_s: float | None = Field(3600, gt=0, description="kill a stage's process group after this")
    stage_retries: int = Field(1, ge=0, description="reruns of a failed stage (DVC skips what finished)")
