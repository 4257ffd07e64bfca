"""What each recipe measured on the embedded default, and what it cost: the numbers to choose by.

Every number is copied from RESULTS.md (the section named in `source`), with its seed count; a
recipe without a measurement says "not measured". `sharpen recipes` prints this table and the
README's recipes section holds the same one (tests/test_recipe_outcomes.py checks they agree).
This module is read by the CLI only, never by a stage, so new measurements rerun nothing.

Run: `sharpen recipes` (the table is at the end), `python -c "from sharpen.recipe_outcomes import
markdown_table; print(markdown_table())"` (the README's rows).
"""

from __future__ import annotations

from dataclasses import dataclass

NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Outcome:
    result: str  # greedy accuracy on the 500 held-out sums, %, after 3 rounds from the base's 27.6 unless said
    seeds: int  # seeds behind `result` (0: not measured)
    samples: str  # completions generated over the 3 rounds (+ those sampled inside train)
    minutes: str  # wall time, base + 3 rounds, on the 2-core machine RESULTS.md ran on
    source: str  # the RESULTS.md section the numbers come from


_EVERY = "Every recipe, one seed"
_REWARDS = "Learning from rewards"
_SELF_PLAY = "Self-play"

OUTCOMES: dict[str, Outcome] = {
    "rest-em": Outcome("50.5 ± 1.0 (pass@8 68.9 ± 1.9)", 3, "98,304 (32,768 a round)",
                       "≈ 4.5 alone (11.2 on a shared CPU)", "Seeds and controls; " + _EVERY),
    "rest-grpo": Outcome("59.8 ± 0.9 (pass@8 74.1 ± 0.8)", 3, "98,304 (32,768 a round, none in train)",
                         NOT_MEASURED, "Every arm over 3 seeds"),
    "grpo": Outcome("33.6 after 1 round (pass@8 52.6); 3 rounds at its settings not measured", 1,
                    "98,304 + 25,600 a round sampled in train", NOT_MEASURED, "the GRPO ablation"),
    "iterative-dpo": Outcome("59.4 ± 0.2 (pass@8 75.1 ± 1.0)", 3, "98,304", "11.7 (shared CPU)",
                             "Every arm over 3 seeds; " + _REWARDS),
    "b-star": Outcome("75.4 (its control, rest-em from the previous policy without dedup: 74.4)", 1,
                      "129,024 (with the controller's dev samples)", "8.7", _EVERY),
    "sws": Outcome("53.4", 1, "106,672 (with the synthesize stage's probes)", "5.1", _EVERY),
    "star": Outcome("75.8 from its scratchpad base's 48.4 (its control, rest-em on that base: 76.0)", 1,
                    "16,750", "7.3", _EVERY),
    "ttrl": Outcome("25.8 (below the base)", 1, "98,304", "5.2", _EVERY),
    "ttrl-grpo": Outcome("6.8 (collapses) without the collapse rule; with it (the default) the loop stops after "
                         "round 1 and keeps the base (27.6)", 1, "98,304 + 19,200 in train", NOT_MEASURED,
                         _REWARDS + "; A label-free loop"),
    "sec": Outcome("28.2", 1, "6,144 + 19,200 in train", NOT_MEASURED, _REWARDS),
    "spin": Outcome("50.8 (pass@8 71.0)", 1, "12,288", "16.1 (shared CPU)", _REWARDS),
    "self-reward": Outcome("10.0 with the verifier as its judge (51.6 with the NLL term at 1.0); with its own "
                           "judge not measured", 1, "49,152", "7.5 (shared CPU)", _REWARDS),
    "r-zero": Outcome("17.4 from its self-play base's 19.0", 1, "2,864 solver answers + 384 proposals", "14.8",
                      _SELF_PLAY),
    "r-zero-sft": Outcome(NOT_MEASURED, 0, NOT_MEASURED, NOT_MEASURED, ""),
    "absolute-zero": Outcome("19.0 from its self-play base's 19.0", 1, "2,824 solver answers + 384 proposals",
                             "10.5", _SELF_PLAY),
}

START = ("Start with rest-em, the default: measured over 3 seeds and against a random-reward control, about "
         "4.5 minutes for base + 3 rounds here. For RL, rest-grpo: 59.8 ± 0.9 greedy after 3 rounds (3 seeds) "
         "against rest-em's 50.5 ± 1.0, on the same 32,768 samples a round.")

COLUMNS = ("recipe", "held-out greedy %, after 3 rounds", "seeds", "samples, 3 rounds", "wall (base + 3 rounds), min")


def rows() -> list[tuple[str, ...]]:
    """One row per recipe, in COLUMNS' order: rest-em and rest-grpo first, then as RECIPES lists them."""
    from sharpen.recipes import RECIPES

    order = ["rest-em", "rest-grpo"] + [name for name in RECIPES if name not in ("rest-em", "rest-grpo")]
    return [(name, o.result, str(o.seeds) if o.seeds else "—", o.samples, o.minutes)
            for name in order for o in [OUTCOMES[name]]]


def markdown_table() -> list[str]:
    """The table as the README holds it, one string per line."""
    escape = lambda cell: cell.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---|---:|---|---|"]
    lines += ["| " + " | ".join([f"`{r[0]}`", *map(escape, r[1:])]) + " |" for r in rows()]
    return lines
