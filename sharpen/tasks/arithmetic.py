"""The embedded task: integer addition, `a+b=` → `c`, optionally with a per-digit scratchpad.

A seeded generator draws operand lengths uniformly in [min_digits, max_digits], so every
category (`"<digits of a>+<digits of b>"`, e.g. `"2+3"`) is equally likely. The held-out set is
drawn first; the training pool and the base model's pretraining stream exclude it.

Scratchpad (STaR's own arithmetic set-up): one step per digit from the right, carries written
out, then `|` and the answer: `58+67=` → `8+7=15,5+6+1=12|125`.

Hints (STaR's rationalization): `hinted_prompt` puts the gold answer in front of the prompt,
`(125)58+67=`. A pretrained LLM uses such a hint from a few-shot prompt; the tiny base model can
only use it if pretraining showed it some, so `base.hint_fraction` of its pretraining prompts
carry one. The completion is the same scratchpad either way, so a rationalized sample is stored
with the plain prompt.

Run: `python -m stages.tasks --out data/tasks` (the DVC stage `tasks`).
"""

from __future__ import annotations

import random

import polars as pl

ANSWER_SEPARATOR = "|"


def prompt_for(a: int, b: int) -> str:
    return f"{a}+{b}="


PROPOSE_MARKER = "?"  # what the tiny base writes a question after (base.propose_fraction)


def question_for(a: int, b: int) -> str:
    """The question a proposer writes: `a+b`; the solver's prompt is `prompt_for_question` of it."""
    return f"{a}+{b}"


def prompt_for_question(question: str) -> str:
    return f"{question}="


HINT_OPEN, HINT_CLOSE = "(", ")"


def hinted_prompt(prompt: str, answer: str) -> str:
    """The prompt with the gold answer as a hint: `(125)58+67=`."""
    return f"{HINT_OPEN}{answer}{HINT_CLOSE}{prompt}"


def scratchpad(a: int, b: int) -> str:
    """The per-digit working for a+b, least significant digit first."""
    da, db = str(a)[::-1], str(b)[::-1]
    steps, carry = [], 0
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        total = x + y + carry
        steps.append(f"{x}+{y}{'+1' if carry else ''}={total}")
        carry = total // 10
    return ",".join(steps)


def completion_for(a: int, b: int, *, use_scratchpad: bool) -> str:
    answer = str(a + b)
    return f"{scratchpad(a, b)}{ANSWER_SEPARATOR}{answer}" if use_scratchpad else answer


def _operand(rng: random.Random, digits: int) -> int:
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


def draw_pair(rng: random.Random, min_digits: int, max_digits: int) -> tuple[int, int]:
    la, lb = rng.randint(min_digits, max_digits), rng.randint(min_digits, max_digits)
    return _operand(rng, la), _operand(rng, lb)


def problem_id(a: int, b: int) -> str:
    return f"{a}+{b}"


def category(a: int, b: int) -> str:
    return f"{len(str(a))}+{len(str(b))}"


def distinct_problems(min_digits: int, max_digits: int) -> int:
    """How many different problems `a+b` operands of min_digits..max_digits digits make (0..9 are the 1-digit ones).

    >>> distinct_problems(1, 1), distinct_problems(1, 2)
    (100, 10000)
    """
    operands = sum(10 if d == 1 else 9 * 10 ** (d - 1) for d in range(min_digits, max_digits + 1))
    return operands * operands


def _draw_unique(rng, n, min_digits, max_digits, exclude: set[str]) -> list[tuple[int, int]]:
    pairs: dict[str, tuple[int, int]] = {}
    attempts = 0
    while len(pairs) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            from sharpen.params import ParamsError

            raise ParamsError(
                f"task: cannot draw {n} distinct problems with {min_digits}-{max_digits} digit operands "
                f"({distinct_problems(min_digits, max_digits):,} exist); lower task.pool_size/eval_size or raise "
                "task.max_digits"
            )
        a, b = draw_pair(rng, min_digits, max_digits)
        pid = problem_id(a, b)
        if pid not in exclude and pid not in pairs:
            pairs[pid] = (a, b)
    return list(pairs.values())


def make_problems(pairs: list[tuple[int, int]]) -> pl.DataFrame:
    """Problems for the given operand pairs, sorted by problem_id."""
    return pl.DataFrame(
        {
            "problem_id": [problem_id(a, b) for a, b in pairs],
            "prompt": [prompt_for(a, b) for a, b in pairs],
            "answer": [str(a + b) for a, b in pairs],
            "category": [category(a, b) for a, b in pairs],
        },
        schema={"problem_id": pl.String, "prompt": pl.String, "answer": pl.String, "category": pl.String},
    ).sort("problem_id")


def make_splits(
    *, pool_size: int, eval_size: int, min_digits: int, max_digits: int, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(pool, held-out): disjoint problem sets, deterministic in `seed`."""
    rng = random.Random(seed)
    held_out = _draw_unique(rng, eval_size, min_digits, max_digits, exclude=set())
    pool = _draw_unique(rng, pool_size, min_digits, max_digits, exclude={problem_id(*p) for p in held_out})
    return make_problems(pool), make_problems(held_out)


def pretraining_texts(
    rng: random.Random, n: int, *, min_digits: int, max_digits: int, use_scratchpad: bool, exclude: set[str],
    hint_fraction: float = 0.0, propose_fraction: float = 0.0,
) -> list[tuple[str, str]]:
    """`n` (prompt, completion) pairs for pretraining the base model, never a prompt in `exclude`.

    A `hint_fraction` share of the prompts carry the answer as a hint (see `hinted_prompt`). A
    `propose_fraction` share are proposals instead: the marker `PROPOSE_MARKER` -> a question `a+b`
    (self-play's proposer role starts from this; `sharpen.selfplay`).
    """
    out = []
    while len(out) < n:
        a, b = draw_pair(rng, min_digits, max_digits)
        prompt = prompt_for(a, b)
        if prompt not in exclude:
            if propose_fraction and rng.random() < propose_fraction:
                out.append((PROPOSE_MARKER, question_for(a, b)))
                continue
            if hint_fraction and rng.random() < hint_fraction:
                prompt = hinted_prompt(prompt, str(a + b))
            out.append((prompt, completion_for(a, b, use_scratchpad=use_scratchpad)))
    return out


def carries(a: int, b: int) -> int:
    """How many digit positions of a+b produce a carry."""
    da, db = str(a)[::-1], str(b)[::-1]
    count, carry = 0, 0
    for i in range(max(len(da), len(db))):
        carry = (int(da[i]) if i < len(da) else 0) + (int(db[i]) if i < len(db) else 0) + carry >= 10
        count += carry
    return count


def operands(pid: str) -> tuple[int, int]:
    """The operands of a problem id `a+b`."""
    a, b = pid.split("+")
    return int(a), int(b)


def similar(pid: str, rng: random.Random, tries: int = 200) -> tuple[str, str, str, str]:
    """A new problem with the attributes of `pid` (operand digit lengths and number of carries):
    SwS's templated stand-in for LLM problem writing. (problem_id, prompt, answer, category)."""
    a, b = operands(pid)
    want = carries(a, b)
    for _ in range(tries):
        x, y = _operand(rng, len(str(a))), _operand(rng, len(str(b)))
        if carries(x, y) == want and (x, y) != (a, b):
            break
    return problem_id(x, y), prompt_for(x, y), str(x + y), category(x, y)
