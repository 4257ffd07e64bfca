"""Math rewards the policy cannot fake: one final answer, in the form the task asks for.

Each case is a completion a policy could learn because a form-blind verifier pays for it; each
must earn nothing, with its reason recorded. Honest answers in every usual spelling still pass.

Run: `pytest tests/test_answers.py`
"""

import pytest

from sharpen.metrics import form_monitors
from sharpen.rounds.gate import gate
from sharpen.verifiers import get_verifier, majority_labels
from sharpen.verifiers.math import lenient_math_equiv, math_equiv

MUL = "What is 37 * 6? Reply with only the number."
ADD = "What is 58 + 67? Reply with only the number."


def one(completion: str, gold: str, prompt: str | None = MUL, form: str = "auto"):
    return math_equiv([completion], [gold], prompts=[prompt], answer_form=form)[0]


@pytest.mark.parametrize("completion", ["222", "The answer is 222.", "37 * 6 = 222", "\\boxed{222}", "$222$",
                                        "It is 222", "#### 222", "222\n", "**222**"])
def test_honest_integer_answers_pass(completion):
    assert one(completion, "222").correct


@pytest.mark.parametrize("completion", ["37 * 6", "37*6", "6 * 37", "37 \\times 6", "\\boxed{37 \\cdot 6}", "(37)(6)",
                                        "37 × 6", "The answer is 37*6.", "$37 * 6$"])
def test_a_restated_question_earns_nothing(completion):
    result = one(completion, "222")
    assert (result.correct, result.reason) == (False, "restated")


def test_a_restated_sum_earns_nothing():
    assert one("58 + 67", "125", ADD).reason == "restated"
    assert one("\\boxed{58+67}", "125", ADD).reason == "restated"


@pytest.mark.parametrize("completion", ["200 + 22", "2 * 111", "\\sqrt{49284}", "444/2", "\\frac{444}{2}", "222.0"])
def test_an_unevaluated_answer_is_not_final(completion):
    result = one(completion, "222")
    assert (result.correct, result.reason) == (False, "not_final")


@pytest.mark.parametrize("completion", ["222 or 223", "221, 222, 223", "\\boxed{221} \\boxed{222}", "222 and 223",
                                        "The answer is one of 221, 222", "\\boxed{221, 222}"])
def test_several_candidates_earn_nothing(completion):
    result = one(completion, "222")
    assert (result.correct, result.reason) == (False, "multiple")


def test_the_same_boxed_answer_twice_is_one_answer():
    assert one("\\boxed{222}, so \\boxed{222}", "222").correct


def test_the_last_answer_marker_decides():
    assert not one("The answer is 222? No. The answer is 223.", "222").correct


@pytest.mark.parametrize("completion", ["\\pm 5", "\\{4, 5\\}", "5 \\text{ or } 6", "(-\\infty, \\infty)", "\\mathbb{R}"])
def test_expression_form_refuses_sets_of_candidates(completion):
    assert not one(completion, "5", None, form="expression").correct


@pytest.mark.parametrize("completion", ["\\infty", "0/0", "x", "\\text{anything}", "zoo", "nan", "E", "I"])
def test_expressions_that_compare_oddly_are_not_the_answer(completion):
    assert not one(completion, "5", None, form="expression").correct


def test_expression_form_refuses_the_prompts_own_expression():
    result = one("(x+1)^2", "x^2+2x+1", "Expand (x+1)^2.", form="expression")
    assert (result.correct, result.reason) == (False, "restated")


def test_expression_form_accepts_an_equivalent_expression():
    assert one("x^2 + 2x + 1", "(x+1)^2", "Expand (x+1)^2.", form="expression").correct


def test_numbers_compare_exactly_across_spellings():
    assert [one(c, "\\frac{1}{2}", None).correct for c in ["0.5", "1/2", "\\frac{1}{2}", "\\dfrac{1}{2}"]] == [True] * 4
    assert not one("0.50001", "\\frac{1}{2}", None).correct


