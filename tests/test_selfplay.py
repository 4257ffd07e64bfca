"""Self-play's defining behaviour, stage by stage, without a pipeline: the proposer's rewards,
the repetition penalty, validation by execution, and the params that must fail clearly.

Run: `pytest tests/test_selfplay.py`
"""

import polars as pl
import pytest

from sharpen.params import ParamsError
from sharpen.config import load_params
from sharpen.selfplay.execution import execute
from sharpen.selfplay.proposals import question_of, repetition_penalty
from sharpen.selfplay.rewards import INVALID, challenger_reward, proposer_reward
from stages.propose import validate
from stages.train_proposer import score


def test_challenger_reward_follows_p_hat_and_peaks_at_one_half():
    grid = [i / 10 for i in range(11)]
    rewards = [challenger_reward(p, 0.0) for p in grid]
    assert max(rewards) == challenger_reward(0.5, 0.0) == 0.5
    assert rewards[:6] == sorted(rewards[:6]) and rewards[5:] == sorted(rewards[5:], reverse=True)
    assert challenger_reward(1.0, 0.0) == 0.0  # the solver always agrees with itself: nothing to learn


def test_repeated_questions_are_penalised():
    batch = ["12+34", "12+34", "12+34", "70+8"]
    clusters, penalties = repetition_penalty(batch, threshold=0.5)
    assert clusters[0] == clusters[1] == clusters[2] != clusters[3]
    assert penalties[0] == 0.75 and penalties[3] == 0.25
    assert challenger_reward(0.5, penalties[0]) < challenger_reward(0.5, penalties[3])


def test_near_duplicates_share_a_cluster_and_different_questions_do_not():
    clusters, _ = repetition_penalty(["what is 12 plus 34", "what is 12 plus 35", "name a prime below 9"], 0.5)
    assert clusters[0] == clusters[1] != clusters[2]


def test_an_unparsable_proposal_earns_minus_one():
    assert question_of("12+", "r-zero") is None and question_of("hello", "r-zero") is None
    assert challenger_reward(None, 0.0) == proposer_reward(None) == INVALID == -1.0


def test_absolute_zero_rewards_tasks_the_solver_sometimes_solves():
    assert proposer_reward(0.0) == proposer_reward(1.0) == 0.0
    assert proposer_reward(0.25) == 0.75 and proposer_reward(0.75) == 0.25


def _proposals(texts: list[str], kind: str, held_out=frozenset(), program="expression"):
    samples = pl.DataFrame({
        "round": [1] * len(texts), "problem_id": [f"slot-{i // 4:04d}" for i in range(len(texts))],
        "sample_idx": [i % 4 for i in range(len(texts))], "prompt": ["?"] * len(texts), "completion": texts,
        "temperature": [1.0] * len(texts), "token_ids": [[1]] * len(texts), "logprobs": [[-0.5]] * len(texts),
    })
    params = load_params().propose.model_copy(update={"kind": kind, "program": program})
    return validate(samples, params, set(held_out))


def test_a_function_programs_gold_is_its_call_run_in_the_sandbox():
    text = "Here is one:\n```python\ndef f(x, ys):\n    return x * len(ys) + {'a': 3}['a']\nf(7, [1, 2])\n```\nIt returns 17."
    proposals, problems = _proposals([text], "absolute-zero", program="function")
    assert problems["answer"].to_list() == ["17"] and proposals["reason"].to_list() == ["ok"]
    prompt = problems["prompt"][0]
    assert "def f(x, ys):" in prompt and "`f(7, [1, 2])`" in prompt and "17" not in prompt


FUNCTION_REJECTS = {
    "def f(x):\n    import os\n    return len(os.listdir('/'))\nf(1)": "forbidden",
    "def f(x):\n    return open('/etc/hostname').read()\nf(1)": "forbidden",
    "def f(x):\n    return x.__class__.__mro__\nf(1)": "forbidden",
    "def f(x):\n    while True:\n        x += 1\nf(1)": "timeout",
    "def f(x):\n    return id(object()) + x\nf(1)": "nondeterministic",
    "def f(x):\n    return 1 // x\nf(0)": "error",
    "def f(x):\n    return 10 ** x\nf(99)": "output_too_long",
    "def f(x):\n    return [x]\nf(1)": "not_an_answer",
    "def f(x):\n    return x\nf(y)": "unparsable",  # the call's arguments must be literals
    "def f():\n    return x\nx = 5\nf()": "unparsable",  # only definitions run before the call
    "def f(x):\n    print(x)\n    return x\nf(1)": "forbidden",  # output is returned, never printed
    "def f(x):\n    return x\ng(1)": "unparsable",  # the call names a defined function
    "no program here": "unparsable",
}


