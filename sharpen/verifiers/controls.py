"""Reward controls: the same recipe trained on a reward that cannot teach the task.

A gain is a claim: it counts when it beats the same loop trained on a reward that carries no
information about correctness. On Qwen2.5-Math-7B a random reward gave +21 points and a format-only
reward +16 against +29 from the true one (arXiv 2506.10947). `verify.reward_control` switches any
recipe to such a reward; nothing else about the round changes:

- `none`: the verifier's reward;
- `random`: each sample's reward is a coin flip at the observed pass rate p of the samples it is
  scored with (the verify stage: the round's samples; online GRPO: each scored batch), seeded, so
  the control trains on as many rewarded samples as the real run, uncorrelated with correctness;
- `format_only`: 1 when the verifier read one final answer in the task's required form (its reason
  `ok` or `wrong`), whatever its value; 0 for a restated, unevaluated, multiple or unreadable answer.

The third control, no verifier at all, is `filter: {select: all}`. A controlled verdict keeps the
verifier's own `reason` (so `reason == "ok"` still says which samples were right) and the stage logs
the true accuracy beside the controlled one. Held-out evaluation is never controlled.

Run: `pytest tests/test_controls.py`
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from sharpen.verifiers.result import VerifierError, VerifyResult

CONTROLS = ("none", "random", "format_only")
FORM_OK = ("ok", "wrong")  # the verifier read one final answer in the required form


def controlled(results: Sequence[VerifyResult], control: str, seed: int) -> list[VerifyResult]:
    """`results` with the control's reward and correctness; each result keeps its extracted answer and reason."""
    if control == "none":
        return list(results)
    if control == "random":
        p = sum(r.correct for r in results) / len(results) if results else 0.0
        rng = random.Random(seed)
        draws = [rng.random() < p for _ in results]
    elif control == "format_only":
        draws = [r.reason in FORM_OK for r in results]
    else:
        raise VerifierError(f"verify.reward_control: unknown {control!r}; allowed: {', '.join(CONTROLS)}")
    return [r._replace(reward=float(d), correct=bool(d)) for r, d in zip(results, draws, strict=True)]


def controlled_frame(verdicts, control: str, seed: int):
    """A `Verdict` frame with the control's reward and correctness (reasons and answers kept)."""
    import polars as pl

    if control == "none":
        return verdicts
    results = [VerifyResult(e, w, c, r) for e, w, c, r in
               verdicts.select("extracted", "reward", "correct", "reason").iter_rows()]
    out = controlled(results, control, seed)
    return verdicts.with_columns(reward=pl.Series([r.reward for r in out], dtype=pl.Float64),
                                 correct=pl.Series([r.correct for r in out], dtype=pl.Boolean))
