"""Self-judging (Self-Rewarding LMs): the policy scores its own answers with a rubric prompt.

`verify.labels: judge` replaces the reference check: every sample's question and answer go into
the rubric prompt, the policy (the same one that sampled them) answers greedily, and the score
it writes is parsed. reward = score / 5; correct = score >= `verify.judge.threshold`. The judge's
raw text is kept in the verdicts (`judge_text`); a reply with no score is `unparseable`
(reward 0), never a guessed number. Gold answers are read only to log how often the judge
agrees with the task's verifier (the loop monitor "reward precision"), never to score.

The default rubric is Self-Rewarding's additive 5-point scheme, in our own words. A small model
is a weak judge; the point here is that the judging is real and measured, not that it is good.
"""

from __future__ import annotations

import re

RUBRICS = {
    "additive5": (
        "Review the question and the response below, then score the response with this additive "
        "5-point system.\n"
        "- Add 1 point if the response is relevant and gives some related information, even if incomplete.\n"
        "- Add a 2nd point if it addresses a substantial part of the question without fully answering it.\n"
        "- Add a 3rd point if it answers the basic question in a useful way.\n"
        "- Add a 4th point if it answers the question directly, correctly and clearly.\n"
        "- Add a 5th point if it is an excellent answer: correct, concise and with nothing extraneous.\n\n"
        "Question: {question}\n"
        "Response: {response}\n\n"
        "After a one-sentence justification, end with the line \"Score: <points>\"."
    ),
}
MAX_SCORE = 5

_PATTERNS = [
    re.compile(r"score\s*(?:is|of|=|:)?\s*\**\s*([0-5])(?:\s*/\s*5)?\b", re.IGNORECASE),
    re.compile(r"\b([0-5])\s*/\s*5\b"),
    re.compile(r"\b([0-5])\s+points?\b", re.IGNORECASE),
]


def judge_prompt(rubric: str, question: str, response: str) -> str:
    return RUBRICS[rubric].format(question=question, response=response)


def parse_score(text: str) -> int | None:
    """The judge's score in 0..5: the last 'Score: n', else the last 'n/5', else the last 'n points'."""
    for pattern in _PATTERNS:
        found = pattern.findall(text)
        if found:
            return int(found[-1])
    return None


def judge_frame(samples, problems, backend, *, rubric: str, threshold: int, max_new_tokens: int, seed: int):
    """`Verdict` rows for `samples`, scored by `backend` (the policy) with the rubric."""
    import polars as pl

    questions = dict(problems.select("problem_id", "prompt").iter_rows())
    prompts = [judge_prompt(rubric, questions.get(pid, prompt), completion)
               for pid, prompt, completion in samples.select("problem_id", "prompt", "completion").iter_rows()]
    replies = backend.generate(prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)
    texts = [r[0].text for r in replies]
    scores = [parse_score(t) for t in texts]
    return pl.DataFrame(
        {
            "round": samples["round"],
            "problem_id": samples["problem_id"],
            "sample_idx": samples["sample_idx"],
            "extracted": pl.Series([None if s is None else str(s) for s in scores], dtype=pl.String),
            "reward": pl.Series([0.0 if s is None else s / MAX_SCORE for s in scores], dtype=pl.Float64),
            "correct": pl.Series([s is not None and s >= threshold for s in scores], dtype=pl.Boolean),
            "reason": ["unparseable" if s is None else "ok" if s >= threshold else "wrong" for s in scores],
            "verifier": pl.Series([f"judge:{rubric}"] * samples.height, dtype=pl.String),
            "label": pl.Series([None] * samples.height, dtype=pl.String),
            "majority_ratio": pl.Series([None] * samples.height, dtype=pl.Float64),
            "judge_text": pl.Series(texts, dtype=pl.String),
        }
    ).sort("problem_id", "sample_idx")
