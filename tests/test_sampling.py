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


def _requests(prompts, shard_size):
    from sharpen.sampling import eval_requests

    return eval_requests(prompts, shard_size=shard_size, k=3, temperature=1.0, top_p=0.9, max_new_tokens=5, seed=11)


def test_one_evaluation_shard_samples_the_whole_set_with_the_stage_seed():
    prompts = [f"{i}+1=" for i in range(7)]
    assert _requests(prompts, 0) == _requests(prompts, 7) == _requests(prompts, 100)
    assert [(key, p, s["seed"], s["n"]) for key, p, s in _requests(prompts, 0)] == [
        ((0, "greedy"), prompts, 11, 1), ((0, "sampled"), prompts, 11, 3)]


def test_evaluation_shards_cover_every_prompt_once_per_kind_with_their_own_seeds():
    prompts = [f"{i}+1=" for i in range(7)]
    requests = _requests(prompts, 3)
    for kind in ("greedy", "sampled"):
        assert [p for (_, k), chunk, _ in requests if k == kind for p in chunk] == prompts
    seeds = {i: s["seed"] for (i, kind), _, s in requests if kind == "sampled"}
    assert len(set(seeds.values())) == 3 and seeds[0] == 11


def test_an_evaluation_frame_joins_shards_in_problem_order(problems):
    from sharpen.sampling import eval_draws

    requests = _requests(problems["prompt"].to_list(), 5)
    made = {key: [[Completion(f"{p}|{key[1]}{j}", 1, "stop") for j in range(s["n"])] for p in chunk]
            for key, chunk, s in reversed(requests)}  # in any order, as Ray returns them
    df = eval_draws(problems, made, round_=2)
    first = df.filter(df["problem_id"] == problems["problem_id"][6]).sort("sample_idx")
    assert first["completion"].to_list() == [f"{problems['prompt'][6]}|greedy0"] + [
        f"{problems['prompt'][6]}|sampled{j}" for j in range(3)]
    assert df.height == problems.height * 4
