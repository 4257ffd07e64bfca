"""The price of DVC, files, validation and lineage: one round via `dvc repro` vs the same work in one process.

A temporary workspace (a copy of this project, the shipped params) builds tasks, base model and
baseline untimed (`dvc repro evaluate_base`); then every side of every pair starts from its own
fresh copy of it (checked once: those stages are up to date there), so each side does the round:
- dvc: `dvc repro` in the copy: controller → propose → generate → verify → filter → synthesize →
  train → train_proposer → evaluate, one `python -m stages.*` process per stage, each paying its
  interpreter start and imports (torch, transformers and a model load where the stage has work),
  Parquet between stages, pandera validation on every read and write, DVC hashing and lock files;
- in-process: one fresh `python` process (this file, `--worker`) that pays the same interpreter
  start, imports and model loads once, applies the same torch thread count as a stage
  (`sharpen.threads.apply`) and calls the same functions with the same params one after another,
  data passed in memory, no validation, no files but the trained model.
Each side's time is the wall time of its command, from outside. Not counted: building and copying
the workspace (in a copy DVC rehashes the few MB its stages read: a fresh clone's cost, counted).
The sides alternate (order reversed every pair); it prints each side's median and the median
[min, max] of the per-pair ratios dvc / in-process.

Run: `python benchmarks/round.py [--pairs 3] [--pool-size N]` (default pool: params.yaml's task.pool_size)
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def in_process(ws: Path) -> None:
    """The same round as `dvc repro` runs it: the same functions and params, data kept in memory."""
    from sharpen import threads

    threads.apply()
    import polars as pl

    from sharpen.backends.hf import HFBackend
    from sharpen.config import load_params
    from sharpen.filters import decide, kept_examples
    from sharpen.metrics import per_problem, summarize
    from sharpen.objectives.sft import train_sft
    from sharpen.objectives.trainer import TrainerSettings
    from sharpen.sampling import (derive_seed, eval_draws, eval_requests, sample_frame, select_problems,
                                  verified_eval_frame)
    from sharpen.verifiers import verify_frame

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
    print(f"{kept.height} kept, greedy {summary['greedy_accuracy']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="runs of each side, alternating (default 3)")
    parser.add_argument("--pool-size", type=int, default=None, help="override task.pool_size (default: params.yaml)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, str(args.worker))  # the copy's own code and bytecode, as its stages import them
        in_process(args.worker)
        return
    sys.path.insert(0, str(PROJECT))
    from benchmarks import pairs
    from tests.workspace import env

    with tempfile.TemporaryDirectory(prefix="sharpen-bench-") as tmp:
        start = time.perf_counter()
        overrides = {"task": {"pool_size": args.pool_size}} if args.pool_size else {}
        prepared = pairs.prepared_workspace(Path(tmp) / "prepared", overrides)
        print(f"prepared workspace in {time.perf_counter() - start:.1f}s (untimed); {args.pairs} pairs", flush=True)

        def side(*cmd: str):
            def one() -> float:
                copy = pairs.fresh_copy(prepared)
                try:
                    return pairs.timed([c.replace("{ws}", str(copy)) for c in cmd], cwd=copy, env=env())
                finally:
                    shutil.rmtree(copy.parent)

            return one

        times = pairs.alternate({"dvc repro": side("dvc", "repro"),
                           "in-process": side(sys.executable, __file__, "--worker", "{ws}")}, args.pairs)
    for name, seconds in times.items():
        print(pairs.side_line(f"{name} round", seconds))
    print(pairs.ratio_line("dvc/in-process", times["dvc repro"], times["in-process"]))


if __name__ == "__main__":
    main()
