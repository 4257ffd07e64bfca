"""Evaluate a policy on the held-out set: greedy accuracy, pass@k and maj@k, per category.

Headline metrics go to metrics.json (`dvc metrics`), with `greedy_lenient_accuracy` and
`greedy_form_hack_share`: what a form-blind reward would have paid for restated or unevaluated
answers (sharpen.metrics.form_monitors). The per-category breakdown goes to categories.csv
(`dvc plots`), every verified sample to samples.parquet.
`--baseline` evaluates the base model as round 0, so every round has a baseline. Sampling uses
the same seed every round, so rounds differ only by their policy. `evaluate.shard_size` splits the
held-out set into shards with seeds of their own; `evaluate.ray.address` sends them to a Ray
cluster's actors (sharpen/backends/fanout.py), which give the samples this process would.

Nothing drawn is lost to a later failure: before any model is loaded, a few gold answers are
scored through the verifier exactly as the samples will be (`sharpen.verifiers.preflight`), and
each finished shard's completions are kept, unverified, in `<out>/.partial/<fingerprint>/` (the
fingerprint hashes what determines the draws: the policy, the problems, the sampling params, the
round and the seed). Verification runs once every shard is in, with the verify stage's own
function (`verify_frame`), so a rerun after a killed run or a failed verification samples only
the missing shards, or nothing, and shards drawn from other inputs are deleted, never reused.

Run: `python -m stages.evaluate --model data/round/train/model --problems data/tasks/eval.parquet \
        --out data/round/evaluate`
"""

import argparse
import shutil
from functools import partial
from pathlib import Path

import polars as pl

from sharpen import faults
from sharpen.io import ArtifactError, hash_json, hash_path, read_frame, write_csv, write_frame, write_json
from sharpen.metrics import agreement_monitors, by_category, chance_baselines, form_monitors, per_problem, summarize
from sharpen.config import load_params
from sharpen.sampling import derive_seed, eval_draws, eval_requests, eval_shard_size, verified_eval_frame
from sharpen.schemas import EvalDraw, EvalSample, Problem
from sharpen.shards import draw, finished, shard_path
from sharpen.stage import Timer, progress, run_stage, shard_dir
from sharpen.verifiers import lookup, preflight, vote_keys


MONITORS = ("self_consistency", "answer_entropy", "greedy_distinct_share")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--problems", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--baseline", action="store_true", help="evaluate as round 0 (the base model)")
    args = parser.parse_args()
    params = load_params()
    e = params.evaluate
    round_ = 0 if args.baseline else params.round
    timer = Timer()
    problems = read_frame(args.problems, Problem)
    requests = eval_requests(problems["prompt"].to_list(), shard_size=e.shard_size, k=e.k, temperature=e.temperature,
                             top_p=e.top_p, max_new_tokens=e.max_new_tokens, seed=derive_seed(params.seed, "evaluate"))
    if not requests:
        raise ArtifactError(f"{args.problems}: no held-out problems to evaluate")
    v = params.verify
    preflight(problems, v.verifier, v.answer_form)  # a verifier that cannot score these problems fails before sampling
    fingerprint = hash_json(
        {"policy": hash_path(args.model), "problems": problems["problem_id"].to_list(), "prompts": problems["prompt"].to_list(),
         "evaluate": e.model_dump(exclude={"ray", "server"}), "chat": params.task.chat, "round": round_, "seed": params.seed}
    )[:16]
    shards_at = shard_dir(args.out, fingerprint)
    size, shards = eval_shard_size(problems.height, e.shard_size), len(requests) // 2
    done = finished(shards_at, shards)
    if done:
        print(f"evaluate: resuming, {len(done)}/{shards} shards already drawn ({fingerprint})")
    todo = [r for r in requests if r[0][0] not in done]
    bar = progress(sum(len(prompts) * sampling["n"] for _, prompts, sampling in todo), f"evaluate: round {round_}", "sample")
    backend_kwargs = {"batch_size": e.batch_size, "chat": params.task.chat, "tensor_parallel_size": e.tensor_parallel_size,
                      "autocast": e.autocast, "server": e.server}
    nodes: set[str] = set()
    pending: dict[int, dict] = {}
    for key, node, completions in draw(todo, stage="evaluate", backend=e.backend, policy=args.model,
                                       backend_kwargs=backend_kwargs, ray=e.ray, bar=bar):
        if node != "local":
            nodes.add(node)
        i = key[0]  # a shard is written once its greedy and sampled calls are both back
        pending.setdefault(i, {})[key] = completions
        if len(pending[i]) == 2:
            rows = eval_draws(problems.slice(i * size, size), pending.pop(i), round_=round_)
            write_frame(rows, shard_path(shards_at, i), EvalDraw)
            faults.point("shard")
    bar.close()
    draws = pl.concat([read_frame(shard_path(shards_at, i), EvalDraw) for i in range(shards)])
    faults.point("drawn")  # every shard drawn, none verified yet
    samples = verified_eval_frame(draws, problems, v.verifier, v.answer_form)
    write_frame(samples, args.out / "samples.parquet", EvalSample)

    table = per_problem(samples, e.pass_k, vote=partial(vote_keys, params.verify.verifier))
    summary = summarize(table, e.pass_k, e.k)
    summary |= form_monitors(samples, lookup(params.verify.verifier).lenient, problems.select("problem_id", "answer"))
    summary |= chance_baselines(problems["answer"].to_list(), e.pass_k)
    summary |= agreement_monitors(samples, vote=partial(vote_keys, params.verify.verifier))  # no gold read
    categories = by_category(table, e.pass_k, e.k).with_columns(pl.lit(round_).alias("round"))
    write_csv(categories, args.out / "categories.csv")
    write_json({"round": round_, **summary, **({"ray_nodes": len(nodes)} if nodes else {}), "wall_s": timer.seconds}, args.out / "metrics.json")
    shutil.rmtree(args.out / ".partial")
    print(f"evaluate: round {round_} on {summary['problems']} held-out problems")
    print("  " + "  ".join(f"{k} {v:.3f}" for k, v in summary.items() if k != "problems" and "form" not in k
                           and not k.startswith("chance") and k not in MONITORS))
    print("  chance (no reading): " + "  ".join(f"{k.removeprefix('chance_')} {v:.3f}" for k, v in summary.items()
                                                if k.startswith("chance")))
    if summary["greedy_form_rejected"]:
        print(f"  {summary['greedy_form_rejected']:.1%} of greedy answers are not final answers (restated, unevaluated or several); "
              f"a form-blind reward would score {summary['greedy_lenient_accuracy']:.1%}")
    print("  greedy by category: " + "  ".join(f"{r['category']} {r['greedy_accuracy']:.2f}" for r in categories.iter_rows(named=True)))
    if not args.baseline:
        print(f"round {round_} is done. Next: `sharpen advance` gates, promotes, commits and tags it (DVC's "
              "`git add` hint can be ignored: advance commits), then `dvc repro` runs the next round; "
              "`sharpen rounds` compares them.")


if __name__ == "__main__":
    run_stage(main)