def test_a_printed_call_states_the_call():
    proposals, problems = _proposals(["def f(x):\n    return x + 1\n\nprint(f(4))\n# prints 5"], "absolute-zero",
                                     program="function")
    assert proposals["question"].to_list() == ["def f(x):\n    return x + 1\nf(4)"] and problems["answer"].to_list() == ["5"]


def test_invalid_function_programs_never_become_tasks():
    proposals, problems = _proposals([*FUNCTION_REJECTS, "def g(n):\n    return sum(range(n))\ng(5)"], "absolute-zero",
                                     program="function")
    assert problems["answer"].to_list() == ["10"]
    assert proposals["reason"].to_list()[:-1] == list(FUNCTION_REJECTS.values())


def test_absolute_zeros_gold_comes_from_the_sandbox():
    proposals, problems = _proposals(["6*7", "2**10", "99-1", "10//3"], "absolute-zero")
    assert dict(zip(problems["problem_id"], problems["answer"])) == {"6*7": "42", "2**10": "1024", "99-1": "98",
                                                                     "10//3": "3"}


def test_invalid_programs_never_become_tasks():
    bad = {"__import__('os').listdir('/')": "forbidden", "open('/etc/passwd').read()": "forbidden",
           "1/0": "error", "9**9**9": "timeout", "hash('x')%1000": "nondeterministic", "10**99": "output_too_long",
           "'text'": "not_an_answer", "2+": "unparsable", "id(object())": "nondeterministic"}
    proposals, problems = _proposals([*bad, "3+4"], "absolute-zero")
    assert problems["problem_id"].to_list() == ["3+4"]
    got = dict(zip(proposals["question"].fill_null("2+"), proposals["reason"]))
    assert {q: got[q] for q in bad} == bad


def test_a_held_out_question_is_refused():
    proposals, problems = _proposals(["12+34", "5+6"], "r-zero", held_out={"12+34"})
    assert problems["problem_id"].to_list() == ["5+6"] and proposals["reason"].to_list() == ["held_out", "ok"]


def test_r_zero_rewards_never_read_the_truth():
    proposals, _ = _proposals(["12+34", "12+34", "5+6", "oops"], "r-zero")
    verdicts = pl.DataFrame({"problem_id": ["12+34"] * 4 + ["5+6"] * 4, "majority_ratio": [0.5] * 4 + [1.0] * 4,
                             "correct": [True, True, False, False] + [True] * 4})
    right = score(proposals, verdicts, "r-zero")
    wrong = score(proposals.with_columns(answer=pl.lit("0")), verdicts, "r-zero")
    assert right["reward"].to_list() == wrong["reward"].to_list()
    assert right["reward"].to_list() == [0.0, 0.0, 0.0, -1.0]  # 12+34 twice: p̂ 0.5 minus half the batch


@pytest.mark.parametrize("override, key", [
    ({"filter": {"groups": [{"rule": "group_band", "lo": 0.8, "hi": 0.3}]}}, "lo (0.8) must be below hi"),
    ({"filter": {"groups": [{"rule": "group_band", "lo": 0.5, "hi": 0.5}]}}, "lo (0.5) must be below hi"),
    ({"generate": {"k": 1}}, "generate.k"),
    ({"verify": {"labels": "gold"}}, "verify.labels"),
    ({"propose": {"group": 1}}, "propose.group"),
    ({"propose": {"program": "function"}}, "propose.program"),
    ({"propose": {"repetition_weight": 1.5}}, "propose.repetition_weight"),
])
def test_bad_self_play_params_name_the_key(tmp_path, override, key):
    import yaml

    raw = yaml.safe_load(open("params.yaml"))
    raw["recipe"] = "r-zero"
    for section, value in override.items():
        raw[section] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=key.replace("(", r"\(").replace(")", r"\)")):
        load_params(tmp_path / "params.yaml")


def test_a_missing_proposer_policy_names_the_key(tmp_path):
    from sharpen.io import ArtifactError, write_json
    from sharpen.rounds.state import current_policy_dir

    write_json({"policy": "base", "proposer": "proposer", "proposer_round": 1}, tmp_path / "state.json")
    with pytest.raises(ArtifactError, match=r"`proposer: proposer`"):
        current_policy_dir(tmp_path, tmp_path / "base", role="proposer")


def test_a_prompt_with_examples_shows_tasks_from_the_buffer():
    from stages.propose import proposer_prompts

    p = load_params().propose.model_copy(update={"prompt": "Examples:\n{examples}\nA new one:", "prompts": 4,
                                                 "examples": 2})
    buffer = ["1+2", "30+4", "5*6", "7-1"]
    prompts = proposer_prompts(p, buffer, seed=0, round_=2)
    for prompt in prompts:
        shown = prompt.removeprefix("Examples:\n").removesuffix("\nA new one:").split("\n")
        assert len(shown) == 2 and set(shown) <= set(buffer)
    assert prompts == proposer_prompts(p, buffer, seed=0, round_=2)  # seeded
    assert proposer_prompts(p.model_copy(update={"prompt": "?"}), buffer, 0, 2) == ["?"] * 4


