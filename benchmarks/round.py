"""The price of DVC, files, validation and lineage: one round via `dvc repro` vs the same work in-process.

Both run in one command on the same machine: a temporary workspace (a copy of this project)
builds the base model untimed, then
- `dvc repro`: generate → verify → filter → train → evaluate, one process per stage, Parquet
  between stages, pandera validation on every read and write, DVC hashing and lock files;
- in-process: the same functions with the same params, called one after another in this process,
  data passed in memory, no validation, no files but the trained model.

Run: `python benchmarks/round.py [--pool-size 1024]`
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from tests.workspace import make_workspace, run  # noqa: E402


def in_process(ws: Path) -> float:
    """The same round as `dvc repro` runs it: the same functions and params, data kept in memory."""
    from sharpen.backends.hf import HFBackend
    from sharpen.filters import decide, kept_examples
    from sharpen.metrics import per_problem, summarize
    from sharpen.config import load_params
    from sharpen.sampling import derive_seed, eval_draws, eval_requests, sample_frame, select_problems, verified_eval_frame
    from sharpen.objectives.sft import train_sft
    from sharpen.objectives.trainer import TrainerSettings
    from sharpen.verifiers import verify_frame

    start = time.perf_counter()
    p = load_params(ws / "params.yaml")
    g, e, t, f = p.generate, p.evaluate, p.train, p.filter
    pool = select_problems(pl.read_parquet(ws / "data/tasks/pool.parquet"), g.problems_per_round, p.seed, p.round)
    held_out = pl.read_parquet(ws / "data/tasks/eval.parquet")
    base = ws / "data/base/model"

    outs = HFBackend(base, batch_size=g.batch_size).generate(
        pool["prompt"].to_list(), n=g.k, temperature=g.temperature, top_p=g.top_p,
        max_new_tokens=g.max_new_tokens, seed=derive_seed(p.seed, p.round, 0))
    samples = sample_frame(pool, outs, round_=p.round, policy_hash="", temperature=g.temperature)
    verdicts = verify_frame(samples, pool, p.verify.verifier, answer_form=p.verify.answer_form)
    kept = kept_examples(samples, verdicts, decide(samples, verdicts, f))
    with tempfile.TemporaryDirectory() as tmp:
        settings = TrainerSettings(lr=t.lr, lr_scheduler=t.lr_scheduler, warmup_ratio=t.warmup_ratio, epochs=t.epochs,
                                   batch_size=t.batch_size, seed=t.seed)
        train_sft(kept, base, Path(tmp), settings, max_length=t.max_length)
        requests = eval_requests(held_out["prompt"].to_list(), shard_size=e.shard_size, k=e.k, temperature=e.temperature,
                                 top_p=e.top_p, max_new_tokens=e.max_new_tokens, seed=derive_seed(p.seed, "evaluate"))
        backend = HFBackend(tmp, batch_size=e.batch_size)
        made = {key: backend.generate(prompts, **sampling) for key, prompts, sampling in requests}
        ev = verified_eval_frame(eval_draws(held_out, made, round_=p.round), held_out, p.verify.verifier, p.verify.answer_form)
    summary = summarize(per_problem(ev, e.pass_k), e.pass_k, e.k)
    seconds = time.perf_counter() - start
    print(f"in-process round: {seconds:.1f}s, {kept.height} kept, greedy {summary['greedy_accuracy']:.3f}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pool-size", type=int, default=None, help="override task.pool_size (default: params.yaml)")
    args = parser.parse_args()
    overrides = {"task": {"pool_size": args.pool_size}} if args.pool_size else {}
    with tempfile.TemporaryDirectory(prefix="sharpen-bench-") as tmp:
        from tests import workspace

        workspace.TINY.clear()  # benchmark the shipped params, not the test sizes
        ws = make_workspace(Path(tmp), overrides)
        run(ws, "dvc", "repro", "evaluate_base")  # untimed: tasks, base model, baseline
        start = time.perf_counter()
        run(ws, "dvc", "repro")
        dvc_seconds = time.perf_counter() - start
        print(f"dvc repro round: {dvc_seconds:.1f}s")
        plain_seconds = in_process(ws)
    print(f"ratio dvc/in-process: {dvc_seconds / plain_seconds:.2f}x "
          f"(overhead {dvc_seconds - plain_seconds:.1f}s per round)")


if __name__ == "__main__":
    main()
