"""Sample k completions per problem from the current policy, in resumable shards.

Shards are written to `<out>/.partial/<fingerprint>/`, where the fingerprint hashes everything
that determines the samples (policy, problems, sampling params, round, seed). A killed run
resumes at its last finished shard; shards made from other inputs are deleted, never reused.
Each shard has its own seed, so a resumed run writes the same samples as an uninterrupted one,
and shards fanned out over a Ray cluster (`generate.ray.address`, sharpen/backends/fanout.py)
the same samples as one process; where the samples are made (`ray`, `server`) is not part of the
fingerprint.

The round's problems (the pool plus problems earlier rounds synthesized, or a draw from them)
go to problems.parquet, which the later stages read. With a controller, b-star's chosen sampling
temperature is used, or sec's category probabilities choose the round's problems. In self-play
(`propose.kind`), the round's problems are the ones the proposer wrote (`--proposed`).

Run: `python -m stages.generate --problems data/tasks/pool.parquet --state data/state \
        --base data/base/model --controller data/round/controller/metrics.json \
        --proposed data/round/propose/problems.parquet --out data/round/generate`
"""

import argparse
import shutil
from pathlib import Path

import polars as pl

from sharpen import faults
from sharpen.io import ArtifactError, hash_json, hash_path, read_frame, read_json, write_frame, write_json
from sharpen.curriculum import draw_by_category
from sharpen.sampling import derive_seed, sample_frame, select_problems
from sharpen.config import load_params
from sharpen.schemas import Problem, Sample
from sharpen.shards import draw, finished, shard_path
from sharpen.stage import Timer, progress, run_stage, shard_dir
from sharpen.rounds.state import check_loop_identity, check_policy_hash, current_policy_dir, round_pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--problems", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--controller", type=Path, required=True)
    parser.add_argument("--proposed", type=Path, required=True, help="self-play: the proposer's problems (propose stage)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    g = params.generate
    control = read_json(args.controller)
    if control.get("kind", "none") != params.controller.kind or control.get("round") != params.round:
        raise ArtifactError(f"{args.controller}: written for another round or controller; run `dvc repro`")
    if control["kind"] == "bstar":
        g = g.model_copy(update={"temperature": control["temperature"]})
        print(f"generate: temperature {g.temperature} (chosen by the b-star controller)")
    timer = Timer()
    policy = current_policy_dir(args.state, args.base)
    policy_hash = hash_path(policy)
    check_policy_hash(policy_hash, args.state)
    check_loop_identity(params, args.state)
    pool = round_pool(read_frame(args.problems, Problem), args.state)
    if params.propose.kind != "none":
        problems = read_frame(args.proposed, Problem)
        if not problems.height:
            raise ArtifactError(f"{args.proposed}: the proposer wrote no valid problem this round (why, per proposal: "
                             "`reasons` in data/round/propose/metrics.json); raise propose.prompts or check the proposer")
        print(f"generate: {problems.height} problems written by the proposer ({params.propose.kind})")
    elif control["kind"] == "sec":
        problems = draw_by_category(pool, control["probabilities"], g.problems_per_round,
                                    derive_seed(params.seed, params.round, "sec"))
        print(f"generate: {problems.height} problems drawn by the sec curriculum")
    else:
        problems = select_problems(pool, g.problems_per_round, params.seed, params.round)
    fingerprint = hash_json(
        {"policy": policy_hash, "problems": problems["problem_id"].to_list(), "prompts": problems["prompt"].to_list(),
         "generate": g.model_dump(exclude={"ray", "server"}), "round": params.round, "seed": params.seed}
    )[:16]
    shards_at = shard_dir(args.out, fingerprint)

    starts = list(range(0, problems.height, g.shard_size))
    todo = sorted(set(range(len(starts))) - finished(shards_at, len(starts)))
    if len(todo) < len(starts):
        print(f"generate: resuming, {len(starts) - len(todo)}/{len(starts)} shards already done ({fingerprint})")
    bar = progress(sum(min(g.shard_size, problems.height - starts[i]) for i in todo) * g.k,
                   f"generate: round {params.round}", "sample")
    sampling = {"n": g.k, "temperature": g.temperature, "top_p": g.top_p, "max_new_tokens": g.max_new_tokens,
                "logprobs": g.logprobs}
    requests = [(i, problems.slice(starts[i], g.shard_size)["prompt"].to_list(),
                 {**sampling, "seed": derive_seed(params.seed, params.round, i)}) for i in todo]
    backend_kwargs = {"batch_size": g.batch_size, "chat": params.task.chat, "tensor_parallel_size": g.tensor_parallel_size,
                      "autocast": g.autocast, "logprobs": g.logprobs, "server": g.server}
    nodes: set[str] = set()
    for i, node, completions in draw(requests, stage="generate", backend=g.backend, policy=policy,
                                     backend_kwargs=backend_kwargs, ray=g.ray, bar=bar):
        shard = problems.slice(starts[i], g.shard_size)
        rows = sample_frame(shard, completions, round_=params.round, policy_hash=policy_hash, temperature=g.temperature)
        write_frame(rows, shard_path(shards_at, i), Sample)
        nodes.add(node)
        faults.point("shard")
    bar.close()

    samples = pl.concat([read_frame(shard_path(shards_at, i), Sample) for i in range(len(starts))])
    write_frame(problems, args.out / "problems.parquet", Problem)
    write_frame(samples.sort("problem_id", "sample_idx"), args.out / "samples.parquet", Sample)
    generated_s = timer.seconds
    write_json(
        {
            "round": params.round,
            "problems": problems.height,
            "samples": samples.height,
            "temperature": g.temperature,
            "tokens": int(samples["num_tokens"].sum()),
            "truncated": int((samples["finish_reason"] == "length").sum()),
            "distinct_completions_per_problem": samples.group_by("problem_id").agg(pl.col("completion").n_unique())["completion"].mean(),
            "samples_per_s": round(samples.height / max(generated_s, 1e-9), 1),
            "policy_hash": policy_hash,
            "fingerprint": fingerprint,
            "ray_nodes": len(nodes - {"local"}),  # generate.ray: the Ray nodes that made this run's shards
            "wall_s": generated_s,
        },
        args.out / "metrics.json",
    )
    shutil.rmtree(args.out / ".partial")
    print(f"generate: {samples.height} samples from {problems.height} problems in {generated_s:.0f}s")


if __name__ == "__main__":
    run_stage(main)
