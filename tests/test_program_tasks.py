"""Absolute Zero's three task types: deduction, abduction and induction problems built from a
proposal, the verifiers that run what the solver wrote, and the routing of each problem to its own.

Run: `pytest tests/test_program_tasks.py`
"""

import json

import polars as pl
import pytest

from sharpen.params import ParamsError
from sharpen.config import load_params
from sharpen.verifiers import verify_frame
from sharpen.verifiers.programs import program_input, program_io
from stages.propose import validate

DOUBLE = json.dumps({"program": "def f(x):\n    return x * 2\n", "entry_point": "f", "output": "8"})
SQUARE_CASES = json.dumps({"entry_point": "f", "cases": [{"input": f"({x},)", "output": str(x * x + 1)} for x in (2, 3, 5, 7)]})


def test_abduction_passes_any_input_the_program_maps_to_the_output():
    results = program_input(["f(4)", "The input:\n`f(4)`", "f(5)", "4", "f(2 + 2)"], [DOUBLE] * 5)
    assert [r.correct for r in results] == [True, True, False, False, False]
    assert [r.reason for r in results] == ["ok", "ok", "wrong", "unparseable", "unparseable"]


def test_abduction_compares_the_value_type_strictly():
    identity = json.dumps({"program": "def f(x):\n    return x\n", "entry_point": "f", "output": "1"})
    assert [r.correct for r in program_input(["f(1)", "f(True)", "f(1.0)"], [identity] * 3)] == [True, False, False]


def test_abductions_answer_is_read_as_data_never_run(tmp_path):
    marker = tmp_path / "ran"
    results = program_input([f"f(__import__('os').system('touch {marker}'))", "f(*[4])"], [DOUBLE] * 2)
    assert [r.reason for r in results] == ["unparseable", "unparseable"] and not marker.exists()


def test_induction_passes_a_program_that_gives_every_case():
    good = "```python\ndef f(x):\n    return x * x + 1\n```"
    assert [r.correct for r in program_io([good, "def f(x):\n    return x * x + 1\n"], [SQUARE_CASES] * 2)] == [True, True]


@pytest.mark.parametrize("program", [
    "def f(x):\n    return {2: 5, 3: 10}[x]",  # a lookup table of the shown half: the hidden cases fail it
    "class A:\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return A()",  # equal to anything
    "def f(x):\n    print(x * x + 1)",  # prints the outputs instead of returning them
    "import sys\ndef f(x):\n    sys.exit(0)",  # exits early
    "def f(x):\n    return float(x * x + 1)",  # the right number, the wrong type
])
def test_induction_refuses_what_only_looks_right(program):
    [result] = program_io([program], [SQUARE_CASES])
    assert not result.correct and result.reward == 0.0


def _samples(rows):
    return pl.DataFrame({"round": [1] * len(rows), "problem_id": [p for p, _ in rows], "sample_idx": list(range(len(rows))),
                         "prompt": ["?"] * len(rows), "completion": [c for _, c in rows]})


def test_each_problem_is_scored_by_the_verifier_it_names():
    problems = pl.DataFrame({"problem_id": ["ded", "abd", "ind"], "prompt": ["?"] * 3,
                             "answer": ["17", DOUBLE, SQUARE_CASES], "category": ["d", "a", "i"],
                             "verifier": [None, "program_input", "program_io"]})
    samples = _samples([("ded", "|17"), ("ded", "|16"), ("abd", "f(4)"), ("abd", "f(17)"),
                        ("ind", "def f(x):\n    return x * x + 1"), ("ind", "def f(x):\n    return 17")])
    verdicts = verify_frame(samples, problems, "exact_integer")
    assert verdicts["correct"].to_list() == [True, False, True, False, True, False]
    assert verdicts["verifier"].to_list() == ["program_input"] * 2 + ["exact_integer"] * 2 + ["program_io"] * 2


def test_a_problem_naming_an_unknown_verifier_is_refused():
    from sharpen.io import ArtifactError

    problems = pl.DataFrame({"problem_id": ["x"], "prompt": ["?"], "answer": ["1"], "category": ["c"], "verifier": ["yes"]})
    with pytest.raises(ArtifactError, match="names an unknown verifier 'yes'"):
        verify_frame(_samples([("x", "|1")]), problems, "exact_integer")