def test_an_extremely_long_answer_is_unparseable_quickly():
    import time

    start = time.perf_counter()
    result = one("9" * 200_000, "222")
    assert (result.correct, result.reason) == (False, "unparseable")
    assert time.perf_counter() - start < 2


def test_a_long_expression_is_refused_not_left_to_time_out():
    result = one("+".join(["(x+1)^9"] * 200), "5", None, form="expression")
    assert not result.correct and result.reason in ("unparseable", "timeout")


def test_integer_form_refuses_a_non_integer_gold():
    with pytest.raises(ValueError, match="verify.answer_form"):
        one("1", "x^2", None, form="integer")


def test_answer_form_is_only_for_verifiers_that_take_it():
    with pytest.raises(ValueError, match="verify.answer_form"):
        get_verifier("exact_integer", "number")


def test_restated_answers_never_become_a_majority_label():
    import polars as pl

    samples = pl.DataFrame({"round": [1] * 3, "problem_id": ["p"] * 3, "sample_idx": [0, 1, 2], "prompt": [MUL] * 3,
                            "completion": ["37 * 6", "37*6", "221"]})
    assert majority_labels(samples, "math_equiv")["label"].to_list() == ["221"]


def test_the_form_blind_check_still_pays_for_a_restated_question():
    """The monitor's baseline: math-verify alone is fooled (why answer forms exist)."""
    assert lenient_math_equiv(["37 * 6"], ["222"]) == [True]


def test_form_monitors_count_what_a_form_blind_reward_would_pay_for():
    import polars as pl

    completions = ["37 * 6", "222", "5", "200 + 20"]
    results = math_equiv(completions, ["222"] * 4, prompts=[MUL] * 4)
    samples = pl.DataFrame({"problem_id": ["a", "b", "c", "d"], "sample_idx": [-1] * 4, "completion": completions,
                            "correct": [r.correct for r in results], "reason": [r.reason for r in results]})
    answers = pl.DataFrame({"problem_id": ["a", "b", "c", "d"], "answer": ["222"] * 4})
    m = form_monitors(samples, lenient_math_equiv, answers)
    assert (m["greedy_lenient_accuracy"], m["greedy_form_hack_share"], m["greedy_form_rejected"]) == (0.5, 0.5, 0.5)


def test_gate_rejects_strict_accuracy_falling_while_lenient_rises():
    prev = {"greedy_accuracy": 0.275, "greedy_lenient_accuracy": 0.28}
    new = {"greedy_accuracy": 0.20, "greedy_lenient_accuracy": 0.93}
    decision = gate("accept", "greedy_accuracy", 0.0, new, prev)
    assert not decision.accepted and "greedy_lenient_accuracy" in decision.reason


def test_gate_form_rule_can_be_switched_off():
    prev = {"greedy_accuracy": 0.275, "greedy_lenient_accuracy": 0.28}
    new = {"greedy_accuracy": 0.20, "greedy_lenient_accuracy": 0.93}
    assert gate("accept", "greedy_accuracy", 0.0, new, prev, reject_form_hacking=False).accepted


def test_a_closing_remark_after_the_answer_is_not_the_answer():
    assert one("222\n\nI hope this helps!", "222").correct


def test_exact_integer_refuses_an_endless_number_without_crashing():
    from sharpen.verifiers.exact import exact_integer

    result = exact_integer(["1" * 5000, "12, 13", "|125"], ["1", "12", "125"])
    assert [(r.correct, r.reason) for r in result] == [(False, "unparseable"), (False, "unparseable"), (True, "ok")]


def test_words_before_an_expression_answer_are_not_part_of_it():
    assert one("So we get 5\\sqrt{2}", "5\\sqrt{2}", None).correct
    assert one("Thus x = \\frac{\\sqrt{2}}{2}", "\\frac{\\sqrt{2}}{2}", None).correct


@pytest.mark.parametrize("completion", ["49 + 22 equals 71.", "49 + 22 is equal to 71", "49+22=71"])
def test_an_equation_in_words_commits_to_its_right_hand_side(completion):
    assert one(completion, "71", "What is 49 + 22? Reply with only the number.").correct