def test_absolute_zero_repetition_weight_pushes_a_repeated_program_below_a_new_one():
    from sharpen.selfplay.rewards import reward

    # the paper's reward (weight null: 0) is flat where the solver never solves: collapse goes unseen
    assert reward("absolute-zero", 0.0, 0.9) == reward("absolute-zero", 0.0, 0.1) == 0.0
    repeated, new = reward("absolute-zero", 0.0, 0.9, 0.5), reward("absolute-zero", 0.0, 0.1, 0.5)
    assert INVALID < repeated < new < 0.0
    assert reward("absolute-zero", 0.5, 0.2, 0.5) == pytest.approx(0.4)
    assert reward("r-zero", 0.5, 0.2) == challenger_reward(0.5, 0.2)  # r-zero's paper weight is 1


def test_score_applies_the_repetition_weight():
    program = "def f(x):\n    return x + 1\nf(2)"
    proposals, _ = _proposals([program] * 3 + ["def g(y):\n    return y * 5\ng(3)"], "absolute-zero", program="function")
    verdicts = pl.DataFrame({"problem_id": proposals["problem_id"].unique().to_list(), "majority_ratio": 1.0,
                             "correct": False})
    paper = score(proposals, verdicts, "absolute-zero")
    weighted = score(proposals, verdicts, "absolute-zero", 1.0)
    assert paper["reward"].to_list() == [0.0] * 4
    assert weighted["reward"].to_list() == [-0.75] * 3 + [-0.25]


def test_seed_examples_fill_the_prompt_before_the_buffer_has_any():
    from stages.propose import proposer_prompts, seed_questions

    seeds = ("def f(x):\n    return x * 2\nf(1)\nf(5)", "```python\ndef g(n):\n    return n % 7 + n // 7\ng(20)\ng(33)\n```")
    p = load_params().propose.model_copy(update={
        "kind": "absolute-zero", "program": "function", "tasks": ("deduction", "induction"), "seed_examples": seeds,
        "prompt": "Examples:\n\n{examples}\n\nA new one:", "prompts": 3, "examples": 2})
    questions = seed_questions(p)
    assert questions == [question_of(s, "absolute-zero", "function") for s in seeds]
    for prompt in proposer_prompts(p, questions + [], seed=0, round_=1):
        assert all(q in prompt for q in questions)


@pytest.mark.parametrize("seed, reason", [
    ("just prose", "unparsable"),
    ("def f(x):\n    while True:\n        pass\nf(1)", "timeout"),
    ("def f(x):\n    return x\nf(1)", "too_few_calls"),  # induction needs two calls to check a program
])
def test_a_seed_example_that_would_be_rejected_names_its_index(seed, reason):
    from stages.propose import seed_questions

    p = load_params().propose.model_copy(update={
        "kind": "absolute-zero", "program": "function", "tasks": ("induction",), "timeout_s": 1.0,
        "seed_examples": ("def f(x):\n    return x\nf(1)\nf(2)", seed)})
    with pytest.raises(ParamsError, match=rf"propose.seed_examples\[1\]: {reason}"):
        seed_questions(p)


@pytest.mark.parametrize("line, call", [
    ("f(4)", "f(4)"), ("print(f(4))", "f(4)"), ("f(4)  # Output: 11", "f(4)"), ("print(f(-2, [1]))  # -> 0", "f(-2, [1])"),
    ("    f(4)", None), ("x = f(4)", None), ("f(4) + 1", None), ("obj.f(4)", None), ("Here f(4) returns 11", None),
])
def test_a_call_line_is_read_by_pythons_parser(line, call):
    from sharpen.selfplay.proposals import call_line

    assert call_line(line) == call


def test_comments_after_the_calls_do_not_make_a_program_unparsable():
    text = "def f(n):\n    return n * 2  # double\nprint(f(3))  # Output: 6\nf(5)  # 10\n"
    assert question_of(text, "absolute-zero", "function") == "def f(n):\n    return n * 2\nf(3)\nf(5)"


@pytest.mark.parametrize("text, question", [
    ("12+34", "12+34"), ("Reasoning: 27 + 89 = ", "27+89"), ("Sure!\n\n58+6 is one.", "58+6"),
    ("12+", None), ("1+2+3", None), ("3.5+2", None), ("-3+4", None), ("12+34x", None), ("two digits: 52.", None),
])
def test_an_r_zero_question_is_the_first_addition_on_a_line(text, question):
    assert question_of(text, "r-zero") == question
