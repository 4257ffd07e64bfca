"""train.max_length: sized from the data by default, an explicit cap below the longest example refused before training.

Run: `pytest tests/test_lengths.py`
"""

import pytest

from sharpen.objectives.lengths import LengthError, fit_max_length

PROMPTS = ["12+3=", "1+1=", "what is the sum of 123 and 456? ="]
COMPLETIONS = ["15", "2", "579"]


def test_no_max_length_sizes_it_to_the_longest_example(tiny_model_dir):
    # char tokens: the longest prompt (33) + its answer (3) + the EOS
    assert fit_max_length(tiny_model_dir, PROMPTS, [COMPLETIONS], ["a", "b", "c"], max_length=None, chat="never") == 37


def test_a_cap_below_the_longest_example_is_refused_naming_it(tiny_model_dir):
    with pytest.raises(LengthError) as err:
        fit_max_length(tiny_model_dir, PROMPTS, [COMPLETIONS], ["a", "b", "c"], max_length=20, chat="never")
    message = str(err.value)
    assert message.startswith("train.max_length: 20 tokens") and "1 of 3 examples" in message
    assert "'c', is 37 tokens" in message and "1 would lose their whole completion" in message


def test_a_dpo_pair_counts_its_longer_side(tiny_model_dir):
    fitted = fit_max_length(tiny_model_dir, ["1+1="], [["2"], ["2222222"]], ["a"], max_length=None, chat="never")
    assert fitted == 4 + 7 + 1


def test_a_cap_every_example_fits_is_kept(tiny_model_dir):
    assert fit_max_length(tiny_model_dir, PROMPTS, [COMPLETIONS], ["a", "b", "c"], max_length=64, chat="never") == 64
