"""reasoning-gym's own scoring, pass only at exactly 1.0.

The answer is extracted first (the text inside the last `<answer>...</answer>`, else the last
non-empty line) and scored with the dataset's `score_answer` on the rebuilt entry (the
reference is the problem's `source`, see sharpen/tasks/gym.py). Many datasets give partial
credit, some for a mere substring of the answer; a partial score is a wrong answer here
(reward 0), never a fraction of a pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sharpen.verifiers.result import VerifyResult

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def extract_gym_answer(completion: str) -> str | None:
    tagged = _ANSWER.findall(completion)
    if tagged:
        return tagged[-1].strip() or None
    lines = [line.strip() for line in completion.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def reasoning_gym(
    completions: Sequence[str], references: Sequence[str | None], *, prompts: Sequence[str] | None = None
) -> list[VerifyResult]:
    from sharpen.tasks.gym import score

    if len(completions) != len(references):
        raise ValueError(f"reasoning_gym: {len(completions)} completions but {len(references)} references")
    results = []
    for completion, source in zip(completions, references, strict=True):
        answer = extract_gym_answer(completion)
        if answer is None:
            results.append(VerifyResult(None, 0.0, False, "unparseable"))
        elif source is not None and score(answer, source) == 1.0:
            results.append(VerifyResult(answer, 1.0, True, "ok"))
        else:
            results.append(VerifyResult(answer, 0.0, False, "wrong"))
    return results
