"""Verifiers: one signature, one result per item; unparseable answers are recorded as such.

Run: `pytest tests/test_verifiers.py`
"""

import pytest

from sharpen.verifiers import VERIFIERS, get_verifier
from sharpen.verifiers.exact import exact_integer


@pytest.mark.parametrize(
    "completion, gold, correct, reason",
    [
        ("125", "125", True, "ok"),  # plain answer
        (" 0125 ", "125", True, "ok"),  # whitespace and leading zeros normalise
        ("8+7=15,5+6+1=12|125", "125", True, "ok"),  # scratchpad: answer after the last '|'
        ("124", "125", False, "wrong"),
        ("12 5", "125", False, "unparseable"),  # not one integer
        ("", "125", False, "unparseable"),  # empty completion
        ("8+7=15|", "125", False, "unparseable"),  # scratchpad without an answer
    ],
)
def test_exact_integer(completion, gold, correct, reason):
    (result,) = exact_integer([completion], [gold])
    assert (result.correct, result.reason, result.reward) == (correct, reason, 1.0 if correct else 0.0)


def test_one_result_per_item_in_order():
    results = exact_integer(["1", "2", "x"], ["1", "3", "4"])
    assert [r.reason for r in results] == ["ok", "wrong", "unparseable"]


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 completions but 1 references"):
        exact_integer(["1", "2"], ["1"])


def test_unknown_verifier_lists_allowed():
    with pytest.raises(ValueError, match="allowed: " + ", ".join(VERIFIERS)):
        get_verifier("nope")
