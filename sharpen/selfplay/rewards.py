"""The proposer's reward for each proposal, from how the solver did on it.

R-Zero (challenger): p̂ is the share of the solver's m answers that agree with their majority
answer (the pass rate under `verify.labels: majority`); the reward is
max(0, min(p̂, 1 − p̂) − repetition), largest for questions the solver splits on, and −1 for a
proposal that is not a question. The truth is never read.

Absolute Zero (proposer): with s the solver's mean success against the executor's gold, the
reward is 1 − s, and 0 when s is 0 or 1 (too hard or trivial teaches nothing); −1 for a proposal
the executor rejected.
"""

from __future__ import annotations

INVALID = -1.0


def challenger_reward(p_hat: float | None, repetition: float) -> float:
    """R-Zero: None for p̂ means the proposal was not a valid question."""
    if p_hat is None:
        return INVALID
    return max(0.0, min(p_hat, 1.0 - p_hat) - repetition)


def proposer_reward(solve_rate: float | None, repetition: float = 0.0) -> float:
    """Absolute Zero: None for the rate means the executor rejected the program; `repetition` is
    the weighted penalty (0 in the paper), kept above the rejected reward."""
    if solve_rate is None:
        return INVALID
    learnable = 0.0 < solve_rate < 1.0
    return max(INVALID, (1.0 - solve_rate if learnable else 0.0) - repetition)


# the kind's paper value of the repetition weight λ, where propose.repetition_weight is null
PAPER_REPETITION_WEIGHT = {"r-zero": 1.0, "absolute-zero": 0.0}


def reward(kind: str, rate: float | None, repetition: float, weight: float | None = None) -> float:
    """The proposer's reward for one proposal: `repetition` is its cluster's share of the batch,
    `weight` λ (None: the kind's paper value)."""
    if kind not in PAPER_REPETITION_WEIGHT:
        raise ValueError(f"propose.kind: {kind!r} has no proposer reward")
    penalty = (PAPER_REPETITION_WEIGHT[kind] if weight is None else weight) * repetition
    return challenger_reward(rate, penalty) if kind == "r-zero" else proposer_reward(rate, penalty)