def _proposals(texts_per_slot: list[str], tasks):
    texts = [t for t in texts_per_slot for _ in range(2)]
    samples = pl.DataFrame({
        "round": [1] * len(texts), "problem_id": [f"slot-{i // 2:04d}" for i in range(len(texts))],
        "sample_idx": [i % 2 for i in range(len(texts))], "prompt": ["?"] * len(texts), "completion": texts,
        "temperature": [1.0] * len(texts), "token_ids": [[1]] * len(texts), "logprobs": [[-0.5]] * len(texts),
    })
    params = load_params().propose.model_copy(update={"kind": "absolute-zero", "program": "function", "tasks": tasks})
    return validate(samples, params, set())


PROGRAM = "def f(x):\n    return x * x + 1\nf(2)\nf(3)\nf(5)"


def test_one_proposal_poses_the_task_type_of_its_slot():
    _, problems = _proposals([PROGRAM] * 3, ("deduction", "abduction", "induction"))
    by_type = {row["category"]: row for row in problems.iter_rows(named=True)}
    assert by_type["deduction"]["answer"] == "5" and by_type["deduction"]["verifier"] is None
    assert "`f(2)`" in by_type["deduction"]["prompt"]
    assert json.loads(by_type["abduction"]["answer"])["output"] == "5" and by_type["abduction"]["verifier"] == "program_input"
    assert "returns 5" in by_type["abduction"]["prompt"] and "f(2)" not in by_type["abduction"]["prompt"]
    cases = json.loads(by_type["induction"]["answer"])["cases"]
    assert [c["output"] for c in cases] == ["5", "10", "26"] and by_type["induction"]["verifier"] == "program_io"
    assert "f(2) == 5" in by_type["induction"]["prompt"] and "f(3) == 10" in by_type["induction"]["prompt"]
    assert "26" not in by_type["induction"]["prompt"] and "return" not in by_type["induction"]["prompt"]


def test_the_tasks_a_proposal_poses_score_the_solver_by_running_its_answer():
    _, problems = _proposals([PROGRAM] * 3, ("deduction", "abduction", "induction"))
    ids = dict(zip(problems["category"], problems["problem_id"]))
    samples = _samples([(ids["deduction"], "|5"), (ids["abduction"], "f(-2)"), (ids["abduction"], "f(5)"),
                        (ids["induction"], "```python\ndef f(x):\n    return x ** 2 + 1\n```"),
                        (ids["induction"], "def f(x):\n    return {2: 5, 3: 10}[x]")])
    verdicts = verify_frame(samples, problems, "exact_integer").sort("sample_idx")
    assert verdicts["correct"].to_list() == [True, True, False, True, False]


def test_induction_needs_two_calls():
    proposals, problems = _proposals(["def f(x):\n    return x + 1\nf(2)"], ("induction",))
    assert proposals["reason"].unique().to_list() == ["too_few_calls"] and problems.height == 0


def test_calls_of_two_functions_are_no_program():
    proposals, _ = _proposals(["def f(x):\n    return x\ndef g(x):\n    return x\nf(1)\ng(2)"], ("deduction",))
    assert proposals["question"].to_list()[0] is not None and proposals["reason"].to_list()[0] == "unparsable"


@pytest.mark.parametrize("propose, key", [
    ({"kind": "absolute-zero", "program": "expression", "tasks": ["deduction", "abduction"]}, "propose.tasks"),
    ({"kind": "absolute-zero", "program": "function", "tasks": ["abduction"], "abduction_question": "{program} {entry_point}"},
     "propose.abduction_question: must hold {output}"),
    ({"kind": "absolute-zero", "program": "function", "tasks": ["induction", "induction"]}, "propose.tasks"),
])
def test_bad_task_types_name_the_key(tmp_path, propose, key):
    import yaml

    raw = yaml.safe_load(open("params.yaml"))
    raw["recipe"] = "absolute-zero"
    raw["propose"] = propose
    if propose["program"] == "expression":
        raw.setdefault("task", {})["template"] = "{prompt}"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=key.replace("{", r"\{").replace("}", r"\}")):
        load_params(tmp_path / "params.yaml")
