"""Sample frames: long format, schema-valid, and the per-round problem draw.

Run: `pytest tests/test_sampling.py`
"""

from sharpen.backends import Completion
from sharpen.io import validate
from sharpen.sampling import derive_seed, sample_frame, select_problems
from sharpen.schemas import Sample


def test_sample_frame_is_long_and_valid(problems):
    outs = [[Completion(f"{i}{j}", 2, "stop") for j in range(3)] for i in range(problems.height)]
    df = sample_frame(problems, outs, round_=4, policy_hash="h", temperature=0.7)
    validate(df, Sample, "test")
    assert df.height == problems.height * 3
    assert df.filter(df["problem_id"] == problems["problem_id"][1])["completion"].to_list() == ["10", "11", "12"]
    assert set(df["round"]) == {4}


def test_select_problems_draws_afresh_each_round(problems):
    a = select_problems(problems, 5, seed=0, round_=1)
    assert a.equals(select_problems(problems, 5, seed=0, round_=1))
    assert not a.equals(select_problems(problems, 5, seed=0, round_=2))
    assert select_problems(problems, 0, seed=0, round_=1).equals(problems)


def test_derive_seed_is_stable():
    assert derive_seed(0, 1, 2) == derive_seed(0, 1, 2) != derive_seed(0, 1, 3)
