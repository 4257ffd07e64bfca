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


def proposer_reward(solve_rate: float | None) -> float:
    """Absolute Zero: None for the rate means the executor rejected the program."""
    if solve_rate is None:
        return INVALID
    if solve_rate <= 0.0 or solve_rate >= 1.0:
        return 0.0
    return 1.0 - solve_rate


def reward(kind: str, rate: float | None, repetition: float) -> float:
    if kind == "r-zero":
        return challenger_reward(rate, repetition)
    if kind == "absolute-zero":
        return proposer_reward(rate)
    raise ValueError(f"propose.kind: {kind!r} has no proposer reward")
