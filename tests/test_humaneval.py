"""HumanEval through the `unit_tests` verifier and the sandbox: the canonical solutions pass,
wrong ones fail, and the splits are disjoint.

Run: `pytest tests/test_humaneval.py`
"""

import os

import polars as pl
import pytest

from sharpen import sandbox
from sharpen.tasks import humaneval
from sharpen.tasks.files import ProblemFileError
from sharpen.verifiers import verify_frame
from tests.conftest import samples_for


@pytest.fixture(scope="module")
def problems():
    return humaneval.load_problems()



MODES = (["bwrap"] if sandbox.isolation() == "bwrap" else []) + ["rlimits"] + (["rlimits-no-namespaces"] if os.geteuid() == 0 else [])


@pytest.mark.parametrize("mode", MODES)
def test_all_canonical_solutions_pass(problems, mode, monkeypatch):
    """In every isolation mode: honest programs get the same verdict wherever they run."""
    monkeypatch.setattr(sandbox, "isolation", lambda: mode.split("-")[0])
    monkeypatch.setattr(sandbox, "NAMESPACES", mode != "rlimits-no-namespaces")
    if mode != "bwrap" and os.geteuid() == 0 and sandbox._unprivileged_python() is None:
        pytest.skip("rlimits mode refuses to run as root here (no Python an unprivileged uid can reach)")
    verdicts = verify_frame(samples_for(problems, problems["answer"]), problems, "unit_tests")
    assert problems.height == 164
    failed = verdicts.filter(~pl.col("correct"))
    assert failed.is_empty(), failed.select("problem_id", "extracted").head(5)


def test_an_empty_body_fails_everywhere(problems):
    verdicts = verify_frame(samples_for(problems, ["    pass\n"] * problems.height), problems, "unit_tests")
    assert not verdicts["correct"].any()


def test_another_problems_solution_fails(problems):
    shifted = problems["answer"].shift(1, fill_value=problems["answer"][-1])
    verdicts = verify_frame(samples_for(problems, shifted), problems, "unit_tests")
    assert verdicts["correct"].sum() == 0


def test_splits_are_disjoint_and_cover_the_set():
    pool, held_out = humaneval.make_splits(eval_size=40, seed=3)
    assert (pool.height, held_out.height) == (124, 40)
    assert not set(pool["problem_id"]) & set(held_out["problem_id"])


def test_eval_size_leaving_no_pool_is_refused():
    with pytest.raises(ProblemFileError, match="task.eval_size"):
        humaneval.make_splits(eval_size=500, seed=0)


def test_every_return_none_variant_fails(problems):
    verdicts = verify_frame(samples_for(problems, ["    return None\n"] * problems.height), problems, "unit_tests")
    assert not verdicts["correct"].any()


def test_an_always_equal_object_fails_everywhere(problems):
    """Before tests ran in their own process, this passed 157 of the 164 problems."""
    hack = "    class E:\n        def __eq__(self, other): return True\n        def __ne__(self, other): return False\n    return E()\n"
    verdicts = verify_frame(samples_for(problems, [hack] * problems.height), problems, "unit_tests")
    assert not verdicts["correct"].any()
